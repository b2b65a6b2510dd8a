/*
 * Single-precision GEMM, c = a * b, blocked for the cache and tiled for the
 * registers.
 *
 * Loop order (outer to inner): columns of b in blocks of QE_GEMM_NC, depth in
 * blocks of QE_GEMM_KC, then rows of a four at a time, then 8-column panels.
 * For each (NC, KC) block, b is packed once into `pack` as contiguous panels
 * of 8 columns, zero-padded on the right, so the microkernel reads it with
 * two contiguous vector loads per k step whatever ldb is. A 4 x KC sliver of
 * a (4 KB at KC = 256) stays in L1 while it meets every panel of the block;
 * the packed block (KC x NC floats, 256 KB) stays in L2.
 *
 * The microkernel keeps a 4 x 8 tile of c in 8 vector accumulators: per k
 * step, 2 loads of b, 4 splat loads of a, 8 multiplies and 8 adds. It starts
 * from zero and on the first depth block stores into c (so c need not be
 * initialized), on later blocks adds to it.
 */
#include "kernels/kernels.h"

#include "simd.h"

#ifndef QE_GEMM_KC
#  define QE_GEMM_KC 256
#endif
#ifndef QE_GEMM_NC
#  define QE_GEMM_NC 256 /* a multiple of QE_GEMM_NR */
#endif
#define QE_GEMM_MR 4
#define QE_GEMM_NR 8
_Static_assert(QE_GEMM_NC % QE_GEMM_NR == 0, "column blocks hold whole panels");

#define QE_GEMM_INLINE static inline __attribute__((always_inline))

static size_t min_size(size_t a, size_t b) { return a < b ? a : b; }

size_t qe_f32_gemm_workspace_floats(size_t m, size_t n, size_t k) {
  (void)m; /* only b is packed */
  size_t n_padded = (n + QE_GEMM_NR - 1) / QE_GEMM_NR * QE_GEMM_NR;
  return min_size(k, QE_GEMM_KC) * min_size(n_padded, QE_GEMM_NC);
}

/* Packs rows [0, kc) and columns [0, nc) of b (already offset to the block)
 * as panels of 8 columns: panel p, step s is pack[(p * kc + s) * 8 + 0..7]. */
static void pack_b(size_t kc, size_t nc, const float *b, size_t ldb, float *pack) {
  size_t full = nc / QE_GEMM_NR * QE_GEMM_NR;
  for (size_t j = 0; j < full; j += QE_GEMM_NR) {
    const float *src = b + j;
    for (size_t s = 0; s < kc; s++, src += ldb, pack += QE_GEMM_NR) {
      wasm_v128_store(pack, wasm_v128_load(src));
      wasm_v128_store(pack + 4, wasm_v128_load(src + 4));
    }
  }
  if (full < nc) {
    size_t width = nc - full;
    const float *src = b + full;
    for (size_t s = 0; s < kc; s++, src += ldb, pack += QE_GEMM_NR) {
      size_t col = 0;
      for (; col < width; col++) pack[col] = src[col];
      for (; col < QE_GEMM_NR; col++) pack[col] = 0.0f;
    }
  }
}

/* Writes (or adds, when accumulate) one row of the tile: nr valid columns. */
QE_GEMM_INLINE void store_row(float *c, v128_t lo, v128_t hi, size_t nr, int accumulate) {
  if (nr == QE_GEMM_NR) {
    if (accumulate) {
      lo = wasm_f32x4_add(lo, wasm_v128_load(c));
      hi = wasm_f32x4_add(hi, wasm_v128_load(c + 4));
    }
    wasm_v128_store(c, lo);
    wasm_v128_store(c + 4, hi);
    return;
  }
  float row[QE_GEMM_NR];
  wasm_v128_store(row, lo);
  wasm_v128_store(row + 4, hi);
  for (size_t j = 0; j < nr; j++) c[j] = accumulate ? c[j] + row[j] : row[j];
}

/*
 * mr x 8 tile (mr in 1..4, a compile-time constant at each call site so the
 * unused accumulators vanish): a points at row 0, depth 0 of the sliver.
 */
QE_GEMM_INLINE void tile(size_t mr, size_t kc, const float *a, size_t lda, const float *bp,
                         float *c, size_t ldc, size_t nr, int accumulate) {
  const v128_t zero = wasm_f32x4_splat(0.0f);
  v128_t c00 = zero, c01 = zero, c10 = zero, c11 = zero;
  v128_t c20 = zero, c21 = zero, c30 = zero, c31 = zero;
  /* Rows past mr point at row 0 so no pointer is formed past the end of a; their loads
   * and sums are compiled out. */
  const float *a0 = a;
  const float *a1 = mr > 1 ? a + lda : a;
  const float *a2 = mr > 2 ? a + 2 * lda : a;
  const float *a3 = mr > 3 ? a + 3 * lda : a;
  for (size_t s = 0; s < kc; s++) {
    v128_t b0 = wasm_v128_load(bp);
    v128_t b1 = wasm_v128_load(bp + 4);
    bp += QE_GEMM_NR;
    v128_t av = wasm_v128_load32_splat(a0 + s);
    c00 = qe_f32x4_madd(av, b0, c00);
    c01 = qe_f32x4_madd(av, b1, c01);
    if (mr > 1) {
      av = wasm_v128_load32_splat(a1 + s);
      c10 = qe_f32x4_madd(av, b0, c10);
      c11 = qe_f32x4_madd(av, b1, c11);
    }
    if (mr > 2) {
      av = wasm_v128_load32_splat(a2 + s);
      c20 = qe_f32x4_madd(av, b0, c20);
      c21 = qe_f32x4_madd(av, b1, c21);
    }
    if (mr > 3) {
      av = wasm_v128_load32_splat(a3 + s);
      c30 = qe_f32x4_madd(av, b0, c30);
      c31 = qe_f32x4_madd(av, b1, c31);
    }
  }
  store_row(c, c00, c01, nr, accumulate);
  if (mr > 1) store_row(c + ldc, c10, c11, nr, accumulate);
  if (mr > 2) store_row(c + 2 * ldc, c20, c21, nr, accumulate);
  if (mr > 3) store_row(c + 3 * ldc, c30, c31, nr, accumulate);
}

/* All panels of one packed block against mr rows of a. */
QE_GEMM_INLINE void row_block(size_t mr, size_t nc, size_t kc, const float *a, size_t lda,
                              const float *pack, float *c, size_t ldc, int accumulate) {
  for (size_t j = 0; j < nc; j += QE_GEMM_NR) {
    size_t nr = min_size(QE_GEMM_NR, nc - j);
    tile(mr, kc, a, lda, pack + j * kc, c + j, ldc, nr, accumulate);
  }
}

void qe_f32_gemm(size_t m, size_t n, size_t k, const float *a, size_t lda, const float *b,
                 size_t ldb, float *c, size_t ldc, float *pack) {
  for (size_t j0 = 0; j0 < n; j0 += QE_GEMM_NC) {
    size_t nc = min_size(QE_GEMM_NC, n - j0);
    for (size_t k0 = 0; k0 < k; k0 += QE_GEMM_KC) {
      size_t kc = min_size(QE_GEMM_KC, k - k0);
      int accumulate = k0 > 0;
      pack_b(kc, nc, b + k0 * ldb + j0, ldb, pack);
      size_t i = 0;
      for (; i + QE_GEMM_MR <= m; i += QE_GEMM_MR)
        row_block(4, nc, kc, a + i * lda + k0, lda, pack, c + i * ldc + j0, ldc, accumulate);
      const float *ai = a + i * lda + k0;
      float *ci = c + i * ldc + j0;
      switch (m - i) {
        case 3: row_block(3, nc, kc, ai, lda, pack, ci, ldc, accumulate); break;
        case 2: row_block(2, nc, kc, ai, lda, pack, ci, ldc, accumulate); break;
        case 1: row_block(1, nc, kc, ai, lda, pack, ci, ldc, accumulate); break;
        default: break;
      }
    }
  }
}
