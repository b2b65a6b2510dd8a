/*
 * Corpus-aware weighting of hashed text features: document frequencies,
 * BM25's inverse document frequency and term-frequency saturation, and the
 * signed hashing of the weighted features into a dense vector.
 *
 * A feature is a 32-bit hash (of a token, a whole identifier, a literal
 * value, a bigram, a stack frame ...: the caller decides what). Document
 * frequencies are counted per bucket of a power-of-two table indexed by the
 * hash's low bits, so the table's size bounds memory whatever the corpus;
 * colliding features share a count, which only matters when the table is
 * much smaller than the vocabulary.
 *
 * The weight of a feature in a document is
 *     w = weight * (k1 + 1) tf / (k1 + tf) * idf(df),
 *     idf(df) = ln(1 + (N - df + 0.5) / (df + 0.5))          (BM25, Robertson)
 * with tf its count in the document, df its bucket's count among N
 * documents and k1 the saturation (tf beyond a few counts adds little). The
 * length normalisation of BM25 is left to the cosine: vectors are divided by
 * their L2 norm.
 */
#ifndef QE_TEXT_WEIGHT_H
#define QE_TEXT_WEIGHT_H

#include <stddef.h>
#include <stdint.h>

/* BM25 inverse document frequency of a feature in df of docs documents (always > 0). */
float qe_bm25_idf(float df, float docs);

/*
 * Counts one document: df[features[i] & mask] += 1 for each i. The caller
 * passes each distinct feature of the document once.
 */
void qe_u32_df_count(size_t count, const uint32_t *features, uint32_t mask, uint32_t *df);

/* out[i] = qe_bm25_idf(df[features[i] & mask], docs). */
void qe_f32_features_idf(size_t count, const uint32_t *features, const uint32_t *df, uint32_t mask,
                         float docs, float *out);

/*
 * Documents to unit vectors: document d owns features offsets[d] ..
 * offsets[d + 1] (each distinct, with its count tf[f] >= 0 and weight
 * weight[f]). out[d * dim ..] = the sum of +-w (formula above) at column
 * h(feature) mod dim, sign from another bit of the same mixed hash, then
 * divided by its L2 norm (a document with no weight stays all zeros).
 * idf comes from df (mask = buckets - 1) over docs documents.
 */
void qe_f32_tfidf_hash_embed(size_t documents, const int32_t *offsets, const uint32_t *features,
                             const float *tf, const float *weight, const uint32_t *df, uint32_t mask,
                             float docs, float k1, size_t dim, float *out);

/* The column and sign qe_f32_tfidf_hash_embed gives a feature (sign +1 or -1). */
uint32_t qe_feature_column(uint32_t feature, size_t dim, float *sign);

#endif /* QE_TEXT_WEIGHT_H */
