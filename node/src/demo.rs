//! `pogo demo`: rounds end to end with every role in one process — task registration,
//! honest rounds (train, commit, both randomness phases, prove, on-chain verification,
//! three verifiers attesting, finalize, the next round from the accepted root), then two
//! cheating miners slashed — on the embedded chain (blocks produced when every role
//! waits), or on a development node such as Anvil. Update blobs travel over HTTP from the
//! miners' stores to the verifiers'.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use serde::Serialize;

use crate::chain::{self, EmbeddedChain};
use crate::contract::Rounds;
use crate::deploy::{create_task, wei, Deployment, TaskTerms};
use crate::keystore::{Keystore, Wallet};
use crate::roles::finalizer::Finalizer;
use crate::roles::miner::{Cheat, Miner};
use crate::roles::verifier::Verifier;
use crate::roles::{Event, Node, Phase, Step};
use crate::store::{Store, StoreServer};

/// The demo keystore's password (the demo's keys guard nothing).
pub const DEMO_PASSWORD: &str = "pogo-demo-insecure";
const MARKER: &str = ".pogo-demo";

/// What to run.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// The task file.
    pub task: PathBuf,
    /// Honest rounds.
    pub rounds: u64,
    /// Also run the two cheating miners.
    pub cheats: bool,
    /// Working folder (wiped if it holds an earlier demo).
    pub dir: PathBuf,
    /// Where keys live (made with the INSECURE seeded setup if missing).
    pub params_dir: PathBuf,
    /// Samples per proof.
    pub samples: usize,
    /// A JSON-RPC development node instead of the embedded chain.
    pub chain: Option<String>,
}

/// Totals of one phase.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PhaseTotal {
    /// Events.
    pub count: u64,
    /// Wall time (seconds).
    pub seconds: f64,
    /// Gas.
    pub gas: u64,
}

/// What the demo did.
#[derive(Debug, Clone, Serialize)]
pub struct DemoSummary {
    /// Chain used.
    pub chain: String,
    /// The deployment.
    pub deployment: Deployment,
    /// Weights of the model.
    pub weights: u64,
    /// Rounds accepted.
    pub accepted: u64,
    /// Rounds slashed.
    pub slashed: u64,
    /// Per phase, over the whole demo.
    pub phases: BTreeMap<Phase, PhaseTotal>,
    /// Miner's work per honest round (train + commit + prove), seconds.
    pub miner_seconds: f64,
    /// One verifier's work per honest round (on-chain proof check + fetch, rebuild,
    /// evaluate, attest), seconds.
    pub verifier_seconds: f64,
    /// verifier_seconds / miner_seconds.
    pub verify_train_ratio: f64,
    /// Every event, with the block it happened at.
    pub events: Vec<(u64, Event)>,
}

/// Runs the demo, calling `print` with each line of progress.
pub fn run(opts: &DemoOptions, print: &mut dyn FnMut(&str)) -> anyhow::Result<DemoSummary> {
    prepare_dir(&opts.dir)?;
    let keystore = Keystore::new(&opts.dir.join("keystore"), DEMO_PASSWORD);
    let names = ["owner", "miner", "cheat-mismatch", "cheat-no-gain", "verifier-1", "verifier-2", "verifier-3"];
    let wallets: Vec<Wallet> = names.iter().map(|n| keystore.open_or_create(n)).collect::<Result<_, _>>()?;
    let chain_spec = match &opts.chain {
        Some(url) => url.clone(),
        None => {
            let path = opts.dir.join("chain.json");
            EmbeddedChain::open_with(&path, 0.0)?;
            path.display().to_string()
        }
    };
    let open = || chain::open(&chain_spec, &wallets);
    let mut chain = open()?;
    for w in &wallets {
        chain.dev_fund(w.address(), wei(1000.0))?;
    }
    print(&format!("chain: {}", chain.describe()));

    let terms = TaskTerms {
        samples: opts.samples,
        depth: None,
        proof_window: 20,
        attest_window: 40,
        quorum: 3.0,
        bond: 1.0,
        stake: 1.0,
        reward: 0.5,
        pool: 10.0,
        verifier_gas: 1_500_000,
        dev_seed: Some(0),
    };
    let start = Instant::now();
    print(&format!(
        "registering {} (keys and verifier for S = {} from {})",
        opts.task.display(),
        opts.samples,
        opts.params_dir.display()
    ));
    let deployment = create_task(chain.as_mut(), &chain_spec, &wallets[0], None, &opts.task, &terms, &opts.params_dir)?;
    deployment.save(&opts.dir.join("deployment.json"))?;
    let registered = Rounds::at(chain.as_mut(), deployment.contract)?.task(chain.as_mut(), deployment.task)?;
    crate::deploy::check_verifier(chain.as_mut(), &registered.params, &opts.params_dir)?;
    print(&format!(
        "task {} in round contract {} (verifier {}, D = {}, S = {}) in {:.1} s",
        deployment.task,
        deployment.contract,
        deployment.verifier,
        deployment.depth,
        deployment.samples,
        start.elapsed().as_secs_f64()
    ));

    // Each miner serves its store over HTTP; every node fetches blobs it lacks from them.
    let store = |name: &str| Store::new(&opts.dir.join(name).join("store"));
    let servers: Vec<StoreServer> =
        names[1..4].iter().map(|n| store(n).serve("127.0.0.1:0")).collect::<Result<_, _>>()?;
    let urls: Vec<String> = servers.iter().map(|s| s.url.clone()).collect();
    print(&format!("miners serve their update stores at {}", urls.join(", ")));
    let actor = |name: &str| -> anyhow::Result<Node> {
        let mut chain = open()?;
        let rounds = Rounds::at(chain.as_mut(), deployment.contract)?;
        Node::new(chain, rounds, deployment.task, &deployment.task_file, store(name), urls.clone())
    };
    let mut miners: Vec<Node> = names[1..4].iter().map(|n| actor(n)).collect::<Result<_, _>>()?;
    let mut verifier_nodes: Vec<Node> = names[4..7].iter().map(|n| actor(n)).collect::<Result<_, _>>()?;
    let mut finalizer_node = actor("finalizer")?;
    let weights = finalizer_node.trainer.genesis()?.weight_count();
    let mut verifiers: Vec<Verifier> = names[4..7]
        .iter()
        .zip(&wallets[4..7])
        .map(|(n, w)| Verifier::new(w.clone(), &opts.dir.join(n), wei(1.0)))
        .collect::<Result<_, _>>()?;
    let mut finalizer = Finalizer::new(wallets[0].clone());

    let mut schedule: Vec<(usize, Cheat)> = (0..opts.rounds).map(|_| (0, Cheat::None)).collect();
    if opts.cheats {
        schedule.extend([(1, Cheat::Mismatch), (2, Cheat::NoGain)]);
    }
    let mut events: Vec<(u64, Event)> = Vec::new();
    for (who, cheat) in schedule {
        let name = names[1 + who];
        let mut miner = Miner::new(wallets[1 + who].clone(), &opts.dir.join(name), &opts.params_dir, cheat, u64::MAX)?;
        let target = miner.state.finished + 1;
        print(&format!(
            "--- round by {name}{} ---",
            if cheat == Cheat::None { String::new() } else { format!(" (cheating: {cheat:?})") }
        ));
        let mut idle_passes = 0;
        while miner.state.finished < target {
            let mut steps = vec![miner.step(&mut miners[who])?];
            for (v, a) in verifiers.iter_mut().zip(verifier_nodes.iter_mut()) {
                steps.push(v.step(a)?);
            }
            steps.push(finalizer.step(&mut finalizer_node)?);
            let mut until = None::<u64>;
            let mut acted = false;
            for step in steps {
                match step {
                    Step::Acted(e) => {
                        let block = finalizer_node.chain.block_number()?;
                        print(&format!(
                            "[block {block:>4}] {:<26} {} ({:.2} s{})",
                            e.role,
                            e.what,
                            e.seconds,
                            gas_note(e.gas)
                        ));
                        events.push((block, e));
                        acted = true;
                    }
                    Step::Wait { until: Some(b), .. } => until = Some(until.map_or(b, |u: u64| u.min(b))),
                    Step::Wait { .. } | Step::Done => {}
                }
            }
            if acted {
                idle_passes = 0;
                continue;
            }
            idle_passes += 1;
            match until {
                Some(b) if idle_passes < 100 => {
                    if !finalizer_node.chain.produce_blocks_until(b)? {
                        std::thread::sleep(std::time::Duration::from_millis(500));
                    }
                }
                _ => bail!("the demo is stuck: every role waits and no block would help"),
            }
        }
    }

    let mut phases: BTreeMap<Phase, PhaseTotal> = BTreeMap::new();
    for (_, e) in &events {
        let t = phases.entry(e.phase).or_default();
        t.count += 1;
        t.seconds += e.seconds;
        t.gas += e.gas;
    }
    let task = finalizer_node.rounds.task(finalizer_node.chain.as_mut(), deployment.task)?;
    let (mut accepted, mut slashed) = (0, 0);
    for id in 0..task.rounds {
        let r = finalizer_node.rounds.round(finalizer_node.chain.as_mut(), deployment.task, id)?;
        if r.finalized && r.accepted {
            accepted += 1;
        } else if r.finalized && !r.refunded {
            slashed += 1;
        }
    }
    // Cost per honest round: the honest miner's work, and one verifier's.
    let honest = |e: &Event| e.role == "miner miner" || e.role.starts_with("verifier");
    let honest_rounds: Vec<u64> =
        events.iter().filter(|(_, e)| e.role == "miner miner").map(|(_, e)| e.round).collect();
    let in_honest = |e: &Event| honest_rounds.contains(&e.round) && honest(e);
    let sum = |f: &dyn Fn(&Event) -> bool| {
        events.iter().filter(|(_, e)| in_honest(e) && f(e)).map(|(_, e)| e.seconds).sum::<f64>()
    };
    let n = opts.rounds.max(1) as f64;
    let miner_seconds =
        sum(&|e| e.role == "miner miner" && matches!(e.phase, Phase::Train | Phase::Commit | Phase::Prove)) / n;
    let proof_check = sum(&|e| e.phase == Phase::SubmitProof) / n;
    let verifier_seconds =
        proof_check + sum(&|e| e.role.starts_with("verifier") && e.phase == Phase::Evaluate) / n / 3.0;
    Ok(DemoSummary {
        chain: chain.describe(),
        deployment,
        weights,
        accepted,
        slashed,
        phases,
        miner_seconds,
        verifier_seconds,
        verify_train_ratio: if miner_seconds > 0.0 { verifier_seconds / miner_seconds } else { f64::NAN },
        events,
    })
    .inspect(|_| drop(servers))
}

fn gas_note(gas: u64) -> String {
    if gas == 0 {
        String::new()
    } else {
        format!(", {gas} gas")
    }
}

/// Makes `dir` empty: creates it, or wipes an earlier demo's; refuses anything else.
fn prepare_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        let empty = std::fs::read_dir(dir)?.next().is_none();
        if !empty && !dir.join(MARKER).exists() {
            bail!("{} exists and is not a demo folder: pick another --dir", dir.display());
        }
        std::fs::remove_dir_all(dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(dir.join(MARKER), "a pogo demo folder: `pogo demo` wipes and rewrites it\n")?;
    Ok(())
}

/// Prints the summary as text.
pub fn print_summary(s: &DemoSummary) {
    println!(
        "\n== summary ({}; model of {} weights, D = {}, S = {}) ==",
        s.chain, s.weights, s.deployment.depth, s.deployment.samples
    );
    println!("rounds accepted: {}, slashed: {}", s.accepted, s.slashed);
    println!("{:<14} {:>6} {:>11} {:>12}", "phase", "events", "seconds", "gas");
    for (phase, t) in &s.phases {
        println!("{:<14} {:>6} {:>11.2} {:>12}", format!("{phase:?}"), t.count, t.seconds, t.gas);
    }
    println!(
        "per honest round: miner {:.2} s (train + commit + prove), one verifier {:.3} s (proof check + fetch, rebuild, evaluate, attest): verify/train ratio {:.2} %",
        s.miner_seconds,
        s.verifier_seconds,
        100.0 * s.verify_train_ratio
    );
}
