//! # pogo-prover
//!
//! The miner's heavy side of PoGO: commitments to 32-bit models and 4-bit updates built on
//! every core (bit-identical to the native reference in `pogo-circuits`), witness assembly,
//! KZG setups, keys and halo2 proofs of `UpdateCircuit{D, S}`.

pub mod audit;
pub mod commit;
pub mod gpu;
pub mod keys;
pub mod prove;
pub mod ptau;
pub mod setup;
pub mod stream;
pub mod witness;
