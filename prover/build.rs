//! Builds the commitment kernels' field and Poseidon code for the host with the system C
//! compiler (no CUDA needed), so the default tests check the GPU's own arithmetic against
//! the native Poseidon. The GPU build of the same text happens at run time, through NVRTC.

fn main() {
    let dir = "src/gpu/kernels";
    for file in ["field.h", "poseidon_impl.h", "tree.h", "host.c", "kernels.cu"] {
        println!("cargo:rerun-if-changed={dir}/{file}");
    }
    cc::Build::new().file(format!("{dir}/host.c")).opt_level(3).warnings(true).compile("pogo_kernels_host");
}
