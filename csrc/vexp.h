/*
 * Vectorized natural exponential, shared by softmax and attention.
 *
 * Cody-Waite range reduction, x = n*ln2 + r with |r| <= ln2/2 (ln2 split
 * into a high part exact in float and a low correction), then exp(r) by its
 * Taylor series to degree 7 (truncation below 6e-9 relative, under half an
 * ULP), then scaling by 2^n through the exponent bits. Measured within 2 ULP
 * of float64 exp on [-86, 88] by the C tests.
 *
 * Domain: inputs below -86.5 return exactly 0 (exp(-86.5) is 2.7e-38, at the
 * bottom of the normal range), inputs above 88 are treated as 88. Softmax and
 * attention only ever pass x - max <= 0. Inputs must not be NaN: the API
 * rejects non-finite values before any kernel runs.
 */
#ifndef QE_VEXP_H
#define QE_VEXP_H

#include "simd.h"

static inline v128_t qe_vexp_f32x4(v128_t x) {
  const v128_t lo = wasm_f32x4_splat(-86.5f);
  const v128_t hi = wasm_f32x4_splat(88.0f);
  const v128_t log2e = wasm_f32x4_splat(1.44269504088896341f);
  const v128_t ln2_hi = wasm_f32x4_splat(0.693145751953125f);    /* exact, 17 bits */
  const v128_t ln2_lo = wasm_f32x4_splat(1.428606765330187e-06f);
  /* 1.5 * 2^23: adding it rounds to the nearest integer, held in the low mantissa bits. */
  const v128_t magic = wasm_f32x4_splat(12582912.0f);

  v128_t underflow = wasm_f32x4_lt(x, lo);
  v128_t xc = wasm_f32x4_pmin(wasm_f32x4_pmax(x, lo), hi);

  v128_t t = wasm_f32x4_add(wasm_f32x4_mul(xc, log2e), magic);
  v128_t n = wasm_f32x4_sub(t, magic);
  v128_t r = wasm_f32x4_sub(xc, wasm_f32x4_mul(n, ln2_hi));
  r = wasm_f32x4_sub(r, wasm_f32x4_mul(n, ln2_lo));

  v128_t p = wasm_f32x4_splat(1.0f / 5040.0f);
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.0f / 720.0f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.0f / 120.0f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.0f / 24.0f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.0f / 6.0f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(0.5f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.0f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.0f));

  /* t and magic share one binade with an ULP of 1, so their bit patterns differ by exactly n. */
  v128_t nbits = wasm_i32x4_sub(t, magic);
  v128_t scaled = wasm_i32x4_add(p, wasm_i32x4_shl(nbits, 23));
  return wasm_v128_bitselect(wasm_f32x4_splat(0.0f), scaled, underflow);
}

/*
 * 2^x for x <= 0, the cheaper form attention uses once log2(e) has been folded
 * into its scale: round to the nearest integer n, a degree-5 polynomial for
 * 2^f on [-1/2, 1/2] (fitted for relative error on Chebyshev nodes; measured
 * at most 1.7e-7 relative, under 3 ULP), then the exponent bits. Inputs below
 * -125 (including -infinity) return exactly 0: their lanes are computed with
 * garbage and then cleared by one AND with the x >= -125 mask, which is
 * cheaper than clamping and selecting. Positive inputs up to 127 are fine
 * too; callers keep x <= 8. The polynomial's steps are qe_f32x4_madd: fused
 * in the relaxed build, where this exp is about 10% of attention's time and
 * five FMAs instead of five multiplies and five adds save a third of it.
 */
static inline v128_t qe_vexp2_f32x4(v128_t x) {
  const v128_t lo = wasm_f32x4_splat(-125.0f);
  const v128_t magic = wasm_f32x4_splat(12582912.0f);
  const v128_t in_range = wasm_f32x4_le(lo, x);
  const v128_t t = wasm_f32x4_add(x, magic);
  const v128_t f = wasm_f32x4_sub(x, wasm_f32x4_sub(t, magic));
  v128_t p = wasm_f32x4_splat(1.321867225e-03f);
  p = qe_f32x4_madd(p, f, wasm_f32x4_splat(9.671698324e-03f));
  p = qe_f32x4_madd(p, f, wasm_f32x4_splat(5.550893024e-02f));
  p = qe_f32x4_madd(p, f, wasm_f32x4_splat(2.402223796e-01f));
  p = qe_f32x4_madd(p, f, wasm_f32x4_splat(6.931468844e-01f));
  p = qe_f32x4_madd(p, f, wasm_f32x4_splat(1.0f));
  /* t's bits are magic's plus n, and magic's bits shifted left by 23 are 0. */
  const v128_t scaled = wasm_i32x4_add(p, wasm_i32x4_shl(t, 23));
  return wasm_v128_and(scaled, in_range);
}

#endif /* QE_VEXP_H */
