//! The commitment kernels on a CUDA GPU, through cudarc with the driver and NVRTC loaded at
//! run time (`gpu` feature).
//!
//! [`GpuCommitter::new`] checks, in order, that the driver library is there, that a device
//! is, that its architecture is one the kernels support and that NVRTC is there, and says
//! which of these failed; it never panics, so callers fall back to the CPU with that
//! message. The roots are those of [`crate::commit`], which tests and `scripts/gpu-check.sh`
//! compare on random models.

use std::sync::Arc;

use cudarc::driver::{CudaContext, CudaFunction, CudaSlice, CudaStream, LaunchConfig, PushKernelArg};
use cudarc::nvrtc::{compile_ptx_with_opts, CompileOptions, Ptx};
use pogo_circuits::encoding::{block_count, BLOCK_WEIGHTS};
use pogo_circuits::field::Fr;
use pogo_circuits::merkle::{check_shape, default_depth, zero_subtree_roots, MerkleError, MerkleTree};
use rayon::prelude::*;

use super::constants::{flat, from_limbs, to_montgomery, Limbs};
use super::{kernel_source, KernelOptions};
use crate::stream::LayerHasher;

/// Oldest compute capability the kernels are built for: Turing, the oldest that NVRTC 13
/// (the pinned toolkit) targets.
pub const MIN_COMPUTE_CAPABILITY: (i32, i32) = (7, 5);
/// Threads per block of every kernel.
const THREADS: u32 = 128;
/// Weights uploaded per leaf launch: a whole number of blocks, 1.75 GiB of weights.
const CHUNK_WEIGHTS: usize = BLOCK_WEIGHTS << 22;

/// Why the GPU path cannot run here. Each says what is missing; callers use the CPU.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GpuError {
    /// `libcuda.so` could not be loaded.
    #[error("no CUDA driver library (libcuda.so.1) was found: no NVIDIA driver is installed")]
    NoDriver,
    /// The driver loaded but reports no device.
    #[error("the CUDA driver reports no GPU")]
    NoDevice,
    /// The device is older than the kernels support.
    #[error("{name} has compute capability {major}.{minor}; the commitment kernels need {}.{} or newer", MIN_COMPUTE_CAPABILITY.0, MIN_COMPUTE_CAPABILITY.1)]
    Architecture {
        /// The device's name.
        name: String,
        /// Compute capability, major.
        major: i32,
        /// Compute capability, minor.
        minor: i32,
    },
    /// `libnvrtc.so` could not be loaded.
    #[error(
        "NVRTC (libnvrtc.so) was not found: put the CUDA toolkit's lib folder on LD_LIBRARY_PATH \
         (scripts/cuda/env.sh does, with the toolkit from PyPI)"
    )]
    NoNvrtc,
    /// NVRTC refused the kernel source.
    #[error("NVRTC could not compile the commitment kernels: {0}")]
    Compile(String),
    /// A driver call failed (out of memory, a launch error, ...).
    #[error("CUDA call failed during {during}: {message}")]
    Driver {
        /// What pogo was doing.
        during: &'static str,
        /// The driver's error.
        message: String,
    },
    /// The tree shape is invalid (checked before any GPU work).
    #[error(transparent)]
    Shape(#[from] MerkleError),
}

fn driver<E: std::fmt::Debug>(during: &'static str) -> impl FnOnce(E) -> GpuError {
    move |e| GpuError::Driver { during, message: format!("{e:?}") }
}

/// The NVRTC options for a device of compute capability `major.minor`: PTX for that
/// virtual architecture, which the driver turns into the device's machine code at load.
pub fn compile_options(major: i32, minor: i32, kernels: KernelOptions) -> CompileOptions {
    CompileOptions {
        options: vec![format!("--gpu-architecture=compute_{major}{minor}")],
        maxrregcount: kernels.max_registers,
        ..Default::default()
    }
}

/// Compiles the kernels with NVRTC for compute capability `major.minor` (no device needed).
pub fn compile(major: i32, minor: i32, kernels: KernelOptions) -> Result<Ptx, GpuError> {
    if !nvrtc_present() {
        return Err(GpuError::NoNvrtc);
    }
    compile_ptx_with_opts(kernel_source(kernels), compile_options(major, minor, kernels)).map_err(|e| match e {
        cudarc::nvrtc::CompileError::CompileError { log, .. } => GpuError::Compile(log.to_string_lossy().into_owned()),
        other => GpuError::Compile(format!("{other:?}")),
    })
}

/// Whether `libcuda.so` can be loaded: cudarc panics at the first call without it.
fn driver_present() -> bool {
    // SAFETY: only tries to open the library by name.
    #[cfg(not(feature = "cuda-linked"))]
    return unsafe { cudarc::driver::sys::is_culib_present() };
    // Linked at start: a binary that runs has it.
    #[cfg(feature = "cuda-linked")]
    true
}

/// Whether `libnvrtc.so` can be loaded.
fn nvrtc_present() -> bool {
    // SAFETY: only tries to open the library by name.
    #[cfg(not(feature = "cuda-linked"))]
    return unsafe { cudarc::nvrtc::sys::is_culib_present() };
    #[cfg(feature = "cuda-linked")]
    true
}

/// A GPU ready to build model trees: context, compiled kernels and constant tables.
pub struct GpuCommitter {
    stream: Arc<CudaStream>,
    name: String,
    capability: (i32, i32),
    leaves: CudaFunction,
    level: CudaFunction,
    from_mont: CudaFunction,
    k17: CudaSlice<u32>,
    k3: CudaSlice<u32>,
}

impl GpuCommitter {
    /// Finds GPU 0, checks it and compiles the kernels for it.
    pub fn new() -> Result<Self, GpuError> {
        Self::with_options(KernelOptions::default())
    }

    /// As [`GpuCommitter::new`], with the kernels built as `kernels` says.
    pub fn with_options(kernels: KernelOptions) -> Result<Self, GpuError> {
        if !driver_present() {
            return Err(GpuError::NoDriver);
        }
        cudarc::driver::result::init().map_err(|e| match e.0 {
            cudarc::driver::sys::CUresult::CUDA_ERROR_NO_DEVICE => GpuError::NoDevice,
            _ => GpuError::Driver { during: "driver initialisation", message: format!("{e:?}") },
        })?;
        if CudaContext::device_count().map_err(driver("counting devices"))? < 1 {
            return Err(GpuError::NoDevice);
        }
        let ctx = CudaContext::new(0).map_err(driver("creating a context"))?;
        let name = ctx.name().map_err(driver("reading the device name"))?;
        let (major, minor) = ctx.compute_capability().map_err(driver("reading the compute capability"))?;
        if (major, minor) < MIN_COMPUTE_CAPABILITY {
            return Err(GpuError::Architecture { name, major, minor });
        }
        let ptx = compile(major, minor, kernels)?;
        let module = ctx.load_module(ptx).map_err(driver("loading the kernels"))?;
        let function = |name: &str| module.load_function(name).map_err(driver("finding a kernel"));
        let stream = ctx.default_stream();
        let upload = |table: Vec<Limbs>| stream.clone_htod(table.as_flattened()).map_err(driver("uploading constants"));
        Ok(Self {
            leaves: function("pogo_leaves")?,
            level: function("pogo_level")?,
            from_mont: function("pogo_from_mont")?,
            k17: upload(flat(16))?,
            k3: upload(flat(2))?,
            capability: (major, minor),
            name,
            stream,
        })
    }

    /// The device's name, as the driver gives it.
    pub fn device_name(&self) -> &str {
        &self.name
    }

    /// The device's compute capability.
    pub fn compute_capability(&self) -> (i32, i32) {
        self.capability
    }

    /// The `H_16` leaves of the blocks of biased `weights` (the last block padded), in
    /// Montgomery form on the device.
    fn device_leaves(&self, weights: &[u32]) -> Result<CudaSlice<u32>, GpuError> {
        let nb = block_count(weights.len() as u64);
        let s = &self.stream;
        let mut leaves = s.alloc_zeros::<u32>(8 * nb as usize).map_err(driver("allocating the leaves"))?;
        for (chunk, part) in weights.chunks(CHUNK_WEIGHTS).enumerate() {
            let first = chunk * (CHUNK_WEIGHTS / BLOCK_WEIGHTS);
            let count = part.len().div_ceil(BLOCK_WEIGHTS);
            let device_part = s.clone_htod(part).map_err(driver("uploading weights"))?;
            let mut out = leaves.slice_mut(8 * first..8 * (first + count));
            let (n_weights, blocks) = (part.len() as u64, count as u64);
            let mut launch = s.launch_builder(&self.leaves);
            launch.arg(&device_part).arg(&n_weights).arg(&blocks).arg(&self.k17).arg(&mut out);
            // SAFETY: the signature is kernels.cu's pogo_leaves; `out` holds `count` leaves and
            // the kernel reads `device_part` only below `n_weights`.
            unsafe { launch.launch(grid(count as u64)) }.map_err(driver("hashing leaves"))?;
        }
        Ok(leaves)
    }

    /// The parents of `children` (Montgomery form on the device), `zero` for a missing
    /// right child.
    fn device_level(&self, children: &CudaSlice<u32>, zero: &Fr) -> Result<CudaSlice<u32>, GpuError> {
        let s = &self.stream;
        let n_children = (children.len() / 8) as u64;
        let n_parents = n_children.div_ceil(2);
        let zero = s.clone_htod(&to_montgomery(zero)[..]).map_err(driver("uploading a padding root"))?;
        let mut parents = s.alloc_zeros::<u32>(8 * n_parents as usize).map_err(driver("allocating a level"))?;
        let mut launch = s.launch_builder(&self.level);
        launch.arg(children).arg(&n_children).arg(&zero).arg(&self.k3).arg(&mut parents);
        // SAFETY: kernels.cu's pogo_level; `parents` holds one element per pair.
        unsafe { launch.launch(grid(n_parents)) }.map_err(driver("hashing a level"))?;
        Ok(parents)
    }

    /// All levels of the tree over `weights` (biased, DESIGN §2) at `depth` (default: the
    /// smallest that fits), leaves first, in Montgomery form on the device.
    fn levels(&self, weights: &[u32], depth: Option<u32>) -> Result<Vec<CudaSlice<u32>>, GpuError> {
        let nb = block_count(weights.len() as u64);
        let depth = check_shape(nb, depth.unwrap_or_else(|| default_depth(nb)))?;
        let mut levels = vec![self.device_leaves(weights)?];
        for zero in &zero_subtree_roots()[..depth as usize] {
            let parents = self.device_level(levels.last().expect("leaves are first"), zero)?;
            levels.push(parents);
        }
        Ok(levels)
    }

    fn to_host(&self, mut level: CudaSlice<u32>) -> Result<Vec<Fr>, GpuError> {
        let n = (level.len() / 8) as u64;
        let mut launch = self.stream.launch_builder(&self.from_mont);
        launch.arg(&mut level).arg(&n);
        // SAFETY: kernels.cu's pogo_from_mont over the `n` elements of `level`.
        unsafe { launch.launch(grid(n)) }.map_err(driver("leaving Montgomery form"))?;
        let limbs = self.stream.clone_dtoh(&level).map_err(driver("downloading a level"))?;
        limbs
            .par_chunks(8)
            .map(|c| {
                from_limbs(c.try_into().expect("8 limbs")).ok_or(GpuError::Driver {
                    during: "downloading a level",
                    message: "the GPU returned an element that is not below the modulus".into(),
                })
            })
            .collect()
    }

    /// The model tree over biased `weights` at `depth` (default: the smallest that fits),
    /// every level kept for openings. Equal to [`crate::commit::model_tree`].
    pub fn model_tree(&self, weights: &[u32], depth: Option<u32>) -> Result<MerkleTree, GpuError> {
        let levels = self.levels(weights, depth)?;
        let layers = levels.into_iter().map(|l| self.to_host(l)).collect::<Result<Vec<_>, _>>()?;
        Ok(MerkleTree::from_layers(layers)?)
    }

    /// The root alone: only 32 bytes come back (what a benchmark of the hashing measures;
    /// the download waits for every kernel).
    pub fn model_root(&self, weights: &[u32], depth: Option<u32>) -> Result<Fr, GpuError> {
        let root = self.levels(weights, depth)?.pop().expect("depth + 1 levels");
        Ok(self.to_host(root)?[0])
    }
}

/// The streamed tree's hashing on the device, a chunk at a time
/// ([`crate::stream::checkpoint_tree_on`]): only the chunk's weights go up and its hashed
/// layer comes back, so device and host memory stay flat however large the model.
impl LayerHasher for GpuCommitter {
    fn leaves(&self, weights: &[u32]) -> Result<Vec<Fr>, String> {
        self.device_leaves(weights).and_then(|l| self.to_host(l)).map_err(|e| e.to_string())
    }

    fn level(&self, children: &[Fr], zero: &Fr) -> Result<Vec<Fr>, String> {
        let limbs: Vec<u32> = children.iter().flat_map(to_montgomery).collect();
        let uploaded = self.stream.clone_htod(&limbs).map_err(driver("uploading a level"));
        uploaded.and_then(|c| self.device_level(&c, zero)).and_then(|p| self.to_host(p)).map_err(|e| e.to_string())
    }

    fn name(&self) -> String {
        format!("gpu ({})", self.name)
    }
}

fn grid(n: u64) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (n.div_ceil(u64::from(THREADS)).max(1) as u32, 1, 1),
        block_dim: (THREADS, 1, 1),
        shared_mem_bytes: 0,
    }
}
