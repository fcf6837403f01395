//! Rounds of work (DESIGN §3 step 2): train from the committed model, quantize the change
//! to a 4-bit update with error feedback, and compute the exact new model; and loss
//! evaluation on a seeded batch, which is what verifiers re-run.

use candle_core::Device;
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use pogo_circuits::encoding::FixedPoint;
use pogo_circuits::model::Model;
use pogo_circuits::update::Update;

use super::data::{batch_indices, Dataset, Examples};
use super::net::{Net, TrainError};
use super::reference;
use super::task::{ModelSpec, TaskConfig};
use crate::quantize::{quantize_sparse, QuantizeReport, Residual};

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
    /// `trained − current` per block (only the task's `density` of the blocks, the largest
    /// changes), leave in `residual` what was not applied, and return the update and the
    /// exact new model.
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
        let q = quantize_sparse(current, &trained, &mut left, self.task.density)?;
        *residual = left;
        Ok(RoundOutput { update: q.update, new_model: q.new_model, report: q.report, train_loss })
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
