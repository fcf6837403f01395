//! Datasets and deterministic batch selection: the same seed gives the same batch on every
//! machine, which is what lets verifiers re-evaluate a miner's loss exactly.

use std::path::Path;

use candle_core::{Device, Tensor};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

use super::task::{DataSpec, ModelSpec};

/// Bytes per record of `digits.bin`: 64 pixels and a label.
const DIGIT_RECORD: usize = 65;

/// Bytes per chunk of a text corpus: the unit the validation split holds out.
const TEXT_CHUNK: usize = 2048;

/// Examples a network trains on.
#[derive(Debug, Clone)]
pub enum Examples {
    /// Labelled examples with fixed-size features.
    Labelled {
        /// Row-major features, `len × dim`.
        features: Vec<f32>,
        /// Class labels.
        labels: Vec<u32>,
        /// Features per example.
        dim: usize,
    },
    /// Windows of `context + 1` bytes of text: the model reads the first `context` and
    /// predicts each next byte.
    Text {
        /// The bytes, as token ids.
        tokens: Vec<u32>,
        /// Where each window starts in `tokens`.
        starts: Vec<usize>,
        /// Window length read by the model.
        context: usize,
    },
    /// Labelled token sequences: `context` ids each (0 is padding), one label each.
    Tokens {
        /// Row-major ids, `len × context`.
        ids: Vec<u32>,
        /// Class labels.
        labels: Vec<u32>,
        /// Ids per example.
        context: usize,
    },
}

impl Examples {
    /// The examples at `indices` (repeats kept), in that order.
    pub fn select(&self, indices: &[usize]) -> Examples {
        match self {
            Examples::Labelled { features, labels, dim } => Examples::Labelled {
                features: indices.iter().flat_map(|&i| &features[i * dim..(i + 1) * dim]).copied().collect(),
                labels: indices.iter().map(|&i| labels[i]).collect(),
                dim: *dim,
            },
            Examples::Text { tokens, starts, context } => Examples::Text {
                tokens: tokens.clone(),
                starts: indices.iter().map(|&i| starts[i]).collect(),
                context: *context,
            },
            Examples::Tokens { ids, labels, context } => Examples::Tokens {
                ids: indices.iter().flat_map(|&i| &ids[i * context..(i + 1) * context]).copied().collect(),
                labels: indices.iter().map(|&i| labels[i]).collect(),
                context: *context,
            },
        }
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        match self {
            Examples::Labelled { labels, .. } | Examples::Tokens { labels, .. } => labels.len(),
            Examples::Text { starts, .. } => starts.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The examples at `indices` as `(x, y)` tensors: `x: [n, dim] f32, y: [n] u32` for
    /// labelled examples, `x, y: [n, context] u32` (inputs, next bytes) for text.
    pub fn batch(&self, indices: &[usize], device: &Device) -> candle_core::Result<(Tensor, Tensor)> {
        match self {
            Examples::Labelled { features, labels, dim } => {
                let mut x = Vec::with_capacity(indices.len() * dim);
                let mut y = Vec::with_capacity(indices.len());
                for &i in indices {
                    x.extend_from_slice(&features[i * dim..(i + 1) * dim]);
                    y.push(labels[i]);
                }
                Ok((Tensor::from_vec(x, (indices.len(), *dim), device)?, Tensor::from_vec(y, indices.len(), device)?))
            }
            Examples::Text { tokens, starts, context } => {
                let mut x = Vec::with_capacity(indices.len() * context);
                let mut y = Vec::with_capacity(indices.len() * context);
                for &i in indices {
                    let s = starts[i];
                    x.extend_from_slice(&tokens[s..s + context]);
                    y.extend_from_slice(&tokens[s + 1..s + 1 + context]);
                }
                let shape = (indices.len(), *context);
                Ok((Tensor::from_vec(x, shape, device)?, Tensor::from_vec(y, shape, device)?))
            }
            Examples::Tokens { ids, labels, context } => {
                let mut x = Vec::with_capacity(indices.len() * context);
                for &i in indices {
                    x.extend_from_slice(&ids[i * context..(i + 1) * context]);
                }
                let y: Vec<u32> = indices.iter().map(|&i| labels[i]).collect();
                Ok((
                    Tensor::from_vec(x, (indices.len(), *context), device)?,
                    Tensor::from_vec(y, indices.len(), device)?,
                ))
            }
        }
    }

    /// What the network reads per example: features, or the context length.
    pub fn width(&self) -> usize {
        match self {
            Examples::Labelled { dim, .. } => *dim,
            Examples::Text { context, .. } | Examples::Tokens { context, .. } => *context,
        }
    }
}

/// A dataset split into training and validation examples.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// What training draws batches from.
    pub train: Examples,
    /// Held out: validation curves and verifiers' evaluation batches.
    pub validation: Examples,
    /// Number of classes (the vocabulary size for text).
    pub classes: usize,
}

/// The data file is missing or malformed.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {why}")]
pub struct DataError {
    path: String,
    why: String,
}

impl Dataset {
    /// Loads the data a task names and splits it by `seed`.
    pub fn load(spec: &DataSpec, seed: u64) -> Result<Self, DataError> {
        match spec {
            DataSpec::Digits { path, validation } => Self::digits(path, *validation, seed),
            DataSpec::Text { path, context, validation } => Self::text(path, *context, *validation, seed),
            DataSpec::Tokens { path, context, labels, validation } => {
                Self::tokens(path, *context, labels.len(), *validation, seed)
            }
        }
    }

    /// Labelled token records (see [`DataSpec::Tokens`]), split by `seed`.
    fn tokens(path: &Path, context: usize, classes: usize, validation: usize, seed: u64) -> Result<Self, DataError> {
        let err = |why: String| DataError { path: path.display().to_string(), why };
        let bytes = std::fs::read(path)
            .map_err(|e| err(format!("{e} (make it with scripts/data/make-license-paragraphs.py)")))?;
        let examples = held_out::token_records(&bytes, context, classes).map_err(err)?;
        let (held_out, train) = split(examples.len(), validation, seed).map_err(err)?;
        Ok(Dataset { train: examples.select(&train), validation: examples.select(&held_out), classes })
    }

    fn digits(path: &Path, validation: usize, seed: u64) -> Result<Self, DataError> {
        let err = |why: String| DataError { path: path.display().to_string(), why };
        let bytes = std::fs::read(path).map_err(|e| err(format!("{e} (make it with scripts/data/make-digits.py)")))?;
        if bytes.is_empty() || bytes.len() % DIGIT_RECORD != 0 {
            return Err(err(format!("{} bytes is not a whole number of {DIGIT_RECORD}-byte records", bytes.len())));
        }
        let records: Vec<&[u8]> = bytes.chunks_exact(DIGIT_RECORD).collect();
        if let Some((i, r)) = records.iter().enumerate().find(|(_, r)| r[..64].iter().any(|&p| p > 16) || r[64] > 9) {
            return Err(err(format!("record {i}: pixels must be 0..=16 and the label 0..=9, got {:?}", &r[..])));
        }
        let (held_out, train) = split(records.len(), validation, seed).map_err(err)?;
        let take = |ids: &[usize]| Examples::Labelled {
            features: ids.iter().flat_map(|&i| records[i][..64].iter().map(|&p| f32::from(p) / 16.0)).collect(),
            labels: ids.iter().map(|&i| u32::from(records[i][64])).collect(),
            dim: 64,
        };
        Ok(Dataset { train: take(&train), validation: take(&held_out), classes: 10 })
    }

    /// A byte-level corpus cut into 2 KiB chunks; `validation` chunks (picked by the seed) are
    /// held out, and examples are the windows inside each chunk.
    fn text(path: &Path, context: usize, validation: usize, seed: u64) -> Result<Self, DataError> {
        let err = |why: String| DataError { path: path.display().to_string(), why };
        let bytes =
            std::fs::read(path).map_err(|e| err(format!("{e} (make it with scripts/data/make-licenses.py)")))?;
        if let Some(i) = bytes.iter().position(|&b| b != b'\n' && !(b' '..=b'~').contains(&b)) {
            return Err(err(format!("byte {i} is {:#04x}: the corpus must be printable ASCII and newlines", bytes[i])));
        }
        if context == 0 || context >= TEXT_CHUNK {
            return Err(err(format!("context must be between 1 and {}, got {context}", TEXT_CHUNK - 1)));
        }
        let chunks: Vec<&[u8]> = bytes.chunks(TEXT_CHUNK).filter(|c| c.len() > context).collect();
        let (held_out, train) = split(chunks.len(), validation, seed).map_err(err)?;
        let take = |ids: &[usize]| {
            let (mut tokens, mut starts) = (Vec::new(), Vec::new());
            for &i in ids {
                starts.extend((0..chunks[i].len() - context).map(|s| tokens.len() + s));
                tokens.extend(chunks[i].iter().map(|&b| u32::from(b)));
            }
            Examples::Text { tokens, starts, context }
        };
        Ok(Dataset { train: take(&train), validation: take(&held_out), classes: TEXT_VOCABULARY })
    }
}

/// Checks that `examples` are within what the network `model` reads: for an encoder, every
/// token id below its vocabulary (records pass [`held_out::examples`] without knowing it).
/// An id past the vocabulary would stop the reference evaluator, and index out of bounds in
/// candle's embedding on a GPU.
pub fn check_fits(model: &ModelSpec, examples: &Examples) -> Result<(), String> {
    if let (ModelSpec::Encoder { vocabulary, .. }, Examples::Tokens { ids, context, .. }) = (model, examples) {
        if let Some(at) = ids.iter().position(|&id| id as usize >= *vocabulary) {
            return Err(format!(
                "record {}: token id {} is past the model's vocabulary of {vocabulary}",
                at / context.max(&1),
                ids[at]
            ));
        }
    }
    Ok(())
}

/// Token ids of text are bytes.
pub const TEXT_VOCABULARY: usize = 256;

/// Shuffles `0..len` by `seed` and splits off the first `validation` as held out.
fn split(len: usize, validation: usize, seed: u64) -> Result<(Vec<usize>, Vec<usize>), String> {
    if validation == 0 || validation >= len {
        return Err(format!("validation must be between 1 and {}, got {validation}", len.saturating_sub(1)));
    }
    let mut order: Vec<usize> = (0..len).collect();
    order.shuffle(&mut ChaCha20Rng::seed_from_u64(seed));
    let train = order.split_off(validation);
    Ok((order, train))
}

/// Held-out evaluation data: what a task owner keeps back and commits to (a Merkle root
/// over batches, `pogo_verifier::heldout`), revealing one batch per round when phase 1
/// draws it. A batch is a 32-byte salt (so the leaf hashes that Merkle paths show of
/// undrawn batches confirm no guess about their contents), then `eval_batch_size`
/// fixed-size records: for digits, the 65-byte records of `digits.bin`; for text, windows
/// of `context + 1` bytes (the model reads the first `context` and predicts each next byte).
pub mod held_out {
    use std::path::{Path, PathBuf};

    use super::{DataError, Examples, DIGIT_RECORD};
    use crate::train::task::{DataSpec, ModelSpec};

    /// Bytes per record of a batch of this kind of data.
    pub fn record_size(spec: &DataSpec) -> usize {
        match spec {
            DataSpec::Digits { .. } => DIGIT_RECORD,
            DataSpec::Text { context, .. } => context + 1,
            DataSpec::Tokens { context, .. } => 2 * (context + 1),
        }
    }

    /// Records of `context` little-endian u16 ids and a u16 label below `classes`, checked.
    pub(super) fn token_records(bytes: &[u8], context: usize, classes: usize) -> Result<Examples, String> {
        let size = 2 * (context + 1);
        if bytes.is_empty() || !bytes.len().is_multiple_of(size) {
            return Err(format!("{} bytes is not a whole number of {size}-byte records", bytes.len()));
        }
        let words: Vec<u32> = bytes.chunks_exact(2).map(|w| u32::from(u16::from_le_bytes([w[0], w[1]]))).collect();
        let (mut ids, mut labels) = (Vec::with_capacity(words.len()), Vec::with_capacity(words.len() / (context + 1)));
        for (i, record) in words.chunks_exact(context + 1).enumerate() {
            let label = record[context];
            if label as usize >= classes {
                return Err(format!("record {i}: label {label} of {classes} classes"));
            }
            if record[0] == 0 {
                return Err(format!("record {i}: starts with padding (id 0): no tokens"));
            }
            ids.extend_from_slice(&record[..context]);
            labels.push(label);
        }
        Ok(Examples::Tokens { ids, labels, context })
    }

    /// Where a task's held-out file is by default: beside its data file, `-heldout` before
    /// the extension (`digits.bin` → `digits-heldout.bin`).
    pub fn default_path(data: &Path) -> PathBuf {
        let stem = data.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let name = match data.extension() {
            Some(ext) => format!("{stem}-heldout.{}", ext.to_string_lossy()),
            None => format!("{stem}-heldout"),
        };
        data.with_file_name(name)
    }

    fn check_records(spec: &DataSpec, bytes: &[u8], err: &dyn Fn(String) -> DataError) -> Result<(), DataError> {
        let size = record_size(spec);
        if bytes.is_empty() || !bytes.len().is_multiple_of(size) {
            return Err(err(format!("{} bytes is not a whole number of {size}-byte records", bytes.len())));
        }
        let (bad, rule): (fn(&[u8]) -> bool, &str) = match spec {
            DataSpec::Tokens { context, labels, .. } => {
                return token_records(bytes, *context, labels.len()).map(|_| ()).map_err(err)
            }
            DataSpec::Digits { .. } => {
                (|r| r[..64].iter().any(|&p| p > 16) || r[64] > 9, "pixels must be 0..=16 and the label 0..=9")
            }
            DataSpec::Text { .. } => (
                |r| r.iter().any(|&b| b != b'\n' && !(b' '..=b'~').contains(&b)),
                "text must be printable ASCII and newlines",
            ),
        };
        if let Some(i) = bytes.chunks_exact(size).position(bad) {
            return Err(err(format!("record {i}: {rule}")));
        }
        Ok(())
    }

    /// The owner's held-out file cut into batches of `batch_size` records (a partial last
    /// batch is left out). Digits: records of `digits.bin`'s format; text: a corpus of the
    /// task's format, cut into non-overlapping windows of `context + 1` bytes.
    pub fn batches(spec: &DataSpec, path: &Path, batch_size: usize) -> Result<Vec<Vec<u8>>, DataError> {
        let err = |why: String| DataError { path: path.display().to_string(), why };
        let mut bytes = std::fs::read(path).map_err(|e| {
            err(format!("{e} (the held-out evaluation data: pass --held-out FILE, in the format of the task's data)"))
        })?;
        let size = record_size(spec);
        if matches!(spec, DataSpec::Text { .. }) {
            bytes.truncate(bytes.len() / size * size);
        }
        check_records(spec, &bytes, &err)?;
        let per_batch = size * batch_size.max(1);
        let batches: Vec<Vec<u8>> = bytes.chunks_exact(per_batch).map(<[u8]>::to_vec).collect();
        if batches.is_empty() {
            return Err(err(format!(
                "{} records make no whole batch of eval_batch_size = {batch_size}",
                bytes.len() / size
            )));
        }
        Ok(batches)
    }

    /// Bytes of the salt that starts every batch.
    pub const SALT_LEN: usize = 32;

    /// The batches as committed: each prefixed with its salt `keccak256(key ‖ index)`.
    pub fn salted(batches: &[Vec<u8>], key: &[u8; 32]) -> Vec<Vec<u8>> {
        batches
            .iter()
            .enumerate()
            .map(|(i, records)| {
                let mut preimage = key.to_vec();
                preimage.extend_from_slice(&(i as u64).to_be_bytes());
                let mut batch = alloy::primitives::keccak256(preimage).to_vec();
                batch.extend_from_slice(records);
                batch
            })
            .collect()
    }

    /// A revealed batch (salt, then records) as examples, checked: whole records of valid
    /// values.
    pub fn examples(spec: &DataSpec, batch: &[u8]) -> Result<Examples, DataError> {
        let err = |why: String| DataError { path: "the revealed held-out batch".into(), why };
        let batch = batch
            .get(SALT_LEN..)
            .ok_or_else(|| err(format!("{} bytes is shorter than its {SALT_LEN}-byte salt", batch.len())))?;
        check_records(spec, batch, &err)?;
        Ok(match spec {
            DataSpec::Digits { .. } => Examples::Labelled {
                features: batch
                    .chunks_exact(DIGIT_RECORD)
                    .flat_map(|r| r[..64].iter().map(|&p| f32::from(p) / 16.0))
                    .collect(),
                labels: batch.chunks_exact(DIGIT_RECORD).map(|r| u32::from(r[64])).collect(),
                dim: 64,
            },
            DataSpec::Text { context, .. } => Examples::Text {
                tokens: batch.iter().map(|&b| u32::from(b)).collect(),
                starts: (0..batch.len() / (context + 1)).map(|i| i * (context + 1)).collect(),
                context: *context,
            },
            DataSpec::Tokens { context, labels, .. } => token_records(batch, *context, labels.len()).map_err(err)?,
        })
    }

    /// [`examples`], then [`super::check_fits`] against the network `model`: a batch that
    /// is both data of the task's kind and readable by its network, or why not.
    pub fn readable_examples(model: &ModelSpec, spec: &DataSpec, batch: &[u8]) -> Result<Examples, String> {
        let examples = examples(spec, batch).map_err(|e| e.to_string())?;
        super::check_fits(model, &examples)?;
        Ok(examples)
    }

    /// How many held-out records also appear in the public data file (digits: identical
    /// records; tokens: identical ids, whatever the label; text: windows found in the corpus). Held-out data a miner can read is no
    /// test of learning.
    pub fn overlap(spec: &DataSpec, public: &[u8], batches: &[Vec<u8>]) -> usize {
        let size = record_size(spec);
        let records = batches.iter().flat_map(|b| b.chunks_exact(size));
        match spec {
            DataSpec::Digits { .. } => {
                let known: std::collections::HashSet<&[u8]> = public.chunks_exact(size).collect();
                records.filter(|r| known.contains(r)).count()
            }
            // The ids alone: the same text under another label is no less seen.
            DataSpec::Tokens { .. } => {
                let known: std::collections::HashSet<&[u8]> =
                    public.chunks_exact(size).map(|r| &r[..size - 2]).collect();
                records.filter(|r| known.contains(&r[..size - 2])).count()
            }
            DataSpec::Text { .. } => {
                let known: std::collections::HashSet<&[u8]> = public.windows(size).collect();
                records.filter(|r| known.contains(r)).count()
            }
        }
    }
}

/// `size` indices below `len` drawn (with replacement) from a seed and a stream number:
/// training batches use (round, step), evaluation batches the phase-1 seed.
pub fn batch_indices(len: usize, size: usize, seed: [u8; 32], stream: u64) -> Vec<usize> {
    use rand::Rng;
    let mut rng = ChaCha20Rng::from_seed(seed);
    rng.set_stream(stream);
    (0..size).map(|_| rng.gen_range(0..len)).collect()
}
