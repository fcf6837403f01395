//! circomlib-compatible Poseidon over BN254 (DESIGN §2): `H_n(x_1..x_n)` permutes the state
//! `[0, x_1, .., x_n]` of width `n + 1` and outputs `state[0]`.
//!
//! This is the native reference for the circuit gadgets and the hash behind every
//! commitment. It runs the optimized schedule of [`OptimizedSpec`] (sparse partial rounds),
//! which tests check against the textbook permutation of [`RawSpec`] and against circomlib's
//! own outputs.

mod grain;
pub mod spec;

pub use spec::{OptimizedSpec, RawSpec, MAX_INPUTS};

use crate::field::{Field, Fr};
use spec::pow5;

/// `H_n` for `N = n` inputs known at compile time (1 to 16).
pub fn hash<const N: usize>(inputs: [Fr; N]) -> Fr {
    const { assert!(N >= 1 && N <= MAX_INPUTS) };
    dispatch(&inputs)
}

/// `H_2(left, right)`: the internal node of every tree.
pub fn hash2(left: Fr, right: Fr) -> Fr {
    permute_first::<3>(OptimizedSpec::for_inputs(2), &[left, right])
}

/// A slice had a length Poseidon cannot hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("Poseidon hashes 1 to {MAX_INPUTS} inputs, got {0}")]
pub struct InputCountError(pub usize);

/// `H_n` over a slice of 1 to 16 inputs.
pub fn hash_slice(inputs: &[Fr]) -> Result<Fr, InputCountError> {
    if inputs.is_empty() || inputs.len() > MAX_INPUTS {
        return Err(InputCountError(inputs.len()));
    }
    Ok(dispatch(inputs))
}

/// `H_n` by the textbook permutation: slow, for tests and auditors.
pub fn hash_reference(inputs: &[Fr]) -> Result<Fr, InputCountError> {
    if inputs.is_empty() || inputs.len() > MAX_INPUTS {
        return Err(InputCountError(inputs.len()));
    }
    let raw = RawSpec::generate(inputs.len());
    let mut state = vec![Fr::ZERO; inputs.len() + 1];
    state[1..].copy_from_slice(inputs);
    raw.permute(&mut state);
    Ok(state[0])
}

fn dispatch(inputs: &[Fr]) -> Fr {
    let spec = OptimizedSpec::for_inputs(inputs.len());
    macro_rules! widths {
        ($($n:literal => $t:literal),*) => {
            match inputs.len() {
                $($n => permute_first::<$t>(spec, inputs),)*
                n => unreachable!("checked by callers: {n} inputs"),
            }
        };
    }
    widths!(1 => 2, 2 => 3, 3 => 4, 4 => 5, 5 => 6, 6 => 7, 7 => 8, 8 => 9, 9 => 10, 10 => 11,
            11 => 12, 12 => 13, 13 => 14, 14 => 15, 15 => 16, 16 => 17)
}

/// Runs the optimized permutation of width `T` on `[0, inputs..]` and returns cell 0.
#[inline]
fn permute_first<const T: usize>(spec: &OptimizedSpec, inputs: &[Fr]) -> Fr {
    debug_assert_eq!(spec.width, T);
    let mut state = [Fr::ZERO; T];
    state[1..].copy_from_slice(inputs);
    let last_first = spec.first_full_constants.len() - 1;
    for (round, constants) in spec.first_full_constants.iter().enumerate() {
        full_round(&mut state, constants, if round == last_first { &spec.pre_sparse } else { &spec.mds });
    }
    for (c, m) in spec.partial_constants.iter().zip(&spec.sparse) {
        let x0 = pow5(state[0] + c);
        // [[m00, row], [col, I]] · (x0, x_1..): cell 0 mixes everything, cell i gets col_i·x0.
        let mut new0 = m.m00 * x0;
        for ((cell, r), c) in state[1..].iter_mut().zip(&m.row).zip(&m.col) {
            new0 += *r * *cell;
            *cell += *c * x0;
        }
        state[0] = new0;
    }
    for constants in &spec.second_full_constants {
        full_round(&mut state, constants, &spec.mds);
    }
    state[0]
}

#[inline(always)]
fn full_round<const T: usize>(state: &mut [Fr; T], constants: &[Fr], matrix: &[Vec<Fr>]) {
    let mut sboxed = [Fr::ZERO; T];
    for i in 0..T {
        sboxed[i] = pow5(state[i] + constants[i]);
    }
    for (cell, row) in state.iter_mut().zip(matrix) {
        *cell = row.iter().zip(&sboxed).fold(Fr::ZERO, |acc, (a, b)| acc + *a * b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optimized_schedule_equals_textbook_permutation_for_every_width() {
        for n in 1..=MAX_INPUTS {
            let inputs: Vec<Fr> = (0..n as u64).map(|i| Fr::from(i * 7919 + 3) * Fr::from(u64::MAX - i)).collect();
            assert_eq!(hash_slice(&inputs).unwrap(), hash_reference(&inputs).unwrap(), "width {}", n + 1);
        }
    }

    #[test]
    fn rejects_bad_input_counts() {
        assert_eq!(hash_slice(&[]), Err(InputCountError(0)));
        assert_eq!(hash_slice(&[Fr::ONE; 17]), Err(InputCountError(17)));
        assert_eq!(hash_reference(&[Fr::ONE; 17]), Err(InputCountError(17)));
    }

    #[test]
    fn hash2_matches_generic_hash() {
        let (a, b) = (Fr::from(11), Fr::from(13));
        assert_eq!(hash2(a, b), hash([a, b]));
        assert_ne!(hash2(a, b), hash2(b, a));
    }
}
