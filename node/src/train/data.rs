//! Datasets and deterministic batch selection: the same seed gives the same batch on every
//! machine, which is what lets verifiers re-evaluate a miner's loss exactly.

use candle_core::{Device, Tensor};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

use super::task::DataSpec;

/// Bytes per record of `digits.bin`: 64 pixels and a label.
const DIGIT_RECORD: usize = 65;

/// Labelled examples with fixed-size features.
#[derive(Debug, Clone)]
pub struct Examples {
    /// Row-major features, `len × dim`.
    pub features: Vec<f32>,
    /// Class labels.
    pub labels: Vec<u32>,
    /// Features per example.
    pub dim: usize,
}

impl Examples {
    /// Number of examples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The examples at `indices` as `(x: [n, dim] f32, y: [n] u32)` tensors.
    pub fn batch(&self, indices: &[usize], device: &Device) -> candle_core::Result<(Tensor, Tensor)> {
        let mut x = Vec::with_capacity(indices.len() * self.dim);
        let mut y = Vec::with_capacity(indices.len());
        for &i in indices {
            x.extend_from_slice(&self.features[i * self.dim..(i + 1) * self.dim]);
            y.push(self.labels[i]);
        }
        Ok((Tensor::from_vec(x, (indices.len(), self.dim), device)?, Tensor::from_vec(y, indices.len(), device)?))
    }
}

/// A dataset split into training and validation examples.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// What training draws batches from.
    pub train: Examples,
    /// Held out: validation curves and verifiers' evaluation batches.
    pub validation: Examples,
    /// Number of classes.
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
        let DataSpec::Digits { path, validation } = spec;
        let err = |why: String| DataError { path: path.display().to_string(), why };
        let bytes = std::fs::read(path).map_err(|e| err(format!("{e} (make it with scripts/data/make-digits.py)")))?;
        if bytes.is_empty() || bytes.len() % DIGIT_RECORD != 0 {
            return Err(err(format!("{} bytes is not a whole number of {DIGIT_RECORD}-byte records", bytes.len())));
        }
        let records: Vec<&[u8]> = bytes.chunks_exact(DIGIT_RECORD).collect();
        if let Some((i, r)) = records.iter().enumerate().find(|(_, r)| r[..64].iter().any(|&p| p > 16) || r[64] > 9) {
            return Err(err(format!("record {i}: pixels must be 0..=16 and the label 0..=9, got {:?}", &r[..])));
        }
        if *validation == 0 || *validation >= records.len() {
            return Err(err(format!("validation must be between 1 and {}, got {validation}", records.len() - 1)));
        }
        let mut order: Vec<usize> = (0..records.len()).collect();
        order.shuffle(&mut ChaCha20Rng::seed_from_u64(seed));
        let take = |ids: &[usize]| Examples {
            features: ids.iter().flat_map(|&i| records[i][..64].iter().map(|&p| f32::from(p) / 16.0)).collect(),
            labels: ids.iter().map(|&i| u32::from(records[i][64])).collect(),
            dim: 64,
        };
        let (held_out, train) = order.split_at(*validation);
        Ok(Dataset { train: take(train), validation: take(held_out), classes: 10 })
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
