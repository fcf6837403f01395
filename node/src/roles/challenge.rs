//! Challenging a candidate (the fraud-proof issue): rebuild it from the old model and its
//! update blob ([`Node::examine`]) and, where the committed new model differs, find the
//! first wrong block in the leaf list its miner serves, build the one-block fraud claim and
//! check it natively exactly as `PogoFraud.check` will ([`Node::build_fraud`]); then file it
//! in the challenge window ([`file`]). Used by the
//! verifier role (automatically, for every mismatch its rebuild finds) and by
//! `pogo challenge`.
//!
//! A candidate whose blob, or whose leaf list, is not available cannot be proven wrong on
//! chain: its verifiers attest negative instead (`docs/SOUNDNESS.md`, fraud proofs).

use std::time::Instant;

use alloy::primitives::{B256, U256};
use alloy::sol_types::SolEvent;
use anyhow::Context;
use pogo_circuits::encoding::{UpdateBlock, BLOCK_WEIGHTS};
use pogo_circuits::model::Model;
use pogo_prover::commit::{model_tree, tree_from_leaves, update_tree};
use pogo_verifier::evm::{fr_to_u256, u256_to_fr};
use pogo_verifier::fraud::{self, FraudClaim, FraudKind};
use pogo_verifier::rounds::{Candidate, PogoRounds};

use super::{since, Event, Node, Phase};
use crate::keystore::Wallet;

/// A fraud claim ready to file, checked natively.
#[derive(Debug, Clone)]
pub struct Fraud {
    /// The claim.
    pub claim: FraudClaim,
    /// What it shows.
    pub kind: FraudKind,
}

/// What a rebuild of one candidate found.
#[derive(Debug)]
pub enum Examined {
    /// Old model + update gives the committed new model, now kept in the store under its
    /// root.
    Honest,
    /// The committed blob and update root are fine but old model + update is not the
    /// committed new model (or does not apply: a weight would leave range): provably wrong
    /// if its miner serves the leaf list ([`Node::build_fraud`]). Why, in words.
    Mismatch(String),
    /// Not the committed blob, or none to fetch, or one that cannot apply to this model:
    /// a negative attestation, never a fraud proof. Why, in words.
    Unchecked(String),
}

impl Node {
    /// Rebuilds candidate `c` from the model kept under `old_root`: fetches its blob, checks
    /// its update root, applies it and compares the new root ([`Node::rebuild_into_store`]:
    /// streamed, the new model kept only if it is the committed one).
    pub fn examine(&self, old_root: U256, c: &Candidate) -> anyhow::Result<Examined> {
        let update = match self.fetch_update(old_root, c.blobHash, c.updateRoot) {
            Ok(update) => update,
            Err(e) => return Ok(Examined::Unchecked(format!("{e:#}"))),
        };
        let applied = match self.rebuild_into_store(old_root, &update, c.newRoot)? {
            Ok(root) if root == c.newRoot => return Ok(Examined::Honest),
            Ok(root) => {
                return Ok(Examined::Mismatch(format!(
                    "old model + update has root {root:#x}, not the committed {:#x}",
                    c.newRoot
                )))
            }
            Err(e) => e,
        };
        match applied {
            e @ pogo_circuits::update::UpdateError::Overflow { .. } => {
                Ok(Examined::Mismatch(format!("the update does not apply to the old model: {e}")))
            }
            e if update.block_count() > self.params.nb => {
                // More blocks than the task's model: the update tree has a nonzero leaf at nb.
                Ok(Examined::Mismatch(format!("the update does not fit the task's model: {e}")))
            }
            e => Ok(Examined::Unchecked(format!("the update does not apply to the old model: {e}"))),
        }
    }

    /// The fraud proof against candidate `c`, whose rebuild was an [`Examined::Mismatch`]:
    /// fetches the leaf list its miner serves (checked to give the committed root: any other
    /// list proves nothing), finds the first wrong block, builds the claim and checks it
    /// natively exactly as the contract will. `Ok(Err(why))` when no proof can be made.
    pub fn build_fraud(&self, old: &Model, old_root: U256, c: &Candidate) -> anyhow::Result<Result<Fraud, String>> {
        let (depth, nb) = (self.depth(), self.params.nb);
        if old.block_count() != nb {
            return Ok(Err(format!("the old model has {} blocks, the task {nb}", old.block_count())));
        }
        let update = match self.fetch_update(old_root, c.blobHash, c.updateRoot) {
            Ok(update) => update,
            Err(e) => return Ok(Err(format!("{e:#}"))),
        };
        let honest = match update.apply(old) {
            Ok(new) => Some(model_tree(&new, Some(depth), &())?),
            Err(_) => None,
        };
        // An honest list has nb leaves; a longer one can only hold padding frauds, which
        // are provable up to 2·nb + 1024 leaves (past that the download is refused and the
        // candidate is left to the negative attestations).
        let most = self.provable_blocks();
        let limit = fraud::LEAF_BYTES as u64 * most;
        let checked = std::cell::RefCell::new(None);
        let fetched = self.store.fetch_leaves(c.newRoot, &self.sources, limit, |bytes| {
            let leaves = fraud::leaves_from_bytes(bytes, depth).map_err(|e| e.to_string())?;
            let tree = tree_from_leaves(leaves, Some(depth)).map_err(|e| e.to_string())?;
            if fr_to_u256(&tree.root()) != c.newRoot {
                return Err("these leaves do not give the committed new root".into());
            }
            *checked.borrow_mut() = Some(tree);
            Ok(())
        });
        if let Err(e) = fetched {
            return Ok(Err(format!("{e} (at most {most} leaves are read)")));
        }
        let claimed = checked.into_inner().expect("the accepted list's tree is kept");
        let suspect = if update.block_count() > nb {
            Some(nb)
        } else {
            fraud::suspect_block(old, &update, honest.as_ref().map(|t| t.leaves()), claimed.leaves())
        };
        let Some(b) = suspect else {
            return Ok(Err("no block differs from the served leaves".into()));
        };
        let (old_block, update_block) = if b < nb && b < update.block_count() {
            (old.block(b), update.block(b))
        } else {
            ([0u32; BLOCK_WEIGHTS], UpdateBlock::zero())
        };
        let old_tree = model_tree(old, Some(depth), &())?;
        let update_tree = update_tree(&update, Some(depth), &())?;
        let claim = FraudClaim::build(b, &old_block, &update_block, &old_tree, &update_tree, &claimed, nb)?;
        let root = |x: U256| u256_to_fr(x).context("a committed root is not a field element");
        Ok(match fraud::check(root(old_root)?, root(c.newRoot)?, root(c.updateRoot)?, nb, depth, &claim) {
            Ok(kind) => Ok(Fraud { claim, kind }),
            Err(e) => Err(format!("the claim for block {b} shows nothing: {e}")),
        })
    }

    /// The most leaves a candidate's list may have and still be proven wrong: an honest
    /// list has `nb`; a longer one can only hold padding frauds, provable up to
    /// `2·nb + 1024` leaves (and never past the tree's `2^D`).
    pub fn provable_blocks(&self) -> u64 {
        (1u64 << self.depth()).min(2 * self.params.nb + 1024)
    }

    /// The most weights a candidate's update may declare and still be examined: the padded
    /// update a fraud proof can still show wrong. Neither the download nor the decoding of
    /// a blob reads more than such an update, whatever its header declares.
    pub fn examinable_weights(&self) -> u64 {
        self.provable_blocks() * pogo_circuits::encoding::BLOCK_WEIGHTS as u64
    }

    /// A candidate's blob, from the store or its sources, read no further than the longest
    /// blob of an examinable update.
    pub fn fetch_candidate_blob(&self, hash: B256) -> Result<Vec<u8>, crate::store::StoreError> {
        let limit = pogo_circuits::update::max_blob_len(self.examinable_weights());
        self.store.fetch_blob(hash, &self.sources, limit)
    }

    /// Fetches blob `hash`, checks it was made against the model with root `old_root` when
    /// it says, and that its update root is the committed `update_root`.
    pub fn fetch_update(
        &self,
        old_root: U256,
        hash: B256,
        update_root: U256,
    ) -> anyhow::Result<pogo_circuits::update::Update> {
        let blob = self.fetch_candidate_blob(hash)?;
        let update = pogo_circuits::update::Update::from_blob_within(&blob, self.examinable_weights())
            .context("the blob is not an update")?;
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

/// Files `fraud` against candidate `index` of open round `round` from `wallet`, reporting
/// as `role`.
pub fn file(
    node: &mut Node,
    wallet: &Wallet,
    role: &str,
    round: u64,
    index: u16,
    fraud: &Fraud,
) -> anyhow::Result<Filed> {
    let start = Instant::now();
    let call = fraud.claim.to_call(node.task, index);
    let block = fraud.claim.block;
    match node.rounds.send(node.chain.as_mut(), wallet, call, U256::ZERO) {
        Ok(receipt) => {
            let proven =
                receipt.logs.iter().find_map(|log| PogoRounds::FraudProven::decode_log(log).ok().map(|e| e.data));
            let (kind, slashed) = proven.map_or((0, U256::ZERO), |e| (e.kind, e.attestersSlashed));
            let kind = FraudKind::from_code(kind).map_or("fraud", FraudKind::describe);
            let what = format!(
                "fraud proof landed against candidate {index}, block {block}: {kind}; {slashed} wei of positive \
                 attesters' stake slashed, the miner's bond is settled at finalize (half to this challenger \
                 unless 2/3 of the attesting stake rejected it anyway)"
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
        Err(e) => {
            let r = node.rounds.round(node.chain.as_mut(), node.task, round)?;
            match e.contract_error().as_deref() {
                Some("TooEarly") => Ok(Filed::TooEarly(r.attestEnd)),
                Some("AlreadyFraud") => {
                    Ok(Filed::Moot(format!("candidate {index} was proven fraudulent by another challenger first")))
                }
                Some("NotProven") => {
                    Ok(Filed::Moot(format!("candidate {index} has no valid proof: it loses its bond anyway")))
                }
                Some("TooLate" | "NoOpenRound") => Ok(Filed::Moot(format!(
                    "the challenge window of round {round} closed (block {}) before the fraud proof against candidate \
                     {index} landed",
                    r.challengeEnd
                ))),
                _ => {
                    // A lost race on a JSON-RPC chain reverts without data: ask the chain.
                    let c = node.rounds.candidate(node.chain.as_mut(), node.task, round, index)?;
                    if c.fraud {
                        Ok(Filed::Moot(format!("candidate {index} was proven fraudulent by another challenger first")))
                    } else {
                        Err(e.into())
                    }
                }
            }
        }
    }
}
