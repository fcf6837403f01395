//! A whole-model 4-bit update (DESIGN §2 Update) and its blob, the "binary diff" that miners
//! serve and verifiers fetch (DESIGN §3).
//!
//! Blob layout, all integers little-endian:
//!
//! | bytes  | field |
//! |--------|-------|
//! | 0..8   | magic `POGOUPD\0` |
//! | 8..10  | version (1) |
//! | 10..16 | reserved, zero |
//! | 16..24 | weight count `N` |
//! | 24..32 | block count `nb = ceil(N / 112)` |
//! | 32..64 | SHA-256 of bytes 0..32 followed by the uncompressed body |
//! | 64..72 | length of the compressed body |
//! | 72..   | zstd frame of the body: `nb` scales (u32), then `nb × 56` bytes of nibbles, two per byte, low nibble first |

use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::encoding::{block_count, Nibble, UpdateBlock, BLOCK_WEIGHTS, NIBBLE_BYTES_PER_BLOCK};
use crate::field::Fr;
use crate::files::write_atomic;
use crate::merkle::{MerkleError, MerkleTree};
use crate::model::{Model, ModelError};

/// The blob's first eight bytes.
pub const BLOB_MAGIC: [u8; 8] = *b"POGOUPD\0";
/// The blob format version written and read.
pub const BLOB_VERSION: u16 = 1;
/// Header length in bytes.
pub const BLOB_HEADER_LEN: usize = 72;
/// The largest weight count a blob may declare (2^40, a trillion weights).
pub const MAX_WEIGHTS: u64 = 1 << 40;
/// zstd level used for blobs.
const ZSTD_LEVEL: i32 = 9;

/// An update was inconsistent with itself or with a model.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    /// Blocks given do not match the weight count.
    #[error("an update of {weights} weights has {expected} blocks, got {got}")]
    BlockCount {
        /// `N`.
        weights: u64,
        /// `ceil(N / 112)`.
        expected: u64,
        /// Given.
        got: u64,
    },
    /// The update has no weights, or more than [`MAX_WEIGHTS`].
    #[error("an update must cover 1 to {MAX_WEIGHTS} weights, got {0}")]
    WeightCount(u64),
    /// A padding position past `N` has a non-zero update (padding stays `u = 2^31`).
    #[error("block {block} changes padding weight {position} (only the first {weights} weights exist)")]
    Padding {
        /// The last block.
        block: u64,
        /// Position inside it.
        position: usize,
        /// `N`.
        weights: u64,
    },
    /// The update is for a model of another size.
    #[error("the update is for a model of {update} weights, but the model has {model}")]
    ModelSize {
        /// Update's `N`.
        update: u64,
        /// Model's `N`.
        model: u64,
    },
    /// Applying would leave `[0, 2^32)` (DESIGN §2: invalid).
    #[error("the update overflows weight {index} of tensor {tensor:?} (block {block}): {old} + {scale} * {q} leaves [0, 2^32)")]
    Overflow {
        /// Block.
        block: u64,
        /// Tensor of the weight.
        tensor: String,
        /// Index inside the tensor.
        index: u64,
        /// Old stored value.
        old: u32,
        /// Block scale.
        scale: u32,
        /// Signed nibble.
        q: i32,
    },
    /// Rebuilding the model failed.
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// A blob could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// Shorter than the header.
    #[error("the update blob is {0} bytes, shorter than its {BLOB_HEADER_LEN}-byte header")]
    TooShort(usize),
    /// Not a pogo update blob.
    #[error("not a pogo update blob (magic bytes {0:02x?})")]
    Magic([u8; 8]),
    /// A version this build does not read.
    #[error("update blob version {0} is not supported (this pogo reads version {BLOB_VERSION})")]
    Version(u16),
    /// Reserved header bytes are set.
    #[error("reserved header bytes are not zero")]
    Reserved,
    /// The header's block count disagrees with its weight count.
    #[error("the header declares {declared} blocks for {weights} weights (expected {expected})")]
    BlockCount {
        /// Declared.
        declared: u64,
        /// Declared `N`.
        weights: u64,
        /// `ceil(N / 112)`.
        expected: u64,
    },
    /// The compressed body length disagrees with the file length.
    #[error("the header declares a {declared}-byte body but {actual} bytes follow it")]
    Length {
        /// Declared.
        declared: u64,
        /// Present.
        actual: u64,
    },
    /// The body is not a valid zstd frame.
    #[error("the body does not decompress: {0}")]
    Decompress(std::io::Error),
    /// The body decompresses to the wrong size.
    #[error("the body decompresses to {got} bytes, expected {expected}")]
    BodySize {
        /// `nb × 60`.
        expected: u64,
        /// Got (at most expected + 1 are read).
        got: u64,
    },
    /// The checksum does not match.
    #[error("checksum mismatch: the blob is corrupt")]
    Checksum,
    /// The decoded update is inconsistent.
    #[error(transparent)]
    Update(#[from] UpdateError),
    /// Reading or writing the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// Per-block scales and nibbles for a model of `N` weights.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    weights: u64,
    blocks: Vec<UpdateBlock>,
}

impl Update {
    /// An update of `weights` weights; the blocks must number `ceil(N / 112)` and leave the
    /// padding of the last block unchanged.
    pub fn new(weights: u64, blocks: Vec<UpdateBlock>) -> Result<Self, UpdateError> {
        if weights == 0 || weights > MAX_WEIGHTS {
            return Err(UpdateError::WeightCount(weights));
        }
        let expected = block_count(weights);
        if blocks.len() as u64 != expected {
            return Err(UpdateError::BlockCount { weights, expected, got: blocks.len() as u64 });
        }
        let used = (weights - (expected - 1) * BLOCK_WEIGHTS as u64) as usize;
        let last = &blocks[blocks.len() - 1];
        if last.scale != 0 {
            if let Some(position) = (used..BLOCK_WEIGHTS).find(|&j| last.nibbles[j] != Nibble::ZERO) {
                return Err(UpdateError::Padding { block: expected - 1, position, weights });
            }
        }
        Ok(Self { weights, blocks })
    }

    /// `N`.
    pub fn weight_count(&self) -> u64 {
        self.weights
    }

    /// `nb`.
    pub fn block_count(&self) -> u64 {
        self.blocks.len() as u64
    }

    /// All blocks.
    pub fn blocks(&self) -> &[UpdateBlock] {
        &self.blocks
    }

    /// The update leaf `U_b`.
    pub fn leaf(&self, b: u64) -> Fr {
        self.blocks[b as usize].leaf()
    }

    /// The update tree of depth `D` by the sequential native reference.
    pub fn reference_tree(&self, depth: u32) -> Result<MerkleTree, MerkleError> {
        MerkleTree::build((0..self.block_count()).map(|b| self.leaf(b)).collect(), depth)
    }

    /// Checks that the update fits `model`'s size.
    pub fn check_model(&self, model: &Model) -> Result<(), UpdateError> {
        if self.weights != model.weight_count() {
            return Err(UpdateError::ModelSize { update: self.weights, model: model.weight_count() });
        }
        Ok(())
    }

    /// Applies block `b` to `model`'s block `b`, naming the weight that would overflow.
    pub fn apply_block(&self, model: &Model, b: u64) -> Result<[u32; BLOCK_WEIGHTS], UpdateError> {
        self.blocks[b as usize].apply(&model.block(b)).map_err(|e| {
            let global = b * BLOCK_WEIGHTS as u64 + e.position as u64;
            let (tensor, index) = model.locate(global).unwrap_or(("<padding>", global));
            UpdateError::Overflow { block: b, tensor: tensor.to_string(), index, old: e.old, scale: e.scale, q: e.q }
        })
    }

    /// The new model `u_new = u_old + s · (n − 8)`, exact; an error (never a wrap) if any
    /// weight would leave `[0, 2^32)`.
    pub fn apply(&self, model: &Model) -> Result<Model, UpdateError> {
        self.check_model(model)?;
        let mut weights = Vec::with_capacity(model.weights().len());
        for b in 0..self.block_count() {
            let new = self.apply_block(model, b)?;
            let keep = (model.weights().len() - weights.len()).min(BLOCK_WEIGHTS);
            weights.extend_from_slice(&new[..keep]);
        }
        Ok(model.with_weights(weights)?)
    }

    /// The uncompressed body: scales, then packed nibbles.
    fn body(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(self.blocks.len() * (4 + NIBBLE_BYTES_PER_BLOCK));
        body.extend(self.blocks.iter().flat_map(|b| b.scale.to_le_bytes()));
        for block in &self.blocks {
            body.extend(block.nibbles.chunks(2).map(|pair| pair[0].get() | (pair[1].get() << 4)));
        }
        body
    }

    /// Encodes the blob (see the module docs).
    pub fn to_blob(&self) -> Vec<u8> {
        let body = self.body();
        let mut header = [0u8; BLOB_HEADER_LEN];
        header[..8].copy_from_slice(&BLOB_MAGIC);
        header[8..10].copy_from_slice(&BLOB_VERSION.to_le_bytes());
        header[16..24].copy_from_slice(&self.weights.to_le_bytes());
        header[24..32].copy_from_slice(&self.block_count().to_le_bytes());
        let sum = checksum(&header[..32], &body);
        header[32..64].copy_from_slice(&sum);
        let compressed = zstd::bulk::compress(&body, ZSTD_LEVEL).expect("zstd compresses in memory");
        header[64..72].copy_from_slice(&(compressed.len() as u64).to_le_bytes());
        let mut blob = header.to_vec();
        blob.extend_from_slice(&compressed);
        blob
    }

    /// Decodes and fully validates a blob, without trusting any length it declares.
    pub fn from_blob(blob: &[u8]) -> Result<Self, BlobError> {
        let header = blob.get(..BLOB_HEADER_LEN).ok_or(BlobError::TooShort(blob.len()))?;
        let word = |range: std::ops::Range<usize>| u64::from_le_bytes(header[range].try_into().expect("8 bytes"));
        let magic: [u8; 8] = header[..8].try_into().expect("8 bytes");
        if magic != BLOB_MAGIC {
            return Err(BlobError::Magic(magic));
        }
        let version = u16::from_le_bytes([header[8], header[9]]);
        if version != BLOB_VERSION {
            return Err(BlobError::Version(version));
        }
        if header[10..16].iter().any(|&b| b != 0) {
            return Err(BlobError::Reserved);
        }
        let weights = word(16..24);
        if weights == 0 || weights > MAX_WEIGHTS {
            return Err(UpdateError::WeightCount(weights).into());
        }
        let (declared, expected) = (word(24..32), block_count(weights));
        if declared != expected {
            return Err(BlobError::BlockCount { declared, weights, expected });
        }
        let body_len = word(64..72);
        let actual = (blob.len() - BLOB_HEADER_LEN) as u64;
        if body_len != actual {
            return Err(BlobError::Length { declared: body_len, actual });
        }
        // Stream the body so memory grows only with bytes that really decompress.
        let expected_body = expected * (4 + NIBBLE_BYTES_PER_BLOCK as u64);
        let mut decoder = zstd::stream::read::Decoder::new(&blob[BLOB_HEADER_LEN..]).map_err(BlobError::Decompress)?;
        let mut body = Vec::new();
        (&mut decoder).take(expected_body + 1).read_to_end(&mut body).map_err(BlobError::Decompress)?;
        if body.len() as u64 != expected_body {
            return Err(BlobError::BodySize { expected: expected_body, got: body.len() as u64 });
        }
        if checksum(&header[..32], &body)[..] != header[32..64] {
            return Err(BlobError::Checksum);
        }
        let (scales, nibbles) = body.split_at(expected as usize * 4);
        let blocks = scales
            .chunks_exact(4)
            .zip(nibbles.chunks_exact(NIBBLE_BYTES_PER_BLOCK))
            .map(|(scale, packed)| {
                let scale = u32::from_le_bytes(scale.try_into().expect("4 bytes"));
                let nibbles = std::array::from_fn(|j| {
                    let byte = packed[j / 2];
                    Nibble::new(if j % 2 == 0 { byte & 0x0f } else { byte >> 4 }).expect("a 4-bit value")
                });
                UpdateBlock { scale, nibbles }
            })
            .collect();
        Ok(Self::new(weights, blocks)?)
    }

    /// Reads a blob file.
    pub fn load(path: &Path) -> Result<Self, BlobError> {
        let bytes = std::fs::read(path).map_err(|source| BlobError::Io { path: path.display().to_string(), source })?;
        Self::from_blob(&bytes)
    }

    /// Writes the blob atomically.
    pub fn save(&self, path: &Path) -> Result<(), BlobError> {
        write_atomic(path, &self.to_blob()).map_err(|source| BlobError::Io { path: path.display().to_string(), source })
    }
}

fn checksum(header: &[u8], body: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(header);
    hasher.update(body);
    hasher.finalize().into()
}
