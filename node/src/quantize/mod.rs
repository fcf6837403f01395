//! The quantizer (DESIGN §3 step 2): turns the difference between a base model and a trained
//! model into a 4-bit update with one absmax scale per block, rounding to nearest, and
//! computes the exact new model by DESIGN §2. It never produces an update that overflows.

mod residual;
mod stream;

pub use residual::{Residual, ResidualFile, ResidualFileError, ResidualWriter};
pub use stream::{quantize_streamed, QuantizeFiles, StreamQuantized};

use pogo_circuits::encoding::{apply_one, block_count, unbias, Nibble, UpdateBlock, BLOCK_WEIGHTS};
use pogo_circuits::model::{block_of, Model, ModelError};
use pogo_circuits::update::{Update, UpdateError};
use rayon::prelude::*;

/// Largest |q| the absmax scale maps to (the range `[-8, 7]` is used symmetrically).
const Q_MAX: i64 = 7;

/// What quantization did, in integer units of `2^-F`.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct QuantizeReport {
    /// Blocks with a non-zero scale.
    pub changed_blocks: u64,
    /// Weights whose update value is non-zero.
    pub changed_weights: u64,
    /// Weights whose rounded value was pulled toward zero to stay inside `[0, 2^32)`.
    pub clamped_weights: u64,
    /// Largest |trained − new| over all weights (units of `2^-F`).
    pub max_error: u64,
    /// Root mean square of trained − new (units of `2^-F`).
    pub rms_error: f64,
}

/// The update, the exact new model and a report.
pub struct Quantized {
    /// Per-block scales and nibbles.
    pub update: Update,
    /// `base` with the update applied exactly.
    pub new_model: Model,
    /// Statistics.
    pub report: QuantizeReport,
}

/// Quantization failed.
#[derive(Debug, thiserror::Error)]
pub enum QuantizeError {
    /// Base and trained models differ in layout or format.
    #[error("base and trained models do not match: {0}")]
    Layout(#[from] ModelError),
    /// Internal consistency (cannot happen for valid models).
    #[error(transparent)]
    Update(#[from] UpdateError),
    /// A density outside (0, 1].
    #[error("the density {0} is not in (0, 1]: it is the fraction of blocks an update may change")]
    Density(f64),
    /// The carried error is for a model of another size.
    #[error("the error-feedback residual has {residual} weights, the model {weights}")]
    Residual {
        /// Weights of the model.
        weights: u64,
        /// Weights in the residual.
        residual: u64,
    },
    /// A streamed input or output failed (checkpoint, tree file).
    #[error(transparent)]
    Stream(#[from] pogo_prover::stream::StreamError),
    /// The update blob could not be written.
    #[error(transparent)]
    Blob(#[from] pogo_circuits::update::BlobError),
    /// The residual file could not be read or written.
    #[error(transparent)]
    ResidualFile(#[from] ResidualFileError),
    /// Block priorities for a model of another size.
    #[error("{priorities} block priorities given for a model of {blocks} blocks")]
    Priorities {
        /// Blocks in the model.
        blocks: u64,
        /// Priorities given.
        priorities: u64,
    },
}

/// Quantizes `trained − base` block by block.
pub fn quantize(base: &Model, trained: &Model) -> Result<Quantized, QuantizeError> {
    quantize_with_feedback(base, trained, &mut Residual::zero(base.weight_count()))
}

/// Quantizes `trained − base + residual` block by block and leaves in `residual` what the
/// update did not apply (exactly: target − applied, clamps included).
pub fn quantize_with_feedback(
    base: &Model,
    trained: &Model,
    residual: &mut Residual,
) -> Result<Quantized, QuantizeError> {
    quantize_sparse(base, trained, residual, 1.0)
}

/// The blocks a density `ρ` keeps: the `ceil(ρ · nb)` blocks of the highest priority, ties
/// to the lower index. The priority is the Euclidean (L2) norm of the block's target change
/// `trained − base + residual` unless the caller gives one ([`quantize_sparse_by`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kept {
    /// Every block (density 1).
    All,
    /// These blocks, by increasing index.
    Only(Vec<u64>),
}

impl Kept {
    fn contains(&self, b: u64) -> bool {
        match self {
            Kept::All => true,
            Kept::Only(blocks) => blocks.binary_search(&b).is_ok(),
        }
    }
}

/// A block offered to [`TopBlocks`], ordered so that the greater is the worse: the smaller
/// norm, then the higher index.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    norm: f64,
    block: u64,
}

impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.norm.total_cmp(&self.norm).then(self.block.cmp(&other.block))
    }
}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for Candidate {}

/// Selects [`Kept`] from every block's norm, offered in any order, holding only the blocks
/// kept so far (16 bytes each: memory in proportion to the update, not the model).
pub(crate) struct TopBlocks {
    keep: usize,
    /// The worst kept block on top.
    heap: std::collections::BinaryHeap<Candidate>,
}

impl TopBlocks {
    /// A selection of `ceil(density · blocks)` of `blocks` blocks (at least one); `None`
    /// where that is every block (nothing to select).
    pub(crate) fn new(blocks: u64, density: f64) -> Option<Self> {
        let keep = ((density * blocks as f64).ceil() as u64).clamp(1, blocks);
        (keep < blocks).then(|| TopBlocks { keep: keep as usize, heap: Default::default() })
    }

    /// Block `block`'s priority (its target norm, or a given priority; NaN is the lowest).
    pub(crate) fn offer(&mut self, block: u64, norm: f64) {
        let norm = if norm.is_nan() { f64::NEG_INFINITY } else { norm };
        let candidate = Candidate { norm, block };
        if self.heap.len() < self.keep {
            self.heap.push(candidate);
        } else if self.heap.peek().is_some_and(|worst| candidate < *worst) {
            self.heap.pop();
            self.heap.push(candidate);
        }
    }

    /// The blocks kept.
    pub(crate) fn finish(self) -> Kept {
        let mut blocks: Vec<u64> = self.heap.into_iter().map(|c| c.block).collect();
        blocks.sort_unstable();
        Kept::Only(blocks)
    }
}

/// Squared L2 norms of the target changes of the blocks of a chunk (weights of `base` and
/// `trained` from a block boundary, `carried` for the same weights).
pub(crate) fn block_norms(base: &[u32], trained: &[u32], carried: &[i64]) -> Vec<f64> {
    (0..block_count(base.len() as u64))
        .into_par_iter()
        .map(|k| chunk_target(base, trained, carried, k).iter().map(|&d| (d as f64) * (d as f64)).sum())
        .collect()
}

/// Block `k` of a chunk's target change.
fn chunk_target(base: &[u32], trained: &[u32], carried: &[i64], k: u64) -> [i64; BLOCK_WEIGHTS] {
    let start = k as usize * BLOCK_WEIGHTS;
    let carried = std::array::from_fn(|j| carried.get(start + j).copied().unwrap_or(0));
    target(&block_of(base, k), &block_of(trained, k), &carried)
}

/// Running totals of a [`QuantizeReport`], added to block by block in order.
#[derive(Default)]
pub(crate) struct Tally {
    report: QuantizeReport,
    squared: f64,
    weights: u64,
}

impl Tally {
    fn add(&mut self, block: &UpdateBlock, stats: &BlockStats) {
        self.report.changed_blocks += u64::from(block.scale != 0);
        self.report.changed_weights += stats.changed;
        self.report.clamped_weights += stats.clamped;
        self.report.max_error = self.report.max_error.max(stats.max_error);
        self.squared += stats.squared_error;
    }

    pub(crate) fn finish(mut self) -> QuantizeReport {
        self.report.rms_error = (self.squared / self.weights.max(1) as f64).sqrt();
        self.report
    }
}

/// A chunk quantized: its update blocks, its new weights and what it left unapplied.
pub(crate) struct QuantizedChunk {
    pub(crate) blocks: Vec<UpdateBlock>,
    pub(crate) new_weights: Vec<u32>,
    pub(crate) residual: Vec<i64>,
}

/// Quantizes the blocks `first..` of a chunk: `base` and `trained` are the chunk's weights
/// (from a block boundary; a last partial block unpadded), `carried` the residual for the
/// same weights; blocks outside `kept` are left unchanged with their whole target carried.
/// Both quantizers, in memory and streamed, are this function over one chunk or many.
pub(crate) fn quantize_chunk(
    first: u64,
    base: &[u32],
    trained: &[u32],
    carried: &[i64],
    kept: &Kept,
    tally: &mut Tally,
) -> QuantizedChunk {
    let per_block: Vec<_> = (0..block_count(base.len() as u64))
        .into_par_iter()
        .map(|k| {
            let delta = chunk_target(base, trained, carried, k);
            let old = block_of(base, k);
            if kept.contains(first + k) {
                let (block, stats, left) = quantize_block(&old, &delta);
                let new = block.apply(&old).expect("the quantizer steps back from every overflow");
                (block, stats, left, new)
            } else {
                (UpdateBlock::zero(), BlockStats::unapplied(&delta), delta, old)
            }
        })
        .collect();
    let n = base.len();
    let mut out = QuantizedChunk {
        blocks: Vec::with_capacity(per_block.len()),
        new_weights: Vec::with_capacity(n),
        residual: Vec::with_capacity(n),
    };
    for (block, stats, left, new) in per_block {
        let used = (n - out.new_weights.len()).min(BLOCK_WEIGHTS);
        tally.add(&block, &stats);
        out.new_weights.extend_from_slice(&new[..used]);
        out.residual.extend_from_slice(&left[..used]);
        out.blocks.push(block);
    }
    tally.weights += n as u64;
    out
}

/// [`quantize_with_feedback`] keeping only a fraction `density` ∈ (0, 1] of the blocks
/// (block-sparse updates): the `ceil(ρ · nb)` blocks whose target `trained − base + residual`
/// has the largest L2 norm are quantized as usual; every other block is left unchanged and
/// its whole target carried in `residual`, so nothing is lost, only delayed.
pub fn quantize_sparse(
    base: &Model,
    trained: &Model,
    residual: &mut Residual,
    density: f64,
) -> Result<Quantized, QuantizeError> {
    quantize_sparse_in_chunks(base, trained, residual, density, None, CHUNK_HEIGHT)
}

/// [`quantize_sparse`] keeping the `ceil(ρ · nb)` blocks of the highest `priority` (one per
/// block, higher first; a NaN counts as the lowest) instead of the largest L2 norm. The
/// trainer's rounds pass each block's first-order loss decrease
/// ([`crate::train::Trainer::block_gains`]): what a block does for the committed model, which
/// the size of its change alone does not tell.
pub fn quantize_sparse_by(
    base: &Model,
    trained: &Model,
    residual: &mut Residual,
    density: f64,
    priority: &[f64],
) -> Result<Quantized, QuantizeError> {
    quantize_sparse_in_chunks(base, trained, residual, density, Some(priority), CHUNK_HEIGHT)
}

/// [`quantize_sparse`] (or, with `priority`, [`quantize_sparse_by`]) in chunks of
/// `2^chunk_height` blocks.
pub(crate) fn quantize_sparse_in_chunks(
    base: &Model,
    trained: &Model,
    residual: &mut Residual,
    density: f64,
    priority: Option<&[f64]>,
    chunk_height: u32,
) -> Result<Quantized, QuantizeError> {
    check_density(density)?;
    base.check_same_layout(trained)?;
    let n = base.weight_count();
    if residual.0.len() as u64 != n {
        return Err(QuantizeError::Residual { weights: n, residual: residual.0.len() as u64 });
    }
    if let Some(p) = priority.filter(|p| p.len() as u64 != base.block_count()) {
        return Err(QuantizeError::Priorities { blocks: base.block_count(), priorities: p.len() as u64 });
    }
    // Chunk by chunk, as the streamed quantizer goes, so that what is in flight beside the
    // models (about 40 bytes a weight for a chunk) stays small.
    let chunks = || {
        (0..base.block_count()).step_by(1 << chunk_height).map(|first| {
            let start = first as usize * BLOCK_WEIGHTS;
            let end = (start + (BLOCK_WEIGHTS << chunk_height)).min(n as usize);
            (first, start..end)
        })
    };
    let (old, new) = (base.weights(), trained.weights());
    let kept = match TopBlocks::new(base.block_count(), density) {
        None => Kept::All,
        Some(mut top) => {
            match priority {
                Some(p) => p.iter().enumerate().for_each(|(b, &p)| top.offer(b as u64, p)),
                None => {
                    for (first, r) in chunks() {
                        let norms = block_norms(&old[r.clone()], &new[r.clone()], &residual.0[r]);
                        for (k, norm) in norms.into_iter().enumerate() {
                            top.offer(first + k as u64, norm);
                        }
                    }
                }
            }
            top.finish()
        }
    };
    let mut tally = Tally::default();
    let (mut blocks, mut weights) = (Vec::new(), Vec::with_capacity(n as usize));
    for (first, r) in chunks() {
        let q = quantize_chunk(first, &old[r.clone()], &new[r.clone()], &residual.0[r.clone()], &kept, &mut tally);
        blocks.extend(q.blocks);
        weights.extend(q.new_weights);
        // What this chunk left unapplied replaces what it carried in.
        residual.0[r].copy_from_slice(&q.residual);
    }
    let update = Update::new(n, blocks)?;
    let new_model = base.with_weights(weights)?;
    Ok(Quantized { update, new_model, report: tally.finish() })
}

/// Both quantizers work in chunks of `2^14` blocks (1.8 million weights): with the residual
/// in and out at 8 bytes a weight, about 80 MB in flight.
const CHUNK_HEIGHT: u32 = 14;

/// Refuses a density outside (0, 1].
pub(crate) fn check_density(density: f64) -> Result<(), QuantizeError> {
    if !(density > 0.0 && density <= 1.0) {
        return Err(QuantizeError::Density(density));
    }
    Ok(())
}

#[derive(Default)]
struct BlockStats {
    changed: u64,
    clamped: u64,
    max_error: u64,
    squared_error: f64,
}

impl BlockStats {
    /// A block left out: its whole target is the error.
    fn unapplied(delta: &[i64; BLOCK_WEIGHTS]) -> Self {
        BlockStats {
            max_error: delta.iter().map(|d| d.unsigned_abs()).max().unwrap_or(0),
            squared_error: delta.iter().map(|&d| (d as f64).powi(2)).sum(),
            ..Self::default()
        }
    }
}

/// A block's target change `trained − base + carried`. Padding weights are 2^31 in both
/// models with nothing carried, so their target (and update) is zero.
fn target(
    base: &[u32; BLOCK_WEIGHTS],
    trained: &[u32; BLOCK_WEIGHTS],
    carried: &[i64; BLOCK_WEIGHTS],
) -> [i64; BLOCK_WEIGHTS] {
    std::array::from_fn(|j| i64::from(unbias(trained[j])) - i64::from(unbias(base[j])) + carried[j])
}

/// One block: the update for the target `delta`, its statistics, and what it left unapplied.
fn quantize_block(
    base: &[u32; BLOCK_WEIGHTS],
    delta: &[i64; BLOCK_WEIGHTS],
) -> (UpdateBlock, BlockStats, [i64; BLOCK_WEIGHTS]) {
    let delta = *delta;
    // A step larger than the whole 32-bit range can never be applied: cap the scale so that
    // s < 2^32 (the rest stays in the residual and clamps keep the result in range).
    let absmax = (delta.iter().map(|d| d.unsigned_abs()).max().unwrap_or(0) as i64).min(Q_MAX * i64::from(u32::MAX));
    // s = ceil(absmax / 7) < 2^32, so |round(d / s)| ≤ 7 where |d| ≤ absmax.
    let scale = (absmax + Q_MAX - 1) / Q_MAX;
    let mut block = UpdateBlock { scale: scale as u32, nibbles: [Nibble::ZERO; BLOCK_WEIGHTS] };
    let mut stats = BlockStats::default();
    if scale == 0 {
        return (block, stats, delta);
    }
    let mut left = [0i64; BLOCK_WEIGHTS];
    for j in 0..BLOCK_WEIGHTS {
        // Round to nearest (ties away from −∞): floor((2d + s) / 2s).
        let mut q = (2 * delta[j] + scale).div_euclid(2 * scale).clamp(-Q_MAX, Q_MAX);
        let nibble = |q: i64| Nibble::from_signed(q as i32).expect("|q| <= 7 by the choice of scale");
        // Rounding may step just past the edge of [0, 2^32); step back toward zero.
        while apply_one(base[j], block.scale, nibble(q)).is_none() {
            q -= q.signum();
            stats.clamped += 1;
        }
        block.nibbles[j] = nibble(q);
        stats.changed += u64::from(q != 0);
        left[j] = delta[j] - scale * q;
        let error = left[j].unsigned_abs();
        stats.max_error = stats.max_error.max(error);
        stats.squared_error += (error as f64).powi(2);
    }
    (block, stats, left)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feedback_applies_small_consistent_deltas_that_rounding_alone_drops() {
        // One weight moves by 700 per round (scale 100), another by 30: below half a step,
        // so plain rounding never applies it; with feedback it is applied over the rounds.
        let mut base = vec![bias(0); 2];
        let mut plain = base.clone();
        let mut residual = Residual::zero(2);
        for _ in 0..10 {
            let trained: Vec<u32> = base.iter().zip([700, 30]).map(|(w, d)| bias(unbias(*w) + d)).collect();
            let q = quantize_with_feedback(&model(base.clone()), &model(trained), &mut residual).unwrap();
            base = q.new_model.weights().to_vec();
            let trained_plain: Vec<u32> = plain.iter().zip([700, 30]).map(|(w, d)| bias(unbias(*w) + d)).collect();
            plain = quantize(&model(plain.clone()), &model(trained_plain)).unwrap().new_model.weights().to_vec();
        }
        assert_eq!(unbias(plain[1]), 0, "without feedback the small delta is rounded away");
        let applied = i64::from(unbias(base[1]));
        assert!((applied - 300).abs() <= 100, "with feedback ~300 applied, got {applied}");
        assert_eq!(applied + residual.values()[1], 300, "applied + carried = everything asked for");
    }

    #[test]
    fn a_residual_for_another_model_size_is_refused() {
        let m = model(vec![bias(1); 5]);
        let err = quantize_with_feedback(&m, &m, &mut Residual::zero(4)).err().unwrap();
        assert!(matches!(err, QuantizeError::Residual { weights: 5, residual: 4 }));
    }

    #[test]
    fn residual_files_round_trip_and_garbage_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.safetensors");
        let r = Residual::from_values(vec![-5, 0, i64::MAX, i64::MIN]);
        r.save(&path).unwrap();
        assert_eq!(Residual::load(&path).unwrap(), r);
        std::fs::write(&path, b"not a residual").unwrap();
        assert!(Residual::load(&path).unwrap_err().to_string().contains("not a usable"));
        assert!(Residual::load(&dir.path().join("missing")).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn applied_plus_residual_is_exactly_what_was_asked(
            rows in prop::collection::vec((-1_000_000i32..1_000_000, -100_000i32..100_000, -50_000i64..50_000), 1..300)
        ) {
            let base: Vec<u32> = rows.iter().map(|(w, _, _)| bias(*w)).collect();
            let trained: Vec<u32> = rows.iter().map(|(w, d, _)| bias(w + d)).collect();
            let carried: Vec<i64> = rows.iter().map(|(_, _, r)| *r).collect();
            let mut residual = Residual::from_values(carried.clone());
            let q = quantize_with_feedback(&model(base.clone()), &model(trained), &mut residual).unwrap();
            for (i, (_, d, r)) in rows.iter().enumerate() {
                let applied = i64::from(unbias(q.new_model.weights()[i])) - i64::from(unbias(base[i]));
                prop_assert_eq!(applied + residual.values()[i], i64::from(*d) + r);
            }
        }
    }
    use pogo_circuits::encoding::{bias, BIAS};
    use pogo_circuits::model::TensorInfo;
    use proptest::prelude::*;

    fn model(weights: Vec<u32>) -> Model {
        Model::new(Default::default(), vec![TensorInfo { name: "w".into(), shape: vec![weights.len()] }], weights)
            .unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn error_is_at_most_half_a_step_and_new_model_is_exact(
            pairs in prop::collection::vec((any::<i32>(), -1_000_000i32..1_000_000), 1..400)
        ) {
            let base: Vec<u32> = pairs.iter().map(|(w, _)| bias(*w)).collect();
            let trained: Vec<u32> = pairs.iter().map(|(w, d)| bias(w.saturating_add(*d))).collect();
            let (base, trained) = (model(base), model(trained));
            let q = quantize(&base, &trained).unwrap();
            prop_assert_eq!(&q.update.apply(&base).unwrap(), &q.new_model);
            for (i, (&t, &u)) in trained.weights().iter().zip(q.new_model.weights()).enumerate() {
                let scale = i64::from(q.update.block((i / BLOCK_WEIGHTS) as u64).scale);
                let err = (i64::from(t) - i64::from(u)).abs();
                // Half a step from rounding, a whole step where a clamp pulled back.
                prop_assert!(2 * err <= scale || (q.report.clamped_weights > 0 && err <= scale));
            }
        }
    }

    #[test]
    fn identical_models_give_the_zero_update() {
        let m = model((0..300).map(|i| BIAS + i).collect());
        let q = quantize(&m, &m).unwrap();
        assert!(q.update.changed().is_empty());
        assert_eq!(q.new_model, m);
        assert_eq!(q.report.changed_weights, 0);
    }

    #[test]
    fn never_overflows_at_the_edges() {
        // A jump from the bottom to the top of the range rounds up past 2^32 - 1.
        let base = model(vec![0, u32::MAX, BIAS]);
        let trained = model(vec![u32::MAX, 0, BIAS]);
        let q = quantize(&base, &trained).unwrap();
        assert!(q.report.clamped_weights >= 1);
        assert!(q.new_model.weights()[0] > u32::MAX / 2 && q.new_model.weights()[1] < u32::MAX / 2);
        assert_eq!(q.new_model.weights()[2], BIAS);
    }

    #[test]
    fn different_layouts_are_refused() {
        assert!(matches!(quantize(&model(vec![1; 5]), &model(vec![1; 6])), Err(QuantizeError::Layout(_))));
    }

    #[test]
    fn a_density_keeps_the_blocks_with_the_largest_change_and_carries_the_rest() {
        // 10 blocks; block b moves every weight by 100·(b+1) (block 9 by the most).
        let n = 10 * BLOCK_WEIGHTS;
        let base = model(vec![BIAS; n]);
        let trained = model((0..n).map(|i| bias(100 * (i / BLOCK_WEIGHTS) as i32 + 100)).collect());
        let mut residual = Residual::zero(n as u64);
        let q = quantize_sparse(&base, &trained, &mut residual, 0.25).unwrap();
        let kept: Vec<u64> = q.update.changed().iter().map(|(b, _)| *b).collect();
        assert_eq!(kept, [7, 8, 9], "ceil(0.25 · 10) = 3 blocks, the largest L2 norms");
        assert_eq!(q.report.changed_blocks, 3);
        // Applied + carried = everything asked for, weight by weight.
        for i in 0..n {
            let applied = i64::from(unbias(q.new_model.weights()[i]));
            assert_eq!(applied + residual.values()[i], 100 * (i / BLOCK_WEIGHTS) as i64 + 100, "weight {i}");
        }
        // The next round with nothing new trained sends the carried blocks, largest first.
        let q2 = quantize_sparse(&q.new_model, &q.new_model, &mut residual, 0.25).unwrap();
        let kept: Vec<u64> = q2.update.changed().iter().map(|(b, _)| *b).collect();
        assert_eq!(kept, [4, 5, 6]);
        // Density 1 is the dense quantizer; the smallest density still sends one block.
        let dense = quantize_sparse(&base, &trained, &mut Residual::zero(n as u64), 1.0).unwrap();
        assert_eq!(dense.update, quantize(&base, &trained).unwrap().update);
        let one = quantize_sparse(&base, &trained, &mut Residual::zero(n as u64), 1e-9).unwrap();
        assert_eq!(one.update.changed().len(), 1);
    }

    #[test]
    fn a_given_priority_picks_the_blocks_whatever_their_norm() {
        // Block b moves by 100·(b+1) as above, but the priority prefers blocks 0, 2 and 5;
        // NaN counts as the lowest, so block 9 (the largest change) is not sent.
        let n = 10 * BLOCK_WEIGHTS;
        let base = model(vec![BIAS; n]);
        let trained = model((0..n).map(|i| bias(100 * (i / BLOCK_WEIGHTS) as i32 + 100)).collect());
        let mut priority = vec![0.0; 10];
        (priority[0], priority[2], priority[5], priority[9]) = (3.0, 2.0, 1.0, f64::NAN);
        let mut residual = Residual::zero(n as u64);
        let q = quantize_sparse_by(&base, &trained, &mut residual, 0.25, &priority).unwrap();
        let kept: Vec<u64> = q.update.changed().iter().map(|(b, _)| *b).collect();
        assert_eq!(kept, [0, 2, 5]);
        for i in 0..n {
            let applied = i64::from(unbias(q.new_model.weights()[i]));
            assert_eq!(applied + residual.values()[i], 100 * (i / BLOCK_WEIGHTS) as i64 + 100, "weight {i}");
        }
        // One priority per block, or a clear error before anything is touched.
        let mut untouched = Residual::zero(n as u64);
        let err = quantize_sparse_by(&base, &trained, &mut untouched, 0.25, &priority[..9]).err();
        assert!(matches!(err, Some(QuantizeError::Priorities { blocks: 10, priorities: 9 })), "{err:?}");
        assert!(untouched.values().iter().all(|&r| r == 0));
    }

    #[test]
    fn densities_outside_zero_to_one_are_refused() {
        let m = model(vec![BIAS; 300]);
        for bad in [0.0, -0.5, 1.01, f64::NAN, f64::INFINITY] {
            let err = quantize_sparse(&m, &m, &mut Residual::zero(300), bad).err();
            assert!(matches!(err, Some(QuantizeError::Density(_))), "{bad}");
        }
    }
}
