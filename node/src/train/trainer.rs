//! Rounds of work (DESIGN §3 step 2): train from the committed model, quantize the change
//! to a 4-bit update with error feedback, and compute the exact new model; and loss
//! evaluation on a seeded batch, which is what verifiers re-run.

use candle_core::Device;
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use pogo_circuits::encoding::{FixedPoint, BLOCK_WEIGHTS};
use pogo_circuits::model::Model;
use pogo_circuits::update::Update;
use rayon::prelude::*;

use super::data::{batch_indices, Dataset, Examples};
use super::net::{Net, TrainError};
use super::reference;
use super::task::{ModelSpec, Selection, TaskConfig};
use crate::quantize::{quantize_sparse, quantize_sparse_by, QuantizeReport, Residual};

/// The batch stream of a round's block selection: training steps use streams `0..steps`.
const SELECTION_STREAM: u64 = u64::MAX;

/// The block selection's batch is this many training batches: a steadier gradient than one
/// step's, for the cost of a few steps.
const SELECTION_BATCHES: usize = 4;

/// A task ready to train: its data, network and device.
pub struct Trainer {
    /// The task.
    pub task: TaskConfig,
    /// Its data.
    pub data: Dataset,
    net: Net,
    device: Device,
}

/// What one round of work produced.
pub struct RoundOutput {
    /// The 4-bit update.
    pub update: Update,
    /// The exact new model (old + update).
    pub new_model: Model,
    /// Quantization statistics.
    pub report: QuantizeReport,
    /// Mean training loss over the round's steps.
    pub train_loss: f32,
}

impl Trainer {
    /// Loads the task's data and builds its network on `device`.
    pub fn new(task: TaskConfig, device: Device) -> anyhow::Result<Self> {
        let data = Dataset::load(&task.data, task.seed)?;
        for examples in [&data.train, &data.validation] {
            super::data::check_fits(&task.model, examples)
                .map_err(|why| anyhow::anyhow!("{}: {why}", task.data_path().display()))?;
        }
        let mut net = Net::new(&task.model, data.train.width(), data.classes, &device)?;
        net.trainable(&task.freeze)?;
        net.stop_gradients_below_frozen(&task.freeze);
        Ok(Trainer { task, data, net, device })
    }

    /// The fixed-point format of the task's models.
    pub fn format(&self) -> FixedPoint {
        FixedPoint::new(self.task.fraction_bits).expect("checked when the task was loaded")
    }

    /// The genesis model: deterministic initialization from the task seed, then the
    /// pretrained checkpoint's weights where the task names one (installed into the cache on
    /// first use).
    pub fn genesis(&self) -> Result<Model, TrainError> {
        self.net.init(self.task.seed)?;
        if let ModelSpec::Encoder { pretrained: Some(p), .. } = &self.task.model {
            self.net.load_checkpoint(&p.resolve()?)?;
        }
        self.net.to_model(self.format())
    }

    /// Trains `steps_per_round` AdamW steps from the current parameters on batches drawn
    /// from `(seed, round)`; calls `tick` after each step. Returns the mean training loss.
    pub fn train(&self, round: u64, tick: &dyn Fn()) -> Result<f32, TrainError> {
        let params = ParamsAdamW {
            lr: self.task.optimizer.lr,
            weight_decay: self.task.optimizer.weight_decay,
            ..Default::default()
        };
        let mut opt = AdamW::new(self.net.trainable(&self.task.freeze)?, params)?;
        let mut total = 0f32;
        let seed = stream_seed(self.task.seed, round);
        for step in 0..self.task.steps_per_round {
            let indices = batch_indices(self.data.train.len(), self.task.batch_size, seed, step as u64);
            let loss = self.loss_on(&self.data.train, &indices)?;
            opt.backward_step(&loss)?;
            total += loss.to_scalar::<f32>()?;
            tick();
        }
        Ok(total / self.task.steps_per_round as f32)
    }

    fn loss_on(&self, examples: &Examples, indices: &[usize]) -> Result<candle_core::Tensor, TrainError> {
        let (x, y) = examples.batch(indices, &self.device)?;
        Ok(self.net.loss(&x, &y)?)
    }

    /// A round of work from `current`: train from the local model `current + residual` (what
    /// earlier rounds did not publish is kept training, not re-learned), quantize
    /// `trained − current` per block (below density 1, only the task's `density` of the
    /// blocks: those of the largest [`Self::block_gains`]), leave in `residual` what was not
    /// applied, and return the update and the exact new model.
    pub fn work(
        &self,
        current: &Model,
        residual: &mut Residual,
        round: u64,
        tick: &dyn Fn(),
    ) -> Result<RoundOutput, TrainError> {
        self.net.load(&residual.add_to(current)?)?;
        let train_loss = self.train(round, tick)?;
        // Frozen tensors keep `current`'s exact values: their round trip through f32 may
        // round (24 fraction bits and an integer part exceed f32's mantissa), and an update
        // must not carry that as change.
        let trained = keep_frozen(current, self.net.to_model(self.format())?, &self.task.freeze)?;
        // `trained` already holds the carried residual: quantize its whole distance from
        // `current`, and carry what is left of it.
        let mut left = Residual::zero(current.weight_count());
        let q = match (self.task.density < 1.0, self.task.selection) {
            (true, Selection::Gain) => {
                let gains = self.block_gains(current, &trained, round)?;
                quantize_sparse_by(current, &trained, &mut left, self.task.density, &gains)?
            }
            _ => quantize_sparse(current, &trained, &mut left, self.task.density)?,
        };
        *residual = left;
        Ok(RoundOutput { update: q.update, new_model: q.new_model, report: q.report, train_loss })
    }

    /// What each block of `trained − current` would do for the committed model, to first
    /// order: `−⟨∇L(current), trained_b − current_b⟩`, the training loss decrease (loss units)
    /// of applying block `b`'s change alone, with `∇L` on the round's selection batch
    /// (`SELECTION_BATCHES` training batches drawn from `(seed, round)`). A sparse round
    /// sends the blocks of the largest gains: the size of a change says little of what it is
    /// worth to a model whose other blocks lag (BENCHMARKS "Block-sparse updates" compares
    /// this with the L2 norm). Leaves `current` loaded.
    pub fn block_gains(&self, current: &Model, trained: &Model, round: u64) -> Result<Vec<f64>, TrainError> {
        self.net.load(current)?;
        let size = self.task.batch_size * SELECTION_BATCHES;
        let indices = batch_indices(self.data.train.len(), size, stream_seed(self.task.seed, round), SELECTION_STREAM);
        let gradient = self.net.flat_gradients(&self.loss_on(&self.data.train, &indices)?)?;
        let (old, new) = (current.weights(), trained.weights());
        if gradient.len() != old.len() || new.len() != old.len() {
            return Err(TrainError::Layout {
                expected: format!("{} weights", old.len()),
                given: format!("{} gradients and {} trained weights", gradient.len(), new.len()),
            });
        }
        let unit = (-f64::from(self.format().fraction_bits())).exp2();
        Ok(old
            .par_chunks(BLOCK_WEIGHTS)
            .zip(new.par_chunks(BLOCK_WEIGHTS))
            .zip(gradient.par_chunks(BLOCK_WEIGHTS))
            .map(|((old, new), g)| {
                // Biased weights: the difference of the raw words is the signed change.
                let dot: f64 = (old.iter().zip(new).zip(g))
                    .map(|((&o, &n), &g)| f64::from(g) * (i64::from(n) - i64::from(o)) as f64)
                    .sum();
                -dot * unit
            })
            .collect())
    }

    /// Loss of `model` on `examples` (a revealed held-out batch): what a verifier attests
    /// for the old and every new model, from the reference evaluator ([`reference`]): the
    /// same bits on every CPU.
    pub fn eval_examples(&self, model: &Model, examples: &Examples) -> Result<f64, TrainError> {
        Ok(reference::loss(&self.task.model, model, examples)?)
    }

    /// The same loss from candle's training path on this trainer's device (CPU kernels
    /// picked by the CPU's features, or CUDA): faster, but its last bits depend on the
    /// machine; never attested, measured against the reference in tests and `pogo bench eval`.
    pub fn eval_examples_candle(&self, model: &Model, examples: &Examples) -> Result<f64, TrainError> {
        self.net.load(model)?;
        let all: Vec<usize> = (0..examples.len()).collect();
        Ok(f64::from(self.loss_on(examples, &all)?.to_scalar::<f32>()?))
    }

    /// The evaluation-sized batch of the public validation split that `seed` picks
    /// (ChaCha20 from `seed`, stream 0, with replacement), as examples.
    pub fn validation_batch(&self, seed: [u8; 32]) -> Examples {
        let indices = batch_indices(self.data.validation.len(), self.task.eval_batch_size, seed, 0);
        self.data.validation.select(&indices)
    }

    /// Reference loss of `model` on the validation batch `seed` picks (for measuring
    /// evaluation noise before any held-out batch is revealed).
    fn validation_batch_loss(&self, model: &Model, seed: [u8; 32]) -> Result<f64, TrainError> {
        self.eval_examples(model, &self.validation_batch(seed))
    }

    /// The spread of a verifier's measurement: mean and (population) standard deviation of
    /// `model`'s loss over `count` evaluation-sized batches of the validation split (the same
    /// distribution as the held-out data), drawn from the fixed seeds
    /// `keccak256("pogo/evaluation-noise" || k)` for k = 0..count, so anyone recomputes the
    /// same figures.
    pub fn eval_noise(&self, model: &Model, count: usize) -> Result<(f64, f64), TrainError> {
        let mut losses = Vec::with_capacity(count);
        for k in 0..count as u64 {
            let mut preimage = b"pogo/evaluation-noise".to_vec();
            preimage.extend_from_slice(&k.to_be_bytes());
            losses.push(self.validation_batch_loss(model, alloy::primitives::keccak256(preimage).0)?);
        }
        let n = losses.len().max(1) as f64;
        let mean = losses.iter().sum::<f64>() / n;
        let var = losses.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / n;
        Ok((mean, var.sqrt()))
    }

    /// Loss of the current parameters on the whole validation split (for text, its
    /// non-overlapping windows), evaluated in batches of at most 256 examples.
    pub fn validation_loss(&self) -> Result<f32, TrainError> {
        let examples = &self.data.validation;
        let stride = match examples {
            Examples::Labelled { .. } | Examples::Tokens { .. } => 1,
            Examples::Text { context, .. } => *context,
        };
        let all: Vec<usize> = (0..examples.len()).step_by(stride).collect();
        let mut total = 0f64;
        for chunk in all.chunks(256) {
            total += f64::from(self.loss_on(examples, chunk)?.to_scalar::<f32>()?) * chunk.len() as f64;
        }
        Ok((total / all.len() as f64) as f32)
    }

    /// Fraction of the validation split the current parameters classify correctly (the
    /// arg-max logit is the label); `None` for text, which has no classes to get right.
    pub fn validation_accuracy(&self) -> Result<Option<f64>, TrainError> {
        let examples = &self.data.validation;
        if matches!(examples, Examples::Text { .. }) {
            return Ok(None);
        }
        let all: Vec<usize> = (0..examples.len()).collect();
        let mut right = 0usize;
        for chunk in all.chunks(256) {
            let (x, y) = examples.batch(chunk, &self.device)?;
            let guess = self.net.forward(&x)?.argmax(candle_core::D::Minus1)?;
            right += guess.eq(&y)?.to_dtype(candle_core::DType::U32)?.sum_all()?.to_scalar::<u32>()? as usize;
        }
        Ok(Some(right as f64 / all.len().max(1) as f64))
    }

    /// Loads a model's exact values into the network.
    pub fn load(&self, model: &Model) -> Result<(), TrainError> {
        self.net.load(model)
    }
}

/// `trained` with every tensor whose name starts with a `frozen` prefix set back to
/// `current`'s values.
fn keep_frozen(current: &Model, trained: Model, frozen: &[String]) -> Result<Model, TrainError> {
    if frozen.is_empty() {
        return Ok(trained);
    }
    current.check_same_layout(&trained)?;
    let mut weights = trained.weights().to_vec();
    let mut offset = 0;
    for t in current.tensors() {
        if super::net::is_frozen(&t.name, frozen) {
            let range = offset..offset + t.len();
            weights[range.clone()].copy_from_slice(&current.weights()[range]);
        }
        offset += t.len();
    }
    Ok(trained.with_weights(weights)?)
}

/// The 32-byte seed of a round's training batches.
fn stream_seed(seed: u64, round: u64) -> [u8; 32] {
    let mut out = [0u8; 32];
    out[..8].copy_from_slice(&seed.to_le_bytes());
    out[8..16].copy_from_slice(&round.to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digits(density: f64) -> Trainer {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tasks/digits.json");
        let mut task = TaskConfig::load(&path).unwrap();
        task.density = density;
        Trainer::new(task, Device::Cpu).unwrap()
    }

    /// `current` with block `b` moved by `ε` of its change towards `trained`.
    fn nudged(current: &Model, trained: &Model, b: usize, eps: f64) -> Model {
        let mut w = current.weights().to_vec();
        for i in b * BLOCK_WEIGHTS..((b + 1) * BLOCK_WEIGHTS).min(w.len()) {
            let step = (i64::from(trained.weights()[i]) - i64::from(w[i])) as f64 * eps;
            w[i] = (i64::from(w[i]) + step.round() as i64) as u32;
        }
        current.with_weights(w).unwrap()
    }

    #[test]
    fn block_gains_predict_the_loss_change_of_applying_each_block_alone() {
        let t = digits(0.1);
        let current = t.genesis().unwrap();
        t.train(0, &|| {}).unwrap();
        let trained = t.net.to_model(t.format()).unwrap();
        let gains = t.block_gains(&current, &trained, 7).unwrap();
        assert_eq!(gains.len() as u64, current.block_count());
        // The same batch the gains were taken on: the loss after a small step along one
        // block's change falls (or rises) by ε times its gain, to first order.
        let indices = batch_indices(
            t.data.train.len(),
            t.task.batch_size * SELECTION_BATCHES,
            stream_seed(t.task.seed, 7),
            SELECTION_STREAM,
        );
        let loss = |m: &Model| {
            t.net.load(m).unwrap();
            f64::from(t.loss_on(&t.data.train, &indices).unwrap().to_scalar::<f32>().unwrap())
        };
        let base = loss(&current);
        let best = (0..gains.len()).max_by(|a, b| gains[*a].total_cmp(&gains[*b])).unwrap();
        let eps = 0.05;
        let all: Vec<usize> = (0..gains.len()).collect();
        for (blocks, predicted) in [(vec![best], eps * gains[best]), (all, eps * gains.iter().sum::<f64>())] {
            let mut m = current.clone();
            for &b in &blocks {
                m = nudged(&m, &trained, b, eps);
            }
            let measured = base - loss(&m);
            assert!(
                (measured - predicted).abs() <= 0.2 * predicted.abs(),
                "{} blocks: loss fell by {measured:e}, the gains predict {predicted:e}",
                blocks.len()
            );
        }
    }

    #[test]
    fn a_sparse_round_sends_the_blocks_of_the_largest_gain_and_carries_the_rest() {
        let t = digits(0.1);
        let current = t.genesis().unwrap();
        let mut residual = Residual::zero(current.weight_count());
        let out = t.work(&current, &mut residual, 3, &|| {}).unwrap();
        // What was trained: the new model plus what it left unapplied, exactly.
        let trained = residual.add_to(&out.new_model).unwrap();
        let gains = t.block_gains(&current, &trained, 3).unwrap();
        let mut by_gain: Vec<u64> = (0..gains.len() as u64).collect();
        by_gain.sort_by(|a, b| gains[*b as usize].total_cmp(&gains[*a as usize]).then(a.cmp(b)));
        let keep = (0.1 * gains.len() as f64).ceil() as usize;
        let mut expected = by_gain[..keep].to_vec();
        expected.sort_unstable();
        let sent: Vec<u64> = out.update.changed().iter().map(|(b, _)| *b).collect();
        assert_eq!(sent, expected);
        // `"selection": "norm"` sends the largest L2 norms of the same change instead: other
        // blocks (the rule is not the norm in disguise).
        let mut t = t;
        t.task.selection = Selection::Norm;
        let mut carried = Residual::zero(current.weight_count());
        let by_norm = t.work(&current, &mut carried, 3, &|| {}).unwrap();
        let l2 = quantize_sparse(&current, &trained, &mut Residual::zero(current.weight_count()), 0.1).unwrap();
        assert_eq!(by_norm.update, l2.update);
        assert_ne!(by_norm.update.changed().iter().map(|(b, _)| *b).collect::<Vec<_>>(), sent);
    }
}
