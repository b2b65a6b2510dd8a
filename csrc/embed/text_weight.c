/* Corpus-aware weighting of hashed text features (see text_weight.h). */
#include "embed/text_weight.h"

#include <math.h> /* sqrt and isfinite only: builtins, no libm */

#include "embed/feature_hash.h" /* qe_mix32: a feature's column and sign come from independent-looking bits */

/* ln(x) for finite x >= 1 without libm (the threaded builds link none):
 * x = m 2^e with m in [1, 2), ln m = 2 atanh(s), s = (m - 1) / (m + 1) <= 1/3,
 * whose odd series to s^15 is exact to about 1e-9. */
static double log_at_least_one(double x) {
  int e = 0;
  while (x >= 2.0) {
    x *= 0.5;
    e++;
  }
  const double s = (x - 1.0) / (x + 1.0), s2 = s * s;
  double sum = 0.0;
  for (int k = 15; k >= 1; k -= 2) sum = sum * s2 + 1.0 / k;
  return 2.0 * s * sum + e * 0.6931471805599453;
}

float qe_bm25_idf(float df, float docs) {
  if (df > docs) df = docs; /* a bucket shared by colliding features */
  return (float)log_at_least_one(1.0 + ((double)docs - df + 0.5) / ((double)df + 0.5));
}

void qe_u32_df_count(size_t count, const uint32_t *features, uint32_t mask, uint32_t *df) {
  for (size_t i = 0; i < count; i++) df[features[i] & mask]++;
}

void qe_f32_features_idf(size_t count, const uint32_t *features, const uint32_t *df, uint32_t mask,
                         float docs, float *out) {
  for (size_t i = 0; i < count; i++) out[i] = qe_bm25_idf((float)df[features[i] & mask], docs);
}

uint32_t qe_feature_column(uint32_t feature, size_t dim, float *sign) {
  const uint32_t m = qe_mix32(feature ^ 0x3c6ef372u);
  *sign = (qe_mix32(m ^ 0x5bd1e995u) & 1u) ? -1.0f : 1.0f;
  return (uint32_t)(m % (uint32_t)dim);
}

void qe_f32_tfidf_hash_embed(size_t documents, const int32_t *offsets, const uint32_t *features,
                             const float *tf, const float *weight, const uint32_t *df, uint32_t mask,
                             float docs, float k1, size_t dim, float *out) {
  for (size_t d = 0; d < documents; d++) {
    float *o = out + d * dim;
    for (size_t c = 0; c < dim; c++) o[c] = 0.0f;
    for (int32_t f = offsets[d]; f < offsets[d + 1]; f++) {
      const float t = tf[f];
      const float saturated = t * (k1 + 1.0f) / (t + k1);
      const float w = weight[f] * saturated * qe_bm25_idf((float)df[features[f] & mask], docs);
      float sign;
      const uint32_t c = qe_feature_column(features[f], dim, &sign);
      o[c] += sign * w;
    }
    double sq = 0.0;
    for (size_t c = 0; c < dim; c++) sq += (double)o[c] * o[c];
    if (sq > 0.0 && isfinite(sq)) {
      const float inv = (float)(1.0 / sqrt(sq));
      for (size_t c = 0; c < dim; c++) o[c] *= inv;
    }
  }
}
