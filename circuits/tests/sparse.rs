//! Block-sparse updates: the sparse root and the incremental tree equal the full
//! recomputation, the sparse blob (version 3) round-trips, and every malformed sparse body
//! is refused with a clear error.

use pogo_circuits::encoding::{block_count, Nibble, UpdateBlock, BLOCK_WEIGHTS};
use pogo_circuits::field::Fr;
use pogo_circuits::merkle::{default_depth, hash_pairs, sparse_root_with, MerkleError, MerkleTree};
use pogo_circuits::update::{BlobError, Update, UpdateError, BLOB_HEADER_LEN, SPARSE_BLOB_VERSION};
use proptest::prelude::*;
use sha2::{Digest, Sha256};

mod support;

fn block(seed: u64) -> UpdateBlock {
    UpdateBlock {
        scale: (seed % 1000 + 1) as u32,
        nibbles: std::array::from_fn(|j| Nibble::new(((seed as usize + j * 7) % 16) as u8).unwrap()),
    }
}

/// An update of `weights` weights changing the blocks `picked` (any order, repeats ignored).
fn update_with(weights: u64, picked: &[u64]) -> Update {
    let nb = block_count(weights);
    let mut indices: Vec<u64> = picked.iter().map(|b| b % nb).collect();
    indices.sort_unstable();
    indices.dedup();
    let used = (weights - (nb - 1) * BLOCK_WEIGHTS as u64) as usize;
    let changed = indices
        .into_iter()
        .map(|b| {
            let mut blk = block(b * 31 + 5);
            if b == nb - 1 {
                // Padding weights of the last block stay unchanged (nibble 8).
                for n in &mut blk.nibbles[used..] {
                    *n = Nibble::ZERO;
                }
            }
            (b, blk)
        })
        .collect();
    Update::sparse(weights, changed).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn sparse_roots_equal_the_full_tree(weights in 1u64..4000, picks in prop::collection::vec(any::<u64>(), 0..12), extra in 0u32..3) {
        let update = update_with(weights, &picks);
        let depth = default_depth(update.block_count()) + extra;
        let full = update.reference_tree(depth).unwrap().root();
        prop_assert_eq!(update.sparse_root_with(depth, hash_pairs).unwrap(), full);
    }

    #[test]
    fn replacing_leaves_equals_rebuilding(leaves in 1u64..300, picks in prop::collection::vec(any::<u64>(), 1..20), extra in 0u32..3) {
        let old: Vec<Fr> = (0..leaves).map(|i| Fr::from(i * 7 + 3)).collect();
        let depth = default_depth(leaves) + extra;
        let tree = MerkleTree::build(old.clone(), depth).unwrap();
        let mut indices: Vec<u64> = picks.iter().map(|p| p % leaves).collect();
        indices.sort_unstable();
        indices.dedup();
        let changed: Vec<(u64, Fr)> = indices.iter().map(|&i| (i, Fr::from(1000 + i))).collect();
        let mut new = old;
        for &(i, v) in &changed {
            new[i as usize] = v;
        }
        prop_assert_eq!(tree.replace_leaves_with(&changed, hash_pairs).unwrap(), MerkleTree::build(new, depth).unwrap());
    }
}

#[test]
fn one_block_every_block_and_no_block_give_the_full_root() {
    for weights in [1u64, 112, 113, 5000, 11_200] {
        let nb = block_count(weights);
        for picks in [vec![], vec![0], vec![nb - 1], vec![nb / 2], (0..nb).collect::<Vec<_>>()] {
            let update = update_with(weights, &picks);
            let depth = default_depth(nb);
            assert_eq!(
                update.sparse_root_with(depth, hash_pairs).unwrap(),
                update.reference_tree(depth).unwrap().root(),
                "{weights} weights, {} changed",
                update.changed().len()
            );
        }
    }
}

#[test]
fn changed_leaves_out_of_order_repeated_or_out_of_range_are_refused() {
    let unchanged = Fr::from(9u64);
    let leaf = Fr::from(1u64);
    let cases: [(&[(u64, Fr)], MerkleError); 3] = [
        (&[(3, leaf), (2, leaf)], MerkleError::Unsorted(2)),
        (&[(2, leaf), (2, leaf)], MerkleError::Unsorted(2)),
        (&[(10, leaf)], MerkleError::IndexOutOfRange { index: 10, leaves: 10 }),
    ];
    let tree = MerkleTree::build(vec![unchanged; 10], 4).unwrap();
    for (changed, expected) in cases {
        assert_eq!(sparse_root_with(10, 4, changed, unchanged, hash_pairs).unwrap_err(), expected);
        assert_eq!(tree.replace_leaves_with(changed, hash_pairs).unwrap_err(), expected);
    }
}

#[test]
fn sparse_blobs_round_trip_and_are_smaller() {
    let weights = 112 * 1000 + 50;
    let update = update_with(weights, &[3, 17, 500, 1000]);
    assert!(update.writes_sparse());
    let blob = update.to_blob();
    assert_eq!(u16::from_le_bytes([blob[8], blob[9]]), SPARSE_BLOB_VERSION);
    assert_eq!(Update::from_blob(&blob).unwrap(), update);
    let based = update.clone().with_base(Fr::from(77u64), 10);
    let back = Update::from_blob(&based.to_blob()).unwrap();
    assert_eq!(back, based);
    assert_eq!(back.base().unwrap().root, Fr::from(77u64));
    // Every block changed: the dense format is smaller and is written.
    let dense = update_with(weights, &(0..block_count(weights)).collect::<Vec<_>>());
    assert!(!dense.writes_sparse());
    assert_eq!(Update::from_blob(&dense.to_blob()).unwrap(), dense);
    assert!(blob.len() * 10 < dense.to_blob().len(), "{} vs {}", blob.len(), dense.to_blob().len());
    // Listing unchanged blocks changes nothing: they are dropped.
    let same = Update::sparse(weights, vec![(3, update.block(3)), (4, UpdateBlock::zero())]).unwrap();
    assert_eq!(same.changed().len(), 1);
}

/// A version 3 blob around `body` (count, indices, scales, nibbles), with a valid checksum.
fn v3_blob(weights: u64, flags: u8, body: &[u8]) -> Vec<u8> {
    let mut header = vec![0u8; BLOB_HEADER_LEN];
    header[..8].copy_from_slice(b"POGOUPD\0");
    header[8..10].copy_from_slice(&SPARSE_BLOB_VERSION.to_le_bytes());
    header[14] = flags;
    header[16..24].copy_from_slice(&weights.to_le_bytes());
    header[24..32].copy_from_slice(&block_count(weights).to_le_bytes());
    let mut sha = Sha256::new();
    sha.update(&header[..32]);
    sha.update(body);
    header[32..64].copy_from_slice(&sha.finalize());
    let compressed = zstd::bulk::compress(body, 3).unwrap();
    header[64..72].copy_from_slice(&(compressed.len() as u64).to_le_bytes());
    header.extend_from_slice(&compressed);
    header
}

/// A sparse body listing `(index, block)` as given (no checks).
fn body(listed: &[(u64, UpdateBlock)]) -> Vec<u8> {
    let mut out = (listed.len() as u64).to_le_bytes().to_vec();
    out.extend(listed.iter().flat_map(|(b, _)| b.to_le_bytes()));
    out.extend(listed.iter().flat_map(|(_, blk)| blk.scale.to_le_bytes()));
    for (_, blk) in listed {
        out.extend(blk.nibbles.chunks(2).map(|p| p[0].get() | (p[1].get() << 4)));
    }
    out
}

#[test]
fn malformed_sparse_bodies_are_refused() {
    let weights = 112 * 10 + 5; // 11 blocks, the last with 5 real weights
    let good = body(&[(1, block(1)), (4, block(4))]);
    assert_eq!(Update::from_blob(&v3_blob(weights, 0, &good)).unwrap().changed().len(), 2);

    // Each refusal is also the streaming reader's.
    let err = |blob: Vec<u8>| {
        support::assert_stream_agrees(&blob);
        Update::from_blob(&blob).unwrap_err()
    };
    support::assert_stream_agrees(&v3_blob(weights, 0, &good));
    assert!(matches!(
        err(v3_blob(weights, 0, &body(&[(4, block(4)), (1, block(1))]))),
        BlobError::Update(UpdateError::BlockIndex { index: 1, .. })
    ));
    assert!(matches!(
        err(v3_blob(weights, 0, &body(&[(4, block(4)), (4, block(5))]))),
        BlobError::Update(UpdateError::BlockIndex { index: 4, .. })
    ));
    assert!(matches!(
        err(v3_blob(weights, 0, &body(&[(11, block(4))]))),
        BlobError::Update(UpdateError::BlockIndex { index: 11, blocks: 11 })
    ));
    assert!(matches!(err(v3_blob(weights, 0, &body(&[(2, UpdateBlock::zero())]))), BlobError::Unchanged(2)));
    // The last block may not touch its 107 padding weights.
    assert!(matches!(
        err(v3_blob(weights, 0, &body(&[(10, block(3))]))),
        BlobError::Update(UpdateError::Padding { block: 10, .. })
    ));
    // A count beyond nb is refused before anything else is read.
    let mut huge = good.clone();
    huge[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(matches!(err(v3_blob(weights, 0, &huge)), BlobError::SparseCount { count: u64::MAX, blocks: 11 }));
    // A body one byte short or long.
    assert!(matches!(err(v3_blob(weights, 0, &good[..good.len() - 1])), BlobError::BodySize { .. }));
    let mut long = good.clone();
    long.push(0);
    assert!(matches!(err(v3_blob(weights, 0, &long)), BlobError::BodySize { .. }));
    // Flags other than "a base follows", or a base flagged but missing.
    assert!(matches!(err(v3_blob(weights, 2, &good)), BlobError::Reserved));
    assert!(Update::from_blob(&v3_blob(weights, 1, &good)).is_err());
    // Any flipped byte of the body: the checksum catches it.
    let mut blob = v3_blob(weights, 0, &good);
    let last = blob.len() - 1;
    blob[last] ^= 1;
    assert!(Update::from_blob(&blob).is_err());
    support::assert_stream_agrees(&blob);
}
