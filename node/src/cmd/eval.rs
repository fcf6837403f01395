//! `pogo eval`: the loss a verifier would attest for a model, so anyone can reproduce an
//! attestation (the reference evaluator, `train::reference`).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;
use pogo_circuits::model::Model;

use super::{shown, OutputArgs, Report};
use crate::roles::loss_units;
use crate::train::data::{held_out, Examples};
use crate::train::{TaskConfig, Trainer};

/// Arguments of `pogo eval`.
#[derive(Args, Debug)]
#[command(after_help = "The loss is the reference evaluator's: f64 throughout, every sum in one fixed order, \
exp/ln/erf from the pure-Rust libm, so it has the same bits on every CPU. It is attested as an integer, \
round(loss × 10⁹) (`loss_units`), the unit task margins are in.\n\n\
The batch is either a revealed held-out batch (--batch: the bytes of the round's EvalRevealed event, salt \
first, as verifiers keep them in <dir>/heldout/round-<N>.bin), or the evaluation-sized batch of the task's \
public validation split that a 32-byte seed picks (--seed: ChaCha20 from the seed, stream 0, with replacement).\n\n\
Examples:\n  pogo eval tasks/digits.json model.safetensors --seed 0x01\n  \
pogo eval tasks/licenses.json new.safetensors --batch node-v1/heldout/round-3.bin --json\n  \
pogo eval tasks/digits.json model.safetensors --seed 0x01 --candle   # also candle's loss, and the difference\n  \
pogo eval tasks/licenses.json model.safetensors --seed 0x01 --candle --gpu   # candle on CUDA against the reference")]
pub struct EvalArgs {
    /// The task file.
    pub task: PathBuf,
    /// The model (a pogo fixed-point or float safetensors file of the task's network).
    pub model: PathBuf,
    /// A 32-byte seed (0x-prefixed hex, up to 64 digits, left-padded with zeros) picking a
    /// batch of the validation split.
    #[arg(long, value_name = "HEX", conflicts_with = "batch", required_unless_present = "batch")]
    pub seed: Option<String>,
    /// A revealed held-out batch file (salt, then records).
    #[arg(long, value_name = "FILE")]
    pub batch: Option<PathBuf>,
    /// Also evaluate with candle's training path (this machine's kernels) and print the
    /// difference from the reference: never what is attested.
    #[arg(long)]
    pub candle: bool,
    /// With --candle, run candle on the first CUDA GPU (a `--features gpu-train` build), to
    /// measure a GPU evaluator's difference from the reference.
    #[arg(long, requires = "candle")]
    pub gpu: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Parses a seed of up to 32 bytes of hex (`0x` optional), left-padded with zeros.
fn parse_seed(text: &str) -> anyhow::Result<[u8; 32]> {
    let digits = text.strip_prefix("0x").unwrap_or(text);
    if digits.is_empty() || digits.len() > 64 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("--seed {text:?} is not 1 to 64 hex digits (a 32-byte seed)");
    }
    let padded = format!("{digits:0>64}");
    let mut seed = [0u8; 32];
    hex::decode_to_slice(padded, &mut seed).expect("64 hex digits checked above");
    Ok(seed)
}

pub(super) fn run(args: EvalArgs) -> anyhow::Result<()> {
    let task = TaskConfig::load(&args.task)?;
    // The reference evaluator always runs on the CPU; the device is candle's (--candle).
    let trainer = Trainer::new(task.clone(), super::cuda_device(args.gpu)?)?;
    let model = Model::load(&args.model, Some(trainer.format()))?;
    let (examples, source): (Examples, String) = match (&args.seed, &args.batch) {
        (Some(seed), _) => (trainer.validation_batch(parse_seed(seed)?), format!("validation split, seed {seed}")),
        (None, Some(path)) => {
            let bytes = std::fs::read(path).with_context(|| format!("reading the batch {}", shown(path)))?;
            let examples = held_out::readable_examples(&task.model, &task.data, &bytes)
                .map_err(|why| anyhow::anyhow!("the batch {}: {why}", shown(path)))?;
            (examples, format!("held-out batch {}", shown(path)))
        }
        (None, None) => unreachable!("clap requires --seed or --batch"),
    };
    let start = Instant::now();
    let loss = trainer.eval_examples(&model, &examples)?;
    let seconds = start.elapsed().as_secs_f64();
    let mut report = Report::new()
        .add("task", &task.name)
        .add("model", shown(&args.model))
        .add("batch", source)
        .add("examples", examples.len())
        .add("loss", loss)
        .add("loss_units", loss_units(loss))
        .add("seconds", seconds);
    if args.candle {
        let start = Instant::now();
        let candle = trainer.eval_examples_candle(&model, &examples)?;
        report = report
            .add("candle_device", if args.gpu { "cuda" } else { "cpu" })
            .add("candle_loss", candle)
            .add("candle_minus_reference", candle - loss)
            .add("candle_seconds", start.elapsed().as_secs_f64());
    }
    report.print(args.output);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_seed;

    #[test]
    fn seeds_are_left_padded_hex_and_nothing_else() {
        let mut one = [0u8; 32];
        one[31] = 1;
        assert_eq!(parse_seed("0x01").unwrap(), one);
        assert_eq!(parse_seed("1").unwrap(), one);
        assert_eq!(parse_seed(&format!("0x{}", "ab".repeat(32))).unwrap(), [0xab; 32]);
        for bad in ["", "0x", "0xg1", &"1".repeat(65)] {
            assert!(parse_seed(bad).is_err(), "{bad:?}");
        }
    }
}
