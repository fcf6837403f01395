//! Witness assembly: from an old model, a new model and an update (as files give them) and
//! the sampled indices, the public inputs and per-sample witnesses of `UpdateCircuit{D, S}`.

use pogo_circuits::merkle::{MerkleError, MerkleTree};
use pogo_circuits::model::{Model, ModelError};
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
    /// The depth does not fit the model.
    #[error(transparent)]
    Merkle(#[from] MerkleError),
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
    let mut samples = Vec::with_capacity(indices.len());
    for &index in indices {
        if index >= blocks {
            return Err(WitnessError::Index { index, blocks });
        }
        let (old_block, new_block) = (old.block(index), new.block(index));
        let applied = update.apply_block(old, index)?;
        if let Some(position) = (0..old_block.len()).find(|&j| applied[j] != new_block[j]) {
            return Err(WitnessError::NotApplied { block: index, position });
        }
        let [o, n, u] = [&trees.old, &trees.new, &trees.update].map(|t| t.open(index));
        let paths = [&o?, &n?, &u?];
        samples.push(SampleWitness::from_blocks(&old_block, &new_block, &update.block(index), paths));
    }
    let inputs = PublicInputs {
        old_root: trees.old.root(),
        new_root: trees.new.root(),
        update_root: trees.update.root(),
        blocks,
        indices: indices.to_vec(),
    };
    Ok((inputs, samples))
}
