//! The quantizer (DESIGN §3 step 2): turns the difference between a base model and a trained
//! model into a 4-bit update with one absmax scale per block, rounding to nearest, and
//! computes the exact new model by DESIGN §2. It never produces an update that overflows.

use pogo_circuits::encoding::{apply_one, bias, unbias, Nibble, UpdateBlock, BLOCK_WEIGHTS};
use pogo_circuits::files::write_atomic;
use pogo_circuits::model::{Model, ModelError};
use pogo_circuits::update::{Update, UpdateError};
use rayon::prelude::*;
use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;
use std::path::Path;

/// Largest |q| the absmax scale maps to (the range `[-8, 7]` is used symmetrically).
const Q_MAX: i64 = 7;

/// What quantization did, in integer units of `2^-F`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
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
}

/// Error feedback (DESIGN §3 step 2): per weight, the part of earlier rounds' deltas that
/// 4-bit quantization did not apply, in units of `2^-F`. The miner keeps it across rounds
/// and adds it to the next delta, so small but consistent updates are applied eventually
/// instead of being rounded away every round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Residual(Vec<i64>);

impl Residual {
    /// No carried error, for a model of `weights` weights.
    pub fn zero(weights: u64) -> Self {
        Residual(vec![0; weights as usize])
    }

    /// The carried error per weight.
    pub fn values(&self) -> &[i64] {
        &self.0
    }

    /// The miner's local model: `model` plus what it has not yet published, each weight
    /// clamped to the fixed-point range. Training continues from here, so a change carried
    /// over is neither lost nor learned a second time.
    pub fn add_to(&self, model: &Model) -> Result<Model, QuantizeError> {
        if self.0.len() as u64 != model.weight_count() {
            return Err(QuantizeError::Residual { weights: model.weight_count(), residual: self.0.len() as u64 });
        }
        let weights = model
            .weights()
            .iter()
            .zip(&self.0)
            .map(|(&w, &r)| bias((i64::from(unbias(w)) + r).clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32))
            .collect();
        Ok(model.with_weights(weights)?)
    }

    /// Wraps values (one per weight).
    pub fn from_values(values: Vec<i64>) -> Self {
        Residual(values)
    }

    /// Reads a residual file (safetensors, one I64 tensor `residual`).
    pub fn load(path: &Path) -> Result<Self, ResidualFileError> {
        let bad = |reason: String| ResidualFileError::Malformed { path: path.display().to_string(), reason };
        let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        let file = SafeTensors::deserialize(&bytes).map_err(|e| bad(e.to_string()))?;
        let view = file.tensor(RESIDUAL_TENSOR).map_err(|_| bad(format!("no tensor named {RESIDUAL_TENSOR:?}")))?;
        if view.dtype() != Dtype::I64 || view.shape().len() != 1 {
            return Err(bad(format!("expected a 1-D I64 tensor, found {:?} {:?}", view.dtype(), view.shape())));
        }
        let values =
            view.data().chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().expect("chunks of 8"))).collect();
        Ok(Residual(values))
    }

    /// Writes the residual file atomically.
    pub fn save(&self, path: &Path) -> Result<(), ResidualFileError> {
        let bytes: Vec<u8> = self.0.iter().flat_map(|v| v.to_le_bytes()).collect();
        let view = TensorView::new(Dtype::I64, vec![self.0.len()], &bytes).expect("shape matches the data");
        let data = safetensors::serialize([(RESIDUAL_TENSOR, view)], None).expect("one valid tensor serializes");
        write_atomic(path, &data)
            .map_err(|e| ResidualFileError::Malformed { path: path.display().to_string(), reason: e.to_string() })
    }
}

/// The tensor name in residual files.
const RESIDUAL_TENSOR: &str = "residual";

/// A residual file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ResidualFileError {
    /// Missing, unreadable, or not a residual.
    #[error("{path}: not a usable error-feedback residual: {reason}")]
    Malformed {
        /// The file.
        path: String,
        /// Why.
        reason: String,
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

/// The blocks a density `ρ` keeps: the `ceil(ρ · nb)` blocks whose target change
/// `trained − base + residual` has the largest Euclidean (L2) norm, ties to the lower index.
fn top_blocks(targets: &[[i64; BLOCK_WEIGHTS]], density: f64) -> Vec<bool> {
    let nb = targets.len();
    let keep = ((density * nb as f64).ceil() as usize).clamp(1, nb);
    let mut keyed: Vec<(f64, usize)> = targets
        .par_iter()
        .enumerate()
        .map(|(b, t)| (t.iter().map(|&d| (d as f64) * (d as f64)).sum::<f64>(), b))
        .collect();
    let mut kept = vec![keep == nb; nb];
    if keep < nb {
        // Largest norm first, then lowest index.
        let order = |a: &(f64, usize), b: &(f64, usize)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
        keyed.select_nth_unstable_by(keep - 1, order);
        for &(_, b) in &keyed[..keep] {
            kept[b] = true;
        }
    }
    kept
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
    if !(density > 0.0 && density <= 1.0) {
        return Err(QuantizeError::Density(density));
    }
    base.check_same_layout(trained)?;
    let n = base.weight_count();
    if residual.0.len() as u64 != n {
        return Err(QuantizeError::Residual { weights: n, residual: residual.0.len() as u64 });
    }
    let carried = |b: u64| -> [i64; BLOCK_WEIGHTS] {
        std::array::from_fn(|j| residual.0.get(b as usize * BLOCK_WEIGHTS + j).copied().unwrap_or(0))
    };
    let targets: Vec<[i64; BLOCK_WEIGHTS]> = (0..base.block_count())
        .into_par_iter()
        .map(|b| target(&base.block(b), &trained.block(b), &carried(b)))
        .collect();
    let kept = top_blocks(&targets, density);
    let per_block: Vec<(UpdateBlock, BlockStats, [i64; BLOCK_WEIGHTS])> = targets
        .into_par_iter()
        .zip(kept)
        .enumerate()
        .map(|(b, (delta, keep))| {
            if keep {
                quantize_block(&base.block(b as u64), &delta)
            } else {
                (UpdateBlock::zero(), BlockStats::unapplied(&delta), delta)
            }
        })
        .collect();
    for (b, (_, _, left)) in per_block.iter().enumerate() {
        let start = b * BLOCK_WEIGHTS;
        let end = (start + BLOCK_WEIGHTS).min(n as usize);
        residual.0[start..end].copy_from_slice(&left[..end - start]);
    }
    let mut report =
        QuantizeReport { changed_blocks: 0, changed_weights: 0, clamped_weights: 0, max_error: 0, rms_error: 0.0 };
    let mut squared = 0f64;
    for (block, stats, _) in &per_block {
        report.changed_blocks += u64::from(block.scale != 0);
        report.changed_weights += stats.changed;
        report.clamped_weights += stats.clamped;
        report.max_error = report.max_error.max(stats.max_error);
        squared += stats.squared_error;
    }
    report.rms_error = (squared / n as f64).sqrt();
    let update = Update::new(n, per_block.into_iter().map(|(block, _, _)| block).collect())?;
    let new_model = update.apply(base)?;
    Ok(Quantized { update, new_model, report })
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
    fn densities_outside_zero_to_one_are_refused() {
        let m = model(vec![BIAS; 300]);
        for bad in [0.0, -0.5, 1.01, f64::NAN, f64::INFINITY] {
            let err = quantize_sparse(&m, &m, &mut Residual::zero(300), bad).err();
            assert!(matches!(err, Some(QuantizeError::Density(_))), "{bad}");
        }
    }
}
