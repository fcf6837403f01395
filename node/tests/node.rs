//! The node end to end: `pogo demo` on the embedded chain (honest rounds accepted, both
//! cheaters slashed), the same contract bytecode against a real Anvil node over JSON-RPC,
//! and restart safety: roles killed (abort at each phase boundary, and a real SIGKILL)
//! and restarted never double-submit and finish their rounds.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

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

    fn miner_phase(&self) -> String {
        let path = self.home.path().join("miner-miner/miner.json");
        std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .map(|v| v["phase"]["phase"].as_str().unwrap_or("").to_string())
            .unwrap_or_default()
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
    // Windows in 0.2 s blocks: 60 s to prove (a loaded 2-core CI machine proves slowly, and a
    // killed miner proves again), and attestation closes 4 s after that.
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
        .args(["--proof-window", "300", "--attest-window", "320"])
        .output()
        .unwrap());
    let peers = format!("http://127.0.0.1:{port}");
    // Verifier v1 aborts right after its first attestation and is restarted; v2 runs throughout.
    let v1_crash = net
        .cmd(&["verifier", "--key", "v1", "--poll", "0.1", "--peers", &peers])
        .env("POGO_CRASH_AT", "verifier-after-attest")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    net.verifiers.push(v1_crash);
    let v2 = net
        .cmd(&["verifier", "--key", "v2", "--poll", "0.1", "--peers", &peers])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    net.verifiers.push(v2);

    // The miner aborts at each phase boundary in turn, then finishes the round.
    for point in ["miner-after-prepare", "miner-after-commit", "miner-after-submit"] {
        let status = net.miner(Some(point)).arg("--rounds").arg("1").status().unwrap();
        assert!(!status.success(), "the miner was to abort at {point}");
        if point == "miner-after-submit" {
            let v1 = net.verifiers[0].wait().unwrap();
            assert!(!v1.success(), "v1 aborted after attesting");
            let again = net
                .cmd(&["verifier", "--key", "v1", "--poll", "0.1", "--peers", &peers])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            net.verifiers[0] = again;
        }
    }
    assert!(net.miner(None).arg("--rounds").arg("1").status().unwrap().success());
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
        assert!(start.elapsed() < Duration::from_secs(120), "the miner never committed");
        std::thread::sleep(Duration::from_millis(20));
    }
    miner.kill().unwrap();
    assert!(!miner.wait().unwrap().success());
    assert!(net.miner(None).arg("--rounds").arg("2").status().unwrap().success());
    let status = net.status();
    assert_eq!(
        (status["rounds"].as_u64(), status["accepted"].as_u64(), status["rejected"].as_u64()),
        (Some(2), Some(2), Some(0)),
        "{status:#}"
    );
}
