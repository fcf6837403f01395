//! `pogo bench commit`: commitment throughput of this machine, on every core and, with
//! `--gpu`, on the first CUDA GPU, with GPU roots checked against CPU roots first.

use std::time::Instant;

use clap::Args;
use pogo_circuits::encoding::block_count;
use pogo_circuits::field::fr_to_hex;
use pogo_circuits::merkle::default_depth;
use pogo_prover::commit::{model_leaves, tree_from_leaves};
use rayon::prelude::*;

use super::{OutputArgs, Report};

/// Arguments of `pogo bench commit`.
#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  pogo bench commit --cpu-weights 20000000\n  \
pogo bench commit --gpu --weights 1000000000 --json   # what scripts/gpu-check.sh runs on a GPU host")]
pub struct BenchCommitArgs {
    /// Weights of the synthetic model the GPU hashes (made in memory, 4 bytes each).
    #[arg(long, value_name = "N", default_value_t = 1_000_000_000)]
    pub weights: u64,
    /// Weights of the synthetic model the CPU hashes (all cores), also hashed on the GPU
    /// and compared; 0 skips the CPU.
    #[arg(long, value_name = "N", default_value_t = 100_000_000)]
    pub cpu_weights: u64,
    /// Build the GPU kernels with field multiplications inlined rather than called (more
    /// code and a slower start; measured slower on an H200).
    #[arg(long, requires = "gpu")]
    pub gpu_inline_mul: bool,
    /// Build the GPU kernels' dot products with a reduction after every product, as first
    /// built, instead of one per dot product.
    #[arg(long, requires = "gpu")]
    pub gpu_narrow_dot: bool,
    /// Cap the GPU kernels' registers per thread (more threads resident, more spilled).
    #[arg(long, value_name = "N", requires = "gpu")]
    pub gpu_max_registers: Option<usize>,
    /// Measure the GPU too (needs a `--features gpu` build; says why not otherwise).
    #[arg(long)]
    pub gpu: bool,
    /// Timed repetitions of each measurement; the median is reported.
    #[arg(long, value_name = "K", default_value_t = 3)]
    pub repeat: usize,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Deterministic pseudo-random biased weights (a per-chunk LCG), made on every core.
pub fn synthetic_weights(n: u64, seed: u64) -> Vec<u32> {
    const CHUNK: usize = 1 << 20;
    let mut weights = vec![0u32; n as usize];
    weights.par_chunks_mut(CHUNK).enumerate().for_each(|(i, chunk)| {
        let mut x = seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        for w in chunk {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            *w = (x >> 32) as u32;
        }
    });
    weights
}

/// The median of `repeat` timings of `f`, in seconds, and its last result.
pub(super) fn median_secs<T>(repeat: usize, mut f: impl FnMut() -> anyhow::Result<T>) -> anyhow::Result<(f64, T)> {
    let mut times = Vec::with_capacity(repeat.max(1));
    let mut last = None;
    for _ in 0..repeat.max(1) {
        let start = Instant::now();
        last = Some(f()?);
        times.push(start.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok((times[times.len() / 2], last.expect("at least one run")))
}

pub(super) fn run(args: BenchCommitArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.weights > 0, "--weights must be positive");
    anyhow::ensure!(args.gpu || args.cpu_weights > 0, "nothing to measure: --cpu-weights 0 without --gpu");
    let cores = rayon::current_num_threads();
    let cpu_model = synthetic_weights(args.cpu_weights, 1);
    let cpu_depth = default_depth(block_count(args.cpu_weights.max(1)));
    let mut report = Report::new().add("cpu_threads", cores);
    let mut cpu = None;
    if args.cpu_weights > 0 {
        eprintln!("hashing {} weights on {cores} CPU threads, {} time(s)", args.cpu_weights, args.repeat);
        let (secs, root) =
            median_secs(args.repeat, || Ok(tree_from_leaves(model_leaves(&cpu_model, &()), Some(cpu_depth))?.root()))?;
        let rate = args.cpu_weights as f64 / secs;
        report = report
            .add("cpu_weights", args.cpu_weights)
            .add("cpu_seconds", round3(secs))
            .add("cpu_weights_per_second", rate.round())
            .add("cpu_root", fr_to_hex(&root));
        cpu = Some(CpuResult { weights: &cpu_model, depth: cpu_depth, root, rate });
    }
    if args.gpu {
        report = gpu(&args, report, cpu)?;
    }
    report.print(args.output);
    Ok(())
}

/// The CPU's model, root and rate, for the GPU to match and be compared with.
#[cfg_attr(not(feature = "gpu"), allow(dead_code))]
struct CpuResult<'a> {
    weights: &'a [u32],
    depth: u32,
    root: pogo_circuits::field::Fr,
    rate: f64,
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(not(feature = "gpu"))]
fn gpu(_: &BenchCommitArgs, report: Report, _: Option<CpuResult>) -> anyhow::Result<Report> {
    eprintln!("note: this pogo was built without GPU support (build with `--features gpu`); CPU figures only");
    Ok(report.add("gpu", "not built in"))
}

#[cfg(feature = "gpu")]
fn gpu(args: &BenchCommitArgs, report: Report, cpu: Option<CpuResult>) -> anyhow::Result<Report> {
    use anyhow::Context;
    use pogo_prover::gpu::device::{compile, GpuCommitter};
    use pogo_prover::gpu::KernelOptions;

    let kernels = KernelOptions {
        mul_calls: !args.gpu_inline_mul,
        narrow_dot: args.gpu_narrow_dot,
        max_registers: args.gpu_max_registers,
    };

    let start = Instant::now();
    let gpu = match GpuCommitter::with_options(kernels) {
        Ok(gpu) => gpu,
        Err(e) => {
            eprintln!("note: no GPU measurement: {e}");
            // Still check what needs no device: NVRTC compiles the kernels for Hopper.
            let nvrtc = match compile(9, 0, kernels) {
                Ok(ptx) => format!("compiled for compute_90 ({} bytes of PTX)", ptx.to_src().len()),
                Err(e) => format!("failed: {e}"),
            };
            eprintln!("NVRTC: {nvrtc}");
            return Ok(report.add("gpu", format!("unavailable: {e}")).add("gpu_kernels_nvrtc", nvrtc));
        }
    };
    let setup = start.elapsed().as_secs_f64();
    let (major, minor) = gpu.compute_capability();
    eprintln!(
        "{} (compute capability {major}.{minor}): kernels compiled and loaded in {setup:.2} s",
        gpu.device_name()
    );

    // Roots first: a fast wrong answer is worth nothing.
    let mut checked = check_random_models(&gpu)?;
    if let Some(cpu) = &cpu {
        let same = gpu.model_root(cpu.weights, Some(cpu.depth)).context("hashing the CPU's model on the GPU")?;
        anyhow::ensure!(
            same == cpu.root,
            "GPU root {} differs from the CPU root {}",
            fr_to_hex(&same),
            fr_to_hex(&cpu.root)
        );
        checked += 1;
    }
    eprintln!("GPU roots equal CPU roots on {checked} models");

    let model = synthetic_weights(args.weights, 2);
    eprintln!("hashing {} weights on the GPU, {} time(s)", args.weights, args.repeat);
    let (gpu_secs, gpu_root) = median_secs(args.repeat, || Ok(gpu.model_root(&model, None)?))?;
    let gpu_rate = args.weights as f64 / gpu_secs;
    let report = report
        .add("gpu", gpu.device_name())
        .add("gpu_compute_capability", format!("{major}.{minor}"))
        .add("gpu_kernels", format!("{kernels:?}"))
        .add("gpu_setup_seconds", round3(setup))
        .add("gpu_roots_checked", checked)
        .add("gpu_weights", args.weights)
        .add("gpu_seconds", round3(gpu_secs))
        .add("gpu_weights_per_second", gpu_rate.round())
        .add("gpu_root", fr_to_hex(&gpu_root))
        .add("seconds_for_175e9_weights_at_gpu_rate", (175e9 / gpu_rate).round());
    Ok(match cpu {
        Some(cpu) => report.add("gpu_over_cpu_all_threads", (gpu_rate / cpu.rate * 10.0).round() / 10.0),
        None => report,
    })
}

/// GPU and CPU trees agree (every level, so openings too) on random models of awkward sizes
/// and depths; returns how many were checked.
#[cfg(feature = "gpu")]
fn check_random_models(gpu: &pogo_prover::gpu::device::GpuCommitter) -> anyhow::Result<usize> {
    use pogo_circuits::encoding::BLOCK_WEIGHTS;
    let sizes = [1, BLOCK_WEIGHTS - 1, BLOCK_WEIGHTS, BLOCK_WEIGHTS + 1, 10_007, 1_000_003, 3_333_333];
    for (i, &n) in sizes.iter().enumerate() {
        let weights = synthetic_weights(n as u64, 100 + i as u64);
        let depth = default_depth(block_count(n as u64)) + (i as u32 % 3);
        let cpu = tree_from_leaves(model_leaves(&weights, &()), Some(depth))?;
        let on_gpu = gpu.model_tree(&weights, Some(depth))?;
        anyhow::ensure!(on_gpu == cpu, "GPU tree of a {n}-weight model at depth {depth} differs from the CPU's");
    }
    Ok(sizes.len())
}

/// Arguments of `pogo bench prove`.
#[derive(Args, Debug)]
#[command(after_help = "Keys come from `pogo setup` (they are the same for the CPU and the GPU prover):\n  \
pogo setup --depth 20 --samples 32\n  pogo bench prove --depth 20 --samples 32 --proof-dir proofs\n  \
pogo verify-proof proofs/d20-s32-cpu.proof --evm")]
pub struct BenchProveArgs {
    /// Tree depth D of each configuration to measure (repeat the flag for several).
    #[arg(long = "depth", value_name = "D", required = true)]
    pub depths: Vec<u32>,
    /// Sampled blocks S per proof.
    #[arg(long, value_name = "S", default_value_t = 32)]
    pub samples: usize,
    /// Where configuration folders live.
    #[arg(long, value_name = "DIR", default_value = "params", env = "POGO_PARAMS")]
    pub params_dir: std::path::PathBuf,
    /// Write each proof here as `d{D}-s{S}-{cpu|gpu}.proof` (a `pogo verify-proof` file).
    #[arg(long, value_name = "DIR")]
    pub proof_dir: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `pogo bench prove`: proving time of `UpdateCircuit{D, S}` on a synthetic round (1,000
/// blocks, or 2^D if fewer fit: the cost depends on D and S, not on the model), with the
/// proof checked natively.
pub(super) fn run_prove(args: BenchProveArgs) -> anyhow::Result<()> {
    use anyhow::Context;
    use pogo_circuits::config::CircuitConfig;
    use pogo_circuits::sampling::sample_indices;
    use pogo_prover::audit::synthetic_round;
    use pogo_prover::prove::{prove, PROVER};
    use pogo_prover::witness::{assemble, round_trees};

    use super::prove::{load_keys, write_proof_file};

    let kind = PROVER;
    let mut rows = Vec::new();
    for &depth in &args.depths {
        let config = CircuitConfig::new(depth, args.samples)?;
        let start = Instant::now();
        let (manifest, setup, keys) = load_keys(&args.params_dir, &config)?;
        let load = start.elapsed().as_secs_f64();
        let blocks = 1000u64.min(1 << depth.min(62));
        let (old, new, update) = synthetic_round(blocks, 7);
        let trees = round_trees(&old, &new, &update, depth, &())?;
        let seed = [0x42; 32];
        let indices = sample_indices(&seed, args.samples, blocks);
        let (inputs, witness) = assemble(&old, &new, &update, &trees, &indices)?;
        eprintln!("proving {} (k = {}) on the {kind}", config.name(), keys.shape.k);
        let start = Instant::now();
        let proof = prove(&setup, &keys, &inputs, &witness)?;
        let seconds = start.elapsed().as_secs_f64();
        pogo_verifier::proof::verify(&setup, keys.vk(), &inputs, args.samples, &proof)
            .with_context(|| format!("the {kind} proof of {} does not verify", config.name()))?;
        if let Some(out) = &args.proof_dir {
            std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
            let path = out.join(format!("{}-{kind}.proof", config.name()));
            write_proof_file(&path, &config, &manifest, &inputs, &proof, Some(&seed))?;
        }
        rows.push(serde_json::json!({
            "config": config.name(),
            "k": keys.shape.k,
            "prover": kind,
            "threads": rayon::current_num_threads(),
            "key_load_seconds": round3(load),
            "prove_seconds": round3(seconds),
            "proof_bytes": proof.len(),
            "verified_natively": true,
        }));
    }
    Report::new().add("proofs", rows).print(args.output);
    Ok(())
}
