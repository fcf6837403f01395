//! The streamed blob writer: the same bytes as [`Update::to_blob`] for dense and sparse
//! updates, with and without a base; wrong block counts and padding changes refused; nothing
//! left behind when it fails.

use pogo_circuits::blob_writer::BlobWriter;
use pogo_circuits::encoding::{block_count, Nibble, UpdateBlock, BLOCK_WEIGHTS};
use pogo_circuits::field::Fr;
use pogo_circuits::update::{BlobError, Update, UpdateError};
use proptest::prelude::*;

/// An update of `weights` weights changing the blocks where `pick` is true (the last
/// block's padding left alone).
fn update_with(weights: u64, pick: impl Fn(u64) -> bool, seed: u64) -> Update {
    let nb = block_count(weights);
    let used = (weights - (nb - 1) * BLOCK_WEIGHTS as u64) as usize;
    let blocks = (0..nb)
        .map(|b| {
            if !pick(b) {
                return UpdateBlock::zero();
            }
            let mut block = UpdateBlock {
                scale: ((b * 7 + seed) % 5000 + 1) as u32,
                nibbles: std::array::from_fn(|j| {
                    Nibble::new(((b as usize * 3 + j * 5 + seed as usize) % 16) as u8).unwrap()
                }),
            };
            if b + 1 == nb {
                block.nibbles[used..].fill(Nibble::ZERO);
            }
            block
        })
        .collect();
    Update::new(weights, blocks).unwrap()
}

/// The blob [`BlobWriter`] writes for `update`, pushed `chunk` blocks at a time.
fn written(update: &Update, chunk: usize) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("u.pogo");
    let mut writer = BlobWriter::create(&path, update.weight_count()).unwrap();
    let blocks: Vec<UpdateBlock> = (0..update.block_count()).map(|b| update.block(b)).collect();
    for part in blocks.chunks(chunk) {
        writer.push(part).unwrap();
    }
    let done = writer.finish(update.base()).unwrap();
    let blob = std::fs::read(&path).unwrap();
    assert_eq!(done.bytes, blob.len() as u64);
    assert_eq!(done.sparse, update.writes_sparse());
    assert_eq!(done.changed_blocks, update.changed().len() as u64);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "only the blob is left");
    blob
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn the_streamed_blob_is_the_in_memory_one(
        weights in 1u64..3000,
        every in 1u64..5,
        seed in 0u64..100,
        chunk in 1usize..40,
        based in any::<bool>(),
    ) {
        let mut update = update_with(weights, |b| b % every == 0, seed);
        if based {
            update = update.with_base(Fr::from(seed + 1), 12);
        }
        let blob = written(&update, chunk);
        prop_assert_eq!(&blob, &update.to_blob());
        prop_assert_eq!(Update::from_blob(&blob).unwrap(), update);
    }
}

#[test]
fn dense_sparse_and_empty_updates_round_trip() {
    let weights = 112 * 500 + 9;
    for (pick, sparse) in [(&(|_| true) as &dyn Fn(u64) -> bool, false), (&|b| b % 50 == 3, true), (&|_| false, true)] {
        let update = update_with(weights, pick, 1);
        assert_eq!(update.writes_sparse(), sparse);
        let blob = written(&update, 64);
        assert_eq!(Update::from_blob(&blob).unwrap(), update);
    }
}

#[test]
fn too_many_or_too_few_blocks_and_padding_changes_are_refused_leaving_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("u.pogo");
    let weights = 3 * BLOCK_WEIGHTS as u64 + 1; // 4 blocks, the last with one weight
    let mut writer = BlobWriter::create(&path, weights).unwrap();
    writer.push(&vec![UpdateBlock::zero(); 3]).unwrap();
    let err = writer.push(&vec![UpdateBlock::zero(); 2]).unwrap_err();
    assert!(matches!(err, BlobError::Update(UpdateError::BlockCount { expected: 4, got: 5, .. })), "{err}");
    let err = writer.finish(None).unwrap_err();
    assert!(matches!(err, BlobError::Update(UpdateError::BlockCount { expected: 4, got: 3, .. })), "{err}");

    let mut writer = BlobWriter::create(&path, weights).unwrap();
    let mut padded = UpdateBlock { scale: 1, nibbles: [Nibble::ZERO; BLOCK_WEIGHTS] };
    padded.nibbles[1] = Nibble::new(9).unwrap();
    writer.push(&vec![UpdateBlock::zero(); 3]).unwrap();
    let err = writer.push(&[padded]).unwrap_err();
    assert!(matches!(err, BlobError::Update(UpdateError::Padding { block: 3, position: 1, .. })), "{err}");
    drop(writer);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing written, no temporary left");

    assert!(matches!(BlobWriter::create(&path, 0), Err(BlobError::Update(UpdateError::WeightCount(0)))));
    let missing = dir.path().join("no-such-dir").join("u.pogo");
    assert!(matches!(BlobWriter::create(&missing, 10), Err(BlobError::Io { .. })));
}
