//! `pogo commit`: the Merkle root of a model or update (DESIGN §2 Trees).

use clap::Args;
use pogo_circuits::encoding::block_count;
use pogo_circuits::field::fr_to_hex;

use super::{check_expected_root, shown, Artifact, ArtifactArgs, Report};

/// Arguments of `pogo commit`.
#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  pogo commit model.safetensors\n  pogo commit model.safetensors --depth 20 --json\n  pogo commit update.pogo\n  \
pogo commit model.safetensors --expect-root 0x2f…   # exit non-zero unless the root is this"
)]
pub struct CommitArgs {
    #[command(flatten)]
    pub artifact: ArtifactArgs,
    /// Fail (exit non-zero, naming both roots) unless the root is this 0x… value.
    #[arg(long, value_name = "ROOT")]
    pub expect_root: Option<String>,
}

pub(super) fn run(args: CommitArgs) -> anyhow::Result<()> {
    let expected = args.expect_root;
    let args = args.artifact;
    let (artifact, tree) = args.load_with_tree()?;
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
    report.add("root", fr_to_hex(&tree.root())).print(args.output);
    Ok(())
}
