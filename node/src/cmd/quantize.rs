//! `pogo quantize`: bring your own trainer. The float difference between a base model and a
//! model trained anywhere becomes a 4-bit update blob plus the exact new model.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use pogo_circuits::checkpoint::Checkpoint;
use pogo_circuits::field::{fr_to_hex, Fr};
use pogo_circuits::model::Model;
use pogo_prover::commit::{retree, update_root};

use super::{bar, model_tree_with_progress, shown, FormatArgs, OutputArgs, Report};
use crate::quantize::{quantize_sparse, quantize_streamed, QuantizeFiles, QuantizeReport, Residual};

/// Arguments of `pogo quantize`.
#[derive(Args, Debug)]
#[command(after_help = "Each block of 112 weights gets one scale s = ceil(max|delta| / 7) (in units of 2^-F) and \
each weight the nearest q in [-7, 7]; the new model is base + s*q exactly, which is what \
the commitment and the proofs are about (not the trained model itself).\n\nWith --residual, error feedback: \
what rounding left out is kept in that file (created on the first round) and added to the next round's delta, so \
small but consistent changes are applied over the rounds instead of being rounded away.\n\nWith --density R, a \
block-sparse update: only the ceil(R * nb) blocks whose change (delta plus carried residual) has the largest L2 norm \
are quantized; every other block is left unchanged and its whole change carried in the residual (use --residual, \
or it is dropped). The blob then lists only the changed blocks, and verifiers re-hash only their paths. \
(pogo's own rounds, in `pogo train` and the miner, rank blocks by their first-order loss decrease instead, \
which needs the network's gradient; this command has only the two models.)\n\n\
Examples:\n  \
pogo quantize base.safetensors trained.safetensors -o update.pogo --new new.safetensors\n  \
pogo quantize base.safetensors trained.safetensors -o update.pogo --new new.safetensors --residual miner.residual\n  \
pogo quantize base.safetensors trained.safetensors -o update.pogo --new new.safetensors --residual r --density 0.02")]
pub struct QuantizeArgs {
    /// The model training started from (.safetensors, float or pogo fixed-point, or a
    /// sharded checkpoint folder).
    pub base: PathBuf,
    /// The trained model (.safetensors or a sharded checkpoint folder; same tensors and shapes).
    pub trained: PathBuf,
    /// Where to write the update blob.
    #[arg(short, long, value_name = "UPDATE")]
    pub output: PathBuf,
    /// Where to write the exact new model (pogo fixed-point safetensors; for a sharded base
    /// model, a folder of shards in its layout, unless NEW ends in .safetensors).
    #[arg(long, value_name = "NEW")]
    pub new: PathBuf,
    /// Error-feedback file: read if present (else start from zero), rewritten afterwards.
    #[arg(long, value_name = "FILE")]
    pub residual: Option<PathBuf>,
    /// Fraction of the blocks the update changes, in (0, 1]: the largest changes by L2
    /// norm; the rest is carried in --residual.
    #[arg(long, value_name = "R", default_value_t = 1.0)]
    pub density: f64,
    /// Tree depth D for the printed roots [default: the smallest D >= 1 with nb <= 2^D]
    #[arg(long, value_name = "D")]
    pub depth: Option<u32>,
    /// Also write the base model's tree file here (for `pogo open --tree` and `pogo prove
    /// --old-tree` without hashing the model again).
    #[arg(long, value_name = "FILE", conflicts_with = "in_memory")]
    pub old_tree: Option<PathBuf>,
    /// Also write the new model's tree file here (`pogo prove --new-tree`; next round's
    /// `--old-tree`).
    #[arg(long, value_name = "FILE", conflicts_with = "in_memory")]
    pub new_tree: Option<PathBuf>,
    /// Also write the update's tree file here (`pogo prove --update-tree`).
    #[arg(long, value_name = "FILE", conflicts_with = "in_memory")]
    pub update_tree: Option<PathBuf>,
    /// Read both models whole before quantizing (the path before streaming, kept for
    /// comparisons; about 25 bytes of memory per weight).
    #[arg(long)]
    pub in_memory: bool,
    #[command(flatten)]
    pub format: FormatArgs,
    #[command(flatten)]
    pub print: OutputArgs,
}

pub(super) fn run(args: QuantizeArgs) -> anyhow::Result<()> {
    if args.density < 1.0 && args.residual.is_none() {
        eprintln!("note: without --residual, the changes of the blocks --density leaves out are dropped, not carried");
    }
    if !args.in_memory {
        return run_streamed(args);
    }
    let base = args.format.load_model(&args.base)?;
    // The trained model is read in the base model's format, so the deltas are comparable.
    let trained = pogo_circuits::model::Model::load(&args.trained, Some(base.format()))
        .with_context(|| format!("reading trained model {}", args.trained.display()))?;
    let mut residual = match &args.residual {
        Some(path) if path.exists() => Residual::load(path)?,
        _ => Residual::zero(base.weight_count()),
    };
    let q = quantize_sparse(&base, &trained, &mut residual, args.density)?;
    // The blob records the base model's root, so `apply` refuses any other model. The new
    // tree is the base's with the changed blocks' paths re-hashed, the update root from the
    // changed leaves alone.
    let base_tree = model_tree_with_progress(&base, args.depth)?;
    let new_tree = retree(&base_tree, &q.new_model, &q.update)?;
    let update_root = update_root(&q.update, Some(base_tree.depth()))?;
    let sparse = q.update.writes_sparse();
    let blob = q.update.with_base(base_tree.root(), base_tree.depth()).to_blob();
    q.new_model.save_like(&args.new, &args.base).with_context(|| format!("writing {}", args.new.display()))?;
    pogo_circuits::files::write_atomic(&args.output, &blob)
        .with_context(|| format!("writing {}", args.output.display()))?;
    if let Some(path) = &args.residual {
        residual.save(path)?;
    }
    let carried = residual.values().iter().map(|v| (*v as f64).powi(2)).sum::<f64>();
    let summary = Summary {
        weights: base.weight_count(),
        blocks: base.block_count(),
        fraction_bits: base.format().fraction_bits(),
        report: q.report,
        residual_rms: (carried / base.weight_count().max(1) as f64).sqrt(),
        sparse,
        blob_bytes: blob.len() as u64,
        depth: new_tree.depth(),
        roots: [base_tree.root(), new_tree.root(), update_root],
    };
    summary.print(&args);
    Ok(())
}

/// `quantize` in bounded memory: see [`quantize_streamed`].
fn run_streamed(args: QuantizeArgs) -> anyhow::Result<()> {
    let base = args.format.open_checkpoint(&args.base)?;
    // The trained model is read in the base model's format, so the deltas are comparable.
    let trained = Checkpoint::open(&args.trained, Some(base.format()))
        .with_context(|| format!("reading trained model {}", args.trained.display()))?;
    let layout = Model::shard_layout(&args.new, &args.base);
    let files = QuantizeFiles {
        blob: &args.output,
        new_model: &args.new,
        layout: layout.as_deref(),
        residual: args.residual.as_deref(),
        trees: [args.old_tree.as_deref(), args.new_tree.as_deref(), args.update_tree.as_deref()],
    };
    let passes = if args.density < 1.0 { 2 } else { 1 };
    let bar = bar(passes * base.block_count(), "quantizing and hashing blocks");
    let q = quantize_streamed(&base, &trained, args.density, args.depth, &files, &bar)
        .with_context(|| format!("quantizing {} against {}", shown(&args.trained), shown(&args.base)))?;
    bar.0.finish_and_clear();
    let summary = Summary {
        weights: base.weight_count(),
        blocks: base.block_count(),
        fraction_bits: base.format().fraction_bits(),
        report: q.report,
        // The residual is exactly what the update did not apply, whose RMS the report has.
        residual_rms: q.report.rms_error,
        sparse: q.blob.sparse,
        blob_bytes: q.blob.bytes,
        depth: q.depth,
        roots: q.roots,
    };
    summary.print(&args);
    Ok(())
}

/// What both paths print.
struct Summary {
    weights: u64,
    blocks: u64,
    fraction_bits: u32,
    report: QuantizeReport,
    /// In units of `2^-F`.
    residual_rms: f64,
    sparse: bool,
    blob_bytes: u64,
    depth: u32,
    /// Base, new and update roots (the order of [`crate::quantize::StreamQuantized::roots`]).
    roots: [Fr; 3],
}

impl Summary {
    fn print(&self, args: &QuantizeArgs) {
        let unit = 1.0 / f64::from(1u32 << self.fraction_bits);
        let [base_root, new_root, update_root] = &self.roots;
        Report::new()
            .add("update", shown(&args.output))
            .add("new_model", shown(&args.new))
            .add("weights", self.weights)
            .add("blocks", self.blocks)
            .add("changed_blocks", self.report.changed_blocks)
            .add("changed_weights", self.report.changed_weights)
            .add("clamped_weights", self.report.clamped_weights)
            .add("max_error", self.report.max_error as f64 * unit)
            .add("rms_error", self.report.rms_error * unit)
            .add("residual_rms", self.residual_rms * unit)
            .add("density", args.density)
            .add("blob_format", if self.sparse { "sparse (version 3)" } else { "dense" })
            .add("blob_bytes", self.blob_bytes)
            .add("f32_bytes", self.weights * 4)
            .add("depth", self.depth)
            .add("base_root", fr_to_hex(base_root))
            .add("update_root", fr_to_hex(update_root))
            .add("new_root", fr_to_hex(new_root))
            .print(args.print);
    }
}
