//! `cargo bench -p pogo-node --bench train`: for each task (`POGO_TRAIN_TASKS`, default
//! `tasks/digits.json`) and `POGO_TRAIN_ROUNDS` rounds (default 40), plain f32 training vs
//! the same steps and batches published as 4-bit updates with error feedback: final
//! validation loss of each, the gap (goal: within 2 %), and training steps per second.

use std::path::Path;
use std::time::Instant;

use candle_core::Device;
use pogo_node::quantize::Residual;
use pogo_node::train::{TaskConfig, Trainer};

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let tasks = std::env::var("POGO_TRAIN_TASKS").unwrap_or_else(|_| "tasks/digits.json".into());
    let rounds: u64 = std::env::var("POGO_TRAIN_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(40);
    println!("| task | weights | rounds × steps | f32 final val loss | 4-bit final val loss | gap | f32 steps/s | 4-bit steps/s (incl. quantize + apply) |");
    println!("|---|---|---|---|---|---|---|---|");
    for task in tasks.split(',') {
        let config = TaskConfig::load(&root.join(task)).unwrap();
        let steps = config.steps_per_round as u64;
        let trainer = Trainer::new(config.clone(), Device::Cpu).unwrap();
        let genesis = trainer.genesis().unwrap();

        trainer.load(&genesis).unwrap();
        let t = Instant::now();
        for round in 0..rounds {
            trainer.train(round, &|| {}).unwrap();
        }
        let f32_rate = (rounds * steps) as f64 / t.elapsed().as_secs_f64();
        let f32_loss = trainer.validation_loss().unwrap();

        let mut model = genesis.clone();
        let mut residual = Residual::zero(model.weight_count());
        let t = Instant::now();
        for round in 0..rounds {
            model = trainer.work(&model, &mut residual, round, &|| {}).unwrap().new_model;
        }
        let q_rate = (rounds * steps) as f64 / t.elapsed().as_secs_f64();
        trainer.load(&model).unwrap();
        let q_loss = trainer.validation_loss().unwrap();
        println!(
            "| {} | {} | {rounds} × {steps} | {f32_loss:.4} | {q_loss:.4} | {:+.2} % | {f32_rate:.0} | {q_rate:.0} |",
            config.name,
            model.weight_count(),
            100.0 * (q_loss - f32_loss) / f32_loss
        );
    }
}
