//! A decompression bomb: a few hundred KB of crafted zstd that would inflate to 10 GiB,
//! behind an update-blob header. Read for a model, as a node reads a peer's blob, it is
//! refused at once, in bounded memory: when the header declares the bomb's size (more
//! weights than the model has) before anything is decompressed, and when the header
//! declares the model's size, one byte past that body. Its own test binary, so that the
//! process's peak memory is this test's.

use std::time::Instant;

use pogo_circuits::encoding::{block_count, BLOCK_WEIGHTS};
use pogo_circuits::update::{max_blob_len, BlobError, Update, UpdateError, BLOB_HEADER_LEN, BLOB_MAGIC};

/// A zstd frame of `blocks` RLE blocks of 128 KiB of zero bytes each, no declared content
/// size (RFC 8878: frame header descriptor 0, window descriptor 2^17; each block header is
/// 3 bytes, `Last_Block | Block_Type << 1 | Block_Size << 3`, then the repeated byte).
fn rle_bomb(blocks: usize) -> Vec<u8> {
    let mut frame = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x38];
    for i in 0..blocks {
        let header = u32::from(i + 1 == blocks) | (1 << 1) | ((128 * 1024) << 3);
        frame.extend_from_slice(&header.to_le_bytes()[..3]);
        frame.push(0);
    }
    frame
}

/// A version 1 blob header declaring `weights`, around `body` (checksum not filled in:
/// nothing may get that far).
fn blob(weights: u64, body: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; BLOB_HEADER_LEN];
    out[..8].copy_from_slice(&BLOB_MAGIC);
    out[8..10].copy_from_slice(&1u16.to_le_bytes());
    out[16..24].copy_from_slice(&weights.to_le_bytes());
    out[24..32].copy_from_slice(&block_count(weights).to_le_bytes());
    out[64..72].copy_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(body);
    out
}

/// The process's peak resident memory (VmHWM), in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

#[test]
fn a_blob_that_inflates_to_10_gib_is_refused_at_once_in_bounded_memory() {
    let bomb = rle_bomb(10 * 8 * 1024); // 81,920 blocks of 128 KiB: 10 GiB
    assert!(bomb.len() < 400 * 1024, "{} bytes", bomb.len());
    let model_weights = 84_544u64; // the licenses task's model
    let start = Instant::now();

    // The header declares the bomb's size as dense blocks: refused before decompressing.
    let bomb_weights = (10u64 << 30) / 60 * BLOCK_WEIGHTS as u64;
    let err = Update::from_blob_within(&blob(bomb_weights, &bomb), model_weights).unwrap_err();
    assert!(matches!(err, BlobError::TooManyWeights { most: 84_544, .. }), "{err}");
    assert!(err.to_string().contains("more than the 84544 an update of this model can have"), "{err}");

    // The header declares the model's size: decompression stops one byte past its body.
    let err = Update::from_blob_within(&blob(model_weights, &bomb), model_weights).unwrap_err();
    let body = block_count(model_weights) * 60;
    assert!(matches!(err, BlobError::BodySize { expected, got } if expected == body && got == body + 1), "{err}");

    // A frame that declares a content size the body cannot have is refused unread.
    let mut sized = bomb.clone();
    sized[4] = 0xc0 | 0x20; // 8-byte content size, single segment (no window descriptor)
    sized.splice(5..6, (10u64 << 30).to_le_bytes());
    let err = Update::from_blob_within(&blob(model_weights, &sized), model_weights).unwrap_err();
    assert!(matches!(err, BlobError::FrameSize { declared, .. } if declared == 10 << 30), "{err}");

    // A declared count above the format's bound is refused whatever the caller's bound.
    let err = Update::from_blob_within(&blob(u64::MAX, &bomb), u64::MAX).unwrap_err();
    assert!(matches!(err, BlobError::Update(UpdateError::WeightCount(_))), "{err}");

    let (elapsed, peak) = (start.elapsed(), peak_rss());
    assert!(elapsed.as_secs_f64() < 1.0, "took {elapsed:?}");
    assert!(peak < 100 << 20, "peak RSS {} MB", peak >> 20);
}

#[test]
fn the_download_bound_covers_every_honest_blob_and_little_more() {
    // A dense update of random nibbles (incompressible) fits under the bound of its model.
    let weights = 5_040u64; // 45 whole blocks
    let blocks: Vec<_> = (0..block_count(weights))
        .map(|b| {
            let mut block = pogo_circuits::encoding::UpdateBlock::zero();
            block.scale = 1 + b as u32;
            for (j, nibble) in block.nibbles.iter_mut().enumerate() {
                *nibble = pogo_circuits::encoding::Nibble::new(((b as usize * 7 + j * 13) % 16) as u8).unwrap();
            }
            block
        })
        .collect();
    let update = Update::new(weights, blocks).unwrap();
    let bytes = update.to_blob();
    assert!((bytes.len() as u64) <= max_blob_len(weights), "{} > {}", bytes.len(), max_blob_len(weights));
    assert!(max_blob_len(weights) < 2 * (72 + 32 + 8 + block_count(weights) * 68), "and not much above");
}
