/* Signed feature hashing: the hashed table and the weighted bag of rows. */
#include "embed/feature_hash.h"

#include "simd.h"

void qe_f32_feature_table_fill(size_t rows, size_t dim, uint32_t seed, float scale, float *table) {
  /* 2 * sqrt(3) / 2^24: 24 random bits to [0, 2 sqrt(3)), then shifted. */
  const float step = 3.4641016151377544f / 16777216.0f;
  const float half = 1.7320508075688772f;
  const uint32_t seed_mix = qe_mix32(seed ^ 0x9e3779b9u);
  for (size_t r = 0; r < rows; r++) {
    const uint32_t row_mix = qe_mix32(seed_mix ^ qe_mix32((uint32_t)r + 0x85ebca6bu));
    float *out = table + r * dim;
    for (size_t c = 0; c < dim; c++) {
      const uint32_t h = qe_mix32(row_mix ^ qe_mix32((uint32_t)c ^ 0xc2b2ae35u));
      out[c] = scale * ((float)(h >> 8) * step - half);
    }
  }
}

void qe_f32_embedding_bag_sum(size_t tokens, const int32_t *offsets, const int32_t *rows,
                              const float *weights, const float *table, size_t dim, float *out) {
  const size_t full = dim / 4 * 4;
  for (size_t t = 0; t < tokens; t++) {
    float *o = out + t * dim;
    for (size_t c = 0; c < full; c += 4) wasm_v128_store(o + c, wasm_f32x4_splat(0.0f));
    for (size_t c = full; c < dim; c++) o[c] = 0.0f;
    for (int32_t f = offsets[t]; f < offsets[t + 1]; f++) {
      const float *row = table + (size_t)rows[f] * dim;
      const float w = weights[f];
      const v128_t wv = wasm_f32x4_splat(w);
      for (size_t c = 0; c < full; c += 4)
        wasm_v128_store(o + c, wasm_f32x4_add(wasm_v128_load(o + c),
                                              wasm_f32x4_mul(wv, wasm_v128_load(row + c))));
      for (size_t c = full; c < dim; c++) o[c] += w * row[c];
    }
  }
}
