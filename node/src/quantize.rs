//! The quantizer (DESIGN §3 step 2): turns the difference between a base model and a trained
//! model into a 4-bit update with one absmax scale per block, rounding to nearest, and
//! computes the exact new model by DESIGN §2. It never produces an update that overflows.

use pogo_circuits::encoding::{apply_one, unbias, Nibble, UpdateBlock, BLOCK_WEIGHTS};
use pogo_circuits::model::{Model, ModelError};
use pogo_circuits::update::{Update, UpdateError};
use rayon::prelude::*;

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
}

/// Quantizes `trained − base` block by block.
pub fn quantize(base: &Model, trained: &Model) -> Result<Quantized, QuantizeError> {
    base.check_same_layout(trained)?;
    let n = base.weight_count();
    let per_block: Vec<(UpdateBlock, BlockStats)> =
        (0..base.block_count()).into_par_iter().map(|b| quantize_block(&base.block(b), &trained.block(b))).collect();
    let mut report =
        QuantizeReport { changed_blocks: 0, changed_weights: 0, clamped_weights: 0, max_error: 0, rms_error: 0.0 };
    let mut squared = 0f64;
    for (block, stats) in &per_block {
        report.changed_blocks += u64::from(block.scale != 0);
        report.changed_weights += stats.changed;
        report.clamped_weights += stats.clamped;
        report.max_error = report.max_error.max(stats.max_error);
        squared += stats.squared_error;
    }
    report.rms_error = (squared / n as f64).sqrt();
    let update = Update::new(n, per_block.into_iter().map(|(block, _)| block).collect())?;
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

/// One block. Padding weights are 2^31 in both models, so their delta (and update) is zero.
fn quantize_block(base: &[u32; BLOCK_WEIGHTS], trained: &[u32; BLOCK_WEIGHTS]) -> (UpdateBlock, BlockStats) {
    let delta: [i64; BLOCK_WEIGHTS] =
        std::array::from_fn(|j| i64::from(unbias(trained[j])) - i64::from(unbias(base[j])));
    let absmax = delta.iter().map(|d| d.unsigned_abs()).max().unwrap_or(0) as i64;
    // s = ceil(absmax / 7) < 2^32, so |round(d / s)| ≤ 7.
    let scale = (absmax + Q_MAX - 1) / Q_MAX;
    let mut block = UpdateBlock { scale: scale as u32, nibbles: [Nibble::ZERO; BLOCK_WEIGHTS] };
    let mut stats = BlockStats::default();
    if scale == 0 {
        return (block, stats);
    }
    for j in 0..BLOCK_WEIGHTS {
        // Round to nearest (ties away from −∞): floor((2d + s) / 2s).
        let mut q = (2 * delta[j] + scale).div_euclid(2 * scale);
        let nibble = |q: i64| Nibble::from_signed(q as i32).expect("|q| <= 7 by the choice of scale");
        // Rounding may step just past the edge of [0, 2^32); step back toward zero.
        while apply_one(base[j], block.scale, nibble(q)).is_none() {
            q -= q.signum();
            stats.clamped += 1;
        }
        block.nibbles[j] = nibble(q);
        stats.changed += u64::from(q != 0);
        let error = (delta[j] - scale * q).unsigned_abs();
        stats.max_error = stats.max_error.max(error);
        stats.squared_error += (error as f64).powi(2);
    }
    (block, stats)
}

#[cfg(test)]
mod tests {
    use super::*;
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
                let scale = i64::from(q.update.blocks()[i / BLOCK_WEIGHTS].scale);
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
        assert!(q.update.blocks().iter().all(|b| *b == UpdateBlock::zero()));
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
}
