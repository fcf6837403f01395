//! An update blob read as a stream: every block in order, a chunk at a time, in memory that
//! does not grow with the update ([`UpdateStream`]). What [`Update::from_blob_within`]
//! checks is checked here too, each as soon as its bytes go by; the checksum, which covers
//! the whole body, last. A consumer therefore keeps what it makes from the blocks (a root,
//! a model file) provisional until [`UpdateStream::blocks`] returns `Ok`.
//!
//! The body stores every scale before any nibble (and a sparse body its indices before
//! its scales), so each region is read by its own zstd decoder, started at the region's
//! offset: the body is decompressed once per region plus once to check the checksum,
//! which costs little next to hashing the blocks.
//!
//! [`Update::from_blob_within`]: crate::update::Update::from_blob_within

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::encoding::{UpdateBlock, NIBBLE_BYTES_PER_BLOCK};
use crate::update::{
    check_padding, sparse_body_len, unpack, BaseModel, BlobError, BlobHeader, UpdateError, BLOB_PREFIX_LEN,
};

type Decoder = zstd::stream::read::Decoder<'static, BufReader<std::io::Take<File>>>;

/// One region of the body: a decoder that has skipped to it, and where it is.
struct Region {
    decoder: Decoder,
    at: u64,
}

/// An update blob file opened for streaming; see the module docs.
#[derive(Debug)]
pub struct UpdateStream {
    path: PathBuf,
    head: BlobHeader,
    /// Sparse: how many blocks the body lists.
    listed: Option<u64>,
}

impl UpdateStream {
    /// Opens `path`, an update of at most `most_weights` weights (the model it is for),
    /// and checks its header (and a sparse body's count) before anything else is read.
    pub fn open(path: &Path, most_weights: u64) -> Result<Self, BlobError> {
        let io = |source| BlobError::Io { path: path.display().to_string(), source };
        let mut file = File::open(path).map_err(io)?;
        let total = file.metadata().map_err(io)?.len();
        let mut prefix = Vec::with_capacity(BLOB_PREFIX_LEN);
        (&mut file).take(BLOB_PREFIX_LEN as u64).read_to_end(&mut prefix).map_err(io)?;
        let head = BlobHeader::parse(&prefix, total, most_weights)?;
        let mut stream = Self { path: path.to_path_buf(), head, listed: None };
        if stream.head.sparse() {
            let mut region = stream.region(0)?;
            let count = u64::from_le_bytes(stream.read_array(&mut region)?);
            if count > stream.head.blocks {
                return Err(BlobError::SparseCount { count, blocks: stream.head.blocks });
            }
            stream.listed = Some(count);
        }
        Ok(stream)
    }

    /// `N`.
    pub fn weight_count(&self) -> u64 {
        self.head.weights
    }

    /// `nb`.
    pub fn block_count(&self) -> u64 {
        self.head.blocks
    }

    /// The model it was made against, when the blob records it.
    pub fn base(&self) -> Option<BaseModel> {
        self.head.base
    }

    /// The exact length of the decompressed body.
    fn body_len(&self) -> u64 {
        match self.listed {
            Some(count) => sparse_body_len(count),
            None => self.head.most_body_len(),
        }
    }

    fn io(&self, source: std::io::Error) -> BlobError {
        BlobError::Io { path: self.path.display().to_string(), source }
    }

    /// A decoder of the body positioned at byte `offset` of it.
    fn region(&self, offset: u64) -> Result<Region, BlobError> {
        let mut file = File::open(&self.path).map_err(|e| self.io(e))?;
        file.seek(SeekFrom::Start(self.head.body_start as u64)).map_err(|e| self.io(e))?;
        let compressed = file.metadata().map_err(|e| self.io(e))?.len() - self.head.body_start as u64;
        let decoder = zstd::stream::read::Decoder::new(file.take(compressed)).map_err(BlobError::Decompress)?;
        let mut region = Region { decoder, at: 0 };
        let skipped = std::io::copy(&mut (&mut region.decoder).take(offset), &mut std::io::sink())
            .map_err(BlobError::Decompress)?;
        region.at = skipped;
        if skipped != offset {
            return Err(BlobError::BodySize { expected: self.body_len(), got: skipped });
        }
        Ok(region)
    }

    fn read_into(&self, region: &mut Region, buf: &mut [u8]) -> Result<(), BlobError> {
        let mut filled = 0;
        while filled < buf.len() {
            let n = region.decoder.read(&mut buf[filled..]).map_err(BlobError::Decompress)?;
            if n == 0 {
                return Err(BlobError::BodySize { expected: self.body_len(), got: region.at + filled as u64 });
            }
            filled += n;
        }
        region.at += buf.len() as u64;
        Ok(())
    }

    fn read_array<const N: usize>(&self, region: &mut Region) -> Result<[u8; N], BlobError> {
        let mut bytes = [0u8; N];
        self.read_into(region, &mut bytes)?;
        Ok(bytes)
    }

    /// Calls `f(first_block, blocks)` on every block of the update in order (unchanged
    /// blocks included), `chunk_blocks` at a time (the last call may hold fewer), then
    /// checks the body's size and checksum. Memory: one chunk.
    pub fn blocks<E: From<BlobError>>(
        &self,
        chunk_blocks: usize,
        mut f: impl FnMut(u64, &[UpdateBlock]) -> Result<(), E>,
    ) -> Result<(), E> {
        let chunk = chunk_blocks.max(1) as u64;
        let nb = self.head.blocks;
        let mut blocks = Vec::with_capacity(chunk as usize);
        match self.listed {
            None => {
                let mut scales = self.region(0)?;
                let mut nibbles = self.region(nb * 4)?;
                let (mut scale_bytes, mut nibble_bytes) = (Vec::new(), Vec::new());
                let mut first = 0;
                while first < nb {
                    let n = chunk.min(nb - first) as usize;
                    scale_bytes.resize(n * 4, 0);
                    nibble_bytes.resize(n * NIBBLE_BYTES_PER_BLOCK, 0);
                    self.read_into(&mut scales, &mut scale_bytes)?;
                    self.read_into(&mut nibbles, &mut nibble_bytes)?;
                    blocks.clear();
                    blocks.extend(unpack(&scale_bytes, &nibble_bytes));
                    if first + n as u64 == nb {
                        check_padding(self.head.weights, nb - 1, &blocks[n - 1]).map_err(BlobError::from)?;
                    }
                    f(first, &blocks)?;
                    first += n as u64;
                }
            }
            Some(count) => {
                let mut indices = self.region(8)?;
                let mut scales = self.region(8 + 8 * count)?;
                let mut nibbles = self.region(8 + 12 * count)?;
                let mut read = 0u64;
                let mut previous: Option<u64> = None;
                let mut next = |this: &Self| -> Result<Option<(u64, UpdateBlock)>, BlobError> {
                    if read == count {
                        return Ok(None);
                    }
                    let index = u64::from_le_bytes(this.read_array(&mut indices)?);
                    if index >= nb || previous.is_some_and(|p| p >= index) {
                        return Err(UpdateError::BlockIndex { index, blocks: nb }.into());
                    }
                    let scale: [u8; 4] = this.read_array(&mut scales)?;
                    let packed: [u8; NIBBLE_BYTES_PER_BLOCK] = this.read_array(&mut nibbles)?;
                    let block = unpack(&scale, &packed).next().expect("one block");
                    // Canonical: an unchanged block is never listed.
                    if block == UpdateBlock::zero() {
                        return Err(BlobError::Unchanged(index));
                    }
                    check_padding(this.head.weights, index, &block)?;
                    read += 1;
                    previous = Some(index);
                    Ok(Some((index, block)))
                };
                let mut pending = next(self)?;
                let mut first = 0;
                while first < nb {
                    let n = chunk.min(nb - first);
                    blocks.clear();
                    for b in first..first + n {
                        match pending {
                            Some((index, block)) if index == b => {
                                blocks.push(block);
                                pending = next(self)?;
                            }
                            _ => blocks.push(UpdateBlock::zero()),
                        }
                    }
                    f(first, &blocks)?;
                    first += n;
                }
            }
        }
        self.check_body()?;
        Ok(())
    }

    /// Decompresses the whole body once more (reading at most one byte past its length)
    /// and checks its length and the checksum.
    fn check_body(&self) -> Result<(), BlobError> {
        let expected = self.body_len();
        let mut region = self.region(0)?;
        let mut hasher = Sha256::new();
        hasher.update(&self.head.bytes[..32]);
        hasher.update(&self.head.base_bytes);
        let mut buf = vec![0u8; 1 << 20];
        let mut limited = (&mut region.decoder).take(expected + 1);
        let mut got = 0u64;
        loop {
            let n = limited.read(&mut buf).map_err(BlobError::Decompress)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            got += n as u64;
        }
        if got != expected {
            return Err(BlobError::BodySize { expected, got });
        }
        if hasher.finalize()[..] != *self.head.checksum() {
            return Err(BlobError::Checksum);
        }
        Ok(())
    }
}
