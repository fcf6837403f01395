//! `pogo export-verifier`: the Solidity verifier of a configuration's keys.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use pogo_circuits::config::CircuitConfig;
use pogo_verifier::evm::{export_verifier, Solc, CODE_SIZE_LIMIT};
use pogo_verifier::keys::config_dir;

use super::{shown, spinner, OutputArgs, Report};

/// Arguments of `pogo export-verifier`.
#[derive(Args, Debug)]
#[command(after_help = "Reads the keys `pogo setup` wrote to params/d{D}-s{S}/ and writes there:\n  \
Verifier.sol   the verifier snark-verifier generates for the verifying key (SHPLONK, Keccak transcript)\n  \
verifier.bin   its creation bytecode (hex), compiled with solc 0.8.19, optimizer off\n  \
verifier.json  the verifying key's hash, compiler, file hashes and deployed size\n\n\
The verifier's calldata is the 4 + S public inputs (32-byte words, in the circuit's order) followed by the \
proof; it returns nothing when the proof is valid and reverts otherwise. The round contract builds that \
calldata itself.\n\nThe compiler is --solc, else $POGO_SOLC, else `solc` on PATH; scripts/solc/install.sh \
installs the pinned solc-js and prints its path.\n\nExample:\n  \
pogo export-verifier --depth 20 --samples 32 --solc \"$(scripts/solc/install.sh)\"")]
pub struct ExportVerifierArgs {
    /// Tree depth D of the configuration.
    #[arg(long, value_name = "D")]
    pub depth: u32,
    /// Sampled blocks S per proof.
    #[arg(long, value_name = "S")]
    pub samples: usize,
    /// Where configuration folders live.
    #[arg(long, value_name = "DIR", default_value = "params", env = "POGO_PARAMS")]
    pub params_dir: PathBuf,
    /// A `solc`-compatible compiler, version 0.8.19.
    #[arg(long, value_name = "PATH")]
    pub solc: Option<PathBuf>,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub(super) fn run(args: ExportVerifierArgs) -> anyhow::Result<()> {
    let config = CircuitConfig::new(args.depth, args.samples)?;
    let dir = config_dir(&args.params_dir, &config.name());
    let solc = Solc::locate(args.solc.as_deref())?;
    let progress = spinner(format!("generating and compiling the verifier of {}", config.name()));
    let manifest =
        export_verifier(&dir, &solc).with_context(|| format!("exporting the verifier in {}", dir.display()))?;
    progress.finish_and_clear();
    if !manifest.fits_eip170 {
        eprintln!(
            "warning: the verifier deploys {} bytes of code, over EIP-170's {CODE_SIZE_LIMIT}: chains that enforce \
             the limit (Ethereum mainnet) refuse it; pogo's embedded chain and `anvil --disable-code-size-limit` accept it",
            manifest.deployed_bytes
        );
    }
    Report::new()
        .add("folder", shown(&dir))
        .add("config", manifest.config)
        .add("vk_sha256", manifest.vk_sha256)
        .add("public_inputs", manifest.num_instances)
        .add("solc", manifest.solc)
        .add("deployed_bytes", manifest.deployed_bytes)
        .add("fits_eip170", manifest.fits_eip170)
        .add("bytecode_sha256", manifest.bytecode_sha256)
        .print(args.output);
    Ok(())
}
