//! Verifiers shipped inside the binary for the INSECURE development setup (seed 0) of the
//! demo's configuration, so that `pogo demo` needs no Solidity compiler: the keys of
//! `pogo setup --depth 6 --samples 2` are deterministic, so is the verifier generated from
//! them, and a node test regenerates it and fails if the copy here is stale
//! (`POGO_BLESS=1` rewrites it). Keys with any other verifying key never match.

use std::path::Path;

use pogo_circuits::files::write_atomic;

use super::export::{ExportError, VerifierManifest, VERIFIER_BIN, VERIFIER_MANIFEST, VERIFIER_SOL};
use crate::keys::{io_error, Manifest};

/// One shipped verifier: the three files `export_verifier` writes.
#[derive(Debug, Clone, Copy)]
pub struct Shipped {
    /// Folder under `verifier/contracts/build/verifiers/`.
    pub name: &'static str,
    /// `verifier.json`.
    pub manifest: &'static str,
    /// `Verifier.sol`.
    pub source: &'static str,
    /// `verifier.bin` (hex).
    pub bytecode_hex: &'static str,
}

/// Every shipped verifier.
pub const SHIPPED: &[Shipped] = &[Shipped {
    name: "d6-s2-dev0",
    manifest: include_str!("../../contracts/build/verifiers/d6-s2-dev0/verifier.json"),
    source: include_str!("../../contracts/build/verifiers/d6-s2-dev0/Verifier.sol"),
    bytecode_hex: include_str!("../../contracts/build/verifiers/d6-s2-dev0/verifier.bin"),
}];

impl Shipped {
    /// Its manifest, parsed.
    pub fn parsed(&self) -> VerifierManifest {
        serde_json::from_str(self.manifest).expect("shipped manifests parse")
    }
}

/// Writes the shipped verifier of the keys in `dir`, matched by verifying-key hash, as
/// `export_verifier` would (each file atomically, `verifier.json` last); `Ok(false)` when
/// none is shipped for these keys.
pub fn install_shipped(dir: &Path) -> Result<bool, ExportError> {
    let keys = Manifest::load(dir)?;
    let Some(found) = SHIPPED.iter().find(|s| s.parsed().vk_sha256 == keys.sha256.vk) else {
        return Ok(false);
    };
    let files = [
        (VERIFIER_SOL, found.source.as_bytes()),
        (VERIFIER_BIN, found.bytecode_hex.as_bytes()),
        (VERIFIER_MANIFEST, found.manifest.as_bytes()),
    ];
    for (name, bytes) in files {
        let path = dir.join(name);
        write_atomic(&path, bytes).map_err(io_error(&path))?;
    }
    Ok(true)
}
