//! The node's commands: `keys`, `task create`, `miner`, `owner`, `verifier`, `challenge`,
//! `finalize`, `status`.
//! Settings come from flags, then environment variables (`POGO_*`), then a TOML config
//! file (`--config`), then defaults under the node folder (`--home`, default `.pogo`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use alloy::primitives::Address;
use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use serde::Deserialize;

use super::{OutputArgs, Report};
use crate::chain::{self, Chain, EmbeddedChain};
use crate::contract::Rounds;
use crate::deploy::{check_keys, check_verifier, create_task, wei, Deployment, TaskTerms};
use crate::keystore::{Keystore, Wallet};
use crate::roles::challenge::{self, Examined, Filed};
use crate::roles::finalizer::Finalizer;
use crate::roles::miner::{Cheat, Miner};
use crate::roles::owner::Owner;
use crate::roles::prune::Pruner;
use crate::roles::verifier::Verifier;
use crate::roles::{Event, Node, Step};
use crate::store::Store;

/// Settings every node command shares.
#[derive(Args, Debug, Clone)]
pub struct NodeArgs {
    /// Node folder: keystore/, store/, role state, deployment.json and (by default) the
    /// embedded chain's chain.json [default: .pogo]
    #[arg(long, env = "POGO_HOME", value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// The chain: an http(s):// JSON-RPC URL, or an embedded chain's state file
    /// [default: the deployment's, else HOME/chain.json]
    #[arg(long, env = "POGO_CHAIN", value_name = "URL|FILE")]
    pub chain: Option<String>,
    /// Name of the key to use in the keystore [default: default]
    #[arg(long, env = "POGO_KEY", value_name = "NAME")]
    pub key: Option<String>,
    /// Keystore password.
    #[arg(long, env = "POGO_PASSWORD", hide_env_values = true, value_name = "PASSWORD")]
    pub password: Option<String>,
    /// TOML config file with any of: home, chain, key, params_dir, peers, serve, deployment.
    #[arg(long, env = "POGO_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Deployment record [default: HOME/deployment.json]
    #[arg(long, env = "POGO_DEPLOYMENT", value_name = "FILE")]
    pub deployment: Option<PathBuf>,
    /// Where circuit keys live [default: params]
    #[arg(long, env = "POGO_PARAMS", value_name = "DIR")]
    pub params_dir: Option<PathBuf>,
    /// Other nodes' update stores to fetch blobs from (comma-separated URLs).
    #[arg(long = "peers", env = "POGO_PEERS", value_delimiter = ',', value_name = "URL,...")]
    pub peers: Vec<String>,
    /// Seconds between polls while waiting.
    #[arg(long, default_value_t = 1.0, value_name = "SECONDS")]
    pub poll: f64,
    /// Accepted updates to keep in the store (with the models they join, for nodes that
    /// join late); what final rounds named before them is dropped as rounds finish. 0
    /// keeps only the current model.
    #[arg(long, env = "POGO_KEEP_UPDATES", default_value_t = 16, value_name = "K")]
    pub keep_updates: usize,
    /// Accept keys from the INSECURE seeded development setup on a chain that is not a
    /// development chain (anyone can forge proofs with them: for testnets you own).
    #[arg(long)]
    pub insecure: bool,
    /// Train (miner) and evaluate (verifier) on the first CUDA GPU: needs a
    /// `--features gpu-train` build. GPU and CPU losses differ in the last digits
    /// (docs/BENCHMARKS.md, "GPU"), far inside a task's margin.
    #[arg(long)]
    pub gpu: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// The config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    home: Option<PathBuf>,
    chain: Option<String>,
    key: Option<String>,
    params_dir: Option<PathBuf>,
    peers: Option<Vec<String>>,
    serve: Option<String>,
    deployment: Option<PathBuf>,
}

/// Settings after flags, environment, config file and defaults.
pub struct Settings {
    /// Node folder.
    pub home: PathBuf,
    chain: Option<String>,
    key: String,
    password: Option<String>,
    deployment: PathBuf,
    /// Keys folder.
    pub params_dir: PathBuf,
    peers: Vec<String>,
    serve: Option<String>,
    poll: Duration,
    keep_updates: usize,
    insecure: bool,
    gpu: bool,
    output: OutputArgs,
}

impl NodeArgs {
    /// Resolves the settings.
    pub fn settings(&self) -> anyhow::Result<Settings> {
        let file: ConfigFile = match &self.config {
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).with_context(|| format!("reading config {}", path.display()))?;
                toml::from_str(&text).with_context(|| format!("config {}", path.display()))?
            }
            None => ConfigFile::default(),
        };
        let home = self.home.clone().or(file.home).unwrap_or_else(|| PathBuf::from(".pogo"));
        if !(self.poll > 0.0 && self.poll.is_finite()) {
            bail!("--poll must be a positive number of seconds");
        }
        Ok(Settings {
            deployment: self.deployment.clone().or(file.deployment).unwrap_or_else(|| home.join("deployment.json")),
            chain: self.chain.clone().or(file.chain),
            key: self.key.clone().or(file.key).unwrap_or_else(|| "default".into()),
            password: self.password.clone(),
            params_dir: self.params_dir.clone().or(file.params_dir).unwrap_or_else(|| PathBuf::from("params")),
            peers: if self.peers.is_empty() { file.peers.unwrap_or_default() } else { self.peers.clone() },
            serve: file.serve,
            poll: Duration::from_secs_f64(self.poll),
            keep_updates: self.keep_updates,
            insecure: self.insecure,
            gpu: self.gpu,
            output: self.output,
            home,
        })
    }
}

impl Settings {
    fn keystore(&self) -> anyhow::Result<Keystore> {
        let password = self
            .password
            .as_deref()
            .context("the keystore needs a password: set POGO_PASSWORD (or pass --password)")?;
        Ok(Keystore::new(&self.home.join("keystore"), password))
    }

    /// The key named by `--key`.
    pub fn wallet(&self) -> anyhow::Result<Wallet> {
        Ok(self.keystore()?.open(&self.key)?)
    }

    fn chain_spec(&self, deployment: Option<&Deployment>) -> String {
        self.chain
            .clone()
            .or_else(|| deployment.map(|d| d.chain.clone()))
            .unwrap_or_else(|| self.home.join("chain.json").display().to_string())
    }

    fn deployment(&self) -> anyhow::Result<Deployment> {
        Deployment::load(&self.deployment)
    }

    /// Connects to the deployment's chain and task. Miners and verifiers (`trust_proofs`)
    /// also refuse a task whose on-chain verifier is not the one their keys give.
    fn node(&self, wallet: &Wallet, role_dir: &str, trust_proofs: bool) -> anyhow::Result<Node> {
        let deployment = self.deployment()?;
        let mut chain = chain::open(&self.chain_spec(Some(&deployment)), std::slice::from_ref(wallet))?;
        let rounds = Rounds::at(chain.as_mut(), deployment.contract)?;
        let store = Store::new(&self.home.join(role_dir).join("store"));
        let mut node = Node::new(chain, rounds, deployment.task, &deployment.task_file, store, self.peers.clone())?;
        if self.gpu {
            node.use_device(super::cuda_device(true)?)?;
        }
        if trust_proofs {
            let (depth, samples) = (node.params.depth, node.params.samples as usize);
            check_keys(node.chain.as_mut(), depth, samples, &self.params_dir, self.insecure)?;
            check_verifier(node.chain.as_mut(), &node.params, &self.params_dir)?;
        }
        Ok(node)
    }
}

/// `pogo keys`.
#[derive(Args, Debug)]
pub struct KeysArgs {
    #[command(subcommand)]
    command: KeysCommand,
}

#[derive(Subcommand, Debug)]
enum KeysCommand {
    /// Create a new random key (encrypted with the password).
    New {
        /// Its name.
        name: String,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// List the keys and their addresses.
    List {
        #[command(flatten)]
        node: NodeArgs,
    },
}

pub(super) fn keys(args: KeysArgs) -> anyhow::Result<()> {
    let (KeysCommand::New { node, .. } | KeysCommand::List { node }) = &args.command;
    let settings = node.settings()?;
    let store = settings.keystore()?;
    match args.command {
        KeysCommand::New { name, .. } => {
            let wallet = store.create(&name)?;
            Report::new().add("name", &name).add("address", wallet.address().to_string()).print(settings.output);
        }
        KeysCommand::List { .. } => {
            let mut report = Report::new();
            for name in store.names()? {
                // One unreadable file does not hide the other keys.
                let shown = match store.open(&name) {
                    Ok(wallet) => wallet.address().to_string(),
                    Err(e) => format!("unreadable: {e}"),
                };
                report = report.add(&name, shown);
            }
            report.print(settings.output);
        }
    }
    Ok(())
}

/// `pogo task`.
#[derive(Args, Debug)]
pub struct TaskArgs {
    #[command(subcommand)]
    command: TaskCommand,
}

#[derive(Subcommand, Debug)]
enum TaskCommand {
    /// Register a task: deploy its verifier (and the round contract unless --contract), create the task, write deployment.json.
    Create(TaskCreateArgs),
}

/// Arguments of `pogo task create`.
#[derive(Args, Debug)]
pub struct TaskCreateArgs {
    /// The task file (model, data, optimizer, steps per round, margin).
    task: PathBuf,
    /// The owner's held-out evaluation data, in the format of the task's data (digits
    /// records; text). It is committed to as a Merkle root over batches of eval_batch_size
    /// records and never published: each round reveals only the batch phase 1 draws. Keep
    /// the file: `pogo owner` reveals from it [default: the data file's name with
    /// -heldout before the extension, beside it]
    #[arg(long, value_name = "FILE")]
    held_out: Option<PathBuf>,
    /// An already deployed round contract to register in.
    #[arg(long)]
    contract: Option<Address>,
    /// Seconds per block of a new embedded chain (0: blocks only when a role asks).
    #[arg(long, default_value_t = crate::chain::embedded::DEFAULT_BLOCK_TIME)]
    block_time: f64,
    #[command(flatten)]
    terms: TaskTerms,
    #[command(flatten)]
    node: NodeArgs,
}

pub(super) fn task(args: TaskArgs) -> anyhow::Result<()> {
    let TaskCommand::Create(args) = args.command;
    let settings = args.node.settings()?;
    let wallet = settings.wallet()?;
    let spec = settings.chain_spec(None);
    let mut chain: Box<dyn Chain> = if spec.starts_with("http") {
        chain::open(&spec, std::slice::from_ref(&wallet))?
    } else {
        Box::new(EmbeddedChain::open_with(Path::new(&spec), args.block_time)?)
    };
    let rounds = args.contract.map(|a| Rounds::at(chain.as_mut(), a)).transpose()?;
    let terms = TaskTerms { insecure: settings.insecure, ..args.terms };
    let held_out = args.held_out.as_deref();
    let (deployment, set) =
        create_task(chain.as_mut(), &spec, &wallet, rounds, &args.task, held_out, &terms, &settings.params_dir)?;
    deployment.save(&settings.deployment)?;
    let (batches, held_out) = (set.batches, set.file.clone());
    Owner::created(wallet, &settings.home.join("owner"), set)?;
    Report::new()
        .add("chain", chain.describe())
        .add("contract", deployment.contract.to_string())
        .add("task", deployment.task.to_string())
        .add("verifier", deployment.verifier.to_string())
        .add("depth", deployment.depth)
        .add("samples", deployment.samples)
        .add("held_out_batches", batches)
        .add("held_out", held_out.display().to_string())
        .add("deployment", settings.deployment.display().to_string())
        .print(settings.output);
    Ok(())
}

/// Arguments of `pogo miner`.
#[derive(Args, Debug)]
pub struct MinerArgs {
    /// Stop after this many finished rounds [default: never]
    #[arg(long)]
    rounds: Option<u64>,
    /// Serve this node's update store over HTTP on this address [default: 127.0.0.1:7700]
    #[arg(long, env = "POGO_SERVE", value_name = "ADDR")]
    serve: Option<String>,
    /// Misbehave (to see slashing): mismatch, no-gain.
    #[arg(long, value_enum, default_value_t = Cheat::None)]
    cheat: Cheat,
    #[command(flatten)]
    node: NodeArgs,
}

/// Arguments of `pogo owner`.
#[derive(Args, Debug)]
#[command(after_help = "The owner's records are HOME/owner/owner.json (written by `pogo task create`): the held-out \
files committed to, which must stay as they were. Run it beside the miners and verifiers: without its reveal no \
verifier can attest, and the round ends without a winner (bonds returned).\n\nExamples:\n  pogo owner\n  \
pogo owner --add more-heldout.bin")]
pub struct OwnerArgs {
    /// Commit to a fresh set of held-out batches from this file, then exit.
    #[arg(long, value_name = "FILE")]
    add: Option<PathBuf>,
    /// Stop after revealing this many batches [default: never]
    #[arg(long)]
    rounds: Option<u64>,
    #[command(flatten)]
    node: NodeArgs,
}

/// Arguments of `pogo verifier`.
#[derive(Args, Debug)]
pub struct VerifierArgs {
    /// Stake, in ether (at least the task's minimum).
    #[arg(long, default_value_t = 1.0)]
    stake: f64,
    /// Stop after this many attestations [default: never]
    #[arg(long)]
    rounds: Option<u64>,
    /// Misbehave (to see slashing): attest positive on every candidate without fetching or
    /// rebuilding anything; every fraud proof then costs --fraud-slash of the stake.
    #[arg(long)]
    lazy: bool,
    #[command(flatten)]
    node: NodeArgs,
}

/// Arguments of `pogo challenge`.
#[derive(Args, Debug)]
#[command(
    after_help = "Rebuilds each proven candidate of the open round from the old model and its update blob. Where old model + update is not the committed new model, it fetches the leaf list the candidate's miner serves (GET /leaves/<new root> from --peers), finds the first wrong block, builds the one-block fraud claim, checks it natively exactly as the contract will, and files it with proveFraud (allowed after the attestation window, until the challenge deadline). A proven fraud rejects the candidate, slashes the miner's bond (half to you at finalize, unless 2/3 of the attesting stake rejected it anyway: then its negative attesters share it) and the stake share of its positive attesters; a claim that shows nothing reverts and costs only gas. Verifiers do this by themselves; this command is for anyone else holding the old model.\n\nExamples:\n  pogo challenge --check-only\n  pogo challenge --candidate 2 --wait --peers http://10.0.0.5:7700"
)]
pub struct ChallengeArgs {
    /// Only this candidate [default: every proven candidate of the open round]
    #[arg(long, value_name = "INDEX")]
    candidate: Option<u16>,
    /// Build and check the claims natively, send nothing (needs no key).
    #[arg(long)]
    check_only: bool,
    /// If the challenge window has not opened yet, wait for it (producing blocks on chains
    /// that allow it) instead of stopping.
    #[arg(long)]
    wait: bool,
    #[command(flatten)]
    node: NodeArgs,
}

/// Arguments of `pogo finalize` and `pogo status`.
#[derive(Args, Debug)]
pub struct FinalizeArgs {
    /// Keep finalizing rounds as they close instead of one pass.
    #[arg(long)]
    watch: bool,
    #[command(flatten)]
    node: NodeArgs,
}

/// Drives a role: prints what it does, waits (producing blocks on chains that allow it, one
/// per poll) until it is done or `stop` says so.
fn drive(
    node: &mut Node,
    settings: &Settings,
    mut step: impl FnMut(&mut Node) -> anyhow::Result<Step>,
    mut stop: impl FnMut() -> bool,
) -> anyhow::Result<()> {
    let mut last_why = String::new();
    let mut pruner = Pruner::new(&node.store, settings.keep_updates)?;
    loop {
        // Pruning is housekeeping: a chain read that fails here is the role's to report.
        match pruner.step(node) {
            Ok(Some(event)) => print_event(node, settings, &event)?,
            Ok(None) => {}
            Err(e) => eprintln!("note: pruning the store: {}", super::error_line(&e)),
        }
        match step(node)? {
            Step::Acted(event) => {
                print_event(node, settings, &event)?;
                last_why.clear();
            }
            Step::Wait { until, why } => {
                if stop() {
                    return Ok(());
                }
                if why != last_why && !settings.output.json {
                    eprintln!("waiting: {why}");
                }
                last_why = why;
                std::thread::sleep(settings.poll);
                if until.is_some() {
                    let now = node.chain.block_number()?;
                    node.chain.produce_blocks_until(now)?;
                }
            }
            Step::Done => return Ok(()),
        }
    }
}

/// Prints what a role did: a line for people, or the event as JSON.
fn print_event(node: &mut Node, settings: &Settings, event: &Event) -> anyhow::Result<()> {
    let block = node.chain.block_number()?;
    if settings.output.json {
        println!("{}", serde_json::to_string(event).expect("events serialize"));
    } else {
        println!("[block {block}] {}: round {}: {} ({:.2} s)", event.role, event.round, event.what, event.seconds);
    }
    Ok(())
}

pub(super) fn miner(args: MinerArgs) -> anyhow::Result<()> {
    let settings = args.node.settings()?;
    let wallet = settings.wallet()?;
    let mut node = settings.node(&wallet, &format!("miner-{}", wallet.name()), true)?;
    let serve = args.serve.or(settings.serve.clone()).unwrap_or_else(|| "127.0.0.1:7700".into());
    let server = node.store.serve(&serve)?;
    eprintln!("serving update blobs at {}", server.url);
    let dir = settings.home.join(format!("miner-{}", wallet.name()));
    let mut miner = Miner::new(wallet, &dir, &settings.params_dir, args.cheat, args.rounds.unwrap_or(u64::MAX))?;
    drive(&mut node, &settings, |n| miner.step(n), || false)
}

pub(super) fn owner(args: OwnerArgs) -> anyhow::Result<()> {
    let settings = args.node.settings()?;
    let wallet = settings.wallet()?;
    let mut node = settings.node(&wallet, "owner", false)?;
    let mut owner = Owner::new(wallet, &settings.home.join("owner"))?;
    if let Some(file) = args.add {
        let event = owner.add_set(&mut node, &file)?;
        println!("{}", event.what);
        return Ok(());
    }
    drive_counting(&mut node, &settings, &mut owner, Owner::step, |o| o.state.revealed.len(), args.rounds)
}

pub(super) fn verifier(args: VerifierArgs) -> anyhow::Result<()> {
    let settings = args.node.settings()?;
    let wallet = settings.wallet()?;
    let mut node = settings.node(&wallet, &format!("verifier-{}", wallet.name()), true)?;
    let dir = settings.home.join(format!("verifier-{}", wallet.name()));
    let mut verifier = Verifier::new(wallet, &dir, wei(args.stake))?;
    if args.lazy {
        verifier = verifier.lazy();
    }
    drive_counting(&mut node, &settings, &mut verifier, Verifier::step, |v| v.state.attested.len(), args.rounds)
}

/// Drives `role` until `done(role)` (what it has done so far, from its persisted state)
/// reaches `limit` (never, without one).
fn drive_counting<R>(
    node: &mut Node,
    settings: &Settings,
    role: &mut R,
    step: impl Fn(&mut R, &mut Node) -> anyhow::Result<Step>,
    done: impl Fn(&R) -> usize,
    limit: Option<u64>,
) -> anyhow::Result<()> {
    let limit = limit.unwrap_or(u64::MAX);
    let count = std::cell::Cell::new(done(role) as u64);
    drive(
        node,
        settings,
        |n| {
            let result = step(role, n);
            count.set(done(role) as u64);
            result
        },
        || count.get() >= limit,
    )
}

pub(super) fn challenge(args: ChallengeArgs) -> anyhow::Result<()> {
    let settings = args.node.settings()?;
    let wallet = match settings.wallet() {
        Ok(wallet) => wallet,
        // Checking reads the chain only: any key will do.
        Err(_) if args.check_only => Wallet::random("check-only"),
        Err(e) => return Err(e.context("filing a fraud proof needs a key (or pass --check-only)")),
    };
    let mut node = settings.node(&wallet, "challenger", false)?;
    let Some((round, r)) = crate::roles::open_round(&mut node)? else {
        bail!("no round is open: fraud proofs are filed against an open round's candidates");
    };
    let candidates = node.rounds.candidates(node.chain.as_mut(), node.task, &r, round)?;
    let indices: Vec<u16> = match args.candidate {
        Some(i) if usize::from(i) >= candidates.len() => {
            bail!("round {round} has {} candidate(s): no candidate {i}", candidates.len())
        }
        Some(i) => vec![i],
        None => (0..candidates.len() as u16).collect(),
    };
    let old = node.model_at(r.oldRoot)?;
    let mut findings = Vec::new();
    let mut frauds = Vec::new();
    for i in indices {
        let c = &candidates[usize::from(i)];
        let finding = if !c.revealed {
            "not revealed: nothing to check (its bond is slashed at finalize)".to_string()
        } else if !c.proven {
            "not proven: no fraud proof needed (its bond is slashed at finalize)".to_string()
        } else if c.fraud {
            "already proven fraudulent".to_string()
        } else {
            let spinner = (!settings.output.json).then(|| super::spinner(format!("rebuilding candidate {i}")));
            let found = node.examine(r.oldRoot, c).and_then(|examined| match examined {
                Examined::Honest => Ok("honest: old model + update is the committed new model".to_string()),
                Examined::Unchecked(why) => Ok(format!("could not be checked: {why}")),
                Examined::Mismatch(why) => Ok(match node.build_fraud(&old, r.oldRoot, c)? {
                    Ok(fraud) => {
                        let text = format!("block {} is wrong: {}", fraud.claim.block, fraud.kind.describe());
                        frauds.push((i, fraud));
                        text
                    }
                    Err(no) => format!("wrong ({why}) but not provable on chain: {no}"),
                }),
            });
            drop(spinner);
            // One candidate's trouble does not hide the others'.
            found.unwrap_or_else(|e| format!("error: {}", super::error_line(&e)))
        };
        findings.push(format!("candidate {i}: {finding}"));
    }
    let mut filed = Vec::new();
    let mut gas = 0u64;
    if !args.check_only {
        for (i, fraud) in &frauds {
            loop {
                let outcome = match challenge::file(&mut node, &wallet, "challenger", round, *i, fraud) {
                    Ok(outcome) => outcome,
                    Err(e) => {
                        filed.push(format!(
                            "candidate {i}: the fraud proof was not accepted: {}",
                            super::error_line(&e)
                        ));
                        break;
                    }
                };
                match outcome {
                    Filed::Proven(event) => {
                        gas += event.gas;
                        filed.push(event.what);
                    }
                    Filed::Moot(why) => filed.push(why),
                    Filed::TooEarly(end) if args.wait => {
                        if !settings.output.json {
                            eprintln!("waiting: fraud proofs open after block {end}");
                        }
                        std::thread::sleep(settings.poll);
                        let now = node.chain.block_number()?;
                        node.chain.produce_blocks_until(now)?;
                        continue;
                    }
                    Filed::TooEarly(end) => bail!(
                        "candidate {i} is provably wrong, but fraud proofs open after block {end} (now {}): rerun \
                         then, or pass --wait",
                        node.chain.block_number()?
                    ),
                }
                break;
            }
        }
    }
    Report::new()
        .add("round", round)
        .add("challenge_opens_after", r.attestEnd)
        .add("challenge_deadline", r.challengeEnd)
        .add("findings", findings)
        .add("provable", frauds.len())
        .add("filed", filed)
        .add("gas", gas)
        .print(settings.output);
    Ok(())
}

pub(super) fn finalize(args: FinalizeArgs) -> anyhow::Result<()> {
    let settings = args.node.settings()?;
    let wallet = settings.wallet()?;
    let mut node = settings.node(&wallet, "finalizer", false)?;
    let mut finalizer = Finalizer::new(wallet);
    let once = !args.watch;
    let mut acted = false;
    drive(
        &mut node,
        &settings,
        |n| {
            let step = finalizer.step(n)?;
            acted |= matches!(step, Step::Acted(_));
            Ok(step)
        },
        || once,
    )?;
    if once && !acted && !settings.output.json {
        println!("nothing to finalize");
    }
    Ok(())
}

pub(super) fn status(args: FinalizeArgs) -> anyhow::Result<()> {
    let settings = args.node.settings()?;
    let deployment = settings.deployment()?;
    let mut chain = chain::open(&settings.chain_spec(Some(&deployment)), &[])?;
    let rounds = Rounds::at(chain.as_mut(), deployment.contract)?;
    let task = rounds.task(chain.as_mut(), deployment.task)?;
    let block = chain.block_number()?;
    let mut report = Report::new()
        .add("chain", chain.describe())
        .add("block", block)
        .add("contract", deployment.contract.to_string())
        .add("task", deployment.task.to_string())
        .add("root", format!("{:#x}", task.root))
        .add("pool_wei", task.pool.to_string())
        .add("rounds", task.rounds);
    // A round with a winner advanced the root; one without either judged every candidate
    // bad or could not judge (no quorum, a split vote), and returned or slashed bonds.
    let (mut won, mut without_winner, mut candidates) = (0u64, 0u64, 0u64);
    for id in 0..task.rounds {
        let r = rounds.round(chain.as_mut(), deployment.task, id)?;
        candidates += u64::from(r.commits);
        if r.finalized {
            if r.winner != 0 {
                won += 1;
            } else {
                without_winner += 1;
            }
        }
    }
    let held_out_left: u64 = rounds.eval_sets(chain.as_mut(), deployment.task)?.iter().map(|s| u64::from(s.left)).sum();
    report = report
        .add("won", won)
        .add("without_winner", without_winner)
        .add("candidates", candidates)
        .add("held_out_batches_left", held_out_left);
    if task.open {
        let id = task.rounds - 1;
        let r = rounds.round(chain.as_mut(), deployment.task, id)?;
        let attesters = rounds.attesters(chain.as_mut(), deployment.task, id)?;
        let mut opened = 0;
        for who in &attesters {
            if rounds.attestation(chain.as_mut(), deployment.task, id, *who)?.revealed {
                opened += 1;
            }
        }
        let phase = if block <= r.commitEnd {
            "commit"
        } else if block <= r.revealEnd {
            "reveal"
        } else if block <= r.proofEnd {
            "proofs"
        } else if block <= r.evalEnd {
            "held-out reveal"
        } else if block <= r.attestEnd {
            "attestations"
        } else if block <= r.challengeEnd {
            "attestation reveals and fraud proofs"
        } else {
            "closed: waiting for finalize"
        };
        report = report
            .add("open_round", id)
            .add("phase", phase)
            .add("committed", r.commits)
            .add("revealed", r.revealed)
            .add("proven", r.proven)
            .add("held_out_batch_revealed", r.evalBlock != 0)
            .add("attestations", attesters.len())
            .add("attestations_opened", opened)
            .add("attesting_stake_wei", r.attestingStake.to_string())
            .add("commit_deadline", r.commitEnd)
            .add("reveal_deadline", r.revealEnd)
            .add("proof_deadline", r.proofEnd)
            .add("held_out_deadline", r.evalEnd)
            .add("attest_deadline", r.attestEnd)
            .add("challenge_deadline", r.challengeEnd);
    }
    if let Ok(wallet) = settings.wallet() {
        let who = wallet.address();
        report = report
            .add("account", who.to_string())
            .add("balance_wei", chain.balance(who)?.to_string())
            .add("owed_wei", rounds.owed(chain.as_mut(), who)?.to_string())
            .add("stake_wei", rounds.stake(chain.as_mut(), deployment.task, who)?.to_string());
    }
    report.print(settings.output);
    Ok(())
}
