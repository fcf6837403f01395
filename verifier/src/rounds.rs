//! The PoGO round contract (`verifier/contracts/PogoRounds.sol`, DESIGN §3): its compiled
//! artifacts, Rust bindings generated from the ABI, and typed calls through any [`Evm`].
//!
//! The contract is deployed as four parts, because no single one would fit EIP-170: the
//! Poseidon constants in data contracts, the fraud-proof checker `PogoFraud` reading them,
//! `PogoRoundsExtension` (fraud proofs and reads) and `PogoRounds` itself, which runs every
//! function it does not define in the extension by DELEGATECALL on its own storage. Callers
//! see one contract, at `PogoRounds`' address, with the union of both ABIs (the binding
//! below).
//!
//! The artifacts (`contracts/build/*.json`: ABI, creation bytecode, compiler and source
//! hash) are committed so that nodes need no compiler; a test recompiles the sources with
//! the pinned solc and fails if an artifact is stale (`POGO_BLESS=1` rewrites them).

use alloy_sol_types::{SolCall, SolInterface, SolValue};

use crate::evm::{Address, Evm, EvmError, Receipt, U256};

/// Bindings generated from the ABI (its events take more arguments than clippy likes).
#[allow(clippy::too_many_arguments)]
mod bindings {
    alloy_sol_types::sol!(
        #[sol(all_derives)]
        PogoRounds,
        "contracts/build/PogoRounds.json"
    );
}
pub use bindings::*;

/// Only for its creation code: its ABI is part of [`PogoRounds`]'.
#[allow(clippy::too_many_arguments)]
mod extension {
    alloy_sol_types::sol!(PogoRoundsExtension, "contracts/build/PogoRoundsExtension.json");
}
use extension::PogoRoundsExtension;

pub use PogoRoundsState::{Attestation, Candidate, EvalSet, Round, TaskParams};

/// The round contract's Solidity source.
pub const SOURCE: &str = include_str!("../contracts/PogoRounds.sol");
/// The fraud-proof checker's source (imported by the round contract).
pub const FRAUD_SOURCE: &str = include_str!("../contracts/PogoFraud.sol");
/// The source units, as compiled together: (unit name, source).
pub const SOURCES: [(&str, &str); 2] = [(SOURCE_UNIT, SOURCE), ("PogoFraud.sol", FRAUD_SOURCE)];
/// The committed build artifacts (JSON), by contract: the round contract's ABI there is the
/// union of its own and its extension's.
pub const ARTIFACTS: [(&str, &str); 3] = [
    ("PogoRounds", include_str!("../contracts/build/PogoRounds.json")),
    ("PogoRoundsExtension", include_str!("../contracts/build/PogoRoundsExtension.json")),
    ("PogoFraud", include_str!("../contracts/build/PogoFraud.json")),
];
/// Source unit name the artifact was compiled under (it enters the bytecode's metadata).
pub const SOURCE_UNIT: &str = "PogoRounds.sol";
/// Optimizer runs the artifact was compiled with.
pub const OPTIMIZER_RUNS: u32 = 200;
/// Whether it was compiled through the IR pipeline (the contract fits EIP-170 only so).
pub const VIA_IR: bool = true;

/// `Verdict` as the ABI carries it (`uint8`).
pub mod verdict {
    /// No verdict: the candidate was not revealed (or is the attester's own).
    pub const NONE: u8 = 0;
    /// The new model's loss fell by at least the margin.
    pub const POSITIVE: u8 = 1;
    /// It did not, or the blob was unavailable or did not rebuild to the committed root.
    pub const NEGATIVE: u8 = 2;
}

/// A call to the round contract failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RoundsError {
    /// The contract refused with one of its errors (decoded).
    #[error("the round contract refused: {0}")]
    Refused(String),
    /// Any other failure (halt, revert without a known error, invalid transaction).
    #[error(transparent)]
    Evm(EvmError),
    /// The return data did not decode.
    #[error("cannot decode the round contract's answer: {0}")]
    Decode(String),
}

impl RoundsError {
    /// The contract's error name (`"TooLate"`, `"ProofRejected"`, ...), when it refused.
    pub fn contract_error(&self) -> Option<&str> {
        match self {
            RoundsError::Refused(text) => Some(error_name(text)),
            _ => None,
        }
    }
}

/// `Outcome` of a candidate as the ABI carries it (`uint8`).
pub mod outcome {
    /// The round is not finalized.
    pub const PENDING: u8 = 0;
    /// Won the round: bond, reward less the verifiers' fee.
    pub const WON: u8 = 1;
    /// Bond returned: eligible but beaten, or not judged for no fault of the miner.
    pub const RETURNED: u8 = 2;
    /// Bond slashed: unrevealed, unproven in time, or judged bad by the quorum.
    pub const SLASHED: u8 = 3;
}

/// The hash a miner commits to, exactly as the contract's `commitmentOf` computes it:
/// keccak-256 of the ABI encoding of (contract, task, round, miner, new root, update root,
/// blob hash, salt).
#[allow(clippy::too_many_arguments)]
pub fn commitment(
    contract: Address,
    task: U256,
    round: u64,
    miner: Address,
    new_root: U256,
    update_root: U256,
    blob_hash: crate::evm::B256,
    salt: crate::evm::B256,
) -> crate::evm::B256 {
    use alloy_sol_types::SolValue;
    crate::evm::keccak256((contract, task, round, miner, new_root, update_root, blob_hash, salt).abi_encode())
}

/// The hash a verifier commits to with `attest`, exactly as the contract's
/// `attestationCommitmentOf` computes it: keccak-256 of the contract's address as a word,
/// then the ABI encoding of (task, round, verifier, old loss, verdicts, new losses, salt). Computed here, not asked
/// of a node, so the verdicts stay private until the reveal.
#[allow(clippy::too_many_arguments)]
pub fn attestation_commitment(
    contract: Address,
    task: U256,
    round: u64,
    verifier: Address,
    loss_old: u64,
    verdicts: &[u8],
    loss_new: &[u64],
    salt: crate::evm::B256,
) -> crate::evm::B256 {
    let call = PogoRounds::attestationCommitmentOfCall {
        task,
        round,
        verifier,
        lossOld: loss_old,
        verdicts: verdicts.to_vec(),
        lossNew: loss_new.to_vec(),
        salt,
    };
    // The call's arguments are `abi.encode(task, round, ...)`; the contract's address leads.
    let mut preimage = contract.into_word().to_vec();
    preimage.extend_from_slice(&call.abi_encode()[4..]);
    crate::evm::keccak256(preimage)
}

/// One round's committee draw, exactly as the contract's `wonSeat` makes it: seat `j` is
/// won by a verifier holding `stake` when `keccak256(abi.encode(contract, task, round,
/// seed1, verifier, j)) mod total < stake`, with `seed1` the round's phase-1 seed and
/// `total` the stake that weighed when the round opened (`Round.committeeStake`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitteeDraw {
    /// The round contract.
    pub contract: Address,
    /// The task.
    pub task: U256,
    /// The round.
    pub round: u64,
    /// The round's phase-1 seed.
    pub seed1: crate::evm::B256,
    /// The stake every seat is drawn from.
    pub total: U256,
    /// Seats C.
    pub size: u16,
}

impl CommitteeDraw {
    /// Whether `verifier`, holding `stake`, wins seat `seat` (never when `total` is zero).
    pub fn wins(&self, verifier: Address, stake: U256, seat: u16) -> bool {
        if self.total.is_zero() {
            return false;
        }
        let preimage = (self.contract, self.task, self.round, self.seed1, verifier, seat).abi_encode();
        U256::from_be_bytes(crate::evm::keccak256(preimage).0) % self.total < stake
    }

    /// Every seat `verifier` wins, in increasing order: the list `attest` takes. Expected
    /// `size * stake / total` seats.
    pub fn seats(&self, verifier: Address, stake: U256) -> Vec<u16> {
        (0..self.size).filter(|&j| self.wins(verifier, stake, j)).collect()
    }
}

/// What each `BadParams(why)` code of the contract means (code `k` is entry `k - 1`): the
/// contract carries numbers, not strings, to fit EIP-170.
pub const BAD_PARAMS: [&str; 16] = [
    "depth must be in 1..=32",
    "nb must be in 1..=2^depth",
    "samples must be positive",
    "verifier has no code",
    "verifierGas must be positive",
    "commit, reveal and challenge windows must be positive",
    "need 2 < proofWindow < attestWindow - 1 (room for the held-out reveal)",
    "commit and reveal windows, and attestWindow + challengeWindow, must be at most 8191 blocks (256 without EIP-2935)",
    "maxCandidates must be in 1..=16",
    "verifierFeeBps must be at most 10000, fraudSlashBps in 1..=10000",
    "quorum must be positive",
    "minVerifierStake must be positive",
    "a set of held-out batches needs a root and at least one batch",
    "stake below minVerifierStake",
    "no such round",
    "committee must be at most 64 seats, and with a committee the quorum at most its seats",
];

/// The rule `BadParams(why)` names.
pub fn bad_params(why: u8) -> String {
    BAD_PARAMS.get(usize::from(why).wrapping_sub(1)).map_or_else(|| format!("rule {why}"), |m| m.to_string())
}

/// The error's name in a decoded revert (`"LateProof(3)"` → `"LateProof"`).
pub fn error_name(decoded: &str) -> &str {
    decoded.split('(').next().unwrap_or(decoded)
}

fn describe(error: &PogoRounds::PogoRoundsErrors) -> String {
    use PogoRounds::PogoRoundsErrors as E;
    match error {
        E::BadParams(e) => format!("BadParams({})", bad_params(e.why)),
        E::NotFieldElement(e) => format!("NotFieldElement({})", e.value),
        E::WrongBond(e) => format!("WrongBond(expected {} wei, got {})", e.expected, e.got),
        E::TooEarly(e) => format!("TooEarly(block {}, allowed from {})", e.now_, e.from),
        E::TooLate(e) => format!("TooLate(block {}, deadline {})", e.now_, e.deadline),
        E::PhaseNotReady(e) => format!("PhaseNotReady(phase {})", e.phase),
        E::RoundFull(e) => format!("RoundFull(cap {})", e.cap),
        E::NoSuchCandidate(e) => format!("NoSuchCandidate({})", e.candidate),
        E::NotYourCandidate(e) => format!("NotYourCandidate({})", e.candidate),
        E::AlreadyRevealed(e) => format!("AlreadyRevealed({})", e.candidate),
        E::NotRevealed(e) => format!("NotRevealed({})", e.candidate),
        E::UpdateReused(e) => format!("UpdateReused(update root {:#x})", e.updateRoot),
        E::WrongLength(e) => format!("WrongLength(expected {}, got {})", e.expected, e.got),
        E::WrongRound(e) => format!("WrongRound(the commit would go to round {}, not {})", e.expected, e.got),
        E::AttestersFull(e) => format!("AttestersFull(a larger stake than {} wei is needed)", e.smallestStake),
        E::BadVerdict(e) => format!("BadVerdict(candidate {})", e.candidate),
        E::VerdictContradictsLosses(e) => format!("VerdictContradictsLosses(candidate {})", e.candidate),
        E::StakeTooNew(e) => format!("StakeTooNew(joined at block {}, round opened at {})", e.since, e.openBlock),
        E::NotVerifier(e) => format!("NotVerifier({})", e.who),
        E::AlreadyAttested(e) => format!("AlreadyAttested({})", e.who),
        E::NotEnoughGas(e) => format!("NotEnoughGas(needs {})", e.needed),
        E::UnknownTask(e) => format!("UnknownTask({})", e.task),
        E::RoundOpen(e) => format!("RoundOpen(task {})", e.task),
        E::NoOpenRound(e) => format!("NoOpenRound(task {})", e.task),
        E::NoEvalData(_) => "NoEvalData(no held-out batch revealed for this round, or none left to draw)".into(),
        E::WrongEvalData(_) => "WrongEvalData(not the drawn batch with its Merkle path)".into(),
        E::AlreadyFraud(e) => format!("AlreadyFraud(candidate {} is already proven fraudulent)", e.candidate),
        E::DirectCall(_) => "DirectCall(the extension runs only through PogoRounds)".into(),
        E::NotAttested(e) => format!("NotAttested({} sent no attestation this round)", e.who),
        E::NotOnCommittee(e) => format!("NotOnCommittee({} won no seat of this round's committee)", e.who),
        E::BadSeat(e) => format!("BadSeat(seat {} of the list: out of range, out of order or not won)", e.position),
        E::NotProven(e) => format!("NotProven(candidate {} has no accepted proof: it is slashed anyway)", e.candidate),
        E::AttestationUnopened(e) => {
            format!(
                "AttestationUnopened(round {}: the stake stays until finalize slashes the unopened attestation)",
                e.round
            )
        }
        other => format!("{other:?}").split(['(', ' ', '{']).next().unwrap_or("unknown").to_string(),
    }
}

/// The contract error in `data` (revert data), as `Name(details)`, if it is one of ours
/// (the round contract's, or the fraud-proof checker's, which a refused claim passes on).
pub fn decode_revert(data: &[u8]) -> Option<String> {
    PogoRounds::PogoRoundsErrors::abi_decode(data)
        .ok()
        .map(|e| describe(&e))
        .or_else(|| crate::fraud::decode_revert(data))
}

fn decode_failure(error: EvmError) -> RoundsError {
    if let EvmError::Reverted { data, .. } = &error {
        if let Some(text) = decode_revert(data) {
            return RoundsError::Refused(text);
        }
    }
    RoundsError::Evm(error)
}

/// The creation bytecode of `PogoRounds` (from the committed artifact) delegating to
/// `extension`.
pub fn bytecode(extension: Address) -> Vec<u8> {
    use alloy_sol_types::SolValue;
    let mut code = PogoRounds::BYTECODE.to_vec();
    code.extend(extension.abi_encode());
    code
}

/// The creation bytecode of `PogoRoundsExtension` sending fraud claims to `fraud`.
pub fn extension_bytecode(fraud: Address) -> Vec<u8> {
    use alloy_sol_types::SolValue;
    let mut code = PogoRoundsExtension::BYTECODE.to_vec();
    code.extend(fraud.abi_encode());
    code
}

/// The artifacts (name, JSON) the pinned compiler's output `compiled` makes: per contract its
/// ABI and creation bytecode, with the compiler settings and a hash of both sources; the
/// round contract's ABI also lists its extension's functions (callers reach them at its
/// address).
pub fn artifacts_from(
    compiled: &std::collections::BTreeMap<String, crate::evm::Compiled>,
) -> Result<Vec<(String, serde_json::Value)>, String> {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for (_, source) in SOURCES {
        hasher.update(Sha256::digest(source.as_bytes()));
    }
    let sources_sha256 = hex::encode(hasher.finalize());
    let abi_of = |name: &str| -> Result<Vec<serde_json::Value>, String> {
        let compiled = compiled.get(name).ok_or_else(|| format!("the compiler made no {name}"))?;
        serde_json::from_str::<Vec<serde_json::Value>>(&compiled.abi).map_err(|e| format!("{name}'s ABI: {e}"))
    };
    let mut out = Vec::new();
    for (name, _) in ARTIFACTS {
        let mut abi = abi_of(name)?;
        if name == "PogoRounds" {
            for entry in abi_of("PogoRoundsExtension")? {
                if entry["type"] != "constructor" && !abi.contains(&entry) {
                    abi.push(entry);
                }
            }
        }
        out.push((
            name.to_string(),
            serde_json::json!({
                "contract": name,
                "compiler": format!("solc {}", crate::evm::SOLC_VERSION),
                "optimizer_runs": OPTIMIZER_RUNS,
                "via_ir": VIA_IR,
                "sources_sha256": sources_sha256,
                "abi": abi,
                "bytecode": format!("0x{}", hex::encode(&compiled[name].bytecode)),
            }),
        ));
    }
    Ok(out)
}

/// Every address of a deployed round contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployed {
    /// `PogoRounds`: the address everyone calls.
    pub rounds: Address,
    /// `PogoRoundsExtension`.
    pub extension: Address,
    /// `PogoFraud`.
    pub fraud: Address,
    /// The data contracts holding Poseidon's constants.
    pub data: Vec<Address>,
}

/// Deploys the round contract's parts in order through `create` (given what it deploys, in
/// words, and the creation code; it returns the new contract's address).
pub fn deploy_contracts<E>(mut create: impl FnMut(&str, Vec<u8>) -> Result<Address, E>) -> Result<Deployed, E> {
    let chunks = crate::fraud::data_contracts();
    let count = chunks.len();
    let mut data = Vec::with_capacity(count);
    for (i, code) in chunks.into_iter().enumerate() {
        data.push(create(&format!("Poseidon constants ({}/{count})", i + 1), code)?);
    }
    let fraud = create("fraud-proof checker PogoFraud", crate::fraud::bytecode(&data))?;
    let extension = create("PogoRoundsExtension", extension_bytecode(fraud))?;
    let rounds = create("round contract PogoRounds", bytecode(extension))?;
    Ok(Deployed { rounds, extension, fraud, data })
}

/// A deployed round contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoundsContract {
    /// Its address.
    pub address: Address,
}

impl RoundsContract {
    /// Deploys the committed artifacts from `from` (see [`deploy_contracts`]); the receipt
    /// is `PogoRounds`' own, with `gas_used` summed over every part.
    pub fn deploy(evm: &mut Evm, from: Address) -> Result<(Self, Receipt), RoundsError> {
        let mut gas = 0;
        let mut last = None;
        let deployed = deploy_contracts(|_, code| {
            let (address, receipt) = evm.deploy(from, code, U256::ZERO).map_err(decode_failure)?;
            gas += receipt.gas_used;
            last = Some(receipt);
            Ok::<_, RoundsError>(address)
        })?;
        let mut receipt = last.expect("deploy_contracts deploys");
        receipt.gas_used = gas;
        Ok((RoundsContract { address: deployed.rounds }, receipt))
    }

    /// Sends `call` from `from` with `value` wei; decodes the return value.
    pub fn send<C: SolCall>(
        &self,
        evm: &mut Evm,
        from: Address,
        call: C,
        value: U256,
    ) -> Result<(C::Return, Receipt), RoundsError> {
        let receipt = evm.call(from, self.address, call.abi_encode(), value).map_err(decode_failure)?;
        let ret = C::abi_decode_returns(&receipt.output).map_err(|e| RoundsError::Decode(e.to_string()))?;
        Ok((ret, receipt))
    }

    /// Runs `call` without committing (reads).
    pub fn read<C: SolCall>(&self, evm: &mut Evm, call: C) -> Result<C::Return, RoundsError> {
        let receipt = evm.view(Address::ZERO, self.address, call.abi_encode()).map_err(decode_failure)?;
        C::abi_decode_returns(&receipt.output).map_err(|e| RoundsError::Decode(e.to_string()))
    }
}

impl crate::fraud::FraudClaim {
    /// The claim as the round contract's `proveFraud` takes it.
    pub fn to_call(&self, task: U256, index: u16) -> PogoRounds::proveFraudCall {
        let c = self.to_abi();
        PogoRounds::proveFraudCall {
            task,
            index,
            claim: PogoRounds::FraudClaim {
                blockIndex: c.blockIndex,
                oldBlock: c.oldBlock,
                qLo: c.qLo,
                qHi: c.qHi,
                scale: c.scale,
                updateLeaf: c.updateLeaf,
                newLeaf: c.newLeaf,
                oldPath: c.oldPath,
                updatePath: c.updatePath,
                newPath: c.newPath,
            },
        }
    }
}
