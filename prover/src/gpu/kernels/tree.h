/* One leaf and one parent of the model tree (DESIGN §2 Blocks and Trees): the bodies the
 * GPU kernels run per thread and the host build runs per index, so both are tested as one. */

#define POGO_BLOCK_WEIGHTS 112
#define POGO_LIMBS_PER_ELEMENT 7
#define POGO_ELEMENTS_PER_BLOCK 16
#define POGO_BIAS 0x80000000u

/* L_b = H_16(e_0..e_15) with e_k = sum_{j<7} u_{7k+j} 2^(32j) over block b of the biased
 * weights, padded with u = 2^31 past n_weights. Returns the leaf in Montgomery form. */
POGO_FN fr_t pogo_leaf(const u32 *weights, u64 n_weights, u64 b, const fr_t *k17) {
  fr_t st[17];
  st[0] = fr_zero();
  u64 base = b * POGO_BLOCK_WEIGHTS;
  POGO_UNROLL
  for (int e = 0; e < POGO_ELEMENTS_PER_BLOCK; e++) {
    fr_t x;
    POGO_UNROLL
    for (int j = 0; j < POGO_LIMBS_PER_ELEMENT; j++) {
      u64 i = base + (u64)(POGO_LIMBS_PER_ELEMENT * e + j);
      x.v[j] = i < n_weights ? weights[i] : POGO_BIAS;
    }
    x.v[7] = 0; /* 224 bits: always below p */
    st[1 + e] = fr_to_mont(x);
  }
  poseidon17(st, k17);
  return st[0];
}

/* H_2(children[2i], children[2i+1]), with `zero` for a missing right child. Montgomery
 * form in and out. */
POGO_FN fr_t pogo_parent(const fr_t *children, u64 n_children, u64 i, fr_t zero, const fr_t *k3) {
  fr_t st[3];
  st[0] = fr_zero();
  st[1] = children[2 * i];
  st[2] = 2 * i + 1 < n_children ? children[2 * i + 1] : zero;
  poseidon3(st, k3);
  return st[0];
}
