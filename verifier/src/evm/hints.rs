//! Inverse hints for the generated verifier (see [`super::solidity`]): the field inverses
//! it would compute with MODEXP, appended after the proof so that it only checks them.
//!
//! They are found by running the verifier itself, without hints, in an in-process EVM and
//! recording what each MODEXP call returns, in order: no second implementation of the
//! verifier's arithmetic to keep in step with the generator, and a proof the verifier
//! rejects is reported before any transaction is sent.

use revm::context::TxEnv;
use revm::database::{CacheDB, EmptyDB};
use revm::interpreter::interpreter::EthInterpreter;
use revm::interpreter::{CallInputs, CallOutcome};
use revm::primitives::{Address, Bytes, TxKind, U256};
use revm::state::AccountInfo;
use revm::{Context, InspectEvm, Inspector, MainBuilder, MainContext};

use super::harness::{EvmError, Fork};
use super::solidity::calldata;
use pogo_circuits::field::Fr;

/// The MODEXP precompile's address.
const MODEXP: Address = Address::with_last_byte(5);

/// Records the output of every successful MODEXP call, in call order.
#[derive(Debug, Default)]
struct ModexpOutputs(Vec<Bytes>);

impl<CTX> Inspector<CTX, EthInterpreter> for ModexpOutputs {
    fn call_end(&mut self, _context: &mut CTX, inputs: &CallInputs, outcome: &mut CallOutcome) {
        if inputs.bytecode_address == MODEXP && outcome.result.is_ok() {
            self.0.push(outcome.result.output.clone());
        }
    }
}

/// The inverse hints for a verifier call: runs `runtime` (the verifier's deployed code) on
/// `calldata` (public inputs and proof, no hints) and returns each MODEXP result as a
/// 32-byte word, concatenated, ready to append. Fails when the verifier rejects the call.
pub fn inverse_hints(runtime: &[u8], calldata: &[u8]) -> Result<Vec<u8>, EvmError> {
    if runtime.is_empty() {
        return Err(EvmError::Invalid("no verifier code to find inverse hints with".into()));
    }
    let verifier = Address::repeat_byte(0x5e);
    let code = revm::bytecode::Bytecode::new_raw(Bytes::copy_from_slice(runtime));
    let mut db = CacheDB::new(EmptyDB::default());
    db.insert_account_info(
        verifier,
        AccountInfo { balance: U256::ZERO, nonce: 1, code_hash: code.hash_slow(), code: Some(code) },
    );
    let fork = Fork::Osaka;
    let mut evm = Context::mainnet()
        .with_db(db)
        .modify_cfg_chained(|cfg| cfg.spec = fork.spec())
        .modify_block_chained(|block| block.basefee = 0)
        .build_mainnet_with_inspector(ModexpOutputs::default());
    let tx = TxEnv {
        caller: Address::repeat_byte(0x01),
        gas_limit: fork.max_tx_gas(),
        gas_price: 0,
        kind: TxKind::Call(verifier),
        data: Bytes::copy_from_slice(calldata),
        ..Default::default()
    };
    let result = evm.inspect_one_tx(tx).map_err(|e| EvmError::Invalid(format!("{e:?}")))?;
    super::harness::Evm::outcome(result)?;
    let mut hints = Vec::with_capacity(32 * evm.inspector.0.len());
    for output in &evm.inspector.0 {
        if output.len() != 32 {
            return Err(EvmError::Invalid(format!("a MODEXP call returned {} bytes, not 32", output.len())));
        }
        hints.extend_from_slice(output);
    }
    Ok(hints)
}

/// What to submit on chain for a proof: `proof` followed by its inverse hints for the
/// verifier `runtime` and the public inputs `instances` (the round contract forwards the
/// proof bytes after the inputs, so the hints ride along unchanged).
pub fn proof_with_hints(runtime: &[u8], instances: &[Fr], proof: &[u8]) -> Result<Vec<u8>, EvmError> {
    let hints = inverse_hints(runtime, &calldata(instances, proof))?;
    let mut out = proof.to_vec();
    out.extend_from_slice(&hints);
    Ok(out)
}
