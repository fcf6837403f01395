//! `pogo open`: one block's leaf and authentication path.

use std::path::Path;

use anyhow::{bail, ensure};
use clap::Args;
use pogo_circuits::encoding::block_leaf;
use pogo_circuits::field::{fr_to_hex, Fr};
use pogo_circuits::merkle::MerklePath;
use pogo_circuits::tree_file::TreeFile;

use super::{is_update_blob, shown, ArtifactArgs, Report};

/// Arguments of `pogo open`.
#[derive(Args, Debug)]
#[command(after_help = "Siblings are listed from the leaf level up; path bit l is bit l of the block index \
(1: the node at height l is a right child).\n\nWith --tree FILE (written by `pogo commit --tree-out FILE`) nothing is hashed \
but the block itself: its path is read from the file and checked against the file's root, and the block's \
leaf against the file's, so a tree of another model is refused.\n\nExamples:\n  pogo open model.safetensors --block 17 --json\n  \
pogo open checkpoint/ --tree model.tree --block 123456789")]
pub struct OpenArgs {
    /// The block index I (0-based, below nb).
    #[arg(long, value_name = "I")]
    pub block: u64,
    /// Read the path from this tree file of the model instead of rebuilding the tree.
    #[arg(long, value_name = "FILE")]
    pub tree: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub artifact: ArtifactArgs,
}

pub(super) fn run(OpenArgs { block, tree, artifact: args }: OpenArgs) -> anyhow::Result<()> {
    if let Some(tree) = tree {
        if is_update_blob(&args.file)? {
            bail!("--tree reads the paths of model trees; {} is an update blob", args.file.display());
        }
        return run_from_tree_file(block, &tree, &args);
    }
    let (artifact, tree) = args.load_with_tree()?;
    let path = tree.open(block)?;
    let leaf = tree.leaves()[block as usize];
    ensure!(path.compute_root(leaf) == tree.root(), "internal error: the opening does not verify");
    opening(&args.file, artifact.kind(), tree.leaves().len() as u64, tree.root(), leaf, &path).print(args.output);
    Ok(())
}

/// The opening read from a tree file, the block decoded from the checkpoint alone.
fn run_from_tree_file(block: u64, tree: &Path, args: &ArtifactArgs) -> anyhow::Result<()> {
    let file = &args.file;
    let checkpoint = args.format.open_checkpoint(file)?;
    let tree_file = TreeFile::open(tree)?;
    ensure!(
        tree_file.leaves() == checkpoint.block_count(),
        "{} is the tree of a model of {} blocks, but {} has {}",
        tree.display(),
        tree_file.leaves(),
        file.display(),
        checkpoint.block_count()
    );
    if let Some(depth) = args.depth.filter(|d| *d != tree_file.depth()) {
        bail!("{} has depth {}, not the --depth {depth} asked for", tree.display(), tree_file.depth());
    }
    let stored = tree_file.leaf(block)?;
    let leaf = block_leaf(&checkpoint.block(block)?);
    ensure!(
        leaf == stored,
        "block {block} of {} is not the one {} was built from: the tree file is of another model",
        file.display(),
        tree.display()
    );
    let path = tree_file.open_path(block)?;
    opening(file, "model", tree_file.leaves(), tree_file.root(), leaf, &path)
        .add("tree_file", shown(tree))
        .print(args.output);
    Ok(())
}

/// What `open` prints: the block, its leaf and its path.
fn opening(file: &Path, kind: &str, blocks: u64, root: Fr, leaf: Fr, path: &MerklePath) -> Report {
    Report::new()
        .add("file", shown(file))
        .add("kind", kind)
        .add("block", path.index)
        .add("blocks", blocks)
        .add("depth", path.depth())
        .add("root", fr_to_hex(&root))
        .add("leaf", fr_to_hex(&leaf))
        .add("path_bits", path.bits().iter().map(|&b| if b { "1" } else { "0" }).collect::<String>())
        .add("siblings", path.siblings.iter().map(fr_to_hex).collect::<Vec<_>>())
}
