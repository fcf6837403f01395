//! The fixed-point model of DESIGN §2 and its files.
//!
//! A [`Model`] holds every weight in the biased 32-bit form, tensors in byte-wise order of
//! their names, each flattened row-major. Models are read from safetensors files: float
//! tensors (F32, F16, BF16) are encoded with `F` fractional bits; pogo's own exact files store
//! the signed fixed-point weights as I32 with the format in the metadata.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, View};

use crate::checkpoint::{decode_tensor, Checkpoint, CheckpointWriter};
use crate::encoding::{bias, block_count, block_leaf, unbias, EncodeError, FixedPoint, BIAS, BLOCK_WEIGHTS};
use crate::field::Fr;
use crate::files::write_atomic;
use crate::merkle::{MerkleError, MerkleTree};

/// The metadata key that marks pogo's exact fixed-point format (version 1) and holds `F`.
/// It is the only key pogo writes: safetensors emits metadata in hash-map order, so a
/// single key keeps model files byte-for-byte deterministic.
pub const FIXED_POINT_KEY: &str = "pogo.fixed_point_v1.fraction_bits";

/// A tensor's name and shape; its weights are the next `shape.product()` of the model.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TensorInfo {
    /// The tensor name.
    pub name: String,
    /// Its shape.
    pub shape: Vec<usize>,
}

impl TensorInfo {
    /// Number of weights in the tensor.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether the tensor has no weights.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A float dtype a model can be exported to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloatDtype {
    /// IEEE single precision.
    F32,
    /// IEEE half precision.
    F16,
    /// bfloat16.
    BF16,
}

/// Why a model could not be read, built or written.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The safetensors container is malformed (truncated, lying header, bad JSON, ...).
    #[error("not a valid safetensors file: {0}")]
    Container(#[from] safetensors::SafeTensorError),
    /// The file holds no tensors.
    #[error("the model has no weights")]
    Empty,
    /// A tensor's dtype cannot be read.
    #[error("tensor {tensor:?} has dtype {dtype:?}; pogo reads F32, F16 and BF16 models (and its own I32 fixed-point files)")]
    UnsupportedDtype {
        /// The tensor.
        tensor: String,
        /// Its dtype.
        dtype: Dtype,
    },
    /// Integer and float tensors are mixed, or I32 tensors come without pogo's metadata.
    #[error("tensor {tensor:?}: {reason}")]
    Format {
        /// The tensor.
        tensor: String,
        /// What is inconsistent.
        reason: String,
    },
    /// A value cannot be encoded as a fixed-point weight.
    #[error("tensor {tensor:?}, element {index}: {source}")]
    Value {
        /// The tensor.
        tensor: String,
        /// Flat index inside the tensor.
        index: usize,
        /// Why.
        source: EncodeError,
    },
    /// The file's `F` differs from the one asked for.
    #[error("the model was saved with {found} fractional bits, but {requested} were asked for")]
    FractionBitsMismatch {
        /// In the file.
        found: u32,
        /// Asked for.
        requested: u32,
    },
    /// The metadata of a fixed-point file is unreadable.
    #[error("bad {FIXED_POINT_KEY} metadata: {0:?} is not a number of fraction bits from 0 to 30")]
    Metadata(String),
    /// Tensor sizes do not add up to the weight count.
    #[error("tensor shapes hold {expected} weights but {got} were given")]
    SizeMismatch {
        /// Sum of tensor sizes.
        expected: u64,
        /// Weights given.
        got: u64,
    },
    /// Two models that must have the same layout do not.
    #[error("the models have different tensors: {0}")]
    LayoutMismatch(String),
    /// A sharded checkpoint's index and its shards disagree, or a shard is unreadable.
    #[error("sharded checkpoint {index}: {reason}")]
    Shards {
        /// The index file.
        index: String,
        /// What is wrong.
        reason: String,
    },
}

/// The index file of a sharded checkpoint (the Hugging Face layout).
pub const SHARD_INDEX: &str = "model.safetensors.index.json";

/// `model.safetensors.index.json`: which shard holds each tensor.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct ShardIndex {
    pub(crate) weight_map: std::collections::BTreeMap<String, String>,
}

impl ShardIndex {
    /// Reads and parses the index at `path`.
    pub(crate) fn read(path: &Path) -> Result<Self, ModelError> {
        let shown = path.display().to_string();
        let text = std::fs::read(path).map_err(|source| ModelError::Io { path: shown.clone(), source })?;
        serde_json::from_slice(&text)
            .map_err(|e| ModelError::Shards { index: shown, reason: format!("not a shard index ({e})") })
    }

    /// Its shard files, each once, in name order; each must be a plain file name beside
    /// the index (no folder, nothing hidden), or the reason it is not.
    pub(crate) fn shards(&self) -> Result<Vec<&str>, String> {
        let mut shards: Vec<&str> = self.weight_map.values().map(String::as_str).collect();
        shards.sort_unstable();
        shards.dedup();
        match shards.iter().find(|s| Path::new(s).file_name() != Some(std::ffi::OsStr::new(s)) || s.starts_with('.')) {
            Some(shard) => Err(format!("shard {shard:?} is not a file name beside the index")),
            None => Ok(shards),
        }
    }
}

/// The format a file's [`FIXED_POINT_KEY`] metadata declares (`None` for a float file),
/// which must match `requested` when both are given.
pub(crate) fn fixed_point(
    declared: Option<&String>,
    requested: Option<FixedPoint>,
) -> Result<Option<FixedPoint>, ModelError> {
    let Some(text) = declared else {
        return Ok(None);
    };
    let found =
        text.parse().ok().and_then(|f| FixedPoint::new(f).ok()).ok_or_else(|| ModelError::Metadata(text.clone()))?;
    if let Some(req) = requested.filter(|r| *r != found) {
        return Err(ModelError::FractionBitsMismatch { found: found.fraction_bits(), requested: req.fraction_bits() });
    }
    Ok(Some(found))
}

/// A model in DESIGN §2's fixed-point form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Model {
    format: FixedPoint,
    tensors: Vec<TensorInfo>,
    /// Biased weights `u = w + 2^31`, all tensors concatenated.
    weights: Vec<u32>,
}

impl Model {
    /// A model from tensors and their biased weights; tensors are put in name order and the
    /// sizes must add up.
    pub fn new(format: FixedPoint, tensors: Vec<TensorInfo>, weights: Vec<u32>) -> Result<Self, ModelError> {
        let expected: u64 = tensors.iter().map(|t| t.len() as u64).sum();
        if expected != weights.len() as u64 {
            return Err(ModelError::SizeMismatch { expected, got: weights.len() as u64 });
        }
        if weights.is_empty() {
            return Err(ModelError::Empty);
        }
        if !tensors.windows(2).all(|w| w[0].name < w[1].name) {
            return Err(ModelError::Format {
                tensor: tensors.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(","),
                reason: "tensors must be unique and in byte-wise order of their names".into(),
            });
        }
        Ok(Self { format, tensors, weights })
    }

    /// Encodes float tensors (any order) with `format`.
    pub fn from_floats(format: FixedPoint, tensors: Vec<(String, Vec<usize>, Vec<f32>)>) -> Result<Self, ModelError> {
        let mut tensors = tensors;
        tensors.sort_by(|a, b| a.0.cmp(&b.0));
        let mut infos = Vec::with_capacity(tensors.len());
        let mut weights = Vec::new();
        for (name, shape, values) in tensors {
            encode_into(&mut weights, &name, format, values.iter().map(|&v| f64::from(v)))?;
            infos.push(TensorInfo { name, shape });
        }
        Self::new(format, infos, weights)
    }

    /// The fixed-point format.
    pub fn format(&self) -> FixedPoint {
        self.format
    }

    /// Tensors in model order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// All biased weights `u`.
    pub fn weights(&self) -> &[u32] {
        &self.weights
    }

    /// `N`.
    pub fn weight_count(&self) -> u64 {
        self.weights.len() as u64
    }

    /// `nb`.
    pub fn block_count(&self) -> u64 {
        block_count(self.weight_count())
    }

    /// Block `b`, the last one padded with stored zeros (`u = 2^31`).
    pub fn block(&self, b: u64) -> [u32; BLOCK_WEIGHTS] {
        block_of(&self.weights, b)
    }

    /// The leaf `L_b` of block `b`.
    pub fn leaf(&self, b: u64) -> Fr {
        block_leaf(&self.block(b))
    }

    /// The model tree of depth `D` by the sequential native reference (provers build the
    /// same tree on every core with `pogo_prover::commit`).
    pub fn reference_tree(&self, depth: u32) -> Result<MerkleTree, MerkleError> {
        MerkleTree::build((0..self.block_count()).map(|b| self.leaf(b)).collect(), depth)
    }

    /// The tensor and flat index inside it of weight `i`.
    pub fn locate(&self, i: u64) -> Option<(&str, u64)> {
        locate(self.tensors.iter(), i)
    }

    /// The same model with other weights (the layout is kept).
    pub fn with_weights(&self, weights: Vec<u32>) -> Result<Self, ModelError> {
        Self::new(self.format, self.tensors.clone(), weights)
    }

    /// Decoded float values of all weights.
    pub fn to_f64(&self) -> Vec<f64> {
        self.weights.iter().map(|&u| self.format.decode(unbias(u))).collect()
    }

    /// Checks that `other` has the same tensors and format.
    pub fn check_same_layout(&self, other: &Model) -> Result<(), ModelError> {
        same_layout((self.format, &self.tensors), (other.format, &other.tensors))
    }

    /// The index file of `path` when it names a sharded checkpoint (its folder, or the
    /// index itself).
    pub fn shard_index(path: &Path) -> Option<std::path::PathBuf> {
        if path.is_dir() {
            Some(path.join(SHARD_INDEX))
        } else if path.file_name().is_some_and(|n| n == SHARD_INDEX) {
            Some(path.to_path_buf())
        } else {
            None
        }
    }

    /// Writes the model like the checkpoint `source` came in: sharded into the folder
    /// `path` when `source` is a sharded checkpoint and `path` is not a `.safetensors`
    /// file, else as one file ([`Model::save`]).
    pub fn save_like(&self, path: &Path, source: &Path) -> Result<(), ModelError> {
        match Self::shard_layout(path, source) {
            Some(index) => self.save_sharded(path, &index),
            None => self.save(path),
        }
    }

    /// The index a model written at `path` is sharded like: `source`'s, when `source` is a
    /// sharded checkpoint and `path` is not a `.safetensors` file; else none (one file).
    pub fn shard_layout(path: &Path, source: &Path) -> Option<std::path::PathBuf> {
        Self::shard_index(source).filter(|_| path.extension().is_none_or(|e| e != "safetensors"))
    }

    /// Reads a model whole: a safetensors file or a sharded checkpoint given as its folder
    /// or its [`SHARD_INDEX`] file, memory-mapped and checked as [`Checkpoint::open`] says.
    /// The weight order is DESIGN §2's, tensor names in byte order across all shards, so the
    /// model (and its root) does not depend on how it was sharded. To read a model of any
    /// size in bounded memory, stream it from a [`Checkpoint`] instead.
    pub fn load(path: &Path, requested: Option<FixedPoint>) -> Result<Self, ModelError> {
        Checkpoint::open(path, requested)?.to_model()
    }

    /// Parses a safetensors file. Float tensors are encoded with `requested` (default
    /// `F = 24`); a pogo fixed-point file is read exactly, and must match `requested` if given.
    pub fn from_safetensors(bytes: &[u8], requested: Option<FixedPoint>) -> Result<Self, ModelError> {
        let (_, metadata) = SafeTensors::read_metadata(bytes)?;
        let file = SafeTensors::deserialize(bytes)?;
        let fixed = fixed_point(metadata.metadata().as_ref().and_then(|m| m.get(FIXED_POINT_KEY)), requested)?;
        Self::from_views(file.tensors(), fixed, requested)
    }

    /// The model of `views` (any order): `fixed` is the format a pogo fixed-point file
    /// declares (its tensors are read exactly), else floats are encoded with `requested`.
    fn from_views(
        mut views: Vec<(String, safetensors::tensor::TensorView<'_>)>,
        fixed: Option<FixedPoint>,
        requested: Option<FixedPoint>,
    ) -> Result<Self, ModelError> {
        let format = fixed.or(requested).unwrap_or_default();
        views.sort_by(|a, b| a.0.cmp(&b.0));
        let mut tensors = Vec::with_capacity(views.len());
        let mut weights = Vec::with_capacity(views.iter().map(|(_, v)| v.shape().iter().product::<usize>()).sum());
        for (name, view) in views {
            decode_tensor(&name, view.dtype(), fixed.is_some(), format, view.data(), 0, &mut weights)?;
            tensors.push(TensorInfo { name, shape: view.shape().to_vec() });
        }
        Self::new(format, tensors, weights)
    }

    /// The exact fixed-point file: I32 tensors of `w` plus the format in the metadata.
    pub fn to_safetensors(&self) -> Result<Vec<u8>, ModelError> {
        let metadata = HashMap::from([(FIXED_POINT_KEY.to_string(), self.format.fraction_bits().to_string())]);
        let views = self.tensor_slices().map(|(info, weights)| {
            let bytes = weights.iter().flat_map(|&u| unbias(u).to_le_bytes()).collect();
            (info.name.clone(), OwnedView { dtype: Dtype::I32, shape: info.shape.clone(), bytes })
        });
        Ok(safetensors::serialize(views, Some(metadata))?)
    }

    /// The model as a float safetensors file (for trainers outside pogo).
    pub fn to_float_safetensors(&self, dtype: FloatDtype) -> Result<Vec<u8>, ModelError> {
        let as_ = crate::checkpoint::WriteAs::Float(dtype);
        let views = self.tensor_slices().map(|(info, weights)| {
            let mut bytes = Vec::new();
            as_.encode(self.format, weights, &mut bytes);
            (info.name.clone(), OwnedView { dtype: as_.dtype(), shape: info.shape.clone(), bytes })
        });
        Ok(safetensors::serialize(views, None)?)
    }

    /// Writes the exact fixed-point file atomically.
    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        let bytes = self.to_safetensors()?;
        write_atomic(path, &bytes).map_err(|source| ModelError::Io { path: path.display().to_string(), source })
    }

    /// Writes the exact fixed-point model as a sharded checkpoint in `dir`, each tensor in
    /// the shard the index `like` (another checkpoint's [`SHARD_INDEX`]) gives it, with an
    /// index of its own: the layout the model came in. Each shard is written atomically and
    /// the index last, so a reader never sees an index whose shards are not all there. The
    /// model's tensors must be exactly those `like` lists.
    pub fn save_sharded(&self, dir: &Path, like: &Path) -> Result<(), ModelError> {
        let mut writer = CheckpointWriter::create(dir, Some(like), &self.tensors, self.format)?;
        writer.write(&self.weights)?;
        writer.finish()
    }

    fn tensor_slices(&self) -> impl Iterator<Item = (&TensorInfo, &[u32])> {
        let mut offset = 0;
        self.tensors.iter().map(move |info| {
            let slice = &self.weights[offset..offset + info.len()];
            offset += info.len();
            (info, slice)
        })
    }
}

/// The tensor among `tensors` (model order) and the flat index inside it of weight `i`.
pub(crate) fn locate<'a>(tensors: impl Iterator<Item = &'a TensorInfo>, mut i: u64) -> Option<(&'a str, u64)> {
    for t in tensors {
        if i < t.len() as u64 {
            return Some((&t.name, i));
        }
        i -= t.len() as u64;
    }
    None
}

/// Block `b` of a flat biased weight vector, padded with `u = 2^31`.
pub fn block_of(weights: &[u32], b: u64) -> [u32; BLOCK_WEIGHTS] {
    let start = (b as usize).saturating_mul(BLOCK_WEIGHTS).min(weights.len());
    let end = start.saturating_add(BLOCK_WEIGHTS).min(weights.len());
    let mut block = [BIAS; BLOCK_WEIGHTS];
    block[..end - start].copy_from_slice(&weights[start..end]);
    block
}

fn encode_into(
    out: &mut Vec<u32>,
    tensor: &str,
    format: FixedPoint,
    values: impl Iterator<Item = f64>,
) -> Result<(), ModelError> {
    for (index, value) in values.enumerate() {
        let w =
            format.encode(value).map_err(|source| ModelError::Value { tensor: tensor.to_string(), index, source })?;
        out.push(bias(w));
    }
    Ok(())
}

struct OwnedView {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl View for OwnedView {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

/// Refuses two models of different formats or tensors, naming the first difference.
pub(crate) fn same_layout(a: (FixedPoint, &[TensorInfo]), b: (FixedPoint, &[TensorInfo])) -> Result<(), ModelError> {
    let mismatch = |what: String| Err(ModelError::LayoutMismatch(what));
    if a.0 != b.0 {
        return mismatch(format!("{} vs {} fractional bits", a.0.fraction_bits(), b.0.fraction_bits()));
    }
    let describe = |t: Option<&TensorInfo>| t.map_or("nothing".to_string(), |t| format!("{}{:?}", t.name, t.shape));
    match (0..a.1.len().max(b.1.len())).find(|&i| a.1.get(i) != b.1.get(i)) {
        Some(i) => mismatch(format!(
            "tensor {i} (in model order) is {} vs {} ({} vs {} tensors)",
            describe(a.1.get(i)),
            describe(b.1.get(i)),
            a.1.len(),
            b.1.len()
        )),
        None => Ok(()),
    }
}
