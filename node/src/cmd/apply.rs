//! `pogo apply`: `u_new = u_old + s · (n − 8)` for every weight, exactly (DESIGN §2 Update).

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use pogo_circuits::field::fr_to_hex;
use pogo_circuits::update::Update;

use super::{model_tree_with_progress, shown, FormatArgs, OutputArgs, Report};

/// Arguments of `pogo apply`.
#[derive(Args, Debug)]
#[command(after_help = "The update must be for a model of the same size, and no weight may leave the 32-bit range; \
otherwise nothing is written.\n\nExample:\n  pogo apply old.safetensors round-7.pogo -o new.safetensors")]
pub struct ApplyArgs {
    /// The old model (.safetensors).
    pub old: PathBuf,
    /// The update blob.
    pub update: PathBuf,
    /// Where to write the new model (pogo's exact fixed-point safetensors).
    #[arg(short, long, value_name = "NEW")]
    pub output: PathBuf,
    /// Tree depth D for the printed root [default: the smallest D >= 1 with nb <= 2^D]
    #[arg(long, value_name = "D")]
    pub depth: Option<u32>,
    #[command(flatten)]
    pub format: FormatArgs,
    #[command(flatten)]
    pub print: OutputArgs,
}

pub(super) fn run(args: ApplyArgs) -> anyhow::Result<()> {
    let old = args.format.load_model(&args.old)?;
    let update = Update::load(&args.update).with_context(|| format!("reading update {}", args.update.display()))?;
    let new =
        update.apply(&old).with_context(|| format!("applying {} to {}", shown(&args.update), shown(&args.old)))?;
    let tree = model_tree_with_progress(&new, args.depth)?;
    new.save(&args.output).with_context(|| format!("writing {}", args.output.display()))?;
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
