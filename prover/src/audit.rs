//! The proof-level half of `pogo audit`: a real proof of a random honest round must verify
//! and must stop verifying when any public input, any proof byte or the key changes; key
//! generation must be reproducible. (The circuit-level half, mutation testing, is
//! `pogo_circuits::audit`; the constraint report is `pogo_verifier::audit`.)

use pogo_circuits::config::CircuitConfig;
use pogo_circuits::encoding::{bias, Nibble, UpdateBlock, BLOCK_WEIGHTS};
use pogo_circuits::field::{Field, Fr};
use pogo_circuits::model::{Model, TensorInfo};
use pogo_circuits::update::Update;
use pogo_verifier::keys::sha256_hex;
use pogo_verifier::proof::verify_instances;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde::Serialize;

use crate::prove::{keygen, prove, Keys, ProveError};
use crate::setup::{dev_setup, Setup};
use crate::witness::{assemble, round_trees, WitnessError};

/// One audit check.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// What was checked.
    pub name: String,
    /// Whether it held.
    pub passed: bool,
    /// Counts or hashes behind the verdict.
    pub detail: String,
}

impl Check {
    fn new(name: &str, passed: bool, detail: String) -> Self {
        Check { name: name.into(), passed, detail }
    }
}

/// An audit step failed to run (not a failed check).
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// Keygen or proving failed.
    #[error(transparent)]
    Prove(#[from] ProveError),
    /// The synthetic round could not be assembled.
    #[error(transparent)]
    Witness(#[from] WitnessError),
}

/// A random honest round over `blocks` blocks, the last one partial (1 to
/// `BLOCK_WEIGHTS - 1` weights): old model, new model, update. Deterministic in `seed`.
pub fn synthetic_round(blocks: u64, seed: u64) -> (Model, Model, Update) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let n = (blocks as usize - 1) * BLOCK_WEIGHTS + rng.gen_range(1..BLOCK_WEIGHTS);
    let weights = (0..n).map(|_| bias(rng.gen_range(-1_000_000..1_000_000))).collect();
    let old = Model::new(Default::default(), vec![TensorInfo { name: "w".into(), shape: vec![n] }], weights)
        .expect("a valid synthetic model");
    let update_blocks = (0..blocks)
        .map(|b| {
            let used = (n - b as usize * BLOCK_WEIGHTS).min(BLOCK_WEIGHTS);
            UpdateBlock {
                scale: rng.gen_range(1..1000),
                nibbles: std::array::from_fn(|j| {
                    Nibble::new(if j < used { rng.gen_range(0..16) } else { Nibble::ZERO.get() }).expect("< 16")
                }),
            }
        })
        .collect();
    let update = Update::new(n as u64, update_blocks).expect("a valid synthetic update");
    let new = update.apply(&old).expect("small steps stay in range");
    (old, new, update)
}

/// Proves a random honest round under `keys` and checks that the proof verifies, and that
/// it does not with any public input changed, with any of several proof bytes flipped or
/// the proof cut short, or under `other` (another configuration's keys).
pub fn binding_checks(
    setup: &Setup,
    keys: &Keys,
    other: Option<(&Setup, &Keys)>,
    seed: u64,
) -> Result<Vec<Check>, AuditError> {
    let config = keys.shape.config;
    let blocks = (1u64 << config.depth).min(40);
    let (old, new, update) = synthetic_round(blocks, seed);
    let trees = round_trees(&old, &new, &update, config.depth, &())?;
    let mut rng = ChaCha20Rng::seed_from_u64(seed ^ 0x5eed);
    let indices: Vec<u64> = (0..config.samples).map(|_| rng.gen_range(0..blocks)).collect();
    let (inputs, witness) = assemble(&old, &new, &update, &trees, &indices)?;
    let proof = prove(setup, keys, &inputs, &witness)?;
    let instances = inputs.to_instances();
    let n = instances.len();
    let verifies = |instances: &[Fr], proof: &[u8]| verify_instances(setup, keys.vk(), instances, n, proof).is_ok();

    let mut checks = vec![Check::new(
        "an honest proof verifies",
        verifies(&instances, &proof),
        format!("{} bytes, indices {indices:?}", proof.len()),
    )];
    let changed = (0..n)
        .filter(|&i| {
            let mut edited = instances.clone();
            edited[i] += Fr::ONE;
            !verifies(&edited, &proof)
        })
        .count();
    checks.push(Check::new(
        "each public input changed by one is refused",
        changed == n,
        format!("{changed} of {n} refused"),
    ));
    let positions = [0, 32, proof.len() / 2, proof.len() - 33, proof.len() - 1];
    let flipped = positions
        .iter()
        .filter(|&&at| {
            let mut bad = proof.clone();
            bad[at] ^= 1;
            !verifies(&instances, &bad)
        })
        .count();
    let truncated = !verifies(&instances, &proof[..proof.len() - 32]);
    checks.push(Check::new(
        "a tampered proof is refused",
        flipped == positions.len() && truncated,
        format!("{flipped} of {} flipped bytes refused, truncated proof refused: {truncated}", positions.len()),
    ));
    if let Some((other_setup, other_keys)) = other {
        let refused = verify_instances(other_setup, other_keys.vk(), &instances, n, &proof).is_err();
        checks.push(Check::new(
            "the proof is refused under another configuration's key",
            refused,
            format!("key of {}", other_keys.shape.config.name()),
        ));
    }
    Ok(checks)
}

/// Key generation twice from the same setup gives byte-identical verifying keys.
pub fn keygen_reproducible(setup: &Setup, keys: &Keys) -> Result<Check, AuditError> {
    let again = keygen(setup, &keys.shape)?;
    let (a, b) = (sha256_hex(&keys.vk_bytes()), sha256_hex(&again.vk_bytes()));
    Ok(Check::new("keygen twice gives the same verifying key", a == b, format!("vk sha256 {a} / {b}")))
}

/// Keys of a neighbouring configuration (one level deeper, same public-input count), for
/// the wrong-key check.
pub fn other_configuration(config: &CircuitConfig, seed: u64) -> Result<(Setup, Keys), AuditError> {
    let depth = if config.depth < pogo_circuits::merkle::MAX_DEPTH { config.depth + 1 } else { config.depth - 1 };
    let other = CircuitConfig::new(depth, config.samples).map_err(ProveError::from)?;
    let shape = other.shape().map_err(ProveError::from)?;
    let setup = dev_setup(shape.k, seed);
    let keys = keygen(&setup, &shape)?;
    Ok((setup, keys))
}
