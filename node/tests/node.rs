//! The node end to end: `pogo demo` on the embedded chain (honest rounds accepted, both
//! cheaters slashed), the same contract bytecode against a real Anvil node over JSON-RPC,
//! and restart safety: roles killed (abort at each phase boundary, and a real SIGKILL)
//! and restarted never double-submit and finish their rounds.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use pogo_node::chain::EmbeddedChain;

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
fn params() -> &'static Path {
    static PARAMS: OnceLock<PathBuf> = OnceLock::new();
    PARAMS.get_or_init(|| {
        let dir = root().join("target/test-fixtures/node-params");
        let steps = [
            ("manifest.json", ["setup", "--depth", "6", "--samples", "2"]),
            ("verifier.json", ["export-verifier", "--depth", "6", "--samples", "2"]),
        ];
        for (made, args) in steps {
            if dir.join("d6-s2").join(made).exists() {
                continue;
            }
            let out = pogo().args(args).arg("--params-dir").arg(&dir).output().unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        }
        dir
    })
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
fn demo_accepts_honest_rounds_and_slashes_both_cheaters() {
    let dir = tempfile::tempdir().unwrap();
    let demo = dir.path().join("demo");
    let summary = ok(pogo()
        .args(["demo", "--json", "--rounds", "2", "--dir"])
        .arg(&demo)
        .arg("--params-dir")
        .arg(params())
        .output()
        .unwrap());
    assert_eq!(summary["accepted"], 2, "{summary:#}");
    assert_eq!(summary["slashed"], 2);
    let events = summary["events"].as_array().unwrap();
    let said = |role: &str, needle: &str| {
        events
            .iter()
            .any(|e| e[1]["role"].as_str().unwrap().contains(role) && e[1]["what"].as_str().unwrap().contains(needle))
    };
    assert!(said("cheat-mismatch", "rejected"), "the mismatched commitment is slashed");
    assert!(said("verifier", "not the committed"), "verifiers saw the root mismatch");
    assert!(said("cheat-no-gain", "rejected"));
    assert!(said("verifier", "did not fall"), "verifiers saw the loss rise");
    assert!(said("verifier", "claimed a share"), "negative attesters share the bond");
    assert!(summary["verify_train_ratio"].as_f64().unwrap() > 0.0);
    // The chain on disk says the same to `pogo status`, and the second honest round started
    // from the first one's root.
    let status = ok(pogo().args(["status", "--json", "--home"]).arg(&demo).output().unwrap());
    assert_eq!(
        (status["rounds"].as_u64(), status["accepted"].as_u64(), status["rejected"].as_u64()),
        (Some(4), Some(2), Some(2))
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

#[test]
fn a_full_round_against_anvil_over_json_rpc() {
    let anvil = install("scripts/anvil/install.sh");
    let port = free_port();
    let _node = Anvil(
        Command::new(anvil)
            .args(["--port", &port.to_string(), "--silent", "--hardfork", "prague"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let url = format!("http://127.0.0.1:{port}");
    let start = Instant::now();
    while TcpListener::bind(("127.0.0.1", port)).is_ok() {
        assert!(start.elapsed() < Duration::from_secs(20), "anvil did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
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
    assert_eq!(status["accepted"], 1);
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
}

/// How long any one wait of the restart test may take before it fails.
const PATIENCE: Duration = Duration::from_secs(300);

impl Network {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = pogo();
        cmd.args(args).env("POGO_HOME", self.home.path()).env("POGO_PASSWORD", "test").env("POGO_PARAMS", params());
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

    /// A verifier fetching from the miner's store, its stderr in `verifier-KEY.log`.
    fn verifier(&self, key: &str, crash: Option<&str>) -> Child {
        let log = std::fs::File::create(self.log(key)).unwrap();
        let peers = format!("http://127.0.0.1:{}", self.port);
        let mut cmd = self.cmd(&["verifier", "--key", key, "--poll", "0.1", "--peers", &peers]);
        if let Some(point) = crash {
            cmd.env("POGO_CRASH_AT", point);
        }
        cmd.stdout(Stdio::null()).stderr(log).spawn().unwrap()
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

    /// Waits for `miner` to finish its round. The windows are long enough that no restart
    /// can miss them however loaded the machine is; once the proof and both attestations
    /// are in, the test moves the chain past the attestation window itself, so the round
    /// closes at once instead of after the wall-clock window.
    fn finish_round(&self, mut miner: Child) {
        let start = Instant::now();
        loop {
            if let Some(exit) = miner.try_wait().unwrap() {
                assert!(exit.success(), "the miner failed: {:#}", self.status());
                return;
            }
            let status = self.status();
            if status["phase"] == "attesting" && status["attestations"] == 2 {
                let to = status["attest_deadline"].as_u64().unwrap() + 1;
                let now = status["block"].as_u64().unwrap();
                if now <= to {
                    let mut chain = EmbeddedChain::open(&self.home.path().join("chain.json")).unwrap();
                    chain.advance(to + 1 - now).unwrap();
                }
            }
            assert!(start.elapsed() < PATIENCE, "the round never closed: {status:#}");
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
    let port = free_port();
    let mut net = Network { home: tempfile::tempdir().unwrap(), port, verifiers: Vec::new() };
    for key in ["owner", "miner", "v1", "v2"] {
        ok(net.cmd(&["keys", "new", key, "--json"]).output().unwrap());
    }
    let task = root().join("tasks/digits.json");
    // Windows in 0.2 s blocks: 10 minutes to prove, so that no restart on a loaded machine
    // misses a deadline; `finish_round` closes each round early by moving the chain on.
    ok(net
        .cmd(&[
            "task",
            "create",
            task.to_str().unwrap(),
            "--key",
            "owner",
            "--json",
            "--block-time",
            "0.2",
            "--quorum",
            "2",
        ])
        .args(["--proof-window", "3000", "--attest-window", "3100"])
        .output()
        .unwrap());
    // Verifier v1 aborts right after its first attestation and is restarted; v2 runs throughout.
    net.verifiers.push(net.verifier("v1", Some("verifier-after-attest")));
    net.verifiers.push(net.verifier("v2", None));

    // The miner aborts at each phase boundary in turn, then finishes the round.
    for point in ["miner-after-prepare", "miner-after-commit", "miner-after-submit"] {
        let status = net.miner(Some(point)).arg("--rounds").arg("1").status().unwrap();
        assert!(!status.success(), "the miner was to abort at {point}");
        if point == "miner-after-commit" {
            // The round is open and the miner's store is down until it restarts: a verifier
            // must wait for the blob, not attest negative and have an honest miner slashed.
            let start = Instant::now();
            loop {
                let status = net.status();
                assert_eq!(status["attestations"], 0, "a verifier attested while the miner restarted: {status:#}");
                let log = std::fs::read_to_string(net.log("v2")).unwrap();
                if log.contains("retrying until the proof deadline") {
                    break;
                }
                assert!(start.elapsed() < PATIENCE, "v2 never tried to fetch the blob:\n{log}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        if point == "miner-after-submit" {
            let v1 = net.verifiers[0].wait().unwrap();
            assert!(!v1.success(), "v1 aborted after attesting");
            net.verifiers[0] = net.verifier("v1", None);
        }
    }
    net.finish_round(net.miner(None).arg("--rounds").arg("1").spawn().unwrap());
    let status = net.status();
    assert_eq!(
        (status["rounds"].as_u64(), status["accepted"].as_u64()),
        (Some(1), Some(1)),
        "one commit, accepted: {status:#}"
    );

    // A real SIGKILL in the middle of the second round.
    let mut miner = net.miner(None).arg("--rounds").arg("2").spawn().unwrap();
    let start = Instant::now();
    while !matches!(net.miner_phase().as_str(), "committed" | "proved") {
        assert!(start.elapsed() < PATIENCE, "the miner never committed");
        std::thread::sleep(Duration::from_millis(20));
    }
    miner.kill().unwrap();
    assert!(!miner.wait().unwrap().success());
    net.finish_round(net.miner(None).arg("--rounds").arg("2").spawn().unwrap());
    let status = net.status();
    assert_eq!(
        (status["rounds"].as_u64(), status["accepted"].as_u64(), status["rejected"].as_u64()),
        (Some(2), Some(2), Some(0)),
        "{status:#}"
    );
}

/// A task registered with a verifier that just `STOP`s (it would accept every proof): the
/// miner and the verifier refuse it, naming the mismatch, instead of joining its rounds.
#[test]
fn nodes_refuse_a_task_whose_verifier_is_not_the_one_their_keys_give() {
    use pogo_node::chain::Chain;
    use pogo_node::contract::Rounds;
    use pogo_node::deploy::Deployment;

    let net = Network { home: tempfile::tempdir().unwrap(), port: free_port(), verifiers: Vec::new() };
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
