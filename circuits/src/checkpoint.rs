//! A model checkpoint read in place: one safetensors file or a sharded checkpoint
//! (Hugging Face layout), memory-mapped and decoded tensor by tensor in DESIGN §2's order,
//! so a model of any size streams through a fixed-size buffer ([`Checkpoint::stream`]) or
//! is read whole ([`Checkpoint::to_model`], what [`Model::load`] does).

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors};

use crate::encoding::{bias, block_count, unbias, FixedPoint, BIAS, BLOCK_WEIGHTS};
use crate::model::{fixed_point, locate, FloatDtype, Model, ModelError, ShardIndex, TensorInfo, FIXED_POINT_KEY};

/// A tensor as stored: its shard, dtype and bytes there.
#[derive(Debug)]
struct Stored {
    info: TensorInfo,
    dtype: Dtype,
    map: usize,
    bytes: Range<usize>,
}

/// An opened checkpoint: every file mapped, every header checked, the tensors in model
/// order. Nothing is decoded until asked for.
#[derive(Debug)]
pub struct Checkpoint {
    maps: Vec<memmap2::Mmap>,
    tensors: Vec<Stored>,
    /// Whether the files are pogo's exact fixed-point format (I32 tensors).
    fixed: bool,
    format: FixedPoint,
}

fn map_file(path: &Path) -> Result<memmap2::Mmap, std::io::Error> {
    let file = std::fs::File::open(path)?;
    // SAFETY: the map is read-only and pogo never writes a file it is reading. Another
    // process changing the file underneath can only change the bytes decoded (which are
    // then hashed and checked like any others).
    unsafe { memmap2::Mmap::map(&file) }
}

impl Checkpoint {
    /// Opens a safetensors file, or a sharded checkpoint given as its folder or its
    /// [`crate::model::SHARD_INDEX`] file. Float tensors will be encoded with `requested`
    /// (default `F = 24`); a pogo fixed-point file is read exactly and must match
    /// `requested` if given.
    ///
    /// Shards must be plain file names beside the index and hold exactly the tensors the
    /// index gives them; a tensor in two shards, a missing or truncated shard and a shard
    /// whose header disagrees with the index are each refused by name.
    pub fn open(path: &Path, requested: Option<FixedPoint>) -> Result<Self, ModelError> {
        let Some(index) = Model::shard_index(path) else {
            let map = map_file(path).map_err(|source| ModelError::Io { path: path.display().to_string(), source })?;
            let (_, metadata) = SafeTensors::read_metadata(&map)?;
            let declared = metadata.metadata().as_ref().and_then(|m| m.get(FIXED_POINT_KEY)).cloned();
            let file = SafeTensors::deserialize(&map)?;
            let tensors = stored(&map, 0, &file);
            return Self::new(vec![map], tensors, fixed_point(declared.as_ref(), requested)?, requested);
        };
        let bad = |reason: String| ModelError::Shards { index: index.display().to_string(), reason };
        let parsed = ShardIndex::read(&index)?;
        let folder = index.parent().unwrap_or(Path::new("."));
        let shards = parsed.shards().map_err(bad)?;
        let mut maps = Vec::with_capacity(shards.len());
        for shard in &shards {
            maps.push(map_file(&folder.join(shard)).map_err(|e| bad(format!("shard {shard}: {e}")))?);
        }
        let mut tensors = Vec::new();
        let mut seen: HashMap<String, &str> = HashMap::new();
        let mut declared = Vec::with_capacity(shards.len());
        for (k, (shard, map)) in shards.iter().zip(&maps).enumerate() {
            let invalid = |e| bad(format!("shard {shard}: not a valid safetensors file: {e}"));
            let (_, metadata) = SafeTensors::read_metadata(map).map_err(invalid)?;
            let file = SafeTensors::deserialize(map).map_err(invalid)?;
            for name in file.names() {
                match parsed.weight_map.get(name) {
                    Some(listed) if listed == shard => {}
                    Some(listed) => {
                        return Err(bad(format!("tensor {name:?} is in shard {shard}, the index puts it in {listed}")))
                    }
                    None => {
                        return Err(bad(format!("shard {shard} holds tensor {name:?}, which the index does not list")))
                    }
                }
                // A tensor in two shards cannot get here: the index names one of them.
                seen.insert(name.to_string(), shard);
            }
            declared.push(metadata.metadata().as_ref().and_then(|m| m.get(FIXED_POINT_KEY)).cloned());
            tensors.extend(stored(map, k, &file));
        }
        if let Some((name, shard)) = parsed.weight_map.iter().find(|(name, _)| !seen.contains_key(name.as_str())) {
            return Err(bad(format!("the index puts tensor {name:?} in shard {shard}, which does not hold it")));
        }
        // Every shard must say the same about pogo's fixed-point format (or nothing).
        if declared.windows(2).any(|w| w[0] != w[1]) {
            return Err(bad(format!("the shards disagree on their {FIXED_POINT_KEY} metadata")));
        }
        let fixed = fixed_point(declared.first().and_then(Option::as_ref), requested)?;
        Self::new(maps, tensors, fixed, requested)
    }

    fn new(
        maps: Vec<memmap2::Mmap>,
        mut tensors: Vec<Stored>,
        fixed: Option<FixedPoint>,
        requested: Option<FixedPoint>,
    ) -> Result<Self, ModelError> {
        tensors.sort_by(|a, b| a.info.name.cmp(&b.info.name));
        for t in &tensors {
            check_dtype(&t.info.name, t.dtype, fixed.is_some())?;
        }
        if tensors.iter().all(|t| t.info.is_empty()) {
            return Err(ModelError::Empty);
        }
        let format = fixed.or(requested).unwrap_or_default();
        Ok(Self { maps, tensors, fixed: fixed.is_some(), format })
    }

    /// The fixed-point format the weights are (or will be) in.
    pub fn format(&self) -> FixedPoint {
        self.format
    }

    /// Tensors in model order.
    pub fn tensors(&self) -> impl Iterator<Item = &TensorInfo> {
        self.tensors.iter().map(|t| &t.info)
    }

    /// `N`.
    pub fn weight_count(&self) -> u64 {
        self.tensors.iter().map(|t| t.info.len() as u64).sum()
    }

    /// `nb`.
    pub fn block_count(&self) -> u64 {
        block_count(self.weight_count())
    }

    /// The tensor and flat index inside it of weight `i`.
    pub fn locate(&self, i: u64) -> Option<(&str, u64)> {
        locate(self.tensors(), i)
    }

    /// Appends the weights of tensor `t`'s elements `first..first + count`.
    fn decode(&self, t: &Stored, first: usize, count: usize, out: &mut Vec<u32>) -> Result<(), ModelError> {
        let width = dtype_width(t.dtype);
        let bytes = &self.maps[t.map][t.bytes.start + first * width..t.bytes.start + (first + count) * width];
        decode_tensor(&t.info.name, t.dtype, self.fixed, self.format, bytes, first, out)
    }

    /// Checks that `other` has the same tensors and format.
    pub fn check_same_layout(&self, other: &Checkpoint) -> Result<(), ModelError> {
        let tensors = |c: &Checkpoint| c.tensors().cloned().collect::<Vec<_>>();
        crate::model::same_layout((self.format, &tensors(self)), (other.format, &tensors(other)))
    }

    /// The whole model in memory.
    pub fn to_model(&self) -> Result<Model, ModelError> {
        let mut weights = Vec::with_capacity(self.weight_count() as usize);
        for t in &self.tensors {
            self.decode(t, 0, t.info.len(), &mut weights)?;
        }
        Model::new(self.format, self.tensors().cloned().collect(), weights)
    }

    /// Calls `f(first_block, weights)` on the model's biased weights in order, `chunk_blocks`
    /// blocks at a time (the last call may hold fewer, and a last partial block unpadded).
    /// Memory: one buffer of `chunk_blocks` blocks; the pages of each file are let go once
    /// decoded, so the mapped files do not accumulate in this process either.
    pub fn stream<E: From<ModelError>>(
        &self,
        chunk_blocks: usize,
        mut f: impl FnMut(u64, &[u32]) -> Result<(), E>,
    ) -> Result<(), E> {
        let chunk = chunk_blocks.max(1) as u64;
        let mut buffer = Vec::with_capacity(chunk as usize * BLOCK_WEIGHTS);
        let mut first = 0;
        while first < self.block_count() {
            buffer.clear();
            self.read_blocks(first, chunk, &mut buffer)?;
            f(first, &buffer)?;
            first += chunk;
        }
        Ok(())
    }

    /// Appends the biased weights of blocks `first..first + count` (those that exist; a last
    /// partial block unpadded) to `out`, decoded from the files, whose pages are then let go
    /// (they stay in the page cache, not in this process).
    pub fn read_blocks(&self, first: u64, count: u64, out: &mut Vec<u32>) -> Result<(), ModelError> {
        let start = first.saturating_mul(BLOCK_WEIGHTS as u64);
        let end = first.saturating_add(count).saturating_mul(BLOCK_WEIGHTS as u64);
        let mut offset = 0u64;
        for t in &self.tensors {
            let len = t.info.len() as u64;
            let (lo, hi) = (start.max(offset), end.min(offset + len));
            if lo < hi {
                let (from, take) = ((lo - offset) as usize, (hi - lo) as usize);
                self.decode(t, from, take, out)?;
                let width = dtype_width(t.dtype);
                // SAFETY: the map is a read-only file mapping; MADV_DONTNEED only drops this
                // process's copy of pages it re-reads from the file if touched again.
                let _ = unsafe {
                    self.maps[t.map].unchecked_advise_range(
                        memmap2::UncheckedAdvice::DontNeed,
                        t.bytes.start + from * width,
                        take * width,
                    )
                };
            }
            offset += len;
            if offset >= end {
                break;
            }
        }
        Ok(())
    }

    /// Block `b` (the last one padded with `u = 2^31`), decoded from the files alone.
    pub fn block(&self, b: u64) -> Result<[u32; BLOCK_WEIGHTS], ModelError> {
        let mut out = Vec::with_capacity(BLOCK_WEIGHTS);
        self.read_blocks(b, 1, &mut out)?;
        let mut block = [BIAS; BLOCK_WEIGHTS];
        block[..out.len()].copy_from_slice(&out);
        Ok(block)
    }
}

/// The tensors of one parsed file, with their byte ranges in `map`.
fn stored(map: &[u8], k: usize, file: &SafeTensors<'_>) -> Vec<Stored> {
    file.tensors()
        .into_iter()
        .map(|(name, view)| {
            let start = view.data().as_ptr() as usize - map.as_ptr() as usize;
            Stored {
                info: TensorInfo { name, shape: view.shape().to_vec() },
                dtype: view.dtype(),
                map: k,
                bytes: start..start + view.data().len(),
            }
        })
        .collect()
}

/// Bytes per element of a dtype [`check_dtype`] passed (all whole bytes).
fn dtype_width(dtype: Dtype) -> usize {
    dtype.bitsize() / 8
}

/// Refuses dtypes pogo does not read, and floats and integers in the wrong kind of file.
pub(crate) fn check_dtype(name: &str, dtype: Dtype, fixed: bool) -> Result<(), ModelError> {
    match (dtype, fixed) {
        (Dtype::I32, true) | (Dtype::F32 | Dtype::F16 | Dtype::BF16, false) => Ok(()),
        (Dtype::I32, false) => Err(ModelError::Format {
            tensor: name.to_string(),
            reason: format!("I32 tensors are read only from pogo fixed-point files (metadata {FIXED_POINT_KEY})"),
        }),
        (Dtype::F32 | Dtype::F16 | Dtype::BF16, true) => Err(ModelError::Format {
            tensor: name.to_string(),
            reason: "a float tensor inside a pogo fixed-point file".into(),
        }),
        (dtype, _) => Err(ModelError::UnsupportedDtype { tensor: name.to_string(), dtype }),
    }
}

/// Appends the biased weights of `data`, elements `first..` of tensor `name` (of a
/// `dtype` already passed by [`check_dtype`]): exact I32 in a fixed-point file, floats
/// encoded with `format` otherwise.
pub(crate) fn decode_tensor(
    name: &str,
    dtype: Dtype,
    fixed: bool,
    format: FixedPoint,
    data: &[u8],
    first: usize,
    out: &mut Vec<u32>,
) -> Result<(), ModelError> {
    check_dtype(name, dtype, fixed)?;
    let encode = |out: &mut Vec<u32>, values: &mut dyn Iterator<Item = f64>| {
        for (k, value) in values.enumerate() {
            let w = format.encode(value).map_err(|source| ModelError::Value {
                tensor: name.to_string(),
                index: first + k,
                source,
            })?;
            out.push(bias(w));
        }
        Ok(())
    };
    match dtype {
        Dtype::I32 => {
            out.extend(data.chunks_exact(4).map(|c| bias(i32::from_le_bytes([c[0], c[1], c[2], c[3]]))));
            Ok(())
        }
        Dtype::F32 => {
            encode(out, &mut data.chunks_exact(4).map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]]))))
        }
        Dtype::F16 => encode(out, &mut data.chunks_exact(2).map(|c| f64::from(half::f16::from_le_bytes([c[0], c[1]])))),
        _ => encode(out, &mut data.chunks_exact(2).map(|c| f64::from(half::bf16::from_le_bytes([c[0], c[1]])))),
    }
}

/// Writes a model in pogo's exact fixed-point format from weights streamed in model order,
/// as one safetensors file or as a sharded checkpoint in the layout of an index: the same
/// bytes [`Model::save`] writes (and what [`Model::save_sharded`] writes with it). Headers come first (their sizes
/// are known from the tensors), each weight goes straight to its place, and every file is
/// a temporary one until [`CheckpointWriter::finish`] renames them (shards first, the index
/// last); a writer dropped unfinished removes them. Memory: nothing beyond the caller's chunk.
pub struct CheckpointWriter {
    /// (temporary file, its path, the final path) per output file.
    files: Vec<(std::fs::File, std::path::PathBuf, std::path::PathBuf)>,
    /// Per tensor in model order: its file, the byte offset of its data there, its length.
    places: Vec<(usize, u64, u64)>,
    /// The index to write last, for a sharded checkpoint.
    index: Option<(std::path::PathBuf, Vec<u8>)>,
    /// Weights written so far.
    written: u64,
    total: u64,
    format: FixedPoint,
    as_: WriteAs,
}

/// How a [`CheckpointWriter`] stores weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteAs {
    /// pogo's exact fixed-point format (I32 tensors).
    Fixed,
    /// Floats, decoded from the fixed-point values (exact in F32 for `F <= 24` and
    /// `|w| < 2^24`; rounded to nearest in F16 and BF16).
    Float(FloatDtype),
}

impl WriteAs {
    /// The safetensors dtype.
    pub(crate) fn dtype(self) -> Dtype {
        match self {
            WriteAs::Fixed => Dtype::I32,
            WriteAs::Float(FloatDtype::F32) => Dtype::F32,
            WriteAs::Float(FloatDtype::F16) => Dtype::F16,
            WriteAs::Float(FloatDtype::BF16) => Dtype::BF16,
        }
    }

    /// Bytes per weight.
    fn width(self) -> u64 {
        self.dtype().bitsize() as u64 / 8
    }

    /// Appends the stored bytes of biased `weights` of a model in `format`.
    pub(crate) fn encode(self, format: FixedPoint, weights: &[u32], out: &mut Vec<u8>) {
        let value = |u: u32| format.decode(unbias(u));
        match self {
            WriteAs::Fixed => out.extend(weights.iter().flat_map(|&u| unbias(u).to_le_bytes())),
            WriteAs::Float(FloatDtype::F32) => {
                out.extend(weights.iter().flat_map(|&u| (value(u) as f32).to_le_bytes()))
            }
            WriteAs::Float(FloatDtype::F16) => {
                out.extend(weights.iter().flat_map(|&u| half::f16::from_f64(value(u)).to_le_bytes()))
            }
            WriteAs::Float(FloatDtype::BF16) => {
                out.extend(weights.iter().flat_map(|&u| half::bf16::from_f64(value(u)).to_le_bytes()))
            }
        }
    }
}

impl CheckpointWriter {
    /// A writer of a model of `tensors` (model order) in `format` at `path`: one file, or,
    /// with `layout` (another checkpoint's index, see [`Model::shard_layout`]), a folder of
    /// shards holding the tensors that index gives them, and an index of its own. The
    /// tensors must be exactly those `layout` lists.
    pub fn create(
        path: &Path,
        layout: Option<&Path>,
        tensors: &[TensorInfo],
        format: FixedPoint,
    ) -> Result<Self, ModelError> {
        Self::create_as(path, layout, tensors, format, WriteAs::Fixed)
    }

    /// [`CheckpointWriter::create`] storing the weights `as_` says: exact fixed point, or
    /// decoded with `format` into floats (what `pogo export` writes for trainers).
    pub fn create_as(
        path: &Path,
        layout: Option<&Path>,
        tensors: &[TensorInfo],
        format: FixedPoint,
        as_: WriteAs,
    ) -> Result<Self, ModelError> {
        let io = |path: &Path| {
            let path = path.display().to_string();
            move |source| ModelError::Io { path, source }
        };
        // (final path, the tensors it holds in model order)
        let mut outputs: Vec<(std::path::PathBuf, Vec<usize>)> = Vec::new();
        let mut index = None;
        match layout {
            Some(like) => {
                let bad = |reason: String| ModelError::Shards { index: like.display().to_string(), reason };
                let layout = ShardIndex::read(like)?;
                let shards = layout.shards().map_err(bad)?;
                if tensors.len() != layout.weight_map.len()
                    || tensors.iter().any(|t| !layout.weight_map.contains_key(&t.name))
                {
                    return Err(bad("the model's tensors are not the ones this index lists".into()));
                }
                std::fs::create_dir_all(path).map_err(io(path))?;
                for shard in shards {
                    let held = (0..tensors.len()).filter(|&i| layout.weight_map[&tensors[i].name] == shard).collect();
                    outputs.push((path.join(shard), held));
                }
                let metadata = match as_ {
                    WriteAs::Fixed => serde_json::json!({ "format": "pogo" }),
                    WriteAs::Float(_) => serde_json::json!({}),
                };
                let json = serde_json::json!({ "metadata": metadata, "weight_map": layout.weight_map });
                index = Some((
                    path.join(crate::model::SHARD_INDEX),
                    serde_json::to_vec_pretty(&json).expect("indexes serialize"),
                ));
            }
            None => outputs.push((path.to_path_buf(), (0..tensors.len()).collect())),
        }
        let mut writer = Self {
            files: Vec::new(),
            places: vec![(0, 0, 0); tensors.len()],
            index,
            written: 0,
            total: 0,
            format,
            as_,
        };
        for (k, (target, held)) in outputs.into_iter().enumerate() {
            let header = match as_ {
                WriteAs::Fixed => fixed_point_header(held.iter().map(|&i| &tensors[i]), format)?,
                WriteAs::Float(_) => safetensors_header(
                    held.iter().map(|&i| (tensors[i].name.clone(), as_.dtype(), tensors[i].shape.clone())),
                    None,
                )?,
            };
            let mut at = header.len() as u64;
            for &i in &held {
                let len = tensors[i].len() as u64;
                writer.places[i] = (k, at, len);
                at += as_.width() * len;
            }
            let temp = crate::files::temp_beside(&target).map_err(io(&target))?;
            let file = std::fs::File::create(&temp).map_err(io(&temp))?;
            writer.files.push((file, temp.clone(), target));
            use std::os::unix::fs::FileExt;
            let file = &writer.files[k].0;
            file.set_len(at).map_err(io(&temp))?;
            file.write_all_at(&header, 0).map_err(io(&temp))?;
        }
        writer.total = tensors.iter().map(|t| t.len() as u64).sum();
        Ok(writer)
    }

    /// The next weights of the model, in order.
    pub fn write(&mut self, weights: &[u32]) -> Result<(), ModelError> {
        use std::os::unix::fs::FileExt;
        let mut rest = weights;
        let mut start = 0u64; // first weight of the current tensor
        for &(file, offset, len) in &self.places {
            if rest.is_empty() {
                break;
            }
            if self.written >= start + len {
                start += len;
                continue;
            }
            let inside = self.written - start;
            let take = ((len - inside) as usize).min(rest.len());
            let mut bytes = Vec::with_capacity(take * self.as_.width() as usize);
            self.as_.encode(self.format, &rest[..take], &mut bytes);
            let (handle, temp, _) = &self.files[file];
            handle
                .write_all_at(&bytes, offset + self.as_.width() * inside)
                .map_err(|source| ModelError::Io { path: temp.display().to_string(), source })?;
            self.written += take as u64;
            rest = &rest[take..];
            start += len;
        }
        if !rest.is_empty() {
            return Err(ModelError::SizeMismatch { expected: self.total, got: self.written + rest.len() as u64 });
        }
        Ok(())
    }

    /// Checks every weight was written, then syncs and renames the files into place.
    pub fn finish(mut self) -> Result<(), ModelError> {
        if self.written != self.total {
            return Err(ModelError::SizeMismatch { expected: self.total, got: self.written });
        }
        let files = std::mem::take(&mut self.files);
        for (file, temp, target) in files {
            let result = file.sync_all().and_then(|()| std::fs::rename(&temp, &target));
            if let Err(source) = result {
                let _ = std::fs::remove_file(&temp);
                return Err(ModelError::Io { path: target.display().to_string(), source });
            }
        }
        if let Some((path, bytes)) = self.index.take() {
            crate::files::write_atomic(&path, &bytes)
                .map_err(|source| ModelError::Io { path: path.display().to_string(), source })?;
        }
        Ok(())
    }
}

impl Drop for CheckpointWriter {
    fn drop(&mut self) {
        for (_, temp, _) in &self.files {
            let _ = std::fs::remove_file(temp);
        }
    }
}

/// The header (length and JSON, padded to 8 bytes with spaces) of a pogo fixed-point file
/// holding `tensors` in this order: what `safetensors::serialize` writes for them.
fn fixed_point_header<'a>(
    tensors: impl Iterator<Item = &'a TensorInfo>,
    format: FixedPoint,
) -> Result<Vec<u8>, ModelError> {
    let metadata = HashMap::from([(FIXED_POINT_KEY.to_string(), format.fraction_bits().to_string())]);
    Ok(safetensors_header(tensors.map(|t| (t.name.clone(), Dtype::I32, t.shape.clone())), Some(metadata))?)
}

/// The header (length and JSON, padded to 8 bytes with spaces) of a safetensors file holding
/// `(name, dtype, shape)` tensors stored in this order, with `metadata`: what
/// `safetensors::serialize` writes before their data, so a writer can put it first and
/// stream the data after it.
pub fn safetensors_header(
    tensors: impl Iterator<Item = (String, Dtype, Vec<usize>)>,
    metadata: Option<HashMap<String, String>>,
) -> Result<Vec<u8>, safetensors::SafeTensorError> {
    let mut offset = 0;
    let infos = tensors
        .map(|(name, dtype, shape)| {
            let n = shape.iter().product::<usize>() * dtype.bitsize() / 8;
            let info = safetensors::tensor::TensorInfo { dtype, shape, data_offsets: (offset, offset + n) };
            offset += n;
            (name, info)
        })
        .collect();
    let metadata = safetensors::tensor::Metadata::new(metadata, infos)?;
    let mut json = serde_json::to_string(&metadata).expect("headers serialize").into_bytes();
    json.resize(json.len().next_multiple_of(8), b' ');
    let mut header = (json.len() as u64).to_le_bytes().to_vec();
    header.extend_from_slice(&json);
    Ok(header)
}
