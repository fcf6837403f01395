//! Model and update trees (DESIGN §2 Trees): the complete binary tree of depth `D` over
//! `nb` leaves, padded with leaves equal to 0, internal node `H_2(left, right)`.
//!
//! Only the `nb` real leaves and their ancestors are stored; every all-padding subtree is
//! represented by its precomputed root, so a deep tree over few leaves costs nothing extra.

use std::sync::OnceLock;

use crate::field::{Field, Fr};
use crate::poseidon::hash2;

/// Deepest supported tree (`nb ≤ 2^32` blocks, far beyond any model).
pub const MAX_DEPTH: u32 = 32;

/// A tree shape or opening request was invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MerkleError {
    /// There were no leaves.
    #[error("a tree needs at least one leaf")]
    Empty,
    /// `D` outside `1..=32`.
    #[error("tree depth must be between 1 and {MAX_DEPTH}, got {0}")]
    DepthOutOfRange(u32),
    /// `nb > 2^D`.
    #[error("{leaves} leaves do not fit in a tree of depth {depth} (at most {capacity})")]
    TooManyLeaves {
        /// `nb`.
        leaves: u64,
        /// `D`.
        depth: u32,
        /// `2^D`.
        capacity: u64,
    },
    /// An opening was asked for an index ≥ nb.
    #[error("block {index} does not exist: the tree has {leaves} blocks")]
    IndexOutOfRange {
        /// The index asked for.
        index: u64,
        /// `nb`.
        leaves: u64,
    },
    /// Levels hashed elsewhere do not have the sizes of a tree's levels.
    #[error("the levels given do not halve from the leaves up to a single root")]
    LayerSizes,
    /// Changed leaves given out of order or twice.
    #[error("changed leaves must be listed by increasing index, each once (index {0} follows a larger or equal one)")]
    Unsorted(u64),
    /// A path has a number of siblings other than the depth.
    #[error("a path of a depth-{depth} tree has {depth} siblings, got {got}")]
    PathLength {
        /// `D`.
        depth: u32,
        /// Siblings given.
        got: usize,
    },
}

/// The default depth: the smallest `D ≥ 1` with `nb ≤ 2^D`.
pub fn default_depth(leaves: u64) -> u32 {
    leaves.max(2).next_power_of_two().trailing_zeros()
}

/// Checks that `leaves` fit a tree of `depth`, returning the depth.
pub fn check_shape(leaves: u64, depth: u32) -> Result<u32, MerkleError> {
    if leaves == 0 {
        return Err(MerkleError::Empty);
    }
    if !(1..=MAX_DEPTH).contains(&depth) {
        return Err(MerkleError::DepthOutOfRange(depth));
    }
    let capacity = 1u64 << depth;
    if leaves > capacity {
        return Err(MerkleError::TooManyLeaves { leaves, depth, capacity });
    }
    Ok(depth)
}

/// `zero_subtree_roots()[l]`: the root of an all-padding subtree of height `l`
/// (`z_0 = 0`, `z_{l+1} = H_2(z_l, z_l)`), for `l ≤ MAX_DEPTH`.
pub fn zero_subtree_roots() -> &'static [Fr] {
    static ZEROS: OnceLock<Vec<Fr>> = OnceLock::new();
    ZEROS.get_or_init(|| {
        let mut zeros = vec![Fr::ZERO];
        for l in 0..MAX_DEPTH as usize {
            zeros.push(hash2(zeros[l], zeros[l]));
        }
        zeros
    })
}

/// The parents of one level: `H_2(layer[2i], layer[2i+1])`, with `zero` standing in for a
/// missing right child. This sequential version is the reference for parallel builders.
pub fn next_layer(layer: &[Fr], zero: Fr) -> Vec<Fr> {
    layer.chunks(2).map(|pair| hash2(pair[0], pair.get(1).copied().unwrap_or(zero))).collect()
}

/// Hashes pairs of children into parents, `H_2(left, right)` per pair: the sequential
/// reference for [`MerkleTree::replace_leaves_with`] and [`sparse_root_with`] (provers pass a
/// parallel version).
pub fn hash_pairs(pairs: &[(Fr, Fr)]) -> Vec<Fr> {
    pairs.iter().map(|&(l, r)| hash2(l, r)).collect()
}

/// Checks that `changed` lists indices below `leaves` by increasing index, each once.
pub(crate) fn check_changed(changed: &[(u64, Fr)], leaves: u64) -> Result<(), MerkleError> {
    for (k, &(index, _)) in changed.iter().enumerate() {
        if index >= leaves {
            return Err(MerkleError::IndexOutOfRange { index, leaves });
        }
        if k > 0 && changed[k - 1].0 >= index {
            return Err(MerkleError::Unsorted(index));
        }
    }
    Ok(())
}

/// One level up from the `dirty` nodes of a level (sorted by index, each once): their
/// parents, sorted, each once, with every sibling not in `dirty` read from `node`.
fn dirty_parents(
    dirty: &[(u64, Fr)],
    node: impl Fn(u64) -> Fr,
    hash_pairs: &impl Fn(&[(Fr, Fr)]) -> Vec<Fr>,
) -> Vec<(u64, Fr)> {
    let read = |i| Ok::<_, std::convert::Infallible>(node(i));
    try_dirty_parents(dirty, read, hash_pairs).unwrap_or_else(|never| match never {})
}

/// [`dirty_parents`] with siblings read by a fallible `node` (from a file).
pub(crate) fn try_dirty_parents<E>(
    dirty: &[(u64, Fr)],
    node: impl Fn(u64) -> Result<Fr, E>,
    hash_pairs: &impl Fn(&[(Fr, Fr)]) -> Vec<Fr>,
) -> Result<Vec<(u64, Fr)>, E> {
    let mut parents = Vec::with_capacity(dirty.len());
    let mut pairs = Vec::with_capacity(dirty.len());
    let mut k = 0;
    while k < dirty.len() {
        let (index, value) = dirty[k];
        let parent = index / 2;
        let pair = if index % 2 == 0 {
            match dirty.get(k + 1) {
                Some(&(next, right)) if next == index + 1 => {
                    k += 1;
                    (value, right)
                }
                _ => (value, node(index + 1)?),
            }
        } else {
            (node(index - 1)?, value)
        };
        parents.push(parent);
        pairs.push(pair);
        k += 1;
    }
    Ok(parents.into_iter().zip(hash_pairs(&pairs)).collect())
}

/// The root of the depth-`depth` tree over `leaves` leaves that all equal `unchanged` but
/// for `changed` (sorted by index, each once), hashing only the changed leaves' paths:
/// `O(k · D)` hashes for `k` changed leaves, whatever `leaves` is. Equal to
/// [`MerkleTree::build`]'s root over the same leaves (a sparse update's tree: DESIGN §2,
/// unchanged blocks included).
pub fn sparse_root_with(
    leaves: u64,
    depth: u32,
    changed: &[(u64, Fr)],
    unchanged: Fr,
    hash_pairs: impl Fn(&[(Fr, Fr)]) -> Vec<Fr>,
) -> Result<Fr, MerkleError> {
    check_shape(leaves, depth)?;
    check_changed(changed, leaves)?;
    let zeros = zero_subtree_roots();
    // uniform = root of a full subtree of unchanged leaves at this level; the last node of
    // each level (possibly over padding too) is always carried as dirty.
    let mut uniform = unchanged;
    let mut dirty = changed.to_vec();
    if dirty.last().is_none_or(|&(i, _)| i != leaves - 1) {
        dirty.push((leaves - 1, unchanged));
    }
    let mut width = leaves;
    for &zero in &zeros[..depth as usize] {
        let node = |i: u64| if i < width { uniform } else { zero };
        dirty = dirty_parents(&dirty, node, &hash_pairs);
        uniform = hash_pairs(&[(uniform, uniform)])[0];
        width = width.div_ceil(2);
    }
    Ok(dirty[0].1)
}

/// A tree with all real nodes kept, for roots and openings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerkleTree {
    /// `layers[0]` are the leaves, `layers[D]` the root alone.
    layers: Vec<Vec<Fr>>,
}

impl MerkleTree {
    /// Builds the tree with the sequential reference hasher.
    pub fn build(leaves: Vec<Fr>, depth: u32) -> Result<Self, MerkleError> {
        Self::build_with(leaves, depth, next_layer)
    }

    /// Builds the tree, hashing each level with `hash_layer` (which must agree with
    /// [`next_layer`]; provers pass a parallel version).
    pub fn build_with(
        leaves: Vec<Fr>,
        depth: u32,
        hash_layer: impl Fn(&[Fr], Fr) -> Vec<Fr>,
    ) -> Result<Self, MerkleError> {
        check_shape(leaves.len() as u64, depth)?;
        let zeros = zero_subtree_roots();
        let mut layers = Vec::with_capacity(depth as usize + 1);
        layers.push(leaves);
        for level in 0..depth as usize {
            let parents = hash_layer(&layers[level], zeros[level]);
            layers.push(parents);
        }
        Ok(Self { layers })
    }

    /// A tree from levels hashed elsewhere (a GPU), leaves first. Checks the shape only:
    /// each level must have `ceil(len / 2)` parents of the one below and end in one root.
    pub fn from_layers(layers: Vec<Vec<Fr>>) -> Result<Self, MerkleError> {
        let depth = layers.len().saturating_sub(1) as u32;
        let leaves = layers.first().map_or(0, |l| l.len() as u64);
        check_shape(leaves, depth)?;
        let consistent = layers.windows(2).all(|w| w[1].len() == w[0].len().div_ceil(2));
        if !consistent || layers[depth as usize].len() != 1 {
            return Err(MerkleError::LayerSizes);
        }
        Ok(Self { layers })
    }

    /// The same tree with the leaves `changed` (sorted by index, each once) replaced,
    /// re-hashing only their paths: `O(k · D)` hashes for `k` changed leaves.
    pub fn replace_leaves_with(
        &self,
        changed: &[(u64, Fr)],
        hash_pairs: impl Fn(&[(Fr, Fr)]) -> Vec<Fr>,
    ) -> Result<Self, MerkleError> {
        check_changed(changed, self.layers[0].len() as u64)?;
        let zeros = zero_subtree_roots();
        let mut layers = self.layers.clone();
        let mut dirty = changed.to_vec();
        for level in 0..self.depth() as usize {
            for &(i, v) in &dirty {
                layers[level][i as usize] = v;
            }
            let layer = &layers[level];
            dirty = dirty_parents(&dirty, |i| layer.get(i as usize).copied().unwrap_or(zeros[level]), &hash_pairs);
        }
        let top = self.depth() as usize;
        for &(i, v) in &dirty {
            layers[top][i as usize] = v;
        }
        Ok(Self { layers })
    }

    /// The root.
    pub fn root(&self) -> Fr {
        self.layers[self.layers.len() - 1][0]
    }

    /// `D`.
    pub fn depth(&self) -> u32 {
        (self.layers.len() - 1) as u32
    }

    /// The real leaves (`nb` of them).
    pub fn leaves(&self) -> &[Fr] {
        &self.layers[0]
    }

    /// The opening of leaf `index`.
    pub fn open(&self, index: u64) -> Result<MerklePath, MerkleError> {
        let leaves = self.leaves().len() as u64;
        if index >= leaves {
            return Err(MerkleError::IndexOutOfRange { index, leaves });
        }
        self.open_padded(index)
    }

    /// The opening of position `index` anywhere in the tree's `2^D` leaves, padding (zero
    /// leaves past the real ones) included: what a fraud proof about padding needs.
    pub fn open_padded(&self, index: u64) -> Result<MerklePath, MerkleError> {
        let capacity = 1u128 << self.depth();
        if u128::from(index) >= capacity {
            return Err(MerkleError::IndexOutOfRange { index, leaves: u64::try_from(capacity).unwrap_or(u64::MAX) });
        }
        let zeros = zero_subtree_roots();
        let siblings = (0..self.depth() as usize)
            .map(|level| {
                let sibling = ((index >> level) ^ 1) as usize;
                self.layers[level].get(sibling).copied().unwrap_or(zeros[level])
            })
            .collect();
        Ok(MerklePath { index, siblings })
    }
}

/// An authentication path: the leaf index and its siblings from the leaf level up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerklePath {
    /// The leaf index; its binary digits (least significant first) are the path bits.
    pub index: u64,
    /// `siblings[l]` is the sibling at height `l`.
    pub siblings: Vec<Fr>,
}

impl MerklePath {
    /// `D`.
    pub fn depth(&self) -> u32 {
        self.siblings.len() as u32
    }

    /// Path bits from the leaf up: bit `l` set means the node at height `l` is a right child.
    pub fn bits(&self) -> Vec<bool> {
        (0..self.siblings.len()).map(|l| (self.index >> l) & 1 == 1).collect()
    }

    /// The root this path gives for `leaf`.
    pub fn compute_root(&self, leaf: Fr) -> Fr {
        self.siblings.iter().zip(self.bits()).fold(leaf, |node, (sibling, right)| {
            if right {
                hash2(*sibling, node)
            } else {
                hash2(node, *sibling)
            }
        })
    }

    /// Whether `leaf` sits at `index` under `root` in a tree of `depth` with `leaves` real
    /// leaves; the index must be below `leaves` (DESIGN §2: `i_j < nb`).
    pub fn verify(&self, root: Fr, leaf: Fr, depth: u32, leaves: u64) -> Result<bool, MerkleError> {
        check_shape(leaves, depth)?;
        if self.siblings.len() != depth as usize {
            return Err(MerkleError::PathLength { depth, got: self.siblings.len() });
        }
        if self.index >= leaves {
            return Err(MerkleError::IndexOutOfRange { index: self.index, leaves });
        }
        Ok(self.compute_root(leaf) == root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: u64) -> Vec<Fr> {
        (0..n).map(|i| Fr::from(i * 31 + 7)).collect()
    }

    /// The tree written out in full over all 2^D leaves, padding included.
    fn naive_root(leaves: &[Fr], depth: u32) -> Fr {
        let mut layer: Vec<Fr> = (0..1usize << depth).map(|i| leaves.get(i).copied().unwrap_or(Fr::ZERO)).collect();
        while layer.len() > 1 {
            layer = layer.chunks(2).map(|p| hash2(p[0], p[1])).collect();
        }
        layer[0]
    }

    #[test]
    fn default_depth_is_smallest_fitting_depth_at_least_one() {
        assert_eq!(default_depth(1), 1);
        assert_eq!(default_depth(2), 1);
        assert_eq!(default_depth(3), 2);
        assert_eq!(default_depth(4), 2);
        assert_eq!(default_depth(5), 3);
        assert_eq!(default_depth(1 << 20), 20);
        assert_eq!(default_depth((1 << 20) + 1), 21);
    }

    #[test]
    fn roots_match_the_fully_padded_tree() {
        for (n, depth) in [(1, 1), (1, 3), (2, 1), (3, 2), (5, 3), (5, 5), (8, 3), (13, 4)] {
            let tree = MerkleTree::build(leaves(n), depth).unwrap();
            assert_eq!(tree.root(), naive_root(&leaves(n), depth), "nb={n} D={depth}");
        }
    }

    #[test]
    fn every_opening_verifies_and_binds_index_and_leaf() {
        let (n, depth) = (11, 5);
        let tree = MerkleTree::build(leaves(n), depth).unwrap();
        for i in 0..n {
            let path = tree.open(i).unwrap();
            let leaf = leaves(n)[i as usize];
            assert!(path.verify(tree.root(), leaf, depth, n).unwrap());
            assert!(!path.verify(tree.root(), leaf + Fr::ONE, depth, n).unwrap(), "other leaf");
            let mut moved = path.clone();
            moved.index ^= 1;
            if moved.index < n {
                assert!(!moved.verify(tree.root(), leaf, depth, n).unwrap(), "other index");
            }
            let mut swapped = path.clone();
            swapped.siblings[depth as usize - 1] += Fr::ONE;
            assert!(!swapped.verify(tree.root(), leaf, depth, n).unwrap(), "other sibling");
        }
    }

    #[test]
    fn shape_and_opening_errors() {
        assert_eq!(MerkleTree::build(vec![], 3).unwrap_err(), MerkleError::Empty);
        assert_eq!(MerkleTree::build(leaves(2), 0).unwrap_err(), MerkleError::DepthOutOfRange(0));
        assert_eq!(MerkleTree::build(leaves(2), 33).unwrap_err(), MerkleError::DepthOutOfRange(33));
        assert_eq!(
            MerkleTree::build(leaves(5), 2).unwrap_err(),
            MerkleError::TooManyLeaves { leaves: 5, depth: 2, capacity: 4 }
        );
        let tree = MerkleTree::build(leaves(3), 2).unwrap();
        assert_eq!(tree.open(3).unwrap_err(), MerkleError::IndexOutOfRange { index: 3, leaves: 3 });
        let path = tree.open(1).unwrap();
        // Index 3 is padding: it must be refused even though the arithmetic could run.
        let padding = MerklePath { index: 3, siblings: path.siblings.clone() };
        assert!(padding.verify(tree.root(), Fr::ZERO, 2, 3).is_err());
        assert_eq!(
            MerklePath { index: 1, siblings: vec![Fr::ZERO] }.verify(tree.root(), Fr::ONE, 2, 3).unwrap_err(),
            MerkleError::PathLength { depth: 2, got: 1 }
        );
    }
}
