//! `pogo prove`: a proof that sampled blocks of an update were applied exactly.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;
use pogo_circuits::config::CircuitConfig;
use pogo_circuits::field::fr_to_hex;
use pogo_circuits::merkle::default_depth;
use pogo_circuits::sampling::sample_indices;
use pogo_circuits::update::Update;
use pogo_circuits::update_circuit::PublicInputs;
use pogo_prover::prove::{prove, Keys, PROVER};
use pogo_prover::witness::{assemble, round_trees};
use pogo_verifier::keys::{config_dir, setup_hint, Manifest, ProofFile, Setup, MANIFEST_FILE};

use super::{bar, shown, spinner, FormatArgs, OutputArgs, Report};

/// Arguments of `pogo prove`.
#[derive(Args, Debug)]
#[command(after_help = "The blocks to prove are the round's sampled indices: pass the phase-2 randomness with --seed \
(indices i_j = keccak256(abi.encode(seed, j)) mod nb, as the contract derives them) or list them with --indices.\n\n\
Examples:\n  pogo prove old.safetensors new.safetensors update.pogo --seed 0x5eed... --samples 8 -o round.proof\n  \
pogo prove old.safetensors new.safetensors update.pogo --indices 0,17,42 -o round.proof")]
pub struct ProveArgs {
    /// The old model (.safetensors, or a sharded checkpoint folder).
    pub old: PathBuf,
    /// The new model (.safetensors, or a sharded checkpoint folder).
    pub new: PathBuf,
    /// The update blob.
    pub update: PathBuf,
    /// Phase-2 randomness: 32 bytes as 0x + 64 hex digits.
    #[arg(long, value_name = "HEX", conflicts_with = "indices", required_unless_present = "indices")]
    pub seed: Option<String>,
    /// Explicit block indices, comma-separated.
    #[arg(long, value_name = "I,J,...", value_delimiter = ',')]
    pub indices: Option<Vec<u64>>,
    /// Samples S (required with --seed; the number of --indices otherwise).
    #[arg(long, value_name = "S")]
    pub samples: Option<usize>,
    /// Tree depth D [default: the smallest D >= 1 with nb <= 2^D]
    #[arg(long, value_name = "D")]
    pub depth: Option<u32>,
    /// Where the proof file goes.
    #[arg(short, long, value_name = "PROOF")]
    pub output: PathBuf,
    /// Where configuration folders live.
    #[arg(long, value_name = "DIR", default_value = "params", env = "POGO_PARAMS")]
    pub params_dir: PathBuf,
    /// Prove on the GPU. The prover is chosen when pogo is built: a `--features gpu-prove`
    /// build (halo2-axiom-gpu) always proves on the GPU, any other on the CPU; with this
    /// flag, a CPU build says so before proving.
    #[arg(long)]
    pub gpu: bool,
    #[command(flatten)]
    pub format: FormatArgs,
    #[command(flatten)]
    pub print: OutputArgs,
}

fn parse_seed(text: &str) -> anyhow::Result<[u8; 32]> {
    let digits = text.strip_prefix("0x").unwrap_or(text);
    let mut seed = [0u8; 32];
    hex::decode_to_slice(digits, &mut seed)
        .with_context(|| format!("--seed must be 32 bytes as 64 hex digits, got {text:?}"))?;
    Ok(seed)
}

/// The keys of `config` in `params_dir`, or an error naming the `pogo setup` that makes them.
pub(super) fn load_keys(params_dir: &Path, config: &CircuitConfig) -> anyhow::Result<(Manifest, Setup, Keys)> {
    let dir = config_dir(params_dir, &config.name());
    if !dir.join(MANIFEST_FILE).exists() {
        bail!("no keys for {} in {}: {}", config.name(), params_dir.display(), setup_hint(&dir));
    }
    Ok(pogo_prover::keys::load(&dir)?)
}

/// Writes a `pogo verify-proof` file (atomically), with the seed the indices came from.
pub(super) fn write_proof_file(
    path: &Path,
    config: &CircuitConfig,
    manifest: &Manifest,
    inputs: &PublicInputs,
    proof: &[u8],
    seed: Option<&[u8; 32]>,
) -> anyhow::Result<()> {
    let mut file = ProofFile::new(config.name(), manifest.sha256.vk.clone(), inputs, proof);
    if let Some(seed) = seed {
        file = file.with_seed(seed);
    }
    let json = serde_json::to_vec_pretty(&file).expect("proof files serialize");
    pogo_circuits::files::write_atomic(path, &json).with_context(|| format!("writing {}", path.display()))
}

pub(super) fn run(args: ProveArgs) -> anyhow::Result<()> {
    let old = args.format.load_model(&args.old)?;
    let new = args.format.load_model(&args.new)?;
    let update = Update::load_within(&args.update, old.weight_count())
        .with_context(|| format!("reading update {}", args.update.display()))?;
    let blocks = old.block_count();
    let depth = args.depth.unwrap_or_else(|| default_depth(blocks));
    let seed = args.seed.as_deref().map(parse_seed).transpose()?;
    let indices = match (&seed, &args.indices) {
        (Some(seed), _) => {
            let samples = args.samples.context("--seed needs --samples S")?;
            sample_indices(seed, samples, blocks)
        }
        (None, Some(indices)) => {
            if args.samples.is_some_and(|s| s != indices.len()) {
                bail!("--samples {} disagrees with {} --indices", args.samples.unwrap_or(0), indices.len());
            }
            indices.clone()
        }
        (None, None) => bail!("pass --seed or --indices"),
    };
    // What can be checked without keys comes first: a wrong depth or index is said before
    // anyone is sent to make keys for it.
    if depth >= 64 || blocks > 1u64 << depth {
        bail!(
            "{blocks} blocks do not fit in a tree of depth {depth} (at most 2^{depth} leaves): use --depth {} or more",
            default_depth(blocks)
        );
    }
    if new.block_count() != blocks || update.block_count() != blocks {
        bail!(
            "old model, new model and update have {blocks}, {} and {} blocks: they are not one round",
            new.block_count(),
            update.block_count()
        );
    }
    if let Some(bad) = indices.iter().find(|&&i| i >= blocks) {
        bail!("block index {bad} is out of range: the model has {blocks} blocks");
    }
    let config = CircuitConfig::new(depth, indices.len())?;
    let (manifest, setup, keys) = load_keys(&args.params_dir, &config)?;
    let prover = PROVER;
    if args.gpu && prover != "gpu" {
        eprintln!(
            "note: this pogo was built without GPU proving (build with `--features gpu-prove`); proving on the CPU"
        );
    }

    let progress = bar(3 * blocks, "committing old, new and update");
    let trees = round_trees(&old, &new, &update, depth, &progress)?;
    progress.0.finish_and_clear();
    let (inputs, samples) = assemble(&old, &new, &update, &trees, &indices)?;
    let spin = spinner(format!("proving {} (k = {}) on the {prover}", config.name(), keys.shape.k));
    let start = Instant::now();
    let proof = prove(&setup, &keys, &inputs, &samples)?;
    let seconds = start.elapsed().as_secs_f64();
    spin.finish_and_clear();
    write_proof_file(&args.output, &config, &manifest, &inputs, &proof, seed.as_ref())?;
    Report::new()
        .add("proof", shown(&args.output))
        .add("config", config.name())
        .add("old_root", fr_to_hex(&inputs.old_root))
        .add("new_root", fr_to_hex(&inputs.new_root))
        .add("update_root", fr_to_hex(&inputs.update_root))
        .add("blocks", blocks)
        .add("indices", inputs.indices.iter().map(u64::to_string).collect::<Vec<_>>().join(","))
        .add("proof_bytes", proof.len())
        .add("prove_seconds", (seconds * 100.0).round() / 100.0)
        .add("prover", prover)
        .print(args.print);
    Ok(())
}
