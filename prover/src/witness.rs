//! Witness assembly: from an old model, a new model and an update (as files give them) and
//! the sampled indices, the public inputs and per-sample witnesses of `UpdateCircuit{D, S}`.

use pogo_circuits::encoding::{block_leaf, UpdateBlock, BLOCK_WEIGHTS};
use pogo_circuits::field::Fr;
use pogo_circuits::merkle::{MerkleError, MerklePath, MerkleTree};
use pogo_circuits::model::{Model, ModelError};
use pogo_circuits::tree_file::{TreeFile, TreeFileError};
use pogo_circuits::update::{Update, UpdateError};
use pogo_circuits::update_circuit::{PublicInputs, SampleWitness};

use crate::commit::{model_tree, update_tree, Progress};

/// The three committed trees of a round.
pub struct RoundTrees {
    /// Old model.
    pub old: MerkleTree,
    /// New model.
    pub new: MerkleTree,
    /// Update.
    pub update: MerkleTree,
}

/// The files do not form a provable statement.
#[derive(Debug, thiserror::Error)]
pub enum WitnessError {
    /// Old and new models differ in tensors or format.
    #[error("old and new models do not match: {0}")]
    Layout(#[from] ModelError),
    /// The update is for another model size.
    #[error(transparent)]
    Update(#[from] UpdateError),
    /// A sampled block does not exist.
    #[error("sampled index {index} is not below nb = {blocks}")]
    Index {
        /// The index.
        index: u64,
        /// `nb`.
        blocks: u64,
    },
    /// The new model is not the old one plus the update at a sampled block.
    #[error("block {block}: the new model is not the old model plus the update (weight {position} differs)")]
    NotApplied {
        /// The block.
        block: u64,
        /// Position in the block.
        position: usize,
    },
    /// The update moves a sampled weight out of range.
    #[error("block {block}: the update moves weight {position} out of the 32-bit range")]
    Overflow {
        /// The block.
        block: u64,
        /// Position in the block.
        position: usize,
    },
    /// A tree's leaf is not its model's (or update's) block.
    #[error("block {block}: the {which} tree's leaf is not that block's: the tree is of another {which}")]
    OtherTree {
        /// Which tree.
        which: &'static str,
        /// The block.
        block: u64,
    },
    /// The depth does not fit the model.
    #[error(transparent)]
    Merkle(#[from] MerkleError),
    /// A tree file could not be read.
    #[error(transparent)]
    TreeFile(#[from] TreeFileError),
}

/// Builds the three trees on every core.
pub fn round_trees(
    old: &Model,
    new: &Model,
    update: &Update,
    depth: u32,
    progress: &dyn Progress,
) -> Result<RoundTrees, WitnessError> {
    old.check_same_layout(new)?;
    update.check_model(old)?;
    Ok(RoundTrees {
        old: model_tree(old, Some(depth), progress)?,
        new: model_tree(new, Some(depth), progress)?,
        update: update_tree(update, Some(depth), progress)?,
    })
}

/// A tree the witness opens: in memory ([`MerkleTree`]) or on disk ([`TreeFile`]).
pub trait Openings {
    /// The root.
    fn root(&self) -> Fr;
    /// Leaf `index`.
    fn leaf(&self, index: u64) -> Result<Fr, WitnessError>;
    /// The path of leaf `index`.
    fn open(&self, index: u64) -> Result<MerklePath, WitnessError>;
}

impl Openings for MerkleTree {
    fn root(&self) -> Fr {
        MerkleTree::root(self)
    }
    fn leaf(&self, index: u64) -> Result<Fr, WitnessError> {
        let leaves = self.leaves();
        leaves
            .get(index as usize)
            .copied()
            .ok_or(MerkleError::IndexOutOfRange { index, leaves: leaves.len() as u64 }.into())
    }
    fn open(&self, index: u64) -> Result<MerklePath, WitnessError> {
        Ok(MerkleTree::open(self, index)?)
    }
}

impl Openings for TreeFile {
    fn root(&self) -> Fr {
        TreeFile::root(self)
    }
    fn leaf(&self, index: u64) -> Result<Fr, WitnessError> {
        Ok(TreeFile::leaf(self, index)?)
    }
    fn open(&self, index: u64) -> Result<MerklePath, WitnessError> {
        Ok(self.open_path(index)?)
    }
}

/// One sampled block of the old model, the new model and the update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sampled {
    /// The block's index.
    pub index: u64,
    /// Its old weights (the last block padded).
    pub old: [u32; BLOCK_WEIGHTS],
    /// Its new weights.
    pub new: [u32; BLOCK_WEIGHTS],
    /// Its update block.
    pub update: UpdateBlock,
}

/// Public inputs and witnesses for `indices`, checking each sampled block first so a bad
/// statement is reported by name instead of as a failed proof.
pub fn assemble(
    old: &Model,
    new: &Model,
    update: &Update,
    trees: &RoundTrees,
    indices: &[u64],
) -> Result<(PublicInputs, Vec<SampleWitness>), WitnessError> {
    let blocks = old.block_count();
    let sampled = indices
        .iter()
        .map(|&index| {
            if index >= blocks {
                return Err(WitnessError::Index { index, blocks });
            }
            Ok(Sampled { index, old: old.block(index), new: new.block(index), update: update.block(index) })
        })
        .collect::<Result<Vec<_>, _>>()?;
    assemble_sampled(blocks, &sampled, [&trees.old, &trees.new, &trees.update])
}

/// Public inputs and witnesses from the sampled blocks of a round of `blocks` blocks and
/// its old, new and update trees, wherever they are kept. Each sample is checked first:
/// the new block is the old one plus the update, and each tree's leaf is that block's, so
/// a tree of another model is named instead of yielding a proof that fails.
pub fn assemble_sampled(
    blocks: u64,
    sampled: &[Sampled],
    trees: [&dyn Openings; 3],
) -> Result<(PublicInputs, Vec<SampleWitness>), WitnessError> {
    let mut samples = Vec::with_capacity(sampled.len());
    for s in sampled {
        let index = s.index;
        if index >= blocks {
            return Err(WitnessError::Index { index, blocks });
        }
        let applied =
            s.update.apply(&s.old).map_err(|e| WitnessError::Overflow { block: index, position: e.position })?;
        if let Some(position) = (0..BLOCK_WEIGHTS).find(|&j| applied[j] != s.new[j]) {
            return Err(WitnessError::NotApplied { block: index, position });
        }
        let leaves = [block_leaf(&s.old), block_leaf(&s.new), s.update.leaf()];
        for ((tree, leaf), which) in trees.iter().zip(leaves).zip(TREE_NAMES) {
            if tree.leaf(index)? != leaf {
                return Err(WitnessError::OtherTree { which, block: index });
            }
        }
        let [o, n, u] = trees.map(|t| t.open(index));
        samples.push(SampleWitness::from_blocks(&s.old, &s.new, &s.update, [&o?, &n?, &u?]));
    }
    let [old_root, new_root, update_root] = trees.map(|t| t.root());
    let inputs =
        PublicInputs { old_root, new_root, update_root, blocks, indices: sampled.iter().map(|s| s.index).collect() };
    Ok((inputs, samples))
}

/// The three trees of a round, in [`assemble_sampled`]'s order.
const TREE_NAMES: [&str; 3] = ["old model", "new model", "update"];
