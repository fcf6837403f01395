//! Pruning a node's store: once a round is final, what it named (its old model, each
//! candidate's new model and blob) is dropped from the store, except the current model, the
//! `K` accepted models before it and the `K` accepted updates between them: what a node
//! that joins late needs from its peers (a checkpoint, or a recent model and the updates
//! since), kept available for others, while the store stops growing with every round.
//!
//! Only what a final round names is ever dropped: a miner's model prepared for a round
//! not yet committed, or anything of an open round, is never touched.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Instant;

use alloy::primitives::{B256, U256};
use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::{load_state, save_state, since, Event, Node, Phase};
use crate::store::Store;
use pogo_verifier::rounds::{Candidate, Round};

/// Something a store holds that rounds name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Held {
    /// A model (its checkpoint, tree file and leaf list), by root.
    Model(U256),
    /// An update blob, by its keccak-256.
    Blob(B256),
}

/// What a final round named: its old model and every candidate's new model and blob.
pub fn named_by(round: &Round, candidates: &[Candidate]) -> Vec<Held> {
    let mut named = vec![Held::Model(round.oldRoot)];
    for c in candidates {
        if c.newRoot != U256::ZERO {
            named.push(Held::Model(c.newRoot));
        }
        if c.blobHash != B256::ZERO {
            named.push(Held::Blob(c.blobHash));
        }
    }
    named
}

/// What stays: the `current` model, and for the last `keep` accepted rounds (`accepted`,
/// latest first: each one's old root and winning blob) the model each started from and
/// its update, so that the current model can be reached from any of them.
pub fn retained(current: U256, accepted: &[(U256, B256)], keep: usize) -> BTreeSet<Held> {
    let mut kept = BTreeSet::from([Held::Model(current)]);
    for &(old_root, blob) in accepted.iter().take(keep) {
        kept.insert(Held::Model(old_root));
        kept.insert(Held::Blob(blob));
    }
    kept
}

/// What a pruner persists: the rounds it has read, and what they named that is still kept.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PrunerState {
    /// Rounds `0..read` are final and read.
    pub read: u64,
    /// What they named that is still in the store (retained when last pruned).
    pub held: BTreeSet<Held>,
}

/// Prunes one store (see the module doc).
pub struct Pruner {
    keep: usize,
    path: PathBuf,
    /// Its persisted state.
    pub state: PrunerState,
}

impl Pruner {
    /// A pruner of `store` keeping `keep` accepted updates, its state in the store folder;
    /// removes the work files a process killed mid-write left in that store.
    pub fn new(store: &Store, keep: usize) -> anyhow::Result<Self> {
        let dir = store.dir();
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let swept = store.sweep_work_files();
        if swept > 0 {
            eprintln!("note: removed {swept} unfinished work file(s) from {}", dir.display());
        }
        let path = dir.join("pruned.json");
        Ok(Pruner { keep, state: load_state(&path)?, path })
    }

    /// Reads the rounds finalized since the last call and drops what they named that is not
    /// retained; an event when something was dropped.
    pub fn step(&mut self, node: &mut Node) -> anyhow::Result<Option<Event>> {
        let task = node.rounds.task(node.chain.as_mut(), node.task)?;
        let final_rounds = task.rounds - u64::from(task.open);
        if final_rounds <= self.state.read {
            return Ok(None);
        }
        let start = Instant::now();
        for id in self.state.read..final_rounds {
            let r = node.rounds.round(node.chain.as_mut(), node.task, id)?;
            let candidates = node.rounds.candidates(node.chain.as_mut(), node.task, &r, id)?;
            self.state.held.extend(named_by(&r, &candidates));
        }
        // The last `keep` accepted rounds, latest first (rounds without a winner skipped).
        let mut accepted = Vec::new();
        for id in (0..final_rounds).rev() {
            if accepted.len() == self.keep {
                break;
            }
            let r = node.rounds.round(node.chain.as_mut(), node.task, id)?;
            if r.winner != 0 {
                let w = node.rounds.candidate(node.chain.as_mut(), node.task, id, r.winner - 1)?;
                accepted.push((r.oldRoot, w.blobHash));
            }
        }
        let kept = retained(task.root, &accepted, self.keep);
        let (mut models, mut blobs, mut bytes) = (0, 0, 0);
        let mut failed = None;
        for held in self.state.held.clone() {
            if kept.contains(&held) {
                continue;
            }
            let freed = match held {
                Held::Model(root) => node.store.drop_model(root),
                Held::Blob(hash) => node.store.drop_blob(hash),
            };
            match freed {
                Ok(freed) => {
                    self.state.held.remove(&held);
                    models += u64::from(freed > 0 && matches!(held, Held::Model(_)));
                    blobs += u64::from(freed > 0 && matches!(held, Held::Blob(_)));
                    bytes += freed;
                }
                // Kept in the state, tried again after the next final round.
                Err(e) => failed = Some(e),
            }
        }
        let rounds = final_rounds - self.state.read;
        self.state.read = final_rounds;
        save_state(&self.path, &self.state)?;
        if let Some(e) = failed {
            eprintln!("note: pruning the store: {e} (tried again after the next round)");
        }
        if models + blobs == 0 {
            return Ok(None);
        }
        Ok(Some(Event {
            role: "store".into(),
            round: final_rounds - 1,
            phase: Phase::Prune,
            what: format!(
                "pruned {models} model(s) and {blobs} blob(s) ({:.1} MB) named by {rounds} final round(s); \
                 keeping the last {} accepted update(s)",
                bytes as f64 / 1e6,
                self.keep
            ),
            seconds: since(start),
            gas: 0,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn root(i: u64) -> U256 {
        U256::from(i + 1)
    }

    fn blob(i: u64) -> B256 {
        B256::from(U256::from(1000 + i))
    }

    proptest! {
        /// A chain of accepted updates root(0) -> root(1) -> ... -> root(n) (blob(i) takes
        /// root(i) to root(i + 1)): whatever K, the current model and the last K updates
        /// with the models they start from stay, so the current model is reachable from
        /// each kept model through kept blobs; nothing older stays.
        #[test]
        fn the_last_k_updates_and_the_models_they_join_stay(n in 0u64..20, keep in 0usize..8) {
            let accepted: Vec<(U256, B256)> = (0..n).rev().map(|i| (root(i), blob(i))).collect();
            let kept = retained(root(n), &accepted, keep);
            let k = (keep as u64).min(n);
            for i in 0..=n {
                prop_assert_eq!(kept.contains(&Held::Model(root(i))), i >= n - k, "model {}", i);
            }
            for i in 0..n {
                prop_assert_eq!(kept.contains(&Held::Blob(blob(i))), i >= n - k, "blob {}", i);
            }
            prop_assert_eq!(kept.len() as u64, 1 + 2 * k);
        }
    }

    #[test]
    fn a_final_round_names_its_old_model_and_every_revealed_candidate() {
        let r = Round { oldRoot: root(0), ..Default::default() };
        let revealed = Candidate { newRoot: root(1), blobHash: blob(1), ..Default::default() };
        let unrevealed = Candidate::default();
        assert_eq!(
            named_by(&r, &[revealed, unrevealed]),
            vec![Held::Model(root(0)), Held::Model(root(1)), Held::Blob(blob(1))]
        );
    }
}
