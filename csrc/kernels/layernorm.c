/*
 * Row layer normalization, y = (x - mean) / sqrt(var + eps) * gamma + beta,
 * with the biased (population) variance as in PyTorch's LayerNorm.
 *
 * Two passes over the row before the output pass: the mean, then the sum of
 * squared deviations from it. The one-pass E[x^2] - mean^2 form cancels
 * catastrophically when |mean| is large against the spread.
 */
#include <math.h>

#include "kernels/kernels.h"
#include "simd.h"

static void layer_norm_row(size_t n, const float *x, const float *gamma, const float *beta,
                           float eps, float *y) {
  size_t full = n / 4 * 4;

  v128_t vsum = wasm_f32x4_splat(0.0f);
  for (size_t i = 0; i < full; i += 4) vsum = wasm_f32x4_add(vsum, wasm_v128_load(x + i));
  float sum = qe_f32x4_hsum(vsum);
  for (size_t i = full; i < n; i++) sum += x[i];
  const float mean = sum / (float)n;
  const v128_t vmean = wasm_f32x4_splat(mean);

  v128_t vsq = wasm_f32x4_splat(0.0f);
  for (size_t i = 0; i < full; i += 4) {
    v128_t d = wasm_f32x4_sub(wasm_v128_load(x + i), vmean);
    vsq = wasm_f32x4_add(vsq, wasm_f32x4_mul(d, d));
  }
  float sq = qe_f32x4_hsum(vsq);
  for (size_t i = full; i < n; i++) {
    float d = x[i] - mean;
    sq += d * d;
  }
  const float rstd = 1.0f / sqrtf(sq / (float)n + eps);
  const v128_t vrstd = wasm_f32x4_splat(rstd);

  /* y[i] is written only after x[i] is read, so y may alias x. */
  for (size_t i = 0; i < full; i += 4) {
    v128_t xhat = wasm_f32x4_mul(wasm_f32x4_sub(wasm_v128_load(x + i), vmean), vrstd);
    v128_t out = wasm_f32x4_add(wasm_f32x4_mul(xhat, wasm_v128_load(gamma + i)),
                                wasm_v128_load(beta + i));
    wasm_v128_store(y + i, out);
  }
  for (size_t i = full; i < n; i++) y[i] = (x[i] - mean) * rstd * gamma[i] + beta[i];
}

void qe_f32_layer_norm_rows(size_t rows, size_t n, const float *x, const float *gamma,
                            const float *beta, float eps, float *y) {
  for (size_t r = 0; r < rows; r++)
    layer_norm_row(n, x + r * n, gamma, beta, eps, y + r * n);
}
