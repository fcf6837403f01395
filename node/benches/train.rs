//! `cargo bench -p pogo-node --bench train`: for each task (`POGO_TRAIN_TASKS`, default
//! `tasks/digits.json`) and `POGO_TRAIN_ROUNDS` rounds (default 40), plain f32 training vs
//! the same steps and batches published as 4-bit updates with error feedback, at each
//! update density of `POGO_TRAIN_DENSITIES` (default `1`; e.g. `1,0.25,0.1,0.02` for
//! block-sparse updates): the genesis model's validation loss (and accuracy, for classifiers:
//! for a pretrained task, the model before fine-tuning), final validation loss and accuracy
//! of each, the gap to f32 (goal: within 2 %) and to dense 4-bit (goal at 10 %: within 2 %),
//! mean blob bytes per round and that over the dense f32 model's bytes (4 per weight), and
//! training steps per second. `POGO_TRAIN_STEPS` overrides the tasks' steps per round;
//! `POGO_TRAIN_SELECTIONS` (default `gain`; e.g. `gain,norm`) runs each density below 1 once
//! per block selection rule, so the rules are compared in one run.

use std::path::Path;
use std::time::Instant;

use candle_core::Device;
use pogo_node::quantize::Residual;
use pogo_node::train::task::Selection;
use pogo_node::train::{TaskConfig, Trainer};

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let tasks = std::env::var("POGO_TRAIN_TASKS").unwrap_or_else(|_| "tasks/digits.json".into());
    let rounds: u64 = std::env::var("POGO_TRAIN_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(40);
    let densities: Vec<f64> = std::env::var("POGO_TRAIN_DENSITIES")
        .unwrap_or_else(|_| "1".into())
        .split(',')
        .map(|d| d.trim().parse().expect("POGO_TRAIN_DENSITIES: numbers in (0, 1], comma-separated"))
        .collect();
    let selections: Vec<Selection> = std::env::var("POGO_TRAIN_SELECTIONS")
        .unwrap_or_else(|_| "gain".into())
        .split(',')
        .map(|s| {
            serde_json::from_value(serde_json::Value::String(s.trim().into()))
                .expect("POGO_TRAIN_SELECTIONS: gain, norm")
        })
        .collect();
    println!("| task | weights | rounds × steps | density | selection | genesis val loss (acc) | f32 final val loss (acc) | 4-bit final val loss (acc) | gap to f32 | gap to dense 4-bit | blob bytes per round | blob ÷ f32 model bytes | f32 steps/s | 4-bit steps/s (incl. quantize + apply) |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let accuracy = |trainer: &Trainer| match trainer.validation_accuracy().unwrap() {
        Some(a) => format!(" ({:.1} %)", 100.0 * a),
        None => String::new(),
    };
    for task in tasks.split(',') {
        let mut config = TaskConfig::load(&root.join(task)).unwrap();
        if let Some(steps) = std::env::var("POGO_TRAIN_STEPS").ok().and_then(|s| s.parse().ok()) {
            config.steps_per_round = steps;
        }
        let steps = config.steps_per_round as u64;
        let trainer = Trainer::new(config.clone(), Device::Cpu).unwrap();
        let genesis = trainer.genesis().unwrap();

        trainer.load(&genesis).unwrap();
        let genesis_loss = trainer.validation_loss().unwrap();
        let genesis_acc = accuracy(&trainer);
        let t = Instant::now();
        for round in 0..rounds {
            trainer.train(round, &|| {}).unwrap();
        }
        let f32_rate = (rounds * steps) as f64 / t.elapsed().as_secs_f64();
        let f32_loss = trainer.validation_loss().unwrap();
        let f32_acc = accuracy(&trainer);

        let mut dense_loss = None;
        let runs = densities.iter().flat_map(|&d| {
            let rules = if d < 1.0 { selections.clone() } else { vec![Selection::Gain] };
            rules.into_iter().map(move |s| (d, s))
        });
        for (density, selection) in runs {
            let mut sparse = config.clone();
            sparse.density = density;
            sparse.selection = selection;
            let rule = if density < 1.0 { format!("{selection:?}").to_lowercase() } else { "—".into() };
            let trainer = Trainer::new(sparse, Device::Cpu).unwrap();
            let mut model = genesis.clone();
            let mut residual = Residual::zero(model.weight_count());
            let mut blob_bytes = 0usize;
            let t = Instant::now();
            for round in 0..rounds {
                let out = trainer.work(&model, &mut residual, round, &|| {}).unwrap();
                blob_bytes += out.update.to_blob().len();
                model = out.new_model;
            }
            let q_rate = (rounds * steps) as f64 / t.elapsed().as_secs_f64();
            trainer.load(&model).unwrap();
            let q_loss = trainer.validation_loss().unwrap();
            let q_acc = accuracy(&trainer);
            let dense = *dense_loss.get_or_insert(q_loss);
            let per_round = blob_bytes / rounds.max(1) as usize;
            println!(
                "| {} | {} | {rounds} × {steps} | {density} | {rule} | {genesis_loss:.4}{genesis_acc} | {f32_loss:.4}{f32_acc} | {q_loss:.4}{q_acc} | {:+.2} % | {:+.2} % | {per_round} | {:.4} | {f32_rate:.2} | {q_rate:.2} |",
                config.name,
                model.weight_count(),
                100.0 * (q_loss - f32_loss) / f32_loss,
                100.0 * (q_loss - dense) / dense,
                per_round as f64 / (4 * model.weight_count()) as f64,
            );
        }
    }
}
