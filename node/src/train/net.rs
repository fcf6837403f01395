//! Networks on candle, and the bridge between candle parameters and pogo's fixed-point
//! [`Model`] (tensors in byte-wise name order, DESIGN §2).

use std::path::Path;

use candle_core::{DType, Device, Module, Tensor, Var};
use candle_nn::{linear, Linear, VarBuilder, VarMap};
use pogo_circuits::encoding::FixedPoint;
use pogo_circuits::model::{Model, ModelError};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

use super::encoder::{Encoder, EncoderShape};
use super::task::ModelSpec;
use super::transformer::Transformer;

/// A network and the variables it is made of.
pub struct Net {
    arch: Arch,
    vars: VarMap,
}

enum Arch {
    Mlp(Vec<Linear>),
    Transformer(Transformer),
    Encoder(Encoder),
}

/// Parameters as `(name, shape, values)`, names sorted byte-wise.
pub type Params = Vec<(String, Vec<usize>, Vec<f32>)>;

impl Net {
    /// Builds the network for `inputs` features (the context length for text and tokens) and
    /// `outputs` classes (the vocabulary for text); [`Net::init`] or [`Net::load`] set the
    /// variables.
    pub fn new(spec: &ModelSpec, inputs: usize, outputs: usize, device: &Device) -> candle_core::Result<Self> {
        let vars = VarMap::new();
        let vb = VarBuilder::from_varmap(&vars, DType::F32, device);
        let arch = match spec {
            ModelSpec::Mlp { hidden } => {
                let widths: Vec<usize> =
                    std::iter::once(inputs).chain(hidden.iter().copied()).chain([outputs]).collect();
                Arch::Mlp(
                    widths
                        .windows(2)
                        .enumerate()
                        .map(|(i, w)| linear(w[0], w[1], vb.pp(format!("layer{i}"))))
                        .collect::<candle_core::Result<_>>()?,
                )
            }
            ModelSpec::Transformer { layers, dim, heads } => {
                Arch::Transformer(Transformer::new(outputs, inputs, *layers, *dim, *heads, vb)?)
            }
            ModelSpec::Encoder { layers, dim, heads, hidden, vocabulary, positions, norm_eps, .. } => {
                let shape = EncoderShape {
                    layers: *layers,
                    dim: *dim,
                    heads: *heads,
                    hidden: *hidden,
                    vocabulary: *vocabulary,
                    positions: *positions,
                    norm_eps: *norm_eps,
                };
                Arch::Encoder(Encoder::new(&shape, outputs, vb)?)
            }
        };
        Ok(Net { arch, vars })
    }

    /// Logits: `[n, classes]` for features `[n, inputs]`, `[n, t, vocabulary]` for token ids
    /// `[n, t]`.
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match &self.arch {
            Arch::Mlp(layers) => {
                let mut h = x.clone();
                for (i, layer) in layers.iter().enumerate() {
                    h = layer.forward(&h)?;
                    if i + 1 < layers.len() {
                        h = h.relu()?;
                    }
                }
                Ok(h)
            }
            Arch::Transformer(t) => t.forward(x),
            Arch::Encoder(e) => e.forward(x),
        }
    }

    /// Mean cross-entropy of the logits for `x` against the targets `y` (labels `[n]`, or
    /// next tokens `[n, t]`), in nats.
    pub fn loss(&self, x: &Tensor, y: &Tensor) -> candle_core::Result<Tensor> {
        let logits = self.forward(x)?;
        let classes = logits.dim(candle_core::D::Minus1)?;
        candle_nn::loss::cross_entropy(&logits.reshape(((), classes))?, &y.flatten_all()?)
    }

    /// Stops backward passes below the network's leading stages that `frozen` freezes
    /// whole (an encoder's embeddings, then its layers in order): their gradients are never
    /// used, and the gradients of what trains come out the same.
    pub fn stop_gradients_below_frozen(&mut self, frozen: &[String]) {
        if let Arch::Encoder(e) = &mut self.arch {
            let names: Vec<String> = self.vars.data().lock().expect("var map lock").keys().cloned().collect();
            let whole = |prefix: &str| {
                let mut of = names.iter().filter(|n| n.starts_with(prefix)).peekable();
                of.peek().is_some() && of.all(|n| is_frozen(n, frozen))
            };
            let mut stages = 0;
            if whole("embeddings.") {
                stages = 1;
                while stages <= e.layer_count() && whole(&format!("encoder.layer.{}.", stages - 1)) {
                    stages += 1;
                }
            }
            e.set_frozen_stages(stages);
        }
    }

    /// The gradient of `loss` for every weight, in the model's weight order (tensors by name,
    /// as [`Self::to_model`] lays them out); 0 where `loss` does not depend on a weight
    /// (frozen tensors, rows no example reached).
    pub fn flat_gradients(&self, loss: &Tensor) -> candle_core::Result<Vec<f32>> {
        let grads = loss.backward()?;
        let mut out = Vec::new();
        for (_, var) in self.sorted() {
            match grads.get(&var) {
                Some(g) => out.extend(g.flatten_all()?.to_vec1::<f32>()?),
                None => out.resize(out.len() + var.elem_count(), 0.0),
            }
        }
        Ok(out)
    }

    /// Every variable.
    pub fn vars(&self) -> Vec<Var> {
        self.vars.all_vars()
    }

    /// The variables training changes: all but those [`is_frozen`] by `frozen`. Refuses an
    /// entry that names no tensor (a typo would silently train what the task meant to
    /// freeze) and a list that freezes everything.
    pub fn trainable(&self, frozen: &[String]) -> Result<Vec<Var>, TrainError> {
        let vars = self.sorted();
        if let Some(p) = frozen.iter().find(|p| !vars.iter().any(|(name, _)| is_frozen(name, std::slice::from_ref(p))))
        {
            let why = if p.ends_with('.') || p.is_empty() {
                format!("the prefix {p:?} names none of the network's tensors")
            } else {
                format!("{p:?} is no tensor's name; a prefix must end in \".\" (e.g. \"{p}.\")")
            };
            return Err(TrainError::Freeze(why));
        }
        let train: Vec<Var> = vars.into_iter().filter(|(name, _)| !is_frozen(name, frozen)).map(|(_, v)| v).collect();
        if train.is_empty() {
            return Err(TrainError::Freeze("every tensor is frozen: nothing to train".into()));
        }
        Ok(train)
    }

    /// Sets every variable the safetensors checkpoint at `path` has (same name and shape;
    /// F16 and BF16 are widened to F32), ignoring tensors the network lacks (a pooler, position
    /// ids). Every variable except the head (`head.*`) must be in the checkpoint. Returns how
    /// many tensors were set and how many ignored.
    pub fn load_checkpoint(&self, path: &Path) -> Result<(usize, usize), TrainError> {
        let shown = path.display().to_string();
        let tensors = candle_core::safetensors::load(path, &Device::Cpu)
            .map_err(|e| TrainError::Checkpoint { path: shown.clone(), why: e.to_string() })?;
        let mut set = 0;
        for (name, var) in self.sorted() {
            let Some(t) = tensors.get(&name) else {
                if name.starts_with("head.") {
                    continue;
                }
                return Err(TrainError::Checkpoint { path: shown, why: format!("no tensor {name:?}") });
            };
            if t.dims() != var.dims() {
                return Err(TrainError::Checkpoint {
                    path: shown,
                    why: format!("tensor {name:?} has shape {:?}; the network needs {:?}", t.dims(), var.dims()),
                });
            }
            if !matches!(t.dtype(), DType::F32 | DType::F16 | DType::BF16) {
                return Err(TrainError::Checkpoint {
                    path: shown,
                    why: format!("tensor {name:?} is {:?}, not a float", t.dtype()),
                });
            }
            var.set(&t.to_dtype(DType::F32)?.to_device(var.device())?)?;
            set += 1;
        }
        Ok((set, tensors.len() - set))
    }

    fn sorted(&self) -> Vec<(String, Var)> {
        let data = self.vars.data().lock().expect("var map lock");
        let mut vars: Vec<(String, Var)> = data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        vars.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        vars
    }

    /// Deterministic initialization from `seed`: weights (and embeddings) uniform in
    /// ±1/√(last dimension), norm scales (`scale`, BERT's `LayerNorm.weight`) 1, biases 0.
    pub fn init(&self, seed: u64) -> candle_core::Result<()> {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        for (name, var) in self.sorted() {
            let dims = var.dims().to_vec();
            let n: usize = dims.iter().product();
            let values: Vec<f32> = if name.ends_with("scale") || name.ends_with("LayerNorm.weight") {
                vec![1.0; n]
            } else if name.ends_with("weight") {
                let bound = 1.0 / (dims[dims.len() - 1] as f32).sqrt();
                (0..n).map(|_| rng.gen_range(-bound..bound)).collect()
            } else {
                vec![0.0; n]
            };
            var.set(&Tensor::from_vec(values, dims, var.device())?)?;
        }
        Ok(())
    }

    /// The current parameters.
    pub fn params(&self) -> candle_core::Result<Params> {
        self.sorted()
            .into_iter()
            .map(|(name, var)| Ok((name, var.dims().to_vec(), var.flatten_all()?.to_vec1::<f32>()?)))
            .collect()
    }

    /// Sets the parameters (same names and shapes, in the same order).
    pub fn set_params(&self, params: &Params) -> Result<(), TrainError> {
        let vars = self.sorted();
        let expected: Vec<(&str, &[usize])> = vars.iter().map(|(n, v)| (n.as_str(), v.dims())).collect();
        let given: Vec<(&str, &[usize])> = params.iter().map(|(n, s, _)| (n.as_str(), s.as_slice())).collect();
        if expected != given {
            return Err(TrainError::Layout { expected: format!("{expected:?}"), given: format!("{given:?}") });
        }
        for ((_, var), (_, shape, values)) in vars.iter().zip(params) {
            var.set(&Tensor::from_vec(values.clone(), shape.clone(), var.device())?)?;
        }
        Ok(())
    }

    /// The parameters as a fixed-point model.
    pub fn to_model(&self, format: FixedPoint) -> Result<Model, TrainError> {
        Ok(Model::from_floats(format, self.params()?)?)
    }

    /// Loads a fixed-point model's exact values (it must have this network's tensors).
    pub fn load(&self, model: &Model) -> Result<(), TrainError> {
        let values = model.to_f64();
        let mut offset = 0;
        let mut params = Params::new();
        for t in model.tensors() {
            let n = t.len();
            params.push((
                t.name.clone(),
                t.shape.clone(),
                values[offset..offset + n].iter().map(|&v| v as f32).collect(),
            ));
            offset += n;
        }
        self.set_params(&params)
    }
}

/// Whether the tensor `name` is frozen by the task's `freeze` list: an entry is a whole
/// tensor name, or a prefix ending in `.` (so `encoder.layer.1.` does not also freeze layer 10).
pub fn is_frozen(name: &str, frozen: &[String]) -> bool {
    frozen.iter().any(|p| name == p || (p.ends_with('.') && name.starts_with(p.as_str())))
}

/// Training failed.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// candle refused.
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
    /// The model cannot be encoded (a weight left the fixed-point range).
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A model for another network.
    #[error("the model's tensors {given} are not this task's network {expected}")]
    Layout {
        /// The network's tensors.
        expected: String,
        /// The model's.
        given: String,
    },
    /// The reference evaluator refused the model or the examples.
    #[error(transparent)]
    Reference(#[from] super::reference::ReferenceError),
    /// A pretrained checkpoint does not fit the network.
    #[error("{path}: {why}")]
    Checkpoint {
        /// The checkpoint.
        path: String,
        /// What is wrong.
        why: String,
    },
    /// The pretrained checkpoint could not be found or installed.
    #[error(transparent)]
    Pretrained(#[from] super::pretrained::PretrainedError),
    /// The task's `freeze` list does not fit the network.
    #[error("freeze: {0}")]
    Freeze(String),
    /// Quantization failed.
    #[error(transparent)]
    Quantize(#[from] crate::quantize::QuantizeError),
}
