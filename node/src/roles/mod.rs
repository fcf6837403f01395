//! The node's roles (DESIGN §3): the miner (train, commit, draw randomness, prove, submit,
//! finalize), the owner (reveal each round's held-out batch), the verifier (fetch, rebuild,
//! evaluate, attest, claim) and the finalizer.
//!
//! Each role is a state machine advanced one action at a time by `step`, which reads the
//! chain first and persists its own state (temp file + rename) before and after every
//! transaction, so a node killed at any point resumes where it was: the chain says whether
//! a transaction went in, and nothing is sent twice.

pub mod challenge;
pub mod finalizer;
pub mod miner;
pub mod owner;
pub mod prune;
pub mod verifier;

use std::path::Path;
use std::time::Instant;

use alloy::primitives::{keccak256, B256, U256};
use anyhow::{bail, Context};
use pogo_circuits::field::Fr;
use pogo_circuits::model::Model;
use pogo_circuits::tree_file::TreeFile;
use pogo_circuits::update::Update;
use pogo_prover::commit::model_tree;
use pogo_verifier::evm::fr_to_u256;
use pogo_verifier::rounds::TaskParams;
use serde::{de::DeserializeOwned, Serialize};

use crate::chain::Chain;
use crate::contract::Rounds;
use crate::store::Store;
use crate::train::{TaskConfig, Trainer};

/// Where time goes in a round (for the demo's summary and the benchmark).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Training steps, quantization, exact new model.
    Train,
    /// Model and update roots, blob into the store, the commit transaction.
    Commit,
    /// Drawing phase-1 / phase-2 randomness.
    Randomness,
    /// The owner committing to or revealing held-out evaluation data.
    HeldOut,
    /// Building the witness and the halo2 proof.
    Prove,
    /// The submitProof transaction (on-chain verification).
    SubmitProof,
    /// Fetching the blob, rebuilding the new model and checking its roots.
    Rebuild,
    /// Evaluating old and new model on the phase-1 batch, and the attest transaction.
    Evaluate,
    /// Building and filing a fraud proof.
    Challenge,
    /// The finalize transaction.
    Finalize,
    /// Claiming slashed bonds and withdrawing.
    Payout,
    /// Dropping from the store what final rounds named and no one needs any more.
    Prune,
}

/// Something a role did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Event {
    /// Which role.
    pub role: String,
    /// Round it concerns.
    pub round: u64,
    /// Phase.
    pub phase: Phase,
    /// What happened, for people.
    pub what: String,
    /// Wall time spent (seconds).
    pub seconds: f64,
    /// Gas of the transaction, if one was sent.
    pub gas: u64,
}

/// The result of one `step` of a role.
#[derive(Debug)]
pub enum Step {
    /// It did something.
    Acted(Event),
    /// Nothing to do before block `until` (or before something else happens).
    Wait {
        /// The block the role waits for, if it waits for one.
        until: Option<u64>,
        /// Why it waits.
        why: String,
    },
    /// The role has finished (a miner's requested rounds are done).
    Done,
}

/// What every role shares: the chain, the contract, the task and its data, the store.
pub struct Node {
    /// The chain client.
    pub chain: Box<dyn Chain>,
    /// The round contract.
    pub rounds: Rounds,
    /// The task id.
    pub task: U256,
    /// Its registration parameters.
    pub params: TaskParams,
    /// The task's trainer (data, network).
    pub trainer: Trainer,
    /// This node's update store.
    pub store: Store,
    /// Other nodes' store URLs, where blobs are fetched.
    pub sources: Vec<String>,
}

impl Node {
    /// Connects to task `task` of the contract, checking the task file is the one registered
    /// (spec hash, dataset hash, genesis root).
    pub fn new(
        mut chain: Box<dyn Chain>,
        rounds: Rounds,
        task: U256,
        task_file: &Path,
        store: Store,
        sources: Vec<String>,
    ) -> anyhow::Result<Self> {
        let state = rounds.task(chain.as_mut(), task).with_context(|| format!("reading task {task}"))?;
        let config = TaskConfig::load(task_file)?;
        let (spec, dataset) = task_hashes(task_file, &config)?;
        if state.params.spec != spec {
            bail!(
                "{} is not the task registered as task {task} (spec hash {spec} vs {})",
                task_file.display(),
                state.params.spec
            );
        }
        if state.params.dataset != dataset {
            bail!(
                "the data of {} is not the task's dataset (hash {dataset} vs {})",
                task_file.display(),
                state.params.dataset
            );
        }
        let trainer = Trainer::new(config, candle_core::Device::Cpu)?;
        let node = Node { chain, rounds, task, params: state.params, trainer, store, sources };
        let genesis = node.trainer.genesis()?;
        if node.root(&genesis)? != node.params.genesisRoot {
            bail!("the task's genesis model does not have the registered genesis root");
        }
        Ok(node)
    }

    /// Trains and evaluates on `device` from now on (the genesis check ran on the CPU).
    pub fn use_device(&mut self, device: candle_core::Device) -> anyhow::Result<()> {
        self.trainer = Trainer::new(self.trainer.task.clone(), device)?;
        Ok(())
    }

    /// Tree depth of the task's circuit configuration.
    pub fn depth(&self) -> u32 {
        self.params.depth
    }

    /// A model's root at the task's depth.
    pub fn root(&self, model: &Model) -> anyhow::Result<U256> {
        model_root(model, self.depth())
    }

    /// An update's root at the task's depth (from its changed blocks' paths only).
    pub fn update_root(&self, update: &Update) -> anyhow::Result<U256> {
        Ok(fr_to_u256(&pogo_prover::commit::update_root(update, Some(self.depth()))?))
    }

    /// The tree of the model kept under `root`, on disk in the store (hashed from the kept
    /// model, streamed, the first time): no role holds a model tree in memory.
    pub fn tree_at(&self, root: U256) -> anyhow::Result<TreeFile> {
        Ok(self.store.tree(root, self.depth())?)
    }

    /// The root of `new` = the model kept under `old_root` + `update`, from the old tree
    /// file with only the changed blocks' paths re-hashed (the new tree file is kept).
    pub fn root_after(&self, old_root: U256, update: &Update, new: &Model) -> anyhow::Result<U256> {
        use rayon::prelude::*;
        let changed: Vec<(u64, Fr)> = update.changed().par_iter().map(|(b, _)| (*b, new.leaf(*b))).collect();
        Ok(self.store.tree_after(old_root, self.depth(), &changed)?.0)
    }

    /// The model with root `root`: from the store, or rebuilt from the accepted rounds
    /// that led to it (fetching their blobs).
    pub fn model_at(&mut self, root: U256) -> anyhow::Result<Model> {
        if let Some(model) = self.store.model(root) {
            return Ok(model);
        }
        if root == self.params.genesisRoot {
            // The task file makes it (checked against this root when the node started);
            // kept only while needed, so a pruned store does not grow it back.
            let genesis = self.trainer.genesis()?;
            self.store.put_model(root, &genesis)?;
            return Ok(genesis);
        }
        // Catch-up: a peer's checkpoint of the model at this root, checked against it, saves
        // replaying (and fetching) every accepted update since genesis.
        let checkpoint = match self.fetch_checkpoint(root) {
            Ok(model) => return Ok(model),
            Err(e) => e,
        };
        let count = self.rounds.task(self.chain.as_mut(), self.task)?.rounds;
        for id in (0..count).rev() {
            let r = self.rounds.round(self.chain.as_mut(), self.task, id)?;
            if r.winner == 0 {
                continue;
            }
            let w = self.rounds.candidate(self.chain.as_mut(), self.task, id, r.winner - 1)?;
            if w.newRoot == root {
                // Held in the store (only its root's model is loaded, below).
                drop(self.model_at(r.oldRoot)?);
                self.rebuild(r.oldRoot, w.blobHash, w.updateRoot, w.newRoot)?;
                return self.store.model(root).context("the rebuilt model is not in the store");
            }
        }
        bail!("no accepted round leads to root {root:#x}, and the store does not hold its model ({checkpoint})")
    }

    /// The model at `root` from the first peer store that holds it, if it has the task's
    /// block count and gives `root` at the task's depth (kept in the store then).
    pub fn fetch_checkpoint(&self, root: U256) -> Result<Model, crate::store::StoreError> {
        let (depth, nb) = (self.depth(), self.params.nb);
        // The f32 weights plus room for the safetensors header.
        let limit = nb * pogo_circuits::encoding::BLOCK_WEIGHTS as u64 * 4 + (1 << 20);
        self.store.fetch_model(root, &self.sources, limit, |model| {
            if model.block_count() != nb {
                return Err(format!("{} blocks, the task's model has {nb}", model.block_count()));
            }
            let got = model_root(model, depth).map_err(|e| e.to_string())?;
            if got != root {
                return Err(format!("its root is {got:#x}"));
            }
            Ok(())
        })
    }

    /// Fetches blob `hash`, checks it was made against the model kept under `old_root` when
    /// it says, applies it and checks the update and new roots; keeps the new model in the
    /// store.
    pub fn rebuild(&self, old_root: U256, hash: B256, update_root: U256, new_root: U256) -> anyhow::Result<()> {
        let update = self.fetch_update(old_root, hash, update_root)?;
        let got = self
            .rebuild_into_store(old_root, &update, new_root)?
            .context("the update does not apply to the old model")?;
        if got != new_root {
            bail!("old model + update has root {got:#x}, not the committed {new_root:#x}");
        }
        Ok(())
    }

    /// The model kept under `old_root` plus `update`, rebuilt from the store into the store
    /// ([`Store::apply_update`]): its root, kept if it is `expect`; `Ok(Err(_))`: the update
    /// does not apply.
    pub fn rebuild_into_store(
        &self,
        old_root: U256,
        update: &Update,
        expect: U256,
    ) -> anyhow::Result<Result<U256, pogo_circuits::update::UpdateError>> {
        self.store.apply_update(old_root, self.depth(), update, expect)
    }
}

/// The hashes a task is registered with: keccak-256 of the task file's bytes, and of its
/// data file's bytes.
pub fn task_hashes(task_file: &Path, config: &TaskConfig) -> anyhow::Result<(B256, B256)> {
    let spec = keccak256(std::fs::read(task_file).with_context(|| format!("reading {}", task_file.display()))?);
    let data = config.data_path();
    let dataset = keccak256(std::fs::read(data).with_context(|| format!("reading {}", data.display()))?);
    Ok((spec, dataset))
}

/// A model's Merkle root at `depth`, as the contract holds roots (all cores).
pub fn model_root(model: &Model, depth: u32) -> anyhow::Result<U256> {
    Ok(fr_to_u256(&model_tree(model, Some(depth), &())?.root()))
}

/// Losses go on chain as integers in units of 1e-9: `round(L · 10⁹)` (half away from zero)
/// of the reference evaluator's `f64` loss `L` (`train::reference`), which has the same
/// bits on every CPU, so honest verifiers post the same integer; task margins are in the
/// same units. A NaN or infinite loss is the worst (`u64::MAX`), not 0 (which `f64::max`
/// would make of NaN); a loss beyond `u64` saturates there too.
pub fn loss_units(loss: f64) -> u64 {
    if !loss.is_finite() {
        return u64::MAX;
    }
    // `as` saturates: a loss above ~1.8e10 nats is u64::MAX units.
    (loss.max(0.0) * 1e9).round() as u64
}

/// A candidate's median gain as the contract holds it (loss units of 1e-9, signed), as a
/// loss difference; a gain beyond `i64` (a negative verdict's sentinel) is -inf.
pub fn gain(units: alloy::primitives::I256) -> f64 {
    i64::try_from(units).map(|v| v as f64 / 1e9).unwrap_or(f64::NEG_INFINITY)
}

/// Reads a role's state file (the default when there is none).
pub fn load_state<T: Default + DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| format!("{} is damaged", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Writes a role's state file (temp file + rename).
pub fn save_state<T: Serialize>(path: &Path, state: &T) -> anyhow::Result<()> {
    let json = serde_json::to_vec_pretty(state).expect("states serialize");
    pogo_circuits::files::write_atomic(path, &json).with_context(|| format!("writing {}", path.display()))
}

/// Test hook for restart safety: when `POGO_CRASH_AT` names this point, the process
/// aborts on the spot, as `kill -9` would (no destructors, no flushing).
pub fn crash_point(name: &str) {
    if std::env::var("POGO_CRASH_AT").is_ok_and(|v| v == name) {
        eprintln!("POGO_CRASH_AT={name}: aborting");
        std::process::abort();
    }
}

/// Seconds since `start`.
pub fn since(start: Instant) -> f64 {
    start.elapsed().as_secs_f64()
}

/// The task's open round (its id and state), or `None` while no round is open.
pub fn open_round(node: &mut Node) -> anyhow::Result<Option<(u64, pogo_verifier::rounds::Round)>> {
    let task = node.rounds.task(node.chain.as_mut(), node.task)?;
    if !task.open {
        return Ok(None);
    }
    let round = task.rounds - 1;
    Ok(Some((round, node.rounds.round(node.chain.as_mut(), node.task, round)?)))
}

/// The first block at which both seeds of a round can be read: phase 1 is the hash of
/// block `revealEnd + 1`, phase 2 the hash of the block after it.
pub fn seeds_ready_at(r: &pogo_verifier::rounds::Round) -> u64 {
    r.revealEnd + 3
}

/// Draws both randomness phases of `round` once their blocks have closed (anyone may; the
/// seeds do not depend on who draws or when); `None` when they are already drawn.
pub fn draw(
    node: &mut Node,
    wallet: &crate::keystore::Wallet,
    role: &str,
    round: u64,
    r: &pogo_verifier::rounds::Round,
    now: u64,
) -> anyhow::Result<Option<Step>> {
    if r.seed2 != B256::ZERO {
        return Ok(None);
    }
    let ready = seeds_ready_at(r);
    if now < ready {
        return Ok(Some(Step::Wait {
            until: Some(ready - 1),
            why: format!("randomness: phase 1 from block {}, phase 2 from block {}", r.revealEnd + 1, r.revealEnd + 2),
        }));
    }
    let start = Instant::now();
    match node.rounds.send(
        node.chain.as_mut(),
        wallet,
        pogo_verifier::rounds::PogoRounds::drawRandomnessCall { task: node.task },
        U256::ZERO,
    ) {
        Ok(receipt) => Ok(Some(Step::Acted(Event {
            role: role.to_string(),
            round,
            phase: Phase::Randomness,
            what: format!(
                "drew phase-1 randomness from block {} and phase-2 randomness from block {}",
                r.revealEnd + 1,
                r.revealEnd + 2
            ),
            seconds: since(start),
            gas: receipt.gas_used,
        }))),
        // Someone else drew it between our read and our transaction (or an attestation did).
        Err(e) if matches!(e.contract_error().as_deref(), Some("AlreadyDrawn")) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
