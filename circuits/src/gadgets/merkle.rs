//! Merkle paths as a gadget (DESIGN §2 Trees): from a leaf, its path bits and siblings to the
//! root, with `H_2(left, right)` at every level. The native reference is
//! [`crate::merkle::MerklePath::compute_root`].

use halo2_base::QuantumCell::{Existing, Witness};

use super::{poseidon, AssignedValue, Context, Gate};
use crate::field::Fr;

/// `(left, right)` = `bit ? (sibling, node) : (node, sibling)`, assuming `bit` is boolean
/// (callers take bits from `num_to_bits`, which constrains them). 12 cells:
/// `diff + node = sibling`, `left = node + bit·diff`, `right + bit·diff = sibling`.
pub fn conditional_swap(
    ctx: &mut Context<Fr>,
    bit: AssignedValue<Fr>,
    node: AssignedValue<Fr>,
    sibling: AssignedValue<Fr>,
) -> (AssignedValue<Fr>, AssignedValue<Fr>) {
    let one = halo2_base::QuantumCell::Constant(<Fr as crate::field::Field>::ONE);
    let diff = *sibling.value() - node.value();
    ctx.assign_region([Witness(diff), one, Existing(node), Existing(sibling)], [0]);
    let diff = ctx.get(-4);
    let left_value = *node.value() + *bit.value() * diff.value();
    let left = ctx.assign_region_last([Existing(node), Existing(bit), Existing(diff), Witness(left_value)], [0]);
    let right_value = *sibling.value() - *bit.value() * diff.value();
    ctx.assign_region([Witness(right_value), Existing(bit), Existing(diff), Existing(sibling)], [0]);
    let right = ctx.get(-4);
    (left, right)
}

/// The root reached from `leaf` with `bits[l]` (1: the node at height `l` is a right child)
/// and `siblings[l]`, hashing each level with the flex-gate Poseidon gadget.
pub fn root(
    ctx: &mut Context<Fr>,
    gate: &Gate,
    leaf: AssignedValue<Fr>,
    bits: &[AssignedValue<Fr>],
    siblings: &[AssignedValue<Fr>],
) -> AssignedValue<Fr> {
    root_with(ctx, leaf, bits, siblings, &mut |ctx, left, right| poseidon::hash(ctx, gate, &[left, right]))
}

/// A level hash `H_2(left, right)` laid out by the caller.
pub type LevelHash<'a> = dyn FnMut(&mut Context<Fr>, AssignedValue<Fr>, AssignedValue<Fr>) -> AssignedValue<Fr> + 'a;

/// [`root`] with the level hash `H_2(left, right)` supplied by the caller (the update
/// circuit proves it with custom round gates, see [`super::pow5`]).
pub fn root_with(
    ctx: &mut Context<Fr>,
    leaf: AssignedValue<Fr>,
    bits: &[AssignedValue<Fr>],
    siblings: &[AssignedValue<Fr>],
    hash2: &mut LevelHash<'_>,
) -> AssignedValue<Fr> {
    assert_eq!(bits.len(), siblings.len(), "one bit per level");
    bits.iter().zip(siblings).fold(leaf, |node, (bit, sibling)| {
        let (left, right) = conditional_swap(ctx, *bit, node, *sibling);
        hash2(ctx, left, right)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::MerkleTree;
    use halo2_base::gates::circuit::builder::BaseCircuitBuilder;
    use halo2_base::gates::GateInstructions;
    use halo2_base::halo2_proofs::dev::MockProver;

    /// Builds the gadget for leaf `index` of a 6-leaf depth-3 tree; `tamper` may change the
    /// witness before the proof is checked. Returns (root matches native, constraints hold).
    fn check(
        index: u64,
        tamper: impl FnOnce(&mut Context<Fr>, &[AssignedValue<Fr>], &[AssignedValue<Fr>]),
    ) -> (bool, bool) {
        check_with(index, |_| {}, tamper)
    }

    fn check_with(
        index: u64,
        edit_path: impl FnOnce(&mut Vec<Fr>),
        tamper: impl FnOnce(&mut Context<Fr>, &[AssignedValue<Fr>], &[AssignedValue<Fr>]),
    ) -> (bool, bool) {
        let leaves: Vec<Fr> = (0..6u64).map(|i| Fr::from(1000 + i)).collect();
        let tree = MerkleTree::build(leaves.clone(), 3).unwrap();
        let mut path = tree.open(index).unwrap();
        edit_path(&mut path.siblings);
        let mut builder = BaseCircuitBuilder::<Fr>::new(false).use_k(13);
        let gate = Gate::default();
        let ctx = builder.main(0);
        let leaf = ctx.load_witness(leaves[index as usize]);
        let index_cell = ctx.load_witness(Fr::from(index));
        let bits = gate.num_to_bits(ctx, index_cell, 3);
        let siblings = ctx.assign_witnesses(path.siblings.clone());
        tamper(ctx, &bits, &siblings);
        let out = root(ctx, &gate, leaf, &bits, &siblings);
        let matches = *out.value() == tree.root();
        let root_cell = ctx.load_witness(tree.root());
        ctx.constrain_equal(&out, &root_cell);
        builder.calculate_params(Some(9));
        (matches, MockProver::run(13, &builder, vec![]).unwrap().verify().is_ok())
    }

    #[test]
    fn every_leaf_reaches_the_native_root() {
        for index in 0..6 {
            assert_eq!(check(index, |_, _, _| {}), (true, true), "leaf {index}");
        }
    }

    #[test]
    fn a_flipped_path_bit_is_rejected() {
        // Flipping a bit cell breaks its tie to the index decomposition.
        let (_, ok) = check(5, |ctx, bits, _| bits[1].debug_prank(ctx, Fr::from(1)));
        assert!(!ok);
    }

    #[test]
    fn a_non_boolean_bit_is_rejected() {
        let (_, ok) = check(4, |ctx, bits, _| bits[0].debug_prank(ctx, Fr::from(2)));
        assert!(!ok);
    }

    #[test]
    fn a_changed_sibling_is_rejected() {
        let (matches, ok) = check_with(2, |s| s[2] = Fr::from(7), |_, _, _| {});
        assert!(!matches && !ok);
        let (matches, ok) = check_with(2, |s| s.swap(0, 1), |_, _, _| {});
        assert!(!matches && !ok, "swapped siblings");
        // A sibling cell changed after it was used: its copies disagree.
        let (_, ok) = check(2, |ctx, _, siblings| siblings[2].debug_prank(ctx, Fr::from(7)));
        assert!(!ok);
    }

    #[test]
    fn swap_outputs_are_constrained() {
        let mut builder = BaseCircuitBuilder::<Fr>::new(false).use_k(8);
        let ctx = builder.main(0);
        let bit = ctx.load_witness(Fr::from(1));
        let (node, sibling) = (ctx.load_witness(Fr::from(3)), ctx.load_witness(Fr::from(9)));
        let (left, right) = conditional_swap(ctx, bit, node, sibling);
        assert_eq!((*left.value(), *right.value()), (Fr::from(9), Fr::from(3)));
        right.debug_prank(ctx, Fr::from(9));
        builder.calculate_params(Some(9));
        assert!(MockProver::run(8, &builder, vec![]).unwrap().verify().is_err());
    }
}
