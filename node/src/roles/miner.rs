//! The miner: train from the accepted model, commit (a hash that hides the roots), reveal
//! once the commit window closed (and only then serve the blob), draw randomness, prove
//! the sampled blocks, submit, and finalize; the error-feedback residual is kept across
//! rounds and only advanced by rounds it won.

use std::path::{Path, PathBuf};
use std::time::Instant;

use alloy::primitives::{keccak256, B256, U256};
use alloy::sol_types::SolEvent;
use anyhow::Context;
use pogo_circuits::config::CircuitConfig;
use pogo_circuits::encoding::{Nibble, UpdateBlock, BLOCK_WEIGHTS};
use pogo_circuits::model::Model;
use pogo_circuits::sampling::sample_indices;
use pogo_circuits::tree_file::TreeFile;
use pogo_circuits::update::Update;
use pogo_circuits::update_circuit::{PublicInputs, SampleWitness};
use pogo_circuits::update_stream::UpdateStream;
use pogo_prover::prove::{prove, Keys};
use pogo_prover::setup::Setup;
use pogo_prover::stream::{sampled_blocks, update_stream_tree};
use pogo_prover::witness::assemble_sampled;
use pogo_verifier::evm::{proof_with_hints, u256_to_fr};
use pogo_verifier::keys::config_dir;
use pogo_verifier::rounds::{commitment, outcome, PogoRounds};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::{crash_point, draw, load_state, save_state, since, Event, Node, Phase, Step};
use crate::keystore::Wallet;
use crate::quantize::Residual;

/// How a miner misbehaves (for demonstrations and tests of slashing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Cheat {
    /// Honest.
    #[default]
    None,
    /// Commits a new model that is not old + update in one block (the last): the sampled
    /// proof passes unless it samples that block, and a verifier's fraud proof slashes it.
    Mismatch,
    /// Publishes a random update that does not lower the loss.
    NoGain,
    /// Publishes an update whose every scale is 0: no work, the model unchanged (refused
    /// at the reveal).
    Zero,
}

/// What a miner's commitment opens to: the roots, the blob hash and the secret salt.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Prepared {
    /// The root the update was trained from.
    pub old_root: U256,
    /// New model root.
    pub new_root: U256,
    /// Update root.
    pub update_root: U256,
    /// Blob hash (the blob waits in the miner's folder, unserved, until the reveal).
    pub blob_hash: B256,
    /// The salt that hides the roots in the commitment.
    pub salt: B256,
}

/// Where a miner is in its round.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum MinerPhase {
    /// Between rounds.
    #[default]
    Idle,
    /// Trained: the update and new model are ready; `round` is the round the commit is
    /// being sent to (`None` until a send is attempted), so a restart can find it on chain.
    Prepared {
        /// The commitment's preimage.
        prepared: Prepared,
        /// The round the commit went (or is going) to.
        round: Option<u64>,
    },
    /// The commit is in: candidate `index` of `round`.
    Committed {
        /// The commitment's preimage.
        prepared: Prepared,
        /// Round id.
        round: u64,
        /// Candidate index.
        index: u16,
    },
    /// Revealed; the blob is served. Next: randomness, then the proof.
    Revealed {
        /// Round id.
        round: u64,
        /// Candidate index.
        index: u16,
        /// New root.
        new_root: U256,
    },
    /// The proof is made (`proof.bin` in the state folder), maybe not yet submitted.
    Proved {
        /// Round id.
        round: u64,
        /// Candidate index.
        index: u16,
        /// New root.
        new_root: U256,
    },
    /// Submitted (or given up on); waiting for the round to be finalized.
    Submitted {
        /// Round id.
        round: u64,
        /// Candidate index.
        index: u16,
        /// New root.
        new_root: U256,
    },
}

/// What a miner persists.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MinerState {
    /// The state machine.
    pub phase: MinerPhase,
    /// Rounds this miner finished (won or not).
    pub finished: u64,
    /// Of which won.
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

    /// Its name in logs (`miner NAME`).
    pub fn name(&self) -> String {
        format!("miner {}", self.wallet.name())
    }

    fn set(&mut self, phase: MinerPhase) -> anyhow::Result<()> {
        self.state.phase = phase;
        save_state(&self.dir.join("miner.json"), &self.state)
    }

    fn residual_path(&self, next: bool) -> PathBuf {
        self.dir.join(if next { "residual.next.safetensors" } else { "residual.safetensors" })
    }

    /// Where the update blob waits, unserved, until the reveal.
    fn pending_blob(&self) -> PathBuf {
        self.dir.join("pending.blob")
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
                    let id = task.rounds - 1;
                    let r = node.rounds.round(node.chain.as_mut(), node.task, id)?;
                    if now > r.commitEnd {
                        return Ok(Step::Wait {
                            until: None,
                            why: format!(
                                "round {id} closed its commits at block {}; waiting for the next",
                                r.commitEnd
                            ),
                        });
                    }
                }
                self.train(node, task.rounds, task.root)
            }
            MinerPhase::Prepared { prepared, round } => {
                if let Some(id) = round.filter(|id| *id < task.rounds) {
                    // A commit was being sent: did it go in before we could record it?
                    let hash = self.commitment(node, id, &prepared);
                    let r = node.rounds.round(node.chain.as_mut(), node.task, id)?;
                    for c in node.rounds.candidates(node.chain.as_mut(), node.task, &r, id)?.iter().enumerate() {
                        if c.1.commitment == hash && c.1.miner == self.wallet.address() {
                            self.set(MinerPhase::Committed { prepared, round: id, index: c.0 as u16 })?;
                            return Ok(Step::Wait { until: None, why: "commit found on chain".into() });
                        }
                    }
                }
                if task.root != prepared.old_root {
                    // Another miner's update was accepted: this one is stale, and no round
                    // names its model, so pruning would never drop it.
                    self.set(MinerPhase::Idle)?;
                    self.abandon(node, &prepared, task.root)?;
                    return Ok(Step::Wait { until: None, why: "the root moved on; retraining".into() });
                }
                let target = if task.open { task.rounds - 1 } else { task.rounds };
                if task.open {
                    let r = node.rounds.round(node.chain.as_mut(), node.task, target)?;
                    if now > r.commitEnd {
                        return Ok(Step::Wait {
                            until: None,
                            why: format!("round {target} closed its commits; committing in the next"),
                        });
                    }
                }
                self.set(MinerPhase::Prepared { prepared, round: Some(target) })?;
                let start = Instant::now();
                let commitment = self.commitment(node, target, &prepared);
                let call = PogoRounds::commitCall { task: node.task, round: target, commitment };
                let receipt = match node.rounds.send(
                    node.chain.as_mut(),
                    &self.wallet,
                    call,
                    U256::from(node.params.minerBond),
                ) {
                    Ok(receipt) => receipt,
                    // The window closed or the round filled between our read and our send.
                    Err(e) if matches!(e.contract_error().as_deref(), Some("TooLate" | "RoundFull")) => {
                        return Ok(Step::Wait { until: None, why: format!("commit refused: {e}") });
                    }
                    Err(e) => return Err(e.into()),
                };
                crash_point("miner-after-commit");
                let index = receipt
                    .logs
                    .iter()
                    .find_map(|log| PogoRounds::Committed::decode_log(log).ok().map(|e| e.candidate))
                    .context("the commit emitted no Committed event")?;
                self.set(MinerPhase::Committed { prepared, round: target, index })?;
                Ok(self.event(
                    target,
                    Phase::Commit,
                    format!("committed candidate {index} (roots hidden until the reveal)"),
                    start,
                    receipt.gas_used,
                ))
            }
            MinerPhase::Committed { prepared, round, index } => {
                let r = node.rounds.round(node.chain.as_mut(), node.task, round)?;
                let c = node.rounds.candidate(node.chain.as_mut(), node.task, round, index)?;
                let new_root = prepared.new_root;
                if c.revealed {
                    // Serving is for the round's verifiers: a final round's store may be pruned.
                    if !r.finalized {
                        self.publish(node, new_root)?;
                    }
                    self.set(MinerPhase::Revealed { round, index, new_root })?;
                    return Ok(Step::Wait { until: None, why: "reveal found on chain".into() });
                }
                if r.finalized || now > r.revealEnd {
                    self.set(MinerPhase::Submitted { round, index, new_root })?;
                    // Never revealed: no round names its model.
                    self.abandon(node, &prepared, task.root)?;
                    return Ok(Step::Wait { until: None, why: "the reveal window passed".into() });
                }
                if now <= r.commitEnd {
                    return Ok(Step::Wait {
                        until: Some(r.commitEnd),
                        why: format!("reveal opens after block {}", r.commitEnd),
                    });
                }
                let start = Instant::now();
                let call = PogoRounds::revealCall {
                    task: node.task,
                    index,
                    newRoot: prepared.new_root,
                    updateRoot: prepared.update_root,
                    blobHash: prepared.blob_hash,
                    salt: prepared.salt,
                };
                let result = node.rounds.send(node.chain.as_mut(), &self.wallet, call, U256::ZERO);
                crash_point("miner-after-reveal");
                match result {
                    Ok(receipt) => {
                        self.publish(node, new_root)?;
                        self.set(MinerPhase::Revealed { round, index, new_root })?;
                        Ok(self.event(
                            round,
                            Phase::Commit,
                            format!("revealed candidate {index}: new root {new_root:#x}; serving its blob"),
                            start,
                            receipt.gas_used,
                        ))
                    }
                    // The chain did not take it (down, slow, restarting): nothing is lost
                    // while the window is open, so send it again.
                    Err(e) if !e.is_refusal() => Ok(Step::Wait {
                        until: None,
                        why: format!("reveal not sent ({e}); retrying until block {}", r.revealEnd),
                    }),
                    Err(e) => {
                        self.set(MinerPhase::Submitted { round, index, new_root })?;
                        Ok(self.event(round, Phase::Commit, format!("reveal refused: {e}"), start, 0))
                    }
                }
            }
            MinerPhase::Revealed { round, index, new_root } => {
                let r = node.rounds.round(node.chain.as_mut(), node.task, round)?;
                let c = node.rounds.candidate(node.chain.as_mut(), node.task, round, index)?;
                if r.finalized || c.proven {
                    self.set(MinerPhase::Submitted { round, index, new_root })?;
                    return Ok(Step::Wait { until: None, why: "proof already in".into() });
                }
                if let Some(step) = draw(node, &self.wallet, &self.name(), round, &r, now)? {
                    return Ok(step);
                }
                let Some(seed2) = node.rounds.seed(node.chain.as_mut(), node.task, round, 2)? else {
                    return Ok(Step::Wait { until: None, why: "phase-2 randomness".into() });
                };
                if now > r.proofEnd {
                    self.set(MinerPhase::Submitted { round, index, new_root })?;
                    return Ok(Step::Wait { until: None, why: "proof deadline passed".into() });
                }
                self.prove(node, round, index, &r, &c, seed2)
            }
            MinerPhase::Proved { round, index, new_root } => {
                let r = node.rounds.round(node.chain.as_mut(), node.task, round)?;
                let c = node.rounds.candidate(node.chain.as_mut(), node.task, round, index)?;
                if c.proven || r.finalized || now > r.proofEnd {
                    self.set(MinerPhase::Submitted { round, index, new_root })?;
                    return Ok(Step::Wait { until: None, why: "proof in or deadline passed".into() });
                }
                let proof = std::fs::read(self.dir.join("proof.bin")).context("reading the saved proof")?;
                let start = Instant::now();
                let call = PogoRounds::submitProofCall { task: node.task, index, proof: proof.into() };
                let result = node.rounds.send(node.chain.as_mut(), &self.wallet, call, U256::ZERO);
                crash_point("miner-after-submit");
                match &result {
                    // Not taken (see the reveal): the saved proof goes again.
                    Err(e) if !e.is_refusal() => {
                        return Ok(Step::Wait {
                            until: None,
                            why: format!("proof not sent ({e}); retrying until block {}", r.proofEnd),
                        })
                    }
                    _ => {}
                }
                self.set(MinerPhase::Submitted { round, index, new_root })?;
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
            MinerPhase::Submitted { round, index, new_root } => {
                let r = node.rounds.round(node.chain.as_mut(), node.task, round)?;
                if !r.finalized {
                    return super::finalizer::finalize_open_round(node, &self.wallet, &self.name(), round, &r, now);
                }
                let c = node.rounds.candidate(node.chain.as_mut(), node.task, round, index)?;
                let start = Instant::now();
                let next = self.residual_path(true);
                let won = c.outcome == outcome::WON;
                if won {
                    if next.exists() {
                        std::fs::rename(&next, self.residual_path(false)).context("adopting the residual")?;
                    }
                    self.state.accepted += 1;
                } else {
                    let _ = std::fs::remove_file(&next);
                }
                let _ = std::fs::remove_file(self.pending_blob());
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
                let verdict = match c.outcome {
                    outcome::WON => format!("won: root is now {new_root:#x}"),
                    outcome::RETURNED if r.winner != 0 => "beaten by a larger gain: bond returned".into(),
                    outcome::RETURNED => "not decided (no quorum, or the verifiers split): bond returned".into(),
                    _ if !c.revealed => "not revealed: bond slashed".into(),
                    _ if !c.proven => "not proven in time: bond slashed".into(),
                    _ if c.fraud => "a fraud proof showed a block wrong: bond slashed".into(),
                    _ => "rejected by the verifiers: bond slashed".into(),
                };
                Ok(self.event(
                    round,
                    Phase::Payout,
                    format!("round {round}: {verdict}; withdrew {owed} wei"),
                    start,
                    gas,
                ))
            }
        }
    }

    /// The commitment to `prepared` for round `id` (the contract's `commitmentOf`).
    fn commitment(&self, node: &Node, id: u64, p: &Prepared) -> B256 {
        commitment(
            node.rounds.address,
            node.task,
            id,
            self.wallet.address(),
            p.new_root,
            p.update_root,
            p.blob_hash,
            p.salt,
        )
    }

    /// Drops the model of a commit that will never be revealed (unless it is the current
    /// model) and its unserved blob: no final round names them, so pruning cannot.
    fn abandon(&self, node: &Node, prepared: &Prepared, current: U256) -> anyhow::Result<()> {
        if prepared.new_root != current {
            node.store.drop_model(prepared.new_root)?;
        }
        let _ = std::fs::remove_file(self.pending_blob());
        Ok(())
    }

    /// Moves the revealed blob into the served store, with the leaf list of the committed
    /// new model (what a challenger needs to prove a block wrong; a miner that serves no
    /// leaves gets negative attestations instead).
    fn publish(&self, node: &Node, new_root: U256) -> anyhow::Result<()> {
        if let Ok(blob) = std::fs::read(self.pending_blob()) {
            node.store.put_blob(&blob)?;
        }
        if node.store.local_leaves(new_root).is_none() && node.store.has_model(new_root) {
            node.store.put_leaves_of(new_root, &node.tree_at(new_root)?)?;
        }
        Ok(())
    }

    /// Trains from the accepted model and records the prepared commit.
    fn train(&mut self, node: &mut Node, round: u64, root: U256) -> anyhow::Result<Step> {
        let start = Instant::now();
        let current = node.model_at(root)?;
        let mut residual = match Residual::load(&self.residual_path(false)) {
            Ok(r) if r.values().len() as u64 == current.weight_count() => r,
            _ => Residual::zero(current.weight_count()),
        };
        // Each miner draws its own training batches from its secret salt: competing miners
        // must not make the same update (the contract refuses every copy after the first),
        // and nobody may predict this one's update and reveal it first.
        let salt = B256::from(rand::random::<[u8; 32]>());
        let drawn = keccak256([salt.as_slice(), b"pogo/training-stream"].concat());
        let stream = round ^ u64::from_be_bytes(drawn.0[..8].try_into().expect("8 bytes"));
        let out = node.trainer.work(&current, &mut residual, stream, &|| {})?;
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
            Cheat::Zero => {
                let blocks = (0..current.block_count())
                    .map(|_| UpdateBlock { scale: 0, nibbles: [Nibble::new(8).expect("below 16"); BLOCK_WEIGHTS] })
                    .collect();
                let update = Update::new(current.weight_count(), blocks)?;
                let new = update.apply(&current)?;
                (update, new)
            }
        };
        // The blob names the model it was made against (its root at the task's depth).
        let base = pogo_verifier::evm::u256_to_fr(root).context("the task's root is not a field element")?;
        let update = update.with_base(base, node.depth());
        let blob = update.to_blob();
        // The blob stays unserved until the reveal: served now, a watcher could copy it.
        pogo_circuits::files::write_atomic(&self.pending_blob(), &blob).context("keeping the update blob")?;
        let blob_hash = keccak256(&blob);
        // An honest new model is old + update: its tree is the old one with the changed
        // blocks' paths re-hashed. The mismatch cheat's is not, so it is hashed in full.
        let new_root = match self.cheat {
            Cheat::Mismatch => node.root(&new_model)?,
            _ => node.root_after(root, &update, &new_model)?,
        };
        let update_root = node.update_root(&update)?;
        node.store.put_model(new_root, &new_model)?;
        residual.save(&self.residual_path(true))?;
        let prepared = Prepared { old_root: root, new_root, update_root, blob_hash, salt };
        self.set(MinerPhase::Prepared { prepared, round: None })?;
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
                Cheat::Zero => " [cheating: no work, every scale 0]".into(),
            }
        );
        Ok(self.event(round, Phase::Train, what, start, 0))
    }

    fn prove(
        &mut self,
        node: &mut Node,
        round: u64,
        index: u16,
        r: &pogo_verifier::rounds::Round,
        c: &pogo_verifier::rounds::Candidate,
        seed2: [u8; 32],
    ) -> anyhow::Result<Step> {
        let start = Instant::now();
        let samples = node.params.samples as usize;
        let new_root = c.newRoot;
        let inputs = node.rounds.public_inputs(node.chain.as_mut(), node.task, index)?;
        let indices = sample_indices(&seed2, samples, node.params.nb);
        let on_chain: Vec<u64> = inputs[4..].iter().map(|v| v.saturating_to()).collect();
        anyhow::ensure!(on_chain == indices, "the contract samples {on_chain:?}, the native rule {indices:?}");
        if !node.store.has_model(r.oldRoot) {
            node.model_at(r.oldRoot)?;
        }
        anyhow::ensure!(node.store.has_model(new_root), "the new model is missing from the store");
        let blob = node.store.blob_file(c.blobHash).context("the update blob is missing from the store")?;
        if self.keys.is_none() {
            let config = CircuitConfig::new(node.depth(), samples)?;
            let (_, setup, keys) = pogo_prover::keys::load(&config_dir(&self.params_dir, &config.name()))
                .with_context(|| format!("loading the keys of {} (run `pogo setup`)", config.name()))?;
            self.keys = Some((setup, keys));
        }
        let (setup, keys) = self.keys.as_ref().expect("loaded");
        let proof = sampled_witness(node, r.oldRoot, new_root, &blob, &indices)
            .and_then(|(inputs, witness)| Ok(prove(setup, keys, &inputs, &witness)?));
        match proof {
            Ok(proof) => {
                // The task's verifier checks inverse hints after the proof instead of
                // computing them (cheaper, most of all under Osaka); running it here also
                // tells, before any gas is spent, whether it accepts the proof.
                let hinted = node
                    .chain
                    .code(node.params.verifier)
                    .map_err(anyhow::Error::from)
                    .and_then(|runtime| Ok(proof_with_hints(&runtime, &on_chain_instances(&inputs)?, &proof)?));
                let (submitted, note) = match hinted {
                    Ok(hinted) => (hinted, String::new()),
                    Err(e) => (proof, format!(", without inverse hints: {e:#}")),
                };
                pogo_circuits::files::write_atomic(&self.dir.join("proof.bin"), &submitted)?;
                self.set(MinerPhase::Proved { round, index, new_root })?;
                Ok(self.event(
                    round,
                    Phase::Prove,
                    format!("proved blocks {indices:?} ({} bytes{note})", submitted.len()),
                    start,
                    0,
                ))
            }
            Err(e) => {
                self.set(MinerPhase::Submitted { round, index, new_root })?;
                Ok(self.event(round, Phase::Prove, format!("cannot prove blocks {indices:?}: {e:#}"), start, 0))
            }
        }
    }
}

/// The witness for `indices` in bounded memory: the sampled blocks read from the kept
/// models and one pass over the blob, their paths from the store's tree files; only the
/// update's tree is hashed, into a scratch file (the blob holds no tree).
fn sampled_witness(
    node: &Node,
    old_root: U256,
    new_root: U256,
    blob: &std::path::Path,
    indices: &[u64],
) -> anyhow::Result<(PublicInputs, Vec<SampleWitness>)> {
    let (old, new) = (node.store.checkpoint(old_root)?, node.store.checkpoint(new_root)?);
    let update = UpdateStream::open(blob, old.weight_count())?;
    let scratch = node.store.scratch()?;
    let update_tree = scratch.path().join("update.tree");
    update_stream_tree(&update, Some(node.depth()), Some(&update_tree), &())?;
    let trees = [node.tree_at(old_root)?, node.tree_at(new_root)?, TreeFile::open(&update_tree)?];
    let sampled = sampled_blocks(&old, &new, &update, indices)?;
    Ok(assemble_sampled(old.block_count(), &sampled, [&trees[0], &trees[1], &trees[2]])?)
}

/// The contract's public inputs as field elements (it only hands out canonical ones).
fn on_chain_instances(inputs: &[U256]) -> anyhow::Result<Vec<pogo_circuits::field::Fr>> {
    inputs
        .iter()
        .map(|v| u256_to_fr(*v).with_context(|| format!("the contract's public input {v} is not a field element")))
        .collect()
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
