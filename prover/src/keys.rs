//! Writing and loading a configuration's key folder (`params/d{D}-s{S}/`); the manifest and
//! its checks are the verifier's ([`pogo_verifier::keys`]), the prover adds the proving key.

use std::path::Path;

use halo2_base::halo2_proofs::plonk::ProvingKey;
use halo2_base::halo2_proofs::SerdeFormat;
use pogo_circuits::files::write_atomic;
use pogo_circuits::update_circuit::UpdateCircuit;
use pogo_verifier::keys::{
    io_error, parse_untrusted, read_checked, sha256_hex, FileHashes, KeysError, Manifest, SetupOrigin, MANIFEST_FILE,
    MANIFEST_FORMAT, PK_FILE, SETUP_FILE, VK_FILE,
};

use crate::prove::Keys;
use crate::setup::{self, Setup};

/// Writes setup, keys and manifest into `dir` (created if needed); each file atomically,
/// the manifest last, so a folder with a manifest is complete.
pub fn write(dir: &Path, setup: &Setup, origin: SetupOrigin, keys: &Keys) -> Result<Manifest, KeysError> {
    std::fs::create_dir_all(dir).map_err(io_error(dir))?;
    let setup_bytes = setup::to_bytes(setup);
    let vk_bytes = keys.vk_bytes();
    let pk_bytes = keys.pk.to_bytes(SerdeFormat::RawBytesUnchecked);
    for (name, bytes) in [(SETUP_FILE, &setup_bytes), (VK_FILE, &vk_bytes), (PK_FILE, &pk_bytes)] {
        let path = dir.join(name);
        write_atomic(&path, bytes).map_err(io_error(&path))?;
    }
    let manifest = Manifest {
        format: MANIFEST_FORMAT.into(),
        shape: keys.shape,
        circuit_params: keys.params.clone(),
        break_points: keys.break_points.clone(),
        setup: origin,
        sha256: FileHashes { setup: sha256_hex(&setup_bytes), vk: sha256_hex(&vk_bytes), pk: sha256_hex(&pk_bytes) },
    };
    let path = dir.join(MANIFEST_FILE);
    let json = serde_json::to_vec_pretty(&manifest).expect("manifests serialize");
    write_atomic(&path, &json).map_err(io_error(&path))?;
    Ok(manifest)
}

/// Loads setup and proving keys from `dir`, checking every hash first.
pub fn load(dir: &Path) -> Result<(Manifest, Setup, Keys), KeysError> {
    let manifest = Manifest::load(dir)?;
    let setup = manifest.load_setup(dir)?;
    let path = dir.join(PK_FILE);
    let bytes = read_checked(&path, &manifest.sha256.pk)?;
    pogo_verifier::keys::check_key_header(&bytes, &manifest.circuit_params).map_err(|reason| KeysError::Malformed {
        path: path.display().to_string(),
        what: "proving key",
        reason,
    })?;
    let params = manifest.circuit_params.clone();
    let pk = parse_untrusted(&path, "proving key", || {
        ProvingKey::read::<_, UpdateCircuit>(&mut bytes.as_slice(), SerdeFormat::RawBytesUnchecked, params)
    })?;
    let keys = Keys {
        shape: manifest.shape,
        params: manifest.circuit_params.clone(),
        break_points: manifest.break_points.clone(),
        pk,
    };
    Ok((manifest, setup, keys))
}
