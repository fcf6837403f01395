/* circomlib's Poseidon permutation of width POSEIDON_T (DESIGN §2) in the optimized
 * schedule of pogo_circuits::poseidon::OptimizedSpec (sparse partial rounds), as the
 * function POSEIDON_NAME(state, constants). This text is included once per width, with
 * POSEIDON_T, POSEIDON_RP and POSEIDON_NAME defined, so every loop bound is a constant.
 *
 * `k` is the flat constant table pogo_prover::gpu::constants::flat lays out, in Montgomery
 * form: R_F/2 rows of T first-round constants, the pre-sparse T x T matrix, the MDS T x T
 * matrix, R_P partial-round constants, R_P sparse matrices (m00, T-1 row entries, T-1
 * column entries), then R_F/2 rows of T last-round constants. */

/* Each dot product (an MDS row, a sparse matrix's first row) is summed unreduced and
 * reduced once (at most 17 terms, which fr_wide_t holds), or with POGO_NARROW_DOT reduced
 * after every product, as first built. */
POGO_FN void POSEIDON_NAME(fr_t st[POSEIDON_T], const fr_t *k) {
  const int T = POSEIDON_T;
  const fr_t *first = k;
  const fr_t *pre = first + 4 * T;
  const fr_t *mds = pre + T * T;
  const fr_t *partial = mds + T * T;
  const fr_t *sparse = partial + POSEIDON_RP;
  const fr_t *second = sparse + POSEIDON_RP * (2 * T - 1);
  fr_t s[POSEIDON_T];
  for (int r = 0; r < 8; r++) {
    const fr_t *c = r < 4 ? first + r * T : second + (r - 4) * T;
    const fr_t *m = r == 3 ? pre : mds;
    POGO_UNROLL
    for (int i = 0; i < T; i++) s[i] = fr_pow5(fr_add(st[i], c[i]));
    POGO_UNROLL
    for (int i = 0; i < T; i++) {
#ifdef POGO_NARROW_DOT
      fr_t acc = fr_mul(m[i * T], s[0]);
      POGO_UNROLL
      for (int j = 1; j < T; j++) acc = fr_add(acc, fr_mul(m[i * T + j], s[j]));
      st[i] = acc;
#else
      fr_wide_t acc = fr_wide_zero();
      POGO_UNROLL
      for (int j = 0; j < T; j++) acc = fr_mul_acc_wide(acc, m[i * T + j], s[j]);
      st[i] = fr_redc_wide(acc);
#endif
    }
    if (r == 3) {
      for (int p = 0; p < POSEIDON_RP; p++) {
        const fr_t *sp = sparse + p * (2 * T - 1);
        fr_t x0 = fr_pow5(fr_add(st[0], partial[p]));
#ifdef POGO_NARROW_DOT
        fr_t acc = fr_mul(sp[0], x0);
        POGO_UNROLL
        for (int i = 1; i < T; i++) {
          acc = fr_add(acc, fr_mul(sp[i], st[i]));
          st[i] = fr_add(st[i], fr_mul(sp[T - 1 + i], x0));
        }
        st[0] = acc;
#else
        fr_wide_t acc = fr_mul_acc_wide(fr_wide_zero(), sp[0], x0);
        POGO_UNROLL
        for (int i = 1; i < T; i++) {
          acc = fr_mul_acc_wide(acc, sp[i], st[i]);
          st[i] = fr_add(st[i], fr_mul(sp[T - 1 + i], x0));
        }
        st[0] = fr_redc_wide(acc);
#endif
      }
    }
  }
}
