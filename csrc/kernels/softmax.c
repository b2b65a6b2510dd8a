/*
 * Row softmax, y = exp(x - max) / sum(exp(x - max)).
 *
 * Subtracting the row maximum keeps every exponent <= 0, so nothing
 * overflows and the largest term is exactly 1 (the sum is >= 1). The tail of
 * a row (n % 4 elements) is padded with -inf and goes through the same
 * vector exp, which maps it to 0: every element is rounded the same way and
 * the padding adds nothing to the sum.
 */
#include <math.h>

#include "kernels/kernels.h"
#include "simd.h"
#include "vexp.h"

/* Loads count (< 4) floats, the other lanes set to fill. */
static v128_t load_tail(const float *x, size_t count, float fill) {
  float lanes[4] = {fill, fill, fill, fill};
  for (size_t l = 0; l < count; l++) lanes[l] = x[l];
  return wasm_v128_load(lanes);
}

static void store_tail(float *y, size_t count, v128_t v) {
  float lanes[4];
  wasm_v128_store(lanes, v);
  for (size_t l = 0; l < count; l++) y[l] = lanes[l];
}

static void softmax_row(size_t n, const float *x, float *y) {
  size_t full = n / 4 * 4, tail = n - full;

  v128_t vmax = wasm_f32x4_splat(-INFINITY);
  for (size_t i = 0; i < full; i += 4) vmax = wasm_f32x4_pmax(vmax, wasm_v128_load(x + i));
  if (tail) vmax = wasm_f32x4_pmax(vmax, load_tail(x + full, tail, -INFINITY));
  const v128_t max = wasm_f32x4_splat(qe_f32x4_hmax(vmax));

  /* y[i] is written only after x[i] is read, so y may alias x. */
  v128_t vsum = wasm_f32x4_splat(0.0f);
  for (size_t i = 0; i < full; i += 4) {
    v128_t e = qe_vexp_f32x4(wasm_f32x4_sub(wasm_v128_load(x + i), max));
    vsum = wasm_f32x4_add(vsum, e);
    wasm_v128_store(y + i, e);
  }
  if (tail) {
    v128_t e = qe_vexp_f32x4(wasm_f32x4_sub(load_tail(x + full, tail, -INFINITY), max));
    vsum = wasm_f32x4_add(vsum, e);
    store_tail(y + full, tail, e);
  }

  /* A true division (not a multiply by 1/sum): one rounding per element. */
  const v128_t sum = wasm_f32x4_splat(qe_f32x4_hsum(vsum));
  for (size_t i = 0; i < full; i += 4)
    wasm_v128_store(y + i, wasm_f32x4_div(wasm_v128_load(y + i), sum));
  if (tail) store_tail(y + full, tail, wasm_f32x4_div(load_tail(y + full, tail, 0.0f), sum));
}

void qe_f32_softmax_rows(size_t rows, size_t n, const float *x, float *y) {
  for (size_t r = 0; r < rows; r++) softmax_row(n, x + r * n, y + r * n);
}
