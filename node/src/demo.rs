//! `pogo demo`: rounds end to end with every role in one process — task registration,
//! competing rounds (three honest miners train, commit, reveal, prove; three verifiers
//! evaluate every candidate on the same batch and attest; the largest median gain wins, the
//! others get their bonds back; the next round starts from the winner's root), then a
//! round in which three cheating miners compete with an honest one and are slashed — on
//! the embedded chain (blocks produced when every role waits), or on a development node
//! such as Anvil. Update blobs travel over HTTP from the miners' stores to the verifiers'.

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
use crate::roles::owner::Owner;
use crate::roles::verifier::Verifier;
use crate::roles::{Event, Node, Phase, Step};
use crate::store::{Store, StoreServer};
use pogo_verifier::rounds::outcome;

/// The demo keystore's password (the demo's keys guard nothing).
pub const DEMO_PASSWORD: &str = "pogo-demo-insecure";
const MARKER: &str = ".pogo-demo";

/// What to run.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// The task file (`None`: the digits task shipped in the binary, written into `dir`).
    pub task: Option<PathBuf>,
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
    /// Seats of each round's committee (0: none, every verifier attests).
    pub committee: u16,
    /// Seats a candidate's verdicts need with a committee [default: half, rounded up].
    pub committee_quorum: Option<u16>,
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

/// How one candidate of a round ended.
#[derive(Debug, Clone, Serialize)]
pub struct CandidateRow {
    /// The miner's name.
    pub miner: String,
    /// `won`, `returned` or `slashed`.
    pub outcome: String,
    /// Why, for people.
    pub why: String,
    /// Stake-weighted median gain (loss units), when it was judged eligible.
    pub gain: Option<f64>,
}

/// One round of the demo, as the chain settled it.
#[derive(Debug, Clone, Serialize)]
pub struct RoundRow {
    /// Round id.
    pub round: u64,
    /// The winner's name, if any.
    pub winner: Option<String>,
    /// Every candidate.
    pub candidates: Vec<CandidateRow>,
    /// Bonds returned (wei).
    pub returned_wei: String,
    /// Bonds slashed (wei).
    pub slashed_wei: String,
    /// The verifiers' fee (wei), shared by the winner's positive attesters.
    pub fee_wei: String,
    /// Each verifier that attested, and the weight the chain gave it: its seats on a
    /// committee task, otherwise its stake in wei.
    pub attesters: BTreeMap<String, String>,
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
    /// Seats of each round's committee (0: none).
    pub committee: u16,
    /// Rounds with a winner.
    pub accepted: u64,
    /// Candidates slashed.
    pub slashed: u64,
    /// Each round, settled.
    pub rounds: Vec<RoundRow>,
    /// Each verifier's stake at the end (wei; each staked 1 ether): a lazy one lost its
    /// share to the fraud proof.
    pub stakes: BTreeMap<String, String>,
    /// Per phase, over the whole demo.
    pub phases: BTreeMap<Phase, PhaseTotal>,
    /// An honest miner's work per candidate (train + commit + reveal + prove), seconds.
    pub miner_seconds: f64,
    /// One verifier's work per honest candidate: its share of the rebuild, evaluation and
    /// attestation of a round, plus the candidate's on-chain proof check, seconds.
    pub verifier_seconds: f64,
    /// verifier_seconds / miner_seconds.
    pub verify_train_ratio: f64,
    /// Every event, with the block it happened at.
    pub events: Vec<(u64, Event)>,
}

/// The demo's honest miners (each honest round, all of them compete) and its cheaters
/// (they compete with the first honest miner in a last round).
const HONEST: [&str; 3] = ["miner-a", "miner-b", "miner-c"];
const CHEATS: [(&str, Cheat); 3] =
    [("cheat-mismatch", Cheat::Mismatch), ("cheat-no-gain", Cheat::NoGain), ("cheat-zero", Cheat::Zero)];
const VERIFIERS: [&str; 3] = ["verifier-1", "verifier-2", "verifier-3"];
/// With the cheaters, a lazy verifier too: it attests positive on everything without
/// rebuilding, and pays for it when the honest verifiers prove the mismatched block wrong.
const LAZY: &str = "verifier-lazy";

/// Runs the demo, calling `print` with each line of progress.
pub fn run(opts: &DemoOptions, print: &mut dyn FnMut(&str)) -> anyhow::Result<DemoSummary> {
    // Absolute paths: the deployment record must still name the right files when `pogo
    // status --home DIR` runs from another directory.
    let absolute = |p: &Path| std::path::absolute(p).with_context(|| format!("resolving {}", p.display()));
    let opts = &DemoOptions {
        dir: absolute(&opts.dir)?,
        params_dir: absolute(&opts.params_dir)?,
        task: opts.task.as_deref().map(absolute).transpose()?,
        ..opts.clone()
    };
    prepare_dir(&opts.dir)?;
    let (task_file, held_out) = match &opts.task {
        Some(path) => (path.clone(), None),
        None => {
            let (file, held_out) = write_shipped_task(&opts.dir.join("task"))?;
            (file, Some(held_out))
        }
    };
    let keystore = Keystore::new(&opts.dir.join("keystore"), DEMO_PASSWORD);
    let miner_names: Vec<&str> = HONEST.iter().copied().chain(CHEATS.iter().map(|(n, _)| *n)).collect();
    let verifier_names: Vec<&str> = VERIFIERS.into_iter().chain(opts.cheats.then_some(LAZY)).collect();
    let names: Vec<&str> =
        ["owner"].into_iter().chain(miner_names.iter().copied()).chain(verifier_names.iter().copied()).collect();
    let wallets: Vec<Wallet> = names.iter().map(|n| keystore.open_or_create(n)).collect::<Result<_, _>>()?;
    let wallet = |name: &str| wallets[names.iter().position(|n| *n == name).expect("a demo name")].clone();
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
        commit_window: 10,
        reveal_window: 5,
        proof_window: 20,
        attest_window: 40,
        challenge_window: 10,
        fraud_slash: 0.5,
        max_candidates: 16,
        verifier_fee: 0.1,
        quorum: 3.0,
        committee: opts.committee,
        committee_quorum: opts.committee_quorum,
        bond: 1.0,
        stake: 1.0,
        reward: 0.5,
        pool: 10.0,
        verifier_gas: 1_500_000,
        dev_seed: Some(0),
        // The demo's keys are INSECURE: it runs on development chains only.
        insecure: false,
    };
    let start = Instant::now();
    print(&format!(
        "registering {} (keys and verifier for S = {} from {})",
        task_file.display(),
        opts.samples,
        opts.params_dir.display()
    ));
    let owner = wallet("owner");
    let (deployment, set) = create_task(
        chain.as_mut(),
        &chain_spec,
        &owner,
        None,
        &task_file,
        held_out.as_deref(),
        &terms,
        &opts.params_dir,
    )?;
    deployment.save(&opts.dir.join("deployment.json"))?;
    print(&format!(
        "the owner committed to {} held-out batches from {} (root {}): miners never see them",
        set.batches,
        set.file.display(),
        set.root
    ));
    let mut task_owner = Owner::created(owner.clone(), &opts.dir.join("owner"), set)?;
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

    // Each miner serves its store over HTTP (a blob enters it only at the reveal); every
    // node fetches blobs it lacks from them.
    let store = |name: &str| Store::new(&opts.dir.join(name).join("store"));
    let servers: Vec<StoreServer> =
        miner_names.iter().map(|n| store(n).serve("127.0.0.1:0")).collect::<Result<_, _>>()?;
    let urls: Vec<String> = servers.iter().map(|s| s.url.clone()).collect();
    print(&format!("miners serve their update stores at {}", urls.join(", ")));
    let actor = |name: &str| -> anyhow::Result<Node> {
        let mut chain = open()?;
        let rounds = Rounds::at(chain.as_mut(), deployment.contract)?;
        Node::new(chain, rounds, deployment.task, &deployment.task_file, store(name), urls.clone())
    };
    let mut miner_nodes: Vec<Node> = miner_names.iter().map(|n| actor(n)).collect::<Result<_, _>>()?;
    let mut verifier_nodes: Vec<Node> = verifier_names.iter().map(|n| actor(n)).collect::<Result<_, _>>()?;
    let mut finalizer_node = actor("finalizer")?;
    let mut owner_node = actor("owner")?;
    let weights = finalizer_node.trainer.genesis()?.weight_count();
    let mut verifiers: Vec<Verifier> = verifier_names
        .iter()
        .map(|n| {
            let v = Verifier::new(wallet(n), &opts.dir.join(n), wei(1.0))?;
            Ok(if *n == LAZY { v.lazy() } else { v })
        })
        .collect::<anyhow::Result<_>>()?;
    let mut finalizer = Finalizer::new(owner.clone());
    let mut miners: Vec<Miner> = miner_names
        .iter()
        .map(|n| {
            let cheat = CHEATS.iter().find(|(c, _)| c == n).map_or(Cheat::None, |(_, cheat)| *cheat);
            Miner::new(wallet(n), &opts.dir.join(n), &opts.params_dir, cheat, u64::MAX)
        })
        .collect::<Result<_, _>>()?;

    let mut schedule: Vec<Vec<usize>> = (0..opts.rounds).map(|_| (0..HONEST.len()).collect()).collect();
    if opts.cheats {
        schedule.push((0..miner_names.len()).filter(|&i| i == 0 || i >= HONEST.len()).collect());
    }
    let mut events: Vec<(u64, Event)> = Vec::new();
    for competitors in schedule {
        let who: Vec<&str> = competitors.iter().map(|&i| miner_names[i]).collect();
        print(&format!("--- a round contested by {} ---", who.join(", ")));
        let targets: Vec<u64> = competitors.iter().map(|&i| miners[i].state.finished + 1).collect();
        let mut idle_passes = 0;
        while competitors.iter().zip(&targets).any(|(&i, t)| miners[i].state.finished < *t) {
            let mut steps = Vec::new();
            for (&i, t) in competitors.iter().zip(&targets) {
                if miners[i].state.finished < *t {
                    steps.push(miners[i].step(&mut miner_nodes[i])?);
                }
            }
            steps.push(task_owner.step(&mut owner_node)?);
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
    // The verifiers collect their fee shares and slashed bonds of the last round.
    for (v, a) in verifiers.iter_mut().zip(verifier_nodes.iter_mut()) {
        while let Step::Acted(e) = v.step(a)? {
            let block = finalizer_node.chain.block_number()?;
            print(&format!("[block {block:>4}] {:<26} {} ({:.2} s{})", e.role, e.what, e.seconds, gas_note(e.gas)));
            events.push((block, e));
        }
    }

    let mut phases: BTreeMap<Phase, PhaseTotal> = BTreeMap::new();
    for (_, e) in &events {
        let t = phases.entry(e.phase).or_default();
        t.count += 1;
        t.seconds += e.seconds;
        t.gas += e.gas;
    }
    let addresses: Vec<(alloy::primitives::Address, &str)> = names.iter().map(|n| (wallet(n).address(), *n)).collect();
    let rounds = settle(&mut finalizer_node, &addresses)?;
    let mut stakes = BTreeMap::new();
    for n in &verifier_names {
        let stake =
            finalizer_node.rounds.stake(finalizer_node.chain.as_mut(), finalizer_node.task, wallet(n).address())?;
        stakes.insert(n.to_string(), stake.to_string());
    }
    let accepted = rounds.iter().filter(|r| r.winner.is_some()).count() as u64;
    let slashed = rounds.iter().flat_map(|r| &r.candidates).filter(|c| c.outcome == "slashed").count() as u64;
    // Cost per honest candidate: an honest miner's work, and one verifier's share.
    let honest_role = |e: &Event| HONEST.iter().any(|n| e.role == format!("miner {n}"));
    let miner_work: f64 = events
        .iter()
        .filter(|(_, e)| honest_role(e) && matches!(e.phase, Phase::Train | Phase::Commit | Phase::Prove))
        .map(|(_, e)| e.seconds)
        .sum();
    let honest_candidates = events.iter().filter(|(_, e)| honest_role(e) && e.phase == Phase::Train).count().max(1);
    let all_candidates: usize = rounds.iter().map(|r| r.candidates.len()).sum::<usize>().max(1);
    let proof_checks: f64 = events.iter().filter(|(_, e)| e.phase == Phase::SubmitProof).map(|(_, e)| e.seconds).sum();
    let proofs = events.iter().filter(|(_, e)| e.phase == Phase::SubmitProof).count().max(1);
    let evaluation: f64 = events
        .iter()
        .filter(|(_, e)| VERIFIERS.iter().any(|n| e.role == format!("verifier {n}")) && e.phase == Phase::Evaluate)
        .map(|(_, e)| e.seconds)
        .sum();
    let miner_seconds = miner_work / honest_candidates as f64;
    let verifier_seconds = proof_checks / proofs as f64 + evaluation / VERIFIERS.len() as f64 / all_candidates as f64;
    Ok(DemoSummary {
        chain: chain.describe(),
        deployment,
        weights,
        committee: opts.committee,
        accepted,
        slashed,
        rounds,
        stakes,
        phases,
        miner_seconds,
        verifier_seconds,
        verify_train_ratio: if miner_seconds > 0.0 { verifier_seconds / miner_seconds } else { f64::NAN },
        events,
    })
    .inspect(|_| drop(servers))
}

/// Reads back how the chain settled every round, naming the miners.
fn settle(node: &mut Node, names: &[(alloy::primitives::Address, &str)]) -> anyhow::Result<Vec<RoundRow>> {
    let task = node.rounds.task(node.chain.as_mut(), node.task)?;
    let name = |a: alloy::primitives::Address| {
        names.iter().find(|(w, _)| *w == a).map_or_else(|| a.to_string(), |(_, n)| n.to_string())
    };
    let mut rows = Vec::new();
    for id in 0..task.rounds {
        let r = node.rounds.round(node.chain.as_mut(), node.task, id)?;
        let candidates = node.rounds.candidates(node.chain.as_mut(), node.task, &r, id)?;
        let (mut returned, mut slashed) = (0u128, 0u128);
        let mut rows_c = Vec::new();
        for c in &candidates {
            let (word, why) = match c.outcome {
                outcome::WON => ("won", "largest median gain among proven, quorate, 2/3-positive candidates"),
                outcome::RETURNED if r.winner != 0 => ("returned", "eligible but beaten by a larger gain"),
                outcome::RETURNED if r.evalBlock == 0 => {
                    ("returned", "not judged: the owner revealed no held-out batch")
                }
                outcome::RETURNED => ("returned", "not judged: no quorum, or the verifiers split"),
                outcome::SLASHED if !c.revealed => ("slashed", "never revealed (or its reveal was refused)"),
                outcome::SLASHED if !c.proven => ("slashed", "no valid proof by the deadline"),
                outcome::SLASHED if c.fraud => ("slashed", "a fraud proof showed one of its blocks wrong"),
                outcome::SLASHED => ("slashed", "judged bad by 2/3 of the verifiers' stake"),
                _ => ("pending", "round still open"),
            };
            match c.outcome {
                outcome::RETURNED => returned += c.bond,
                outcome::SLASHED => slashed += c.bond,
                _ => {}
            }
            let judged = matches!(c.outcome, outcome::WON) || (c.outcome == outcome::RETURNED && r.winner != 0);
            rows_c.push(CandidateRow {
                miner: name(c.miner),
                outcome: word.into(),
                why: why.into(),
                gain: judged.then(|| crate::roles::gain(c.gain)),
            });
        }
        let fee = r.fee;
        let mut attesters = BTreeMap::new();
        for who in node.rounds.attesters(node.chain.as_mut(), node.task, id)? {
            let a = node.rounds.attestation(node.chain.as_mut(), node.task, id, who)?;
            attesters.insert(name(who), a.stake.to_string());
        }
        rows.push(RoundRow {
            round: id,
            winner: (r.winner != 0).then(|| name(candidates[r.winner as usize - 1].miner)),
            candidates: rows_c,
            returned_wei: returned.to_string(),
            slashed_wei: slashed.to_string(),
            fee_wei: fee.to_string(),
            attesters,
        });
    }
    Ok(rows)
}

fn gas_note(gas: u64) -> String {
    if gas == 0 {
        String::new()
    } else {
        format!(", {gas} gas")
    }
}

/// The digits task (`tasks/digits.json`), its public data and its owner's held-out data,
/// shipped in the binary so the demo runs from any directory.
const DIGITS_TASK: &str = include_str!("../../tasks/digits.json");
const DIGITS_DATA: &[u8] = include_bytes!("../data/digits.bin");
const DIGITS_HELD_OUT: &[u8] = include_bytes!("../data/digits-heldout.bin");

/// Writes the shipped digits task into `dir` (its data beside it, the owner's held-out data
/// in `dir/owner-only/`); returns the task file and the held-out file.
fn write_shipped_task(dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let private = dir.join("owner-only");
    std::fs::create_dir_all(&private).with_context(|| format!("creating {}", private.display()))?;
    let mut task: serde_json::Value = serde_json::from_str(DIGITS_TASK).expect("the shipped task parses");
    task["data"]["path"] = serde_json::json!("digits.bin");
    pogo_circuits::files::write_atomic(&dir.join("digits.bin"), DIGITS_DATA)?;
    let held_out = private.join("digits-heldout.bin");
    pogo_circuits::files::write_atomic(&held_out, DIGITS_HELD_OUT)?;
    let file = dir.join("digits.json");
    pogo_circuits::files::write_atomic(&file, &serde_json::to_vec_pretty(&task).expect("json"))?;
    Ok((file, held_out))
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
    println!("rounds won: {} of {}, candidates slashed: {}", s.accepted, s.rounds.len(), s.slashed);
    println!("{:<6} {:<15} {:<9} {:>12}  why", "round", "miner", "outcome", "median gain");
    for r in &s.rounds {
        for c in &r.candidates {
            let gain = c.gain.map_or_else(|| "–".to_string(), |g| format!("{g:.6}"));
            println!("{:<6} {:<15} {:<9} {:>12}  {}", r.round, c.miner, c.outcome, gain, c.why);
        }
        let ether = |wei: &str| wei.parse::<f64>().unwrap_or(0.0) / 1e18;
        println!(
            "{:<6} winner: {}; bonds returned {} ETH, slashed {} ETH; verifiers' fee {} ETH",
            "",
            r.winner.as_deref().unwrap_or("none"),
            ether(&r.returned_wei),
            ether(&r.slashed_wei),
            ether(&r.fee_wei)
        );
        let weights: Vec<String> = r
            .attesters
            .iter()
            .map(|(n, w)| match s.committee {
                0 => format!("{n} ({} ETH)", ether(w)),
                _ => format!("{n} ({w} seats)"),
            })
            .collect();
        let drawn = if s.committee == 0 { String::new() } else { format!(" (committee of {} seats)", s.committee) };
        println!(
            "{:<6} attested{drawn}: {}",
            "",
            if weights.is_empty() { "nobody".into() } else { weights.join(", ") }
        );
    }
    let stakes: Vec<String> =
        s.stakes.iter().map(|(n, w)| format!("{n} {} ETH", w.parse::<f64>().unwrap_or(0.0) / 1e18)).collect();
    println!("verifiers' stakes at the end (each staked 1 ETH): {}", stakes.join(", "));
    println!("\n{:<14} {:>6} {:>11} {:>12}", "phase", "events", "seconds", "gas");
    for (phase, t) in &s.phases {
        println!("{:<14} {:>6} {:>11.2} {:>12}", format!("{phase:?}"), t.count, t.seconds, t.gas);
    }
    println!(
        "per honest candidate: its miner {:.2} s (train + commit + reveal + prove); one verifier {:.3} s (on-chain proof \
         check + its share of fetch, rebuild, evaluate, attest); verifier / miner = {:.2} %",
        s.miner_seconds,
        s.verifier_seconds,
        100.0 * s.verify_train_ratio
    );
}
