//! `H_2` (DESIGN §2: every internal tree node) as a custom gate on halo2-base's single
//! flex-gate advice column, in the rows after the flex gate's. One hash is a run of rows
//! in that column; each round starts with the state `s_0, s_1, s_2` on three consecutive
//! rows, followed by the squares `q_j = (s_j + c_{r,j})^2` of the S-box inputs (three in a
//! full round, one in a partial round), followed by the next round's state. The round
//! constants sit in halo2-base's constants column beside the state (rows the flex gate's
//! constants never reach). With `x_j = s_j + c_{r,j}` the gates check the textbook round
//! ([`RawSpec::permute`]):
//!
//! - full round (6 rows):    `q_j = x_j^2`, `next_i = Σ_j M_ij · q_j^2 · x_j`
//! - partial round (4 rows): `q_0 = x_0^2`, `next_i = M_i0 · q_0^2 · x_0 + Σ_{j≥1} M_ij · x_j`
//!
//! so every gate has degree 4 (halo2-axiom allows 5). The capacity cell `s_0` of the first
//! row, the two inputs and the output are tied to halo2-base cells (a constant 0, the
//! level's inputs and its claimed hash) by copy constraints.
//!
//! Why one column: the EVM verifier pays per committed column (DESIGN §4: ~36k gas and
//! ~1.3 KB of code each; docs/BENCHMARKS.md). Sharing the flex gate's column and constants
//! column leaves the verifier one advice column, the lookup, and the fixed columns of the
//! selectors; the price is rows (279 per hash), not columns.

use halo2_base::halo2_proofs::circuit::{Cell, Region, Value};
use halo2_base::halo2_proofs::plonk::{Advice, Column, ConstraintSystem, Expression, Fixed, Selector};
use halo2_base::halo2_proofs::poly::Rotation;

use crate::field::{Field, Fr};
use crate::poseidon::spec::{pow5, FULL_ROUNDS};
use crate::poseidon::RawSpec;

/// Width of the `H_2` state.
const WIDTH: usize = 3;
/// Rows of a full round: state and three squares.
const FULL_ROUND_ROWS: usize = 2 * WIDTH;
/// Rows of a partial round: state and one square.
const PARTIAL_ROUND_ROWS: usize = WIDTH + 1;

/// Rows one `H_2` occupies: its rounds plus the output state.
pub fn rows_per_hash() -> usize {
    let spec = spec();
    FULL_ROUNDS * FULL_ROUND_ROWS + spec.partial_rounds * PARTIAL_ROUND_ROWS + WIDTH
}

/// Rounds of the `H_2` permutation (the output state is "round" `rounds()` in `tamper`).
pub fn rounds() -> usize {
    spec().round_constants.len()
}

fn spec() -> &'static RawSpec {
    static SPEC: std::sync::OnceLock<RawSpec> = std::sync::OnceLock::new();
    SPEC.get_or_init(|| RawSpec::generate(2))
}

/// The gates, on columns owned by halo2-base.
#[derive(Clone, Debug)]
pub struct Pow5Config {
    column: Column<Advice>,
    constants: Column<Fixed>,
    q_full: Selector,
    q_partial: Selector,
}

/// A deliberate fault in the `H_2` rows (soundness tests and `pogo audit` only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tamper {
    /// Add 1 to cell `column` of round `round` of hash `hash`: columns 0..3 are the state
    /// (round 65 is the output), 3..6 the squares (a partial round has only the first).
    Cell {
        /// Which hash, in layout order.
        hash: usize,
        /// Which round.
        round: usize,
        /// Which cell of the round.
        column: usize,
    },
    /// Run hash `hash` from capacity 1 instead of 0, every round consistent with it: only
    /// the capacity's tie to the constant 0 can object.
    Capacity {
        /// Which hash.
        hash: usize,
    },
}

/// The cells of one laid-out hash.
#[derive(Clone, Copy, Debug)]
pub struct HashCells {
    /// `s_0` of the first row (the capacity, 0).
    pub capacity: Cell,
    /// `s_1` and `s_2` of the first row (the inputs).
    pub inputs: [Cell; 2],
    /// `s_0` of the last row (the output).
    pub output: Cell,
}

impl Pow5Config {
    /// Adds the gates on `column` (advice, equality enabled) with round constants read from
    /// `constants`.
    pub fn configure(meta: &mut ConstraintSystem<Fr>, column: Column<Advice>, constants: Column<Fixed>) -> Self {
        let (q_full, q_partial) = (meta.selector(), meta.selector());
        let mds = spec().mds.clone();
        let round = |meta: &mut ConstraintSystem<Fr>, name: &'static str, selector: Selector, full: bool| {
            let mds = mds.clone();
            let rows = if full { FULL_ROUND_ROWS } else { PARTIAL_ROUND_ROWS };
            meta.create_gate(name, move |meta| {
                let q = meta.query_selector(selector);
                let cell = |meta: &mut halo2_base::halo2_proofs::plonk::VirtualCells<Fr>, at: usize| {
                    meta.query_advice(column, Rotation(at as i32))
                };
                let mut constraints = Vec::with_capacity(2 * WIDTH);
                let mut inputs: Vec<Expression<Fr>> = Vec::with_capacity(WIDTH);
                for j in 0..WIDTH {
                    let x = cell(meta, j) + meta.query_fixed(constants, Rotation(j as i32));
                    if full || j == 0 {
                        // q_j = x_j^2, and the S-box output x_j^5 = q_j^2 · x_j.
                        let square = cell(meta, WIDTH + j);
                        constraints.push(q.clone() * (square.clone() - x.clone() * x.clone()));
                        inputs.push(square.clone() * square * x);
                    } else {
                        inputs.push(x);
                    }
                }
                for (i, row) in mds.iter().enumerate() {
                    let next = cell(meta, rows + i);
                    let mixed = row
                        .iter()
                        .zip(&inputs)
                        .map(|(m, input)| Expression::Constant(*m) * input.clone())
                        .reduce(|a, b| a + b)
                        .expect("width > 0");
                    constraints.push(q.clone() * (mixed - next));
                }
                constraints
            });
        };
        round(meta, "H_2 full round", q_full, true);
        round(meta, "H_2 partial round", q_partial, false);
        Self { column, constants, q_full, q_partial }
    }

    /// Lays out `H_2(left, right)` for each pair, one after another from row `start`;
    /// `tamper` is for soundness tests only.
    pub fn assign(
        &self,
        region: &mut Region<Fr>,
        start: usize,
        pairs: &[(Fr, Fr)],
        tamper: Option<Tamper>,
    ) -> Vec<HashCells> {
        let spec = spec();
        let rounds = spec.round_constants.len();
        let half = FULL_ROUNDS / 2;
        pairs
            .iter()
            .enumerate()
            .map(|(h, (left, right))| {
                let mut at = start + h * rows_per_hash();
                let bump = |round: usize, column: usize| match tamper {
                    Some(Tamper::Cell { hash, round: r, column: c }) if (hash, r, c) == (h, round, column) => Fr::ONE,
                    _ => Fr::ZERO,
                };
                let capacity = if tamper == Some(Tamper::Capacity { hash: h }) { Fr::ONE } else { Fr::ZERO };
                let column = self.column;
                let put = |region: &mut Region<Fr>, row: usize, value: Fr| {
                    region.assign_advice(column, row, Value::known(value)).cell()
                };
                let mut state = [capacity, *left, *right];
                let mut first = None;
                for (round, constants) in spec.round_constants.iter().enumerate() {
                    let cells: [Cell; WIDTH] = std::array::from_fn(|i| put(region, at + i, state[i] + bump(round, i)));
                    first.get_or_insert(cells);
                    let full = round < half || round >= half + spec.partial_rounds;
                    // The textbook round, as the gates state it.
                    let mut x: [Fr; WIDTH] = std::array::from_fn(|j| state[j] + constants[j]);
                    let boxed = if full { WIDTH } else { 1 };
                    for (j, v) in x.iter_mut().enumerate().take(boxed) {
                        put(region, at + WIDTH + j, v.square() + bump(round, WIDTH + j));
                        *v = pow5(*v);
                    }
                    for (j, c) in constants.iter().enumerate() {
                        region.assign_fixed(self.constants, at + j, *c);
                    }
                    let selector = if full { self.q_full } else { self.q_partial };
                    selector.enable(region, at).expect("selector in range");
                    state = std::array::from_fn(|i| (0..WIDTH).fold(Fr::ZERO, |acc, j| acc + spec.mds[i][j] * x[j]));
                    at += if full { FULL_ROUND_ROWS } else { PARTIAL_ROUND_ROWS };
                }
                let output = put(region, at, state[0] + bump(rounds, 0));
                for (i, s) in state.iter().enumerate().skip(1) {
                    put(region, at + i, *s + bump(rounds, i));
                }
                let first = first.expect("at least one round");
                HashCells { capacity: first[0], inputs: [first[1], first[2]], output }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use crate::field::{Field, Fr};
    use crate::poseidon::hash2;
    use crate::update_circuit::{HashCall, UpdateCircuit};
    use halo2_base::gates::circuit::builder::BaseCircuitBuilder;
    use halo2_base::halo2_proofs::dev::MockProver;
    use proptest::prelude::*;

    /// The region proving `H_2` of `pairs`, with `claims[i]` as the flex-gate output cell.
    fn check(pairs: &[(Fr, Fr)], claims: &[Fr]) -> bool {
        let mut builder = BaseCircuitBuilder::<Fr>::new(false).use_k(10).use_instance_columns(1);
        let ctx = builder.main(0);
        let calls: Vec<HashCall> = pairs
            .iter()
            .zip(claims)
            .map(|((l, r), out)| HashCall {
                zero: ctx.load_zero(),
                left: ctx.load_witness(*l),
                right: ctx.load_witness(*r),
                out: ctx.load_witness(*out),
            })
            .collect();
        builder.calculate_params(Some(20));
        let circuit = UpdateCircuit::new(builder, calls);
        MockProver::run(10, &circuit, vec![vec![]]).unwrap().verify().is_ok()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4))]
        #[test]
        fn region_matches_native_h2_on_random_inputs(seed in any::<u64>()) {
            let pairs: Vec<(Fr, Fr)> = (0..3u64)
                .map(|i| (Fr::from(seed ^ i) * Fr::from(seed | 3), Fr::from(seed.rotate_left(i as u32 + 7)) - Fr::ONE))
                .collect();
            let honest: Vec<Fr> = pairs.iter().map(|(l, r)| hash2(*l, *r)).collect();
            prop_assert!(check(&pairs, &honest));
            let mut wrong = honest.clone();
            wrong[1] += Fr::ONE;
            prop_assert!(!check(&pairs, &wrong));
        }
    }
}
