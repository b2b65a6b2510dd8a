/*
 * Signed feature hashing into an embedding table (the "hashing trick" of
 * Weinberger et al., 2009, with dense rows in place of one-hot columns).
 *
 * The tokenizer (js/tokenizer.ts, js/code-embedding.ts) turns each token
 * into a few features (the token, and the n-grams ending at it), hashes each
 * to a table row and a sign, and hands them over in compressed-row form:
 * token t owns features offsets[t] .. offsets[t + 1]. The token's vector is
 * the weighted sum of its features' rows, weight = sign * feature weight, so
 * colliding features cancel in expectation instead of piling up.
 *
 * The table needs no training and no download: every element is a fixed
 * function of (seed, row, column), so the same seed gives the same table in
 * every build and on every machine.
 */
#ifndef QE_FEATURE_HASH_H
#define QE_FEATURE_HASH_H

#include <stddef.h>
#include <stdint.h>

/* A 32-bit integer finalizer (xorshift-multiply rounds): every input bit
 * reaches every output bit, so neighbouring inputs get unrelated values.
 * The table's elements and the text weighting's columns and signs use it. */
static inline uint32_t qe_mix32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return x;
}

/*
 * table[r * dim + c] = scale * u(seed, r, c), where u is uniform on
 * [-sqrt(3), sqrt(3)) (mean 0, variance 1) from an integer hash of
 * (seed, r, c): exactly reproducible, independent of the order of filling.
 */
void qe_f32_feature_table_fill(size_t rows, size_t dim, uint32_t seed, float scale, float *table);

/*
 * out[t * dim ..] = sum over f in [offsets[t], offsets[t + 1]) of
 * weights[f] * table[rows[f] * dim ..], summed in order of f; a token with no
 * features gets a zero vector. Arguments already checked: offsets ascend
 * from 0, every row lies in the table. out must not overlap the inputs.
 */
void qe_f32_embedding_bag_sum(size_t tokens, const int32_t *offsets, const int32_t *rows,
                              const float *weights, const float *table, size_t dim, float *out);

#endif /* QE_FEATURE_HASH_H */
