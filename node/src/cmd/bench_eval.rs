//! `pogo bench eval`: the reference evaluator against candle's training path on each task's
//! phase-1 batch (time and difference), and a verifier's share of a round: the reference
//! evaluation of the old and the new model against the miner's training of that round.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;

use super::bench::median_secs;
use super::{OutputArgs, Report};
use crate::quantize::Residual;
use crate::train::{TaskConfig, Trainer};

/// Arguments of `pogo bench eval`.
#[derive(Args, Debug)]
#[command(after_help = "For each task: the median time of the reference evaluation of one evaluation-sized \
batch of the validation split (eval_batch_size examples) and of candle's on this CPU, their ratio \
(reference ÷ candle) and difference; then one round of work from the genesis model (the miner's training, \
timed) and the verifier's two reference evaluations (old and new model), and verify ÷ train.\n\n\
Example:\n  pogo bench eval tasks/digits.json tasks/licenses.json --json")]
pub struct BenchEvalArgs {
    /// Task files.
    #[arg(required = true)]
    pub tasks: Vec<PathBuf>,
    /// Timed repetitions of each evaluation; the median is reported.
    #[arg(long, value_name = "K", default_value_t = 3)]
    pub repeat: usize,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub(super) fn run(args: BenchEvalArgs) -> anyhow::Result<()> {
    let mut tasks = Vec::new();
    for path in &args.tasks {
        let task = TaskConfig::load(path)?;
        let trainer = Trainer::new(task.clone(), candle_core::Device::Cpu)?;
        let genesis = trainer.genesis()?;
        let examples = trainer.validation_batch([1; 32]);
        let (reference_s, reference) = median_secs(args.repeat, || Ok(trainer.eval_examples(&genesis, &examples)?))?;
        let (candle_s, candle) = median_secs(args.repeat, || Ok(trainer.eval_examples_candle(&genesis, &examples)?))?;
        eprintln!("{}: reference {reference_s:.3} s, candle {candle_s:.3} s per batch; training one round…", task.name);
        let mut residual = Residual::zero(genesis.weight_count());
        let start = Instant::now();
        let out = trainer.work(&genesis, &mut residual, 0, &|| {})?;
        let train_s = start.elapsed().as_secs_f64();
        let start = Instant::now();
        trainer.eval_examples(&genesis, &examples)?;
        trainer.eval_examples(&out.new_model, &examples)?;
        let verify_s = start.elapsed().as_secs_f64();
        tasks.push(serde_json::json!({
            "task": task.name,
            "weights": genesis.weight_count(),
            "examples": examples.len(),
            "reference_seconds": reference_s,
            "candle_seconds": candle_s,
            "reference_over_candle": reference_s / candle_s,
            "reference_loss": reference,
            "candle_minus_reference": candle - reference,
            "round_train_seconds": train_s,
            "round_verify_seconds": verify_s,
            "verify_over_train": verify_s / train_s,
        }));
    }
    Report::new()
        .add("threads", rayon::current_num_threads())
        .add("repeat", args.repeat)
        .add("tasks", tasks)
        .print(args.output);
    Ok(())
}
