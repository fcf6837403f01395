//! KZG setups (the "powers of tau" every proof and key depends on).
//!
//! [`dev_setup`] derives the toxic secret from a public seed: anyone can forge proofs
//! against it, so it exists for development, tests and benchmarks only, and is labelled
//! INSECURE wherever it is written.

use halo2_base::halo2_proofs::poly::commitment::Params;
use rand::SeedableRng;

pub use pogo_verifier::keys::Setup;

/// An INSECURE setup of `2^k` powers whose secret is derived from `seed`.
pub fn dev_setup(k: u32, seed: u64) -> Setup {
    Setup::setup(k, rand_chacha::ChaCha20Rng::seed_from_u64(seed))
}

/// The setup's bytes (halo2's own format).
pub fn to_bytes(setup: &Setup) -> Vec<u8> {
    let mut bytes = Vec::new();
    setup.write(&mut bytes).expect("writing to memory cannot fail");
    bytes
}
