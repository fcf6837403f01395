//! halo2-base gadgets for the statement of DESIGN §2, each beside the native reference it
//! must agree with: circomlib Poseidon ([`poseidon`]), Merkle paths ([`merkle`]), and the
//! linear-combination helper they share ([`linear`]), and custom `H_2` round gates for Merkle
//! levels ([`pow5`]).

pub mod linear;
pub mod merkle;
pub mod poseidon;
pub mod pow5;

pub use halo2_base::{AssignedValue, Context};

use crate::field::Fr;

/// The flex gate over BN254's scalar field.
pub type Gate = halo2_base::gates::GateChip<Fr>;
/// The range chip over BN254's scalar field.
pub type Range = halo2_base::gates::RangeChip<Fr>;
