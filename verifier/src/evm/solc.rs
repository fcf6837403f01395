//! Running the Solidity compiler: any `solc`-compatible executable (DESIGN §4 pins npm
//! `solc@0.8.19` behind `scripts/solc/solc`; install it with `scripts/solc/install.sh`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The compiler version every pogo contract and verifier is built and tested with.
pub const SOLC_VERSION: &str = "0.8.19";

/// The compiler could not be run or rejected the source.
#[derive(Debug, thiserror::Error)]
pub enum SolcError {
    /// The executable is missing or failed to start.
    #[error(
        "cannot run the Solidity compiler `{path}` ({source}); install solc-js {SOLC_VERSION} with \
         scripts/solc/install.sh and pass the printed path as --solc (or set POGO_SOLC)"
    )]
    Spawn {
        /// What was run.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
    /// Another compiler version (bytecode would differ from the recorded one).
    #[error("`{path}` is solc {found}, pogo needs {SOLC_VERSION}")]
    Version {
        /// What was run.
        path: PathBuf,
        /// What it reported.
        found: String,
    },
    /// Compilation failed; the compiler's messages.
    #[error("solc failed to compile {unit}:\n{messages}")]
    Compile {
        /// The source's name.
        unit: String,
        /// Errors as solc printed them.
        messages: String,
    },
    /// The compiler's output was not what `--standard-json` promises.
    #[error("unexpected output from solc: {0}")]
    Output(String),
}

/// A located, version-checked compiler.
#[derive(Debug, Clone)]
pub struct Solc {
    path: PathBuf,
}

/// Deployment bytecode and ABI of one compiled contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compiled {
    /// Creation (deployment) bytecode.
    pub bytecode: Vec<u8>,
    /// The ABI as JSON text.
    pub abi: String,
}

impl Solc {
    /// The compiler at `explicit`, else `$POGO_SOLC`, else `solc` on `PATH`; checks the version.
    pub fn locate(explicit: Option<&Path>) -> Result<Self, SolcError> {
        let path = match explicit {
            Some(path) => path.to_path_buf(),
            None => std::env::var_os("POGO_SOLC").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("solc")),
        };
        let solc = Solc { path };
        let version = solc.run(&["--version"], "")?;
        let found = version
            .lines()
            .find_map(|line| line.strip_prefix("Version: "))
            .map(|v| v.split('+').next().unwrap_or(v).trim().to_string())
            .unwrap_or_else(|| version.trim().to_string());
        if found != SOLC_VERSION {
            return Err(SolcError::Version { path: solc.path, found });
        }
        Ok(solc)
    }

    /// Runs an install script that prints the compiler's path (the repository's
    /// `scripts/solc/install.sh`, which installs the pinned solc-js offline-first), then
    /// locates that compiler.
    pub fn from_install_script(script: &Path) -> Result<Self, SolcError> {
        let output = Command::new(script)
            .stderr(Stdio::inherit())
            .output()
            .map_err(|source| SolcError::Spawn { path: script.to_path_buf(), source })?;
        if !output.status.success() {
            return Err(SolcError::Output(format!("{} failed ({})", script.display(), output.status)));
        }
        let path = String::from_utf8_lossy(&output.stdout).trim().to_string();
        Self::locate(Some(Path::new(&path)))
    }

    /// The executable.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn run(&self, args: &[&str], stdin: &str) -> Result<String, SolcError> {
        let spawn = |source| SolcError::Spawn { path: self.path.clone(), source };
        let mut child = Command::new(&self.path)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(spawn)?;
        let mut input = child.stdin.take().ok_or_else(|| SolcError::Output("no stdin".into()))?;
        // Write on a thread so a compiler that answers before reading cannot deadlock us.
        let text = stdin.to_string();
        let writer = std::thread::spawn(move || input.write_all(text.as_bytes()));
        let output = child.wait_with_output().map_err(spawn)?;
        let _ = writer.join();
        if !output.status.success() {
            return Err(SolcError::Compile {
                unit: args.join(" "),
                messages: String::from_utf8_lossy(&output.stderr).into_owned(),
            });
        }
        String::from_utf8(output.stdout).map_err(|e| SolcError::Output(e.to_string()))
    }

    /// Compiles one source unit through `--standard-json` and returns `contract`.
    ///
    /// `optimize_runs`: `None` compiles without the optimizer (DESIGN §4 for generated
    /// verifiers), `Some(n)` with it; `via_ir` compiles through the Yul IR pipeline (smaller
    /// code for the round contract, which must fit EIP-170).
    pub fn compile(
        &self,
        unit: &str,
        source: &str,
        contract: &str,
        optimize_runs: Option<u32>,
        via_ir: bool,
    ) -> Result<Compiled, SolcError> {
        let mut all = self.compile_units(&[(unit, source)], optimize_runs, via_ir)?;
        all.remove(contract).ok_or_else(|| SolcError::Output(format!("no bytecode for {unit}:{contract}")))
    }

    /// Compiles several source units together (they may import each other by unit name) and
    /// returns every deployable contract by name (abstract contracts and interfaces, which
    /// compile to no code, are left out).
    pub fn compile_units(
        &self,
        units: &[(&str, &str)],
        optimize_runs: Option<u32>,
        via_ir: bool,
    ) -> Result<std::collections::BTreeMap<String, Compiled>, SolcError> {
        let sources: serde_json::Map<String, serde_json::Value> =
            units.iter().map(|(unit, source)| (unit.to_string(), serde_json::json!({ "content": source }))).collect();
        let names = units.iter().map(|(unit, _)| *unit).collect::<Vec<_>>().join(", ");
        let input = serde_json::json!({
            "language": "Solidity",
            "sources": sources,
            "settings": {
                "optimizer": { "enabled": optimize_runs.is_some(), "runs": optimize_runs.unwrap_or(200) },
                "viaIR": via_ir,
                "outputSelection": { "*": { "*": ["abi", "evm.bytecode.object"] } }
            }
        });
        let text = self.run(&["--standard-json"], &input.to_string())?;
        let output: serde_json::Value = serde_json::from_str(&text).map_err(|e| SolcError::Output(e.to_string()))?;
        let errors: Vec<String> = output["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["severity"] == "error")
            .map(|e| e["formattedMessage"].as_str().unwrap_or("(no message)").to_string())
            .collect();
        if !errors.is_empty() {
            return Err(SolcError::Compile { unit: names, messages: errors.join("\n") });
        }
        let mut all = std::collections::BTreeMap::new();
        for (unit, contracts) in output["contracts"].as_object().into_iter().flatten() {
            for (name, out) in contracts.as_object().into_iter().flatten() {
                let hex_code = out["evm"]["bytecode"]["object"]
                    .as_str()
                    .ok_or_else(|| SolcError::Output(format!("no bytecode for {unit}:{name}")))?;
                let bytecode = hex::decode(hex_code).map_err(|e| SolcError::Output(e.to_string()))?;
                if !bytecode.is_empty() {
                    all.insert(name.clone(), Compiled { bytecode, abi: out["abi"].to_string() });
                }
            }
        }
        Ok(all)
    }
}
