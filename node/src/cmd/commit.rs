//! `pogo commit`: the Merkle root of a model or update (DESIGN §2 Trees).

use clap::Args;
use pogo_circuits::encoding::block_count;
use pogo_circuits::field::fr_to_hex;

use pogo_prover::commit::{gpu_layer_hasher, model_tree_preferring_gpu};

use anyhow::Context;
use pogo_circuits::update::MAX_WEIGHTS;
use pogo_circuits::update_stream::UpdateStream;
use pogo_prover::stream::{checkpoint_tree, checkpoint_tree_on, update_stream_tree};

use super::{bar, check_expected_root, is_update_blob, shown, Artifact, ArtifactArgs, Report};

/// Arguments of `pogo commit`.
#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  pogo commit model.safetensors\n  pogo commit model.safetensors --depth 20 --json\n  pogo commit update.pogo\n  \
pogo commit model.safetensors --expect-root 0x2f…   # exit non-zero unless the root is this\n  \
pogo commit model.safetensors --gpu                 # hash on the first CUDA GPU (a `--features gpu` build)\n  \
pogo commit checkpoint/ --tree-out model.tree       # a sharded checkpoint; keep its tree for `pogo open --tree`\n\n\
Models are streamed: weights are decoded and hashed a chunk at a time, so memory stays flat however large \
the model, and so are update blobs; with --gpu each chunk's leaves and levels are hashed on the GPU (only \
the chunk moves). --in-memory reads the whole file first."
)]
pub struct CommitArgs {
    #[command(flatten)]
    pub artifact: ArtifactArgs,
    /// Fail (exit non-zero, naming both roots) unless the root is this 0x… value.
    #[arg(long, value_name = "ROOT")]
    pub expect_root: Option<String>,
    /// Hash a model's tree on the first CUDA GPU (needs a build with `--features gpu`, an
    /// NVIDIA driver and NVRTC). Where none is usable, says why and hashes on the CPU; the
    /// root is the same either way. Update trees are always hashed on the CPU.
    #[arg(long)]
    pub gpu: bool,
    /// Write every level of the tree to FILE (written whole or not at all), from which
    /// `pogo open --tree FILE` reads a model's paths without hashing anything again.
    #[arg(long, value_name = "FILE", conflicts_with = "in_memory")]
    pub tree_out: Option<std::path::PathBuf>,
    /// Read the whole model or update into memory before hashing (the path before
    /// streaming, kept for comparisons; a model needs about 8 bytes of memory per weight).
    #[arg(long)]
    pub in_memory: bool,
}

pub(super) fn run(args: CommitArgs) -> anyhow::Result<()> {
    if !args.in_memory {
        return run_streamed(args);
    }
    let expected = args.expect_root;
    let gpu = args.gpu;
    let args = args.artifact;
    let artifact = Artifact::load(&args.file, &args.format)?;
    let (tree, hasher) = match &artifact {
        Artifact::Model(model) if gpu => {
            let bar = bar(model.block_count(), "hashing model blocks");
            let (tree, used) = model_tree_preferring_gpu(model, args.depth, &bar)?;
            bar.0.finish_and_clear();
            match used {
                Ok(name) => (tree, format!("gpu ({name})")),
                Err(why) => {
                    eprintln!("note: not hashing on a GPU: {why}; hashed on the CPU instead");
                    (tree, "cpu".to_string())
                }
            }
        }
        _ => {
            if gpu {
                eprintln!("note: --gpu hashes model trees; update trees are hashed on the CPU");
            }
            (artifact.tree(args.depth)?, "cpu".to_string())
        }
    };
    check_expected_root(&tree.root(), expected.as_deref(), &shown(&args.file))?;
    let mut report = Report::new()
        .add("file", shown(&args.file))
        .add("kind", artifact.kind())
        .add("weights", artifact.weight_count())
        .add("blocks", block_count(artifact.weight_count()))
        .add("depth", tree.depth());
    if let Artifact::Model(model) = &artifact {
        report = report.add("fraction_bits", model.format().fraction_bits());
    }
    report.add("root", fr_to_hex(&tree.root())).add("hashed_on", hasher).print(args.output);
    Ok(())
}

/// A model's or update blob's root (and tree file), streamed in bounded memory.
fn run_streamed(args: CommitArgs) -> anyhow::Result<()> {
    let file = &args.artifact.file;
    let (depth, tree_out) = (args.artifact.depth, args.tree_out.as_deref());
    let committing = || format!("committing to {}", file.display());
    let mut hasher = "cpu".to_string();
    if args.gpu && is_update_blob(file)? {
        eprintln!("note: --gpu hashes model trees; update trees are hashed on the CPU");
    }
    let (kind, weights, blocks, fraction_bits, (root, depth)) = if is_update_blob(file)? {
        let update =
            UpdateStream::open(file, MAX_WEIGHTS).with_context(|| format!("reading update blob {}", file.display()))?;
        let bar = bar(update.block_count(), "hashing update blocks");
        let tree = update_stream_tree(&update, depth, tree_out, &bar).with_context(committing)?;
        bar.0.finish_and_clear();
        ("update", update.weight_count(), update.block_count(), None, tree)
    } else {
        let checkpoint = args.artifact.format.open_checkpoint(file)?;
        let gpu = args.gpu.then(gpu_layer_hasher);
        if let Some(Err(why)) = &gpu {
            eprintln!("note: not hashing on a GPU: {why}; hashed on the CPU instead");
        }
        let bar = bar(checkpoint.block_count(), "hashing model blocks");
        let tree = match gpu {
            Some(Ok(gpu)) => {
                let (root, depth, fell_back) =
                    checkpoint_tree_on(&checkpoint, depth, tree_out, gpu.as_ref(), &bar).with_context(committing)?;
                hasher = match fell_back {
                    None => gpu.name(),
                    Some(why) => {
                        eprintln!("note: the GPU failed ({why}); that part was hashed on the CPU");
                        format!("{} and cpu", gpu.name())
                    }
                };
                (root, depth)
            }
            _ => checkpoint_tree(&checkpoint, depth, tree_out, &bar).with_context(committing)?,
        };
        bar.0.finish_and_clear();
        let bits = Some(checkpoint.format().fraction_bits());
        ("model", checkpoint.weight_count(), checkpoint.block_count(), bits, tree)
    };
    check_expected_root(&root, args.expect_root.as_deref(), &shown(file))?;
    Report::new()
        .add("file", shown(file))
        .add("kind", kind)
        .add("weights", weights)
        .add("blocks", blocks)
        .add("depth", depth)
        .add_some("fraction_bits", fraction_bits)
        .add("root", fr_to_hex(&root))
        .add("hashed_on", hasher)
        .add_some("tree_file", tree_out.map(shown))
        .print(args.artifact.output);
    Ok(())
}
