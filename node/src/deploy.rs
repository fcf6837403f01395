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
use pogo_verifier::evm::{export_verifier, install_shipped, load_verifier, Evm, Fork, Solc};
use pogo_verifier::keys::{config_dir, Manifest, SetupOrigin, MANIFEST_FILE};
use pogo_verifier::rounds::TaskParams;
use serde::{Deserialize, Serialize};

use crate::chain::Chain;
use crate::contract::Rounds;
use crate::keystore::Wallet;
use crate::roles::owner::HeldOutSet;
use crate::roles::{model_root, task_hashes};
use crate::train::data::held_out;
use crate::train::{TaskConfig, Trainer};

/// Phase-1 batches `pogo task create` evaluates the genesis model on to measure the noise.
pub const NOISE_BATCHES: usize = 32;

/// Standard deviations of that noise a task's margin must reach.
pub const NOISE_SIGMAS: f64 = 2.0;

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
    /// Blocks after a round opens (its first commit) during which miners commit.
    #[arg(long, default_value_t = 20)]
    pub commit_window: u64,
    /// Blocks after the commit window during which miners reveal their commitments.
    #[arg(long, default_value_t = 10)]
    pub reveal_window: u64,
    /// Blocks after the reveal window by which every proof must be in (more than 2: the
    /// sampled blocks come from the hash of block revealEnd + 2).
    #[arg(long, default_value_t = 50)]
    pub proof_window: u64,
    /// Blocks after the reveal window during which verifiers attest (more than
    /// --proof-window, at most 8191 so the seeds stay readable from EIP-2935's history).
    #[arg(long, default_value_t = 100)]
    pub attest_window: u64,
    /// Blocks after the attestation window during which verifiers open their sealed
    /// attestations and anyone may prove a candidate's block wrong; the round finalizes
    /// after it. Size it like --reveal-window: an attestation not opened in it is slashed.
    #[arg(long, default_value_t = 20)]
    pub challenge_window: u64,
    /// Share of its stake a verifier loses for each positive attestation on a candidate
    /// later proven fraudulent, and for an attestation it never opens (above 0, at most 1).
    #[arg(long, default_value_t = 0.5)]
    pub fraud_slash: f64,
    /// Most candidates (commits) a round takes (1 to 16).
    #[arg(long, default_value_t = 16)]
    pub max_candidates: u16,
    /// Share of the reward paid to the verifiers who attested positive on the winner, in
    /// proportion to stake (0 to 1).
    #[arg(long, default_value_t = 0.1)]
    pub verifier_fee: f64,
    /// Attesting stake needed to decide a round, in ether (a stake, not a count of
    /// addresses, so splitting one stake over many addresses gains nothing). A proven round
    /// short of it is no fault of the miner: its bond comes back.
    #[arg(long, default_value_t = 3.0)]
    pub quorum: f64,
    /// Seats of each round's committee (1 to 64), drawn by stake from the registered
    /// verifiers after every reveal: only seat holders evaluate and attest (the others still
    /// rebuild every candidate and prove wrong blocks), so a round's gas is the same with
    /// 1,000 or 10,000 verifiers. 0: no committee, every verifier
    /// attests with its whole stake (the contract counts the 32 largest stakes).
    #[arg(long, default_value_t = 0)]
    pub committee: u16,
    /// With --committee: committee seats that must give a verdict on a candidate for it to
    /// be judged, replacing --quorum [default: half the seats, rounded up].
    #[arg(long, requires = "committee")]
    pub committee_quorum: Option<u16>,
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
    /// Accept INSECURE development keys off development chains (`--insecure` of the node
    /// commands).
    #[arg(skip)]
    pub insecure: bool,
}

impl TaskTerms {
    /// The contract's `quorum`: seats with a committee, otherwise the stake in wei.
    pub fn quorum_param(&self) -> u128 {
        match self.committee {
            0 => wei(self.quorum).saturating_to(),
            c => u128::from(self.committee_quorum.unwrap_or(c.div_ceil(2))),
        }
    }

    /// The contract's rules on windows, cap and fee, said in flag names before anything is
    /// deployed.
    pub fn check(&self) -> anyhow::Result<()> {
        const HISTORY: u64 = 8191;
        if self.commit_window == 0 || self.reveal_window == 0 || self.challenge_window == 0 {
            bail!("--commit-window, --reveal-window and --challenge-window must be at least 1 block");
        }
        if self.commit_window > HISTORY
            || self.reveal_window > HISTORY
            || self.attest_window.saturating_add(self.challenge_window) > HISTORY
        {
            bail!(
                "--commit-window, --reveal-window and --attest-window plus --challenge-window must be at most \
                 {HISTORY} blocks (EIP-2935)"
            );
        }
        if self.proof_window <= 2 {
            bail!("--proof-window ({}) must be more than 2 blocks", self.proof_window);
        }
        if self.attest_window <= self.proof_window + 1 {
            bail!(
                "--attest-window ({}) must exceed --proof-window ({}) by at least 2 blocks: the held-out batch is \
                 revealed in the first half of the blocks between them, attestations follow in the second",
                self.attest_window,
                self.proof_window
            );
        }
        if self.committee > 64 {
            bail!("--committee ({}) must be at most 64 seats (0: no committee)", self.committee);
        }
        match (self.committee, self.committee_quorum) {
            (0, Some(_)) => bail!("--committee-quorum needs --committee"),
            (c, Some(q)) if q == 0 || q > c => {
                bail!("--committee-quorum ({q}) must be in 1..=--committee ({c})")
            }
            _ => {}
        }
        if !(1..=16).contains(&self.max_candidates) {
            bail!("--max-candidates ({}) must be in 1..=16", self.max_candidates);
        }
        if !(0.0..=1.0).contains(&self.verifier_fee) {
            bail!("--verifier-fee ({}) must be between 0 and 1", self.verifier_fee);
        }
        if !(self.fraud_slash > 0.0 && self.fraud_slash <= 1.0) || (self.fraud_slash * 10_000.0).round() < 1.0 {
            bail!(
                "--fraud-slash ({}) must be above 0 (at least 0.0001) and at most 1: it is what a blind or hidden \
                 attestation risks",
                self.fraud_slash
            );
        }
        Ok(())
    }
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
        // Seconds to minutes of work: say what is happening instead of going silent.
        let spinner = indicatif::ProgressBar::new_spinner().with_message(format!(
            "making INSECURE development keys for {} (k = {}) in {}: once, about a minute on 2 cores",
            config.name(),
            shape.k,
            dir.display()
        ));
        spinner.enable_steady_tick(std::time::Duration::from_millis(200));
        let setup = dev_setup(shape.k, seed);
        let keys = keygen(&setup, &shape)?;
        pogo_prover::keys::write(&dir, &setup, SetupOrigin::DevSeededInsecure { seed }, &keys)?;
        spinner.finish_and_clear();
    }
    // A verifier shipped in the binary for these very keys needs no compiler (the demo's).
    if load_verifier(&dir).is_err() && !install_shipped(&dir)? {
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

/// Refuses a task whose margin is below the noise of its own evaluation: a gain smaller
/// than the spread of the loss over phase-1 batches can be a lucky batch, not work. The
/// noise is [`NOISE_SIGMAS`] standard deviations of the genesis model's loss over
/// [`NOISE_BATCHES`] batches (`Trainer::eval_noise`).
pub fn check_margin(trainer: &Trainer, genesis: &pogo_circuits::model::Model, task_file: &Path) -> anyhow::Result<f64> {
    let (mean, sd) = trainer.eval_noise(genesis, NOISE_BATCHES)?;
    let floor = NOISE_SIGMAS * sd;
    let margin = trainer.task.margin;
    if !(margin.is_finite() && margin > 0.0 && margin >= floor) {
        bail!(
            "the margin {margin} of {} is below the noise of its evaluation: the genesis model's loss over \
             {NOISE_BATCHES} random phase-1 batches of {} examples is {mean:.6} ± {sd:.6}, so a gain under \
             {floor:.6} ({NOISE_SIGMAS} standard deviations) can be a lucky batch; set \"margin\" to at least {floor:.6}",
            task_file.display(),
            trainer.task.eval_batch_size
        );
    }
    Ok(floor)
}

/// Whether keys from `origin` may be used on a chain: INSECURE development keys (anyone can
/// forge proofs with them) only on a development chain, or where the operator says
/// `--insecure` out loud.
pub fn keys_allowed(origin: &SetupOrigin, development: bool, insecure: bool, chain: &str) -> anyhow::Result<()> {
    match origin {
        SetupOrigin::DevSeededInsecure { seed } if !development && !insecure => bail!(
            "the keys come from the INSECURE seeded development setup (seed {seed}): anyone can forge proofs with \
             them, and {chain} is not a development chain. Make keys from a ceremony (`pogo setup --ptau FILE`), or \
             pass --insecure to accept forgeable proofs anyway"
        ),
        _ => Ok(()),
    }
}

/// [`keys_allowed`] for the keys of (depth, samples) under `params_dir` on `chain`.
pub fn check_keys(
    chain: &mut dyn Chain,
    depth: u32,
    samples: usize,
    params_dir: &Path,
    insecure: bool,
) -> anyhow::Result<()> {
    let config = CircuitConfig::new(depth, samples)?;
    let dir = config_dir(params_dir, &config.name());
    let manifest = Manifest::load(&dir).with_context(|| {
        format!("no usable keys for {} (run `pogo setup --depth {depth} --samples {samples}`)", config.name())
    })?;
    let development = chain.is_development()?;
    keys_allowed(&manifest.setup, development, insecure, &chain.describe())
        .with_context(|| format!("keys of {} in {}", config.name(), dir.display()))
}

/// Deploys the verifier (and the round contract unless `rounds` is given) and registers the
/// task, committed to the owner's held-out evaluation data in `held_out` (`None`: the data
/// file's `held_out::default_path`); returns the deployment and the held-out set (for the
/// owner's records; its `file` is the path used). INSECURE development keys
/// are refused on a chain that is not a development chain unless `terms.insecure`.
#[allow(clippy::too_many_arguments)]
pub fn create_task(
    chain: &mut dyn Chain,
    chain_spec: &str,
    owner: &Wallet,
    rounds: Option<Rounds>,
    task_file: &Path,
    held_out: Option<&Path>,
    terms: &TaskTerms,
    params_dir: &Path,
) -> anyhow::Result<(Deployment, HeldOutSet)> {
    let config = TaskConfig::load(task_file)?;
    let (spec, dataset) = task_hashes(task_file, &config)?;
    let held_out = held_out.map_or_else(|| held_out::default_path(config.data_path()), Path::to_path_buf);
    let (eval, _, _) =
        HeldOutSet::build(&config.model, &config.data, config.data_path(), &[], &held_out, config.eval_batch_size)
            .context("the held-out evaluation data")?;
    let margin = crate::roles::loss_units(config.margin);
    let trainer = Trainer::new(config, candle_core::Device::Cpu)?;
    let genesis = trainer.genesis()?;
    check_margin(&trainer, &genesis, task_file)?;
    let nb = genesis.block_count();
    let depth = terms.depth.unwrap_or_else(|| default_depth(nb));
    terms.check()?;
    let code = ensure_verifier(params_dir, depth, terms.samples, terms.dev_seed)?;
    check_keys(chain, depth, terms.samples, params_dir, terms.insecure)?;
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
        commitWindow: terms.commit_window,
        revealWindow: terms.reveal_window,
        proofWindow: terms.proof_window,
        attestWindow: terms.attest_window,
        challengeWindow: terms.challenge_window,
        maxCandidates: terms.max_candidates,
        verifierFeeBps: (terms.verifier_fee * 10_000.0).round() as u16,
        fraudSlashBps: (terms.fraud_slash * 10_000.0).round() as u16,
        margin,
        quorum: terms.quorum_param(),
        minerBond: wei(terms.bond).saturating_to(),
        minVerifierStake: wei(terms.stake).saturating_to(),
        reward: wei(terms.reward).saturating_to(),
        dataset,
        spec,
        evalRoot: eval.root,
        evalBatches: eval.batches,
        committee: terms.committee,
    };
    let (task, _) = rounds.create_task(chain, owner, params, wei(terms.pool))?;
    let deployment = Deployment {
        chain: chain_spec.to_string(),
        contract: rounds.address,
        task,
        task_file: task_file.to_path_buf(),
        depth,
        samples: terms.samples,
        verifier,
    };
    Ok((deployment, eval))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(clap::Parser)]
    struct Terms {
        #[command(flatten)]
        terms: TaskTerms,
    }

    fn terms(args: &[&str]) -> Result<TaskTerms, clap::Error> {
        use clap::Parser;
        Terms::try_parse_from(std::iter::once("pogo").chain(args.iter().copied())).map(|t| t.terms)
    }

    #[test]
    fn committee_flags_are_checked_and_set_the_quorum_in_seats() {
        let plain = terms(&[]).unwrap();
        assert!(plain.check().is_ok());
        assert_eq!(plain.quorum_param(), 3_000_000_000_000_000_000, "no committee: the quorum is stake in wei");
        let c = terms(&["--committee", "8"]).unwrap();
        assert!(c.check().is_ok());
        assert_eq!(c.quorum_param(), 4, "half the seats by default");
        assert_eq!(terms(&["--committee", "7", "--committee-quorum", "7"]).unwrap().quorum_param(), 7);
        let err = terms(&["--committee", "65"]).unwrap().check().unwrap_err().to_string();
        assert!(err.contains("--committee (65)") && err.contains("64"), "{err}");
        let err = terms(&["--committee", "8", "--committee-quorum", "9"]).unwrap().check().unwrap_err().to_string();
        assert!(err.contains("--committee-quorum (9)"), "{err}");
        let err = terms(&["--committee", "8", "--committee-quorum", "0"]).unwrap().check().unwrap_err().to_string();
        assert!(err.contains("--committee-quorum (0)"), "{err}");
        assert!(terms(&["--committee-quorum", "3"]).is_err(), "a committee quorum needs a committee");
    }

    #[test]
    fn insecure_keys_only_on_development_chains_or_when_asked() {
        let dev = SetupOrigin::DevSeededInsecure { seed: 0 };
        let ceremony = SetupOrigin::Ptau { sha256: "00".into(), file: "pot.ptau".into() };
        assert!(keys_allowed(&dev, true, false, "anvil").is_ok());
        let err = keys_allowed(&dev, false, false, "mainnet").unwrap_err().to_string();
        assert!(err.contains("INSECURE") && err.contains("--insecure") && err.contains("mainnet"), "{err}");
        assert!(keys_allowed(&dev, false, true, "mainnet").is_ok(), "said out loud");
        assert!(keys_allowed(&ceremony, false, false, "mainnet").is_ok());
    }
}
