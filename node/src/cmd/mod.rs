//! Subcommands, one module each; this module holds what they share.

mod apply;
mod audit;
mod bench;
mod bench_eval;
mod bench_sparse;
mod commit;
mod demo;
mod eval;
mod export;
mod export_verifier;
mod node;
mod open;
mod prove;
mod quantize;
mod setup;
mod train;
mod verify_proof;

use std::path::Path;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use pogo_circuits::checkpoint::Checkpoint;
use pogo_circuits::encoding::FixedPoint;
use pogo_circuits::merkle::MerkleTree;
use pogo_circuits::model::Model;
use pogo_circuits::update::{Update, BLOB_MAGIC};
use pogo_prover::commit::{model_tree, update_tree, Progress};

/// pogo: Proof of Gradient Optimization. Miners train a shared model and publish 4-bit
/// updates; Poseidon Merkle commitments and halo2 proofs let anyone check them cheaply.
#[derive(Parser, Debug)]
#[command(
    name = "pogo",
    version,
    propagate_version = true,
    after_help = "A round by hand:\n  \
pogo commit base.safetensors                       # root of the model everyone starts from\n  \
pogo quantize base.safetensors trained.safetensors -o update.pogo --new new.safetensors\n  \
pogo apply base.safetensors update.pogo -o check.safetensors   # what a verifier rebuilds\n  \
pogo open new.safetensors --block 3                # one block's leaf and Merkle path"
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Print the Merkle root of a model (or of an update blob), with N, nb and D.
    Commit(commit::CommitArgs),
    /// Print one block's leaf and authentication path.
    Open(open::OpenArgs),
    /// Apply an update blob to a model exactly, writing the new fixed-point model.
    Apply(apply::ApplyArgs),
    /// Turn the difference between a base model and a trained one into a 4-bit update.
    Quantize(quantize::QuantizeArgs),
    /// Write a model as a float safetensors file (for trainers outside pogo).
    Export(export::ExportArgs),
    /// Make the KZG setup and proving/verifying keys of a circuit configuration (D, S).
    Setup(setup::SetupArgs),
    /// Prove that sampled blocks of an update were applied exactly (halo2, KZG, SHPLONK).
    Prove(prove::ProveArgs),
    /// Verify a proof natively with its configuration's keys.
    VerifyProof(verify_proof::VerifyProofArgs),
    /// Generate and compile the Solidity verifier of a configuration's keys.
    ExportVerifier(export_verifier::ExportVerifierArgs),
    /// Audit a circuit configuration: constraint report, mutation testing, binding, reproducibility.
    Audit(audit::AuditArgs),
    /// Print the loss a verifier would attest for a model on a batch (reference evaluator).
    Eval(eval::EvalArgs),
    /// Train a task in rounds published as 4-bit updates (candle, CPU), with the loss curve.
    Train(train::TrainArgs),
    /// Manage the local keystore (encrypted keys).
    Keys(node::KeysArgs),
    /// Register a task on chain (verifier, round contract, task).
    Task(node::TaskArgs),
    /// Run a miner: train, commit, prove, submit, finalize, round after round.
    Miner(node::MinerArgs),
    /// Run the task owner: reveal each round's held-out evaluation batch (or --add a set).
    Owner(node::OwnerArgs),
    /// Run a verifier: stake, fetch and rebuild each update, evaluate the loss, attest.
    Verifier(node::VerifierArgs),
    /// Prove a candidate of the open round wrong on chain: rebuild, find the block, file it.
    Challenge(node::ChallengeArgs),
    /// Finalize rounds whose window is over (once, or --watch).
    Finalize(node::FinalizeArgs),
    /// Show the task, the open round and this key's balances.
    Status(node::FinalizeArgs),
    /// Run the protocol end to end on the embedded chain: honest rounds and slashed cheaters.
    Demo(demo::DemoArgs),
    /// Measure this machine: `pogo bench commit [--gpu]` (commitment throughput, GPU roots
    /// checked against the CPU's), `pogo bench prove` (proving time), `pogo bench eval`
    /// (the reference evaluator against candle, a verifier's share of a round), `pogo bench
    /// sparse` (a verifier's rebuild at several update densities).
    #[command(subcommand)]
    Bench(BenchCommand),
}

/// What `pogo bench` measures.
#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Commitment throughput in weights/s on synthetic models, on every core and (--gpu) on
    /// the first CUDA GPU.
    Commit(bench::BenchCommitArgs),
    /// Proving time of `UpdateCircuit{D, S}` with this binary's prover (the GPU in a
    /// `--features gpu-prove` build), each proof verified natively.
    Prove(bench::BenchProveArgs),
    /// The reference evaluator's time and loss against candle's per task, and the time of a
    /// verifier's evaluations over a miner's round of training.
    Eval(bench_eval::BenchEvalArgs),
    /// A verifier's rebuild and re-commit of a synthetic model at several update densities:
    /// incremental (changed paths only) against dense (every leaf), in one run.
    Sparse(bench_sparse::BenchSparseArgs),
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Commit(args) => commit::run(args),
        Command::Open(args) => open::run(args),
        Command::Apply(args) => apply::run(args),
        Command::Quantize(args) => quantize::run(args),
        Command::Export(args) => export::run(args),
        Command::Setup(args) => setup::run(args),
        Command::Prove(args) => prove::run(args),
        Command::VerifyProof(args) => verify_proof::run(args),
        Command::ExportVerifier(args) => export_verifier::run(args),
        Command::Audit(args) => audit::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Train(args) => train::run(args),
        Command::Keys(args) => node::keys(args),
        Command::Task(args) => node::task(args),
        Command::Miner(args) => node::miner(args),
        Command::Owner(args) => node::owner(args),
        Command::Verifier(args) => node::verifier(args),
        Command::Challenge(args) => node::challenge(args),
        Command::Finalize(args) => node::finalize(args),
        Command::Status(args) => node::status(args),
        Command::Demo(args) => demo::demo(args),
        Command::Bench(BenchCommand::Commit(args)) => bench::run(args),
        Command::Bench(BenchCommand::Prove(args)) => bench::run_prove(args),
        Command::Bench(BenchCommand::Eval(args)) => bench_eval::run(args),
        Command::Bench(BenchCommand::Sparse(args)) => bench_sparse::run(args),
    }
}

/// How float model files are encoded.
#[derive(Args, Debug, Clone, Copy)]
pub struct FormatArgs {
    /// Fractional bits F of the fixed-point weights (float inputs are encoded with it;
    /// pogo fixed-point files carry their own and must match if it is given) [default: 24]
    #[arg(long = "fraction-bits", value_name = "F")]
    pub fraction_bits: Option<u32>,
}

impl FormatArgs {
    fn requested(&self) -> anyhow::Result<Option<FixedPoint>> {
        self.fraction_bits.map(FixedPoint::new).transpose().map_err(Into::into)
    }

    fn load_model(&self, path: &Path) -> anyhow::Result<Model> {
        self.open_checkpoint(path)?.to_model().with_context(|| format!("reading model {}", path.display()))
    }

    /// The checkpoint at `path`, opened for streaming with these fraction bits.
    fn open_checkpoint(&self, path: &Path) -> anyhow::Result<Checkpoint> {
        Checkpoint::open(path, self.requested()?).with_context(|| format!("reading model {}", path.display()))
    }
}

/// Output switches shared by every subcommand.
#[derive(Args, Debug, Clone, Copy)]
pub struct OutputArgs {
    /// Print one JSON object instead of text (for scripts).
    #[arg(long)]
    pub json: bool,
}

/// The file and tree arguments `commit` and `open` share.
#[derive(Args, Debug)]
pub struct ArtifactArgs {
    /// A model (.safetensors: F32/F16/BF16, or a pogo fixed-point file; or a sharded
    /// checkpoint: its folder or its model.safetensors.index.json) or an update blob.
    pub file: std::path::PathBuf,
    /// Tree depth D [default: the smallest D >= 1 with nb <= 2^D]
    #[arg(long, value_name = "D")]
    pub depth: Option<u32>,
    #[command(flatten)]
    pub format: FormatArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

impl ArtifactArgs {
    /// Loads the file and builds its tree.
    fn load_with_tree(&self) -> anyhow::Result<(Artifact, MerkleTree)> {
        let artifact = Artifact::load(&self.file, &self.format)?;
        let tree = artifact.tree(self.depth)?;
        Ok((artifact, tree))
    }
}

/// Whether `path` is an update blob (by its magic) rather than a model file or folder.
fn is_update_blob(path: &Path) -> anyhow::Result<bool> {
    use std::io::Read;
    if path.is_dir() {
        return Ok(false);
    }
    let mut magic = Vec::with_capacity(BLOB_MAGIC.len());
    let file = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    file.take(BLOB_MAGIC.len() as u64)
        .read_to_end(&mut magic)
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(magic == BLOB_MAGIC)
}

/// A file given to `commit` or `open`: a model or an update blob (told apart by magic).
enum Artifact {
    Model(Model),
    Update(Update),
}

impl Artifact {
    fn load(path: &Path, format: &FormatArgs) -> anyhow::Result<Self> {
        if is_update_blob(path)? {
            let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            let update =
                Update::from_blob(&bytes).with_context(|| format!("reading update blob {}", path.display()))?;
            Ok(Self::Update(update))
        } else {
            Ok(Self::Model(format.load_model(path)?))
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::Model(_) => "model",
            Self::Update(_) => "update",
        }
    }

    fn weight_count(&self) -> u64 {
        match self {
            Self::Model(m) => m.weight_count(),
            Self::Update(u) => u.weight_count(),
        }
    }

    fn tree(&self, depth: Option<u32>) -> anyhow::Result<MerkleTree> {
        match self {
            Self::Model(m) => model_tree_with_progress(m, depth),
            Self::Update(u) => update_tree_with_progress(u, depth),
        }
    }
}

/// The model tree, with a progress bar on large models.
fn model_tree_with_progress(model: &Model, depth: Option<u32>) -> anyhow::Result<MerkleTree> {
    let bar = bar(model.block_count(), "hashing model blocks");
    let tree = model_tree(model, depth, &bar)?;
    bar.0.finish_and_clear();
    Ok(tree)
}

/// The CPU, or the first CUDA GPU when asked for and compiled in (`gpu-train`).
fn cuda_device(gpu: bool) -> anyhow::Result<candle_core::Device> {
    if !gpu {
        return Ok(candle_core::Device::Cpu);
    }
    if cfg!(feature = "gpu-train") {
        candle_core::Device::new_cuda(0).context("no usable CUDA GPU (driver or device missing); run without --gpu")
    } else {
        anyhow::bail!(
            "this pogo was built without candle's CUDA backend: rebuild with `--features gpu-train` (see \
             scripts/cuda/env.sh), or run without --gpu"
        )
    }
}

/// Checks a root against `--expect-root` (0x… hex), if given.
fn check_expected_root(got: &pogo_circuits::field::Fr, expected: Option<&str>, what: &str) -> anyhow::Result<()> {
    use pogo_circuits::field::{fr_from_hex, fr_to_hex};
    let Some(text) = expected else { return Ok(()) };
    let want = fr_from_hex(text).with_context(|| format!("--expect-root {text}"))?;
    if want != *got {
        anyhow::bail!("{what} has root {}, not the expected {}", fr_to_hex(got), fr_to_hex(&want));
    }
    Ok(())
}

/// The update tree, with a progress bar on large updates.
fn update_tree_with_progress(update: &Update, depth: Option<u32>) -> anyhow::Result<MerkleTree> {
    let bar = bar(update.block_count(), "hashing update blocks");
    let tree = update_tree(update, depth, &bar)?;
    bar.0.finish_and_clear();
    Ok(tree)
}

/// A progress bar over blocks; drawn only on a terminal and for work worth watching.
struct Bar(ProgressBar);

impl Progress for Bar {
    fn advance(&self, blocks: u64) {
        self.0.inc(blocks);
    }
}

fn bar(blocks: u64, message: &'static str) -> Bar {
    const SHOW_FROM_BLOCKS: u64 = 20_000;
    let bar = if blocks >= SHOW_FROM_BLOCKS { ProgressBar::new(blocks) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:40.cyan/blue}] {pos}/{len} blocks, {per_sec}, eta {eta}")
            .expect("static template")
            .progress_chars("=> "),
    );
    bar.set_message(message);
    Bar(bar)
}

/// A spinner for long phases without a known length; drawn only on a terminal.
fn spinner(message: impl Into<std::borrow::Cow<'static, str>>) -> ProgressBar {
    let spinner = ProgressBar::new_spinner();
    spinner.set_style(ProgressStyle::with_template("{spinner} {msg} ({elapsed})").expect("static template"));
    spinner.set_message(message);
    spinner.enable_steady_tick(std::time::Duration::from_millis(120));
    spinner
}

/// Key-value output, printed as aligned text or as one JSON object.
struct Report(serde_json::Map<String, serde_json::Value>);

impl Report {
    fn new() -> Self {
        Self(serde_json::Map::new())
    }

    fn add(mut self, key: &str, value: impl serde::Serialize) -> Self {
        self.0.insert(key.to_string(), serde_json::to_value(value).expect("plain values serialize"));
        self
    }

    /// [`Report::add`] where there is a value.
    fn add_some(self, key: &str, value: Option<impl serde::Serialize>) -> Self {
        match value {
            Some(value) => self.add(key, value),
            None => self,
        }
    }

    fn print(&self, output: OutputArgs) {
        if output.json {
            println!("{}", serde_json::Value::Object(self.0.clone()));
            return;
        }
        let width = self.0.keys().map(String::len).max().unwrap_or(0);
        for (key, value) in &self.0 {
            match value {
                serde_json::Value::String(s) => println!("{key:width$}  {s}"),
                serde_json::Value::Array(items) => {
                    println!("{key}:");
                    for item in items {
                        println!("  {}", item.as_str().map(str::to_string).unwrap_or_else(|| item.to_string()));
                    }
                }
                other => println!("{key:width$}  {other}"),
            }
        }
    }
}

/// `path` as text for reports.
fn shown(path: &Path) -> String {
    path.display().to_string()
}

/// An error and its causes on one line, each cause said once. Many error types print their
/// source in their own message and also return it as `source()`; a chain printer would then
/// say that cause twice (`not a valid safetensors file: X: X`). A cause whose text the line
/// already holds is left out. This is the one rule for every message the CLI prints.
pub fn error_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if text.is_empty() || line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("reading {path}: {source}")]
    struct Both {
        path: String,
        source: std::io::Error,
    }

    #[test]
    fn each_cause_is_said_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory (os error 2)");
        let err = anyhow::Error::new(Both { path: "m.safetensors".into(), source: io }).context("loading the model");
        assert_eq!(
            error_line(&err),
            "loading the model: reading m.safetensors: No such file or directory (os error 2)"
        );
        let plain = anyhow::anyhow!("inner").context("outer");
        assert_eq!(error_line(&plain), "outer: inner", "distinct causes are all said");
    }
}
