//! GPU commitments: the model tree's `H_16` leaves and `H_2` levels as CUDA kernels.
//!
//! The kernels' field arithmetic and Poseidon permutation are written once, in C that both
//! NVRTC and the system C compiler accept (`kernels/`). [`host`] is that text built for the
//! CPU, which the default tests check bit for bit against the native Poseidon; with the
//! `gpu` feature, [`device`] compiles the same text with NVRTC at run time and runs it
//! through the CUDA driver, both loaded dynamically, so a `gpu` build starts and falls back
//! to the CPU on a machine with no driver or no device.

pub mod constants;
#[cfg(feature = "gpu")]
pub mod device;
pub mod host;

/// How the kernels are built. The default is what measured fastest on an H200
/// (`docs/BENCHMARKS.md`, "GPU").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelOptions {
    /// Each field multiplication a call rather than inlined code (smaller code, a faster
    /// JIT, and measured faster).
    pub mul_calls: bool,
    /// Reduce after every product of a dot product, as first built, instead of summing 17
    /// products unreduced and reducing once (`POGO_NARROW_DOT`).
    pub narrow_dot: bool,
    /// A cap on registers per thread (more threads resident, more spilled); `None`: none.
    pub max_registers: Option<usize>,
}

impl Default for KernelOptions {
    fn default() -> Self {
        Self { mul_calls: true, narrow_dot: false, max_registers: None }
    }
}

/// The kernels' CUDA source: the shared field, Poseidon (widths 3 and 17) and tree code,
/// then the `__global__` entry points, with `options`' defines first. `host.c` includes the
/// same files in the same order.
pub fn kernel_source(options: KernelOptions) -> String {
    let width = |t: usize, rp: usize, name: &str| {
        format!(
            "#define POSEIDON_T {t}\n#define POSEIDON_RP {rp}\n#define POSEIDON_NAME {name}\n{}\n\
             #undef POSEIDON_T\n#undef POSEIDON_RP\n#undef POSEIDON_NAME\n",
            include_str!("kernels/poseidon_impl.h")
        )
    };
    [
        if options.mul_calls { "#define POGO_MUL_CALLS 1\n" } else { "" }.to_string(),
        if options.narrow_dot { "#define POGO_NARROW_DOT 1\n" } else { "" }.to_string(),
        include_str!("kernels/field.h").to_string(),
        width(3, constants::partial_rounds(2), "poseidon3"),
        width(17, constants::partial_rounds(16), "poseidon17"),
        include_str!("kernels/tree.h").to_string(),
        include_str!("kernels/kernels.cu").to_string(),
    ]
    .join("\n")
}
