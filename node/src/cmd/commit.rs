//! `pogo commit`: the Merkle root of a model or update (DESIGN §2 Trees).

use clap::Args;
use pogo_circuits::encoding::block_count;
use pogo_circuits::field::fr_to_hex;

use super::{shown, Artifact, ArtifactArgs, Report};

/// Arguments of `pogo commit`.
#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  pogo commit model.safetensors\n  pogo commit model.safetensors --depth 20 --json\n  pogo commit update.pogo"
)]
pub struct CommitArgs {
    #[command(flatten)]
    pub artifact: ArtifactArgs,
}

pub(super) fn run(args: CommitArgs) -> anyhow::Result<()> {
    let args = args.artifact;
    let (artifact, tree) = args.load_with_tree()?;
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
