//! `pogo commit`: the Merkle root of a model or update (DESIGN §2 Trees).

use clap::Args;
use pogo_circuits::encoding::block_count;
use pogo_circuits::field::fr_to_hex;

use pogo_prover::commit::model_tree_preferring_gpu;

use super::{bar, check_expected_root, shown, Artifact, ArtifactArgs, Report};

/// Arguments of `pogo commit`.
#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  pogo commit model.safetensors\n  pogo commit model.safetensors --depth 20 --json\n  pogo commit update.pogo\n  \
pogo commit model.safetensors --expect-root 0x2f…   # exit non-zero unless the root is this\n  \
pogo commit model.safetensors --gpu                 # hash on the first CUDA GPU (a `--features gpu` build)"
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
}

pub(super) fn run(args: CommitArgs) -> anyhow::Result<()> {
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
