//! Key folders under `params/` and proof files, and loading them with every check first.
//!
//! A configuration's folder (`params/d{D}-s{S}/`) holds `setup.bin` (KZG powers), `vk.bin`,
//! `pk.bin` and `manifest.json`, which names the configuration, its shape, the setup's
//! origin and the SHA-256 of every file. Loading checks the hashes before parsing anything,
//! so a truncated or swapped file is reported as such, not as a strange proof failure.

use std::path::{Path, PathBuf};

use halo2_base::gates::circuit::BaseCircuitParams;
use halo2_base::halo2_proofs::halo2curves::bn256::G1Affine;
use halo2_base::halo2_proofs::plonk::VerifyingKey;
use halo2_base::halo2_proofs::poly::commitment::Params;
use halo2_base::halo2_proofs::SerdeFormat;
use pogo_circuits::config::CircuitShape;
use pogo_circuits::field::{fr_from_hex, fr_to_hex, Fr};
use pogo_circuits::update_circuit::{PublicInputs, UpdateCircuit};
use sha2::{Digest, Sha256};

use crate::proof::{verify, ProofError};

/// The manifest's format tag.
pub const MANIFEST_FORMAT: &str = "pogo-keys-v1";
/// The proof file's format tag.
pub const PROOF_FORMAT: &str = "pogo-proof-v1";
/// File names inside a configuration folder.
pub const SETUP_FILE: &str = "setup.bin";
/// Verifying key file.
pub const VK_FILE: &str = "vk.bin";
/// Proving key file.
pub const PK_FILE: &str = "pk.bin";
/// Manifest file.
pub const MANIFEST_FILE: &str = "manifest.json";

/// KZG parameters over BN254.
pub type Setup =
    halo2_base::halo2_proofs::poly::kzg::commitment::ParamsKZG<halo2_base::halo2_proofs::halo2curves::bn256::Bn256>;

/// Where a setup came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum SetupOrigin {
    /// Derived from a public seed: anyone can forge proofs. Development only.
    DevSeededInsecure {
        /// The seed.
        seed: u64,
    },
    /// Imported from a powers-of-tau ceremony file (snarkjs `.ptau`).
    Ptau {
        /// SHA-256 of the `.ptau` file.
        sha256: String,
        /// Its file name when imported.
        file: String,
    },
}

/// `manifest.json` of a configuration folder.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    /// [`MANIFEST_FORMAT`].
    pub format: String,
    /// Configuration and measured shape.
    pub shape: CircuitShape,
    /// Column parameters fixed at keygen.
    pub circuit_params: BaseCircuitParams,
    /// Column break points fixed at keygen.
    pub break_points: Vec<Vec<usize>>,
    /// Where the setup came from.
    pub setup: SetupOrigin,
    /// SHA-256 of `setup.bin`, `vk.bin`, `pk.bin` (hex).
    pub sha256: FileHashes,
}

/// SHA-256 (hex) of each file of a configuration folder.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileHashes {
    /// `setup.bin`.
    pub setup: String,
    /// `vk.bin`; also the key's identity in proof files.
    pub vk: String,
    /// `pk.bin`.
    pub pk: String,
}

/// A key folder or proof file is unusable.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// JSON did not parse.
    #[error("{path}: not a valid {what}: {source}")]
    Json {
        /// The file.
        path: String,
        /// Manifest or proof.
        what: &'static str,
        /// The cause.
        source: serde_json::Error,
    },
    /// Another format version.
    #[error("{path}: format {found:?} is not {expected:?}")]
    Format {
        /// The file.
        path: String,
        /// Found.
        found: String,
        /// Expected.
        expected: &'static str,
    },
    /// A file's hash differs from the manifest's.
    #[error("{path}: SHA-256 {found} does not match the manifest's {expected} (corrupt or replaced file)")]
    Hash {
        /// The file.
        path: String,
        /// Computed.
        found: String,
        /// In the manifest.
        expected: String,
    },
    /// A key or setup file is malformed although its hash matched.
    #[error("{path}: malformed {what}: {reason}")]
    Malformed {
        /// The file.
        path: String,
        /// Which kind of file.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// The proof was made for another configuration or key.
    #[error("the proof was made with other keys ({proof}) than the ones in {dir} ({keys})")]
    KeyMismatch {
        /// What the proof names.
        proof: String,
        /// What the folder holds.
        keys: String,
        /// The folder.
        dir: String,
    },
    /// The proof itself failed.
    #[error(transparent)]
    Proof(#[from] ProofError),
    /// No keys in a configuration folder.
    #[error("no keys in {dir}: {hint}")]
    NoKeys {
        /// The folder.
        dir: String,
        /// The command that makes them.
        hint: String,
    },
}

/// The `pogo setup` command that makes the keys a configuration folder `d{D}-s{S}` under
/// PARAMS should hold.
pub fn setup_hint(dir: &Path) -> String {
    let name = dir.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let parent = dir.parent().map(|p| p.display().to_string()).filter(|p| !p.is_empty()).unwrap_or_else(|| ".".into());
    let parsed = name
        .strip_prefix('d')
        .and_then(|rest| rest.split_once("-s"))
        .and_then(|(d, s)| Some((d.parse::<u32>().ok()?, s.parse::<usize>().ok()?)));
    match parsed {
        Some((d, s)) => format!("run `pogo setup --depth {d} --samples {s} --params-dir {parent}` (or pass the --params-dir that holds them)"),
        None => format!("run `pogo setup` with the --params-dir that should hold {name}"),
    }
}

/// Hex SHA-256 of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Turns an I/O error on `path` into [`KeysError::Io`] (for `map_err`).
pub fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> KeysError + '_ {
    move |source| KeysError::Io { path: path.display().to_string(), source }
}

fn read(path: &Path) -> Result<Vec<u8>, KeysError> {
    std::fs::read(path).map_err(io_error(path))
}

/// Reads a file and checks it against the manifest's hash.
pub fn read_checked(path: &Path, expected: &str) -> Result<Vec<u8>, KeysError> {
    let bytes = read(path)?;
    let found = sha256_hex(&bytes);
    if found != expected {
        return Err(KeysError::Hash { path: path.display().to_string(), found, expected: expected.to_string() });
    }
    Ok(bytes)
}

/// Bytes of a setup file of `2^k` powers: `k`, `2^k` G1 points in monomial and in Lagrange
/// form (64 bytes each, raw), then two G2 points (128 bytes each).
pub fn setup_file_len(k: u32) -> u64 {
    1u64.checked_shl(k).and_then(|n| n.checked_mul(2 * 64)).map_or(u64::MAX, |points| 4 + points + 2 * 128)
}

/// Checks every point of a setup file of the right length: canonical coordinates, on the
/// curve (halo2's raw reader checks neither).
fn check_setup_points(bytes: &[u8], k: u32) -> Result<(), String> {
    use halo2_base::halo2_proofs::halo2curves::bn256::G2Affine;
    use halo2_base::halo2_proofs::halo2curves::serde::SerdeObject;
    let g1_bytes = 2 * 64 * (1usize << k);
    let (g1, g2) = bytes[4..].split_at(g1_bytes);
    if let Some(i) = g1.chunks_exact(64).position(|c| G1Affine::from_raw_bytes(c).is_none()) {
        return Err(format!("G1 point {i} is not a point of the curve"));
    }
    if let Some(i) = g2.chunks_exact(128).position(|c| G2Affine::from_raw_bytes(c).is_none()) {
        return Err(format!("G2 point {i} is not a point of the curve"));
    }
    Ok(())
}

/// Runs a parser that may panic on malformed bytes (halo2's readers do), turning both its
/// error and a panic into [`KeysError::Malformed`].
pub fn parse_untrusted<T>(
    path: &Path,
    what: &'static str,
    f: impl FnOnce() -> std::io::Result<T>,
) -> Result<T, KeysError> {
    catch_parse(f).map_err(|reason| KeysError::Malformed { path: path.display().to_string(), what, reason })
}

/// The folder of a configuration under a parameters directory.
pub fn config_dir(params_dir: &Path, shape_name: &str) -> PathBuf {
    params_dir.join(shape_name)
}

/// A versioned JSON file of ours (key manifest or proof file).
pub(crate) trait Versioned: serde::de::DeserializeOwned {
    /// What the file is, for messages.
    const WHAT: &'static str;
    /// The format tag this build reads.
    const FORMAT: &'static str;
    /// The file's format tag.
    fn format(&self) -> &str;

    /// Reads, parses and checks the format tag.
    fn load_json(path: &Path) -> Result<Self, KeysError> {
        let bytes = read(path)?;
        let value: Self = serde_json::from_slice(&bytes).map_err(|source| KeysError::Json {
            path: path.display().to_string(),
            what: Self::WHAT,
            source,
        })?;
        if value.format() != Self::FORMAT {
            return Err(KeysError::Format {
                path: path.display().to_string(),
                found: value.format().to_string(),
                expected: Self::FORMAT,
            });
        }
        Ok(value)
    }
}

impl Versioned for Manifest {
    const WHAT: &'static str = "key manifest";
    const FORMAT: &'static str = MANIFEST_FORMAT;
    fn format(&self) -> &str {
        &self.format
    }
}

impl Versioned for ProofFile {
    const WHAT: &'static str = "proof file";
    const FORMAT: &'static str = PROOF_FORMAT;
    fn format(&self) -> &str {
        &self.format
    }
}

impl Manifest {
    /// Reads and checks `manifest.json` in `dir`; a folder without one says which `pogo
    /// setup` makes it.
    pub fn load(dir: &Path) -> Result<Self, KeysError> {
        let path = dir.join(MANIFEST_FILE);
        if !path.exists() {
            return Err(KeysError::NoKeys { dir: dir.display().to_string(), hint: setup_hint(dir) });
        }
        let manifest = Self::load_json(&path)?;
        // Every size the key readers allocate by comes from here: check it against the
        // circuit's own layout first (a manifest declaring 10^9 columns would abort the
        // process inside halo2-base, where no error can be returned).
        manifest.shape.check_params(&manifest.circuit_params).map_err(|reason| KeysError::Malformed {
            path: path.display().to_string(),
            what: "key manifest",
            reason,
        })?;
        Ok(manifest)
    }

    /// Loads the setup, checking its hash, then [`parse_setup`] against the shape's `k`.
    pub fn load_setup(&self, dir: &Path) -> Result<Setup, KeysError> {
        let path = dir.join(SETUP_FILE);
        let bytes = read_checked(&path, &self.sha256.setup)?;
        parse_setup(&bytes, self.shape.k).map_err(|reason| KeysError::Malformed {
            path: path.display().to_string(),
            what: "KZG setup",
            reason,
        })
    }

    /// Loads the verifying key, checking its hash, then [`parse_vk`] with the manifest's
    /// (checked) column parameters.
    pub fn load_vk(&self, dir: &Path) -> Result<VerifyingKey<G1Affine>, KeysError> {
        let path = dir.join(VK_FILE);
        let bytes = read_checked(&path, &self.sha256.vk)?;
        parse_vk(&bytes, &self.circuit_params).map_err(|reason| KeysError::Malformed {
            path: path.display().to_string(),
            what: "verifying key",
            reason,
        })
    }
}

/// Reads a setup file of `2^k` powers, checking the declared `k` and the length before
/// reading any point (a header declaring 2^55 powers must not allocate them), then every
/// point against the curve (halo2's raw reader checks none).
pub fn parse_setup(bytes: &[u8], k: u32) -> Result<Setup, String> {
    let declared = bytes.get(..4).map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")));
    if declared != Some(k) {
        return Err(format!("it declares {declared:?} as k, the circuit needs {k}"));
    }
    let expected = setup_file_len(k);
    if bytes.len() as u64 != expected {
        return Err(format!("{} bytes, a setup of 2^{k} powers has {expected}", bytes.len()));
    }
    check_setup_points(bytes, k)?;
    let setup = catch_parse(|| Setup::read(&mut &bytes[..]))?;
    if setup.k() != k {
        return Err(format!("2^{} powers, the circuit needs 2^{k}", setup.k()));
    }
    Ok(setup)
}

/// Reads a verifying key of the update circuit laid out with `params` (which must have
/// passed [`CircuitShape::check_params`]: the reader allocates by them).
pub fn parse_vk(bytes: &[u8], params: &BaseCircuitParams) -> Result<VerifyingKey<G1Affine>, String> {
    check_key_header(bytes, params)?;
    let params = params.clone();
    catch_parse(|| VerifyingKey::read::<_, UpdateCircuit>(&mut &bytes[..], SerdeFormat::RawBytes, params))
}

/// Checks the header that verifying and proving keys start with (halo2's version byte 2,
/// `k` as a little-endian u32, the selector-compression flag) against the circuit's `k`
/// before halo2 reads the rest: its reader sizes work by the declared `k`, so a key that
/// declares another one (2^24 rows, say) would cost memory out of all proportion to the
/// file (found by the `key_vk` fuzz target: 2.2 GB for a 586-byte input).
pub fn check_key_header(bytes: &[u8], params: &BaseCircuitParams) -> Result<(), String> {
    let Some(header) = bytes.get(..6) else {
        return Err(format!("{} bytes, shorter than a key's 6-byte header", bytes.len()));
    };
    if header[0] != 2 {
        return Err(format!("key format version {}, this build reads version 2", header[0]));
    }
    let declared = u32::from_le_bytes(header[1..5].try_into().expect("4 bytes"));
    if declared as usize != params.k {
        return Err(format!("the key declares k = {declared}, the circuit has k = {}", params.k));
    }
    if header[5] > 1 {
        return Err(format!("selector-compression flag {}, not 0 or 1", header[5]));
    }
    Ok(())
}

/// Runs a parser that may panic on malformed bytes, as an error either way.
fn catch_parse<T>(f: impl FnOnce() -> std::io::Result<T>) -> Result<T, String> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("parser panicked".into()),
    }
}

/// A proof with everything needed to check it: the configuration, the key it was made
/// with, the public inputs and the proof bytes (JSON, hex-encoded).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProofFile {
    /// [`PROOF_FORMAT`].
    pub format: String,
    /// The configuration (`d{D}-s{S}`).
    pub config: String,
    /// SHA-256 of the verifying key file.
    pub vk_sha256: String,
    /// `old_root`.
    pub old_root: String,
    /// `new_root`.
    pub new_root: String,
    /// `update_root`.
    pub update_root: String,
    /// `nb`.
    pub blocks: u64,
    /// `i_0..i_{S-1}`.
    pub indices: Vec<u64>,
    /// The proof, `0x` hex.
    pub proof: String,
    /// The phase-2 seed the indices were drawn from (`0x` hex, 32 bytes), when the prover
    /// drew them from one (`pogo prove --seed`); absent for indices given directly and in
    /// files written before it was recorded. `decode` checks the indices against it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<String>,
}

impl ProofFile {
    /// Wraps a proof.
    pub fn new(config: String, vk_sha256: String, inputs: &PublicInputs, proof: &[u8]) -> Self {
        Self {
            format: PROOF_FORMAT.into(),
            config,
            vk_sha256,
            old_root: fr_to_hex(&inputs.old_root),
            new_root: fr_to_hex(&inputs.new_root),
            update_root: fr_to_hex(&inputs.update_root),
            blocks: inputs.blocks,
            indices: inputs.indices.clone(),
            proof: format!("0x{}", hex::encode(proof)),
            seed: None,
        }
    }

    /// Records the phase-2 seed the indices were drawn from.
    pub fn with_seed(mut self, seed: &[u8; 32]) -> Self {
        self.seed = Some(format!("0x{}", hex::encode(seed)));
        self
    }

    /// Reads a proof file.
    pub fn load(path: &Path) -> Result<Self, KeysError> {
        Self::load_json(path)
    }

    /// The public inputs and proof bytes, parsed.
    pub fn decode(&self) -> Result<(PublicInputs, Vec<u8>), KeysError> {
        let bad = |what: &str, e: String| KeysError::Malformed {
            path: "proof file".into(),
            what: "proof file",
            reason: format!("{what}: {e}"),
        };
        let root = |name: &str, text: &str| -> Result<Fr, KeysError> {
            fr_from_hex(text).map_err(|e| bad(name, e.to_string()))
        };
        let inputs = PublicInputs {
            old_root: root("old_root", &self.old_root)?,
            new_root: root("new_root", &self.new_root)?,
            update_root: root("update_root", &self.update_root)?,
            blocks: self.blocks,
            indices: self.indices.clone(),
        };
        if let Some(seed) = &self.seed {
            let mut bytes = [0u8; 32];
            let digits = seed.strip_prefix("0x").ok_or_else(|| bad("seed", "missing 0x".into()))?;
            hex::decode_to_slice(digits, &mut bytes).map_err(|e| bad("seed", format!("not 32 bytes of hex ({e})")))?;
            if inputs.blocks == 0 {
                return Err(bad("blocks", "a model has at least one block".into()));
            }
            let drawn = pogo_circuits::sampling::sample_indices(&bytes, inputs.indices.len(), inputs.blocks);
            if drawn != inputs.indices {
                return Err(bad(
                    "indices",
                    format!("{:?} are not the ones the recorded seed draws, {drawn:?}", inputs.indices),
                ));
            }
        }
        let digits = self.proof.strip_prefix("0x").ok_or_else(|| bad("proof", "missing 0x".into()))?;
        let proof = hex::decode(digits).map_err(|e| bad("proof", e.to_string()))?;
        Ok((inputs, proof))
    }

    /// Verifies the proof with the keys in `dir`, checking it names that key.
    pub fn verify_with(&self, dir: &Path) -> Result<PublicInputs, KeysError> {
        let manifest = Manifest::load(dir)?;
        let keys = manifest.shape.config.name();
        if self.config != keys || self.vk_sha256 != manifest.sha256.vk {
            return Err(KeysError::KeyMismatch {
                proof: format!("{}, vk {}", self.config, short(&self.vk_sha256)),
                keys: format!("{keys}, vk {}", short(&manifest.sha256.vk)),
                dir: dir.display().to_string(),
            });
        }
        let (inputs, proof) = self.decode()?;
        let setup = manifest.load_setup(dir)?;
        let vk = manifest.load_vk(dir)?;
        verify(&setup, &vk, &inputs, manifest.shape.config.samples, &proof)?;
        Ok(inputs)
    }
}

fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_key_folder_names_the_setup_that_makes_it() {
        let err = Manifest::load(Path::new("/nowhere/params/d6-s2")).unwrap_err().to_string();
        assert!(err.contains("pogo setup --depth 6 --samples 2 --params-dir /nowhere/params"), "{err}");
        assert!(setup_hint(Path::new("odd")).contains("pogo setup"));
    }

    #[test]
    fn a_key_declaring_another_k_is_refused_before_halo2_reads_it() {
        let params = BaseCircuitParams { k: 12, ..Default::default() };
        // The start of the fuzzer's out-of-memory input: version 2, k = 24, flag 0.
        let crafted = [2u8, 24, 0, 0, 0, 0, 6, 0, 0, 0];
        let err = parse_vk(&crafted, &params).unwrap_err();
        assert_eq!(err, "the key declares k = 24, the circuit has k = 12");
        assert!(check_key_header(&[2, 12, 0, 0, 0, 0], &params).is_ok());
        assert!(check_key_header(&[3, 12, 0, 0, 0, 0], &params).unwrap_err().contains("version 3"));
        assert!(check_key_header(&[2, 12, 0, 0, 0, 2], &params).unwrap_err().contains("flag 2"));
        assert!(check_key_header(&[2, 12, 0], &params).unwrap_err().contains("3 bytes"));
    }

    fn inputs(indices: Vec<u64>) -> PublicInputs {
        PublicInputs { old_root: Fr::from(1), new_root: Fr::from(2), update_root: Fr::from(3), blocks: 40, indices }
    }

    #[test]
    fn a_recorded_seed_is_checked_against_the_indices() {
        let seed = [7u8; 32];
        let drawn = pogo_circuits::sampling::sample_indices(&seed, 3, 40);
        let file = ProofFile::new("d6-s3".into(), "ab".into(), &inputs(drawn.clone()), &[0; 32]).with_seed(&seed);
        let json = serde_json::to_string(&file).unwrap();
        assert!(json.contains(&format!("\"seed\":\"0x{}\"", hex::encode(seed))), "{json}");
        assert_eq!(file.decode().unwrap().0.indices, drawn);
        // Indices the seed does not draw are refused, naming both.
        let mut other = drawn.clone();
        other[0] = (other[0] + 1) % 40;
        let forged = ProofFile::new("d6-s3".into(), "ab".into(), &inputs(other), &[0; 32]).with_seed(&seed);
        let err = forged.decode().unwrap_err().to_string();
        assert!(err.contains("are not the ones the recorded seed draws"), "{err}");
        // A malformed seed is refused; a file without one (older files) still reads.
        let mut bad = file.clone();
        bad.seed = Some("0x12".into());
        assert!(bad.decode().unwrap_err().to_string().contains("seed"));
        let mut old = file;
        old.seed = None;
        let json = serde_json::to_string(&old).unwrap();
        assert!(!json.contains("seed"));
        assert!(serde_json::from_str::<ProofFile>(&json).unwrap().decode().is_ok());
    }
}
