/* The commitment kernels, compiled at run time by NVRTC (pogo_prover::gpu::device), one
 * thread per output. field.h, poseidon_impl.h (for widths 3 and 17) and tree.h come first
 * in the same translation unit. */

extern "C" __global__ void pogo_leaves(const u32 *weights, u64 n_weights, u64 nb, const fr_t *k17, fr_t *out) {
  u64 b = (u64)blockIdx.x * blockDim.x + threadIdx.x;
  if (b < nb) out[b] = pogo_leaf(weights, n_weights, b, k17);
}

extern "C" __global__ void pogo_level(const fr_t *children, u64 n_children, const fr_t *zero, const fr_t *k3, fr_t *out) {
  u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < (n_children + 1) / 2) out[i] = pogo_parent(children, n_children, i, *zero, k3);
}

extern "C" __global__ void pogo_from_mont(fr_t *xs, u64 n) {
  u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) xs[i] = fr_from_mont(xs[i]);
}
