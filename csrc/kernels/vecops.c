/* Elementwise kernels: vector addition, embedding-table lookup, finiteness scan. */
#include <stdint.h>
#include <string.h>

#include "kernels/kernels.h"
#include "simd.h"

void qe_f32_vadd(size_t n, const float *a, const float *b, float *out) {
  size_t i = 0;
  /* Each element is read before it is written, so out may alias a or b. */
  for (; i + 4 <= n; i += 4)
    wasm_v128_store(out + i, wasm_f32x4_add(wasm_v128_load(a + i), wasm_v128_load(b + i)));
  for (; i < n; i++) out[i] = a[i] + b[i];
}

void qe_f32_embedding_lookup(size_t count, const int32_t *ids, const float *table, size_t dim,
                             float *out) {
  for (size_t i = 0; i < count; i++)
    memcpy(out + i * dim, table + (size_t)ids[i] * dim, dim * sizeof(float));
}

/* NaN and +-Infinity are the floats whose exponent bits are all ones. */
static int is_nonfinite(float x) {
  uint32_t bits;
  memcpy(&bits, &x, sizeof bits);
  return (bits & 0x7f800000u) == 0x7f800000u;
}

size_t qe_f32_first_nonfinite(size_t n, const float *x) {
  /* Blocks of 64 floats, four vectors per step, one branch per block; the
   * block that has one is then scanned element by element. */
  const v128_t e = wasm_i32x4_splat(0x7f800000);
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    v128_t hit = wasm_i32x4_splat(0);
    for (size_t j = i; j < i + 64; j += 16) {
      const v128_t a = wasm_i32x4_eq(wasm_v128_and(wasm_v128_load(x + j), e), e);
      const v128_t b = wasm_i32x4_eq(wasm_v128_and(wasm_v128_load(x + j + 4), e), e);
      const v128_t c = wasm_i32x4_eq(wasm_v128_and(wasm_v128_load(x + j + 8), e), e);
      const v128_t d = wasm_i32x4_eq(wasm_v128_and(wasm_v128_load(x + j + 12), e), e);
      hit = wasm_v128_or(hit, wasm_v128_or(wasm_v128_or(a, b), wasm_v128_or(c, d)));
    }
    if (wasm_v128_any_true(hit)) break;
  }
  for (; i < n; i++)
    if (is_nonfinite(x[i])) return i;
  return n;
}
