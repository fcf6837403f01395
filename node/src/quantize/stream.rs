//! The quantizer over files of any size: base and trained checkpoints stream side by side
//! with the residual, a chunk of blocks at a time, and every output is written as it goes
//! (the update blob, the new model, the new residual, and optionally the three trees), each
//! a temporary file until the end. Memory does not grow with the model; with a density
//! below 1 a first pass selects the blocks to keep, holding 16 bytes per kept block.

use std::path::Path;

use pogo_circuits::blob_writer::{BlobWriter, BlobWritten};
use pogo_circuits::checkpoint::{Checkpoint, CheckpointWriter};
use pogo_circuits::encoding::{block_count, block_leaf, UpdateBlock, BLOCK_WEIGHTS};
use pogo_circuits::field::Fr;
use pogo_circuits::merkle::default_depth;
use pogo_circuits::model::block_of;
use pogo_circuits::tree_file::TreeBuilder;
use pogo_circuits::update::{BaseModel, Update};
use pogo_prover::commit::{model_leaves, par_next_layer, Progress};
use pogo_prover::stream::StreamError;
use rayon::prelude::*;

use super::{
    block_norms, check_density, quantize_chunk, Kept, QuantizeError, QuantizeReport, ResidualFile, ResidualWriter,
    Tally, TopBlocks, CHUNK_HEIGHT,
};

/// A chunk of blocks from `first`: the weights of both models and the residual for them.
struct Chunk<'a> {
    first: u64,
    base: &'a [u32],
    trained: &'a [u32],
    carried: &'a [i64],
}

/// Where [`quantize_streamed`] reads and writes.
pub struct QuantizeFiles<'a> {
    /// The update blob to write.
    pub blob: &'a Path,
    /// The exact new model to write.
    pub new_model: &'a Path,
    /// A sharded checkpoint's index whose layout the new model takes (see
    /// [`pogo_circuits::model::Model::shard_layout`]), or none for one file.
    pub layout: Option<&'a Path>,
    /// The error-feedback residual: read if the file exists (else zero), then rewritten.
    pub residual: Option<&'a Path>,
    /// Tree files to write for the base model, the new model and the update (for openings
    /// and proofs later without hashing again).
    pub trees: [Option<&'a Path>; 3],
}

/// What [`quantize_streamed`] did.
#[derive(Debug, Clone, Copy)]
pub struct StreamQuantized {
    /// Statistics, equal to the in-memory quantizer's.
    pub report: QuantizeReport,
    /// The blob written.
    pub blob: BlobWritten,
    /// Roots of the base model, the new model and the update at `depth`.
    pub roots: [Fr; 3],
    /// Their depth.
    pub depth: u32,
}

/// [`super::quantize_sparse`] over checkpoint files, in bounded memory (see the module
/// docs): the same update, new model, residual and report (tests check it), the blob
/// recording the base model's root. Progress counts blocks, once per pass (two passes with
/// a density below 1, one otherwise).
pub fn quantize_streamed(
    base: &Checkpoint,
    trained: &Checkpoint,
    density: f64,
    depth: Option<u32>,
    files: &QuantizeFiles<'_>,
    progress: &dyn Progress,
) -> Result<StreamQuantized, QuantizeError> {
    quantize_in_chunks(base, trained, density, depth, files, progress, CHUNK_HEIGHT)
}

/// [`quantize_streamed`] in chunks of `2^chunk_height` blocks.
fn quantize_in_chunks(
    base: &Checkpoint,
    trained: &Checkpoint,
    density: f64,
    depth: Option<u32>,
    files: &QuantizeFiles<'_>,
    progress: &dyn Progress,
    chunk_height: u32,
) -> Result<StreamQuantized, QuantizeError> {
    check_density(density)?;
    base.check_same_layout(trained)?;
    let (n, nb) = (base.weight_count(), base.block_count());
    let depth = depth.unwrap_or_else(|| default_depth(nb));
    let residual = match files.residual {
        Some(path) if path.exists() => {
            let file = ResidualFile::open(path)?;
            if file.len() != n {
                return Err(QuantizeError::Residual { weights: n, residual: file.len() });
            }
            Some(file)
        }
        _ => None,
    };
    let builder = |out: Option<&Path>| -> Result<_, StreamError> {
        Ok(TreeBuilder::new(nb, depth, out, par_next_layer)?.with_chunk_height(chunk_height))
    };
    let [mut base_tree, mut new_tree, mut update_tree] =
        [builder(files.trees[0])?, builder(files.trees[1])?, builder(files.trees[2])?];
    let chunk = base_tree.chunk_leaves() as u64;
    let chunks = |f: &mut dyn FnMut(Chunk<'_>) -> Result<(), QuantizeError>| {
        let (mut old, mut new, mut carried) = (Vec::new(), Vec::new(), Vec::new());
        let mut first = 0;
        while first < nb {
            let count = chunk.min(nb - first);
            old.clear();
            new.clear();
            carried.clear();
            // A bad value in either file is a read error, not a layout mismatch.
            base.read_blocks(first, count, &mut old).map_err(StreamError::from)?;
            trained.read_blocks(first, count, &mut new).map_err(StreamError::from)?;
            match &residual {
                Some(file) => file.read(first * BLOCK_WEIGHTS as u64, old.len() as u64, &mut carried)?,
                None => carried.resize(old.len(), 0),
            }
            f(Chunk { first, base: &old, trained: &new, carried: &carried })?;
            first += count;
        }
        Ok::<(), QuantizeError>(())
    };
    let kept = match TopBlocks::new(nb, density) {
        None => Kept::All,
        Some(mut top) => {
            chunks(&mut |Chunk { first, base: old, trained: new, carried }| {
                for (k, norm) in block_norms(old, new, carried).into_iter().enumerate() {
                    top.offer(first + k as u64, norm);
                }
                progress.advance(block_count(old.len() as u64));
                Ok(())
            })?;
            top.finish()
        }
    };
    let mut blob = BlobWriter::create(files.blob, n)?;
    let tensors: Vec<_> = base.tensors().cloned().collect();
    let mut model =
        CheckpointWriter::create(files.new_model, files.layout, &tensors, base.format()).map_err(StreamError::from)?;
    let mut residual_out = files.residual.map(|path| ResidualWriter::create(path, n)).transpose()?;
    let mut tally = Tally::default();
    chunks(&mut |Chunk { first, base: old, trained: new, carried }| {
        let q = quantize_chunk(first, old, new, carried, &kept, &mut tally);
        let old_leaves = model_leaves(old, &());
        let new_leaves: Vec<Fr> = q
            .blocks
            .par_iter()
            .enumerate()
            .map(|(k, block)| {
                if *block == UpdateBlock::zero() {
                    old_leaves[k]
                } else {
                    block_leaf(&block_of(&q.new_weights, k as u64))
                }
            })
            .collect();
        let update_leaves: Vec<Fr> = q
            .blocks
            .par_iter()
            .map(|block| if *block == UpdateBlock::zero() { Update::unchanged_leaf() } else { block.leaf() })
            .collect();
        base_tree.push(&old_leaves).map_err(StreamError::from)?;
        new_tree.push(&new_leaves).map_err(StreamError::from)?;
        update_tree.push(&update_leaves).map_err(StreamError::from)?;
        blob.push(&q.blocks)?;
        model.write(&q.new_weights).map_err(StreamError::from)?;
        if let Some(out) = residual_out.as_mut() {
            out.write(&q.residual)?;
        }
        progress.advance(q.blocks.len() as u64);
        Ok(())
    })?;
    let finished = |tree: TreeBuilder<_>| tree.finish().map_err(StreamError::from);
    let roots = [finished(base_tree)?, finished(new_tree)?, finished(update_tree)?];
    let blob = blob.finish(Some(BaseModel { root: roots[0], depth }))?;
    model.finish().map_err(StreamError::from)?;
    // Last: a residual is only replaced once the update it goes with is in place.
    if let Some(out) = residual_out {
        out.finish()?;
    }
    Ok(StreamQuantized { report: tally.finish(), blob, roots, depth })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quantize::{quantize_sparse, Residual};
    use pogo_circuits::encoding::bias;
    use pogo_circuits::model::{Model, TensorInfo};
    use pogo_prover::commit::{model_tree, update_tree};
    use proptest::prelude::*;

    /// A model of two tensors (so chunks cross a tensor boundary) from biased weights.
    fn model(weights: Vec<u32>) -> Model {
        let split = weights.len() / 3;
        let tensors = vec![
            TensorInfo { name: "a".into(), shape: vec![split] },
            TensorInfo { name: "b".into(), shape: vec![weights.len() - split] },
        ];
        Model::new(Default::default(), tensors, weights).unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(12))]
        /// Streamed in chunks of 1 to 8 blocks, the quantizer writes the in-memory one's blob,
        /// model and residual bytes, and reports its statistics and roots.
        #[test]
        fn streamed_equals_in_memory(
            rows in prop::collection::vec((-1_000_000i32..1_000_000, -40_000i32..40_000, -9_000i64..9_000), 3..2000),
            density in prop::sample::select(vec![1.0, 0.5, 0.1, 1e-9]),
            height in 0u32..4,
            carried in any::<bool>(),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let path = |name: &str| dir.path().join(name);
            let base = model(rows.iter().map(|(w, _, _)| bias(*w)).collect());
            let trained = model(rows.iter().map(|(w, d, _)| bias(w + d)).collect());
            base.save(&path("base.safetensors")).unwrap();
            trained.save(&path("trained.safetensors")).unwrap();
            let start = Residual::from_values(rows.iter().map(|(_, _, r)| if carried { *r } else { 0 }).collect());
            if carried {
                start.save(&path("r")).unwrap();
            }
            let mut residual = start.clone();
            let whole = quantize_sparse(&base, &trained, &mut residual, density).unwrap();
            // In memory in chunks as small as the streamed ones: the same.
            let mut chunked = start.clone();
            let small = crate::quantize::quantize_sparse_in_chunks(&base, &trained, &mut chunked, density, None, height).unwrap();
            prop_assert_eq!((&small.update, &small.new_model, &small.report, &chunked), (&whole.update, &whole.new_model, &whole.report, &residual));
            let depth = pogo_circuits::merkle::default_depth(base.block_count()) + 1;
            let base_tree = model_tree(&base, Some(depth), &()).unwrap();
            let blob = whole.update.clone().with_base(base_tree.root(), depth).to_blob();

            let open = |name: &str| Checkpoint::open(&path(name), None).unwrap();
            let (r, u, n) = (path("r"), path("u.pogo"), path("new.safetensors"));
            let trees = [path("old.tree"), path("new.tree"), path("update.tree")];
            let files = QuantizeFiles {
                blob: &u,
                new_model: &n,
                layout: None,
                residual: Some(&r),
                trees: [Some(&trees[0]), Some(&trees[1]), Some(&trees[2])],
            };
            let streamed = quantize_in_chunks(&open("base.safetensors"), &open("trained.safetensors"), density, Some(depth), &files, &(), height).unwrap();
            prop_assert_eq!(std::fs::read(&u).unwrap(), blob);
            whole.new_model.save(&path("whole.safetensors")).unwrap();
            prop_assert_eq!(std::fs::read(&n).unwrap(), std::fs::read(path("whole.safetensors")).unwrap());
            prop_assert_eq!(Residual::load(&r).unwrap(), residual);
            prop_assert_eq!(streamed.report, whole.report);
            let roots = [
                base_tree.root(),
                model_tree(&whole.new_model, Some(depth), &()).unwrap().root(),
                update_tree(&whole.update, Some(depth), &()).unwrap().root(),
            ];
            prop_assert_eq!(streamed.roots, roots);
            for (file, root) in trees.iter().zip(roots) {
                prop_assert_eq!(pogo_circuits::tree_file::TreeFile::open(file).unwrap().root(), root);
            }
        }
    }

    #[test]
    fn a_residual_of_another_size_and_other_layouts_are_refused_writing_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name);
        model(vec![bias(5); 300]).save(&path("base.safetensors")).unwrap();
        model(vec![bias(5); 301]).save(&path("other.safetensors")).unwrap();
        Residual::zero(299).save(&path("r")).unwrap();
        let open = |name: &str| Checkpoint::open(&path(name), None).unwrap();
        let (u, n, r) = (path("u.pogo"), path("n.safetensors"), path("r"));
        let files = QuantizeFiles { blob: &u, new_model: &n, layout: None, residual: Some(&r), trees: [None; 3] };
        let base = open("base.safetensors");
        let err = quantize_streamed(&base, &base, 1.0, None, &files, &()).unwrap_err();
        assert!(matches!(err, QuantizeError::Residual { weights: 300, residual: 299 }), "{err}");
        let err = quantize_streamed(&base, &open("other.safetensors"), 1.0, None, &files, &()).unwrap_err();
        assert!(err.to_string().contains("tensor 1 (in model order) is b[200] vs b[201]"), "{err}");
        let err = quantize_streamed(&base, &base, 0.0, None, &files, &()).unwrap_err();
        assert!(matches!(err, QuantizeError::Density(_)));
        // A NaN in the trained model is named as such, with its tensor and element.
        let mut floats: Vec<f32> = vec![0.5; 300];
        floats[250] = f32::NAN;
        let bytes = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        let (a, b) = (bytes(&floats[..100]), bytes(&floats[100..]));
        let views = [
            ("a", safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![100], &a).unwrap()),
            ("b", safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![200], &b).unwrap()),
        ];
        std::fs::write(path("nan.safetensors"), safetensors::serialize(views, None).unwrap()).unwrap();
        let nan = Checkpoint::open(&path("nan.safetensors"), Some(base.format())).unwrap();
        let plain = QuantizeFiles { residual: None, ..files };
        let err = quantize_streamed(&base, &nan, 1.0, None, &plain, &()).unwrap_err().to_string();
        assert!(err.contains("\"b\", element 150") && !err.contains("do not match"), "{err}");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 4, "only the inputs: {names:?}");
    }
}
