//! The miner: train from the accepted model, commit, draw randomness, prove the sampled
//! blocks, submit, and finalize; the error-feedback residual is kept across rounds and only
//! advanced by accepted rounds.

use std::path::{Path, PathBuf};
use std::time::Instant;

use alloy::primitives::{B256, U256};
use anyhow::Context;
use pogo_circuits::config::CircuitConfig;
use pogo_circuits::encoding::{Nibble, UpdateBlock, BLOCK_WEIGHTS};
use pogo_circuits::model::Model;
use pogo_circuits::sampling::sample_indices;
use pogo_circuits::update::Update;
use pogo_prover::prove::{prove, Keys};
use pogo_prover::setup::Setup;
use pogo_prover::witness::{assemble, round_trees};
use pogo_verifier::keys::config_dir;
use pogo_verifier::rounds::PogoRounds;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::{crash_point, draw, load_state, save_state, since, Event, Node, Phase, Step};
use crate::contract::seed;
use crate::keystore::Wallet;
use crate::quantize::Residual;

/// How a miner misbehaves (for demonstrations and tests of slashing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Cheat {
    /// Honest.
    #[default]
    None,
    /// Commits a new model that is not old + update in one block.
    Mismatch,
    /// Publishes a random update that does not lower the loss.
    NoGain,
}

/// Where a miner is in its round.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum MinerPhase {
    /// Between rounds.
    #[default]
    Idle,
    /// Trained: the update and new model are in the store; the commit may or may not be in.
    Prepared {
        /// The round id the commit will open.
        round: u64,
        /// The root the round starts from.
        old_root: U256,
        /// Committed roots and blob hash.
        new_root: U256,
        /// Update root.
        update_root: U256,
        /// Blob hash.
        blob_hash: B256,
    },
    /// The commit is in.
    Committed {
        /// Round id.
        round: u64,
        /// New root.
        new_root: U256,
    },
    /// The proof is made (`proof.bin` in the state folder), maybe not yet submitted.
    Proved {
        /// Round id.
        round: u64,
        /// New root.
        new_root: U256,
    },
    /// Submitted (or given up on); waiting for the round to be finalized.
    Submitted {
        /// Round id.
        round: u64,
        /// New root.
        new_root: U256,
    },
}

/// What a miner persists.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MinerState {
    /// The state machine.
    pub phase: MinerPhase,
    /// Rounds this miner finished (accepted or not).
    pub finished: u64,
    /// Of which accepted.
    pub accepted: u64,
}

/// A miner.
pub struct Miner {
    wallet: Wallet,
    dir: PathBuf,
    params_dir: PathBuf,
    cheat: Cheat,
    rounds: u64,
    keys: Option<(Setup, Keys)>,
    /// Its persisted state.
    pub state: MinerState,
}

impl Miner {
    /// A miner keeping its state in `dir`, proving with keys under `params_dir`, stopping
    /// after `rounds` finished rounds.
    pub fn new(wallet: Wallet, dir: &Path, params_dir: &Path, cheat: Cheat, rounds: u64) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let state = load_state(&dir.join("miner.json"))?;
        Ok(Miner {
            wallet,
            dir: dir.to_path_buf(),
            params_dir: params_dir.to_path_buf(),
            cheat,
            rounds,
            keys: None,
            state,
        })
    }

    fn name(&self) -> String {
        format!("miner {}", self.wallet.name())
    }

    fn set(&mut self, phase: MinerPhase) -> anyhow::Result<()> {
        self.state.phase = phase;
        save_state(&self.dir.join("miner.json"), &self.state)
    }

    fn residual_path(&self, next: bool) -> PathBuf {
        self.dir.join(if next { "residual.next.safetensors" } else { "residual.safetensors" })
    }

    fn event(&self, round: u64, phase: Phase, what: String, start: Instant, gas: u64) -> Step {
        Step::Acted(Event { role: self.name(), round, phase, what, seconds: since(start), gas })
    }

    /// One action (or the reason to wait).
    pub fn step(&mut self, node: &mut Node) -> anyhow::Result<Step> {
        let task = node.rounds.task(node.chain.as_mut(), node.task)?;
        let now = node.chain.block_number()?;
        match self.state.phase.clone() {
            MinerPhase::Idle => {
                if self.state.finished >= self.rounds {
                    return Ok(Step::Done);
                }
                if task.open {
                    return Ok(Step::Wait {
                        until: None,
                        why: format!("round {} of another miner is open", task.rounds - 1),
                    });
                }
                self.train(node, task.rounds, task.root)
            }
            MinerPhase::Prepared { round, old_root, new_root, update_root, blob_hash } => {
                if task.rounds > round {
                    let r = node.rounds.round(node.chain.as_mut(), node.task, round)?;
                    if r.miner == self.wallet.address() && r.newRoot == new_root {
                        // The commit went in before we could record it.
                        self.set(MinerPhase::Committed { round, new_root })?;
                        return Ok(Step::Wait { until: None, why: "commit found on chain".into() });
                    }
                }
                if task.open || task.rounds != round || task.root != old_root {
                    // Another miner's round came first: this update is stale.
                    self.set(MinerPhase::Idle)?;
                    return Ok(Step::Wait { until: None, why: "another miner committed first; retraining".into() });
                }
                let start = Instant::now();
                let call = PogoRounds::commitCall {
                    task: node.task,
                    newRoot: new_root,
                    updateRoot: update_root,
                    blobHash: blob_hash,
                };
                let receipt =
                    node.rounds.send(node.chain.as_mut(), &self.wallet, call, U256::from(node.params.minerBond))?;
                crash_point("miner-after-commit");
                self.set(MinerPhase::Committed { round, new_root })?;
                Ok(self.event(
                    round,
                    Phase::Commit,
                    format!("committed new root {new_root:#x}"),
                    start,
                    receipt.gas_used,
                ))
            }
            MinerPhase::Committed { round, new_root } => {
                let r = node.rounds.round(node.chain.as_mut(), node.task, round)?;
                if r.finalized || r.proven {
                    self.set(MinerPhase::Submitted { round, new_root })?;
                    return Ok(Step::Wait { until: None, why: "proof already in".into() });
                }
                if let Some(step) = draw(node, &self.wallet, &self.name(), round, &r, now)? {
                    return Ok(step);
                }
                let Some(seed2) = seed(r.seed2) else {
                    return Ok(Step::Wait { until: None, why: "phase-2 randomness".into() });
                };
                if now > r.commitBlock + node.params.proofWindow {
                    self.set(MinerPhase::Submitted { round, new_root })?;
                    return Ok(Step::Wait { until: None, why: "proof deadline passed".into() });
                }
                self.prove(node, round, new_root, &r, seed2)
            }
            MinerPhase::Proved { round, new_root } => {
                let r = node.rounds.round(node.chain.as_mut(), node.task, round)?;
                if r.proven || r.finalized || now > r.commitBlock + node.params.proofWindow {
                    self.set(MinerPhase::Submitted { round, new_root })?;
                    return Ok(Step::Wait { until: None, why: "proof in or deadline passed".into() });
                }
                let proof = std::fs::read(self.dir.join("proof.bin")).context("reading the saved proof")?;
                let start = Instant::now();
                let call = PogoRounds::submitProofCall { task: node.task, proof: proof.into() };
                let result = node.rounds.send(node.chain.as_mut(), &self.wallet, call, U256::ZERO);
                crash_point("miner-after-submit");
                self.set(MinerPhase::Submitted { round, new_root })?;
                match result {
                    Ok(receipt) => Ok(self.event(
                        round,
                        Phase::SubmitProof,
                        "proof verified on chain".into(),
                        start,
                        receipt.gas_used,
                    )),
                    Err(e) => Ok(self.event(round, Phase::SubmitProof, format!("proof refused: {e}"), start, 0)),
                }
            }
            MinerPhase::Submitted { round, new_root } => {
                let r = node.rounds.round(node.chain.as_mut(), node.task, round)?;
                if !r.finalized {
                    return super::finalizer::finalize_open_round(node, &self.wallet, &self.name(), round, &r, now);
                }
                let start = Instant::now();
                let next = self.residual_path(true);
                if r.accepted {
                    if next.exists() {
                        std::fs::rename(&next, self.residual_path(false)).context("adopting the residual")?;
                    }
                    self.state.accepted += 1;
                } else {
                    let _ = std::fs::remove_file(&next);
                }
                self.state.finished += 1;
                self.set(MinerPhase::Idle)?;
                let owed = node.rounds.owed(node.chain.as_mut(), self.wallet.address())?;
                let mut gas = 0;
                if !owed.is_zero() {
                    gas = node
                        .rounds
                        .send(node.chain.as_mut(), &self.wallet, PogoRounds::withdrawCall {}, U256::ZERO)?
                        .gas_used;
                }
                let verdict = if r.accepted {
                    format!("accepted: root is now {new_root:#x}")
                } else if r.refunded {
                    "not decided (attesting stake short of the quorum): bond returned".into()
                } else {
                    "rejected: bond slashed".into()
                };
                Ok(self.event(round, Phase::Payout, format!("round {verdict}; withdrew {owed} wei"), start, gas))
            }
        }
    }

    /// Trains from the accepted model and records the prepared commit.
    fn train(&mut self, node: &mut Node, round: u64, root: U256) -> anyhow::Result<Step> {
        let start = Instant::now();
        let current = node.model_at(root)?;
        let mut residual = match Residual::load(&self.residual_path(false)) {
            Ok(r) if r.values().len() as u64 == current.weight_count() => r,
            _ => Residual::zero(current.weight_count()),
        };
        let out = node.trainer.work(&current, &mut residual, round, &|| {})?;
        let (update, new_model) = match self.cheat {
            Cheat::None => (out.update, out.new_model),
            Cheat::Mismatch => {
                // One weight of the last block is off by one: not old + update.
                let mut weights = out.new_model.weights().to_vec();
                let last = weights.len() - 1;
                weights[last] = weights[last].wrapping_add(1);
                (out.update, out.new_model.with_weights(weights)?)
            }
            Cheat::NoGain => {
                let update = noise_update(&current, round)?;
                let new = update.apply(&current)?;
                (update, new)
            }
        };
        let blob = update.to_blob();
        let blob_hash = node.store.put_blob(&blob)?;
        let new_root = node.root(&new_model)?;
        let update_root = node.update_root(&update)?;
        node.store.put_model(new_root, &new_model)?;
        residual.save(&self.residual_path(true))?;
        self.set(MinerPhase::Prepared { round, old_root: root, new_root, update_root, blob_hash })?;
        crash_point("miner-after-prepare");
        let what = format!(
            "trained {} steps (train loss {:.4}), update blob {} bytes{}",
            node.trainer.task.steps_per_round,
            out.train_loss,
            blob.len(),
            match self.cheat {
                Cheat::None => String::new(),
                Cheat::Mismatch => " [cheating: new model ≠ old + update]".into(),
                Cheat::NoGain => " [cheating: random update]".into(),
            }
        );
        Ok(self.event(round, Phase::Train, what, start, 0))
    }

    fn prove(
        &mut self,
        node: &mut Node,
        round: u64,
        new_root: U256,
        r: &pogo_verifier::rounds::Round,
        seed2: [u8; 32],
    ) -> anyhow::Result<Step> {
        let start = Instant::now();
        let samples = node.params.samples as usize;
        let inputs = node.rounds.public_inputs(node.chain.as_mut(), node.task)?;
        let indices = sample_indices(&seed2, samples, node.params.nb);
        let on_chain: Vec<u64> = inputs[4..].iter().map(|v| v.saturating_to()).collect();
        anyhow::ensure!(on_chain == indices, "the contract samples {on_chain:?}, the native rule {indices:?}");
        let (old_root, blob_hash) = (r.oldRoot, r.blobHash);
        let old = node.model_at(old_root)?;
        let new = node.store.model(new_root).context("the new model is missing from the store")?;
        let blob = node.store.local_blob(blob_hash).context("the update blob is missing from the store")?;
        let update = Update::from_blob(&blob)?;
        if self.keys.is_none() {
            let config = CircuitConfig::new(node.depth(), samples)?;
            let (_, setup, keys) = pogo_prover::keys::load(&config_dir(&self.params_dir, &config.name()))
                .with_context(|| format!("loading the keys of {} (run `pogo setup`)", config.name()))?;
            self.keys = Some((setup, keys));
        }
        let (setup, keys) = self.keys.as_ref().expect("loaded");
        let proof = round_trees(&old, &new, &update, node.depth(), &())
            .map_err(anyhow::Error::from)
            .and_then(|trees| Ok(assemble(&old, &new, &update, &trees, &indices)?))
            .and_then(|(inputs, witness)| Ok(prove(setup, keys, &inputs, &witness)?));
        match proof {
            Ok(proof) => {
                pogo_circuits::files::write_atomic(&self.dir.join("proof.bin"), &proof)?;
                self.set(MinerPhase::Proved { round, new_root })?;
                Ok(self.event(
                    round,
                    Phase::Prove,
                    format!("proved blocks {indices:?} ({} bytes)", proof.len()),
                    start,
                    0,
                ))
            }
            Err(e) => {
                self.set(MinerPhase::Submitted { round, new_root })?;
                Ok(self.event(round, Phase::Prove, format!("cannot prove blocks {indices:?}: {e:#}"), start, 0))
            }
        }
    }
}

/// A random update with large steps: it changes every weight and hurts the loss.
fn noise_update(model: &Model, round: u64) -> anyhow::Result<Update> {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(round ^ 0x6e6f_6761_696e);
    let scale = 1u32 << (model.format().fraction_bits() - 3);
    let n = model.weight_count() as usize;
    let blocks = (0..model.block_count() as usize)
        .map(|b| UpdateBlock {
            scale,
            nibbles: std::array::from_fn(|j| {
                Nibble::new(if b * BLOCK_WEIGHTS + j < n { rng.gen_range(0..16) } else { 8 }).expect("below 16")
            }),
        })
        .collect();
    Ok(Update::new(n as u64, blocks)?)
}
