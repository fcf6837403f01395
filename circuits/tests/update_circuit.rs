//! Soundness of `UpdateCircuit{D, S}` with MockProver: honest witnesses satisfy it; each
//! tampering below is made consistent everywhere else (leaves, siblings and roots are
//! recomputed natively) so that exactly the named constraint is what must fail.

use halo2_base::gates::circuit::builder::BaseCircuitBuilder;
use halo2_base::halo2_proofs::dev::{MockProver, VerifyFailure};
use pogo_circuits::encoding::{bias, Nibble, UpdateBlock, BLOCK_WEIGHTS};
use pogo_circuits::field::{Field, Fr};
use pogo_circuits::gadgets::pow5::Tamper;
use pogo_circuits::gadgets::Context;
use pogo_circuits::merkle::MerkleTree;
use pogo_circuits::model::{Model, TensorInfo};
use pogo_circuits::poseidon::RawSpec;
use pogo_circuits::update::Update;
use pogo_circuits::update_circuit::{
    limbs_leaf, nibbles_leaf, synthesize, PublicInputs, SampleCells, SampleWitness, UpdateCircuit, WitnessShapeError,
};
use rand::{Rng, SeedableRng};

const K: usize = 17;
const LOOKUP_BITS: usize = 8;

/// An honest old model, update and new model with `blocks` blocks (the last one partial).
struct Fixture {
    depth: u32,
    old: Model,
    new: Model,
    update: Update,
}

impl Fixture {
    fn new(blocks: u64, depth: u32, seed: u64) -> Self {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let n = (blocks as usize - 1) * BLOCK_WEIGHTS + 37;
        let weights: Vec<u32> = (0..n).map(|_| bias(rng.gen_range(-1_000_000..1_000_000))).collect();
        let old =
            Model::new(Default::default(), vec![TensorInfo { name: "w".into(), shape: vec![n] }], weights).unwrap();
        let update_blocks = (0..blocks)
            .map(|b| {
                let mut block = UpdateBlock { scale: rng.gen_range(1..5000), nibbles: [Nibble::ZERO; BLOCK_WEIGHTS] };
                let used = (n - b as usize * BLOCK_WEIGHTS).min(BLOCK_WEIGHTS);
                for nibble in &mut block.nibbles[..used] {
                    *nibble = Nibble::new(rng.gen_range(0..16)).unwrap();
                }
                block
            })
            .collect();
        let update = Update::new(n as u64, update_blocks).unwrap();
        let new = update.apply(&old).unwrap();
        Self { depth, old, new, update }
    }

    /// Public inputs and witnesses for `indices`, after `edit` changed sample witnesses;
    /// leaves, siblings and roots are recomputed from the edited values. `blocks` overrides
    /// the public nb.
    fn witness(
        &self,
        indices: &[u64],
        blocks: Option<u64>,
        edit: impl Fn(usize, &mut SampleWitness),
    ) -> (PublicInputs, Vec<SampleWitness>) {
        let nb = self.old.block_count();
        let mut leaves = [
            (0..nb).map(|b| self.old.leaf(b)).collect::<Vec<_>>(),
            (0..nb).map(|b| self.new.leaf(b)).collect(),
            (0..nb).map(|b| self.update.leaf(b)).collect(),
        ];
        let mut samples = Vec::new();
        for (j, &i) in indices.iter().enumerate() {
            let paths = [0, 1, 2].map(|t| MerkleTree::build(leaves[t].clone(), self.depth).unwrap().open(i).unwrap());
            let mut w = SampleWitness::from_blocks(
                &self.old.block(i),
                &self.new.block(i),
                &self.update.block(i),
                [&paths[0], &paths[1], &paths[2]],
            );
            edit(j, &mut w);
            leaves[0][i as usize] = limbs_leaf(&w.old_limbs);
            leaves[1][i as usize] = limbs_leaf(&w.new_limbs);
            leaves[2][i as usize] = nibbles_leaf(&w.nibbles, w.scale);
            samples.push(w);
        }
        let trees = leaves.map(|l| MerkleTree::build(l, self.depth).unwrap());
        for (w, &i) in samples.iter_mut().zip(indices) {
            w.old_siblings = trees[0].open(i).unwrap().siblings;
            w.new_siblings = trees[1].open(i).unwrap().siblings;
            w.update_siblings = trees[2].open(i).unwrap().siblings;
        }
        let inputs = PublicInputs {
            old_root: trees[0].root(),
            new_root: trees[1].root(),
            update_root: trees[2].root(),
            blocks: blocks.unwrap_or(nb),
            indices: indices.to_vec(),
        };
        (inputs, samples)
    }
}

/// Runs MockProver; `prank` may change flex-gate cells, `tamper` one cell of the `H_2`
/// region, `instances` override the public ones.
fn mock_with(
    depth: u32,
    inputs: &PublicInputs,
    samples: &[SampleWitness],
    instances: Option<Vec<Fr>>,
    prank: impl FnOnce(&mut Context<Fr>, &[SampleCells]),
    tamper: Option<Tamper>,
) -> Result<(), Vec<VerifyFailure>> {
    let mut builder =
        BaseCircuitBuilder::<Fr>::new(false).use_k(K).use_lookup_bits(LOOKUP_BITS).use_instance_columns(1);
    let laid_out = synthesize(&mut builder, depth, inputs, samples).unwrap();
    prank(builder.main(0), &laid_out.samples);
    builder.calculate_params(Some(20));
    let instances = instances.unwrap_or_else(|| inputs.to_instances());
    let mut circuit = UpdateCircuit::new(builder, laid_out.hashes);
    circuit.tamper = tamper;
    MockProver::run(K as u32, &circuit, vec![instances]).unwrap().verify()
}

fn mock(
    depth: u32,
    inputs: &PublicInputs,
    samples: &[SampleWitness],
    instances: Option<Vec<Fr>>,
    prank: impl FnOnce(&mut Context<Fr>, &[SampleCells]),
) -> Result<(), Vec<VerifyFailure>> {
    mock_with(depth, inputs, samples, instances, prank, None)
}

fn only_range_check_fails(result: Result<(), Vec<VerifyFailure>>) -> bool {
    match result {
        Ok(()) => false,
        Err(failures) => {
            failures.iter().all(|f| matches!(f, VerifyFailure::Lookup { .. } | VerifyFailure::Permutation { .. }))
        }
    }
}

fn gate_fails(result: Result<(), Vec<VerifyFailure>>) -> bool {
    match result {
        Ok(()) => false,
        Err(failures) => failures.iter().any(|f| matches!(f, VerifyFailure::ConstraintNotSatisfied { .. })),
    }
}

#[test]
fn honest_witnesses_satisfy_several_shapes() {
    // nb = 5 (not a power of two) at D = 3; nb = 1 at D = 1; a deeper tree than needed.
    for (blocks, depth, indices) in [(5, 3, vec![4, 0]), (1, 1, vec![0]), (3, 5, vec![1])] {
        let f = Fixture::new(blocks, depth, 1);
        let (inputs, samples) = f.witness(&indices, None, |_, _| {});
        assert_eq!(inputs.old_root, f.old.reference_tree(depth).unwrap().root(), "fixture is honest");
        assert_eq!(inputs.update_root, f.update.reference_tree(depth).unwrap().root());
        mock(depth, &inputs, &samples, None, |_, _| {}).unwrap_or_else(|e| panic!("nb={blocks} D={depth}: {e:?}"));
    }
}

#[test]
fn changed_old_or_new_limb_is_rejected() {
    let f = Fixture::new(5, 3, 2);
    let (inputs, samples) = f.witness(&[2], None, |_, _| {});
    for which in [0, 1] {
        let mut bad = samples.clone();
        let limbs = if which == 0 { &mut bad[0].old_limbs } else { &mut bad[0].new_limbs };
        limbs[17] += Fr::ONE;
        assert!(mock(3, &inputs, &bad, None, |_, _| {}).is_err(), "limb of model {which}");
    }
    // Consistent roots for the changed limb: then the apply rule is what fails.
    let (inputs, samples) = f.witness(&[2], None, |_, w| w.new_limbs[17] += Fr::ONE);
    assert!(gate_fails(mock(3, &inputs, &samples, None, |_, _| {})));
}

#[test]
fn nibble_of_16_is_rejected_by_its_range_check() {
    // (n_10, n_11) = (16, 4) packs to the same q_lo as the honest-looking (0, 5): the update
    // leaf cannot tell them apart, only the nibble range check can.
    let f = Fixture::new(5, 3, 3);
    let set = |n10: u64, n11: u64| {
        move |_: usize, w: &mut SampleWitness| {
            w.nibbles[10] = Fr::from(n10);
            w.nibbles[11] = Fr::from(n11);
            for j in [10, 11] {
                w.new_limbs[j] = w.old_limbs[j] + w.scale * (w.nibbles[j] - Fr::from(8));
            }
        }
    };
    let (inputs, samples) = f.witness(&[1], None, set(0, 5));
    mock(3, &inputs, &samples, None, |_, _| {}).expect("(0, 5) is honest");
    let (tampered_inputs, tampered) = f.witness(&[1], None, set(16, 4));
    assert_eq!(tampered_inputs.update_root, inputs.update_root, "same packed nibbles");
    assert!(only_range_check_fails(mock(3, &tampered_inputs, &tampered, None, |_, _| {})));
}

#[test]
fn nibble_boundary_15_passes_16_fails() {
    let f = Fixture::new(2, 1, 4);
    let set = |value: u64| {
        move |_: usize, w: &mut SampleWitness| {
            w.nibbles[3] = Fr::from(value);
            w.new_limbs[3] = w.old_limbs[3] + w.scale * (Fr::from(value) - Fr::from(8));
        }
    };
    let (inputs, samples) = f.witness(&[0], None, set(15));
    mock(1, &inputs, &samples, None, |_, _| {}).expect("15 is a nibble");
    for value in [16, 17] {
        let (inputs, samples) = f.witness(&[0], None, set(value));
        assert!(only_range_check_fails(mock(1, &inputs, &samples, None, |_, _| {})), "nibble {value}");
    }
}

#[test]
fn scale_of_2_pow_32_is_rejected() {
    let f = Fixture::new(2, 1, 5);
    // All nibbles 8 (q = 0) make u_new = u_old whatever the scale, isolating its range check.
    let set = |scale: u64| {
        move |_: usize, w: &mut SampleWitness| {
            w.scale = Fr::from(scale);
            w.nibbles.iter_mut().for_each(|n| *n = Fr::from(8));
            w.new_limbs = w.old_limbs.clone();
        }
    };
    let (inputs, samples) = f.witness(&[1], None, set((1 << 32) - 1));
    mock(1, &inputs, &samples, None, |_, _| {}).expect("2^32 - 1 is a scale");
    for scale in [1u64 << 32, (1 << 32) + 1] {
        let (inputs, samples) = f.witness(&[1], None, set(scale));
        assert!(only_range_check_fails(mock(1, &inputs, &samples, None, |_, _| {})), "scale {scale}");
    }
}

#[test]
fn limb_of_2_pow_32_is_rejected() {
    let f = Fixture::new(2, 1, 6);
    let set = |limb: u64| {
        move |_: usize, w: &mut SampleWitness| {
            w.nibbles[0] = Fr::from(8);
            w.old_limbs[0] = Fr::from(limb);
            w.new_limbs[0] = Fr::from(limb);
        }
    };
    let (inputs, samples) = f.witness(&[0], None, set((1 << 32) - 1));
    mock(1, &inputs, &samples, None, |_, _| {}).expect("2^32 - 1 is a limb");
    for limb in [1u64 << 32, (1 << 32) + 1] {
        let (inputs, samples) = f.witness(&[0], None, set(limb));
        assert!(only_range_check_fails(mock(1, &inputs, &samples, None, |_, _| {})), "limb {limb}");
    }
}

#[test]
fn new_weight_that_wraps_around_2_pow_32_is_rejected() {
    let f = Fixture::new(2, 1, 7);
    let (inputs, samples) = f.witness(&[0], None, |_, w| {
        // u_old = 2^32 - 2, s = 1, q = +7: the true result 2^32 + 5 does not fit; claim 5.
        w.old_limbs[9] = Fr::from((1u64 << 32) - 2);
        w.scale = Fr::ONE;
        w.nibbles.iter_mut().for_each(|n| *n = Fr::from(8));
        w.nibbles[9] = Fr::from(15);
        w.new_limbs = w.old_limbs.clone();
        w.new_limbs[9] = Fr::from(5);
    });
    assert!(gate_fails(mock(1, &inputs, &samples, None, |_, _| {})));
}

#[test]
fn index_at_or_above_nb_is_rejected() {
    // Trees over 5 blocks, but the public nb says 4: index 4 opens fine and must still fail.
    let f = Fixture::new(5, 3, 8);
    let (inputs, samples) = f.witness(&[4], Some(4), |_, _| {});
    assert!(only_range_check_fails(mock(3, &inputs, &samples, None, |_, _| {})));
    let (inputs, samples) = f.witness(&[3], Some(4), |_, _| {});
    mock(3, &inputs, &samples, None, |_, _| {}).expect("index nb - 1 is fine");
}

#[test]
fn path_bits_that_disagree_with_the_index_are_rejected() {
    let f = Fixture::new(5, 3, 9);
    let (inputs, samples) = f.witness(&[5 - 3], None, |_, _| {});
    let result = mock(3, &inputs, &samples, None, |ctx, cells| {
        let bit = cells[0].bits[1];
        bit.debug_prank(ctx, Fr::ONE - bit.value());
    });
    assert!(result.is_err());
}

#[test]
fn swapped_siblings_are_rejected() {
    let f = Fixture::new(5, 3, 10);
    let (inputs, mut samples) = f.witness(&[1], None, |_, _| {});
    samples[0].update_siblings.swap(0, 1);
    assert!(mock(3, &inputs, &samples, None, |_, _| {}).is_err());
}

#[test]
fn leaf_from_another_block_is_rejected() {
    let f = Fixture::new(5, 3, 11);
    let (inputs, mut samples) = f.witness(&[1], None, |_, _| {});
    let (_, other) = f.witness(&[3], None, |_, _| {});
    samples[0].old_limbs = other[0].old_limbs.clone();
    samples[0].new_limbs = other[0].new_limbs.clone();
    samples[0].nibbles = other[0].nibbles.clone();
    samples[0].scale = other[0].scale;
    assert!(mock(3, &inputs, &samples, None, |_, _| {}).is_err());
}

#[test]
fn public_inputs_other_than_the_witnessed_ones_are_rejected() {
    let f = Fixture::new(5, 3, 12);
    let (inputs, samples) = f.witness(&[0, 3], None, |_, _| {});
    let honest = inputs.to_instances();
    mock(3, &inputs, &samples, Some(honest.clone()), |_, _| {}).expect("honest instances");
    for position in 0..honest.len() {
        let mut instances = honest.clone();
        instances[position] += Fr::ONE;
        assert!(mock(3, &inputs, &samples, Some(instances), |_, _| {}).is_err(), "instance {position}");
    }
}

#[test]
fn malformed_witness_shapes_are_errors_not_panics() {
    let f = Fixture::new(2, 1, 13);
    let (inputs, samples) = f.witness(&[0], None, |_, _| {});
    let mut builder = BaseCircuitBuilder::<Fr>::new(false).use_k(K).use_lookup_bits(LOOKUP_BITS);
    assert_eq!(synthesize(&mut builder, 0, &inputs, &samples).unwrap_err(), WitnessShapeError::Depth(0));
    let mut short = samples.clone();
    short[0].old_siblings.pop();
    assert!(matches!(synthesize(&mut builder, 1, &inputs, &short), Err(WitnessShapeError::Length { .. })));
    assert!(matches!(synthesize(&mut builder, 1, &inputs, &[]), Err(WitnessShapeError::Samples { .. })));
}

#[test]
fn tampered_h2_round_cells_are_rejected() {
    // Every H_2 of the three paths is proven by the round gates: changing any state
    // cell (first row, a full round, a partial round, the output row) or square must fail.
    let f = Fixture::new(5, 3, 14);
    let (inputs, samples) = f.witness(&[2], None, |_, _| {});
    mock_with(3, &inputs, &samples, None, |_, _| {}, None).expect("honest");
    for (hash, row, column) in
        [(0, 0, 0), (0, 0, 1), (4, 2, 2), (8, 30, 0), (8, 30, 1), (2, 65, 0), (5, 64, 2), (1, 3, 4), (6, 20, 3)]
    {
        let result = mock_with(3, &inputs, &samples, None, |_, _| {}, Some(Tamper::Cell { hash, round: row, column }));
        assert!(result.is_err(), "hash {hash} row {row} column {column}");
    }
}

#[test]
fn an_h2_from_another_capacity_is_rejected_by_its_tie_to_zero() {
    // The top hash of the old path (hash D − 1) runs from capacity 1, every round consistent
    // with it, and the claimed old root is that result: only the capacity's copy
    // constraint to the constant 0 objects.
    let f = Fixture::new(5, 3, 16);
    let (mut inputs, samples) = f.witness(&[3], None, |_, _| {});
    let mut builder =
        BaseCircuitBuilder::<Fr>::new(false).use_k(K).use_lookup_bits(LOOKUP_BITS).use_instance_columns(1);
    let top = synthesize(&mut builder, 3, &inputs, &samples).unwrap().hashes[2];
    let mut state = [Fr::ONE, *top.left.value(), *top.right.value()];
    RawSpec::generate(2).permute(&mut state);
    inputs.old_root = state[0];

    let mut builder =
        BaseCircuitBuilder::<Fr>::new(false).use_k(K).use_lookup_bits(LOOKUP_BITS).use_instance_columns(1);
    let laid_out = synthesize(&mut builder, 3, &inputs, &samples).unwrap();
    let out = laid_out.hashes[2].out;
    out.debug_prank(builder.main(0), state[0]);
    builder.calculate_params(Some(20));
    let mut circuit = UpdateCircuit::new(builder, laid_out.hashes);
    circuit.tamper = Some(Tamper::Capacity { hash: 2 });
    let failures = MockProver::run(K as u32, &circuit, vec![inputs.to_instances()]).unwrap().verify().unwrap_err();
    assert!(
        failures.iter().all(|f| matches!(f, VerifyFailure::Permutation { .. })),
        "only a copy constraint fails: {failures:?}"
    );
}

#[test]
fn a_wrong_h2_output_in_the_flex_gate_is_rejected() {
    // The flex-gate cell standing for a level's hash must equal the permutation's output.
    let f = Fixture::new(5, 3, 15);
    let (inputs, samples) = f.witness(&[1], None, |_, _| {});
    let mut builder =
        BaseCircuitBuilder::<Fr>::new(false).use_k(K).use_lookup_bits(LOOKUP_BITS).use_instance_columns(1);
    let laid_out = synthesize(&mut builder, 3, &inputs, &samples).unwrap();
    let out = laid_out.hashes[4].out;
    out.debug_prank(builder.main(0), *out.value() + Fr::ONE);
    builder.calculate_params(Some(20));
    let circuit = UpdateCircuit::new(builder, laid_out.hashes);
    assert!(MockProver::run(K as u32, &circuit, vec![inputs.to_instances()]).unwrap().verify().is_err());
}
