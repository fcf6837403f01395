//! # pogo-verifier
//!
//! The checking side of PoGO: rebuilding committed updates with the sequential native
//! reference, native halo2 proof verification, key folders and proof files. It has no
//! parallel code of its own and no CUDA (halo2-axiom brings rayon in transitively), and
//! the prover depends on its types, never the reverse.

pub mod audit;
pub mod evm;
pub mod fraud;
pub mod heldout;
pub mod keys;
pub mod proof;
pub mod rebuild;
pub mod rounds;
