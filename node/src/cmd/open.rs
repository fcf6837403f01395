//! `pogo open`: one block's leaf and authentication path.

use std::path::PathBuf;

use anyhow::ensure;
use clap::Args;
use pogo_circuits::field::fr_to_hex;

use super::{shown, Artifact, FormatArgs, OutputArgs, Report};

/// Arguments of `pogo open`.
#[derive(Args, Debug)]
#[command(after_help = "Siblings are listed from the leaf level up; path bit l is bit l of the block index \
(1: the node at height l is a right child).\n\nExample:\n  pogo open model.safetensors --block 17 --json")]
pub struct OpenArgs {
    /// A model (.safetensors) or an update blob.
    pub file: PathBuf,
    /// The block index I (0-based, below nb).
    #[arg(long, value_name = "I")]
    pub block: u64,
    /// Tree depth D [default: the smallest D >= 1 with nb <= 2^D]
    #[arg(long, value_name = "D")]
    pub depth: Option<u32>,
    #[command(flatten)]
    pub format: FormatArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub(super) fn run(args: OpenArgs) -> anyhow::Result<()> {
    let artifact = Artifact::load(&args.file, &args.format)?;
    let tree = artifact.tree(args.depth)?;
    let path = tree.open(args.block)?;
    let leaf = tree.leaves()[args.block as usize];
    ensure!(path.compute_root(leaf) == tree.root(), "internal error: the opening does not verify");
    Report::new()
        .add("file", shown(&args.file))
        .add("kind", artifact.kind())
        .add("block", args.block)
        .add("blocks", tree.leaves().len())
        .add("depth", tree.depth())
        .add("root", fr_to_hex(&tree.root()))
        .add("leaf", fr_to_hex(&leaf))
        .add("path_bits", path.bits().iter().map(|&b| if b { "1" } else { "0" }).collect::<String>())
        .add("siblings", path.siblings.iter().map(fr_to_hex).collect::<Vec<_>>())
        .print(args.output);
    Ok(())
}
