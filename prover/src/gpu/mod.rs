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

/// The kernels' CUDA source: the shared field, Poseidon (widths 3 and 17) and tree code,
/// then the `__global__` entry points. `host.c` includes the same files in the same order.
/// `mul_calls` makes each field multiplication a call instead of inlined code (smaller code,
/// faster to compile; which runs faster is measured by `pogo bench commit`).
pub fn kernel_source(mul_calls: bool) -> String {
    let width = |t: usize, rp: usize, name: &str| {
        format!(
            "#define POSEIDON_T {t}\n#define POSEIDON_RP {rp}\n#define POSEIDON_NAME {name}\n{}\n\
             #undef POSEIDON_T\n#undef POSEIDON_RP\n#undef POSEIDON_NAME\n",
            include_str!("kernels/poseidon_impl.h")
        )
    };
    [
        if mul_calls { "#define POGO_MUL_CALLS 1\n" } else { "" }.to_string(),
        include_str!("kernels/field.h").to_string(),
        width(3, constants::partial_rounds(2), "poseidon3"),
        width(17, constants::partial_rounds(16), "poseidon17"),
        include_str!("kernels/tree.h").to_string(),
        include_str!("kernels/kernels.cu").to_string(),
    ]
    .join("\n")
}
