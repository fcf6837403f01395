//! Linear combinations with constant coefficients on halo2-base's vertical gate
//! `a + b·c = d`, laid out as one chain `| k | m_0 | x_0 | acc_1 | m_1 | x_1 | acc_2 | ...`:
//! `1 + 3n` cells for `n` terms, `3n − 2` when a term with coefficient 1 can start the
//! chain. Values known at compile time stay constants and cost nothing.

use halo2_base::QuantumCell::{Constant, Existing, Witness};

use super::{AssignedValue, Context};
use crate::field::{Field, Fr};

/// A value in a gadget: a circuit cell, or a constant folded into later arithmetic.
#[derive(Clone, Copy, Debug)]
pub enum Value {
    /// A known constant (no cell).
    Const(Fr),
    /// An assigned cell.
    Cell(AssignedValue<Fr>),
}

impl Value {
    /// The value itself.
    pub fn value(&self) -> Fr {
        match self {
            Value::Const(c) => *c,
            Value::Cell(a) => *a.value(),
        }
    }

    /// The value as a cell, loading a constant if needed.
    pub fn into_cell(self, ctx: &mut Context<Fr>) -> AssignedValue<Fr> {
        match self {
            Value::Const(c) => ctx.load_constant(c),
            Value::Cell(a) => a,
        }
    }
}

/// `k + Σ coeff_i · x_i`, constrained; constant terms fold into `k`.
pub fn combine(ctx: &mut Context<Fr>, k: Fr, terms: &[(Fr, Value)]) -> Value {
    let mut constant = k;
    let mut cells: Vec<(Fr, AssignedValue<Fr>)> = Vec::with_capacity(terms.len());
    for (coeff, value) in terms {
        match value {
            Value::Const(c) => constant += *coeff * c,
            Value::Cell(a) if *coeff != Fr::ZERO => cells.push((*coeff, *a)),
            Value::Cell(_) => {}
        }
    }
    if cells.is_empty() {
        return Value::Const(constant);
    }
    // A unit-coefficient term can open the chain when there is no constant.
    let unit = (constant == Fr::ZERO).then(|| cells.iter().position(|(c, _)| *c == Fr::ONE)).flatten();
    if let (Some(i), 1) = (unit, cells.len()) {
        return Value::Cell(cells[i].1);
    }
    let mut region = Vec::with_capacity(1 + 3 * cells.len());
    let mut acc = match unit {
        Some(i) => {
            let (_, first) = cells.remove(i);
            region.push(Existing(first));
            *first.value()
        }
        None => {
            region.push(Constant(constant));
            constant
        }
    };
    for (coeff, x) in &cells {
        acc += *coeff * x.value();
        region.extend([Constant(*coeff), Existing(*x), Witness(acc)]);
    }
    let gates = (0..cells.len()).map(|i| 3 * i as isize);
    Value::Cell(ctx.assign_region_last(region, gates))
}

#[cfg(test)]
mod tests {
    use super::*;
    use halo2_base::gates::circuit::builder::BaseCircuitBuilder;
    use halo2_base::halo2_proofs::dev::MockProver;

    #[test]
    fn combine_matches_native_and_counts_cells() {
        let mut builder = BaseCircuitBuilder::<Fr>::new(false).use_k(8);
        let ctx = builder.main(0);
        let xs: Vec<_> = (1..=4u64).map(|i| ctx.load_witness(Fr::from(i * 11))).collect();
        let before = ctx.advice.len();
        let terms: Vec<_> = xs.iter().enumerate().map(|(i, x)| (Fr::from(i as u64 + 2), Value::Cell(*x))).collect();
        let out = combine(ctx, Fr::from(5), &terms);
        let native = Fr::from(5) + (0..4u64).map(|i| Fr::from(i + 2) * Fr::from((i + 1) * 11)).sum::<Fr>();
        assert_eq!(out.value(), native);
        assert_eq!(ctx.advice.len() - before, 1 + 3 * 4);
        // Unit coefficient and no constant: one term shorter.
        let before = ctx.advice.len();
        let out = combine(ctx, Fr::ZERO, &[(Fr::from(3), Value::Cell(xs[0])), (Fr::ONE, Value::Cell(xs[1]))]);
        assert_eq!(out.value(), Fr::from(3 * 11 + 22));
        assert_eq!(ctx.advice.len() - before, 4);
        // Constants fold away entirely.
        assert!(
            matches!(combine(ctx, Fr::ONE, &[(Fr::from(2), Value::Const(Fr::from(3)))]), Value::Const(c) if c == Fr::from(7))
        );
        builder.calculate_params(Some(9));
        MockProver::run(8, &builder, vec![]).unwrap().assert_satisfied();
    }

    #[test]
    fn combine_output_is_constrained() {
        let mut builder = BaseCircuitBuilder::<Fr>::new(false).use_k(8);
        let ctx = builder.main(0);
        let x = ctx.load_witness(Fr::from(9));
        let Value::Cell(out) = combine(ctx, Fr::from(1), &[(Fr::from(2), Value::Cell(x))]) else { panic!("a cell") };
        out.debug_prank(ctx, Fr::from(20));
        builder.calculate_params(Some(9));
        assert!(MockProver::run(8, &builder, vec![]).unwrap().verify().is_err());
    }
}
