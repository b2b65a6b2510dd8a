/*
 * The vector vocabulary every kernel is written against: the WebAssembly
 * SIMD128 intrinsics (wasm_simd128.h names), supplied by one of three places.
 *
 *   - emcc/clang with -msimd128: the real intrinsics.
 *   - a native build (gcc/clang on x86 or Arm): SIMDe's implementation of the
 *     same intrinsics, so the kernels run under sanitizers and fuzzers.
 *   - the scalar wasm build (no -msimd128): the plain-C stand-ins below, one
 *     lane at a time. They implement only the subset the kernels use.
 *
 * Kernels must use only the intrinsics defined in the stand-in section; the
 * scalar build fails to compile otherwise, which is the point.
 */
#ifndef QE_SIMD_H
#define QE_SIMD_H

#include <stdint.h>
#include <string.h>

#if defined(__wasm_simd128__)
#  include <wasm_simd128.h>
#  if defined(__wasm_relaxed_simd__)
#    define QE_SIMD_NAME "wasm-relaxed-simd"
#  else
#    define QE_SIMD_NAME "wasm-simd128"
#  endif
#  define QE_SIMD_LANES_NATIVE 1
#elif defined(QE_NATIVE_SIMDE)
#  define SIMDE_ENABLE_NATIVE_ALIASES
#  include <simde/wasm/simd128.h>
#  define QE_SIMD_NAME "simde-native"
#  define QE_SIMD_LANES_NATIVE 1
#else
#  define QE_SIMD_NAME "scalar"
#  define QE_SIMD_LANES_NATIVE 0
#  include <math.h>

typedef union {
  float f[4];
  int32_t i[4];
  uint32_t u[4];
} v128_t;

#define QE_SCALAR_INLINE static inline __attribute__((always_inline))

QE_SCALAR_INLINE v128_t wasm_v128_load(const void *p) {
  v128_t r;
  memcpy(&r, p, sizeof r);
  return r;
}
QE_SCALAR_INLINE void wasm_v128_store(void *p, v128_t a) { memcpy(p, &a, sizeof a); }
QE_SCALAR_INLINE v128_t wasm_f32x4_splat(float x) {
  v128_t r;
  r.f[0] = r.f[1] = r.f[2] = r.f[3] = x;
  return r;
}
QE_SCALAR_INLINE v128_t wasm_i32x4_splat(int32_t x) {
  v128_t r;
  r.i[0] = r.i[1] = r.i[2] = r.i[3] = x;
  return r;
}
QE_SCALAR_INLINE v128_t wasm_v128_load32_splat(const void *p) {
  float x;
  memcpy(&x, p, sizeof x);
  return wasm_f32x4_splat(x);
}
QE_SCALAR_INLINE v128_t wasm_f32x4_make(float a, float b, float c, float d) {
  v128_t r;
  r.f[0] = a; r.f[1] = b; r.f[2] = c; r.f[3] = d;
  return r;
}
QE_SCALAR_INLINE float wasm_f32x4_extract_lane_fn(v128_t a, int l) { return a.f[l]; }
#define wasm_f32x4_extract_lane(a, l) wasm_f32x4_extract_lane_fn((a), (l))

#define QE_LANEWISE_F(name, expr)                                   \
  QE_SCALAR_INLINE v128_t name(v128_t a, v128_t b) {                \
    v128_t r;                                                       \
    for (int l = 0; l < 4; l++) { float x = a.f[l], y = b.f[l]; r.f[l] = (expr); } \
    return r;                                                       \
  }
QE_LANEWISE_F(wasm_f32x4_add, x + y)
QE_LANEWISE_F(wasm_f32x4_sub, x - y)
QE_LANEWISE_F(wasm_f32x4_mul, x * y)
QE_LANEWISE_F(wasm_f32x4_div, x / y)
/* pmax/pmin: the "pseudo" forms, b < a ? a : b, exactly as SIMD128 defines them. */
QE_LANEWISE_F(wasm_f32x4_pmax, x < y ? y : x)
QE_LANEWISE_F(wasm_f32x4_pmin, y < x ? y : x)
#undef QE_LANEWISE_F

#define QE_LANEWISE_MASK(name, expr)                                \
  QE_SCALAR_INLINE v128_t name(v128_t a, v128_t b) {                \
    v128_t r;                                                       \
    for (int l = 0; l < 4; l++) { float x = a.f[l], y = b.f[l]; r.i[l] = (expr) ? -1 : 0; } \
    return r;                                                       \
  }
QE_LANEWISE_MASK(wasm_f32x4_lt, x < y)
QE_LANEWISE_MASK(wasm_f32x4_gt, x > y)
QE_LANEWISE_MASK(wasm_f32x4_le, x <= y)
#undef QE_LANEWISE_MASK

QE_SCALAR_INLINE v128_t wasm_f32x4_sqrt(v128_t a) {
  v128_t r;
  for (int l = 0; l < 4; l++) r.f[l] = sqrtf(a.f[l]);
  return r;
}
QE_SCALAR_INLINE v128_t wasm_i32x4_add(v128_t a, v128_t b) {
  v128_t r;
  for (int l = 0; l < 4; l++) r.u[l] = a.u[l] + b.u[l];
  return r;
}
QE_SCALAR_INLINE v128_t wasm_i32x4_sub(v128_t a, v128_t b) {
  v128_t r;
  for (int l = 0; l < 4; l++) r.u[l] = a.u[l] - b.u[l];
  return r;
}
QE_SCALAR_INLINE v128_t wasm_i32x4_shl(v128_t a, uint32_t n) {
  v128_t r;
  for (int l = 0; l < 4; l++) r.u[l] = a.u[l] << n;
  return r;
}
QE_SCALAR_INLINE v128_t wasm_i32x4_eq(v128_t a, v128_t b) {
  v128_t r;
  for (int l = 0; l < 4; l++) r.i[l] = a.u[l] == b.u[l] ? -1 : 0;
  return r;
}
QE_SCALAR_INLINE v128_t wasm_v128_and(v128_t a, v128_t b) {
  v128_t r;
  for (int l = 0; l < 4; l++) r.u[l] = a.u[l] & b.u[l];
  return r;
}
QE_SCALAR_INLINE v128_t wasm_v128_or(v128_t a, v128_t b) {
  v128_t r;
  for (int l = 0; l < 4; l++) r.u[l] = a.u[l] | b.u[l];
  return r;
}
/* Lanes c0..c3 of the eight lanes of a then b (indices must be constants in
 * the real intrinsic; any 0..7 here). */
QE_SCALAR_INLINE v128_t qe_i32x4_shuffle_fn(v128_t a, v128_t b, int c0, int c1, int c2, int c3) {
  const int c[4] = {c0, c1, c2, c3};
  v128_t r;
  for (int l = 0; l < 4; l++) r.u[l] = c[l] < 4 ? a.u[c[l]] : b.u[c[l] - 4];
  return r;
}
#define wasm_i32x4_shuffle(a, b, c0, c1, c2, c3) qe_i32x4_shuffle_fn((a), (b), (c0), (c1), (c2), (c3))
/* bitselect(a, b, m): bits of a where m is 1, of b where m is 0. */
QE_SCALAR_INLINE v128_t wasm_v128_bitselect(v128_t a, v128_t b, v128_t m) {
  v128_t r;
  for (int l = 0; l < 4; l++) r.u[l] = (a.u[l] & m.u[l]) | (b.u[l] & ~m.u[l]);
  return r;
}
QE_SCALAR_INLINE int wasm_v128_any_true(v128_t a) {
  return (a.u[0] | a.u[1] | a.u[2] | a.u[3]) != 0;
}
#undef QE_SCALAR_INLINE
#endif

/* Helpers shared by every build, written against the vocabulary above. */

/* Transposes the 4 x 4 block whose rows are *a, *b, *c, *d: afterwards *a
 * holds lane 0 of each row, *b lane 1, and so on. */
static inline void qe_transpose4x4(v128_t *a, v128_t *b, v128_t *c, v128_t *d) {
  const v128_t ab_lo = wasm_i32x4_shuffle(*a, *b, 0, 4, 1, 5);
  const v128_t cd_lo = wasm_i32x4_shuffle(*c, *d, 0, 4, 1, 5);
  const v128_t ab_hi = wasm_i32x4_shuffle(*a, *b, 2, 6, 3, 7);
  const v128_t cd_hi = wasm_i32x4_shuffle(*c, *d, 2, 6, 3, 7);
  *a = wasm_i32x4_shuffle(ab_lo, cd_lo, 0, 1, 4, 5);
  *b = wasm_i32x4_shuffle(ab_lo, cd_lo, 2, 3, 6, 7);
  *c = wasm_i32x4_shuffle(ab_hi, cd_hi, 0, 1, 4, 5);
  *d = wasm_i32x4_shuffle(ab_hi, cd_hi, 2, 3, 6, 7);
}

/*
 * a * b + c, the one fused step of the vocabulary. The relaxed-SIMD build
 * (clang-19 -mrelaxed-simd, wasm/qe-flash-relaxed-mt.wasm) emits
 * f32x4.relaxed_madd, which the engine runs as a fused multiply-add or as a
 * multiply then an add, whichever the hardware has: the same choice for
 * every call on one machine, so two sums written with this step in the same
 * order agree bitwise. Every other build (SIMD128, SIMDe native, the scalar
 * stand-ins) multiplies, rounds, then adds.
 */
static inline v128_t qe_f32x4_madd(v128_t a, v128_t b, v128_t c) {
#if defined(__wasm_relaxed_simd__)
  return wasm_f32x4_relaxed_madd(a, b, c);
#else
  return wasm_f32x4_add(c, wasm_f32x4_mul(a, b));
#endif
}

/* Which build this is, for qe_simd_level(): 0 scalar, 1 SIMD128 (or SIMDe),
 * 2 SIMD128 with relaxed SIMD. */
#if defined(__wasm_relaxed_simd__)
#  define QE_SIMD_LEVEL 2
#else
#  define QE_SIMD_LEVEL QE_SIMD_LANES_NATIVE
#endif

static inline float qe_f32x4_hsum(v128_t v) {
  /* Fixed order, so the SIMD and scalar builds round identically. */
  return (wasm_f32x4_extract_lane(v, 0) + wasm_f32x4_extract_lane(v, 1)) +
         (wasm_f32x4_extract_lane(v, 2) + wasm_f32x4_extract_lane(v, 3));
}
static inline float qe_f32x4_hmax(v128_t v) {
  float a = wasm_f32x4_extract_lane(v, 0), b = wasm_f32x4_extract_lane(v, 1);
  float c = wasm_f32x4_extract_lane(v, 2), d = wasm_f32x4_extract_lane(v, 3);
  float ab = a < b ? b : a, cd = c < d ? d : c;
  return ab < cd ? cd : ab;
}

#endif /* QE_SIMD_H */
