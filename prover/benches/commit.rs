//! `cargo bench -p pogo-prover --bench commit`: commitment throughput (issue: at least
//! 1,000,000 weights/s per core) on a synthetic model, all cores and one core, peak memory,
//! and the same leaves hashed by `poseidon-rs` (the iden3/circomlib Rust port) in the same run.
//!
//! Environment: `POGO_BENCH_WEIGHTS` (default 100,000,000), `POGO_BENCH_PEER_LEAVES`
//! (default 2,000: the peer is timed on a prefix of the leaves, per leaf).

use std::time::Instant;

use ff_ce::PrimeField as _;
use pogo_circuits::encoding::{pack_block, BLOCK_WEIGHTS};
use pogo_circuits::field::fr_to_decimal;
use pogo_circuits::model::{block_of, Model, TensorInfo};
use pogo_prover::commit::{model_leaves, model_tree};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.replace('_', "").parse().ok()).unwrap_or(default)
}

/// Peak resident memory of this process so far (Linux `VmHWM`), in MiB.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn main() {
    let n = env_or("POGO_BENCH_WEIGHTS", 100_000_000) as usize;
    let peer_leaves = env_or("POGO_BENCH_PEER_LEAVES", 2_000) as usize;
    let cores = rayon::current_num_threads();
    // Deterministic pseudo-random weights (an LCG), so every run hashes the same model.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let weights: Vec<u32> = (0..n)
        .map(|_| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (x >> 32) as u32
        })
        .collect();
    let model = Model::new(Default::default(), vec![TensorInfo { name: "w".into(), shape: vec![n] }], weights).unwrap();
    let nb = model.block_count();
    println!("model: {n} weights, {nb} blocks of {BLOCK_WEIGHTS}; {cores} rayon threads");

    let start = Instant::now();
    let tree = model_tree(&model, None, &()).unwrap();
    let all = start.elapsed().as_secs_f64();
    let peak = peak_rss_mib();
    println!(
        "all cores : {:>8.2} s  {:>12.0} weights/s  {:>12.0} weights/s/core  (D = {}, root {})",
        all,
        n as f64 / all,
        n as f64 / all / cores as f64,
        tree.depth(),
        pogo_circuits::field::fr_to_hex(&tree.root())
    );
    if let Some(peak) = peak {
        println!("peak RSS  : {peak:.0} MiB (model {} MiB)", n * 4 / (1 << 20));
    }

    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let start = Instant::now();
    let single = one.install(|| model_tree(&model, None, &()).unwrap());
    let one_core = start.elapsed().as_secs_f64();
    assert_eq!(single.root(), tree.root(), "one core and all cores agree");
    println!("one core  : {:>8.2} s  {:>12.0} weights/s", one_core, n as f64 / one_core);

    // Same leaves, one core: pogo vs poseidon-rs (textbook schedule over ff_ce).
    let peer_leaves = peer_leaves.min(nb as usize);
    let prefix = &model.weights()[..(peer_leaves * BLOCK_WEIGHTS).min(n)];
    let start = Instant::now();
    let ours = one.install(|| model_leaves(prefix, &()));
    let ours_per_leaf = start.elapsed().as_secs_f64() / peer_leaves as f64;
    let inputs: Vec<Vec<poseidon_rs::Fr>> = (0..peer_leaves as u64)
        .map(|b| {
            pack_block(&block_of(prefix, b))
                .iter()
                .map(|e| poseidon_rs::Fr::from_str(&fr_to_decimal(e)).unwrap())
                .collect()
        })
        .collect();
    let peer = poseidon_rs::Poseidon::new();
    let start = Instant::now();
    let theirs: Vec<poseidon_rs::Fr> = inputs.into_iter().map(|i| peer.hash(i).unwrap()).collect();
    let peer_per_leaf = start.elapsed().as_secs_f64() / peer_leaves as f64;
    for (a, b) in ours.iter().zip(&theirs) {
        assert_eq!(&pogo_circuits::field::fr_to_hex(a)[2..], ff_ce::to_hex(b), "peer computes the same leaves");
    }
    println!(
        "H_16 leaf : pogo {:.2} µs, poseidon-rs {:.2} µs per leaf on one core over {peer_leaves} leaves: pogo {:.1}x faster",
        ours_per_leaf * 1e6,
        peer_per_leaf * 1e6,
        peer_per_leaf / ours_per_leaf
    );
}
