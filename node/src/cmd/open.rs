//! `pogo open`: one block's leaf and authentication path.

use anyhow::ensure;
use clap::Args;
use pogo_circuits::field::fr_to_hex;

use super::{shown, ArtifactArgs, Report};

/// Arguments of `pogo open`.
#[derive(Args, Debug)]
#[command(after_help = "Siblings are listed from the leaf level up; path bit l is bit l of the block index \
(1: the node at height l is a right child).\n\nExample:\n  pogo open model.safetensors --block 17 --json")]
pub struct OpenArgs {
    /// The block index I (0-based, below nb).
    #[arg(long, value_name = "I")]
    pub block: u64,
    #[command(flatten)]
    pub artifact: ArtifactArgs,
}

pub(super) fn run(OpenArgs { block, artifact: args }: OpenArgs) -> anyhow::Result<()> {
    let (artifact, tree) = args.load_with_tree()?;
    let path = tree.open(block)?;
    let leaf = tree.leaves()[block as usize];
    ensure!(path.compute_root(leaf) == tree.root(), "internal error: the opening does not verify");
    Report::new()
        .add("file", shown(&args.file))
        .add("kind", artifact.kind())
        .add("block", block)
        .add("blocks", tree.leaves().len())
        .add("depth", tree.depth())
        .add("root", fr_to_hex(&tree.root()))
        .add("leaf", fr_to_hex(&leaf))
        .add("path_bits", path.bits().iter().map(|&b| if b { "1" } else { "0" }).collect::<String>())
        .add("siblings", path.siblings.iter().map(fr_to_hex).collect::<Vec<_>>())
        .print(args.output);
    Ok(())
}
