//! Fast model and update commitments (DESIGN §2 Trees) on every core.
//!
//! Leaves are hashed in parallel chunks and every tree level in parallel; the tree shape,
//! padding and openings come from [`pogo_circuits::merkle`], so the roots are by
//! construction those of the native reference (and tests check it on random models).

use pogo_circuits::encoding::{block_count, block_leaf};
use pogo_circuits::field::{Field, Fr};
use pogo_circuits::merkle::{check_shape, default_depth, hash_pairs, next_layer, MerkleError, MerkleTree};
use pogo_circuits::model::{block_of, Model};
use pogo_circuits::poseidon::hash2;
use pogo_circuits::update::{Update, UpdateError};
use rayon::prelude::*;

/// Blocks hashed per parallel task (and per progress report).
const CHUNK_BLOCKS: usize = 256;
/// Below this many parents a level is hashed sequentially (threads would cost more).
const PARALLEL_LAYER_MIN: usize = 1024;

/// Receives progress while leaves are hashed.
pub trait Progress: Sync {
    /// `blocks` more leaves are done.
    fn advance(&self, blocks: u64);
}

/// No progress reporting.
impl Progress for () {
    fn advance(&self, _: u64) {}
}

/// `leaf(b)` for `b < nb`, in parallel chunks, reporting progress per chunk.
fn par_leaves(nb: u64, progress: &dyn Progress, leaf: impl Fn(u64) -> Fr + Sync) -> Vec<Fr> {
    let mut leaves = vec![Fr::ZERO; nb as usize];
    leaves.par_chunks_mut(CHUNK_BLOCKS).enumerate().for_each(|(chunk, out)| {
        let first = (chunk * CHUNK_BLOCKS) as u64;
        for (i, slot) in out.iter_mut().enumerate() {
            *slot = leaf(first + i as u64);
        }
        progress.advance(out.len() as u64);
    });
    leaves
}

/// The leaves `L_b` of a flat biased weight vector.
pub fn model_leaves(weights: &[u32], progress: &dyn Progress) -> Vec<Fr> {
    par_leaves(block_count(weights.len() as u64), progress, |b| block_leaf(&block_of(weights, b)))
}

/// The leaves `U_b` of an update.
pub fn update_leaves(update: &Update, progress: &dyn Progress) -> Vec<Fr> {
    par_leaves(update.block_count(), progress, |b| update.leaf(b))
}

/// One tree level in parallel; equal to [`next_layer`].
pub fn par_next_layer(layer: &[Fr], zero: Fr) -> Vec<Fr> {
    if layer.len() < 2 * PARALLEL_LAYER_MIN {
        return next_layer(layer, zero);
    }
    layer.par_chunks(2).map(|pair| hash2(pair[0], pair.get(1).copied().unwrap_or(zero))).collect()
}

/// The tree over `leaves` at `depth` (default: the smallest that fits), levels in parallel.
pub fn tree_from_leaves(leaves: Vec<Fr>, depth: Option<u32>) -> Result<MerkleTree, MerkleError> {
    let depth = depth.unwrap_or_else(|| default_depth(leaves.len() as u64));
    check_shape(leaves.len() as u64, depth)?;
    MerkleTree::build_with(leaves, depth, par_next_layer)
}

/// The model tree of DESIGN §2.
pub fn model_tree(model: &Model, depth: Option<u32>, progress: &dyn Progress) -> Result<MerkleTree, MerkleError> {
    // Check the shape before hours of hashing, not after.
    check_shape(model.block_count(), depth.unwrap_or_else(|| default_depth(model.block_count())))?;
    tree_from_leaves(model_leaves(model.weights(), progress), depth)
}

/// The update tree of DESIGN §2.
pub fn update_tree(update: &Update, depth: Option<u32>, progress: &dyn Progress) -> Result<MerkleTree, MerkleError> {
    check_shape(update.block_count(), depth.unwrap_or_else(|| default_depth(update.block_count())))?;
    tree_from_leaves(update_leaves(update, progress), depth)
}

/// Pairs of children hashed into parents in parallel; equal to [`hash_pairs`].
pub fn par_hash_pairs(pairs: &[(Fr, Fr)]) -> Vec<Fr> {
    if pairs.len() < PARALLEL_LAYER_MIN {
        return hash_pairs(pairs);
    }
    pairs.par_iter().map(|&(l, r)| hash2(l, r)).collect()
}

/// The update root at `depth` (default: the smallest that fits) from the changed blocks'
/// leaves and paths only: `O(k · D)` hashes for `k` changed blocks, whatever the model's
/// size; equal to [`update_tree`]'s root.
pub fn update_root(update: &Update, depth: Option<u32>) -> Result<Fr, MerkleError> {
    let depth = depth.unwrap_or_else(|| default_depth(update.block_count()));
    update.sparse_root_with(depth, par_hash_pairs)
}

/// Applying an update incrementally failed.
#[derive(Debug, thiserror::Error)]
pub enum IncrementalError {
    /// The update does not apply to the model.
    #[error(transparent)]
    Update(#[from] UpdateError),
    /// The tree is not the model's (another leaf count), or the update's indices are bad.
    #[error(transparent)]
    Merkle(#[from] MerkleError),
    /// The old tree has another number of leaves than the model has blocks.
    #[error("the old tree has {tree} leaves but the model has {model} blocks")]
    TreeSize {
        /// Leaves of the tree.
        tree: u64,
        /// Blocks of the model.
        model: u64,
    },
}

/// The new model `old + update` and its tree, from `old`'s tree (which must be `old`'s):
/// only the changed blocks' leaves and their paths are hashed, `O(k · D)` for `k` changed
/// blocks; equal to [`model_tree`] of the new model (tests check it).
pub fn apply_incremental(
    old: &Model,
    old_tree: &MerkleTree,
    update: &Update,
) -> Result<(Model, MerkleTree), IncrementalError> {
    if old_tree.leaves().len() as u64 != old.block_count() {
        return Err(IncrementalError::TreeSize { tree: old_tree.leaves().len() as u64, model: old.block_count() });
    }
    let new = update.apply(old)?;
    let tree = retree(old_tree, &new, update)?;
    Ok((new, tree))
}

/// The tree of `new` (which must be the old tree's model plus `update`) from the old tree:
/// re-hashes the leaves of the blocks `update` changes and their paths only. Where more than
/// half the blocks changed, hashing the whole tree level by level is as cheap, and is done.
pub fn retree(old_tree: &MerkleTree, new: &Model, update: &Update) -> Result<MerkleTree, MerkleError> {
    if 2 * update.changed().len() as u64 > new.block_count() {
        return model_tree(new, Some(old_tree.depth()), &());
    }
    let changed: Vec<(u64, Fr)> = update.changed().par_iter().map(|(b, _)| (*b, new.leaf(*b))).collect();
    old_tree.replace_leaves_with(&changed, par_hash_pairs)
}

/// The model tree on the first GPU if one is usable (`gpu` feature), else on every core.
/// Returns the tree and what hashed it: `Ok(name)` for a GPU, or `Err(why)` saying why the
/// CPU did.
pub fn model_tree_preferring_gpu(
    model: &Model,
    depth: Option<u32>,
    progress: &dyn Progress,
) -> Result<(MerkleTree, Result<String, String>), MerkleError> {
    check_shape(model.block_count(), depth.unwrap_or_else(|| default_depth(model.block_count())))?;
    match gpu_tree(model, depth) {
        Ok((tree, name)) => {
            progress.advance(model.block_count());
            Ok((tree, Ok(name)))
        }
        Err(why) => Ok((model_tree(model, depth, progress)?, Err(why))),
    }
}

/// The first GPU as a [`crate::stream::LayerHasher`] for streamed trees (`gpu` feature), or
/// why there is none.
pub fn gpu_layer_hasher() -> Result<Box<dyn crate::stream::LayerHasher>, String> {
    #[cfg(feature = "gpu")]
    return crate::gpu::device::GpuCommitter::new()
        .map(|gpu| Box::new(gpu) as Box<dyn crate::stream::LayerHasher>)
        .map_err(|e| e.to_string());
    #[cfg(not(feature = "gpu"))]
    Err(NO_GPU_BUILD.to_string())
}

/// Why a build without the `gpu` feature hashes on the CPU.
#[cfg(not(feature = "gpu"))]
const NO_GPU_BUILD: &str = "this pogo was built without GPU support (build with `--features gpu`)";

#[cfg(feature = "gpu")]
fn gpu_tree(model: &Model, depth: Option<u32>) -> Result<(MerkleTree, String), String> {
    let gpu = crate::gpu::device::GpuCommitter::new().map_err(|e| e.to_string())?;
    let tree = gpu.model_tree(model.weights(), depth).map_err(|e| e.to_string())?;
    Ok((tree, gpu.device_name().to_string()))
}

#[cfg(not(feature = "gpu"))]
fn gpu_tree(_: &Model, _: Option<u32>) -> Result<(MerkleTree, String), String> {
    Err(NO_GPU_BUILD.to_string())
}
