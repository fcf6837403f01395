//! `pogo commit`: the Merkle root of a model or update (DESIGN §2 Trees).

use std::path::PathBuf;

use clap::Args;
use pogo_circuits::encoding::block_count;
use pogo_circuits::field::fr_to_hex;

use super::{shown, Artifact, FormatArgs, OutputArgs, Report};

/// Arguments of `pogo commit`.
#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  pogo commit model.safetensors\n  pogo commit model.safetensors --depth 20 --json\n  pogo commit update.pogo"
)]
pub struct CommitArgs {
    /// A model (.safetensors: F32/F16/BF16, or a pogo fixed-point file) or an update blob.
    pub file: PathBuf,
    /// Tree depth D [default: the smallest D >= 1 with nb <= 2^D]
    #[arg(long, value_name = "D")]
    pub depth: Option<u32>,
    #[command(flatten)]
    pub format: FormatArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub(super) fn run(args: CommitArgs) -> anyhow::Result<()> {
    let artifact = Artifact::load(&args.file, &args.format)?;
    let tree = artifact.tree(args.depth)?;
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
