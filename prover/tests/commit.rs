//! The parallel commitment builder gives exactly the native reference's roots and openings.

use pogo_circuits::encoding::{block_count, Nibble, UpdateBlock, BLOCK_WEIGHTS};
use pogo_circuits::merkle::{default_depth, MerkleError, MerkleTree};
use pogo_circuits::model::{Model, TensorInfo};
use pogo_circuits::update::Update;
use pogo_prover::commit::{
    apply_incremental, model_leaves, model_tree, par_next_layer, update_root, update_tree, IncrementalError, Progress,
};
use proptest::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};

fn model(weights: Vec<u32>) -> Model {
    let tensors = vec![TensorInfo { name: "w".into(), shape: vec![weights.len()] }];
    Model::new(Default::default(), tensors, weights).unwrap()
}

fn reference_tree(model: &Model, depth: u32) -> MerkleTree {
    model.reference_tree(depth).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn model_roots_match_reference(
        weights in prop::collection::vec(any::<u32>(), 1..(BLOCK_WEIGHTS * 9)),
        extra_depth in 0u32..4,
    ) {
        let m = model(weights);
        let depth = default_depth(m.block_count()) + extra_depth;
        let fast = model_tree(&m, Some(depth), &()).unwrap();
        let reference = reference_tree(&m, depth);
        prop_assert_eq!(fast.root(), reference.root());
        for b in 0..m.block_count() {
            prop_assert_eq!(fast.open(b).unwrap(), reference.open(b).unwrap());
        }
    }

    #[test]
    fn update_roots_match_reference(blocks in 1u64..12, seed in any::<u64>(), extra_depth in 0u32..3) {
        let weights = blocks * BLOCK_WEIGHTS as u64 - seed % BLOCK_WEIGHTS as u64;
        let nb = block_count(weights);
        let update = Update::new(weights, (0..nb).map(|b| UpdateBlock {
            scale: (seed ^ b) as u32,
            nibbles: std::array::from_fn(|j| {
                if b * BLOCK_WEIGHTS as u64 + (j as u64) < weights {
                    Nibble::new(((seed >> (j % 60)) as u8 ^ j as u8) & 15).unwrap()
                } else {
                    Nibble::ZERO
                }
            }),
        }).collect()).unwrap();
        let depth = default_depth(nb) + extra_depth;
        let fast = update_tree(&update, Some(depth), &()).unwrap();
        let reference = update.reference_tree(depth).unwrap();
        prop_assert_eq!(fast.root(), reference.root());
    }
}

#[test]
fn one_block_and_large_layers_match_reference() {
    // nb = 1 (the smallest tree) and a level wide enough to take the parallel path.
    let single = model(vec![7; 3]);
    assert_eq!(model_tree(&single, None, &()).unwrap().root(), reference_tree(&single, 1).root());
    let big = model((0..(5000 * BLOCK_WEIGHTS as u32 - 17)).collect());
    let fast = model_tree(&big, None, &()).unwrap();
    assert_eq!(fast.depth(), 13);
    assert_eq!(fast.root(), reference_tree(&big, 13).root());
    let layer = model_leaves(big.weights(), &());
    assert_eq!(par_next_layer(&layer, 5u64.into()), pogo_circuits::merkle::next_layer(&layer, 5u64.into()));
}

#[test]
fn progress_counts_every_block_and_bad_depths_fail_early() {
    struct Count(AtomicU64);
    impl Progress for Count {
        fn advance(&self, blocks: u64) {
            self.0.fetch_add(blocks, Ordering::Relaxed);
        }
    }
    let m = model(vec![1; 1000 * BLOCK_WEIGHTS + 1]);
    let count = Count(AtomicU64::new(0));
    model_tree(&m, None, &count).unwrap();
    assert_eq!(count.0.load(Ordering::Relaxed), 1001);
    let count = Count(AtomicU64::new(0));
    let err = model_tree(&m, Some(9), &count).unwrap_err();
    assert_eq!(err, MerkleError::TooManyLeaves { leaves: 1001, depth: 9, capacity: 512 });
    assert_eq!(count.0.load(Ordering::Relaxed), 0, "no hashing before the shape check");
}

/// A sparse update changing `count` blocks of a model of `weights` weights, scales small
/// enough never to overflow the biased weights the tests use.
fn sparse_update(weights: u64, count: u64, seed: u64) -> Update {
    let nb = block_count(weights);
    let step = (nb / count.max(1)).max(1);
    let used = (weights - (nb - 1) * BLOCK_WEIGHTS as u64) as usize;
    let changed = (0..nb)
        .filter(|b| b.wrapping_add(seed).is_multiple_of(step))
        .take(count as usize)
        .map(|b| {
            let mut nibbles: [Nibble; BLOCK_WEIGHTS] =
                std::array::from_fn(|j| Nibble::new((b.wrapping_add(seed).wrapping_add(j as u64) % 16) as u8).unwrap());
            if b == nb - 1 {
                nibbles[used..].fill(Nibble::ZERO);
            }
            (b, UpdateBlock { scale: (seed % 50 + 1) as u32, nibbles })
        })
        .collect();
    Update::sparse(weights, changed).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn incremental_trees_equal_full_recomputation(
        weights in 1u64..(BLOCK_WEIGHTS as u64 * 40),
        density in 0.0f64..=1.0,
        seed in any::<u64>(),
        extra_depth in 0u32..3,
    ) {
        let m = model((0..weights).map(|i| (1u32 << 31) ^ ((i.wrapping_mul(seed | 1) as u32) & 0xffff)).collect());
        let nb = m.block_count();
        // From one changed block up to every block.
        let count = ((density * nb as f64).ceil() as u64).clamp(1, nb);
        let update = sparse_update(weights, count, seed);
        let depth = default_depth(nb) + extra_depth;
        let old_tree = model_tree(&m, Some(depth), &()).unwrap();
        let (new, tree) = apply_incremental(&m, &old_tree, &update).unwrap();
        prop_assert_eq!(&new, &update.apply(&m).unwrap());
        prop_assert_eq!(&tree, &model_tree(&new, Some(depth), &()).unwrap());
        prop_assert_eq!(update_root(&update, Some(depth)).unwrap(), update_tree(&update, Some(depth), &()).unwrap().root());
    }
}

#[test]
fn incremental_apply_refuses_another_models_tree_and_overflow() {
    let m = model(vec![1u32 << 31; 1000]);
    let other = model_tree(&model(vec![0; 2000]), None, &()).unwrap();
    let update = sparse_update(1000, 2, 1);
    assert!(matches!(apply_incremental(&m, &other, &update), Err(IncrementalError::TreeSize { tree: 18, model: 9 })));
    // An update that pushes a weight past 2^32 - 1 is an error naming it, not a wrap.
    let top = model(vec![u32::MAX; 1000]);
    let tree = model_tree(&top, None, &()).unwrap();
    let up =
        Update::sparse(1000, vec![(3, UpdateBlock { scale: 1, nibbles: [Nibble::new(9).unwrap(); BLOCK_WEIGHTS] })])
            .unwrap();
    assert!(matches!(apply_incremental(&top, &tree, &up), Err(IncrementalError::Update(_))));
}
