//! Update blobs encoded as streams (the layout is [`crate::update`]'s): one encoder serves
//! both [`Update::to_blob`](crate::update::Update::to_blob), for an update held in memory,
//! and [`BlobWriter`], for an update of any size produced block by block.
//!
//! A body lists every scale before any nibble, and whether it is dense or sparse depends on
//! how many blocks changed, which is known only at the end. So [`BlobWriter`] spools each
//! changed block (68 bytes: index, scale, packed nibbles) to an anonymous temporary file
//! beside the output and encodes the body from it at [`BlobWriter::finish`], one pass per
//! region, hashing and compressing it as it goes. Memory does not grow with the update; the
//! spool takes 68 bytes of disk per changed block until the blob is written.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::encoding::{block_count, UpdateBlock, NIBBLE_BYTES_PER_BLOCK};
use crate::update::{
    check_padding, dense_body_len, sparse_body_len, BaseModel, BlobError, UpdateError, BLOB_HEADER_LEN, BLOB_MAGIC,
    BLOB_VERSION, SPARSE_BLOB_VERSION, ZSTD_LEVEL,
};

/// A changed block as the body stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Packed {
    pub(crate) index: u64,
    pub(crate) scale: u32,
    pub(crate) nibbles: [u8; NIBBLE_BYTES_PER_BLOCK],
}

impl Packed {
    /// Block `index` as stored: its scale and its nibbles two per byte, low first.
    pub(crate) fn new(index: u64, block: &UpdateBlock) -> Self {
        let nibbles = std::array::from_fn(|i| block.nibbles[2 * i].get() | (block.nibbles[2 * i + 1].get() << 4));
        Packed { index, scale: block.scale, nibbles }
    }
}

/// The nibbles of an unchanged block (every nibble 8), packed.
const UNCHANGED_NIBBLES: [u8; NIBBLE_BYTES_PER_BLOCK] = [0x88; NIBBLE_BYTES_PER_BLOCK];

/// Whether `count` changed blocks of `blocks` are written sparse (version 3): when that
/// body is smaller.
pub(crate) fn writes_sparse(count: u64, blocks: u64) -> bool {
    sparse_body_len(count) < dense_body_len(blocks)
}

/// Writes one block's part of a dense region (`None`: an unchanged block).
type WriteRegion<'a> = &'a dyn Fn(Option<&Packed>, &mut dyn Write) -> std::io::Result<()>;

/// Writes the body of an update of `blocks` blocks whose `count` changed blocks `changed`
/// yields, by increasing index; `changed` is called once per region, each time for a
/// fresh pass.
fn write_body<I: Iterator<Item = std::io::Result<Packed>>>(
    blocks: u64,
    count: u64,
    mut changed: impl FnMut() -> std::io::Result<I>,
    out: &mut impl Write,
) -> std::io::Result<()> {
    if writes_sparse(count, blocks) {
        out.write_all(&count.to_le_bytes())?;
        for block in changed()? {
            out.write_all(&block?.index.to_le_bytes())?;
        }
        for block in changed()? {
            out.write_all(&block?.scale.to_le_bytes())?;
        }
        for block in changed()? {
            out.write_all(&block?.nibbles)?;
        }
        return Ok(());
    }
    // Dense: every block, the unchanged ones filled in between the listed ones.
    let mut dense = |out: &mut dyn Write, region: WriteRegion| {
        let mut next = changed()?.peekable();
        for b in 0..blocks {
            match next.next_if(|p| p.as_ref().map_or(true, |p| p.index == b)) {
                Some(block) => region(Some(&block?), out)?,
                None => region(None, out)?,
            }
        }
        Ok::<(), std::io::Error>(())
    };
    dense(out, &|block, out| out.write_all(&block.map_or(0, |p| p.scale).to_le_bytes()))?;
    dense(out, &|block, out| out.write_all(block.map_or(&UNCHANGED_NIBBLES, |p| &p.nibbles)))
}

/// Sends every byte to the checksum and to the compressor.
struct Tee<W: Write> {
    hasher: Sha256,
    out: W,
}

impl<W: Write> Write for Tee<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.out.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// Counts the bytes written through it.
struct Counted<W: Write> {
    out: W,
    bytes: u64,
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.out.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// The blob's header and base root, to be written first; their checksum and length fields
/// are filled in by [`encode`].
pub(crate) fn head(weights: u64, count: u64, base: Option<BaseModel>) -> Vec<u8> {
    let blocks = block_count(weights);
    let mut header = vec![0u8; BLOB_HEADER_LEN];
    header[..8].copy_from_slice(&BLOB_MAGIC);
    if let Some(b) = base {
        header[10..14].copy_from_slice(&b.depth.to_le_bytes());
    }
    let version: u16 = match (writes_sparse(count, blocks), base.is_some()) {
        (true, has_base) => {
            header[14] = u8::from(has_base);
            SPARSE_BLOB_VERSION
        }
        (false, true) => BLOB_VERSION,
        (false, false) => 1,
    };
    header[8..10].copy_from_slice(&version.to_le_bytes());
    header[16..24].copy_from_slice(&weights.to_le_bytes());
    header[24..32].copy_from_slice(&blocks.to_le_bytes());
    if let Some(b) = base {
        use crate::field::PrimeField;
        header.extend_from_slice(b.root.to_repr().as_ref());
    }
    header
}

/// Encodes the body after `head` (from [`head`]) into `out`, then fills in `head`'s
/// checksum and compressed length. Returns the compressed length.
pub(crate) fn encode<I: Iterator<Item = std::io::Result<Packed>>>(
    head: &mut [u8],
    weights: u64,
    count: u64,
    changed: impl FnMut() -> std::io::Result<I>,
    out: impl Write,
) -> std::io::Result<u64> {
    let blocks = block_count(weights);
    let body_len = if writes_sparse(count, blocks) { sparse_body_len(count) } else { dense_body_len(blocks) };
    let mut hasher = Sha256::new();
    hasher.update(&head[..32]);
    hasher.update(&head[BLOB_HEADER_LEN..]);
    let mut encoder = zstd::stream::write::Encoder::new(Counted { out, bytes: 0 }, ZSTD_LEVEL)?;
    // The frame declares the body's length, as readers expect of pogo's blobs.
    encoder.set_pledged_src_size(Some(body_len))?;
    encoder.include_contentsize(true)?;
    let mut tee = BufWriter::with_capacity(1 << 16, Tee { hasher, out: encoder });
    write_body(blocks, count, changed, &mut tee)?;
    let Tee { hasher, out: encoder } = tee.into_inner().map_err(|e| e.into_error())?;
    let mut counted = encoder.finish()?;
    counted.flush()?;
    head[32..64].copy_from_slice(&hasher.finalize());
    head[64..72].copy_from_slice(&counted.bytes.to_le_bytes());
    Ok(counted.bytes)
}

/// What [`BlobWriter::finish`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobWritten {
    /// The blob's length in bytes.
    pub bytes: u64,
    /// Whether its body lists the changed blocks only (version 3).
    pub sparse: bool,
    /// Blocks with a non-zero change.
    pub changed_blocks: u64,
}

/// An update blob written from blocks produced in order, in bounded memory (see the module
/// docs); the blob appears at its path only when [`BlobWriter::finish`] succeeds.
pub struct BlobWriter {
    path: PathBuf,
    weights: u64,
    spool: BufWriter<File>,
    /// Blocks pushed so far; changed ones spooled.
    pushed: u64,
    changed: u64,
}

impl BlobWriter {
    /// A writer of the update of a model of `weights` weights.
    pub fn create(path: &Path, weights: u64) -> Result<Self, BlobError> {
        if weights == 0 || weights > crate::update::MAX_WEIGHTS {
            return Err(UpdateError::WeightCount(weights).into());
        }
        let spool = tempfile::tempfile_in(crate::files::dir_of(path)).map_err(|source| io(path, source))?;
        Ok(Self { path: path.to_path_buf(), weights, spool: BufWriter::new(spool), pushed: 0, changed: 0 })
    }

    /// The next blocks of the update, in order (unchanged ones included).
    pub fn push(&mut self, blocks: &[UpdateBlock]) -> Result<(), BlobError> {
        let nb = block_count(self.weights);
        if self.pushed + blocks.len() as u64 > nb {
            return Err(UpdateError::BlockCount {
                weights: self.weights,
                expected: nb,
                got: self.pushed + blocks.len() as u64,
            }
            .into());
        }
        for block in blocks {
            let b = self.pushed;
            self.pushed += 1;
            if *block == UpdateBlock::zero() {
                continue;
            }
            check_padding(self.weights, b, block)?;
            let p = Packed::new(b, block);
            let spooled = [&p.index.to_le_bytes()[..], &p.scale.to_le_bytes(), &p.nibbles];
            for part in spooled {
                self.spool.write_all(part).map_err(|e| io(&self.path, e))?;
            }
            self.changed += 1;
        }
        Ok(())
    }

    /// Checks every block was pushed, encodes the blob, recording `base` (the model the
    /// update was made against, which a streamed producer knows only at the end) if given,
    /// into a temporary file and renames it into place.
    pub fn finish(self, base: Option<BaseModel>) -> Result<BlobWritten, BlobError> {
        let nb = block_count(self.weights);
        if self.pushed != nb {
            return Err(UpdateError::BlockCount { weights: self.weights, expected: nb, got: self.pushed }.into());
        }
        let path = self.path.clone();
        let mut spool = self.spool.into_inner().map_err(|e| io(&path, e.into_error()))?;
        let count = self.changed;
        let mut head = head(self.weights, count, base);
        let temp = crate::files::temp_beside(&path).map_err(|e| io(&path, e))?;
        let result = (|| {
            let mut file = File::create(&temp)?;
            file.write_all(&head)?;
            let passes = || {
                spool.rewind()?;
                let mut reader = BufReader::with_capacity(1 << 16, spool.try_clone()?);
                let mut left = count;
                Ok(std::iter::from_fn(move || {
                    (left > 0).then(|| {
                        left -= 1;
                        read_packed(&mut reader)
                    })
                }))
            };
            let compressed = encode(&mut head, self.weights, count, passes, BufWriter::new(&mut file))?;
            use std::os::unix::fs::FileExt;
            file.write_all_at(&head, 0)?;
            file.sync_all()?;
            std::fs::rename(&temp, &path)?;
            Ok(head.len() as u64 + compressed)
        })();
        match result {
            Ok(bytes) => Ok(BlobWritten { bytes, sparse: writes_sparse(count, nb), changed_blocks: count }),
            Err(e) => {
                let _ = std::fs::remove_file(&temp);
                Err(io(&path, e))
            }
        }
    }
}

fn read_packed(reader: &mut impl Read) -> std::io::Result<Packed> {
    let mut record = [0u8; 8 + 4 + NIBBLE_BYTES_PER_BLOCK];
    reader.read_exact(&mut record)?;
    Ok(Packed {
        index: u64::from_le_bytes(record[..8].try_into().expect("8 bytes")),
        scale: u32::from_le_bytes(record[8..12].try_into().expect("4 bytes")),
        nibbles: record[12..].try_into().expect("56 bytes"),
    })
}

fn io(path: &Path, source: std::io::Error) -> BlobError {
    BlobError::Io { path: path.display().to_string(), source }
}
