/* BN254 scalar field arithmetic for pogo's commitment kernels (DESIGN §2: the field of
 * every Poseidon hash). One source for two compilers: NVRTC builds it for the GPU, and the
 * system C compiler builds the same text for the host, so pogo's CPU tests check the GPU's
 * own arithmetic bit for bit against the native Poseidon.
 *
 * Elements are 8 little-endian 32-bit limbs in Montgomery form (R = 2^256), reduced below
 * the modulus p. 32-bit limbs with 64-bit products are what both targets multiply fastest
 * without 128-bit integers. */

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define POGO_FN __device__ __forceinline__
/* POGO_MUL_CALLS makes the multiplication a real call: 4x less code and a shorter JIT,
 * at the cost of a call per product; measured faster on an H200, so the default
 * (pogo bench commit --gpu-inline-mul measures the other). */
#ifdef POGO_MUL_CALLS
#define POGO_MUL_FN __device__ __noinline__
#else
#define POGO_MUL_FN POGO_FN
#endif
/* The wide products and reductions are calls in both builds: inlined, their code takes
 * ptxas minutes. */
#define POGO_WIDE_FN __device__ __noinline__
#define POGO_CONST __device__ const
#define POGO_UNROLL _Pragma("unroll")
typedef unsigned int u32;
typedef unsigned long long u64;
#else
#include <stdint.h>
#define POGO_FN static inline
#define POGO_MUL_FN POGO_FN
#define POGO_WIDE_FN POGO_FN
#define POGO_CONST static const
#define POGO_UNROLL
typedef uint32_t u32;
typedef uint64_t u64;
#endif

typedef struct {
  u32 v[8];
} fr_t;

/* p = 0x30644e72e131a029b85045b68181585d2833e84879b9709143e1f593f0000001 */
POGO_CONST u32 FR_P[8] = {0xf0000001u, 0x43e1f593u, 0x79b97091u, 0x2833e848u,
                          0x8181585du, 0xb85045b6u, 0xe131a029u, 0x30644e72u};
/* R^2 mod p, to enter Montgomery form. */
POGO_CONST u32 FR_R2[8] = {0xae216da7u, 0x1bb8e645u, 0xe35c59e3u, 0x53fe3ab1u,
                           0x53bb8085u, 0x8c49833du, 0x7f4e44a5u, 0x0216d0b1u};
/* -p^-1 mod 2^32 */
#define FR_N0 0xefffffffu

/* r - p if r >= p, else r (r < 2p). */
POGO_FN fr_t fr_reduce_once(fr_t r) {
  fr_t s;
  u64 borrow = 0;
  POGO_UNROLL
  for (int j = 0; j < 8; j++) {
    u64 d = (u64)r.v[j] - FR_P[j] - borrow;
    s.v[j] = (u32)d;
    borrow = (d >> 32) & 1;
  }
  return borrow ? r : s;
}

/* a + b mod p. Both below p < 2^254, so the sum fits in 256 bits. */
POGO_FN fr_t fr_add(fr_t a, fr_t b) {
  fr_t r;
  u64 carry = 0;
  POGO_UNROLL
  for (int j = 0; j < 8; j++) {
    carry += (u64)a.v[j] + b.v[j];
    r.v[j] = (u32)carry;
    carry >>= 32;
  }
  return fr_reduce_once(r);
}

/* Montgomery product a * b / R mod p (CIOS). */
POGO_MUL_FN fr_t fr_mul(fr_t a, fr_t b) {
  u32 t[10];
  POGO_UNROLL
  for (int j = 0; j < 10; j++) t[j] = 0;
  POGO_UNROLL
  for (int i = 0; i < 8; i++) {
    u64 c = 0;
    POGO_UNROLL
    for (int j = 0; j < 8; j++) {
      c += (u64)t[j] + (u64)a.v[j] * b.v[i];
      t[j] = (u32)c;
      c >>= 32;
    }
    c += t[8];
    t[8] = (u32)c;
    t[9] = (u32)(c >> 32);
    u32 m = t[0] * FR_N0;
    c = ((u64)t[0] + (u64)m * FR_P[0]) >> 32;
    POGO_UNROLL
    for (int j = 1; j < 8; j++) {
      c += (u64)t[j] + (u64)m * FR_P[j];
      t[j - 1] = (u32)c;
      c >>= 32;
    }
    c += t[8];
    t[7] = (u32)c;
    t[8] = t[9] + (u32)(c >> 32);
  }
  fr_t r;
  POGO_UNROLL
  for (int j = 0; j < 8; j++) r.v[j] = t[j];
  /* Inputs below p give a result below 2p < 2^255: t[8] is 0 here. */
  return fr_reduce_once(r);
}

/* An unreduced sum of products: 17 limbs. Inputs below p keep a sum of up to 17 products
 * below 17 p^2 < 2^512, so the dot products of Poseidon's width 17 and less reduce once, in
 * fr_redc_wide, instead of once per product. */
typedef struct {
  u32 v[17];
} fr_wide_t;

POGO_FN fr_wide_t fr_wide_zero(void) {
  fr_wide_t r;
  POGO_UNROLL
  for (int k = 0; k < 17; k++) r.v[k] = 0;
  return r;
}

/* acc + a * b, unreduced. */
POGO_WIDE_FN fr_wide_t fr_mul_acc_wide(fr_wide_t acc, fr_t a, fr_t b) {
  u32 t[16];
  POGO_UNROLL
  for (int i = 0; i < 8; i++) {
    u64 c = 0;
    POGO_UNROLL
    for (int j = 0; j < 8; j++) {
      c += (u64)(i == 0 ? 0 : t[i + j]) + (u64)a.v[j] * b.v[i];
      t[i + j] = (u32)c;
      c >>= 32;
    }
    t[i + 8] = (u32)c;
  }
  u64 c = 0;
  POGO_UNROLL
  for (int k = 0; k < 16; k++) {
    c += (u64)acc.v[k] + t[k];
    acc.v[k] = (u32)c;
    c >>= 32;
  }
  acc.v[16] += (u32)c;
  return acc;
}

/* The Montgomery reduction of a sum below 17 p^2: (acc + m p) / 2^256 is below 4.21 p, then
 * brought below p. */
POGO_WIDE_FN fr_t fr_redc_wide(fr_wide_t acc) {
  POGO_UNROLL
  for (int i = 0; i < 8; i++) {
    u32 m = acc.v[i] * FR_N0;
    u64 c = 0;
    POGO_UNROLL
    for (int j = 0; j < 8; j++) {
      c += (u64)acc.v[i + j] + (u64)m * FR_P[j];
      acc.v[i + j] = (u32)c;
      c >>= 32;
    }
    POGO_UNROLL
    for (int k = i + 8; k < 17; k++) {
      c += acc.v[k];
      acc.v[k] = (u32)c;
      c >>= 32;
    }
  }
  fr_t r;
  POGO_UNROLL
  for (int j = 0; j < 8; j++) r.v[j] = acc.v[8 + j];
  /* acc.v[16] is 0 here: the quotient is below 2^256. */
  r = fr_reduce_once(r);
  r = fr_reduce_once(r);
  r = fr_reduce_once(r);
  return fr_reduce_once(r);
}

POGO_FN fr_t fr_zero(void) {
  fr_t r;
  POGO_UNROLL
  for (int j = 0; j < 8; j++) r.v[j] = 0;
  return r;
}

/* Canonical (below p) to Montgomery form. */
POGO_FN fr_t fr_to_mont(fr_t a) {
  fr_t r2;
  POGO_UNROLL
  for (int j = 0; j < 8; j++) r2.v[j] = FR_R2[j];
  return fr_mul(a, r2);
}

/* Montgomery form to canonical. */
POGO_FN fr_t fr_from_mont(fr_t a) {
  fr_t one = fr_zero();
  one.v[0] = 1;
  return fr_mul(a, one);
}

/* x^5, Poseidon's S-box. */
POGO_FN fr_t fr_pow5(fr_t x) {
  fr_t x2 = fr_mul(x, x);
  fr_t x4 = fr_mul(x2, x2);
  return fr_mul(x4, x);
}
