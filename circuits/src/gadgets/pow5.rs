//! A dedicated region for `H_2` (DESIGN §2: every internal tree node), beside halo2-base's
//! flex gate. Three advice columns hold, for each round, the state `[s_0, s_1, s_2]` on one
//! row and the squares `q_j = (cur_j + c_{r,j})^2` on the row below; custom gates on the
//! state row check the round of the textbook permutation ([`RawSpec::permute`]) against
//! the next state two rows down, with `x_j = cur_j + c_{r,j}`:
//!
//! - full round:    `q_j = x_j^2`, `next_i = Σ_j M_ij · q_j^2 · x_j`
//! - partial round: `q_0 = x_0^2`, `next_i = M_i0 · q_0^2 · x_0 + Σ_{j≥1} M_ij · x_j`
//! - first row:     `cur_0 = 0` (the capacity cell of circomlib's layout)
//!
//! The squares keep every gate at degree 4 (halo2-axiom allows 5). Putting them on their
//! own row rather than in three more columns costs rows (131 per `H_2` of 3 cells, instead
//! of 66 of 6) but saves columns, and the EVM verifier pays per column (DESIGN §4). Inputs
//! and output are tied to halo2-base cells by copy constraints.

use halo2_base::halo2_proofs::circuit::{Cell, Region, Value};
use halo2_base::halo2_proofs::plonk::{Advice, Column, ConstraintSystem, Expression, Fixed, Selector};
use halo2_base::halo2_proofs::poly::Rotation;

use crate::field::{Field, Fr};
use crate::poseidon::spec::{pow5, FULL_ROUNDS};
use crate::poseidon::RawSpec;

/// Width of the `H_2` state.
const WIDTH: usize = 3;
/// Advice columns of the region (state rows and square rows alternate in them).
pub const COLUMNS: usize = WIDTH;
/// Fixed columns of the region: round constants (its three selectors come on top).
pub const FIXED_COLUMNS: usize = WIDTH;

/// Rows one `H_2` occupies: a state row and a square row per round, plus the output row.
pub fn rows_per_hash() -> usize {
    2 * spec().round_constants.len() + 1
}

fn spec() -> &'static RawSpec {
    static SPEC: std::sync::OnceLock<RawSpec> = std::sync::OnceLock::new();
    SPEC.get_or_init(|| RawSpec::generate(2))
}

/// Columns and gates of the region.
#[derive(Clone, Debug)]
pub struct Pow5Config {
    state: [Column<Advice>; WIDTH],
    constants: [Column<Fixed>; WIDTH],
    q_full: Selector,
    q_partial: Selector,
    q_first: Selector,
}

/// The values and cells of one laid-out hash.
#[derive(Clone, Copy, Debug)]
pub struct HashCells {
    /// `s_1` and `s_2` of the first row (the inputs).
    pub inputs: [Cell; 2],
    /// `s_0` of the last row (the output).
    pub output: Cell,
}

impl Pow5Config {
    /// Adds the columns and gates.
    pub fn configure(meta: &mut ConstraintSystem<Fr>) -> Self {
        let state = [(); WIDTH].map(|_| meta.advice_column());
        for column in state {
            meta.enable_equality(column);
        }
        let constants = [(); WIDTH].map(|_| meta.fixed_column());
        let (q_full, q_partial, q_first) = (meta.selector(), meta.selector(), meta.selector());
        let mds = spec().mds.clone();

        let round = |meta: &mut ConstraintSystem<Fr>, name: &'static str, selector: Selector, full: bool| {
            let mds = mds.clone();
            meta.create_gate(name, move |meta| {
                let q = meta.query_selector(selector);
                let mut constraints = Vec::with_capacity(2 * WIDTH);
                let mut inputs: Vec<Expression<Fr>> = Vec::with_capacity(WIDTH);
                for j in 0..WIDTH {
                    let x =
                        meta.query_advice(state[j], Rotation::cur()) + meta.query_fixed(constants[j], Rotation::cur());
                    if full || j == 0 {
                        // q_j = x_j^2, and the S-box output x_j^5 = q_j^2 · x_j.
                        let square = meta.query_advice(state[j], Rotation::next());
                        constraints.push(q.clone() * (square.clone() - x.clone() * x.clone()));
                        inputs.push(square.clone() * square * x);
                    } else {
                        inputs.push(x);
                    }
                }
                for i in 0..WIDTH {
                    let next = meta.query_advice(state[i], Rotation(2));
                    let mixed = (0..WIDTH)
                        .map(|j| Expression::Constant(mds[i][j]) * inputs[j].clone())
                        .reduce(|a, b| a + b)
                        .expect("width > 0");
                    constraints.push(q.clone() * (mixed - next));
                }
                constraints
            });
        };
        round(meta, "H_2 full round", q_full, true);
        round(meta, "H_2 partial round", q_partial, false);
        meta.create_gate("H_2 capacity starts at 0", |meta| {
            vec![meta.query_selector(q_first) * meta.query_advice(state[0], Rotation::cur())]
        });
        Self { state, constants, q_full, q_partial, q_first }
    }

    /// Lays out `H_2(left, right)` for each pair from row 0 of `region`, one after another.
    /// `tamper` (soundness tests only) adds 1 to one cell `(hash, round, column)`: columns
    /// 0..3 are the state of that round (round 65 is the output), 3..6 its squares.
    pub fn assign(
        &self,
        region: &mut Region<Fr>,
        pairs: &[(Fr, Fr)],
        tamper: Option<(usize, usize, usize)>,
    ) -> Vec<HashCells> {
        let spec = spec();
        let rounds = spec.round_constants.len();
        let rows = rows_per_hash();
        let half = FULL_ROUNDS / 2;
        pairs
            .iter()
            .enumerate()
            .map(|(h, (left, right))| {
                let base = h * rows;
                let mut state = [Fr::ZERO, *left, *right];
                let mut cells = Vec::with_capacity(rounds + 1);
                for row in 0..=rounds {
                    let bump = |column: usize| match tamper {
                        Some((th, tr, tc)) if (th, tr, tc) == (h, row, column) => Fr::ONE,
                        _ => Fr::ZERO,
                    };
                    let values: [Fr; WIDTH] = std::array::from_fn(|i| state[i] + bump(i));
                    let row_cells: Vec<Cell> = (0..WIDTH)
                        .map(|i| region.assign_advice(self.state[i], base + 2 * row, Value::known(values[i])).cell())
                        .collect();
                    cells.push(row_cells);
                    if row == rounds {
                        break;
                    }
                    let constants = &spec.round_constants[row];
                    for (column, c) in self.constants.iter().zip(constants) {
                        region.assign_fixed(*column, base + 2 * row, *c);
                    }
                    let full = row < half || row >= half + spec.partial_rounds;
                    let selector = if full { self.q_full } else { self.q_partial };
                    selector.enable(region, base + 2 * row).expect("selector in range");
                    if row == 0 {
                        self.q_first.enable(region, base).expect("selector in range");
                    }
                    // The textbook round, as the gates state it.
                    let mut x: [Fr; WIDTH] = std::array::from_fn(|j| state[j] + constants[j]);
                    for (j, v) in x.iter_mut().enumerate() {
                        // Partial rounds leave q_1, q_2 unused: they hold 0.
                        let square = if full || j == 0 { v.square() } else { Fr::ZERO } + bump(WIDTH + j);
                        region.assign_advice(self.state[j], base + 2 * row + 1, Value::known(square));
                        if full || j == 0 {
                            *v = pow5(*v);
                        }
                    }
                    state = std::array::from_fn(|i| (0..WIDTH).fold(Fr::ZERO, |acc, j| acc + spec.mds[i][j] * x[j]));
                }
                HashCells { inputs: [cells[0][1], cells[0][2]], output: cells[rounds][0] }
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
