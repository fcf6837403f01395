//! Error feedback (DESIGN §3 step 2) and its file: one I64 safetensors tensor `residual`,
//! one value per weight. Read whole ([`Residual::load`]) for a model trained in memory, or a
//! range at a time ([`ResidualFile`], memory-mapped) and written as a stream
//! ([`ResidualWriter`]) by the streamed quantizer; both are the same bytes.

use std::path::{Path, PathBuf};

use pogo_circuits::checkpoint::safetensors_header;
use pogo_circuits::encoding::{bias, unbias};
use pogo_circuits::model::Model;
use safetensors::tensor::Dtype;
use safetensors::SafeTensors;

use super::QuantizeError;

/// The tensor name in residual files.
const RESIDUAL_TENSOR: &str = "residual";

/// Error feedback (DESIGN §3 step 2): per weight, the part of earlier rounds' deltas that
/// 4-bit quantization did not apply, in units of `2^-F`. The miner keeps it across rounds
/// and adds it to the next delta, so small but consistent updates are applied eventually
/// instead of being rounded away every round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Residual(pub(super) Vec<i64>);

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

    /// Reads a residual file whole.
    pub fn load(path: &Path) -> Result<Self, ResidualFileError> {
        let file = ResidualFile::open(path)?;
        let mut values = Vec::with_capacity(file.len() as usize);
        file.read(0, file.len(), &mut values)?;
        Ok(Residual(values))
    }

    /// Writes the residual file atomically.
    pub fn save(&self, path: &Path) -> Result<(), ResidualFileError> {
        let mut writer = ResidualWriter::create(path, self.0.len() as u64)?;
        writer.write(&self.0)?;
        writer.finish()
    }
}

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

fn malformed(path: &Path, reason: impl ToString) -> ResidualFileError {
    ResidualFileError::Malformed { path: path.display().to_string(), reason: reason.to_string() }
}

/// A residual file opened for reading ranges of it, memory-mapped.
pub struct ResidualFile {
    path: PathBuf,
    map: memmap2::Mmap,
    /// Where the values start in the file.
    start: usize,
    len: u64,
}

impl ResidualFile {
    /// Opens and checks a residual file (one 1-D I64 tensor named `residual`).
    pub fn open(path: &Path) -> Result<Self, ResidualFileError> {
        let file = std::fs::File::open(path).map_err(|e| malformed(path, e))?;
        // SAFETY: read-only; pogo writes residuals to a new file and renames it, never in place.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| malformed(path, e))?;
        let parsed = SafeTensors::deserialize(&map).map_err(|e| malformed(path, e))?;
        let view = parsed
            .tensor(RESIDUAL_TENSOR)
            .map_err(|_| malformed(path, format!("no tensor named {RESIDUAL_TENSOR:?}")))?;
        if view.dtype() != Dtype::I64 || view.shape().len() != 1 {
            return Err(malformed(
                path,
                format!("expected a 1-D I64 tensor, found {:?} {:?}", view.dtype(), view.shape()),
            ));
        }
        let (start, len) = (view.data().as_ptr() as usize - map.as_ptr() as usize, view.shape()[0] as u64);
        Ok(Self { path: path.to_path_buf(), map, start, len })
    }

    /// Values held (one per weight of the model it is for).
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether it holds no value.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends values `first..first + count` to `out`.
    pub fn read(&self, first: u64, count: u64, out: &mut Vec<i64>) -> Result<(), ResidualFileError> {
        if first.saturating_add(count) > self.len {
            return Err(malformed(&self.path, format!("values {first}.. past its {} values", self.len)));
        }
        let bytes = &self.map[self.start + 8 * first as usize..self.start + 8 * (first + count) as usize];
        out.extend(bytes.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes"))));
        // SAFETY: a read-only file mapping; dropping this process's copy of pages it has read.
        let _ = unsafe {
            self.map.unchecked_advise_range(
                memmap2::UncheckedAdvice::DontNeed,
                bytes.as_ptr() as usize - self.map.as_ptr() as usize,
                bytes.len(),
            )
        };
        Ok(())
    }
}

/// A residual file written in order, a temporary file until [`ResidualWriter::finish`]
/// renames it into place (a writer dropped unfinished removes it).
pub struct ResidualWriter {
    file: std::io::BufWriter<std::fs::File>,
    temp: PathBuf,
    target: PathBuf,
    written: u64,
    total: u64,
}

impl ResidualWriter {
    /// A writer of a residual of `weights` values at `path`.
    pub fn create(path: &Path, weights: u64) -> Result<Self, ResidualFileError> {
        use std::io::Write;
        let header = safetensors_header(
            std::iter::once((RESIDUAL_TENSOR.to_string(), Dtype::I64, vec![weights as usize])),
            None,
        )
        .map_err(|e| malformed(path, e))?;
        let temp = pogo_circuits::files::temp_beside(path).map_err(|e| malformed(path, e))?;
        let file = std::fs::File::create(&temp).map_err(|e| malformed(path, e))?;
        let mut writer =
            Self { file: std::io::BufWriter::new(file), temp, target: path.to_path_buf(), written: 0, total: weights };
        writer.file.write_all(&header).map_err(|e| malformed(path, e))?;
        Ok(writer)
    }

    /// The next values, in order.
    pub fn write(&mut self, values: &[i64]) -> Result<(), ResidualFileError> {
        use std::io::Write;
        if self.written + values.len() as u64 > self.total {
            return Err(malformed(&self.target, format!("more than its {} values written", self.total)));
        }
        for v in values {
            self.file.write_all(&v.to_le_bytes()).map_err(|e| malformed(&self.target, e))?;
        }
        self.written += values.len() as u64;
        Ok(())
    }

    /// Checks every value was written, then syncs and renames the file into place.
    pub fn finish(mut self) -> Result<(), ResidualFileError> {
        use std::io::Write;
        if self.written != self.total {
            return Err(malformed(&self.target, format!("{} of its {} values written", self.written, self.total)));
        }
        let target = self.target.clone();
        self.file.flush().map_err(|e| malformed(&target, e))?;
        self.file.get_ref().sync_all().map_err(|e| malformed(&target, e))?;
        std::fs::rename(&self.temp, &target).map_err(|e| malformed(&target, e))
    }
}

impl Drop for ResidualWriter {
    fn drop(&mut self) {
        // After a successful rename the temporary name is gone and this does nothing.
        let _ = std::fs::remove_file(&self.temp);
    }
}
