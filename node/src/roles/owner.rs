//! The task owner (or the data provider it names): keeps the held-out evaluation data,
//! commits to it in sets (a Merkle root over batches, at task creation and with
//! `add_set`), and in every round reveals the batch phase 1 drew, with its Merkle path, so
//! the verifiers can evaluate on data no miner could train on. An owner who does not reveal
//! in time leaves the round unjudged: no fault of the miners, and no progress.

use std::path::{Path, PathBuf};
use std::time::Instant;

use alloy::primitives::{B256, U256};
use anyhow::{bail, Context};
use pogo_verifier::heldout::EvalTree;
use pogo_verifier::rounds::PogoRounds;
use serde::{Deserialize, Serialize};

use super::{crash_point, load_state, open_round, save_state, since, Event, Node, Phase, Step};
use crate::keystore::Wallet;
use crate::train::data::held_out;
use crate::train::task::{DataSpec, ModelSpec};

/// A set of held-out batches the owner committed to: its file, and what went on chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeldOutSet {
    /// The owner's file (never published; only the batches phase 1 draws are revealed).
    pub file: PathBuf,
    /// The Merkle root committed on chain.
    pub root: B256,
    /// Batches under it.
    pub batches: u32,
    /// The secret each batch's salt is derived from (`held_out::salted`): kept with the
    /// owner's records, never published.
    pub salt_key: B256,
}

impl HeldOutSet {
    /// Cuts `file` into the task's evaluation batches, salts them with a fresh secret and
    /// builds their tree. Refuses data a miner can read or that was committed before:
    /// records that also appear in the task's public data file or in `earlier` sets; and
    /// records the network `model` cannot read (token ids past its vocabulary).
    pub fn build(
        model: &ModelSpec,
        spec: &DataSpec,
        public_data: &Path,
        earlier: &[HeldOutSet],
        file: &Path,
        batch_size: usize,
    ) -> anyhow::Result<(Self, Vec<Vec<u8>>, EvalTree)> {
        let records = held_out::batches(spec, file, batch_size)?;
        let public = std::fs::read(public_data).with_context(|| format!("reading {}", public_data.display()))?;
        let shared = held_out::overlap(spec, &public, &records);
        if shared > 0 {
            bail!(
                "{}: {shared} held-out record(s) also appear in the public data {}: miners could train on them",
                file.display(),
                public_data.display()
            );
        }
        for set in earlier {
            let before = std::fs::read(&set.file).with_context(|| format!("reading {}", set.file.display()))?;
            let shared = held_out::overlap(spec, &before, &records);
            if shared > 0 {
                bail!(
                    "{}: {shared} record(s) were committed before, in {} (revealed batches are public)",
                    file.display(),
                    set.file.display()
                );
            }
        }
        let salt_key = B256::from(rand::random::<[u8; 32]>());
        let batches = held_out::salted(&records, &salt_key.0);
        // Records the network cannot read (an id past its vocabulary) would leave every
        // verifier unable to judge the round that reveals them.
        for (i, batch) in batches.iter().enumerate() {
            held_out::readable_examples(model, spec, batch)
                .map_err(|why| anyhow::anyhow!("{}: batch {i}: {why}", file.display()))?;
        }
        let tree = EvalTree::new(&batches)?;
        let file = std::path::absolute(file).with_context(|| format!("resolving {}", file.display()))?;
        let set = HeldOutSet { file, root: tree.root(), batches: batches.len() as u32, salt_key };
        Ok((set, batches, tree))
    }

    /// Reads the set back from its file, checking it still gives the committed root.
    fn load(&self, spec: &DataSpec, batch_size: usize) -> anyhow::Result<(Vec<Vec<u8>>, EvalTree)> {
        let batches = held_out::salted(&held_out::batches(spec, &self.file, batch_size)?, &self.salt_key.0);
        let tree = EvalTree::new(&batches)?;
        if tree.root() != self.root {
            bail!(
                "{} changed since it was committed (root {} instead of {}): restore it",
                self.file.display(),
                tree.root(),
                self.root
            );
        }
        Ok((batches, tree))
    }
}

/// What an owner persists.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OwnerState {
    /// Its sets, in the contract's order.
    pub sets: Vec<HeldOutSet>,
    /// Rounds whose batch it revealed.
    pub revealed: Vec<u64>,
}

/// The owner's role.
pub struct Owner {
    wallet: Wallet,
    path: PathBuf,
    /// Its persisted state.
    pub state: OwnerState,
}

impl Owner {
    /// An owner keeping its state in `dir/owner.json`.
    pub fn new(wallet: Wallet, dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join("owner.json");
        let state = load_state(&path)?;
        Ok(Owner { wallet, path, state })
    }

    /// Starts the records of a task just created with `set` (replacing an earlier task's).
    pub fn created(wallet: Wallet, dir: &Path, set: HeldOutSet) -> anyhow::Result<Self> {
        let mut owner = Owner::new(wallet, dir)?;
        owner.state = OwnerState { sets: vec![set], revealed: Vec::new() };
        save_state(&owner.path, &owner.state)?;
        Ok(owner)
    }

    fn record(&mut self, set: HeldOutSet) -> anyhow::Result<()> {
        self.state.sets.push(set);
        save_state(&self.path, &self.state)
    }

    /// Commits to a fresh set of held-out batches from `file`.
    pub fn add_set(&mut self, node: &mut Node, file: &Path) -> anyhow::Result<Event> {
        let start = Instant::now();
        let on_chain = node.rounds.eval_sets(node.chain.as_mut(), node.task)?;
        if on_chain.len() != self.state.sets.len() {
            bail!(
                "the task has {} held-out sets and {} records {}: is this the owner's --home?",
                on_chain.len(),
                self.path.display(),
                self.state.sets.len()
            );
        }
        let config = &node.trainer.task;
        let (set, _, _) = HeldOutSet::build(
            &config.model,
            &config.data,
            config.data_path(),
            &self.state.sets,
            file,
            config.eval_batch_size,
        )?;
        let call = PogoRounds::addEvalDataCall { task: node.task, root: set.root, batches: set.batches };
        let receipt = node.rounds.send(node.chain.as_mut(), &self.wallet, call, U256::ZERO)?;
        let what =
            format!("committed to {} fresh held-out batches from {} (root {})", set.batches, file.display(), set.root);
        self.record(set)?;
        let round = node.rounds.task(node.chain.as_mut(), node.task)?.rounds;
        Ok(Event {
            role: "owner".into(),
            round,
            phase: Phase::HeldOut,
            what,
            seconds: since(start),
            gas: receipt.gas_used,
        })
    }

    /// One action (or the reason to wait): reveal the open round's drawn batch.
    pub fn step(&mut self, node: &mut Node) -> anyhow::Result<Step> {
        let Some((round, r)) = open_round(node)? else {
            return Ok(Step::Wait { until: None, why: "no open round".into() });
        };
        if r.evalBlock != 0 {
            return Ok(Step::Wait { until: None, why: format!("round {round}: its held-out batch is revealed") });
        }
        let now = node.chain.block_number()?;
        if now <= r.proofEnd {
            return Ok(Step::Wait {
                until: Some(r.proofEnd),
                why: format!(
                    "round {round}: the held-out batch is revealed after the proof deadline (block {})",
                    r.proofEnd
                ),
            });
        }
        if now > r.evalEnd {
            return Ok(Step::Wait {
                until: None,
                why: format!("round {round}: too late to reveal (block {} passed): a no-fault round", r.evalEnd),
            });
        }
        if r.proven == 0 {
            return Ok(Step::Wait {
                until: None,
                why: format!("round {round}: nothing was proven, so nothing is judged: the batch stays held out"),
            });
        }
        let (set, batch) = match node.rounds.drawn_eval_batch(node.chain.as_mut(), node.task) {
            Ok(drawn) => drawn,
            Err(e) if e.contract_error().as_deref() == Some("PhaseNotReady") => {
                return Ok(Step::Wait { until: None, why: format!("round {round}: phase-1 randomness out of reach") })
            }
            Err(e) => return Err(e.into()),
        };
        let Some(held) = self.state.sets.get(set as usize) else {
            bail!(
                "round {round} draws from held-out set {set}, but {} records {} set(s): is this the owner's --home?",
                self.path.display(),
                self.state.sets.len()
            );
        };
        let on_chain = node.rounds.eval_sets(node.chain.as_mut(), node.task)?;
        if on_chain.get(set as usize).map(|s| s.root) != Some(held.root) {
            bail!("held-out set {set} on chain is not the one {} records", self.path.display());
        }
        let start = Instant::now();
        let config = &node.trainer.task;
        let (batches, tree) = held.load(&config.data, config.eval_batch_size)?;
        let data = batches[batch as usize].clone();
        let examples = (data.len() - held_out::SALT_LEN) / held_out::record_size(&config.data);
        let call = PogoRounds::revealEvalDataCall { task: node.task, data: data.into(), path: tree.path(batch) };
        let receipt = match node.rounds.send(node.chain.as_mut(), &self.wallet, call, U256::ZERO) {
            Ok(receipt) => receipt,
            Err(e)
                if matches!(e.contract_error().as_deref(), Some("EvalAlreadyRevealed" | "TooLate" | "NoOpenRound")) =>
            {
                return Ok(Step::Wait { until: None, why: format!("round {round}: reveal not needed: {e}") })
            }
            Err(e) => return Err(e.into()),
        };
        crash_point("owner-after-reveal");
        self.state.revealed.push(round);
        save_state(&self.path, &self.state)?;
        Ok(Step::Acted(Event {
            role: "owner".into(),
            round,
            phase: Phase::HeldOut,
            what: format!("revealed held-out batch {batch} of set {set} ({examples} examples), drawn by phase 1"),
            seconds: since(start),
            gas: receipt.gas_used,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digits(dir: &Path, name: &str, records: std::ops::Range<u8>) -> PathBuf {
        let path = dir.join(name);
        let bytes: Vec<u8> = records.flat_map(|i| (0..64).map(move |p| (i + p) % 17).chain([i % 10])).collect();
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn a_held_out_set_is_cut_into_batches_and_refused_when_miners_hold_it() {
        let dir = tempfile::tempdir().unwrap();
        let spec = DataSpec::Digits { path: "unused".into(), validation: 1 };
        let mlp = ModelSpec::Mlp { hidden: vec![8] };
        let public = digits(dir.path(), "public.bin", 0..50);
        let private = digits(dir.path(), "private.bin", 100..111);
        let (set, batches, tree) = HeldOutSet::build(&mlp, &spec, &public, &[], &private, 4).unwrap();
        assert_eq!((set.batches, batches.len(), batches[0].len()), (2, 2, 32 + 4 * 65), "a partial batch is left out");
        assert_eq!(tree.root(), set.root);
        assert_eq!(held_out::examples(&spec, &batches[1]).unwrap().len(), 4, "the salt is not an example");
        let (again, ..) = HeldOutSet::build(&mlp, &spec, &public, &[], &private, 4).unwrap();
        assert_ne!(again.root, set.root, "a fresh salt: the root says nothing about the records");
        let leaked = digits(dir.path(), "leaked.bin", 45..55);
        let err = HeldOutSet::build(&mlp, &spec, &public, &[], &leaked, 4).unwrap_err().to_string();
        assert!(err.contains("5 held-out record(s) also appear in the public data"), "{err}");
        let err =
            HeldOutSet::build(&mlp, &spec, &public, std::slice::from_ref(&set), &private, 4).unwrap_err().to_string();
        assert!(err.contains("were committed before"), "{err}");
        let err = HeldOutSet::build(&mlp, &spec, &public, &[], &private, 64).unwrap_err().to_string();
        assert!(err.contains("no whole batch"), "{err}");
        std::fs::write(&private, [0u8; 66]).unwrap();
        let err = format!("{:#}", set.load(&spec, 4).unwrap_err());
        assert!(err.contains("66 bytes"), "{err}");
    }

    /// Token records of `context` 2 (ids `[first, first + 1]`, label 0).
    fn tokens(dir: &Path, name: &str, firsts: impl Iterator<Item = u16>) -> PathBuf {
        let path = dir.join(name);
        let bytes: Vec<u8> = firsts.flat_map(|i| [i, i + 1, 0].into_iter().flat_map(u16::to_le_bytes)).collect();
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn held_out_tokens_past_the_vocabulary_or_seen_under_another_label_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let spec =
            DataSpec::Tokens { path: "unused".into(), context: 2, labels: vec!["a".into(), "b".into()], validation: 1 };
        let encoder = ModelSpec::Encoder {
            layers: 1,
            dim: 4,
            heads: 1,
            hidden: 4,
            vocabulary: 100,
            positions: 2,
            norm_eps: 1e-12,
            pretrained: None,
        };
        let public = tokens(dir.path(), "public.bin", 1..20);
        let fine = tokens(dir.path(), "fine.bin", 50..58);
        assert_eq!(HeldOutSet::build(&encoder, &spec, &public, &[], &fine, 4).unwrap().0.batches, 2);
        let past = tokens(dir.path(), "past.bin", 95..103);
        let err = HeldOutSet::build(&encoder, &spec, &public, &[], &past, 4).unwrap_err().to_string();
        assert!(err.contains("batch 1: record 0: token id 100 is past the model's vocabulary of 100"), "{err}");
        // The same ids as a public record, under the other label: still seen.
        let mut relabelled = std::fs::read(tokens(dir.path(), "seen.bin", [3, 60, 61, 62].into_iter())).unwrap();
        relabelled[4..6].copy_from_slice(&1u16.to_le_bytes());
        std::fs::write(dir.path().join("seen.bin"), relabelled).unwrap();
        let err = HeldOutSet::build(&encoder, &spec, &public, &[], &dir.path().join("seen.bin"), 4).unwrap_err();
        assert!(err.to_string().contains("1 held-out record(s) also appear"), "{err}");
    }
}
