//! A whole-model 4-bit update (DESIGN §2 Update) and its blob, the "binary diff" that miners
//! serve and verifiers fetch (DESIGN §3).
//!
//! Blob layout, all integers little-endian:
//!
//! | bytes  | field |
//! |--------|-------|
//! | 0..8   | magic `POGOUPD\0` |
//! | 8..10  | version: 1 dense, 2 dense with its base root, 3 sparse |
//! | 10..14 | versions 2 and 3 with a base: tree depth `D` of the base root; otherwise reserved, zero |
//! | 14     | version 3: 1 if a base root follows the header, else 0; otherwise reserved, zero |
//! | 15     | reserved, zero |
//! | 16..24 | weight count `N` |
//! | 24..32 | block count `nb = ceil(N / 112)` |
//! | 32..64 | SHA-256 of bytes 0..32, then the base root if any, then the uncompressed body |
//! | 64..72 | length of the compressed body |
//! | 72..104 | with a base only: the root (at depth `D`, field element, little-endian) of the model the update was made against |
//! | then   | zstd frame of the body |
//!
//! Dense body (versions 1, 2): `nb` scales (u32), then `nb × 56` bytes of nibbles, two per
//! byte, low nibble first. Sparse body (version 3): the count `k ≤ nb` of changed blocks
//! (u64), their indices (u64, strictly increasing, below `nb`), their scales (u32), their
//! `k × 56` bytes of nibbles; an unchanged block (scale 0, every nibble 8) is never listed.
//! Either way the update is the same (every block not listed is unchanged) and so is its
//! root: the tree over every block's `U_b` (DESIGN §2). A blob is written sparse when that
//! is smaller (fewer than ~88 % of the blocks changed).
//!
//! An update that knows its base (`Update::with_base`) records it, so a tool can refuse to
//! apply it to another model.

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
/// The blob format version of sparse updates: only the changed blocks are listed.
pub const SPARSE_BLOB_VERSION: u16 = 3;
/// Dense body bytes per block: a scale and 56 bytes of nibbles.
const DENSE_BYTES_PER_BLOCK: u64 = 4 + NIBBLE_BYTES_PER_BLOCK as u64;
/// Sparse body bytes per changed block: its index, scale and nibbles.
const SPARSE_BYTES_PER_BLOCK: u64 = 8 + DENSE_BYTES_PER_BLOCK;
/// Header length in bytes of a version 1 blob (version 2 adds the 32-byte base root).
pub const BLOB_HEADER_LEN: usize = 72;
/// Bytes of the base root a version 2 header adds.
const BASE_LEN: usize = 32;
/// The largest weight count a blob may declare (2^40, a trillion weights).
pub const MAX_WEIGHTS: u64 = 1 << 40;
/// zstd level used for blobs.
pub(crate) const ZSTD_LEVEL: i32 = 9;

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
    /// A changed block's index is out of range, or indices are not strictly increasing.
    #[error("changed block {index} is out of order or repeated, or not below the {blocks} blocks")]
    BlockIndex {
        /// The index.
        index: u64,
        /// `nb`.
        blocks: u64,
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
    #[error("update blob version {0} is not supported (this pogo reads versions 1, {BLOB_VERSION} and {SPARSE_BLOB_VERSION})")]
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
    /// The blob declares more weights than an update may have where it is read (the model
    /// it applies to): checked before anything is decompressed, so a crafted header cannot
    /// make the reader allocate more than that model's update.
    #[error("the update declares {declared} weights, more than the {most} an update of this model can have")]
    TooManyWeights {
        /// Declared by the header.
        declared: u64,
        /// The bound it is read under.
        most: u64,
    },
    /// The zstd frame declares a decompressed size that the body cannot have.
    #[error("the body's zstd frame declares {declared} bytes, the update's body has {expected}")]
    FrameSize {
        /// Declared by the frame header.
        declared: u64,
        /// The most the body may have.
        expected: u64,
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
    /// A sparse body declares more changed blocks than the update has blocks.
    #[error("the body lists {count} changed blocks of an update of {blocks} blocks")]
    SparseCount {
        /// Declared.
        count: u64,
        /// `nb`.
        blocks: u64,
    },
    /// A sparse body lists a block that changes nothing.
    #[error("the body lists block {0} as changed, but it is the unchanged block")]
    Unchanged(u64),
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

/// Per-block scales and nibbles for a model of `N` weights, kept sparse: the blocks that
/// change something, by increasing index; every other block is [`UpdateBlock::zero`]
/// (scale 0, every nibble 8), whose leaf is [`Update::unchanged_leaf`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    weights: u64,
    changed: Vec<(u64, UpdateBlock)>,
    base: Option<BaseModel>,
}

impl Update {
    /// An update of `weights` weights from every block; the blocks must number
    /// `ceil(N / 112)` and leave the padding of the last block unchanged.
    pub fn new(weights: u64, blocks: Vec<UpdateBlock>) -> Result<Self, UpdateError> {
        let expected = check_weights(weights)?;
        if blocks.len() as u64 != expected {
            return Err(UpdateError::BlockCount { weights, expected, got: blocks.len() as u64 });
        }
        let zero = UpdateBlock::zero();
        Self::sparse(
            weights,
            blocks
                .into_iter()
                .enumerate()
                .map(|(b, block)| (b as u64, block))
                .filter(|(_, block)| *block != zero)
                .collect(),
        )
    }

    /// An update of `weights` weights changing only the `changed` blocks (by strictly
    /// increasing index below `ceil(N / 112)`; unchanged blocks listed are dropped); the last
    /// block must leave its padding unchanged.
    pub fn sparse(weights: u64, changed: Vec<(u64, UpdateBlock)>) -> Result<Self, UpdateError> {
        let blocks = check_weights(weights)?;
        for (k, &(b, _)) in changed.iter().enumerate() {
            if b >= blocks || (k > 0 && changed[k - 1].0 >= b) {
                return Err(UpdateError::BlockIndex { index: b, blocks });
            }
        }
        if let Some((b, last)) = changed.last() {
            check_padding(weights, *b, last)?;
        }
        let zero = UpdateBlock::zero();
        let changed = changed.into_iter().filter(|(_, block)| *block != zero).collect();
        Ok(Self { weights, changed, base: None })
    }

    /// The same update, recording the model it was made against (written as blob version 2
    /// or 3).
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
        block_count(self.weights)
    }

    /// The blocks that change something, by increasing index.
    pub fn changed(&self) -> &[(u64, UpdateBlock)] {
        &self.changed
    }

    /// Block `b` (the unchanged block where the update does not list it).
    pub fn block(&self, b: u64) -> UpdateBlock {
        match self.changed.binary_search_by_key(&b, |(i, _)| *i) {
            Ok(k) => self.changed[k].1.clone(),
            Err(_) => UpdateBlock::zero(),
        }
    }

    /// The leaf `U_b` of every unchanged block, `H_3(q_lo, q_hi, 0)` with every nibble 8.
    pub fn unchanged_leaf() -> Fr {
        static LEAF: std::sync::OnceLock<Fr> = std::sync::OnceLock::new();
        *LEAF.get_or_init(|| UpdateBlock::zero().leaf())
    }

    /// The update leaf `U_b`.
    pub fn leaf(&self, b: u64) -> Fr {
        match self.changed.binary_search_by_key(&b, |(i, _)| *i) {
            Ok(k) => self.changed[k].1.leaf(),
            Err(_) => Self::unchanged_leaf(),
        }
    }

    /// The changed blocks' leaves, by increasing index.
    pub fn changed_leaves(&self) -> Vec<(u64, Fr)> {
        self.changed.iter().map(|(b, block)| (*b, block.leaf())).collect()
    }

    /// The update tree of depth `D` by the sequential native reference (every leaf hashed).
    pub fn reference_tree(&self, depth: u32) -> Result<MerkleTree, MerkleError> {
        MerkleTree::build((0..self.block_count()).map(|b| self.leaf(b)).collect(), depth)
    }

    /// The update root at depth `D` from the changed leaves' paths only (equal to
    /// [`Update::reference_tree`]'s root), hashing with `hash_pairs`.
    pub fn sparse_root_with(&self, depth: u32, hash_pairs: impl Fn(&[(Fr, Fr)]) -> Vec<Fr>) -> Result<Fr, MerkleError> {
        crate::merkle::sparse_root_with(
            self.block_count(),
            depth,
            &self.changed_leaves(),
            Self::unchanged_leaf(),
            hash_pairs,
        )
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
        apply_to(&self.block(b), model, b)
    }

    /// The new model `u_new = u_old + s · (n − 8)`, exact; an error (never a wrap) if any
    /// weight would leave `[0, 2^32)`. Touches only the changed blocks' weights.
    pub fn apply(&self, model: &Model) -> Result<Model, UpdateError> {
        self.check_model(model)?;
        let mut weights = model.weights().to_vec();
        for (b, block) in &self.changed {
            let new = apply_to(block, model, *b)?;
            let start = *b as usize * BLOCK_WEIGHTS;
            let keep = (weights.len() - start).min(BLOCK_WEIGHTS);
            weights[start..start + keep].copy_from_slice(&new[..keep]);
        }
        Ok(model.with_weights(weights)?)
    }

    /// Whether the blob lists changed blocks (version 3) rather than every block: when that
    /// is smaller (8 + 68 bytes per changed block against 60 per block).
    pub fn writes_sparse(&self) -> bool {
        crate::blob_writer::writes_sparse(self.changed.len() as u64, self.block_count())
    }

    /// Encodes the blob (see the module docs), with the encoder [`BlobWriter`] uses.
    ///
    /// [`BlobWriter`]: crate::blob_writer::BlobWriter
    pub fn to_blob(&self) -> Vec<u8> {
        use crate::blob_writer::{encode, head, Packed};
        let count = self.changed.len() as u64;
        let mut blob = head(self.weights, count, self.base);
        let mut body = Vec::new();
        let changed = || Ok(self.changed.iter().map(|(b, block)| Ok(Packed::new(*b, block))));
        encode(&mut blob, self.weights, count, changed, &mut body).expect("encoding into memory cannot fail");
        blob.extend_from_slice(&body);
        blob
    }

    /// Decodes and fully validates a blob, without trusting any length it declares. Memory
    /// is bounded by the weight count the header declares (up to [`MAX_WEIGHTS`]): for a
    /// blob from a peer, use [`Update::from_blob_within`] with the model's weight count.
    pub fn from_blob(blob: &[u8]) -> Result<Self, BlobError> {
        Self::decode(blob, MAX_WEIGHTS)
    }

    /// [`Update::from_blob`] of an update of at most `most_weights` weights (the model it
    /// is for): a header declaring more is refused before anything is decompressed, so
    /// decoding never allocates more than such an update (a few MB of crafted zstd cannot
    /// inflate to GB).
    pub fn from_blob_within(blob: &[u8], most_weights: u64) -> Result<Self, BlobError> {
        Self::decode(blob, most_weights)
    }

    fn decode(blob: &[u8], most_weights: u64) -> Result<Self, BlobError> {
        let head = BlobHeader::parse(blob, blob.len() as u64, most_weights)?;
        let (header, base_bytes, expected) = (&head.bytes[..], &head.base_bytes[..], head.blocks);
        let (version, weights, base, body_start) = (head.version, head.weights, head.base, head.body_start);
        let most = head.most_body_len();
        // Stream the body so memory grows only with bytes that really decompress.
        let mut decoder = zstd::stream::read::Decoder::new(&blob[body_start..]).map_err(BlobError::Decompress)?;
        let mut body = Vec::new();
        let expected_body = if version == SPARSE_BLOB_VERSION {
            let mut count = [0u8; 8];
            decoder.read_exact(&mut count).map_err(BlobError::Decompress)?;
            body.extend_from_slice(&count);
            let count = u64::from_le_bytes(count);
            if count > expected {
                return Err(BlobError::SparseCount { count, blocks: expected });
            }
            sparse_body_len(count)
        } else {
            most
        };
        (&mut decoder)
            .take(expected_body + 1 - body.len() as u64)
            .read_to_end(&mut body)
            .map_err(BlobError::Decompress)?;
        if body.len() as u64 != expected_body {
            return Err(BlobError::BodySize { expected: expected_body, got: body.len() as u64 });
        }
        if checksum(&header[..32], base_bytes, &body)[..] != header[32..64] {
            return Err(BlobError::Checksum);
        }
        let update = if version == SPARSE_BLOB_VERSION {
            let count = (body.len() - 8) / SPARSE_BYTES_PER_BLOCK as usize;
            let (indices, rest) = body[8..].split_at(count * 8);
            let (scales, nibbles) = rest.split_at(count * 4);
            let indices = indices.chunks_exact(8).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")));
            let changed: Vec<(u64, UpdateBlock)> = indices.zip(unpack(scales, nibbles)).collect();
            // Canonical: an unchanged block is never listed (it would change nothing, and the
            // same update would have two encodings).
            if let Some((index, _)) = changed.iter().find(|(_, block)| *block == UpdateBlock::zero()) {
                return Err(BlobError::Unchanged(*index));
            }
            Self::sparse(weights, changed)?
        } else {
            let (scales, nibbles) = body.split_at(expected as usize * 4);
            Self::new(weights, unpack(scales, nibbles).collect())?
        };
        Ok(Self { base, ..update })
    }

    /// Reads a blob file.
    pub fn load(path: &Path) -> Result<Self, BlobError> {
        Self::decode(&read_blob(path)?, MAX_WEIGHTS)
    }

    /// Reads a blob file of at most `most_weights` weights ([`Update::from_blob_within`]).
    pub fn load_within(path: &Path, most_weights: u64) -> Result<Self, BlobError> {
        Self::decode(&read_blob(path)?, most_weights)
    }

    /// Writes the blob atomically.
    pub fn save(&self, path: &Path) -> Result<(), BlobError> {
        write_atomic(path, &self.to_blob()).map_err(|source| BlobError::Io { path: path.display().to_string(), source })
    }
}

/// A blob's header, checked: everything before its compressed body.
#[derive(Debug, Clone)]
pub(crate) struct BlobHeader {
    /// The first 72 bytes.
    pub(crate) bytes: [u8; BLOB_HEADER_LEN],
    /// The base root's 32 bytes, or none.
    pub(crate) base_bytes: Vec<u8>,
    pub(crate) version: u16,
    pub(crate) weights: u64,
    pub(crate) blocks: u64,
    pub(crate) base: Option<BaseModel>,
    /// Where the compressed body starts.
    pub(crate) body_start: usize,
}

impl BlobHeader {
    /// Checks the header at the start of `prefix` (at least the header, the base root and
    /// the zstd frame's own header) of a blob of `total` bytes, for an update of at most
    /// `most_weights` weights: nothing here trusts a length before checking it.
    pub(crate) fn parse(prefix: &[u8], total: u64, most_weights: u64) -> Result<Self, BlobError> {
        let too_short = || BlobError::TooShort(usize::try_from(total).unwrap_or(usize::MAX));
        let header: [u8; BLOB_HEADER_LEN] =
            prefix.get(..BLOB_HEADER_LEN).ok_or_else(too_short)?.try_into().expect("72 bytes");
        let word = |range: std::ops::Range<usize>| u64::from_le_bytes(header[range].try_into().expect("8 bytes"));
        let magic: [u8; 8] = header[..8].try_into().expect("8 bytes");
        if magic != BLOB_MAGIC {
            return Err(BlobError::Magic(magic));
        }
        let version = u16::from_le_bytes([header[8], header[9]]);
        // Version 3's byte 14 says whether a base root follows (bit 0, nothing else).
        let has_base = match version {
            1 => false,
            BLOB_VERSION => true,
            SPARSE_BLOB_VERSION if header[14] <= 1 => header[14] == 1,
            SPARSE_BLOB_VERSION => return Err(BlobError::Reserved),
            other => return Err(BlobError::Version(other)),
        };
        let reserved = match (version, has_base) {
            (1, _) => &header[10..16],
            (BLOB_VERSION, _) => &header[14..16],
            (_, true) => &header[15..16],
            (_, false) => &header[10..14],
        };
        if reserved.iter().any(|&b| b != 0) || (version == SPARSE_BLOB_VERSION && header[15] != 0) {
            return Err(BlobError::Reserved);
        }
        let (base, base_bytes) = if !has_base {
            (None, Vec::new())
        } else {
            let bytes = prefix.get(BLOB_HEADER_LEN..BLOB_HEADER_LEN + BASE_LEN).ok_or_else(too_short)?;
            let depth = u32::from_le_bytes(header[10..14].try_into().expect("4 bytes"));
            let repr: [u8; 32] = bytes.try_into().expect("32 bytes");
            let root: Option<Fr> = Fr::from_repr(repr).into();
            match root {
                Some(root) if depth <= crate::merkle::MAX_DEPTH => (Some(BaseModel { root, depth }), bytes.to_vec()),
                _ => return Err(BlobError::Base { depth }),
            }
        };
        let body_start = BLOB_HEADER_LEN + base_bytes.len();
        let weights = word(16..24);
        if weights > most_weights && most_weights < MAX_WEIGHTS {
            return Err(BlobError::TooManyWeights { declared: weights, most: most_weights });
        }
        if weights == 0 || weights > MAX_WEIGHTS {
            return Err(UpdateError::WeightCount(weights).into());
        }
        let (declared, expected) = (word(24..32), block_count(weights));
        if declared != expected {
            return Err(BlobError::BlockCount { declared, weights, expected });
        }
        let body_len = word(64..72);
        let actual = total - body_start as u64;
        if body_len != actual {
            return Err(BlobError::Length { declared: body_len, actual });
        }
        let head = Self { bytes: header, base_bytes, version, weights, blocks: expected, base, body_start };
        // A frame that declares its decompressed size (pogo's do) must declare one the body
        // can have; either way readers stop one byte past the bound.
        let most = head.most_body_len();
        if let Ok(Some(declared)) = zstd::zstd_safe::get_frame_content_size(&prefix[body_start.min(prefix.len())..]) {
            let fits = if head.sparse() { declared <= most } else { declared == most };
            if !fits {
                return Err(BlobError::FrameSize { declared, expected: most });
            }
        }
        Ok(head)
    }

    /// Whether the body lists changed blocks only (version 3).
    pub(crate) fn sparse(&self) -> bool {
        self.version == SPARSE_BLOB_VERSION
    }

    /// The body's length when dense, or at most when sparse (every block listed).
    pub(crate) fn most_body_len(&self) -> u64 {
        if self.sparse() {
            sparse_body_len(self.blocks)
        } else {
            dense_body_len(self.blocks)
        }
    }

    /// The checksum the header records.
    pub(crate) fn checksum(&self) -> &[u8] {
        &self.bytes[32..64]
    }
}

/// Bytes a reader needs from the start of a blob to parse its header
/// ([`BlobHeader::parse`]): header, base root and a zstd frame header.
pub(crate) const BLOB_PREFIX_LEN: usize = BLOB_HEADER_LEN + BASE_LEN + 18;

/// The longest blob an update of at most `most_weights` weights can have (header, base
/// root, and zstd's worst case for the larger of its dense and sparse bodies): what a node
/// downloading one for such a model need ever read.
pub fn max_blob_len(most_weights: u64) -> u64 {
    // A sparse body listing every block is the larger of the two.
    let body = sparse_body_len(block_count(most_weights.clamp(1, MAX_WEIGHTS)));
    let compressed = usize::try_from(body).map(zstd::zstd_safe::compress_bound).unwrap_or(usize::MAX) as u64;
    (BLOB_HEADER_LEN + BASE_LEN) as u64 + compressed
}

/// Bytes of a dense body of `blocks` blocks.
pub(crate) fn dense_body_len(blocks: u64) -> u64 {
    blocks * DENSE_BYTES_PER_BLOCK
}

/// Bytes of a sparse body listing `count` changed blocks (the count, then each block).
pub(crate) fn sparse_body_len(count: u64) -> u64 {
    8 + count * SPARSE_BYTES_PER_BLOCK
}

fn read_blob(path: &Path) -> Result<Vec<u8>, BlobError> {
    std::fs::read(path).map_err(|source| BlobError::Io { path: path.display().to_string(), source })
}

/// Refuses a last block (`b = nb − 1`) of an update of `weights` weights that changes
/// padding past the `N`-th weight (padding stays `u = 2^31`).
pub(crate) fn check_padding(weights: u64, b: u64, block: &UpdateBlock) -> Result<(), UpdateError> {
    let blocks = block_count(weights);
    if b + 1 != blocks || block.scale == 0 {
        return Ok(());
    }
    let used = (weights - (blocks - 1) * BLOCK_WEIGHTS as u64) as usize;
    match (used..BLOCK_WEIGHTS).find(|&j| block.nibbles[j] != Nibble::ZERO) {
        Some(position) => Err(UpdateError::Padding { block: b, position, weights }),
        None => Ok(()),
    }
}

/// `1 ≤ N ≤ MAX_WEIGHTS`; returns `nb`.
fn check_weights(weights: u64) -> Result<u64, UpdateError> {
    if weights == 0 || weights > MAX_WEIGHTS {
        return Err(UpdateError::WeightCount(weights));
    }
    Ok(block_count(weights))
}

/// Applies `block` as block `b` of `model`, naming the weight that would overflow.
fn apply_to(block: &UpdateBlock, model: &Model, b: u64) -> Result<[u32; BLOCK_WEIGHTS], UpdateError> {
    block.apply(&model.block(b)).map_err(|e| {
        let global = b * BLOCK_WEIGHTS as u64 + e.position as u64;
        let (tensor, index) = model.locate(global).unwrap_or(("<padding>", global));
        UpdateError::Overflow { block: b, tensor: tensor.to_string(), index, old: e.old, scale: e.scale, q: e.q }
    })
}

/// Blocks from little-endian scales and packed nibbles (two per byte, low first).
pub(crate) fn unpack<'a>(scales: &'a [u8], nibbles: &'a [u8]) -> impl Iterator<Item = UpdateBlock> + 'a {
    scales.chunks_exact(4).zip(nibbles.chunks_exact(NIBBLE_BYTES_PER_BLOCK)).map(|(scale, packed)| {
        let scale = u32::from_le_bytes(scale.try_into().expect("4 bytes"));
        let nibbles = std::array::from_fn(|j| {
            let byte = packed[j / 2];
            Nibble::new(if j % 2 == 0 { byte & 0x0f } else { byte >> 4 }).expect("a 4-bit value")
        });
        UpdateBlock { scale, nibbles }
    })
}

pub(crate) fn checksum(header: &[u8], base: &[u8], body: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(header);
    hasher.update(base);
    hasher.update(body);
    hasher.finalize().into()
}
