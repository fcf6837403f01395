//! `cargo bench -p pogo-prover --bench prove`: `UpdateCircuit{D, S}` for each configuration in
//! `POGO_BENCH_CONFIGS` (default `10:1,10:8,10:32,20:1,20:8,20:32`): k, columns, cells per
//! sample, setup, keygen, proving and verification time, proof size, peak memory, and the
//! native check of the same statement. Each configuration runs in its own process so peak
//! memory is its own. The setup is the INSECURE dev setup (timings are the same).

use std::process::Command;
use std::time::Instant;

use pogo_circuits::config::CircuitConfig;
use pogo_circuits::sampling::sample_indices;
use pogo_prover::audit::synthetic_round;
use pogo_prover::prove::{keygen, prove};
use pogo_prover::setup::dev_setup;
use pogo_prover::witness::{assemble, round_trees};

/// Blocks of the benchmark model (at most 2^D): proof cost depends on D and S, not on nb.
const MAX_BLOCKS: u64 = 1000;

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

fn one(depth: u32, samples: usize) {
    let config = CircuitConfig::new(depth, samples).unwrap();
    let shape = config.shape().unwrap();
    let blocks_in_model = MAX_BLOCKS.min(1 << depth);

    let (old, new, update) = synthetic_round(blocks_in_model, 7);
    let trees = round_trees(&old, &new, &update, depth, &()).unwrap();
    let indices = sample_indices(&[0x42; 32], samples, blocks_in_model);

    let t = Instant::now();
    let setup = dev_setup(shape.k, 1);
    let setup_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let keys = keygen(&setup, &shape).unwrap();
    let keygen_s = t.elapsed().as_secs_f64();
    let (inputs, witness) = assemble(&old, &new, &update, &trees, &indices).unwrap();
    let t = Instant::now();
    let proof = prove(&setup, &keys, &inputs, &witness).unwrap();
    let prove_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    pogo_verifier::proof::verify(&setup, keys.vk(), &inputs, samples, &proof).unwrap();
    let verify_ms = t.elapsed().as_secs_f64() * 1e3;

    // The same statement checked natively: leaves, three paths and the apply rule per sample.
    let t = Instant::now();
    for &i in &indices {
        let applied = update.apply_block(&old, i).unwrap();
        assert_eq!(applied, new.block(i));
        for (tree, leaf) in [(&trees.old, old.leaf(i)), (&trees.new, new.leaf(i)), (&trees.update, update.leaf(i))] {
            assert!(tree.open(i).unwrap().verify(tree.root(), leaf, depth, blocks_in_model).unwrap());
        }
    }
    let native_ms = t.elapsed().as_secs_f64() * 1e3;

    let columns = pogo_verifier::audit::constraint_report(keys.vk(), samples);
    println!(
        "| {depth} | {samples} | {} | {} / {} / {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {:.0} | {:.2} |",
        shape.k,
        columns.advice_columns,
        columns.fixed_columns,
        columns.lookups.len(),
        shape.advice_cells / samples,
        setup_s,
        keygen_s,
        prove_s,
        verify_ms,
        proof.len(),
        peak_rss_mib(),
        native_ms,
    );
}

fn main() {
    if let Ok(one_config) = std::env::var("POGO_BENCH_ONE") {
        let (d, s) = one_config.split_once(':').expect("D:S");
        one(d.parse().unwrap(), s.parse().unwrap());
        return;
    }
    let configs = std::env::var("POGO_BENCH_CONFIGS").unwrap_or_else(|_| "10:1,10:8,10:32,20:1,20:8,20:32".into());
    println!("UpdateCircuit on {} rayon threads", rayon::current_num_threads());
    println!("| D | S | k | advice / fixed cols / lookups | cells per sample | setup s | keygen s | prove s | verify ms | proof bytes | peak MiB | native check ms |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for config in configs.split(',') {
        let status = Command::new(std::env::current_exe().unwrap())
            .env("POGO_BENCH_ONE", config.trim())
            .status()
            .expect("benchmark child runs");
        assert!(status.success(), "configuration {config} failed");
    }
}
