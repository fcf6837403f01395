/* The commitment kernels' arithmetic built for the host by the system C compiler (the
 * prover's build.rs), so that the default CPU tests check it against pogo's native
 * Poseidon. Same text as the GPU build; only the entry points differ. */

#include "field.h"
#define POSEIDON_T 3
#define POSEIDON_RP 57
#define POSEIDON_NAME poseidon3
#include "poseidon_impl.h"
#undef POSEIDON_T
#undef POSEIDON_RP
#undef POSEIDON_NAME
#define POSEIDON_T 17
#define POSEIDON_RP 68
#define POSEIDON_NAME poseidon17
#include "poseidon_impl.h"
#undef POSEIDON_T
#undef POSEIDON_RP
#undef POSEIDON_NAME
/* The same permutations with a reduction after every product (POGO_NARROW_DOT). */
#define POGO_NARROW_DOT 1
#define POSEIDON_T 3
#define POSEIDON_RP 57
#define POSEIDON_NAME poseidon3_narrow
#include "poseidon_impl.h"
#undef POSEIDON_T
#undef POSEIDON_RP
#undef POSEIDON_NAME
#define POSEIDON_T 17
#define POSEIDON_RP 68
#define POSEIDON_NAME poseidon17_narrow
#include "poseidon_impl.h"
#undef POGO_NARROW_DOT
#include "tree.h"

/* Canonical in and out. */
void pogo_host_mul(const fr_t *a, const fr_t *b, fr_t *out) {
  *out = fr_from_mont(fr_mul(fr_to_mont(*a), fr_to_mont(*b)));
}

void pogo_host_add(const fr_t *a, const fr_t *b, fr_t *out) {
  *out = fr_from_mont(fr_add(fr_to_mont(*a), fr_to_mont(*b)));
}

/* The leaf kernel's body for blocks [first, first + count); leaves canonical. */
void pogo_host_leaves(const u32 *weights, u64 n_weights, u64 first, u64 count, const fr_t *k17, fr_t *out) {
  for (u64 i = 0; i < count; i++) out[i] = fr_from_mont(pogo_leaf(weights, n_weights, first + i, k17));
}

/* The level kernel's body over a whole level; canonical in and out. */
void pogo_host_level(const fr_t *children, u64 n_children, const fr_t *zero, const fr_t *k3, fr_t *scratch, fr_t *out) {
  for (u64 i = 0; i < n_children; i++) scratch[i] = fr_to_mont(children[i]);
  fr_t z = fr_to_mont(*zero);
  for (u64 i = 0; i < (n_children + 1) / 2; i++) out[i] = fr_from_mont(pogo_parent(scratch, n_children, i, z, k3));
}

/* H_2 or H_16 of canonical inputs (n = 2 or 16), canonical output; `narrow` picks the
 * POGO_NARROW_DOT build of the permutation. */
int pogo_host_hash(u32 n, const fr_t *in, const fr_t *k, u32 narrow, fr_t *out) {
  fr_t st[17];
  st[0] = fr_zero();
  if (n != 2 && n != 16) return -1;
  for (u32 i = 0; i < n; i++) st[1 + i] = fr_to_mont(in[i]);
  if (n == 2)
    narrow ? poseidon3_narrow(st, k) : poseidon3(st, k);
  else
    narrow ? poseidon17_narrow(st, k) : poseidon17(st, k);
  *out = fr_from_mont(st[0]);
  return 0;
}
