//! # pogo-verifier
//!
//! The light, checking side of PoGO. It depends only on the native reference in
//! `pogo-circuits` (no rayon, no CUDA), so it runs anywhere a verifier or auditor does.

pub mod keys;
pub mod proof;
pub mod rebuild;
