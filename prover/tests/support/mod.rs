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
use pogo_verifier::evm::{export_verifier, fr_to_u256, load_verifier, Address, Evm, Fork, Receipt, Solc, B256, U256};
use pogo_verifier::keys::{config_dir, SetupOrigin};
use pogo_verifier::rounds::{verdict, PogoRounds, RoundsContract, RoundsError, TaskParams};

pub const ETHER: u128 = 1_000_000_000_000_000_000;
pub const BOND: u128 = ETHER;
pub const STAKE: u128 = ETHER;
pub const REWARD: u128 = ETHER / 2;
pub const POOL: u128 = 10 * ETHER;
pub const PROOF_WINDOW: u64 = 20;
pub const ATTEST_WINDOW: u64 = 40;
pub const MARGIN: u64 = 1_000_000;
pub const VERIFIER_GAS: u64 = 2_000_000;

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

/// Proofs by (position in the model chain, sampled indices).
type ProofCache = HashMap<(usize, Vec<u64>), Vec<u8>>;

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
        let key = (position, indices.to_vec());
        if let Some(proof) = self.proofs.lock().unwrap().get(&key) {
            return proof.clone();
        }
        let (old, new, update) =
            (&self.chain.models[position], &self.chain.models[position + 1], &self.chain.updates[position]);
        let trees = round_trees(old, new, update, self.depth, &()).unwrap();
        let (inputs, witness) = assemble(old, new, update, &trees, indices).unwrap();
        let proof = prove(&self.setup, &self.keys, &inputs, &witness).unwrap();
        self.proofs.lock().unwrap().insert(key, proof.clone());
        proof
    }

    pub fn roots(&self, position: usize) -> (U256, U256) {
        let new_root = self.chain.root(position + 1, self.depth);
        let update_root = self.chain.updates[position].reference_tree(self.depth).unwrap().root();
        (fr_to_u256(&new_root), fr_to_u256(&update_root))
    }
}

/// A chain with the verifier and the round contract deployed and one task registered.
pub struct World {
    pub fx: &'static Fixture,
    pub evm: Evm,
    pub rounds: RoundsContract,
    pub verifier: Address,
    pub task: U256,
    pub owner: Address,
    pub miner: Address,
    pub verifiers: Vec<Address>,
    /// Gas of each transaction sent through [`World::send`], by label.
    pub gas: Vec<(String, u64)>,
}

/// The contract error's name of a call that must be refused (panics if it went through).
pub fn refused(result: Result<(), RoundsError>) -> String {
    match result {
        Err(e) => e.contract_error().unwrap_or_else(|| panic!("not a contract error: {e}")).to_string(),
        Ok(()) => panic!("the contract accepted what it must refuse"),
    }
}

pub fn actor(n: u8) -> Address {
    Address::repeat_byte(n)
}

impl World {
    /// Deploys everything; `tweak` adjusts the task's parameters before registration.
    pub fn new(fx: &'static Fixture, verifiers: usize, tweak: impl FnOnce(&mut TaskParams)) -> Self {
        let mut evm = Evm::new(Fork::Prague);
        // The generated verifier exceeds EIP-170 (docs/BENCHMARKS.md); like Anvil's
        // --disable-code-size-limit, the test chain accepts it.
        evm.set_code_size_limit(false);
        let owner = actor(0x10);
        let miner = actor(0x20);
        let verifier_accounts: Vec<Address> = (0..verifiers as u8).map(|i| actor(0x30 + i)).collect();
        for who in [owner, miner].iter().chain(&verifier_accounts) {
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
            proofWindow: PROOF_WINDOW,
            attestWindow: ATTEST_WINDOW,
            margin: MARGIN,
            quorum: 2 * STAKE,
            minerBond: BOND,
            minVerifierStake: STAKE,
            reward: REWARD,
            dataset: B256::repeat_byte(0xda),
            spec: B256::repeat_byte(0x5c),
        };
        tweak(&mut params);
        let mut world = World {
            fx,
            evm,
            rounds,
            verifier,
            task: U256::ZERO,
            owner,
            miner,
            verifiers: verifier_accounts,
            gas: vec![
                ("deploy verifier".into(), deploy_verifier.gas_used),
                ("deploy rounds".into(), deploy_rounds.gas_used),
            ],
        };
        let task = world.send("createTask", owner, PogoRounds::createTaskCall { p: params }, POOL).unwrap();
        world.task = task;
        for v in world.verifiers.clone() {
            world.send("join", v, PogoRounds::joinCall { task }, STAKE).unwrap();
        }
        // Stake weighs only in rounds committed after the block it joined in.
        world.evm.mine(1);
        world
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
        Ok(ret)
    }

    pub fn task_state(&mut self) -> PogoRounds::getTaskReturn {
        self.rounds.read(&mut self.evm, PogoRounds::getTaskCall { task: self.task }).unwrap()
    }

    /// Index in the model chain of the task's current root.
    pub fn position(&mut self) -> usize {
        let root = self.task_state().root;
        (0..self.fx.chain.models.len())
            .find(|&i| fr_to_u256(&self.fx.chain.root(i, self.fx.depth)) == root)
            .expect("the root is one of the chain's models")
    }

    /// The miner commits the next honest update.
    pub fn commit(&mut self) -> Result<(), RoundsError> {
        let position = self.position();
        let (new_root, update_root) = self.fx.roots(position);
        let call = PogoRounds::commitCall {
            task: self.task,
            newRoot: new_root,
            updateRoot: update_root,
            blobHash: B256::repeat_byte(0xb1),
        };
        self.send("commit", self.miner, call, BOND).map(|_| ())
    }

    /// Mines past each randomness block and tries to draw both phases (refusals ignored).
    pub fn draw_phases(&mut self) {
        for _ in 0..2 {
            self.evm.mine(2);
            let miner = self.miner;
            let _ = self.send("drawRandomness", miner, PogoRounds::drawRandomnessCall { task: self.task }, 0);
        }
    }

    /// Mines past each randomness block and draws both phases.
    pub fn draw(&mut self) {
        for _ in 0..2 {
            self.evm.mine(2);
            let miner = self.miner;
            self.send("drawRandomness", miner, PogoRounds::drawRandomnessCall { task: self.task }, 0).unwrap();
        }
    }

    /// The sampled indices the contract derived for the open round.
    pub fn indices(&mut self) -> Vec<u64> {
        let inputs = self.rounds.read(&mut self.evm, PogoRounds::publicInputsCall { task: self.task }).unwrap();
        inputs[4..].iter().map(|i| i.to::<u64>()).collect()
    }

    /// The honest proof for the open round.
    pub fn honest_proof(&mut self) -> Vec<u8> {
        let indices = self.indices();
        let position = self.position();
        self.fx.proof(position, &indices)
    }

    pub fn submit(&mut self, proof: Vec<u8>) -> Result<(), RoundsError> {
        let call = PogoRounds::submitProofCall { task: self.task, proof: proof.into() };
        self.send("submitProof", self.miner, call, 0).map(|_| ())
    }

    pub fn attest(&mut self, verifier: Address, positive: bool) -> Result<(), RoundsError> {
        let (v, lo, ln) = if positive {
            (verdict::POSITIVE, 2_000_000_000, 1_500_000_000)
        } else {
            (verdict::NEGATIVE, 2_000_000_000, 2_100_000_000)
        };
        let call = PogoRounds::attestCall { task: self.task, verdict: v, lossOld: lo, lossNew: ln };
        self.send("attest", verifier, call, 0).map(|_| ())
    }

    pub fn finalize(&mut self) -> Result<(), RoundsError> {
        let owner = self.owner;
        self.send("finalize", owner, PogoRounds::finalizeCall { task: self.task }, 0).map(|_| ())
    }

    /// Mines until the attestation window is over.
    pub fn close_window(&mut self) {
        self.evm.mine(ATTEST_WINDOW + 1);
    }

    pub fn balance_of(&mut self, who: Address) -> U256 {
        self.rounds.read(&mut self.evm, <PogoRounds::balanceOfCall as alloy_sol_types::SolCall>::new((who,))).unwrap()
    }

    /// A full honest round, attested positively by the first `positive` verifiers.
    pub fn honest_round(&mut self, positive: usize) {
        self.commit().unwrap();
        self.draw();
        let proof = self.honest_proof();
        self.submit(proof).unwrap();
        for v in self.verifiers.clone().into_iter().take(positive) {
            self.attest(v, true).unwrap();
        }
        self.close_window();
        self.finalize().unwrap();
    }
}
