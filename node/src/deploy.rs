//! Registering a task on chain: keys and verifier of its circuit configuration, the
//! verifier and (if needed) the round contract deployed, the task created; and the
//! deployment record (`deployment.json`) roles read their defaults from.

use std::path::{Path, PathBuf};

use alloy::primitives::{keccak256, Address, U256};
use anyhow::{bail, Context};
use pogo_circuits::config::CircuitConfig;
use pogo_circuits::merkle::default_depth;
use pogo_prover::prove::keygen;
use pogo_prover::setup::dev_setup;
use pogo_verifier::evm::{export_verifier, load_verifier, Evm, Fork, Solc};
use pogo_verifier::keys::{config_dir, SetupOrigin, MANIFEST_FILE};
use pogo_verifier::rounds::TaskParams;
use serde::{Deserialize, Serialize};

use crate::chain::Chain;
use crate::contract::Rounds;
use crate::keystore::Wallet;
use crate::roles::{model_root, task_hashes};
use crate::train::{TaskConfig, Trainer};

/// One ether in wei.
pub const ETHER: u128 = 1_000_000_000_000_000_000;

/// The economic and timing parameters of a task (everything but model and circuit).
#[derive(Debug, Clone, clap::Args, Serialize, Deserialize)]
pub struct TaskTerms {
    /// Sampled blocks S per proof.
    #[arg(long, default_value_t = 2)]
    pub samples: usize,
    /// Tree depth D [default: the smallest D with nb <= 2^D]
    #[arg(long)]
    pub depth: Option<u32>,
    /// Blocks after a commit by which the proof must be in.
    #[arg(long, default_value_t = 50)]
    pub proof_window: u64,
    /// Blocks after a commit during which verifiers attest (more than --proof-window).
    #[arg(long, default_value_t = 100)]
    pub attest_window: u64,
    /// Attesting stake needed to decide a round, in ether (a stake, not a count of
    /// addresses, so splitting one stake over many addresses gains nothing). A proven round
    /// short of it is no fault of the miner: its bond comes back.
    #[arg(long, default_value_t = 3.0)]
    pub quorum: f64,
    /// Miner bond per commit, in ether.
    #[arg(long, default_value_t = 1.0)]
    pub bond: f64,
    /// Verifier stake, in ether.
    #[arg(long, default_value_t = 1.0)]
    pub stake: f64,
    /// Reward per accepted round, in ether.
    #[arg(long, default_value_t = 0.5)]
    pub reward: f64,
    /// Initial reward pool, in ether.
    #[arg(long, default_value_t = 10.0)]
    pub pool: f64,
    /// Gas the verifier call may use.
    #[arg(long, default_value_t = 1_500_000)]
    pub verifier_gas: u64,
    /// Make missing keys from the INSECURE seeded setup with this seed (the demo does);
    /// otherwise missing keys are an error naming `pogo setup`.
    #[arg(skip)]
    pub dev_seed: Option<u64>,
}

/// Ether as wei (to the gwei).
pub fn wei(ether: f64) -> U256 {
    U256::from((ether * 1e9).round().max(0.0) as u128) * U256::from(1_000_000_000u64)
}

/// Where a task lives: written by `pogo task create`, read by every role.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Deployment {
    /// The chain (embedded state file, or JSON-RPC URL).
    pub chain: String,
    /// The round contract.
    pub contract: Address,
    /// The task id.
    pub task: U256,
    /// The task file.
    pub task_file: PathBuf,
    /// Circuit configuration.
    pub depth: u32,
    /// Samples.
    pub samples: usize,
    /// The verifier contract.
    pub verifier: Address,
}

impl Deployment {
    /// Reads a deployment record.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("reading {} (create a task with `pogo task create` first)", path.display()))?;
        serde_json::from_slice(&bytes).with_context(|| format!("{} is not a deployment record", path.display()))
    }

    /// Writes it (temp file + rename).
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let json = serde_json::to_vec_pretty(self).expect("deployments serialize");
        pogo_circuits::files::write_atomic(path, &json).with_context(|| format!("writing {}", path.display()))
    }
}

/// Makes sure keys and a compiled verifier exist for (depth, samples) under `params_dir`.
/// With `dev_seed`, missing keys are made from the INSECURE seeded setup (demo use);
/// without, missing keys are an error naming `pogo setup`. Returns the verifier bytecode.
pub fn ensure_verifier(
    params_dir: &Path,
    depth: u32,
    samples: usize,
    dev_seed: Option<u64>,
) -> anyhow::Result<Vec<u8>> {
    let config = CircuitConfig::new(depth, samples)?;
    let dir = config_dir(params_dir, &config.name());
    if !dir.join(MANIFEST_FILE).exists() {
        let Some(seed) = dev_seed else {
            bail!(
                "no keys for {} in {}: run `pogo setup --depth {depth} --samples {samples}`",
                config.name(),
                params_dir.display()
            );
        };
        let shape = config.shape()?;
        let setup = dev_setup(shape.k, seed);
        let keys = keygen(&setup, &shape)?;
        pogo_prover::keys::write(&dir, &setup, SetupOrigin::DevSeededInsecure { seed }, &keys)?;
    }
    if load_verifier(&dir).is_err() {
        let solc = Solc::locate(None).context(
            "compiling the verifier needs solc 0.8.19 (run scripts/solc/install.sh and put it on PATH or in POGO_SOLC)",
        )?;
        export_verifier(&dir, &solc)?;
    }
    Ok(load_verifier(&dir)?.1)
}

/// Refuses a task whose on-chain verifier is not the one this node's keys give: the round
/// contract accepts whatever the verifier contract says, so one that just `STOP`s would
/// accept every proof. The verifier compiled from the keys for the task's (D, S) under
/// `params_dir` is deployed in a scratch EVM and its runtime code compared byte for byte
/// with the code at the task's verifier address.
pub fn check_verifier(chain: &mut dyn Chain, params: &TaskParams, params_dir: &Path) -> anyhow::Result<()> {
    let config = CircuitConfig::new(params.depth, params.samples as usize)?;
    let dir = config_dir(params_dir, &config.name());
    let (_, initcode) = load_verifier(&dir).with_context(|| {
        format!(
            "checking the task's verifier needs the keys and verifier of {} (run `pogo setup --depth {} --samples {}` \
             and `pogo export-verifier` with the same --params-dir)",
            config.name(),
            params.depth,
            params.samples
        )
    })?;
    let mut scratch = Evm::new(Fork::Prague);
    scratch.set_code_size_limit(false);
    let deployer = Address::repeat_byte(0x01);
    scratch.set_balance(deployer, U256::from(1u64) << 100);
    let (at, _) = scratch
        .deploy(deployer, initcode, U256::ZERO)
        .map_err(|e| anyhow::anyhow!("deploying the verifier of {} in a scratch EVM: {e}", config.name()))?;
    let expected = scratch.code(at);
    let found = chain.code(params.verifier)?;
    if found != expected {
        bail!(
            "the task's verifier at {} is not the verifier of {} from the keys in {} (code hash {} on chain, {} from \
             the keys): refusing a task whose proofs this node cannot trust",
            params.verifier,
            config.name(),
            dir.display(),
            keccak256(&found),
            keccak256(&expected)
        );
    }
    Ok(())
}

/// Deploys the verifier (and the round contract unless `rounds` is given) and registers the
/// task; returns the deployment.
pub fn create_task(
    chain: &mut dyn Chain,
    chain_spec: &str,
    owner: &Wallet,
    rounds: Option<Rounds>,
    task_file: &Path,
    terms: &TaskTerms,
    params_dir: &Path,
) -> anyhow::Result<Deployment> {
    let config = TaskConfig::load(task_file)?;
    let (spec, dataset) = task_hashes(task_file, &config)?;
    let margin = crate::roles::loss_units(config.margin as f32);
    let trainer = Trainer::new(config, candle_core::Device::Cpu)?;
    let genesis = trainer.genesis()?;
    let nb = genesis.block_count();
    let depth = terms.depth.unwrap_or_else(|| default_depth(nb));
    if terms.attest_window <= terms.proof_window {
        bail!("--attest-window ({}) must be more than --proof-window ({})", terms.attest_window, terms.proof_window);
    }
    let code = ensure_verifier(params_dir, depth, terms.samples, terms.dev_seed)?;
    let verifier =
        chain.send(owner, None, code, U256::ZERO)?.created.context("the verifier deployment made no contract")?;
    let rounds = match rounds {
        Some(r) => r,
        None => Rounds::deploy(chain, owner)?.0,
    };
    let genesis_root = model_root(&genesis, depth)?;
    let params = TaskParams {
        genesisRoot: genesis_root,
        nb,
        depth,
        samples: terms.samples as u32,
        verifier,
        verifierGas: terms.verifier_gas,
        proofWindow: terms.proof_window,
        attestWindow: terms.attest_window,
        margin,
        quorum: wei(terms.quorum).saturating_to(),
        minerBond: wei(terms.bond).saturating_to(),
        minVerifierStake: wei(terms.stake).saturating_to(),
        reward: wei(terms.reward).saturating_to(),
        dataset,
        spec,
    };
    let (task, _) = rounds.create_task(chain, owner, params, wei(terms.pool))?;
    Ok(Deployment {
        chain: chain_spec.to_string(),
        contract: rounds.address,
        task,
        task_file: task_file.to_path_buf(),
        depth,
        samples: terms.samples,
        verifier,
    })
}
