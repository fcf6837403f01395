//! Exported EVM verifiers: `Verifier.sol`, its creation bytecode `verifier.bin` (hex) and
//! `verifier.json` in a configuration's key folder, next to the key manifest.

use std::path::Path;

use pogo_circuits::files::write_atomic;
use serde::{Deserialize, Serialize};

use super::harness::{Evm, Fork, CODE_SIZE_LIMIT};
use super::solc::{Solc, SolcError};
use super::solidity::{verifier_source, GenerateError};
use crate::evm::{Address, U256};
use crate::keys::{io_error, read_checked, sha256_hex, KeysError, Manifest, Versioned};
use halo2_base::halo2_proofs::halo2curves::bn256::{Bn256, G1Affine};
use halo2_base::halo2_proofs::plonk::VerifyingKey;
use halo2_base::halo2_proofs::poly::kzg::commitment::ParamsKZG;

/// Format tag of `verifier.json`.
pub const VERIFIER_FORMAT: &str = "pogo-evm-verifier-v1";
/// The Solidity source.
pub const VERIFIER_SOL: &str = "Verifier.sol";
/// Creation bytecode, hex.
pub const VERIFIER_BIN: &str = "verifier.bin";
/// The verifier's manifest.
pub const VERIFIER_MANIFEST: &str = "verifier.json";
/// The contract snark-verifier emits.
pub const VERIFIER_CONTRACT: &str = "Halo2Verifier";

/// What `verifier.json` records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifierManifest {
    /// [`VERIFIER_FORMAT`].
    pub format: String,
    /// The configuration (`d{D}-s{S}`).
    pub config: String,
    /// SHA-256 of the verifying key it was generated from (the key manifest's).
    pub vk_sha256: String,
    /// Public inputs it expects (`4 + S`).
    pub num_instances: usize,
    /// Compiler version (optimizer off).
    pub solc: String,
    /// SHA-256 of `Verifier.sol`.
    pub source_sha256: String,
    /// SHA-256 of the creation bytecode (the bytes `verifier.bin` encodes in hex).
    pub bytecode_sha256: String,
    /// Size of the code it deploys.
    pub deployed_bytes: usize,
    /// Whether that fits EIP-170's 24,576-byte limit (mainnet and most L2s enforce it).
    pub fits_eip170: bool,
}

impl VerifierManifest {
    /// Reads `verifier.json` in `dir`, checking its format tag.
    pub fn load(dir: &Path) -> Result<Self, KeysError> {
        Self::load_json(&dir.join(VERIFIER_MANIFEST))
    }
}

impl Versioned for VerifierManifest {
    const WHAT: &'static str = "verifier manifest";
    const FORMAT: &'static str = VERIFIER_FORMAT;
    fn format(&self) -> &str {
        &self.format
    }
}

/// Exporting or loading a verifier failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The key folder is unusable.
    #[error(transparent)]
    Keys(#[from] KeysError),
    /// Generation failed.
    #[error(transparent)]
    Generate(#[from] GenerateError),
    /// Compilation failed.
    #[error(transparent)]
    Solc(#[from] SolcError),
    /// The bytecode would not deploy.
    #[error("the compiled verifier does not deploy: {0}")]
    Deploy(String),
    /// The exported verifier belongs to other keys than the folder's.
    #[error("{dir}: the verifier was generated for verifying key {verifier}, the folder holds {keys}; run `pogo export-verifier` again")]
    Stale {
        /// The folder.
        dir: String,
        /// vk hash in `verifier.json`.
        verifier: String,
        /// vk hash in `manifest.json`.
        keys: String,
    },
}

/// The deployed size of `creation` code, measured by deploying it in a scratch EVM.
pub fn deployed_size(creation: &[u8]) -> Result<usize, ExportError> {
    let mut evm = Evm::new(Fork::default());
    evm.set_code_size_limit(false);
    let (address, _) = evm
        .deploy(Address::repeat_byte(0x11), creation.to_vec(), U256::ZERO)
        .map_err(|e| ExportError::Deploy(e.to_string()))?;
    Ok(evm.code_size(address))
}

/// The verifier of `vk` for `samples` sampled blocks: its Solidity source and creation
/// bytecode, compiled without the optimizer (DESIGN §4). What `export_verifier` writes and
/// `pogo audit` regenerates to compare.
pub fn build_verifier(
    setup: &ParamsKZG<Bn256>,
    vk: &VerifyingKey<G1Affine>,
    samples: usize,
    solc: &Solc,
) -> Result<(String, Vec<u8>), ExportError> {
    let source = verifier_source(setup, vk, 4 + samples)?;
    let compiled = solc.compile(VERIFIER_SOL, &source, VERIFIER_CONTRACT, None, false)?;
    Ok((source, compiled.bytecode))
}

/// Generates, compiles and writes the verifier of the keys in `dir`; each file atomically,
/// `verifier.json` last.
pub fn export_verifier(dir: &Path, solc: &Solc) -> Result<VerifierManifest, ExportError> {
    let manifest = Manifest::load(dir)?;
    let setup = manifest.load_setup(dir)?;
    let vk = manifest.load_vk(dir)?;
    let num_instances = 4 + manifest.shape.config.samples;
    let (source, bytecode) = build_verifier(&setup, &vk, manifest.shape.config.samples, solc)?;
    let deployed_bytes = deployed_size(&bytecode)?;
    let out = VerifierManifest {
        format: VERIFIER_FORMAT.into(),
        config: manifest.shape.config.name(),
        vk_sha256: manifest.sha256.vk.clone(),
        num_instances,
        solc: super::solc::SOLC_VERSION.into(),
        source_sha256: sha256_hex(source.as_bytes()),
        bytecode_sha256: sha256_hex(&bytecode),
        deployed_bytes,
        fits_eip170: deployed_bytes <= CODE_SIZE_LIMIT,
    };
    let files = [
        (VERIFIER_SOL, source.into_bytes()),
        (VERIFIER_BIN, format!("{}\n", hex::encode(&bytecode)).into_bytes()),
        (VERIFIER_MANIFEST, serde_json::to_vec_pretty(&out).expect("manifests serialize")),
    ];
    for (name, bytes) in files {
        let path = dir.join(name);
        write_atomic(&path, &bytes).map_err(io_error(&path))?;
    }
    Ok(out)
}

/// Loads an exported verifier's creation bytecode, checking its hash and that it was made
/// for the verifying key the folder holds now.
pub fn load_verifier(dir: &Path) -> Result<(VerifierManifest, Vec<u8>), ExportError> {
    let keys = Manifest::load(dir)?;
    let manifest = VerifierManifest::load(dir)?;
    if manifest.vk_sha256 != keys.sha256.vk {
        return Err(ExportError::Stale {
            dir: dir.display().to_string(),
            verifier: manifest.vk_sha256,
            keys: keys.sha256.vk,
        });
    }
    let path = dir.join(VERIFIER_BIN);
    let text = std::fs::read_to_string(&path).map_err(io_error(&path))?;
    let malformed =
        |reason: String| KeysError::Malformed { path: path.display().to_string(), what: "verifier bytecode", reason };
    let bytecode = hex::decode(text.trim()).map_err(|e| malformed(e.to_string()))?;
    let found = sha256_hex(&bytecode);
    if found != manifest.bytecode_sha256 {
        return Err(
            KeysError::Hash { path: path.display().to_string(), found, expected: manifest.bytecode_sha256 }.into()
        );
    }
    // The source must match too, so auditors read what was compiled.
    read_checked(&dir.join(VERIFIER_SOL), &manifest.source_sha256)?;
    Ok((manifest, bytecode))
}
