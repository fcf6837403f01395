//! Model trees on disk: every level of a [`crate::merkle`] tree in one file, built from
//! leaves streamed in chunks ([`TreeBuilder`]) and read back a path at a time
//! ([`TreeFile`]), so neither building nor opening holds the tree in memory.
//!
//! | bytes | content |
//! |---|---|
//! | 0..8 | magic `POGOTREE` |
//! | 8..12 | format version, u32 little-endian (1) |
//! | 12..16 | depth `D`, u32 LE |
//! | 16..24 | real leaves `nb`, u64 LE |
//! | 24..56 | the root, canonical little-endian field element |
//! | 56..64 | zero |
//! | 64.. | level 0 (the `nb` leaves), then level 1 (`ceil(nb/2)` nodes), … level `D` (the root), 32 bytes a node |
//!
//! Nodes past the end of a level are padding, `zero_subtree_roots()[level]`, and are not
//! stored. A file is written to a temporary name and renamed when complete.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::field::{Fr, PrimeField};
use crate::merkle::{check_changed, check_shape, try_dirty_parents, zero_subtree_roots, MerkleError, MerklePath};

/// The file's first bytes.
pub const TREE_MAGIC: [u8; 8] = *b"POGOTREE";
/// The version written and read.
pub const TREE_VERSION: u32 = 1;
const HEADER_LEN: u64 = 64;
const NODE: u64 = 32;

/// Why a tree file could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum TreeFileError {
    /// Reading or writing failed.
    #[error("tree file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a tree file of a version this pogo reads, or is damaged.
    #[error("tree file {path}: {why}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        why: String,
    },
    /// The shape (leaves, depth) is not a tree's.
    #[error(transparent)]
    Shape(#[from] MerkleError),
    /// The builder was fed other than promised.
    #[error("tree builder: {0}")]
    Misuse(String),
}

/// Level sizes `ceil(nb / 2^l)` for `l = 0..=D` and their byte offsets in the file.
fn layout(leaves: u64, depth: u32) -> (Vec<u64>, Vec<u64>) {
    let sizes: Vec<u64> = (0..=depth).map(|l| leaves.div_ceil(1u64 << l)).collect();
    let mut offsets = Vec::with_capacity(sizes.len());
    let mut at = HEADER_LEN;
    for n in &sizes {
        offsets.push(at);
        at += n * NODE;
    }
    (sizes, offsets)
}

fn file_len(leaves: u64, depth: u32) -> u64 {
    let (sizes, offsets) = layout(leaves, depth);
    offsets[depth as usize] + sizes[depth as usize] * NODE
}

fn node_bytes(nodes: &[Fr]) -> Vec<u8> {
    nodes.iter().flat_map(|n| n.to_repr()).collect()
}

/// Builds a tree of `nb` leaves and depth `D` from leaves pushed in order, a chunk of
/// [`TreeBuilder::chunk_leaves`] at a time: each chunk's subtree is hashed at once (by the
/// caller's level hasher, which must agree with [`crate::merkle::next_layer`]) and, with a
/// file, written in place; only the chunks' roots are kept. Memory: one chunk.
pub struct TreeBuilder<H: Fn(&[Fr], Fr) -> Vec<Fr>> {
    leaves: u64,
    depth: u32,
    chunk_height: u32,
    pushed: u64,
    tops: Vec<Fr>,
    offsets: Vec<u64>,
    file: Option<(File, PathBuf, PathBuf)>,
    hash_layer: H,
}

/// Chunk subtrees are `2^16` leaves (7.3 million weights) high at most.
const CHUNK_HEIGHT: u32 = 16;

impl<H: Fn(&[Fr], Fr) -> Vec<Fr>> TreeBuilder<H> {
    /// A builder for `leaves` leaves at `depth`, writing the tree to `out` (a temporary file
    /// beside it until [`TreeBuilder::finish`]) if given.
    pub fn new(leaves: u64, depth: u32, out: Option<&Path>, hash_layer: H) -> Result<Self, TreeFileError> {
        check_shape(leaves, depth)?;
        let file = match out {
            Some(path) => {
                let temp = crate::files::temp_beside(path)
                    .map_err(|source| TreeFileError::Io { path: path.display().to_string(), source })?;
                let io = |source| TreeFileError::Io { path: temp.display().to_string(), source };
                let file = File::create(&temp).map_err(io)?;
                file.set_len(file_len(leaves, depth)).map_err(io)?;
                Some((file, temp, path.to_path_buf()))
            }
            None => None,
        };
        let (_, offsets) = layout(leaves, depth);
        let chunk_height = CHUNK_HEIGHT.min(depth);
        Ok(Self { leaves, depth, chunk_height, pushed: 0, tops: Vec::new(), offsets, file, hash_layer })
    }

    /// The same builder with chunk subtrees `2^height` leaves high (smaller chunks: less
    /// memory, more of the hashing sequential above them). Only before the first push.
    pub fn with_chunk_height(mut self, height: u32) -> Self {
        if self.pushed == 0 {
            self.chunk_height = height.min(self.depth);
        }
        self
    }

    /// Leaves each push takes (the last push may take fewer).
    pub fn chunk_leaves(&self) -> usize {
        1 << self.chunk_height
    }

    fn write(&self, level: usize, first: u64, nodes: &[Fr]) -> Result<(), TreeFileError> {
        if let Some((file, temp, _)) = &self.file {
            let at = self.offsets[level] + first * NODE;
            file.write_all_at(&node_bytes(nodes), at)
                .map_err(|source| TreeFileError::Io { path: temp.display().to_string(), source })?;
        }
        Ok(())
    }

    /// The next chunk of leaves: [`TreeBuilder::chunk_leaves`] of them, or the rest.
    pub fn push(&mut self, leaves: &[Fr]) -> Result<(), TreeFileError> {
        let left = self.leaves - self.pushed;
        let full = self.chunk_leaves() as u64;
        if leaves.is_empty()
            || (leaves.len() as u64) > left
            || (leaves.len() as u64 != full && leaves.len() as u64 != left)
        {
            return Err(TreeFileError::Misuse(format!(
                "pushed {} leaves where {} were due ({} of {} pushed)",
                leaves.len(),
                full.min(left),
                self.pushed,
                self.leaves
            )));
        }
        let zeros = zero_subtree_roots();
        self.write(0, self.pushed, leaves)?;
        let mut level = leaves.to_vec();
        for (l, zero) in zeros.iter().enumerate().take(self.chunk_height as usize) {
            level = (self.hash_layer)(&level, *zero);
            self.write(l + 1, self.pushed >> (l + 1), &level)?;
        }
        self.tops.push(level[0]);
        self.pushed += leaves.len() as u64;
        Ok(())
    }

    /// Hashes the levels above the chunks, writes the header and renames the file into
    /// place. Returns the root.
    pub fn finish(mut self) -> Result<Fr, TreeFileError> {
        if self.pushed != self.leaves {
            return Err(TreeFileError::Misuse(format!("{} of {} leaves pushed", self.pushed, self.leaves)));
        }
        let zeros = zero_subtree_roots();
        let mut level = self.tops.clone();
        for (l, zero) in zeros.iter().enumerate().take(self.depth as usize).skip(self.chunk_height as usize) {
            level = (self.hash_layer)(&level, *zero);
            self.write(l + 1, 0, &level)?;
        }
        let root = level[0];
        if let Some((mut file, temp, path)) = self.file.take() {
            let mut header = Vec::with_capacity(HEADER_LEN as usize);
            header.extend_from_slice(&TREE_MAGIC);
            header.extend_from_slice(&TREE_VERSION.to_le_bytes());
            header.extend_from_slice(&self.depth.to_le_bytes());
            header.extend_from_slice(&self.leaves.to_le_bytes());
            header.extend_from_slice(&root.to_repr());
            header.resize(HEADER_LEN as usize, 0);
            let sealed = file
                .write_all_at(&header, 0)
                .and_then(|()| file.flush())
                .and_then(|()| file.sync_all())
                .and_then(|()| std::fs::rename(&temp, &path));
            if let Err(source) = sealed {
                let _ = std::fs::remove_file(&temp);
                return Err(TreeFileError::Io { path: path.display().to_string(), source });
            }
        }
        Ok(root)
    }
}

impl<H: Fn(&[Fr], Fr) -> Vec<Fr>> Drop for TreeBuilder<H> {
    fn drop(&mut self) {
        // An unfinished build leaves nothing behind (a finished one was renamed).
        if let Some((_, temp, _)) = &self.file {
            let _ = std::fs::remove_file(temp);
        }
    }
}

/// A tree file opened for reading paths. Its header, size and root are checked on open;
/// every path read is checked against the root.
#[derive(Debug)]
pub struct TreeFile {
    file: File,
    path: String,
    leaves: u64,
    depth: u32,
    root: Fr,
    offsets: Vec<u64>,
    sizes: Vec<u64>,
}

impl TreeFile {
    /// Opens and checks `path`.
    pub fn open(path: &Path) -> Result<Self, TreeFileError> {
        let shown = path.display().to_string();
        let io = |source| TreeFileError::Io { path: shown.clone(), source };
        let invalid = |why: String| TreeFileError::Invalid { path: shown.clone(), why };
        let file = File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let mut header = [0u8; HEADER_LEN as usize];
        if len < HEADER_LEN {
            return Err(invalid(format!("{len} bytes is shorter than the {HEADER_LEN}-byte header")));
        }
        file.read_exact_at(&mut header, 0).map_err(io)?;
        if header[..8] != TREE_MAGIC {
            return Err(invalid("not a pogo tree file (no POGOTREE magic)".into()));
        }
        let word = |at: usize| u32::from_le_bytes(header[at..at + 4].try_into().expect("4 bytes"));
        let version = word(8);
        if version != TREE_VERSION {
            return Err(invalid(format!(
                "version {version} is not supported (this pogo reads version {TREE_VERSION})"
            )));
        }
        let depth = word(12);
        let leaves = u64::from_le_bytes(header[16..24].try_into().expect("8 bytes"));
        check_shape(leaves, depth).map_err(|e| invalid(format!("header: {e}")))?;
        let root = read_fr(&header[24..56]).ok_or_else(|| invalid("the root is not a field element".into()))?;
        let expected = file_len(leaves, depth);
        if len != expected {
            return Err(invalid(format!(
                "{len} bytes, but a tree of {leaves} leaves and depth {depth} is {expected} (truncated or padded)"
            )));
        }
        let (sizes, offsets) = layout(leaves, depth);
        let tree = Self { file, path: shown.clone(), leaves, depth, root, offsets, sizes };
        if tree.node(depth as usize, 0)? != root {
            return Err(invalid("the stored top node is not the header's root".into()));
        }
        Ok(tree)
    }

    /// The root.
    pub fn root(&self) -> Fr {
        self.root
    }

    /// `D`.
    pub fn depth(&self) -> u32 {
        self.depth
    }

    /// `nb`.
    pub fn leaves(&self) -> u64 {
        self.leaves
    }

    fn node(&self, level: usize, index: u64) -> Result<Fr, TreeFileError> {
        if index >= self.sizes[level] {
            return Ok(zero_subtree_roots()[level]);
        }
        let mut bytes = [0u8; NODE as usize];
        self.file
            .read_exact_at(&mut bytes, self.offsets[level] + index * NODE)
            .map_err(|source| TreeFileError::Io { path: self.path.clone(), source })?;
        read_fr(&bytes).ok_or_else(|| TreeFileError::Invalid {
            path: self.path.clone(),
            why: format!("node {index} of level {level} is not a field element"),
        })
    }

    /// Leaf `index` (below `nb`).
    pub fn leaf(&self, index: u64) -> Result<Fr, TreeFileError> {
        if index >= self.leaves {
            return Err(MerkleError::IndexOutOfRange { index, leaves: self.leaves }.into());
        }
        self.node(0, index)
    }

    /// A tree file at `out` for this tree with the leaves `changed` (sorted by index, each
    /// once) replaced: the file is copied and only their paths are re-hashed, `O(k · D)`
    /// hashes for `k` changed leaves however large the tree (a verifier's rebuild of a
    /// sparse update). The same file as building the new tree whole (tests check it);
    /// `out` appears only when complete.
    pub fn with_leaves_replaced(
        &self,
        out: &Path,
        changed: &[(u64, Fr)],
        hash_pairs: impl Fn(&[(Fr, Fr)]) -> Vec<Fr>,
    ) -> Result<TreeFile, TreeFileError> {
        check_changed(changed, self.leaves)?;
        let shown = out.display().to_string();
        let temp =
            crate::files::temp_beside(out).map_err(|source| TreeFileError::Io { path: shown.clone(), source })?;
        let io = |source| TreeFileError::Io { path: temp.display().to_string(), source };
        let result = (|| {
            let mut copy = File::create(&temp).map_err(io)?;
            let mut from = self.file.try_clone().map_err(io)?;
            std::io::Seek::rewind(&mut from).map_err(io)?;
            std::io::copy(&mut from, &mut copy).map_err(io)?;
            // Siblings not re-hashed are unchanged: they are read from this tree.
            let mut dirty = changed.to_vec();
            for level in 0..=self.depth as usize {
                for &(i, value) in &dirty {
                    copy.write_all_at(&node_bytes(&[value]), self.offsets[level] + i * NODE).map_err(io)?;
                }
                if level == self.depth as usize {
                    break;
                }
                dirty = try_dirty_parents(&dirty, |i| self.node(level, i), &hash_pairs)?;
            }
            let root = dirty.first().map_or(self.root, |&(_, root)| root);
            copy.write_all_at(&root.to_repr(), 24).map_err(io)?;
            copy.sync_all().map_err(io)?;
            std::fs::rename(&temp, out).map_err(io)
        })();
        if let Err(e) = result {
            let _ = std::fs::remove_file(&temp);
            return Err(e);
        }
        TreeFile::open(out)
    }

    /// The opening of leaf `index`, checked against the root: a damaged file is an error
    /// naming the leaf, never a wrong path.
    pub fn open_path(&self, index: u64) -> Result<MerklePath, TreeFileError> {
        let leaf = self.leaf(index)?;
        let siblings =
            (0..self.depth as usize).map(|l| self.node(l, (index >> l) ^ 1)).collect::<Result<Vec<_>, _>>()?;
        let path = MerklePath { index, siblings };
        if path.compute_root(leaf) != self.root {
            return Err(TreeFileError::Invalid {
                path: self.path.clone(),
                why: format!("the path of leaf {index} does not lead to the root: the file is damaged"),
            });
        }
        Ok(path)
    }

    /// Copies the `nb` leaves, 32 bytes each as stored (the leaf list a miner serves to
    /// challengers), to `out` a megabyte at a time. The bytes are not checked here: whoever
    /// reads a leaf list rebuilds its tree and compares the root.
    pub fn write_leaves(&self, out: &mut impl Write) -> Result<(), TreeFileError> {
        let io = |source| TreeFileError::Io { path: self.path.clone(), source };
        let mut buf = vec![0u8; 1 << 20];
        let (mut at, end) = (self.offsets[0], self.offsets[0] + self.leaves * NODE);
        while at < end {
            let n = (end - at).min(buf.len() as u64) as usize;
            self.file.read_exact_at(&mut buf[..n], at).map_err(io)?;
            out.write_all(&buf[..n]).map_err(io)?;
            at += n as u64;
        }
        Ok(())
    }
}

fn read_fr(bytes: &[u8]) -> Option<Fr> {
    let mut repr = <Fr as PrimeField>::Repr::default();
    repr.as_mut().copy_from_slice(bytes);
    Option::from(Fr::from_repr(repr))
}
