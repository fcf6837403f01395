//! # pogo-circuits
//!
//! The PoGO statement of `DESIGN.md` §2, bit for bit: the BN254 field, circomlib-compatible
//! Poseidon, fixed-point weights and their 7-limb packing into 112-weight blocks, 4-bit
//! updates with per-block scales, Merkle trees over block leaves, and the model and update
//! file formats. Everything here is plain Rust with no proving-system logic, so it is the
//! native reference that gadgets, provers, verifiers and contracts are tested against.

pub mod audit;
pub mod blob_writer;
pub mod checkpoint;
pub mod config;
pub mod encoding;
pub mod field;
pub mod files;
pub mod gadgets;
pub mod merkle;
pub mod model;
pub mod poseidon;
pub mod sampling;
pub mod tree_file;
pub mod update;
pub mod update_circuit;
pub mod update_stream;
