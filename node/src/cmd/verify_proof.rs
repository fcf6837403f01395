//! `pogo verify-proof`: checks a proof natively with the keys of its configuration.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use pogo_circuits::field::fr_to_hex;
use pogo_circuits::files::write_atomic;
use pogo_verifier::evm::{calldata, load_verifier, proof_with_hints, Address, Evm, Fork, U256};
use pogo_verifier::keys::{config_dir, ProofFile};

use super::{shown, OutputArgs, Report};

/// Arguments of `pogo verify-proof`.
#[derive(Args, Debug)]
#[command(after_help = "Exit status 0 means the proof is valid for the public inputs it carries; anything else is \
reported with the reason and exit status 1.\n\nWith --evm the proof is also checked the way a contract checks it: the \
verifier `pogo export-verifier` wrote is deployed in an in-process EVM (revm) and called with the public inputs \
and the proof, then the inverse hints (the field inverses the verifier would compute with MODEXP, appended after \
the proof and checked with one multiplication each: what pogo's miners send); the gas of that call is reported under \
Prague and Osaka, with hints and without.\n\nExamples:\n  pogo verify-proof round.proof\n  \
pogo verify-proof round.proof --evm\n  pogo verify-proof round.proof --evm --calldata-out round.calldata")]
pub struct VerifyProofArgs {
    /// The proof file written by `pogo prove`.
    pub proof: PathBuf,
    /// Where configuration folders live.
    #[arg(long, value_name = "DIR", default_value = "params", env = "POGO_PARAMS")]
    pub params_dir: PathBuf,
    /// Also verify in an in-process EVM with the exported Solidity verifier.
    #[arg(long)]
    pub evm: bool,
    /// With --evm: write the verifier's calldata (public inputs, proof, inverse hints; `0x`
    /// hex) to FILE, for calling the verifier from another client.
    #[arg(long, value_name = "FILE", requires = "evm")]
    pub calldata_out: Option<PathBuf>,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub(super) fn run(args: VerifyProofArgs) -> anyhow::Result<()> {
    let file = ProofFile::load(&args.proof)?;
    let dir = config_dir(&args.params_dir, &file.config);
    let inputs = file.verify_with(&dir).with_context(|| format!("verifying {}", args.proof.display()))?;
    let mut report = Report::new();
    if args.evm {
        let (manifest, bytecode) = load_verifier(&dir).with_context(|| {
            format!("loading the EVM verifier of {} (run `pogo export-verifier` first)", file.config)
        })?;
        let (_, proof) = file.decode()?;
        let instances = inputs.to_instances();
        let (mut evm, at) = Evm::with_contract(Fork::Prague, &bytecode).context("deploying the verifier")?;
        let hinted_proof = proof_with_hints(&evm.code(at), &instances, &proof)
            .map_err(|e| anyhow::anyhow!("the EVM verifier rejects the proof ({e})"))?;
        let hinted = calldata(&instances, &hinted_proof);
        let plain = calldata(&instances, &proof);
        // Gas under both forks in use (Osaka, Anvil's default and Ethereum's since Fusaka,
        // prices MODEXP higher), with the inverse hints pogo's miners send and without.
        let mut gas = Vec::new();
        for fork in [Fork::Prague, Fork::Osaka] {
            for data in [&hinted, &plain] {
                let (mut evm, at) = Evm::with_contract(fork, &bytecode).context("deploying the verifier")?;
                let receipt = evm
                    .call(Address::repeat_byte(0x01), at, data.clone(), U256::ZERO)
                    .map_err(|e| anyhow::anyhow!("the EVM verifier rejects the proof under {} ({e})", fork.name()))?;
                gas.push(receipt.gas_used);
            }
        }
        if let Some(path) = &args.calldata_out {
            write_atomic(path, format!("0x{}\n", hex::encode(&hinted)).as_bytes())
                .with_context(|| format!("writing {}", path.display()))?;
            report = report.add("calldata_out", shown(path));
        }
        report = report
            .add("evm_gas_prague", gas[0])
            .add("evm_gas_osaka", gas[2])
            .add("evm_gas_prague_without_hints", gas[1])
            .add("evm_gas_osaka_without_hints", gas[3])
            .add("evm_verifier_bytes", manifest.deployed_bytes);
    }
    report
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
