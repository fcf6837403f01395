//! KZG setups (the "powers of tau" every proof and key depends on).
//!
//! [`dev_setup`] derives the toxic secret from a public seed: anyone can forge proofs
//! against it, so it exists for development, tests and benchmarks only, and is labelled
//! INSECURE wherever it is written. Production setups come from a ceremony (see the ptau
//! importer).

use halo2_base::halo2_proofs::halo2curves::bn256::Bn256;
use halo2_base::halo2_proofs::poly::commitment::Params;
use halo2_base::halo2_proofs::poly::kzg::commitment::ParamsKZG;
use rand::SeedableRng;

/// KZG parameters over BN254.
pub type Setup = ParamsKZG<Bn256>;

/// An INSECURE setup of `2^k` powers whose secret is derived from `seed`.
pub fn dev_setup(k: u32, seed: u64) -> Setup {
    ParamsKZG::setup(k, rand_chacha::ChaCha20Rng::seed_from_u64(seed))
}

/// The setup's bytes (halo2's own format).
pub fn to_bytes(setup: &Setup) -> Vec<u8> {
    let mut bytes = Vec::new();
    setup.write(&mut bytes).expect("writing to memory cannot fail");
    bytes
}

/// Reads a setup written by [`to_bytes`].
pub fn from_bytes(mut bytes: &[u8]) -> std::io::Result<Setup> {
    Setup::read(&mut bytes)
}
