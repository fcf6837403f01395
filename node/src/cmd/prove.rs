//! `pogo prove`: a proof that sampled blocks of an update were applied exactly.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;
use pogo_circuits::config::CircuitConfig;
use pogo_circuits::field::{fr_to_hex, Fr};
use pogo_circuits::merkle::default_depth;
use pogo_circuits::sampling::sample_indices;
use pogo_circuits::tree_file::TreeFile;
use pogo_circuits::update::Update;
use pogo_circuits::update_circuit::PublicInputs;
use pogo_circuits::update_stream::UpdateStream;
use pogo_prover::prove::{prove, Keys, PROVER};
use pogo_prover::stream::{checkpoint_tree, sampled_blocks, update_stream_tree, StreamError};
use pogo_prover::witness::{assemble, assemble_sampled, round_trees};
use pogo_verifier::keys::{config_dir, setup_hint, Manifest, ProofFile, Setup, MANIFEST_FILE};

use super::{bar, shown, spinner, FormatArgs, OutputArgs, Report};

/// Arguments of `pogo prove`.
#[derive(Args, Debug)]
#[command(after_help = "The blocks to prove are the round's sampled indices: pass the phase-2 randomness with --seed \
(indices i_j = keccak256(abi.encode(seed, j)) mod nb, as the contract derives them) or list them with --indices.\n\n\
The models and the blob are streamed, and only the sampled blocks and their paths are \
kept: memory stays flat however large the model. The three trees are read from the tree files given with \
--old-tree, --new-tree and --update-tree (what `pogo quantize` and `pogo commit --tree-out` write; each checked \
against the sampled blocks, so a tree of another model is named), and any not given are built in a scratch \
folder beside the proof and removed afterwards.\n\n\
Examples:\n  pogo prove old.safetensors new.safetensors update.pogo --seed 0x5eed... --samples 8 -o round.proof\n  \
pogo prove old.safetensors new.safetensors update.pogo --indices 0,17,42 -o round.proof\n  \
pogo prove old new update.pogo --seed 0x5eed... --samples 32 --old-tree old.tree --new-tree new.tree \
--update-tree update.tree -o round.proof")]
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
    /// The old model's tree file (from `pogo commit --tree-out` or `pogo quantize
    /// --old-tree`), instead of hashing the old model again.
    #[arg(long, value_name = "FILE", conflicts_with = "in_memory")]
    pub old_tree: Option<PathBuf>,
    /// The new model's tree file (`pogo quantize --new-tree`, `pogo apply --tree-out`).
    #[arg(long, value_name = "FILE", conflicts_with = "in_memory")]
    pub new_tree: Option<PathBuf>,
    /// The update's tree file (`pogo quantize --update-tree`, `pogo commit UPDATE --tree-out`).
    #[arg(long, value_name = "FILE", conflicts_with = "in_memory")]
    pub update_tree: Option<PathBuf>,
    /// Read the models and the update whole and build the trees in memory (the path before
    /// streaming, kept for comparisons; about 9 bytes of memory per weight beyond the
    /// prover's own).
    #[arg(long)]
    pub in_memory: bool,
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
    let (old, new) = (args.format.open_checkpoint(&args.old)?, args.format.open_checkpoint(&args.new)?);
    let update = UpdateStream::open(&args.update, old.weight_count())
        .with_context(|| format!("reading update {}", args.update.display()))?;
    let blocks = old.block_count();
    let depth = args.depth.unwrap_or_else(|| default_depth(blocks));
    let seed = args.seed.as_deref().map(parse_seed).transpose()?;
    let indices = sampled_indices(&args, seed.as_ref(), blocks)?;
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

    let (inputs, samples) = if args.in_memory {
        let (old, new) = (old.to_model()?, new.to_model()?);
        let update = Update::load_within(&args.update, old.weight_count())
            .with_context(|| format!("reading update {}", args.update.display()))?;
        let progress = bar(3 * blocks, "committing old, new and update");
        let trees = round_trees(&old, &new, &update, depth, &progress)?;
        progress.0.finish_and_clear();
        assemble(&old, &new, &update, &trees, &indices)?
    } else {
        let given = [&args.old_tree, &args.new_tree, &args.update_tree];
        let missing = given.iter().filter(|t| t.is_none()).count() as u64;
        let scratch = missing_trees_dir(&args.output, missing)?;
        let progress = bar(missing * blocks, "committing what no --*-tree file gives");
        let trees = [
            tree_file(given[0], "--old-tree", scratch.as_ref(), blocks, depth, |out| {
                checkpoint_tree(&old, Some(depth), Some(out), &progress)
            })?,
            tree_file(given[1], "--new-tree", scratch.as_ref(), blocks, depth, |out| {
                checkpoint_tree(&new, Some(depth), Some(out), &progress)
            })?,
            tree_file(given[2], "--update-tree", scratch.as_ref(), blocks, depth, |out| {
                update_stream_tree(&update, Some(depth), Some(out), &progress)
            })?,
        ];
        progress.0.finish_and_clear();
        let sampled = sampled_blocks(&old, &new, &update, &indices)?;
        assemble_sampled(blocks, &sampled, [&trees[0], &trees[1], &trees[2]])?
    };
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

/// The round's block indices: derived from `seed` as the contract does, or as listed.
fn sampled_indices(args: &ProveArgs, seed: Option<&[u8; 32]>, blocks: u64) -> anyhow::Result<Vec<u64>> {
    match (seed, &args.indices) {
        (Some(seed), _) => {
            let samples = args.samples.context("--seed needs --samples S")?;
            Ok(sample_indices(seed, samples, blocks))
        }
        (None, Some(indices)) => {
            if args.samples.is_some_and(|s| s != indices.len()) {
                bail!("--samples {} disagrees with {} --indices", args.samples.unwrap_or(0), indices.len());
            }
            Ok(indices.clone())
        }
        (None, None) => bail!("pass --seed or --indices"),
    }
}

/// A scratch folder beside the proof for the tree files no flag gives (removed when
/// dropped), or none when every tree is given.
fn missing_trees_dir(output: &Path, missing: u64) -> anyhow::Result<Option<tempfile::TempDir>> {
    if missing == 0 {
        return Ok(None);
    }
    let dir = pogo_circuits::files::dir_of(output);
    let scratch = tempfile::Builder::new().prefix(".pogo-prove-").tempdir_in(dir);
    Ok(Some(scratch.with_context(|| format!("making a scratch folder for tree files in {}", dir.display()))?))
}

/// The tree file `given` (checked to be a tree of `blocks` leaves at `depth`), or one
/// built by `build` into the scratch folder.
fn tree_file(
    given: &Option<PathBuf>,
    flag: &str,
    scratch: Option<&tempfile::TempDir>,
    blocks: u64,
    depth: u32,
    build: impl FnOnce(&Path) -> Result<(Fr, u32), StreamError>,
) -> anyhow::Result<TreeFile> {
    let path = match given {
        Some(path) => path.clone(),
        None => {
            let path = scratch.expect("a scratch folder when a tree is missing").path().join(&flag[2..]);
            build(&path)?;
            path
        }
    };
    let tree = TreeFile::open(&path).with_context(|| format!("{flag} {}", path.display()))?;
    if tree.leaves() != blocks || tree.depth() != depth {
        bail!(
            "{flag} {}: a tree of {} leaves at depth {}, but the round has {blocks} blocks at depth {depth}",
            path.display(),
            tree.leaves(),
            tree.depth()
        );
    }
    Ok(tree)
}
