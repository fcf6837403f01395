//! `pogo apply`: `u_new = u_old + s · (n − 8)` for every weight, exactly (DESIGN §2 Update).

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use pogo_circuits::field::fr_to_hex;
use pogo_circuits::update::Update;

use super::{check_expected_root, model_tree_with_progress, shown, FormatArgs, OutputArgs, Report};

/// Arguments of `pogo apply`.
#[derive(Args, Debug)]
#[command(after_help = "The update must be for a model of the same size, and no weight may leave the 32-bit range; \
an update blob that records the model it was made against (version 2, what pogo writes) is refused on any other \
model, naming both roots. Otherwise, or with --expect-root not met, nothing is written.\n\nExamples:\n  \
pogo apply old.safetensors round-7.pogo -o new.safetensors\n  \
pogo apply old.safetensors round-7.pogo -o new.safetensors --expect-root 0x2f…   # the committed new root")]
pub struct ApplyArgs {
    /// The old model (.safetensors, or a sharded checkpoint folder).
    pub old: PathBuf,
    /// The update blob.
    pub update: PathBuf,
    /// Where to write the new model (pogo's exact fixed-point safetensors; for a sharded old
    /// model, a folder of shards in its layout, unless NEW ends in .safetensors).
    #[arg(short, long, value_name = "NEW")]
    pub output: PathBuf,
    /// Tree depth D for the printed root [default: the smallest D >= 1 with nb <= 2^D]
    #[arg(long, value_name = "D")]
    pub depth: Option<u32>,
    /// Refuse (writing nothing) unless the new model's root at D is this 0x… value, e.g.
    /// the new root a miner committed to.
    #[arg(long, value_name = "ROOT")]
    pub expect_root: Option<String>,
    #[command(flatten)]
    pub format: FormatArgs,
    #[command(flatten)]
    pub print: OutputArgs,
}

pub(super) fn run(args: ApplyArgs) -> anyhow::Result<()> {
    let old = args.format.load_model(&args.old)?;
    let update = Update::load_within(&args.update, old.weight_count())
        .with_context(|| format!("reading update {}", args.update.display()))?;
    let applying = || format!("applying {} to {}", shown(&args.update), shown(&args.old));
    if let Some(base) = update.base() {
        update.check_model(&old).with_context(applying)?;
        let old_tree = model_tree_with_progress(&old, Some(base.depth))?;
        update.check_base(&old_tree.root()).with_context(applying)?;
    }
    let new = update.apply(&old).with_context(applying)?;
    let tree = model_tree_with_progress(&new, args.depth)?;
    check_expected_root(&tree.root(), args.expect_root.as_deref(), "the new model")?;
    new.save_like(&args.output, &args.old).with_context(|| format!("writing {}", args.output.display()))?;
    let changed = old.weights().iter().zip(new.weights()).filter(|(a, b)| a != b).count();
    Report::new()
        .add("new_model", shown(&args.output))
        .add("weights", new.weight_count())
        .add("changed_weights", changed)
        .add("depth", tree.depth())
        .add("new_root", fr_to_hex(&tree.root()))
        .print(args.print);
    Ok(())
}
