//! Challenging a candidate (the fraud-proof issue): rebuild it from the old model and its
//! update blob and, where the committed new model differs, find the first wrong block in
//! the leaf list its miner serves, build the one-block fraud claim and check it natively
//! exactly as `PogoFraud.check` will; then file it in the challenge window. Used by the
//! verifier role (automatically, for every mismatch its rebuild finds) and by
//! `pogo challenge`.
//!
//! A candidate whose blob, or whose leaf list, is not available cannot be proven wrong on
//! chain: its verifiers attest negative instead (`docs/SOUNDNESS.md`, fraud proofs).

use std::time::Instant;

use alloy::primitives::{B256, U256};
use alloy::sol_types::{SolEvent, SolValue};
use anyhow::Context;
use pogo_circuits::encoding::{UpdateBlock, BLOCK_WEIGHTS};
use pogo_circuits::model::Model;
use pogo_prover::commit::{model_tree, tree_from_leaves, update_tree};
use pogo_verifier::evm::{fr_to_u256, u256_to_fr};
use pogo_verifier::fraud::{self, ClaimAbi, FraudClaim, FraudKind};
use pogo_verifier::rounds::{Candidate, PogoRounds};

use super::{since, Event, Node, Phase, Step};
use crate::keystore::Wallet;

/// A fraud claim ready to file, checked natively.
#[derive(Debug, Clone)]
pub struct Fraud {
    /// The claim.
    pub claim: FraudClaim,
    /// What it shows.
    pub kind: FraudKind,
}

impl Fraud {
    /// The claim ABI-encoded (to keep in a state file until it is filed).
    pub fn encode(&self) -> Vec<u8> {
        self.claim.to_abi().abi_encode()
    }

    /// A claim kept by [`Fraud::encode`], as the contract's `proveFraud` takes it.
    pub fn decode_call(bytes: &[u8], task: U256, index: u16) -> anyhow::Result<PogoRounds::proveFraudCall> {
        let c = ClaimAbi::abi_decode(bytes).context("a kept fraud claim does not decode")?;
        Ok(PogoRounds::proveFraudCall {
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
        })
    }
}

/// What a rebuild of one candidate found.
pub enum Examined {
    /// Old model + update gives the committed new model.
    Honest(Model),
    /// A block is wrong, and here is its proof.
    Fraud(Box<Fraud>),
    /// Wrong, or not checkable, but not provable on chain (the blob or the leaf list is
    /// missing or not the committed one): a negative attestation, and why.
    Unprovable(String),
}

impl Node {
    /// Rebuilds candidate `c` from `old` (root `old_root`): fetches its blob, checks its
    /// update root, applies it and compares the new root; on a mismatch fetches the leaf
    /// list its miner serves and builds the fraud claim for the first wrong block.
    pub fn examine(&self, old: &Model, old_root: U256, c: &Candidate) -> anyhow::Result<Examined> {
        let update = match self.fetch_update(old_root, c.blobHash, c.updateRoot) {
            Ok(update) => update,
            Err(e) => return Ok(Examined::Unprovable(format!("{e:#}"))),
        };
        let depth = self.depth();
        let applied = update.apply(old);
        let honest = match &applied {
            Ok(new) => {
                let tree = model_tree(new, Some(depth), &())?;
                if fr_to_u256(&tree.root()) == c.newRoot {
                    self.store.put_model(c.newRoot, new)?;
                    return Ok(Examined::Honest(applied.expect("matched Ok")));
                }
                Some(tree)
            }
            Err(e) if !matches!(e, pogo_circuits::update::UpdateError::Overflow { .. }) => {
                return Ok(Examined::Unprovable(format!("the update does not apply to the old model: {e}")));
            }
            Err(_) => None,
        };
        let mismatch = match &applied {
            Ok(_) => "old model + update does not give the committed new root".to_string(),
            Err(e) => format!("the update does not apply to the old model: {e}"),
        };
        // The candidate's own tree, from the leaves its miner serves (checked to give the
        // committed root: any other list proves nothing).
        let limit = (fraud::LEAF_BYTES as u64 * (1u64 << depth)).min(crate::store::MAX_BLOB_BYTES);
        let leaves = match self.store.fetch_leaves(c.newRoot, &self.sources, limit, |bytes| {
            let leaves = fraud::leaves_from_bytes(bytes, depth).map_err(|e| e.to_string())?;
            let root = tree_from_leaves(leaves, Some(depth)).map_err(|e| e.to_string())?.root();
            if fr_to_u256(&root) == c.newRoot {
                Ok(())
            } else {
                Err("these leaves do not give the committed new root".into())
            }
        }) {
            Ok(bytes) => fraud::leaves_from_bytes(&bytes, depth).expect("checked when fetched"),
            Err(e) => {
                return Ok(Examined::Unprovable(format!("{mismatch}; no fraud proof: {e}")));
            }
        };
        let claimed = tree_from_leaves(leaves, Some(depth))?;
        let Some(b) = fraud::suspect_block(old, &update, honest.as_ref().map(|t| t.leaves()), claimed.leaves()) else {
            return Ok(Examined::Unprovable(format!("{mismatch}, yet no block differs")));
        };
        let nb = self.params.nb;
        let (old_block, update_block) = if b < nb {
            (old.block(b), update.blocks()[b as usize].clone())
        } else {
            ([0u32; BLOCK_WEIGHTS], UpdateBlock::zero())
        };
        let old_tree = model_tree(old, Some(depth), &())?;
        let update_tree = update_tree(&update, Some(depth), &())?;
        let claim = FraudClaim::build(b, &old_block, &update_block, &old_tree, &update_tree, &claimed, nb)?;
        let root = |x: U256| u256_to_fr(x).context("a committed root is not a field element");
        match fraud::check(root(old_root)?, root(c.newRoot)?, root(c.updateRoot)?, nb, depth, &claim) {
            Ok(kind) => Ok(Examined::Fraud(Box::new(Fraud { claim, kind }))),
            Err(e) => Ok(Examined::Unprovable(format!("{mismatch}; the claim for block {b} shows nothing: {e}"))),
        }
    }

    /// Fetches blob `hash`, checks it was made against the model with root `old_root` when
    /// it says, and that its update root is the committed `update_root`.
    pub fn fetch_update(
        &self,
        old_root: U256,
        hash: B256,
        update_root: U256,
    ) -> anyhow::Result<pogo_circuits::update::Update> {
        let blob = self.store.fetch_blob(hash, &self.sources)?;
        let update = pogo_circuits::update::Update::from_blob(&blob).context("the blob is not an update")?;
        if update.base().is_some_and(|b| b.depth == self.depth()) {
            // A blob made against another model: say so before rebuilding anything.
            let old_root = u256_to_fr(old_root).context("the old root is not a field element")?;
            update.check_base(&old_root).context("the blob is not for this round's old model")?;
        }
        let got = self.update_root(&update)?;
        if got != update_root {
            anyhow::bail!("the blob's update root {got:#x} is not the committed {update_root:#x}");
        }
        Ok(update)
    }
}

/// How filing a fraud proof went.
pub enum Filed {
    /// It landed: the candidate is rejected.
    Proven(Event),
    /// Nothing to do any more (proven by someone else, the window closed, the candidate
    /// was never proven): why.
    Moot(String),
    /// Too early: fraud proofs open after block `attestEnd`.
    TooEarly(u64),
}

/// Files the fraud proof `claim` (ABI-encoded) against candidate `index` of open round
/// `round` from `wallet`, reporting as `role`.
pub fn file(
    node: &mut Node,
    wallet: &Wallet,
    role: &str,
    round: u64,
    index: u16,
    claim: &[u8],
) -> anyhow::Result<Filed> {
    let start = Instant::now();
    let call = Fraud::decode_call(claim, node.task, index)?;
    let block = call.claim.blockIndex;
    match node.rounds.send(node.chain.as_mut(), wallet, call, U256::ZERO) {
        Ok(receipt) => {
            let proven =
                receipt.logs.iter().find_map(|log| PogoRounds::FraudProven::decode_log(log).ok().map(|e| e.data));
            let (kind, slashed) = proven.map_or((0, U256::ZERO), |e| (e.kind, e.attestersSlashed));
            let kind = FraudKind::from_code(kind).map_or("fraud", FraudKind::describe);
            let what = format!(
                "fraud proof landed against candidate {index}, block {block}: {kind}; {slashed} wei of positive \
                 attesters' stake slashed, the miner's bond goes at finalize (half to this challenger)"
            );
            Ok(Filed::Proven(Event {
                role: role.to_string(),
                round,
                phase: Phase::Challenge,
                what,
                seconds: since(start),
                gas: receipt.gas_used,
            }))
        }
        Err(e) => match e.contract_error().as_deref() {
            Some("TooEarly") => {
                Ok(Filed::TooEarly(node.rounds.round(node.chain.as_mut(), node.task, round)?.attestEnd))
            }
            Some("AlreadyFraud" | "TooLate" | "NotProven" | "NoOpenRound" | "NotRevealed") => {
                Ok(Filed::Moot(format!("fraud proof against candidate {index} not needed: {e}")))
            }
            _ => Err(e.into()),
        },
    }
}

/// A step for a [`Filed`] outcome.
pub fn step_of(filed: Filed) -> Step {
    match filed {
        Filed::Proven(event) => Step::Acted(event),
        Filed::Moot(why) => Step::Wait { until: None, why },
        Filed::TooEarly(end) => {
            Step::Wait { until: Some(end + 1), why: format!("fraud proofs open after block {end}") }
        }
    }
}
