//! Poseidon instances as circomlib fixes them (DESIGN §2): width `t = n + 1` for `n ≤ 16`
//! inputs, S-box `x^5`, `R_F = 8`, `R_P` from circomlib's table, Grain constants and a Cauchy
//! MDS matrix; plus the equivalent "optimized" schedule (Poseidon paper, appendix B) that the
//! fast native hasher and the gadget both use.

use std::sync::OnceLock;

use super::grain::Grain;
use crate::field::{Field, Fr};

/// Largest number of inputs (`H_16`, width 17).
pub const MAX_INPUTS: usize = 16;
/// Full rounds, half before and half after the partial rounds.
pub const FULL_ROUNDS: usize = 8;
/// circomlib's partial rounds for widths `t = 2..=17` (index `t - 2`).
pub const PARTIAL_ROUNDS: [usize; MAX_INPUTS] = [56, 57, 56, 60, 60, 63, 64, 63, 60, 66, 60, 65, 70, 60, 64, 68];

/// A `t × t` matrix, row-major.
pub type Matrix = Vec<Vec<Fr>>;

/// The instance exactly as the Poseidon paper defines it: every round adds `t` constants,
/// applies the S-box (to all cells in full rounds, to cell 0 in partial rounds) and
/// multiplies by the MDS matrix.
#[derive(Clone, Debug)]
pub struct RawSpec {
    /// State width `t`.
    pub width: usize,
    /// Partial rounds `R_P`.
    pub partial_rounds: usize,
    /// `R_F + R_P` rows of `t` constants.
    pub round_constants: Vec<Vec<Fr>>,
    /// The Cauchy MDS matrix `M[i][j] = 1 / (x_i + y_j)`.
    pub mds: Matrix,
}

/// A sparse matrix `[[m00, row], [col, I]]` that replaces the MDS in one partial round.
#[derive(Clone, Debug)]
pub struct SparseMatrix {
    /// Top-left entry.
    pub m00: Fr,
    /// First row without `m00` (`t - 1` entries).
    pub row: Vec<Fr>,
    /// First column without `m00` (`t - 1` entries).
    pub col: Vec<Fr>,
}

/// The same permutation rewritten so partial rounds cost `O(t)`:
/// - rounds `0..R_F/2`: add `first_full_constants[r]`, S-box all, multiply by `mds`
///   (the last of them by `pre_sparse` instead);
/// - partial round `p`: add `partial_constants[p]` to cell 0, S-box cell 0, multiply by
///   `sparse[p]`;
/// - rounds `R_F/2..R_F`: add `second_full_constants[r]`, S-box all, multiply by `mds`.
#[derive(Clone, Debug)]
pub struct OptimizedSpec {
    /// State width `t`.
    pub width: usize,
    /// Constants of the first `R_F / 2` full rounds.
    pub first_full_constants: Vec<Vec<Fr>>,
    /// One constant per partial round, added to cell 0.
    pub partial_constants: Vec<Fr>,
    /// Constants of the last `R_F / 2` full rounds.
    pub second_full_constants: Vec<Vec<Fr>>,
    /// The MDS matrix.
    pub mds: Matrix,
    /// The matrix of the last full round before the partial rounds.
    pub pre_sparse: Matrix,
    /// One sparse matrix per partial round.
    pub sparse: Vec<SparseMatrix>,
}

impl RawSpec {
    /// Generates circomlib's instance for `inputs` inputs (1 to 16) with Grain.
    pub fn generate(inputs: usize) -> Self {
        assert!((1..=MAX_INPUTS).contains(&inputs), "Poseidon takes 1 to {MAX_INPUTS} inputs");
        let width = inputs + 1;
        let partial_rounds = PARTIAL_ROUNDS[inputs - 1];
        let mut grain = Grain::new(width, FULL_ROUNDS, partial_rounds);
        let round_constants = (0..FULL_ROUNDS + partial_rounds)
            .map(|_| (0..width).map(|_| grain.next_field_element()).collect())
            .collect();
        // The Cauchy matrix from 2t further draws; circomlib's instances need no redraw
        // (the vector tests would fail otherwise).
        let seeds: Vec<Fr> = (0..2 * width).map(|_| grain.next_field_element_reduced()).collect();
        let (xs, ys) = seeds.split_at(width);
        let mds = xs
            .iter()
            .map(|x| ys.iter().map(|y| (*x + y).invert().expect("Cauchy entries are non-zero")).collect())
            .collect();
        Self { width, partial_rounds, round_constants, mds }
    }

    /// The textbook permutation, round by round (the slow reference for [`OptimizedSpec`]).
    pub fn permute(&self, state: &mut [Fr]) {
        assert_eq!(state.len(), self.width);
        let half = FULL_ROUNDS / 2;
        for (round, constants) in self.round_constants.iter().enumerate() {
            for (cell, c) in state.iter_mut().zip(constants) {
                *cell += c;
            }
            let full = round < half || round >= half + self.partial_rounds;
            let sboxed = if full { self.width } else { 1 };
            state[..sboxed].iter_mut().for_each(|x| *x = pow5(*x));
            let mixed = mat_vec(&self.mds, state);
            state.copy_from_slice(&mixed);
        }
    }
}

impl OptimizedSpec {
    /// Derives the optimized schedule from the textbook instance.
    pub fn from_raw(raw: &RawSpec) -> Self {
        let t = raw.width;
        let half = FULL_ROUNDS / 2;
        let (first, rest) = raw.round_constants.split_at(half);
        let (partial, second) = rest.split_at(raw.partial_rounds);

        // Constants: in a partial round, the constants of cells 1.. commute with the S-box,
        // so they pass through the MDS into the next round: c_{p+1} += M · (0, c_p[1..]).
        let mut partial_constants = Vec::with_capacity(raw.partial_rounds);
        let mut carry = vec![Fr::ZERO; t];
        for constants in partial {
            let mut c: Vec<Fr> = constants.iter().zip(&carry).map(|(a, b)| *a + b).collect();
            partial_constants.push(c[0]);
            c[0] = Fr::ZERO;
            carry = mat_vec(&raw.mds, &c);
        }
        let mut second_full_constants = second.to_vec();
        for (c, extra) in second_full_constants[0].iter_mut().zip(&carry) {
            *c += extra;
        }

        // Matrices: factor each partial round's matrix as S · A with A = diag(1, Â), which
        // commutes with the cell-0 S-box and constant, so A folds into the matrix before it.
        // Going backwards from the last partial round: cur = S_p · A_p, previous = A_p · M.
        let mut sparse = Vec::with_capacity(raw.partial_rounds);
        let mut cur = raw.mds.clone();
        for _ in 0..raw.partial_rounds {
            let hat: Matrix = cur[1..].iter().map(|r| r[1..].to_vec()).collect();
            let hat_inv = invert(&hat);
            // row' = row · Â⁻¹ so that row' · Â = row.
            let row: Vec<Fr> =
                (0..t - 1).map(|j| (0..t - 1).fold(Fr::ZERO, |acc, k| acc + cur[0][k + 1] * hat_inv[k][j])).collect();
            let col: Vec<Fr> = cur[1..].iter().map(|r| r[0]).collect();
            sparse.push(SparseMatrix { m00: cur[0][0], row, col });
            let mut a = identity(t);
            for (i, hat_row) in hat.into_iter().enumerate() {
                a[i + 1][1..].copy_from_slice(&hat_row);
            }
            cur = mat_mul(&a, &raw.mds);
        }
        sparse.reverse();

        Self {
            width: t,
            first_full_constants: first.to_vec(),
            partial_constants,
            second_full_constants,
            mds: raw.mds.clone(),
            pre_sparse: cur,
            sparse,
        }
    }

    /// The cached schedule for `inputs` inputs (1 to 16).
    pub fn for_inputs(inputs: usize) -> &'static OptimizedSpec {
        static SPECS: [OnceLock<OptimizedSpec>; MAX_INPUTS] = [const { OnceLock::new() }; MAX_INPUTS];
        assert!((1..=MAX_INPUTS).contains(&inputs), "Poseidon takes 1 to {MAX_INPUTS} inputs");
        SPECS[inputs - 1].get_or_init(|| OptimizedSpec::from_raw(&RawSpec::generate(inputs)))
    }
}

/// `x^5` with two squarings and a multiplication.
#[inline(always)]
pub fn pow5(x: Fr) -> Fr {
    let x2 = x.square();
    x2.square() * x
}

fn mat_vec(m: &Matrix, v: &[Fr]) -> Vec<Fr> {
    m.iter().map(|row| row.iter().zip(v).fold(Fr::ZERO, |acc, (a, b)| acc + *a * b)).collect()
}

fn mat_mul(a: &Matrix, b: &Matrix) -> Matrix {
    let n = b.len();
    a.iter()
        .map(|row| (0..b[0].len()).map(|j| (0..n).fold(Fr::ZERO, |acc, k| acc + row[k] * b[k][j])).collect())
        .collect()
}

fn identity(n: usize) -> Matrix {
    (0..n).map(|i| (0..n).map(|j| if i == j { Fr::ONE } else { Fr::ZERO }).collect()).collect()
}

/// Gauss-Jordan inversion; every square submatrix of an MDS matrix is invertible.
fn invert(m: &Matrix) -> Matrix {
    let n = m.len();
    let mut a = m.clone();
    let mut inv = identity(n);
    for col in 0..n {
        let pivot = (col..n).find(|&r| !bool::from(a[r][col].is_zero())).expect("MDS submatrices are invertible");
        a.swap(col, pivot);
        inv.swap(col, pivot);
        let scale = a[col][col].invert().expect("non-zero pivot");
        for j in 0..n {
            a[col][j] *= scale;
            inv[col][j] *= scale;
        }
        for r in (0..n).filter(|&r| r != col) {
            let factor = a[r][col];
            if bool::from(factor.is_zero()) {
                continue;
            }
            for j in 0..n {
                let (ac, ic) = (a[col][j], inv[col][j]);
                a[r][j] -= factor * ac;
                inv[r][j] -= factor * ic;
            }
        }
    }
    inv
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inversion_gives_identity() {
        let raw = RawSpec::generate(4);
        assert_eq!(mat_mul(&raw.mds, &invert(&raw.mds)), identity(5));
    }

    #[test]
    fn grain_constants_are_deterministic_and_distinct_per_width() {
        let a = RawSpec::generate(2);
        let b = RawSpec::generate(2);
        let c = RawSpec::generate(3);
        assert_eq!(a.round_constants, b.round_constants);
        assert_ne!(a.round_constants[0][0], c.round_constants[0][0]);
        assert_eq!(a.round_constants.len(), FULL_ROUNDS + 57);
        assert_eq!(c.round_constants.len(), FULL_ROUNDS + 56);
    }
}
