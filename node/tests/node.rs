//! The node end to end: `pogo demo` on the embedded chain (competing honest rounds, every
//! cheater slashed), the same contract bytecode against a real Anvil node over JSON-RPC,
//! and restart safety: roles killed (abort at each phase boundary, and a real SIGKILL)
//! and restarted never double-submit and finish their rounds.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use pogo_node::chain::{Chain, EmbeddedChain};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn install(script: &str) -> String {
    let out = Command::new(root().join(script)).stderr(Stdio::inherit()).output().unwrap();
    assert!(out.status.success(), "{script} failed");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn pogo() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pogo"));
    cmd.current_dir(root()).env("POGO_SOLC", solc()).env_remove("POGO_CRASH_AT");
    cmd
}

fn solc() -> &'static str {
    static SOLC: OnceLock<String> = OnceLock::new();
    SOLC.get_or_init(|| install("scripts/solc/install.sh"))
}

/// Keys and verifier for the digits task's configuration (D = 6, S = 2), made once.
/// The tests' keys folder, with the keys and verifier of D = 6, S = 2 (the digits task).
fn params() -> &'static Path {
    static PARAMS: OnceLock<PathBuf> = OnceLock::new();
    PARAMS.get_or_init(|| make_keys(6, 2))
}

/// The keys folder with D = 14, S = 2 made too (a model of 10^4 blocks).
fn params_deep() -> &'static Path {
    static PARAMS: OnceLock<PathBuf> = OnceLock::new();
    PARAMS.get_or_init(|| {
        params();
        make_keys(14, 2)
    })
}

/// Makes (once per checkout: they stay in target/) the keys of (D, S), and exports their
/// verifier afresh each run (a second or two), so a changed generator is never tested stale.
fn make_keys(depth: u32, samples: usize) -> PathBuf {
    let dir = root().join("target/test-fixtures/node-params");
    let (d, s) = (depth.to_string(), samples.to_string());
    let steps = [
        ("manifest.json", ["setup", "--depth", &d, "--samples", &s]),
        ("verifier.json", ["export-verifier", "--depth", &d, "--samples", &s]),
    ];
    for (made, args) in steps {
        if made == "manifest.json" && dir.join(format!("d{depth}-s{samples}")).join(made).exists() {
            continue;
        }
        let out = pogo().args(args).arg("--params-dir").arg(&dir).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    dir
}

fn ok(out: Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn demo_runs_competing_rounds_and_slashes_every_cheater() {
    // As a new user runs it: outside the checkout, with no compiler anywhere (the demo's
    // task and its verifier ship in the binary), keys present but no verifier exported.
    let dir = tempfile::tempdir().unwrap();
    let demo = dir.path().join("demo");
    let keys = dir.path().join("params/d6-s2");
    std::fs::create_dir_all(&keys).unwrap();
    for file in ["manifest.json", "setup.bin", "vk.bin", "pk.bin"] {
        std::fs::hard_link(params().join("d6-s2").join(file), keys.join(file)).unwrap();
    }
    let summary = ok(Command::new(env!("CARGO_BIN_EXE_pogo"))
        .current_dir(dir.path())
        .env_remove("POGO_SOLC")
        .env_remove("POGO_PARAMS")
        .env("PATH", "/usr/bin:/bin")
        .args(["demo", "--json", "--rounds", "1", "--dir", "demo"])
        .output()
        .unwrap());
    assert!(keys.join("verifier.json").exists(), "the shipped verifier was installed");
    // A round of three competing honest miners, then one honest miner against three
    // cheaters: every round has a winner, every cheater is slashed.
    assert_eq!(summary["accepted"], 2, "{summary:#}");
    assert_eq!(summary["slashed"], 3);
    let rounds = summary["rounds"].as_array().unwrap();
    for r in &rounds[..1] {
        let outcomes: Vec<&str> =
            r["candidates"].as_array().unwrap().iter().map(|c| c["outcome"].as_str().unwrap()).collect();
        let mut sorted = outcomes.clone();
        sorted.sort();
        assert_eq!(sorted, ["returned", "returned", "won"], "one winner, the others' bonds back: {r:#}");
    }
    assert_eq!(rounds[1]["winner"], "miner-a", "{:#}", rounds[1]);
    let events = summary["events"].as_array().unwrap();
    let said = |role: &str, needle: &str| {
        events
            .iter()
            .any(|e| e[1]["role"].as_str().unwrap().contains(role) && e[1]["what"].as_str().unwrap().contains(needle))
    };
    assert!(said("cheat-mismatch", "bond slashed"), "the mismatched commitment is slashed");
    if said("cheat-mismatch", "proof verified on chain") {
        // The sampled proof missed the wrong block: the verifiers' rebuild finds it, one
        // proves it wrong on chain, and the lazy verifier that signed it pays.
        assert!(said("verifier", "a fraud proof follows after block"), "the rebuild found it");
        assert!(said("verifier", "fraud proof landed against candidate 1, block 42: the new model's block is not"));
        assert!(said("verifier", "proven fraudulent by another challenger first"), "one proof, the others see it");
        assert!(said("cheat-mismatch", "a fraud proof showed a block wrong: bond slashed"));
        // The lazy verifier opened before the proof landed: it pays as the proof lands.
        assert!(said("verifier", "500000000000000000 wei of positive attesters' stake slashed"));
        assert_eq!(summary["stakes"]["verifier-lazy"], "500000000000000000", "half of 1 ETH: {summary:#}");
        assert_eq!(summary["stakes"]["verifier-1"], "1000000000000000000");
    } else {
        // Or the proof sampled it (2 blocks in 43), and no proof can be made.
        assert!(said("cheat-mismatch", "cannot prove"), "{summary:#}");
    }
    assert!(said("cheat-no-gain", "rejected by the verifiers: bond slashed"));
    assert!(said("verifier", "did not fall"), "verifiers saw the loss rise");
    assert!(said("cheat-zero", "UnchangedModel"), "no work is refused at the reveal");
    assert!(said("miner", "beaten by a larger gain: bond returned"));
    assert!(said("verifier", "claimed"), "verifiers are paid");
    assert!(said("owner", "revealed held-out batch"), "the owner reveals each round's drawn batch");
    assert!(said("verifier", "held-out examples"), "verifiers evaluate on the revealed batch");
    assert!(summary["verify_train_ratio"].as_f64().unwrap() > 0.0);
    // The chain on disk says the same to `pogo status`, and each round started from the
    // previous winner's root.
    let status = ok(pogo().args(["status", "--json", "--home"]).arg(&demo).output().unwrap());
    assert_eq!(
        (status["rounds"].as_u64(), status["won"].as_u64(), status["candidates"].as_u64()),
        (Some(2), Some(2), Some(7))
    );
    // A second run refuses a folder that is not a demo's.
    let other = dir.path().join("precious");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("notes.txt"), "keep me").unwrap();
    let out = pogo().args(["demo", "--dir"]).arg(&other).output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("not a demo folder"));
    assert!(other.join("notes.txt").exists());
}

struct Anvil(Child);

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A fresh Anvil node (the pinned one the install script provides) under Prague, and its URL.
fn anvil() -> (Anvil, String) {
    anvil_with(&[])
}

/// [`anvil`] with extra arguments.
fn anvil_with(extra: &[&str]) -> (Anvil, String) {
    let binary = install("scripts/anvil/install.sh");
    let port = free_port();
    let node = Anvil(
        Command::new(binary)
            .args(["--port", &port.to_string(), "--silent", "--hardfork", "prague"])
            .args(extra)
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let start = Instant::now();
    while TcpListener::bind(("127.0.0.1", port)).is_ok() {
        assert!(start.elapsed() < Duration::from_secs(20), "anvil did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    (node, format!("http://127.0.0.1:{port}"))
}

#[test]
fn a_full_round_against_anvil_over_json_rpc() {
    let (_node, url) = anvil();
    let dir = tempfile::tempdir().unwrap();
    let demo = dir.path().join("demo");
    let summary = ok(pogo()
        .args(["demo", "--json", "--rounds", "1", "--no-cheats", "--chain", &url, "--dir"])
        .arg(&demo)
        .arg("--params-dir")
        .arg(params())
        .output()
        .unwrap());
    assert_eq!(summary["accepted"], 1, "{summary:#}");
    assert!(summary["chain"].as_str().unwrap().contains("JSON-RPC"));
    assert!(summary["phases"]["submit_proof"]["gas"].as_u64().unwrap() > 300_000, "the real verifier ran");
    let status = ok(pogo().args(["status", "--json", "--chain", &url, "--home"]).arg(&demo).output().unwrap());
    assert_eq!(status["won"], 1);
    // A chain that is down is a clear error, not a panic.
    let down = format!("http://127.0.0.1:{}", free_port());
    let out = pogo().args(["status", "--chain", &down, "--home"]).arg(&demo).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("chain unavailable"), "{err}");
}

/// A node folder with keys, a task on a clocked embedded chain, and two verifiers.
struct Network {
    home: tempfile::TempDir,
    port: u16,
    verifiers: Vec<Child>,
    params: &'static Path,
}

/// How long any one wait of the restart test may take before it fails.
const PATIENCE: Duration = Duration::from_secs(300);

/// Seconds per block of the restart test's clocked chain.
const BLOCK_TIME: f64 = 0.2;

impl Network {
    /// A network on a clocked embedded chain with keys `keys` and the digits task, quorum 2.
    /// Every window a role must act in is longer than any wait these tests allow
    /// (PATIENCE), so however loaded the machine, no window can close on a role that is
    /// restarting: a test fails by its own patience first. `hurry` skips the rest of a
    /// window once every role has done its part, so the long windows cost no time. (The
    /// challenge window was the default 20 blocks, 4 s, for the verifiers to open their
    /// attestations: under load one missed it, and the round ended without a winner.)
    fn with_task(keys: &[&str]) -> Self {
        Self::with_task_file(keys, &root().join("tasks/digits.json"))
    }

    fn with_task_file(keys: &[&str], task: &Path) -> Self {
        let net =
            Network { home: tempfile::tempdir().unwrap(), port: free_port(), verifiers: Vec::new(), params: params() };
        for key in keys {
            ok(net.cmd(&["keys", "new", key, "--json"]).output().unwrap());
        }
        let window = (PATIENCE.as_secs_f64() / BLOCK_TIME).ceil() as u64 + 100;
        let (held_out, attest) = (window, window);
        let terms = [
            ("--commit-window", 10),
            ("--reveal-window", window),
            ("--proof-window", window),
            ("--attest-window", window + held_out + attest),
            ("--challenge-window", window),
        ];
        ok(net
            .cmd(&[
                "task",
                "create",
                task.to_str().unwrap(),
                "--key",
                "owner",
                "--json",
                "--block-time",
                &BLOCK_TIME.to_string(),
                "--quorum",
                "2",
            ])
            .args(terms.iter().flat_map(|(flag, blocks)| [flag.to_string(), blocks.to_string()]))
            .output()
            .unwrap());
        net
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = pogo();
        cmd.args(args).env("POGO_HOME", self.home.path()).env("POGO_PASSWORD", "test").env("POGO_PARAMS", self.params);
        cmd
    }

    fn status(&self) -> serde_json::Value {
        ok(self.cmd(&["status", "--json"]).output().unwrap())
    }

    fn miner(&self, crash: Option<&str>) -> Command {
        let mut cmd =
            self.cmd(&["miner", "--key", "miner", "--poll", "0.1", "--serve", &format!("127.0.0.1:{}", self.port)]);
        if let Some(point) = crash {
            cmd.env("POGO_CRASH_AT", point);
        }
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        cmd
    }

    /// A verifier fetching from the miner's store, what it does and waits for in
    /// `verifier-KEY.log`.
    fn verifier(&self, key: &str, crash: Option<&str>) -> Child {
        self.verifier_with(key, crash, &[])
    }

    fn verifier_with(&self, key: &str, crash: Option<&str>, extra: &[&str]) -> Child {
        let log = std::fs::File::create(self.log(key)).unwrap();
        let peers = format!("http://127.0.0.1:{}", self.port);
        let mut cmd = self.cmd(&["verifier", "--key", key, "--poll", "0.1", "--peers", &peers]);
        cmd.args(extra);
        if let Some(point) = crash {
            cmd.env("POGO_CRASH_AT", point);
        }
        cmd.stdout(log.try_clone().unwrap()).stderr(log).spawn().unwrap()
    }

    /// The task owner, revealing each round's held-out batch, its stderr in `owner.log`.
    fn owner(&self, crash: Option<&str>) -> Child {
        let log = std::fs::File::create(self.home.path().join("owner.log")).unwrap();
        let mut cmd = self.cmd(&["owner", "--key", "owner", "--poll", "0.1"]);
        if let Some(point) = crash {
            cmd.env("POGO_CRASH_AT", point);
        }
        cmd.stdout(Stdio::null()).stderr(log).spawn().unwrap()
    }

    /// The last lines of every role's log, for a failure message.
    fn logs(&self) -> String {
        let mut logs: Vec<_> = std::fs::read_dir(self.home.path()).unwrap().filter_map(Result::ok).collect();
        logs.retain(|e| e.file_name().to_string_lossy().ends_with(".log"));
        logs.sort_by_key(|e| e.file_name());
        let tail = |text: String| {
            text.lines().rev().take(20).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
        };
        logs.iter()
            .map(|e| {
                format!(
                    "--- {}:\n{}",
                    e.file_name().to_string_lossy(),
                    tail(std::fs::read_to_string(e.path()).unwrap_or_default())
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn log(&self, key: &str) -> PathBuf {
        self.home.path().join(format!("verifier-{key}.log"))
    }

    fn miner_phase(&self) -> String {
        let path = self.home.path().join("miner-miner/miner.json");
        std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .map(|v| v["phase"]["phase"].as_str().unwrap_or("").to_string())
            .unwrap_or_default()
    }

    /// Moves the embedded chain on to block `to` at once (a no-op if it is there).
    fn advance_to(&self, to: u64) {
        let mut chain = EmbeddedChain::open(&self.home.path().join("chain.json")).unwrap();
        let now = chain.block_number().unwrap();
        if now < to {
            chain.advance(to - now).unwrap();
        }
    }

    /// Skips the waits a round has once its roles have done their part: the rest of the
    /// reveal window once every commitment is revealed, the rest of the proof window once
    /// every reveal is proven, the rest of the held-out reveal's window once the owner
    /// revealed, the rest of the attestation window once both verifiers sealed their
    /// attestations, and the challenge window once both opened them. The windows themselves
    /// outlast PATIENCE, so no restart can miss them however loaded the machine is.
    fn hurry(&self, status: &serde_json::Value) {
        if status["open_round"].is_null() {
            return;
        }
        let (committed, revealed) = (status["committed"].as_u64(), status["revealed"].as_u64());
        if status["phase"] == "reveal" && committed == revealed {
            self.advance_to(status["reveal_deadline"].as_u64().unwrap() + 2);
        }
        if status["phase"] == "proofs" && status["proven"] == status["revealed"] && revealed > Some(0) {
            self.advance_to(status["proof_deadline"].as_u64().unwrap() + 1);
        }
        if status["phase"] == "held-out reveal" && status["held_out_batch_revealed"] == true {
            self.advance_to(status["held_out_deadline"].as_u64().unwrap() + 1);
        }
        if status["attestations"] == 2 && status["proven"] == status["revealed"] && revealed > Some(0) {
            if status["attestations_opened"] == 2 {
                // No fraud proof is coming for honest candidates: skip the challenge window.
                self.advance_to(status["challenge_deadline"].as_u64().unwrap() + 2);
            } else if status["phase"] == "attestations" {
                // Both sealed: open the reveal window.
                self.advance_to(status["attest_deadline"].as_u64().unwrap() + 1);
            }
        }
    }

    /// Waits for `miner` to finish its round, hurrying the chain along.
    fn finish_round(&self, mut miner: Child) {
        let start = Instant::now();
        loop {
            if let Some(exit) = miner.try_wait().unwrap() {
                assert!(exit.success(), "the miner failed: {:#}", self.status());
                return;
            }
            let status = self.status();
            self.hurry(&status);
            assert!(start.elapsed() < PATIENCE, "the round never closed: {status:#}\n{}", self.logs());
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for v in &mut self.verifiers {
            let _ = v.kill();
            let _ = v.wait();
        }
    }
}

#[test]
fn roles_killed_at_any_phase_resume_without_double_submission() {
    let mut net = Network::with_task(&["owner", "miner", "v1", "v2"]);
    // Verifier v1 aborts right after its first attestation and is restarted; v2 runs
    // throughout; the owner aborts right after its first reveal and is restarted.
    net.verifiers.push(net.verifier("v1", Some("verifier-after-attest")));
    net.verifiers.push(net.verifier("v2", None));
    net.verifiers.push(net.owner(Some("owner-after-reveal")));

    // The miner aborts at each phase boundary in turn, then finishes the round.
    for point in ["miner-after-prepare", "miner-after-commit", "miner-after-reveal", "miner-after-submit"] {
        let status = net.miner(Some(point)).arg("--rounds").arg("1").status().unwrap();
        assert!(!status.success(), "the miner was to abort at {point}");
        if point == "miner-after-reveal" {
            // Revealed, and the miner's store is down until it restarts: a verifier must
            // wait for the blob, not attest negative and have an honest miner slashed.
            let start = Instant::now();
            loop {
                let status = net.status();
                net.hurry(&status);
                assert_eq!(status["attestations"], 0, "a verifier attested while the miner restarted: {status:#}");
                let log = std::fs::read_to_string(net.log("v2")).unwrap();
                if log.contains("; retrying until block") {
                    break;
                }
                assert!(start.elapsed() < PATIENCE, "v2 never tried to fetch the blob:\n{log}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        if point == "miner-after-submit" {
            // v1 attests once the windows before attestations are over (hurried along).
            let start = Instant::now();
            let v1 = loop {
                if let Some(exit) = net.verifiers[0].try_wait().unwrap() {
                    break exit;
                }
                let status = net.status();
                net.hurry(&status);
                assert!(start.elapsed() < PATIENCE, "v1 never attested: {status:#}");
                std::thread::sleep(Duration::from_millis(100));
            };
            assert!(!v1.success(), "v1 aborted after attesting");
            net.verifiers[0] = net.verifier("v1", None);
            let owner = net.verifiers[2].wait().unwrap();
            assert!(!owner.success(), "the owner aborted after revealing");
            net.verifiers[2] = net.owner(None);
        }
    }
    net.finish_round(net.miner(None).arg("--rounds").arg("1").spawn().unwrap());
    let status = net.status();
    assert_eq!(
        (status["rounds"].as_u64(), status["won"].as_u64(), status["candidates"].as_u64()),
        (Some(1), Some(1), Some(1)),
        "one commit, accepted: {status:#}"
    );

    // A real SIGKILL in the middle of the second round.
    let mut miner = net.miner(None).arg("--rounds").arg("2").spawn().unwrap();
    let start = Instant::now();
    while !matches!(net.miner_phase().as_str(), "committed" | "revealed" | "proved") {
        assert!(start.elapsed() < PATIENCE, "the miner never committed");
        std::thread::sleep(Duration::from_millis(20));
    }
    miner.kill().unwrap();
    assert!(!miner.wait().unwrap().success());
    net.finish_round(net.miner(None).arg("--rounds").arg("2").spawn().unwrap());
    let status = net.status();
    assert_eq!(
        (status["rounds"].as_u64(), status["won"].as_u64(), status["without_winner"].as_u64()),
        (Some(2), Some(2), Some(0)),
        "{status:#}"
    );
}

/// Stores keep the last K accepted updates (here 1) and drop the rest as rounds finish;
/// a verifier that joins after three rounds, with only the pruned miner as its peer, cannot
/// replay from genesis (the first updates are gone) and catches up from the miner's
/// checkpoint of the current model, checked against the on-chain root, then attests the
/// fourth round with the others.
#[test]
fn pruned_stores_keep_k_updates_and_a_late_verifier_catches_up_from_a_checkpoint() {
    // The digits task with held-out batches of 64 records: four of them, one per round.
    let dir = tempfile::tempdir().unwrap();
    let mut spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root().join("tasks/digits.json")).unwrap()).unwrap();
    spec["eval_batch_size"] = 64.into();
    spec["data"]["path"] = root().join("node/data/digits.bin").to_str().unwrap().into();
    let task = dir.path().join("digits-64.json");
    std::fs::write(&task, serde_json::to_vec(&spec).unwrap()).unwrap();
    let mut net = Network::with_task_file(&["owner", "miner", "v1", "v2", "late"], &task);
    let keep = ["--keep-updates", "1"];
    net.verifiers.push(net.verifier_with("v1", None, &keep));
    net.verifiers.push(net.verifier_with("v2", None, &keep));
    net.verifiers.push(net.owner(None));
    let mut roots = vec![net.status()["root"].as_str().unwrap().to_string()];
    for rounds in 1..=3u64 {
        let miner = net.miner(None).args(["--rounds", &rounds.to_string()]).args(keep).spawn().unwrap();
        if rounds == 3 {
            // The late verifier stakes while round 3 is open: it may attest only from round 4.
            let start = Instant::now();
            while net.status()["open_round"].as_u64() != Some(2) {
                assert!(start.elapsed() < PATIENCE, "round 3 never opened");
                std::thread::sleep(Duration::from_millis(100));
            }
            net.verifiers.push(net.verifier("late", None));
        }
        net.finish_round(miner);
        let status = net.status();
        assert_eq!(status["won"].as_u64(), Some(rounds), "{status:#}");
        roots.push(status["root"].as_str().unwrap().to_string());
    }
    // The miner's store: the current model and the one before it, the update between them.
    let store = net.home.path().join("miner-miner/store");
    let names = |dir: &str| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(store.join(dir))
            .map(|d| d.filter_map(Result::ok).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        names.retain(|n| !n.starts_with('.'));
        names.sort();
        names
    };
    let hex = |root: &str| format!("{:0>64}", root.trim_start_matches("0x"));
    let mut kept: Vec<String> = roots[2..].iter().map(|r| format!("{}.safetensors", hex(r))).collect();
    kept.sort();
    assert_eq!(names("models"), kept, "models kept after three rounds with K = 1 (roots {roots:?})");
    assert_eq!(names("blobs").len(), 1, "one update kept: {:?}", names("blobs"));
    for tree in names("trees") {
        assert!(kept.contains(&tree.replace(".tree", ".safetensors")), "a tree of a dropped model stays: {tree}");
    }
    // v2 leaves; the late verifier, its store empty, takes its place.
    let mut v2 = net.verifiers.remove(1);
    v2.kill().unwrap();
    v2.wait().unwrap();
    net.finish_round(net.miner(None).args(["--rounds", "4"]).spawn().unwrap());
    let status = net.status();
    assert_eq!(status["won"].as_u64(), Some(4), "{status:#}");
    let log = std::fs::read_to_string(net.log("late")).unwrap();
    assert!(log.contains("attesting from the next round"), "round 3 was not skipped:\n{log}");
    assert!(log.contains("round 3: attested"), "the late verifier did not attest round 4:\n{log}");
    assert!(log.contains("#0 positive"), "the late verifier did not judge the honest candidate positive:\n{log}");
    let late_models = std::fs::read_dir(net.home.path().join("verifier-late/store/models")).unwrap().count();
    assert!(late_models >= 2, "the late verifier holds the checkpoint it caught up from and the new model");
}

/// A task registered with a verifier that just `STOP`s (it would accept every proof): the
/// miner and the verifier refuse it, naming the mismatch, instead of joining its rounds.
#[test]
fn nodes_refuse_a_task_whose_verifier_is_not_the_one_their_keys_give() {
    use pogo_node::contract::Rounds;
    use pogo_node::deploy::Deployment;

    let net =
        Network { home: tempfile::tempdir().unwrap(), port: free_port(), verifiers: Vec::new(), params: params() };
    for key in ["owner", "v1"] {
        ok(net.cmd(&["keys", "new", key, "--json"]).output().unwrap());
    }
    let task = root().join("tasks/digits.json");
    ok(net.cmd(&["task", "create", task.to_str().unwrap(), "--key", "owner", "--json"]).output().unwrap());
    // The same task again, but its verifier is `00` (STOP): every call to it succeeds.
    let deployment_path = net.home.path().join("deployment.json");
    let mut deployment = Deployment::load(&deployment_path).unwrap();
    let owner = pogo_node::keystore::Keystore::new(&net.home.path().join("keystore"), "test").open("owner").unwrap();
    let mut chain = EmbeddedChain::open(&net.home.path().join("chain.json")).unwrap();
    let stop_initcode = hex::decode("6001600c60003960016000f300").unwrap();
    let stop = chain.send(&owner, None, stop_initcode, Default::default()).unwrap().created.unwrap();
    assert_eq!(chain.code(stop).unwrap(), vec![0u8], "a STOP contract");
    let rounds = Rounds::at(&mut chain, deployment.contract).unwrap();
    let mut params = rounds.task(&mut chain, deployment.task).unwrap().params;
    params.verifier = stop;
    let (forged, _) = rounds.create_task(&mut chain, &owner, params, Default::default()).unwrap();
    deployment.task = forged;
    deployment.verifier = stop;
    let forged_path = net.home.path().join("forged.json");
    deployment.save(&forged_path).unwrap();
    for role in [&["verifier", "--key", "v1"][..], &["miner", "--key", "owner", "--serve", "127.0.0.1:0"][..]] {
        let mut child = net
            .cmd(role)
            .arg("--deployment")
            .arg(&forged_path)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let start = Instant::now();
        while child.try_wait().unwrap().is_none() {
            if start.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                panic!("{role:?} took part in a task whose verifier accepts every proof");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains("is not the verifier of d6-s2"), "{role:?}: {err}");
    }
}

/// The copier and recycled-stake attacks against the round contract through a [`Chain`]
/// adapter, so that they run on the embedded chain and over JSON-RPC against Anvil alike.
/// These attacks never reach a proof, so the task's verifier is a placeholder with code.
mod attacks {
    use alloy::primitives::{Address, B256, U256};
    use pogo_node::chain::Chain;
    use pogo_node::contract::Rounds;
    use pogo_node::keystore::{Keystore, Wallet};
    use pogo_verifier::heldout::EvalTree;
    use pogo_verifier::rounds::{commitment, PogoRounds, TaskParams};

    const ETHER: u128 = 1_000_000_000_000_000_000;

    pub struct World {
        pub rounds: Rounds,
        pub task: U256,
        pub owner: Wallet,
        pub miner: Wallet,
        pub copier: Wallet,
        pub v1: Wallet,
        pub v2: Wallet,
        /// The owner's held-out batches and their tree.
        pub held_out: (Vec<Vec<u8>>, EvalTree),
    }

    /// Wallets, one of which the chain adapter signs for.
    pub fn wallets(dir: &std::path::Path) -> Vec<Wallet> {
        let keys = Keystore::new(dir, "test");
        ["owner", "miner", "copier", "v1", "v2"].iter().map(|n| keys.create(n).unwrap()).collect()
    }

    fn refused<T>(result: Result<T, pogo_node::contract::ContractError>) -> String {
        match result {
            Err(e) => e.contract_error().unwrap_or_else(|| panic!("not a contract error: {e}")),
            Ok(_) => panic!("the contract accepted what it must refuse"),
        }
    }

    /// Deploys the round contract and a task with short windows; v1 joins.
    pub fn world(chain: &mut dyn Chain, wallets: &[Wallet]) -> World {
        for w in wallets {
            chain.dev_fund(w.address(), U256::from(100 * ETHER)).unwrap();
        }
        let [owner, miner, copier, v1, v2] = <[Wallet; 5]>::try_from(wallets.to_vec()).unwrap();
        let placeholder = hex::decode("6001600c60003960016000f300").unwrap();
        let verifier = chain.send(&owner, None, placeholder, U256::ZERO).unwrap().created.unwrap();
        let (rounds, _) = Rounds::deploy(chain, &owner).unwrap();
        let batches: Vec<Vec<u8>> = (0..4u8).map(|i| vec![i; 130]).collect();
        let held_out = (batches.clone(), EvalTree::new(&batches).unwrap());
        let params = TaskParams {
            genesisRoot: U256::from(1),
            nb: 2,
            depth: 1,
            samples: 2,
            verifier,
            verifierGas: 2_000_000,
            commitWindow: 5,
            revealWindow: 5,
            proofWindow: 20,
            attestWindow: 40,
            challengeWindow: 10,
            maxCandidates: 4,
            verifierFeeBps: 1000,
            fraudSlashBps: 5000,
            margin: 1,
            quorum: ETHER,
            minerBond: ETHER,
            minVerifierStake: ETHER,
            reward: ETHER / 2,
            dataset: B256::repeat_byte(0xda),
            spec: B256::repeat_byte(0x5c),
            evalRoot: held_out.1.root(),
            evalBatches: 4,
            committee: 0,
        };
        let (task, _) = rounds.create_task(chain, &owner, params, U256::from(10 * ETHER)).unwrap();
        rounds.send(chain, &v1, PogoRounds::joinCall { task }, U256::from(ETHER)).unwrap();
        let now = chain.block_number().unwrap();
        chain.produce_blocks_until(now).unwrap();
        World { rounds, task, owner, miner, copier, v1, v2, held_out }
    }

    fn commit(
        chain: &mut dyn Chain,
        w: &World,
        who: &Wallet,
        hash: B256,
    ) -> Result<u16, pogo_node::contract::ContractError> {
        let before = w.rounds.task(chain, w.task)?;
        let round = if before.open { before.rounds - 1 } else { before.rounds };
        let call = PogoRounds::commitCall { task: w.task, round, commitment: hash };
        w.rounds.send(chain, who, call, U256::from(ETHER))?;
        Ok(w.rounds.round(chain, w.task, round)?.commits - 1)
    }

    fn reveal(
        chain: &mut dyn Chain,
        w: &World,
        who: &Wallet,
        index: u16,
        salt: B256,
    ) -> Result<(), pogo_node::contract::ContractError> {
        let call = PogoRounds::revealCall {
            task: w.task,
            index,
            newRoot: U256::from(2),
            updateRoot: U256::from(3),
            blobHash: B256::repeat_byte(4),
            salt,
        };
        w.rounds.send(chain, who, call, U256::ZERO).map(|_| ())
    }

    fn honest_hash(w: &World, who: Address, round: u64, salt: B256) -> B256 {
        commitment(w.rounds.address, w.task, round, who, U256::from(2), U256::from(3), B256::repeat_byte(4), salt)
    }

    /// A watcher copies the honest commitment: it can never reveal it, and once the roots
    /// are public the commit window is closed.
    pub fn copier(chain: &mut dyn Chain, w: &World) {
        let salt = B256::repeat_byte(0x5a);
        let honest = commit(chain, w, &w.miner, honest_hash(w, w.miner.address(), 0, salt)).unwrap();
        let copy = commit(chain, w, &w.copier, honest_hash(w, w.miner.address(), 0, salt)).unwrap();
        let r = w.rounds.round(chain, w.task, 0).unwrap();
        chain.produce_blocks_until(r.commitEnd).unwrap();
        reveal(chain, w, &w.miner, honest, salt).unwrap();
        assert_eq!(refused(reveal(chain, w, &w.copier, copy, salt)), "WrongReveal");
        let late = honest_hash(w, w.copier.address(), 0, salt);
        assert_eq!(refused(commit(chain, w, &w.copier, late)), "TooLate");
    }

    /// One stake cannot vote twice: stake joined after the round opened has no weight, and
    /// a leaving stake is locked.
    pub fn recycled_stake(chain: &mut dyn Chain, w: &World) {
        let salt = B256::repeat_byte(0x5b);
        let index = commit(chain, w, &w.miner, honest_hash(w, w.miner.address(), 0, salt)).unwrap();
        let r = w.rounds.round(chain, w.task, 0).unwrap();
        chain.produce_blocks_until(r.commitEnd).unwrap();
        reveal(chain, w, &w.miner, index, salt).unwrap();
        chain.produce_blocks_until(r.revealEnd + 2).unwrap();
        // The placeholder verifier accepts any proof; a proven candidate is what makes the
        // held-out batch due.
        let proof = PogoRounds::submitProofCall { task: w.task, index, proof: vec![0u8; 32].into() };
        w.rounds.send(chain, &w.miner, proof, U256::ZERO).unwrap();
        chain.produce_blocks_until(r.proofEnd).unwrap();
        // The owner reveals the drawn held-out batch; verifiers read it back from the
        // chain's logs (the adapter under test), checked against the recorded leaf.
        let (set, batch) = w.rounds.drawn_eval_batch(chain, w.task).unwrap();
        assert_eq!(set, 0);
        let data = w.held_out.0[batch as usize].clone();
        let path = w.held_out.1.path(batch);
        let call = PogoRounds::revealEvalDataCall { task: w.task, data: data.clone().into(), path };
        w.rounds.send(chain, &w.owner, call, U256::ZERO).unwrap();
        let r = w.rounds.round(chain, w.task, 0).unwrap();
        assert_eq!(w.rounds.revealed_eval_batch(chain, w.task, 0, &r).unwrap(), Some(data));
        chain.produce_blocks_until(r.evalEnd).unwrap();
        let attest = |chain: &mut dyn Chain, who: &Wallet| {
            let call = PogoRounds::attestCall { task: w.task, commitment: B256::repeat_byte(1), seats: vec![] };
            w.rounds.send(chain, who, call, U256::ZERO).map(|_| ())
        };
        attest(chain, &w.v1).unwrap();
        w.rounds.send(chain, &w.v1, PogoRounds::leaveCall { task: w.task }, U256::ZERO).unwrap();
        assert_eq!(refused(w.rounds.send(chain, &w.v1, PogoRounds::withdrawCall {}, U256::ZERO)), "NothingToWithdraw");
        w.rounds.send(chain, &w.v2, PogoRounds::joinCall { task: w.task }, U256::from(ETHER)).unwrap();
        assert_eq!(refused(attest(chain, &w.v2)), "StakeTooNew");
    }
}

#[test]
fn copier_and_recycled_stake_are_refused_on_the_embedded_chain() {
    let dir = tempfile::tempdir().unwrap();
    let wallets = attacks::wallets(&dir.path().join("keys"));
    for scenario in [attacks::copier as fn(&mut dyn Chain, &attacks::World), attacks::recycled_stake] {
        let mut chain = EmbeddedChain::open_with(&dir.path().join(format!("chain-{}.json", rand_name())), 0.0).unwrap();
        let world = attacks::world(&mut chain, &wallets);
        scenario(&mut chain, &world);
    }
}

#[test]
fn copier_and_recycled_stake_are_refused_against_anvil_over_json_rpc() {
    let dir = tempfile::tempdir().unwrap();
    let wallets = attacks::wallets(&dir.path().join("keys"));
    for scenario in [attacks::copier as fn(&mut dyn Chain, &attacks::World), attacks::recycled_stake] {
        let (_anvil, url) = anvil();
        let mut chain = pogo_node::chain::open(&url, &wallets).unwrap();
        let world = attacks::world(chain.as_mut(), &wallets);
        scenario(chain.as_mut(), &world);
    }
}

fn rand_name() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// INSECURE development keys on a chain that is not a development chain (Anvil posing as
/// Sepolia, chain id 11155111) are refused, naming the way out, unless `--insecure`.
#[test]
fn insecure_keys_are_refused_off_development_chains_unless_said_out_loud() {
    let (_node, url) = anvil_with(&["--chain-id", "11155111"]);
    let net =
        Network { home: tempfile::tempdir().unwrap(), port: free_port(), verifiers: Vec::new(), params: params() };
    ok(net.cmd(&["keys", "new", "owner", "--json"]).output().unwrap());
    let owner = pogo_node::keystore::Keystore::new(&net.home.path().join("keystore"), "test").open("owner").unwrap();
    let mut chain = pogo_node::chain::open(&url, std::slice::from_ref(&owner)).unwrap();
    assert!(!chain.is_development().unwrap());
    chain.dev_fund(owner.address(), alloy::primitives::U256::from(10u128.pow(21))).unwrap();
    let task = root().join("tasks/digits.json");
    let create = |extra: &[&str]| {
        net.cmd(&["task", "create", task.to_str().unwrap(), "--key", "owner", "--json", "--chain", &url])
            .args(extra)
            .output()
            .unwrap()
    };
    let out = create(&[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("INSECURE") && err.contains("--insecure"), "{err}");
    assert_eq!(err.matches("INSECURE").count(), 1, "said once: {err}");
    let made = ok(create(&["--insecure"]));
    assert!(made["task"].is_string() || made["task"].is_number(), "{made:#}");
}

/// A margin under the noise of the task's own evaluation (here 0: equal losses would pass)
/// is refused at registration, naming the measured noise.
#[test]
fn a_margin_below_the_evaluation_noise_is_refused() {
    let net =
        Network { home: tempfile::tempdir().unwrap(), port: free_port(), verifiers: Vec::new(), params: params() };
    ok(net.cmd(&["keys", "new", "owner", "--json"]).output().unwrap());
    let mut task: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root().join("tasks/digits.json")).unwrap()).unwrap();
    task["margin"] = serde_json::json!(0.0);
    task["data"]["path"] = serde_json::json!(root().join("node/data/digits.bin").display().to_string());
    let file = net.home.path().join("zero-margin.json");
    std::fs::write(&file, serde_json::to_vec(&task).unwrap()).unwrap();
    let out = net.cmd(&["task", "create", file.to_str().unwrap(), "--key", "owner"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("below the noise of its evaluation"), "{err}");
    assert!(err.contains("set \"margin\" to at least"), "{err}");
}

/// The verifier shipped in the binary for the demo's keys (D = 6, S = 2, INSECURE seed 0) is
/// byte for byte the one `pogo export-verifier` makes from them; `POGO_BLESS=1` rewrites it.
#[test]
fn the_shipped_demo_verifier_is_the_one_its_keys_give() {
    let made = params().join("d6-s2");
    let shipped = root().join("verifier/contracts/build/verifiers/d6-s2-dev0");
    for file in ["Verifier.sol", "verifier.bin", "verifier.json"] {
        let fresh = std::fs::read(made.join(file)).unwrap();
        if std::env::var("POGO_BLESS").is_ok() {
            std::fs::write(shipped.join(file), &fresh).unwrap();
        }
        assert!(std::fs::read(shipped.join(file)).unwrap() == fresh, "{file} is stale: rerun with POGO_BLESS=1");
    }
}

/// The fraud-proof issue's scenario, every role a separate `pogo` process: a miner alters
/// one block (the last) of a model of 10,045 blocks. The sampled proof (S = 2) passes; a
/// lazy verifier attests positive without rebuilding; the honest verifier's rebuild finds
/// the block, and its fraud proof lands in the challenge window. `pogo challenge` finds
/// the same block from outside and refuses to file before the window. The miner loses its
/// bond, the lazy verifier half its stake, and the challenger is paid half the bond.
#[test]
fn one_wrong_block_in_ten_thousand_is_found_proven_on_chain_and_paid_for() {
    let net =
        Network { home: tempfile::tempdir().unwrap(), port: free_port(), verifiers: Vec::new(), params: params_deep() };
    let mut net = net;
    for key in ["owner", "miner", "lazy", "honest", "outsider"] {
        ok(net.cmd(&["keys", "new", key, "--json"]).output().unwrap());
    }
    // 64·h + h + 10·h + 10 weights with h = 15,000: 1,125,010 weights, 10,045 blocks, D = 14.
    let task = net.home.path().join("wide.json");
    let data = root().join("node/data/digits.bin");
    let spec = serde_json::json!({
        "name": "wide digits",
        "model": { "kind": "mlp", "hidden": [15000] },
        "data": { "kind": "digits", "path": data, "validation": 297 },
        "optimizer": { "lr": 0.001 },
        "steps_per_round": 2,
        "batch_size": 32,
        "eval_batch_size": 128,
        "margin": 0.05,
        "seed": 3
    });
    std::fs::write(&task, serde_json::to_vec(&spec).unwrap()).unwrap();
    let created = ok(net
        .cmd(&["task", "create", task.to_str().unwrap(), "--key", "owner", "--json", "--block-time", "0.2"])
        .args(["--quorum", "2", "--samples", "2", "--commit-window", "10", "--reveal-window", "3000"])
        .args(["--proof-window", "3000", "--attest-window", "6100", "--challenge-window", "2000"])
        .output()
        .unwrap());
    assert_eq!(created["depth"], 14, "{created:#}");
    net.verifiers.push(net.verifier_with("lazy", None, &["--lazy"]));
    net.verifiers.push(net.verifier("honest", None));
    net.verifiers.push(net.owner(None));
    let miner_log = net.home.path().join("miner.log");
    let mut miner = net.miner(None);
    miner.args(["--rounds", "1", "--cheat", "mismatch"]).stdout(std::fs::File::create(&miner_log).unwrap());
    let mut miner = miner.spawn().unwrap();
    let peers = format!("http://127.0.0.1:{}", net.port);
    let challenge = |extra: &[&str]| {
        net.cmd(&["challenge", "--json", "--key", "outsider", "--peers", &peers]).args(extra).output().unwrap()
    };
    let start = Instant::now();
    let mut challenged = false;
    loop {
        if let Some(exit) = miner.try_wait().unwrap() {
            assert!(exit.success(), "the miner failed: {:#}", net.status());
            break;
        }
        let status = net.status();
        if !challenged && status["proven"] == 1 {
            // The proof is in: anyone with the old model finds the block, before the window.
            let found = ok(challenge(&["--check-only"]));
            assert_eq!(found["provable"], 1, "{found:#}");
            let finding = found["findings"][0].as_str().unwrap();
            assert!(finding.contains("block 10044 is wrong"), "{finding}");
            let out = challenge(&[]);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success() && err.contains("fraud proofs open after block"), "{err}");
            challenged = true;
        }
        // Both attestations open before the fraud proof is filed: keep the challenge
        // window open until it landed.
        let landed = std::fs::read_to_string(net.log("honest")).unwrap_or_default().contains("fraud proof landed");
        if landed || status["phase"] != "attestation reveals and fraud proofs" {
            net.hurry(&status);
        }
        assert!(start.elapsed() < PATIENCE, "the round never closed: {status:#}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(challenged, "the challenge was tried while the proof was in");
    let log = std::fs::read_to_string(&miner_log).unwrap();
    assert!(log.contains("proof verified on chain"), "the sampled proof passed:\n{log}");
    assert!(log.contains("a fraud proof showed a block wrong: bond slashed"), "{log}");
    // The honest verifier proved it and is paid the bounty (half the 1 ETH bond): it
    // was no 2/3 majority against the candidate, so only its proof rejected it.
    let start = Instant::now();
    let honest = loop {
        let log = std::fs::read_to_string(net.log("honest")).unwrap();
        if log.contains("withdrew") {
            break log;
        }
        assert!(start.elapsed() < PATIENCE, "the honest verifier was never paid:\n{log}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(honest.contains("a fraud proof follows after block"), "{honest}");
    assert!(honest.contains("fraud proof landed against candidate 0, block 10044"), "{honest}");
    assert!(honest.contains("withdrew 500000000000000000 wei"), "{honest}");
    let stake = |key: &str| ok(net.cmd(&["status", "--json", "--key", key]).output().unwrap())["stake_wei"].clone();
    assert_eq!(stake("lazy"), "500000000000000000", "the lazy verifier lost half its stake");
    assert_eq!(stake("honest"), "1000000000000000000");
}

/// A chain adapter that drops the first transaction carrying each of the given selectors,
/// as a chain node that restarts or times out would: nothing reaches the chain, and the
/// sender hears `Unavailable`.
struct Flaky {
    inner: Box<dyn Chain>,
    drop_once: Vec<[u8; 4]>,
    dropped: std::sync::Arc<std::sync::Mutex<Vec<[u8; 4]>>>,
}

impl Chain for Flaky {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn block_number(&mut self) -> Result<u64, pogo_node::chain::ChainError> {
        self.inner.block_number()
    }
    fn send(
        &mut self,
        from: &pogo_node::keystore::Wallet,
        to: Option<alloy::primitives::Address>,
        data: Vec<u8>,
        value: alloy::primitives::U256,
    ) -> Result<pogo_node::chain::TxReceipt, pogo_node::chain::ChainError> {
        if let Some(pos) = self.drop_once.iter().position(|s| data.starts_with(s)) {
            let selector = self.drop_once.remove(pos);
            self.dropped.lock().unwrap().push(selector);
            return Err(pogo_node::chain::ChainError::Unavailable {
                endpoint: "flaky".into(),
                why: "connection reset".into(),
            });
        }
        self.inner.send(from, to, data, value)
    }
    fn call(&mut self, to: alloy::primitives::Address, data: Vec<u8>) -> Result<Vec<u8>, pogo_node::chain::ChainError> {
        self.inner.call(to, data)
    }
    fn balance(
        &mut self,
        who: alloy::primitives::Address,
    ) -> Result<alloy::primitives::U256, pogo_node::chain::ChainError> {
        self.inner.balance(who)
    }
    fn code(&mut self, at: alloy::primitives::Address) -> Result<Vec<u8>, pogo_node::chain::ChainError> {
        self.inner.code(at)
    }
    fn logs(
        &mut self,
        address: alloy::primitives::Address,
        from: u64,
        to: u64,
    ) -> Result<Vec<alloy::primitives::Log>, pogo_node::chain::ChainError> {
        self.inner.logs(address, from, to)
    }
    fn produce_blocks_until(&mut self, block: u64) -> Result<bool, pogo_node::chain::ChainError> {
        self.inner.produce_blocks_until(block)
    }
    fn is_development(&mut self) -> Result<bool, pogo_node::chain::ChainError> {
        self.inner.is_development()
    }
}

/// A miner whose chain drops its reveal and then its proof (a node restarting, a timeout)
/// is back well within both windows: it must send them again, not give the round up and
/// lose its bond for "not revealed" or "not proven".
#[test]
fn a_miner_whose_chain_drops_its_reveal_and_proof_retries_them_in_time() {
    use alloy::sol_types::SolCall;
    use pogo_node::contract::Rounds;
    use pogo_node::deploy::create_task;
    use pogo_node::roles::miner::{Cheat, Miner};
    use pogo_node::roles::{Node, Step};
    use pogo_verifier::rounds::PogoRounds;

    let dir = tempfile::tempdir().unwrap();
    let keys = pogo_node::keystore::Keystore::new(&dir.path().join("keystore"), "test");
    let (owner, miner) = (keys.create("owner").unwrap(), keys.create("miner").unwrap());
    let chain_path = dir.path().join("chain.json");
    let mut chain = EmbeddedChain::open_with(&chain_path, 0.0).unwrap();
    let spec = chain_path.display().to_string();
    let terms = test_terms();
    let task_file = root().join("tasks/digits.json");
    let (deployment, _) = create_task(&mut chain, &spec, &owner, None, &task_file, None, &terms, params()).unwrap();
    let dropped = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let flaky = Flaky {
        inner: Box::new(EmbeddedChain::open(&chain_path).unwrap()),
        drop_once: vec![PogoRounds::revealCall::SELECTOR, PogoRounds::submitProofCall::SELECTOR],
        dropped: dropped.clone(),
    };
    let mut flaky: Box<dyn Chain> = Box::new(flaky);
    let rounds = Rounds::at(flaky.as_mut(), deployment.contract).unwrap();
    let store = pogo_node::store::Store::new(&dir.path().join("miner/store"));
    let mut node = Node::new(flaky, rounds, deployment.task, &deployment.task_file, store, Vec::new()).unwrap();
    let mut role = Miner::new(miner, &dir.path().join("miner"), params(), Cheat::None, 1).unwrap();
    // Drive the miner alone until its proof is in or it has given the round up; each wait
    // gets the block it asks for (this chain is manual).
    for _ in 0..400 {
        let c = rounds.candidate(&mut chain, deployment.task, 0, 0).ok();
        if c.as_ref().is_some_and(|c| c.proven) {
            break;
        }
        match role.step(&mut node).unwrap() {
            Step::Wait { until, .. } => {
                let now = chain.block_number().unwrap();
                chain.produce_blocks_until(until.unwrap_or(now)).unwrap();
            }
            Step::Acted(event) => assert!(!event.what.contains("refused"), "{}", event.what),
            Step::Done => break,
        }
    }
    assert_eq!(dropped.lock().unwrap().len(), 2, "both sends were dropped once");
    let c = rounds.candidate(&mut chain, deployment.task, 0, 0).unwrap();
    assert!(c.revealed && c.proven, "the miner gave up a round it could still finish: {c:?}");
}

/// Committees (issue 22) through the node's roles: on a task with a committee, each
/// verifier asks the chain for the seats it won and only seat holders attest, weighing
/// their seats. 16 seats drawn among three equal stakes seat nobody with odds (2/3)^48
/// (about 4e-9), so a quorum of one seat always decides.
#[test]
fn a_committee_round_is_judged_by_its_seat_holders_only() {
    let dir = tempfile::tempdir().unwrap();
    let summary = ok(pogo()
        .args(["demo", "--json", "--rounds", "1", "--no-cheats", "--committee", "16", "--committee-quorum", "1"])
        .arg("--dir")
        .arg(dir.path().join("demo"))
        .output()
        .unwrap());
    assert_eq!(summary["committee"], 16);
    assert_eq!(summary["accepted"], 1, "{summary:#}");
    let attesters = summary["rounds"][0]["attesters"].as_object().unwrap();
    let seats: u64 = attesters.values().map(|w| w.as_str().unwrap().parse::<u64>().unwrap()).sum();
    assert!(!attesters.is_empty() && (1..=48).contains(&seats), "weights are seats, not wei: {attesters:?}");
    // A verifier sent an attestation exactly when the chain counted its seats.
    let events = summary["events"].as_array().unwrap();
    for v in ["verifier-1", "verifier-2", "verifier-3"] {
        let attested = events.iter().any(|e| {
            e[1]["role"].as_str().unwrap().ends_with(v) && e[1]["what"].as_str().unwrap().starts_with("attested")
        });
        assert_eq!(attested, attesters.contains_key(v), "{v}: {attesters:?}");
    }
}

/// A verifier outside a round's committee still rebuilds every candidate (issue 22): a
/// miner whose new model is wrong in one block is caught by the watcher even when the
/// committee's only member is lazy. One seat (C = 1) drawn between a 1,000-ether lazy
/// stake and a 1-ether honest one goes to the honest verifier with odds 1/1001.
#[test]
fn a_verifier_outside_the_committee_still_rebuilds_and_proves_a_wrong_block() {
    use pogo_node::contract::Rounds;
    use pogo_node::deploy::{create_task, wei, TaskTerms};
    use pogo_node::roles::finalizer::Finalizer;
    use pogo_node::roles::miner::{Cheat, Miner};
    use pogo_node::roles::owner::Owner;
    use pogo_node::roles::verifier::Verifier;
    use pogo_node::roles::{Node, Step};

    let dir = tempfile::tempdir().unwrap();
    let keys = pogo_node::keystore::Keystore::new(&dir.path().join("keystore"), "test");
    let names = ["owner", "miner", "lazy", "watcher"];
    let w: Vec<_> = names.iter().map(|n| keys.create(n).unwrap()).collect();
    let chain_path = dir.path().join("chain.json");
    let mut chain = EmbeddedChain::open_with(&chain_path, 0.0).unwrap();
    for wallet in &w {
        chain.dev_fund(wallet.address(), wei(10_000.0)).unwrap();
    }
    let spec = chain_path.display().to_string();
    let terms = TaskTerms { committee: 1, committee_quorum: Some(1), ..test_terms() };
    let task_file = root().join("tasks/digits.json");
    let (deployment, set) = create_task(&mut chain, &spec, &w[0], None, &task_file, None, &terms, params()).unwrap();
    let store = |name: &str| pogo_node::store::Store::new(&dir.path().join(name).join("store"));
    let server = store("miner").serve("127.0.0.1:0").unwrap();
    let node = |name: &str| {
        let mut c: Box<dyn Chain> = Box::new(EmbeddedChain::open(&chain_path).unwrap());
        let rounds = Rounds::at(c.as_mut(), deployment.contract).unwrap();
        Node::new(c, rounds, deployment.task, &deployment.task_file, store(name), vec![server.url.clone()]).unwrap()
    };
    let mut nodes: Vec<Node> = names.iter().map(|n| node(n)).collect();
    let mut owner = Owner::created(w[0].clone(), &dir.path().join("owner"), set).unwrap();
    let mut miner = Miner::new(w[1].clone(), &dir.path().join("miner"), params(), Cheat::Mismatch, 1).unwrap();
    let mut lazy = Verifier::new(w[2].clone(), &dir.path().join("lazy"), wei(1000.0)).unwrap().lazy();
    let mut watcher = Verifier::new(w[3].clone(), &dir.path().join("watcher"), wei(1.0)).unwrap();
    let mut finalizer = Finalizer::new(w[0].clone());
    let rounds = Rounds::at(&mut chain, deployment.contract).unwrap();
    let mut said = Vec::new();
    // Both verifiers stake first, then the miner's round opens.
    for _ in 0..2 {
        for (v, n) in [(&mut lazy, 2), (&mut watcher, 3)] {
            if let Step::Acted(e) = v.step(&mut nodes[n]).unwrap() {
                said.push(e.what);
            }
        }
    }
    let next = chain.block_number().unwrap() + 1;
    chain.produce_blocks_until(next).unwrap();
    for _ in 0..600 {
        let task = rounds.task(&mut chain, deployment.task).unwrap();
        if task.rounds == 1 && !task.open {
            break;
        }
        let mut steps = vec![miner.step(&mut nodes[1]).unwrap(), owner.step(&mut nodes[0]).unwrap()];
        steps.push(lazy.step(&mut nodes[2]).unwrap());
        steps.push(watcher.step(&mut nodes[3]).unwrap());
        steps.push(finalizer.step(&mut nodes[0]).unwrap());
        let mut until = None::<u64>;
        let mut acted = false;
        for step in steps {
            match step {
                Step::Acted(e) => {
                    said.push(format!("{}: {}", e.role, e.what));
                    acted = true;
                }
                Step::Wait { until: Some(b), .. } => until = Some(until.map_or(b, |u: u64| u.min(b))),
                _ => {}
            }
        }
        if !acted {
            let now = chain.block_number().unwrap();
            chain.produce_blocks_until(until.unwrap_or(now + 1).max(now + 1)).unwrap();
        }
    }
    let c = rounds.candidate(&mut chain, deployment.task, 0, 0).unwrap();
    let round = rounds.round(&mut chain, deployment.task, 0).unwrap();
    assert!(round.finalized, "the round closed: {said:#?}");
    // The seat went to the large stake; the watcher sent no attestation.
    let mut weight = |who| rounds.attestation(&mut chain, deployment.task, 0, who).unwrap().stake;
    assert_eq!((weight(w[2].address()), weight(w[3].address())), (1, 0), "{said:#?}");
    assert!(watcher.state.watched.contains(&0), "the watcher rebuilt round 0: {said:#?}");
    if c.proven {
        // The sampled proof missed the wrong block: the lazy member attested positive, and
        // the watcher, with no seat, proved the block wrong on chain.
        assert!(c.fraud, "the watcher's fraud proof landed: {said:#?}");
        assert_eq!(c.challenger, w[3].address(), "{said:#?}");
        assert_eq!(c.outcome, pogo_verifier::rounds::outcome::SLASHED);
    } else {
        // Or the proof sampled the wrong block, and no proof could be made.
        assert_eq!(c.outcome, pogo_verifier::rounds::outcome::SLASHED);
    }
    drop(server);
}

/// Task terms for the in-process role tests: short windows, a quorum of one stake.
fn test_terms() -> pogo_node::deploy::TaskTerms {
    pogo_node::deploy::TaskTerms {
        samples: 2,
        depth: None,
        commit_window: 5,
        reveal_window: 50,
        proof_window: 50,
        attest_window: 100,
        challenge_window: 20,
        fraud_slash: 0.5,
        max_candidates: 16,
        verifier_fee: 0.1,
        quorum: 1.0,
        committee: 0,
        committee_quorum: None,
        bond: 1.0,
        stake: 1.0,
        reward: 0.5,
        pool: 10.0,
        verifier_gas: 1_500_000,
        dev_seed: None,
        insecure: false,
    }
}
