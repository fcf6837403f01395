//! A round-contract world for tests and the gas benchmark: real keys for a small
//! configuration, its generated and compiled verifier, the round contract, funded actors,
//! and a chain of honest models so several rounds can be accepted in a row.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use pogo_circuits::config::CircuitConfig;
use pogo_circuits::encoding::{bias, Nibble, UpdateBlock, BLOCK_WEIGHTS};
use pogo_circuits::field::Fr;
use pogo_circuits::model::{Model, TensorInfo};
use pogo_circuits::update::Update;
use pogo_prover::keys;
use pogo_prover::prove::{keygen, prove, Keys};
use pogo_prover::setup::{dev_setup, Setup};
use pogo_prover::witness::{assemble, round_trees};
use pogo_verifier::evm::{
    export_verifier, fr_to_u256, load_verifier, proof_with_hints, u256_to_fr, Address, Evm, Fork, Receipt, Solc, B256,
    U256,
};
use pogo_verifier::heldout::EvalTree;
use pogo_verifier::keys::{config_dir, SetupOrigin};
use pogo_verifier::rounds::{commitment, verdict, PogoRounds, RoundsContract, RoundsError, TaskParams};

pub const ETHER: u128 = 1_000_000_000_000_000_000;
pub const BOND: u128 = ETHER;
pub const STAKE: u128 = ETHER;
pub const REWARD: u128 = ETHER / 2;
pub const POOL: u128 = 10 * ETHER;
pub const COMMIT_WINDOW: u64 = 5;
pub const REVEAL_WINDOW: u64 = 5;
pub const PROOF_WINDOW: u64 = 20;
pub const ATTEST_WINDOW: u64 = 40;
pub const CHALLENGE_WINDOW: u64 = 10;
/// Share of a positive attester's stake a proven fraud takes.
pub const FRAUD_SLASH_BPS: u16 = 5000;
pub const MAX_CANDIDATES: u16 = 4;
pub const FEE_BPS: u16 = 1000;
/// The loss every test attestation gives the old model (units of 1e-9).
pub const LOSS_OLD: u64 = 2_000_000_000;
pub const MARGIN: u64 = 1_000_000;
pub const VERIFIER_GAS: u64 = 2_000_000;
/// Held-out batches the test owner commits to at task creation.
pub const EVAL_BATCHES: u32 = 8;

/// Examples per held-out batch: the digits task's eval_batch_size.
pub const EVAL_EXAMPLES: u32 = 128;

/// Held-out batch `i` of set `set`: [`EVAL_EXAMPLES`] examples of 65 bytes, as a digits batch.
pub fn eval_batch(set: u32, i: u32) -> Vec<u8> {
    (0..EVAL_EXAMPLES * 65).map(|j| (set.wrapping_mul(131) ^ i.wrapping_mul(31) ^ j.wrapping_mul(7)) as u8).collect()
}

/// A set of `n` held-out batches and its tree.
pub fn eval_set(set: u32, n: u32) -> (Vec<Vec<u8>>, EvalTree) {
    let batches: Vec<Vec<u8>> = (0..n).map(|i| eval_batch(set, i)).collect();
    let tree = EvalTree::new(&batches).unwrap();
    (batches, tree)
}

/// The compiler, installed by the repository's script if needed.
pub fn solc() -> Solc {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    Solc::from_install_script(&root.join("scripts/solc/install.sh")).unwrap()
}

/// Honest models `m_0 → m_1 → ...` and the updates between them.
pub struct ModelChain {
    pub models: Vec<Model>,
    pub updates: Vec<Update>,
}

impl ModelChain {
    pub fn new(blocks: u64, rounds: usize, seed: u64) -> Self {
        let n = (blocks as usize - 1) * BLOCK_WEIGHTS + 60;
        let mut x = seed;
        let mut next = move || {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (x >> 33) as u32
        };
        let weights = (0..n).map(|_| bias((next() % 2_000_000) as i32 - 1_000_000)).collect();
        let mut models =
            vec![
                Model::new(Default::default(), vec![TensorInfo { name: "w".into(), shape: vec![n] }], weights).unwrap()
            ];
        let mut updates = Vec::new();
        for _ in 0..rounds {
            let blocks = (0..blocks)
                .map(|b| {
                    let used = (n - b as usize * BLOCK_WEIGHTS).min(BLOCK_WEIGHTS);
                    UpdateBlock {
                        scale: next() % 100 + 1,
                        nibbles: std::array::from_fn(|j| {
                            Nibble::new(if j < used { (next() % 16) as u8 } else { 8 }).unwrap()
                        }),
                    }
                })
                .collect();
            let update = Update::new(n as u64, blocks).unwrap();
            models.push(update.apply(models.last().unwrap()).unwrap());
            updates.push(update);
        }
        ModelChain { models, updates }
    }

    pub fn root(&self, i: usize, depth: u32) -> Fr {
        self.models[i].reference_tree(depth).unwrap().root()
    }
}

/// Proofs by (new model's root, sampled indices).
type ProofCache = HashMap<(U256, Vec<u64>), Vec<u8>>;

/// Keys, verifier bytecode and models of one configuration, made once per test binary.
pub struct Fixture {
    pub depth: u32,
    pub samples: usize,
    pub blocks: u64,
    pub setup: Setup,
    pub keys: Keys,
    pub verifier_code: Vec<u8>,
    pub chain: ModelChain,
    proofs: Mutex<ProofCache>,
    _dir: tempfile::TempDir,
}

impl Fixture {
    /// Keys written to a folder, the verifier exported there and loaded back (hash-checked).
    pub fn new(depth: u32, samples: usize, blocks: u64, rounds: usize) -> Self {
        let shape = CircuitConfig::new(depth, samples).unwrap().shape().unwrap();
        let setup = dev_setup(shape.k, 7);
        let keys = keygen(&setup, &shape).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let folder = config_dir(dir.path(), &shape.config.name());
        keys::write(&folder, &setup, SetupOrigin::DevSeededInsecure { seed: 7 }, &keys).unwrap();
        export_verifier(&folder, &solc()).unwrap();
        let (_, verifier_code) = load_verifier(&folder).unwrap();
        let chain = ModelChain::new(blocks, rounds, 99);
        Fixture {
            depth,
            samples,
            blocks,
            setup,
            keys,
            verifier_code,
            chain,
            proofs: Mutex::new(HashMap::new()),
            _dir: dir,
        }
    }

    /// The shared small configuration: D = 1, S = 2, two blocks, three honest rounds.
    pub fn small() -> &'static Fixture {
        static SMALL: OnceLock<Fixture> = OnceLock::new();
        SMALL.get_or_init(|| Fixture::new(1, 2, 2, 3))
    }

    /// A proof that update `position` (model `position` → `position + 1`) was applied at `indices`.
    pub fn proof(&self, position: usize, indices: &[u64]) -> Vec<u8> {
        let (old, new, update) =
            (&self.chain.models[position], &self.chain.models[position + 1], &self.chain.updates[position]);
        self.proof_of(old, new, update, indices)
    }

    /// A proof that `update` takes `old` to `new` at `indices` (cached by new root).
    pub fn proof_of(&self, old: &Model, new: &Model, update: &Update, indices: &[u64]) -> Vec<u8> {
        let key = (fr_to_u256(&new.reference_tree(self.depth).unwrap().root()), indices.to_vec());
        if let Some(proof) = self.proofs.lock().unwrap().get(&key) {
            return proof.clone();
        }
        let trees = round_trees(old, new, update, self.depth, &()).unwrap();
        let (inputs, witness) = assemble(old, new, update, &trees, indices).unwrap();
        let proof = prove(&self.setup, &self.keys, &inputs, &witness).unwrap();
        self.proofs.lock().unwrap().insert(key, proof.clone());
        proof
    }

    /// Another honest update of the genesis model, for competing miners: (update, new
    /// model), the first update `ModelChain::new(.., seed 100 + k)` makes, applied to model 0.
    pub fn rival(&self, k: usize) -> (Update, Model) {
        let other = ModelChain::new(self.blocks, 1, 100 + k as u64);
        let update = other.updates[0].clone();
        let new = update.apply(&self.chain.models[0]).unwrap();
        (update, new)
    }

    /// A proof of rival `k` at `indices`.
    pub fn rival_proof(&self, k: usize, indices: &[u64]) -> Vec<u8> {
        let (update, new) = self.rival(k);
        self.proof_of(&self.chain.models[0], &new, &update, indices)
    }

    /// (new root, update root) of rival `k`.
    pub fn rival_roots(&self, k: usize) -> (U256, U256) {
        let (update, new) = self.rival(k);
        (
            fr_to_u256(&new.reference_tree(self.depth).unwrap().root()),
            fr_to_u256(&update.reference_tree(self.depth).unwrap().root()),
        )
    }

    pub fn roots(&self, position: usize) -> (U256, U256) {
        let new_root = self.chain.root(position + 1, self.depth);
        let update_root = self.chain.updates[position].reference_tree(self.depth).unwrap().root();
        (fr_to_u256(&new_root), fr_to_u256(&update_root))
    }
}

/// One commitment of the current round, with what its reveal needs.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    pub miner: Address,
    pub index: u16,
    pub new_root: U256,
    pub update_root: U256,
    pub blob_hash: B256,
    pub salt: B256,
}

/// A chain with the verifier and the round contract deployed and one task registered.
pub struct World {
    pub fx: &'static Fixture,
    pub evm: Evm,
    pub rounds: RoundsContract,
    pub verifier: Address,
    pub task: U256,
    pub owner: Address,
    /// The first of `miners`: the one `commit` and `honest_round` use.
    pub miner: Address,
    pub miners: Vec<Address>,
    pub verifiers: Vec<Address>,
    /// Commitments of the current round, in commit order.
    pub entries: Vec<Entry>,
    /// Gas of each transaction sent through [`World::send`], by label.
    pub gas: Vec<(String, u64)>,
    /// The owner's held-out sets (batches and tree), in the contract's order.
    pub eval: Vec<(Vec<Vec<u8>>, EvalTree)>,
    /// Whether the owner reveals the drawn batch when a verifier first needs it.
    pub owner_online: bool,
    /// Every event emitted by a transaction sent through [`World::send`].
    pub logs: Vec<pogo_verifier::evm::Log>,
    /// Attestations committed and not yet revealed.
    pub sealed: Vec<Sealed>,
}

/// An attestation committed with `attest`, to be opened with `revealAttestation`.
#[derive(Debug, Clone)]
pub struct Sealed {
    pub round: u64,
    pub verifier: Address,
    pub loss_old: u64,
    pub verdicts: Vec<u8>,
    pub losses: Vec<u64>,
    pub salt: B256,
}

/// The contract error's name of a call that must be refused (panics if it went through).
pub fn refused<T>(result: Result<T, RoundsError>) -> String {
    match result {
        Err(e) => e.contract_error().unwrap_or_else(|| panic!("not a contract error: {e}")).to_string(),
        Ok(_) => panic!("the contract accepted what it must refuse"),
    }
}

pub fn actor(n: u8) -> Address {
    Address::repeat_byte(n)
}

impl World {
    /// Deploys everything; `tweak` adjusts the task's parameters before registration.
    pub fn new(fx: &'static Fixture, verifiers: usize, tweak: impl FnOnce(&mut TaskParams)) -> Self {
        Self::with_miners(fx, verifiers, 4, tweak)
    }

    /// [`World::new`] with `miners` funded miners.
    pub fn with_miners(
        fx: &'static Fixture,
        verifiers: usize,
        miners: usize,
        tweak: impl FnOnce(&mut TaskParams),
    ) -> Self {
        let mut evm = Evm::new(Fork::Prague);
        // The generated verifier exceeds EIP-170 (docs/BENCHMARKS.md); like Anvil's
        // --disable-code-size-limit, the test chain accepts it.
        evm.set_code_size_limit(false);
        let owner = actor(0x10);
        assert!(miners <= 64 && verifiers <= 64, "actor addresses overlap");
        let miners: Vec<Address> = (0..miners as u8).map(|i| actor(0x80 + i)).collect();
        let verifier_accounts: Vec<Address> = (0..verifiers as u8).map(|i| actor(0x30 + i)).collect();
        for who in [owner].iter().chain(&miners).chain(&verifier_accounts) {
            evm.set_balance(*who, U256::from(1000 * ETHER));
        }
        let (verifier, deploy_verifier) = evm.deploy(owner, fx.verifier_code.clone(), U256::ZERO).unwrap();
        let (rounds, deploy_rounds) = RoundsContract::deploy(&mut evm, owner).unwrap();
        let genesis = fr_to_u256(&fx.chain.root(0, fx.depth));
        let mut params = TaskParams {
            genesisRoot: genesis,
            nb: fx.blocks,
            depth: fx.depth,
            samples: fx.samples as u32,
            verifier,
            verifierGas: VERIFIER_GAS,
            commitWindow: COMMIT_WINDOW,
            revealWindow: REVEAL_WINDOW,
            proofWindow: PROOF_WINDOW,
            attestWindow: ATTEST_WINDOW,
            challengeWindow: CHALLENGE_WINDOW,
            maxCandidates: MAX_CANDIDATES,
            verifierFeeBps: FEE_BPS,
            fraudSlashBps: FRAUD_SLASH_BPS,
            margin: MARGIN,
            quorum: 2 * STAKE,
            minerBond: BOND,
            minVerifierStake: STAKE,
            reward: REWARD,
            dataset: B256::repeat_byte(0xda),
            spec: B256::repeat_byte(0x5c),
            evalRoot: B256::ZERO,
            evalBatches: EVAL_BATCHES,
            committee: 0,
        };
        let first = eval_set(0, EVAL_BATCHES);
        params.evalRoot = first.1.root();
        tweak(&mut params);
        let mut world = World {
            fx,
            evm,
            rounds,
            verifier,
            task: U256::ZERO,
            owner,
            miner: miners[0],
            miners,
            verifiers: verifier_accounts,
            entries: Vec::new(),
            gas: vec![
                ("deploy verifier".into(), deploy_verifier.gas_used),
                ("deploy rounds".into(), deploy_rounds.gas_used),
            ],
            eval: vec![first],
            owner_online: true,
            logs: Vec::new(),
            sealed: Vec::new(),
        };
        let task = world.send("createTask", owner, PogoRounds::createTaskCall { p: params }, POOL).unwrap();
        world.task = task;
        for v in world.verifiers.clone() {
            world.send("join", v, PogoRounds::joinCall { task }, STAKE).unwrap();
        }
        // Stake weighs only in rounds opened after the block it joined in.
        world.evm.mine(1);
        world
    }

    /// Registers `n` more verifiers (addresses beyond the 64 fixed actors), each staking
    /// [`STAKE`], then mines a block so that their stakes weigh in the next round.
    pub fn register_verifiers(&mut self, n: usize) {
        let task = self.task;
        for i in 0..n {
            let word = pogo_verifier::evm::keccak256([b"pogo bench verifier".as_slice(), &i.to_be_bytes()].concat());
            let v = Address::from_word(word);
            self.evm.set_balance(v, U256::from(1000 * ETHER));
            self.send("join", v, PogoRounds::joinCall { task }, STAKE).unwrap();
            self.verifiers.push(v);
        }
        self.evm.mine(1);
    }

    /// Sends a call, recording its gas under `label`.
    pub fn send<C: alloy_sol_types::SolCall>(
        &mut self,
        label: &str,
        from: Address,
        call: C,
        value: u128,
    ) -> Result<C::Return, RoundsError> {
        let (ret, receipt): (C::Return, Receipt) = self.rounds.send(&mut self.evm, from, call, U256::from(value))?;
        self.gas.push((label.to_string(), receipt.gas_used));
        self.logs.extend(receipt.logs);
        Ok(ret)
    }

    pub fn task_state(&mut self) -> PogoRounds::getTaskReturn {
        self.rounds.read(&mut self.evm, PogoRounds::getTaskCall { task: self.task }).unwrap()
    }

    /// The last round opened.
    pub fn round(&mut self) -> pogo_verifier::rounds::Round {
        let id = self.task_state().roundCount.checked_sub(1).expect("a round was opened");
        self.round_at(id)
    }

    pub fn round_at(&mut self, round: u64) -> pogo_verifier::rounds::Round {
        self.rounds.read(&mut self.evm, PogoRounds::getRoundCall { task: self.task, round }).unwrap()
    }

    pub fn candidate(&mut self, round: u64, index: u16) -> pogo_verifier::rounds::Candidate {
        self.rounds.read(&mut self.evm, PogoRounds::getCandidateCall { task: self.task, round, index }).unwrap()
    }

    /// Index in the model chain of the task's current root.
    pub fn position(&mut self) -> usize {
        self.position_of().expect("the root is one of the chain's models")
    }

    /// Like [`World::position`], `None` when the root is not on the model chain (a rival won).
    pub fn position_of(&mut self) -> Option<usize> {
        let root = self.task_state().root;
        (0..self.fx.chain.models.len()).find(|&i| fr_to_u256(&self.fx.chain.root(i, self.fx.depth)) == root)
    }

    /// `miner` commits to (new root, update root); returns its candidate index. The first
    /// commit of a round forgets the previous round's entries.
    pub fn commit_as(&mut self, miner: Address, new_root: U256, update_root: U256) -> Result<u16, RoundsError> {
        let state = self.task_state();
        let round = if state.open { state.roundCount - 1 } else { state.roundCount };
        if !state.open {
            self.entries.clear();
        }
        let salt = B256::from(U256::from(self.entries.len() as u64 + 1) * U256::from(0x5a17u64));
        let blob_hash = B256::from(update_root);
        let hash = commitment(self.rounds.address, self.task, round, miner, new_root, update_root, blob_hash, salt);
        let call = PogoRounds::commitCall { task: self.task, round, commitment: hash };
        let ret = self.send("commit", miner, call, BOND)?;
        let entry = Entry { miner, index: ret.index, new_root, update_root, blob_hash, salt };
        self.entries.push(entry);
        Ok(ret.index)
    }

    /// The round a commit would go to now.
    pub fn next_round(&mut self) -> u64 {
        let state = self.task_state();
        if state.open {
            state.roundCount - 1
        } else {
            state.roundCount
        }
    }

    /// The first miner commits the next honest update.
    pub fn commit(&mut self) -> Result<u16, RoundsError> {
        let position = self.position();
        let (new_root, update_root) = self.fx.roots(position);
        self.commit_as(self.miner, new_root, update_root)
    }

    /// Mines until the reveal window is open.
    pub fn mine_to_reveal(&mut self) {
        let end = self.round().commitEnd;
        let now = self.evm.block_number();
        if now <= end {
            self.evm.mine(end + 1 - now);
        }
    }

    /// Reveals entry `k` of the current round.
    pub fn reveal(&mut self, k: usize) -> Result<(), RoundsError> {
        let e = self.entries[k];
        let call = PogoRounds::revealCall {
            task: self.task,
            index: e.index,
            newRoot: e.new_root,
            updateRoot: e.update_root,
            blobHash: e.blob_hash,
            salt: e.salt,
        };
        self.send("reveal", e.miner, call, 0).map(|_| ())
    }

    /// Opens the reveal window and reveals every entry.
    pub fn reveal_all(&mut self) {
        self.mine_to_reveal();
        for k in 0..self.entries.len() {
            self.reveal(k).unwrap();
        }
    }

    /// Mines until both seed blocks are closed (revealEnd + 2 < now).
    pub fn mine_to_randomness(&mut self) {
        let ready = self.round().revealEnd + 3;
        let now = self.evm.block_number();
        if now < ready {
            self.evm.mine(ready - now);
        }
    }

    /// Mines past both seed blocks and draws them.
    pub fn draw(&mut self) {
        self.mine_to_randomness();
        let owner = self.owner;
        self.send("drawRandomness", owner, PogoRounds::drawRandomnessCall { task: self.task }, 0).unwrap();
    }

    /// The sampled indices the contract derives for the open round (the same for every
    /// candidate: they come from phase 2 alone).
    pub fn indices(&mut self) -> Vec<u64> {
        let index = self.entries[0].index;
        let call = PogoRounds::publicInputsCall { task: self.task, index };
        let inputs = self.rounds.read(&mut self.evm, call).unwrap();
        inputs[4..].iter().map(|i| i.to::<u64>()).collect()
    }

    /// The honest proof of the next update in the model chain, for the open round, with
    /// the verifier's inverse hints after it (what a pogo miner submits).
    pub fn honest_proof(&mut self) -> Vec<u8> {
        let indices = self.indices();
        let position = self.position();
        let proof = self.fx.proof(position, &indices);
        self.with_hints(0, proof)
    }

    /// `proof` of entry `k`'s candidate with the verifier's inverse hints after it.
    pub fn with_hints(&mut self, k: usize, proof: Vec<u8>) -> Vec<u8> {
        let index = self.entries[k].index;
        let inputs = self.rounds.read(&mut self.evm, PogoRounds::publicInputsCall { task: self.task, index }).unwrap();
        let instances: Vec<Fr> = inputs.iter().map(|v| u256_to_fr(*v).unwrap()).collect();
        let runtime = self.evm.code(self.verifier);
        proof_with_hints(&runtime, &instances, &proof).unwrap()
    }

    /// Submits `proof` for entry 0.
    pub fn submit(&mut self, proof: Vec<u8>) -> Result<(), RoundsError> {
        self.submit_for(0, proof)
    }

    pub fn submit_for(&mut self, k: usize, proof: Vec<u8>) -> Result<(), RoundsError> {
        let e = self.entries[k];
        let call = PogoRounds::submitProofCall { task: self.task, index: e.index, proof: proof.into() };
        self.send("submitProof", e.miner, call, 0).map(|_| ())
    }

    /// The batch phase 1 drew for the open round, with its path: (set, batch, data, path).
    pub fn drawn_eval(&mut self) -> Result<(u32, u32, Vec<u8>, Vec<B256>), RoundsError> {
        let drawn = self.rounds.read(&mut self.evm, PogoRounds::evalBatchOfCall { task: self.task })?;
        let (batches, tree) = &self.eval[drawn.set as usize];
        Ok((drawn.set, drawn.batch, batches[drawn.batch as usize].clone(), tree.path(drawn.batch)))
    }

    /// Mines until the proof window is over (the held-out reveal's window is open).
    pub fn mine_past_proofs(&mut self) {
        let end = self.round().proofEnd;
        let now = self.evm.block_number();
        if now <= end {
            self.evm.mine(end + 1 - now);
        }
    }

    /// Mines until the held-out reveal's window is over (attestations are open).
    pub fn mine_to_attest(&mut self) {
        let end = self.round().evalEnd;
        let now = self.evm.block_number();
        if now <= end {
            self.evm.mine(end + 1 - now);
        }
    }

    /// The owner reveals the drawn batch of the open round, once the proof window is over.
    pub fn reveal_eval(&mut self) -> Result<(), RoundsError> {
        self.mine_to_randomness();
        self.mine_past_proofs();
        let (_, _, data, path) = self.drawn_eval()?;
        let owner = self.owner;
        let call = PogoRounds::revealEvalDataCall { task: self.task, data: data.into(), path };
        self.send("revealEvalData", owner, call, 0).map(|_| ())
    }

    /// The owner commits to a fresh set of `n` held-out batches.
    pub fn add_eval(&mut self, n: u32) -> Result<(), RoundsError> {
        let set = eval_set(self.eval.len() as u32, n);
        let (owner, root) = (self.owner, set.1.root());
        self.send("addEvalData", owner, PogoRounds::addEvalDataCall { task: self.task, root, batches: n }, 0)?;
        self.eval.push(set);
        Ok(())
    }

    /// `verifier` attests: `None` for unrevealed candidates, else the verdict and new loss
    /// `judge(k)` gives entry `k`. An online owner first reveals the evaluation batch if
    /// nobody has and something is proven (mining past the proof window); once it is
    /// revealed, the chain is mined past the reveal's window, where attestations open.
    pub fn attest_with(&mut self, verifier: Address, judge: impl Fn(usize) -> (u8, u64)) -> Result<(), RoundsError> {
        let state = self.task_state();
        if state.open {
            let r = self.round();
            if self.owner_online && r.evalBlock == 0 && r.proven > 0 && self.evm.block_number() <= r.evalEnd {
                self.reveal_eval()?;
            }
            if self.round().evalBlock != 0 {
                self.mine_to_attest();
            }
        }
        let round = state.roundCount.saturating_sub(1);
        let commits = if state.roundCount == 0 { 0 } else { self.round_at(round).commits };
        let mut verdicts = Vec::new();
        let mut losses = Vec::new();
        for i in 0..commits {
            let c = self.candidate(round, i);
            let (v, loss) = if c.revealed {
                judge(self.entries.iter().position(|e| e.index == i).unwrap_or(i as usize))
            } else {
                (verdict::NONE, 0)
            };
            verdicts.push(v);
            losses.push(loss);
        }
        self.attest_sealed(verifier, LOSS_OLD, verdicts, losses)
    }

    /// Commits `verifier` to (old loss, verdicts, new losses) with a fresh salt; the
    /// attestation is opened by [`World::reveal_attestation`] (or when the window closes).
    pub fn attest_sealed(
        &mut self,
        verifier: Address,
        loss_old: u64,
        verdicts: Vec<u8>,
        losses: Vec<u64>,
    ) -> Result<(), RoundsError> {
        let round = self.task_state().roundCount.saturating_sub(1);
        let salt = B256::from(U256::from(0xa77e57u64) * U256::from(self.sealed.len() as u64 + 1) + U256::from(round));
        let hash = pogo_verifier::rounds::attestation_commitment(
            self.rounds.address,
            self.task,
            round,
            verifier,
            loss_old,
            &verdicts,
            &losses,
            salt,
        );
        // The committee seats it won (none on a task without a committee).
        let seats = self.seats(round, verifier).unwrap_or_default();
        self.send("attest", verifier, PogoRounds::attestCall { task: self.task, commitment: hash, seats }, 0)?;
        self.sealed.retain(|s| s.verifier != verifier && s.round == round);
        self.sealed.push(Sealed { round, verifier, loss_old, verdicts, losses, salt });
        Ok(())
    }

    /// The seats of round `round`'s committee `verifier` wins, as the contract lists them.
    pub fn seats(&mut self, round: u64, verifier: Address) -> Result<Vec<u16>, RoundsError> {
        self.rounds.read(&mut self.evm, PogoRounds::seatsOfCall { task: self.task, round, verifier })
    }

    /// Opens `verifier`'s sealed attestation; it is forgotten whatever the answer.
    pub fn reveal_attestation(&mut self, verifier: Address) -> Result<(), RoundsError> {
        let k = self.sealed.iter().position(|s| s.verifier == verifier).expect("a sealed attestation");
        let sealed = self.sealed.remove(k);
        let call = PogoRounds::revealAttestationCall {
            task: self.task,
            lossOld: sealed.loss_old,
            verdicts: sealed.verdicts,
            lossNew: sealed.losses,
            salt: sealed.salt,
        };
        self.send("revealAttestation", verifier, call, 0).map(|_| ())
    }

    /// Opens every sealed attestation of the open round while its reveals are open (each
    /// must be accepted); forgets those of rounds that closed or whose reveals are over.
    pub fn reveal_attestations(&mut self) {
        let state = self.task_state();
        let live = state.open.then(|| (state.roundCount - 1, self.round()));
        let now = self.evm.block_number();
        self.sealed.retain(|s| {
            live.as_ref().is_some_and(|(id, r)| s.round == *id && now > r.attestEnd && now <= r.challengeEnd)
        });
        for v in self.sealed.iter().map(|s| s.verifier).collect::<Vec<_>>() {
            self.reveal_attestation(v).unwrap();
        }
    }

    /// Every revealed candidate positive (loss 1.5) or negative (loss 2.1).
    pub fn attest(&mut self, verifier: Address, positive: bool) -> Result<(), RoundsError> {
        self.attest_with(verifier, |_| if positive { positive_vote(1_500_000_000) } else { negative_vote() })
    }

    pub fn finalize(&mut self) -> Result<(), RoundsError> {
        let owner = self.owner;
        self.send("finalize", owner, PogoRounds::finalizeCall { task: self.task }, 0).map(|_| ())
    }

    /// Mines until the attestation window is over (reveals and fraud proofs open).
    pub fn mine_past_attestations(&mut self) {
        let end = self.round().attestEnd;
        let now = self.evm.block_number();
        if now <= end {
            self.evm.mine(end + 1 - now);
        }
    }

    /// Mines until the attestation window is over and opens every sealed attestation.
    pub fn close_attestations(&mut self) {
        if self.task_state().open {
            self.mine_past_attestations();
        }
        self.reveal_attestations();
    }

    /// Opens every sealed attestation, then mines until the challenge window is over: the
    /// round can be finalized.
    pub fn close_window(&mut self) {
        self.close_attestations();
        let end = self.round().challengeEnd;
        let now = self.evm.block_number();
        if now <= end {
            self.evm.mine(end + 1 - now);
        }
    }

    pub fn balance_of(&mut self, who: Address) -> U256 {
        self.rounds.read(&mut self.evm, <PogoRounds::balanceOfCall as alloy_sol_types::SolCall>::new((who,))).unwrap()
    }

    /// A verifier's pay for a finished round.
    pub fn claim(&mut self, verifier: Address, round: u64) -> Result<(), RoundsError> {
        let call = PogoRounds::claimCall { task: self.task, round };
        self.send("claim", verifier, call, 0).map(|_| ())
    }

    /// Miners 0..k commit rivals 0..k of the genesis model, reveal them once the commit
    /// window closed, draw, and prove each (a round of `k` competing honest candidates).
    pub fn compete(&mut self, k: usize) {
        let fx = self.fx;
        for i in 0..k {
            let (new_root, update_root) = fx.rival_roots(i);
            let miner = self.miners[i];
            self.commit_as(miner, new_root, update_root).unwrap();
        }
        self.reveal_all();
        self.draw();
        let indices = self.indices();
        for i in 0..k {
            let proof = self.with_hints(i, fx.rival_proof(i, &indices));
            self.submit_for(i, proof).unwrap();
        }
    }

    /// The first miner commits, reveals and proves the next honest update.
    pub fn commit_and_prove(&mut self) {
        self.commit().unwrap();
        self.reveal_all();
        self.draw();
        let proof = self.honest_proof();
        self.submit(proof).unwrap();
    }

    /// After the reveals: draws, proves the honest update, has every verifier attest
    /// `positive` on every candidate, closes the window and finalizes.
    pub fn prove_and_judge(&mut self, positive: bool) {
        self.draw();
        let proof = self.honest_proof();
        self.submit(proof).unwrap();
        for v in self.verifiers.clone() {
            self.attest(v, positive).unwrap();
        }
        self.close_window();
        self.finalize().unwrap();
    }

    /// A full honest round by the first miner, attested positively by the first `positive`
    /// verifiers.
    pub fn honest_round(&mut self, positive: usize) {
        self.commit_and_prove();
        for v in self.verifiers.clone().into_iter().take(positive) {
            self.attest(v, true).unwrap();
        }
        self.close_window();
        self.finalize().unwrap();
    }
}

/// A positive verdict with the new model's loss.
pub fn positive_vote(loss_new: u64) -> (u8, u64) {
    (verdict::POSITIVE, loss_new)
}

/// A negative verdict (the loss rose).
pub fn negative_vote() -> (u8, u64) {
    (verdict::NEGATIVE, 2_100_000_000)
}
