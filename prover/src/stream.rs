//! Bounded-memory pipelines over files of any size: a checkpoint's tree, an update blob's
//! tree, and an update applied to a checkpoint, each streamed a chunk of
//! [`TreeBuilder::chunk_leaves`] blocks at a time with every chunk hashed on every core.
//! Memory does not grow with the model; roots equal the in-memory paths' of
//! [`crate::commit`] (tests check it).

use std::path::Path;

use pogo_circuits::checkpoint::{Checkpoint, CheckpointWriter};
use pogo_circuits::encoding::{UpdateBlock, BLOCK_WEIGHTS};
use pogo_circuits::field::{fr_to_hex, Fr};
use pogo_circuits::merkle::default_depth;
use pogo_circuits::model::{block_of, ModelError};
use pogo_circuits::tree_file::{TreeBuilder, TreeFileError};
use pogo_circuits::update::{BlobError, UpdateError};
use pogo_circuits::update_stream::UpdateStream;
use rayon::prelude::*;

use crate::commit::{model_leaves, par_next_layer, Progress};
use crate::witness::Sampled;

/// A streamed pipeline failed.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The checkpoint could not be read or decoded, or the new model not written.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A tree could not be built or written.
    #[error(transparent)]
    Tree(#[from] TreeFileError),
    /// The update blob is malformed.
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// The update does not apply to the model.
    #[error(transparent)]
    Update(#[from] UpdateError),
}

/// The model tree of DESIGN §2 for a checkpoint: weights stream from the files a chunk at
/// a time and only the chunks' roots are kept; with `out`, every level is written to that
/// tree file (see [`pogo_circuits::tree_file`]) for openings later. Returns the root and
/// the depth (default: the smallest that fits). Equal to [`crate::commit::model_tree`]'s root.
pub fn checkpoint_tree(
    checkpoint: &Checkpoint,
    depth: Option<u32>,
    out: Option<&Path>,
    progress: &dyn Progress,
) -> Result<(Fr, u32), StreamError> {
    stream_model_tree(checkpoint, depth, out, par_next_layer, |weights| model_leaves(weights, progress))
}

/// The streamed model tree with the leaves of each chunk of weights from `leaves` and each
/// level from `level`: what [`checkpoint_tree`] and [`checkpoint_tree_on`] share.
fn stream_model_tree(
    checkpoint: &Checkpoint,
    depth: Option<u32>,
    out: Option<&Path>,
    level: impl Fn(&[Fr], Fr) -> Vec<Fr>,
    mut leaves: impl FnMut(&[u32]) -> Vec<Fr>,
) -> Result<(Fr, u32), StreamError> {
    let depth = depth.unwrap_or_else(|| default_depth(checkpoint.block_count()));
    let mut builder = TreeBuilder::new(checkpoint.block_count(), depth, out, level)?;
    let chunk = builder.chunk_leaves();
    checkpoint.stream(chunk, |_, weights| -> Result<(), StreamError> { Ok(builder.push(&leaves(weights))?) })?;
    Ok((builder.finish()?, depth))
}

/// Hashes a tree's layers elsewhere than with the CPU's native Poseidon (a GPU): the
/// leaves of a chunk of weights, and one level from its children. Either may fail; the
/// streamed tree then hashes that part on the CPU, with the same result.
pub trait LayerHasher: Sync {
    /// The `H_16` leaves of the blocks of biased `weights` (the last block padded).
    fn leaves(&self, weights: &[u32]) -> Result<Vec<Fr>, String>;
    /// `H_2` of each pair of `children`, `zero` for a missing right child.
    fn level(&self, children: &[Fr], zero: &Fr) -> Result<Vec<Fr>, String>;
    /// What hashes, for reports (`gpu (NVIDIA H100 …)`).
    fn name(&self) -> String;
}

/// [`checkpoint_tree`] with the leaves and levels hashed by `hasher` a chunk at a time:
/// only a chunk's weights and layers move, so memory stays flat. What `hasher` fails to hash
/// is hashed on the CPU; the first such failure comes back beside the root and depth (the
/// root is the same either way).
pub fn checkpoint_tree_on(
    checkpoint: &Checkpoint,
    depth: Option<u32>,
    out: Option<&Path>,
    hasher: &dyn LayerHasher,
    progress: &dyn Progress,
) -> Result<(Fr, u32, Option<String>), StreamError> {
    let failed = std::sync::Mutex::new(None::<String>);
    let fell_back = |why: String| {
        failed.lock().expect("failure record").get_or_insert(why);
    };
    let level = |layer: &[Fr], zero: Fr| {
        hasher.level(layer, &zero).unwrap_or_else(|why| {
            fell_back(why);
            par_next_layer(layer, zero)
        })
    };
    let leaves = |weights: &[u32]| match hasher.leaves(weights) {
        Ok(leaves) => {
            progress.advance(leaves.len() as u64);
            leaves
        }
        Err(why) => {
            fell_back(why);
            model_leaves(weights, progress)
        }
    };
    let (root, depth) = stream_model_tree(checkpoint, depth, out, level, leaves)?;
    Ok((root, depth, failed.into_inner().expect("failure record")))
}

/// Update leaves `U_b` of a chunk of blocks, on every core.
fn update_leaves(blocks: &[UpdateBlock], progress: &dyn Progress) -> Vec<Fr> {
    let leaves = blocks.par_iter().map(UpdateBlock::leaf).collect();
    progress.advance(blocks.len() as u64);
    leaves
}

/// The update tree of DESIGN §2 for an update blob, streamed like [`checkpoint_tree`].
/// Equal to [`crate::commit::update_tree`]'s root; the blob's checksum is checked before
/// the tree file, if any, is put in place.
pub fn update_stream_tree(
    update: &UpdateStream,
    depth: Option<u32>,
    out: Option<&Path>,
    progress: &dyn Progress,
) -> Result<(Fr, u32), StreamError> {
    let depth = depth.unwrap_or_else(|| default_depth(update.block_count()));
    let mut builder = TreeBuilder::new(update.block_count(), depth, out, par_next_layer)?;
    let chunk = builder.chunk_leaves();
    update.blocks(chunk, |_, blocks| -> Result<(), StreamError> {
        Ok(builder.push(&update_leaves(blocks, progress))?)
    })?;
    Ok((builder.finish()?, depth))
}

/// What [`apply_streamed`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// The new model's root at `depth`.
    pub new_root: Fr,
    /// Its depth.
    pub depth: u32,
    /// Weights the update changed.
    pub changed_weights: u64,
}

/// `old + update` for an update held in memory (a sparse one is small), written to `writer`
/// a chunk of the checkpoint at a time: returns the changed blocks' new leaves, in block
/// order, from which the new tree is the old one with those leaves replaced
/// ([`pogo_circuits::tree_file::TreeFile::with_leaves_replaced`]). Memory: one chunk and the
/// update. A weight that would leave `[0, 2^32)` is named as [`Update::apply`] names it; on
/// any error the caller drops the writer, which removes what it wrote.
///
/// [`Update::apply`]: pogo_circuits::update::Update::apply
pub fn apply_update_streamed(
    old: &Checkpoint,
    update: &pogo_circuits::update::Update,
    writer: &mut CheckpointWriter,
) -> Result<Vec<(u64, Fr)>, StreamError> {
    if update.weight_count() != old.weight_count() {
        return Err(UpdateError::ModelSize { update: update.weight_count(), model: old.weight_count() }.into());
    }
    let changed = update.changed();
    let mut leaves = Vec::with_capacity(changed.len());
    let mut next = 0;
    let (mut weights, mut applied) = (Vec::new(), Vec::new());
    old.stream(1 << 14, |first, chunk| -> Result<(), StreamError> {
        weights.clear();
        weights.extend_from_slice(chunk);
        applied.clear();
        let end = first + (chunk.len() as u64).div_ceil(BLOCK_WEIGHTS as u64);
        while let Some((b, block)) = changed.get(next).filter(|(b, _)| *b < end) {
            let k = b - first;
            let new = block.apply(&block_of(&weights, k)).map_err(|e| {
                let global = b * BLOCK_WEIGHTS as u64 + e.position as u64;
                let (tensor, index) = old.locate(global).unwrap_or(("<padding>", global));
                let tensor = tensor.to_string();
                UpdateError::Overflow { block: *b, tensor, index, old: e.old, scale: e.scale, q: e.q }
            })?;
            let start = k as usize * BLOCK_WEIGHTS;
            let keep = (weights.len() - start).min(BLOCK_WEIGHTS);
            weights[start..start + keep].copy_from_slice(&new[..keep]);
            applied.push((*b, new));
            next += 1;
        }
        leaves.par_extend(applied.par_iter().map(|(b, new)| (*b, pogo_circuits::encoding::block_leaf(new))));
        Ok(writer.write(&weights)?)
    })?;
    if let Some((b, _)) = changed.get(next) {
        // `Update` keeps its blocks below its block count, which matches the model's.
        return Err(UpdateError::BlockIndex { index: *b, blocks: old.block_count() }.into());
    }
    Ok(leaves)
}

/// How the update's producer thread ended a chunk early.
enum Feed {
    /// The blob is bad.
    Blob(BlobError),
    /// The consumer stopped listening (it failed first).
    Closed,
}

impl From<BlobError> for Feed {
    fn from(e: BlobError) -> Self {
        Feed::Blob(e)
    }
}

/// `old + update`, every weight, in bounded memory: the old checkpoint and the blob stream
/// side by side (the blob on a thread of its own), each chunk applied exactly, its new
/// leaves hashed and, with `writer`, written (with `tree_out`, the new tree's file too). A
/// blob that records its base model is checked against the old model's root at the base's
/// depth, hashed in the same pass. Nothing is
/// accepted before the blob's checksum: on any error the caller drops the writer, which
/// removes what it wrote.
pub fn apply_streamed(
    old: &Checkpoint,
    update: &UpdateStream,
    depth: Option<u32>,
    mut writer: Option<&mut CheckpointWriter>,
    tree_out: Option<&Path>,
    progress: &dyn Progress,
) -> Result<Applied, StreamError> {
    if update.weight_count() != old.weight_count() {
        return Err(UpdateError::ModelSize { update: update.weight_count(), model: old.weight_count() }.into());
    }
    let (nb, weights) = (old.block_count(), old.weight_count());
    let depth = depth.unwrap_or_else(|| default_depth(nb));
    let mut new_tree = TreeBuilder::new(nb, depth, tree_out, par_next_layer)?;
    let mut base_tree = update.base().map(|b| TreeBuilder::new(nb, b.depth, None, par_next_layer)).transpose()?;
    // Both builders take chunks of the same size: the smaller depth's.
    let chunk = new_tree.chunk_leaves().min(base_tree.as_ref().map_or(usize::MAX, |t| t.chunk_leaves()));
    new_tree = new_tree.with_chunk_height(chunk.trailing_zeros());
    base_tree = base_tree.map(|t| t.with_chunk_height(chunk.trailing_zeros()));
    let mut changed_weights = 0u64;
    std::thread::scope(|scope| -> Result<(), StreamError> {
        let (send, receive) = std::sync::mpsc::sync_channel::<Result<Vec<UpdateBlock>, BlobError>>(1);
        scope.spawn(move || {
            let result = update.blocks(chunk, |_, blocks| -> Result<(), Feed> {
                send.send(Ok(blocks.to_vec())).map_err(|_| Feed::Closed)
            });
            if let Err(Feed::Blob(e)) = result {
                let _ = send.send(Err(e));
            }
        });
        old.stream(chunk, |first, old_weights| -> Result<(), StreamError> {
            // The producer sends exactly one chunk per chunk of blocks, or its error.
            let stopped = |_| BlobError::Decompress(std::io::Error::other("the update blob's reader stopped early"));
            let blocks = receive.recv().map_err(stopped)??;
            let mut new_weights = Vec::with_capacity(old_weights.len());
            for (k, block) in blocks.iter().enumerate() {
                let b = first + k as u64;
                let old_block = block_of(old_weights, k as u64);
                let new_block = block.apply(&old_block).map_err(|e| {
                    let global = b * BLOCK_WEIGHTS as u64 + e.position as u64;
                    let (tensor, index) = old.locate(global).unwrap_or(("<padding>", global));
                    UpdateError::Overflow {
                        block: b,
                        tensor: tensor.to_string(),
                        index,
                        old: e.old,
                        scale: e.scale,
                        q: e.q,
                    }
                })?;
                let used = (weights - b * BLOCK_WEIGHTS as u64).min(BLOCK_WEIGHTS as u64) as usize;
                changed_weights += (0..used).filter(|&j| new_block[j] != old_block[j]).count() as u64;
                new_weights.extend_from_slice(&new_block[..used]);
            }
            if let Some(tree) = base_tree.as_mut() {
                tree.push(&model_leaves(old_weights, &()))?;
            }
            new_tree.push(&model_leaves(&new_weights, progress))?;
            if let Some(writer) = writer.as_deref_mut() {
                writer.write(&new_weights)?;
            }
            Ok(())
        })?;
        // After the last chunk the producer ends with the checksum: closed means it passed.
        match receive.recv() {
            Ok(Err(e)) => Err(e.into()),
            Ok(Ok(_)) => Err(UpdateError::BlockCount { weights, expected: nb, got: nb + 1 }.into()),
            Err(_) => Ok(()),
        }
    })?;
    if let (Some(tree), Some(base)) = (base_tree, update.base()) {
        let got = tree.finish()?;
        if got != base.root {
            return Err(UpdateError::WrongBase {
                expected: fr_to_hex(&base.root),
                got: fr_to_hex(&got),
                depth: base.depth,
            }
            .into());
        }
    }
    Ok(Applied { new_root: new_tree.finish()?, depth, changed_weights })
}

/// The sampled blocks of a round read from its files: the old and new models' blocks from
/// the checkpoints, the update's from one pass over the blob (which checks its checksum).
/// Memory: the samples and one chunk of the blob.
pub fn sampled_blocks(
    old: &Checkpoint,
    new: &Checkpoint,
    update: &UpdateStream,
    indices: &[u64],
) -> Result<Vec<Sampled>, StreamError> {
    old.check_same_layout(new)?;
    let (nb, weights) = (old.block_count(), old.weight_count());
    if update.weight_count() != weights {
        return Err(UpdateError::ModelSize { update: update.weight_count(), model: weights }.into());
    }
    if let Some(&index) = indices.iter().find(|&&i| i >= nb) {
        return Err(UpdateError::BlockIndex { index, blocks: nb }.into());
    }
    let mut blocks = vec![None; indices.len()];
    update.blocks(1 << 12, |first, chunk| -> Result<(), StreamError> {
        let range = first..first + chunk.len() as u64;
        for (slot, &i) in blocks.iter_mut().zip(indices) {
            if range.contains(&i) {
                *slot = Some(chunk[(i - first) as usize].clone());
            }
        }
        Ok(())
    })?;
    indices
        .iter()
        .zip(blocks)
        .map(|(&index, update)| {
            Ok(Sampled {
                index,
                old: old.block(index)?,
                new: new.block(index)?,
                update: update.expect("the pass covers every block below nb"),
            })
        })
        .collect()
}
