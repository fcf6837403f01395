//! Held-out evaluation data as the round contract commits to it (`EvalSet` in
//! `contracts/PogoRounds.sol`): the native reference of the contract's Merkle check and of
//! its draw, so owners build what the contract accepts and tests compare both.
//!
//! A set is a list of batches (opaque bytes: the examples of one evaluation batch). Its
//! tree is binary over keccak-256: leaf `keccak256(0x00 ‖ batch)`, node
//! `keccak256(0x01 ‖ left ‖ right)` (the prefixes keep a node from passing as a leaf),
//! depth ⌈log2 n⌉, missing leaves zero.

use crate::evm::{keccak256, B256, U256};

/// The leaf of a batch.
pub fn leaf(batch: &[u8]) -> B256 {
    let mut preimage = Vec::with_capacity(batch.len() + 1);
    preimage.push(0x00);
    preimage.extend_from_slice(batch);
    keccak256(preimage)
}

fn node(left: B256, right: B256) -> B256 {
    let mut preimage = [0u8; 65];
    preimage[0] = 0x01;
    preimage[1..33].copy_from_slice(left.as_slice());
    preimage[33..].copy_from_slice(right.as_slice());
    keccak256(preimage)
}

/// Depth of the tree over `batches` leaves: ⌈log2 batches⌉ (0 for one).
pub fn depth(batches: u32) -> usize {
    (0..).find(|&d| (1u64 << d) >= u64::from(batches)).unwrap_or(0)
}

/// The tree over a set's batches.
#[derive(Debug, Clone)]
pub struct EvalTree {
    /// Level 0 holds the leaves (padded with zero to a power of two); the last the root.
    levels: Vec<Vec<B256>>,
}

/// A set must hold between 1 and `u32::MAX` batches.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a set of held-out batches holds 1 to 4294967295 batches, not {0}")]
pub struct BadSetSize(pub usize);

impl EvalTree {
    /// The tree over `batches`, in order.
    pub fn new<B: AsRef<[u8]>>(batches: &[B]) -> Result<Self, BadSetSize> {
        let n = u32::try_from(batches.len()).ok().filter(|&n| n > 0).ok_or(BadSetSize(batches.len()))?;
        let mut level: Vec<B256> = batches.iter().map(|b| leaf(b.as_ref())).collect();
        level.resize(1 << depth(n), B256::ZERO);
        let mut levels = vec![level];
        while levels.last().is_some_and(|l| l.len() > 1) {
            let below = levels.last().expect("not empty");
            levels.push(below.chunks(2).map(|p| node(p[0], p[1])).collect());
        }
        Ok(EvalTree { levels })
    }

    /// The root the owner commits to.
    pub fn root(&self) -> B256 {
        self.levels.last().expect("a tree has a root")[0]
    }

    /// The Merkle path of batch `index`, sibling of the leaf first.
    pub fn path(&self, index: u32) -> Vec<B256> {
        let mut i = index as usize;
        self.levels[..self.levels.len() - 1]
            .iter()
            .map(|level| {
                let sibling = level[i ^ 1];
                i /= 2;
                sibling
            })
            .collect()
    }
}

/// Whether `batch` is batch `index` of the set with `root` and `batches` batches, by `path`:
/// exactly the contract's check in `revealEvalData`.
pub fn verify(root: B256, batches: u32, index: u32, batch: &[u8], path: &[B256]) -> bool {
    if path.len() != depth(batches) || index >= batches {
        return false;
    }
    let mut acc = leaf(batch);
    for (level, sibling) in path.iter().enumerate() {
        acc = if (index >> level) & 1 == 0 { node(acc, *sibling) } else { node(*sibling, acc) };
    }
    acc == root
}

/// The pool position phase 1 draws in a set with `left` undrawn batches:
/// `uint256(keccak256(seed1 ‖ "eval")) % left`, as the contract's `evalBatchOf`.
pub fn draw_position(seed1: B256, left: u32) -> u32 {
    let mut preimage = seed1.to_vec();
    preimage.extend_from_slice(b"eval");
    let value = U256::from_be_bytes(keccak256(preimage).0);
    (value % U256::from(left.max(1))).to::<u32>()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batches(n: usize) -> Vec<Vec<u8>> {
        (0..n).map(|i| format!("batch {i}").into_bytes()).collect()
    }

    #[test]
    fn every_batch_verifies_at_its_index_and_nowhere_else() {
        for n in [1usize, 2, 3, 5, 8, 13] {
            let all = batches(n);
            let tree = EvalTree::new(&all).unwrap();
            for (i, b) in all.iter().enumerate() {
                let path = tree.path(i as u32);
                assert!(verify(tree.root(), n as u32, i as u32, b, &path), "n {n}, batch {i}");
                let other = (i + 1) % n;
                if other != i {
                    assert!(!verify(tree.root(), n as u32, other as u32, b, &path), "batch {i} passed as {other}");
                }
                let mut tampered = b.clone();
                tampered[0] ^= 1;
                assert!(!verify(tree.root(), n as u32, i as u32, &tampered, &path), "a changed byte passed");
                let mut short = path.clone();
                short.pop();
                assert!(n == 1 || !verify(tree.root(), n as u32, i as u32, b, &short), "a short path passed");
            }
        }
    }

    #[test]
    fn an_inner_node_does_not_pass_as_a_batch() {
        let all = batches(4);
        let tree = EvalTree::new(&all).unwrap();
        // The preimage of the left inner node, offered as a batch of a depth-1 tree.
        let mut inner = vec![];
        inner.extend_from_slice(leaf(&all[0]).as_slice());
        inner.extend_from_slice(leaf(&all[1]).as_slice());
        let sibling = tree.levels[1][1];
        assert!(!verify(tree.root(), 2, 0, &inner, &[sibling]));
    }

    #[test]
    fn an_empty_set_is_refused() {
        assert_eq!(EvalTree::new::<Vec<u8>>(&[]).unwrap_err(), BadSetSize(0));
        assert_eq!(depth(1), 0);
        assert_eq!(depth(2), 1);
        assert_eq!(depth(3), 2);
        assert!(draw_position(B256::repeat_byte(7), 5) < 5);
    }
}
