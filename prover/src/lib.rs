//! # pogo-prover
//!
//! The miner's heavy side of PoGO: commitments to 32-bit models and 4-bit updates built on
//! every core, bit-identical to the native reference in `pogo-circuits`.

pub mod commit;
