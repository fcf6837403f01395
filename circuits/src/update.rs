//! A whole-model 4-bit update (DESIGN §2 Update) and its blob, the "binary diff" that miners
//! serve and verifiers fetch (DESIGN §3).
//!
//! Blob layout, all integers little-endian:
//!
//! | bytes  | field |
//! |--------|-------|
//! | 0..8   | magic `POGOUPD\0` |
//! | 8..10  | version (2; version 1 blobs are still read) |
//! | 10..14 | version 2: tree depth `D` of the base root; version 1: reserved, zero |
//! | 14..16 | reserved, zero |
//! | 16..24 | weight count `N` |
//! | 24..32 | block count `nb = ceil(N / 112)` |
//! | 32..64 | SHA-256 of bytes 0..32, then (version 2) bytes 72..104, then the uncompressed body |
//! | 64..72 | length of the compressed body |
//! | 72..104 | version 2 only: the root (at depth `D`, field element, little-endian) of the model the update was made against |
//! | 72.. / 104.. | zstd frame of the body: `nb` scales (u32), then `nb × 56` bytes of nibbles, two per byte, low nibble first |
//!
//! An update that knows its base (`Update::with_base`) is written as version 2, so a tool
//! can refuse to apply it to another model; one that does not is written as version 1.

use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::encoding::{block_count, Nibble, UpdateBlock, BLOCK_WEIGHTS, NIBBLE_BYTES_PER_BLOCK};
use crate::field::{Fr, PrimeField};
use crate::files::write_atomic;
use crate::merkle::{MerkleError, MerkleTree};
use crate::model::{Model, ModelError};

/// The blob's first eight bytes.
pub const BLOB_MAGIC: [u8; 8] = *b"POGOUPD\0";
/// The blob format version written for updates that record their base model (version 1,
/// without one, is written and read too).
pub const BLOB_VERSION: u16 = 2;
/// Header length in bytes of a version 1 blob (version 2 adds the 32-byte base root).
pub const BLOB_HEADER_LEN: usize = 72;
/// Bytes of the base root a version 2 header adds.
const BASE_LEN: usize = 32;
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
    /// The update was made against another model.
    #[error("the update was made against the model with root {expected} (depth {depth}), not this one (root {got})")]
    WrongBase {
        /// The base root the blob records.
        expected: String,
        /// The given model's root at that depth.
        got: String,
        /// The depth of both.
        depth: u32,
    },
    /// Rebuilding the model failed.
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// The model an update was made against, as its blob (version 2) records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BaseModel {
    /// Its Merkle root at `depth`.
    pub root: Fr,
    /// The tree depth of `root`.
    pub depth: u32,
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
    #[error("update blob version {0} is not supported (this pogo reads versions 1 and {BLOB_VERSION})")]
    Version(u16),
    /// A version 2 header's base root is not a field element, or its depth is out of range.
    #[error("the header's base model (depth {depth}) is not a valid root")]
    Base {
        /// The declared depth.
        depth: u32,
    },
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
    base: Option<BaseModel>,
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
        Ok(Self { weights, blocks, base: None })
    }

    /// The same update, recording the model it was made against (written as blob version 2).
    pub fn with_base(self, root: Fr, depth: u32) -> Self {
        Self { base: Some(BaseModel { root, depth }), ..self }
    }

    /// The model it was made against, when known.
    pub fn base(&self) -> Option<BaseModel> {
        self.base
    }

    /// Checks that a model whose root at the recorded depth is `root` is the recorded base
    /// (always passes for an update that records none).
    pub fn check_base(&self, root: &Fr) -> Result<(), UpdateError> {
        match self.base {
            Some(base) if base.root != *root => Err(UpdateError::WrongBase {
                expected: crate::field::fr_to_hex(&base.root),
                got: crate::field::fr_to_hex(root),
                depth: base.depth,
            }),
            _ => Ok(()),
        }
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
        let base = self.base.map(|b| {
            header[10..14].copy_from_slice(&b.depth.to_le_bytes());
            b.root.to_repr()
        });
        let version: u16 = if base.is_some() { BLOB_VERSION } else { 1 };
        header[8..10].copy_from_slice(&version.to_le_bytes());
        header[16..24].copy_from_slice(&self.weights.to_le_bytes());
        header[24..32].copy_from_slice(&self.block_count().to_le_bytes());
        let base_bytes: &[u8] = base.as_ref().map_or(&[], |r| r.as_ref());
        let sum = checksum(&header[..32], base_bytes, &body);
        header[32..64].copy_from_slice(&sum);
        let compressed = zstd::bulk::compress(&body, ZSTD_LEVEL).expect("zstd compresses in memory");
        header[64..72].copy_from_slice(&(compressed.len() as u64).to_le_bytes());
        let mut blob = header.to_vec();
        blob.extend_from_slice(base_bytes);
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
        if version != 1 && version != BLOB_VERSION {
            return Err(BlobError::Version(version));
        }
        let reserved = if version == 1 { &header[10..16] } else { &header[14..16] };
        if reserved.iter().any(|&b| b != 0) {
            return Err(BlobError::Reserved);
        }
        let (base, base_bytes) = if version == 1 {
            (None, &[][..])
        } else {
            let bytes = blob.get(BLOB_HEADER_LEN..BLOB_HEADER_LEN + BASE_LEN).ok_or(BlobError::TooShort(blob.len()))?;
            let depth = u32::from_le_bytes(header[10..14].try_into().expect("4 bytes"));
            let repr: [u8; 32] = bytes.try_into().expect("32 bytes");
            let root: Option<Fr> = Fr::from_repr(repr).into();
            match root {
                Some(root) if depth <= crate::merkle::MAX_DEPTH => (Some(BaseModel { root, depth }), bytes),
                _ => return Err(BlobError::Base { depth }),
            }
        };
        let body_start = BLOB_HEADER_LEN + base_bytes.len();
        let weights = word(16..24);
        if weights == 0 || weights > MAX_WEIGHTS {
            return Err(UpdateError::WeightCount(weights).into());
        }
        let (declared, expected) = (word(24..32), block_count(weights));
        if declared != expected {
            return Err(BlobError::BlockCount { declared, weights, expected });
        }
        let body_len = word(64..72);
        let actual = (blob.len() - body_start) as u64;
        if body_len != actual {
            return Err(BlobError::Length { declared: body_len, actual });
        }
        // Stream the body so memory grows only with bytes that really decompress.
        let expected_body = expected * (4 + NIBBLE_BYTES_PER_BLOCK as u64);
        let mut decoder = zstd::stream::read::Decoder::new(&blob[body_start..]).map_err(BlobError::Decompress)?;
        let mut body = Vec::new();
        (&mut decoder).take(expected_body + 1).read_to_end(&mut body).map_err(BlobError::Decompress)?;
        if body.len() as u64 != expected_body {
            return Err(BlobError::BodySize { expected: expected_body, got: body.len() as u64 });
        }
        if checksum(&header[..32], base_bytes, &body)[..] != header[32..64] {
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
        let update = Self::new(weights, blocks)?;
        Ok(Self { base, ..update })
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

fn checksum(header: &[u8], base: &[u8], body: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(header);
    hasher.update(base);
    hasher.update(body);
    hasher.finalize().into()
}
