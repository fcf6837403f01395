//! `pogo verify-proof`: checks a proof natively with the keys of its configuration.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use pogo_circuits::field::fr_to_hex;
use pogo_verifier::keys::{config_dir, ProofFile};

use super::{shown, OutputArgs, Report};

/// Arguments of `pogo verify-proof`.
#[derive(Args, Debug)]
#[command(after_help = "Exit status 0 means the proof is valid for the public inputs it carries; anything else is \
reported with the reason and exit status 1.\n\nExample:\n  pogo verify-proof round.proof")]
pub struct VerifyProofArgs {
    /// The proof file written by `pogo prove`.
    pub proof: PathBuf,
    /// Where configuration folders live.
    #[arg(long, value_name = "DIR", default_value = "params", env = "POGO_PARAMS")]
    pub params_dir: PathBuf,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub(super) fn run(args: VerifyProofArgs) -> anyhow::Result<()> {
    let file = ProofFile::load(&args.proof)?;
    let dir = config_dir(&args.params_dir, &file.config);
    let inputs = file.verify_with(&dir).with_context(|| format!("verifying {}", args.proof.display()))?;
    Report::new()
        .add("proof", shown(&args.proof))
        .add("valid", true)
        .add("config", file.config)
        .add("old_root", fr_to_hex(&inputs.old_root))
        .add("new_root", fr_to_hex(&inputs.new_root))
        .add("update_root", fr_to_hex(&inputs.update_root))
        .add("blocks", inputs.blocks)
        .add("indices", inputs.indices.iter().map(u64::to_string).collect::<Vec<_>>().join(","))
        .print(args.output);
    Ok(())
}
