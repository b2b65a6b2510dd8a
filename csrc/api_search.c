/*
 * The exported entries of similarity search and feature hashing.
 * As in api.c: each re-checks its sizes, takes working memory from the
 * arena, and returns a status code; the kernels trust their arguments.
 */
#include <math.h>

#include "arena.h"
#include "embed/feature_hash.h"
#include "embed/text_weight.h"
#include "qe_api.h"
#include "kernels/kernels.h"
#include "search/similarity.h"

/* Largest buffer a caller may describe: module memory is at most 4 GiB. */
#define QE_SEARCH_MAX_BYTES ((uint64_t)1 << 32)

/* True when count elements of elem_bytes each are a sane, positive buffer. */
static int buffer_ok(int64_t count, uint64_t elem_bytes) {
  return count > 0 && (uint64_t)count * elem_bytes < QE_SEARCH_MAX_BYTES;
}

/* A matrix of rows x cols floats (or int32) that module memory can hold. */
static int matrix_ok(int32_t rows, int32_t cols) {
  return buffer_ok(rows, 4) && buffer_ok(cols, 4) && buffer_ok((int64_t)rows * cols, 4);
}

int32_t qe_corpus_panel_rows(void) { return QE_CORPUS_PANEL; }

/* A stored corpus of capacity rows: a positive multiple of the panel that memory can hold. */
static int corpus_ok(int32_t capacity, int32_t dim) {
  return matrix_ok(capacity, dim) && capacity % QE_CORPUS_PANEL == 0;
}

int qe_corpus_store_rows(float *corpus, float *inv_norms, int32_t capacity, int32_t dim,
                         int32_t row0, const float *rows, int32_t count) {
  if (!corpus || !inv_norms || !rows) return QE_ERR_NULL;
  if (!corpus_ok(capacity, dim) || !matrix_ok(count, dim) || row0 < 0 ||
      (int64_t)row0 + count > capacity)
    return QE_ERR_ARGUMENT;
  size_t bad = qe_f32_row_inv_norms((size_t)count, (size_t)dim, rows, (size_t)dim, inv_norms + row0);
  qe_f32_corpus_store_rows((size_t)dim, corpus, (size_t)row0, (size_t)count, rows, (size_t)dim);
  if (!bad) return QE_OK;
  /* A refused row (non-finite, or a norm past FLT_MAX) is kept as the zero
   * vector: its dot products would be infinite or NaN, and times its inverse
   * norm of 0 a NaN score, where a zero vector scores 0 against anything. */
  for (int32_t i = 0; i < count; i++)
    if (inv_norms[row0 + i] == 0.0f) qe_f32_corpus_clear_row((size_t)dim, corpus, (size_t)(row0 + i));
  return QE_ERR_ARGUMENT;
}

int qe_corpus_move_row(float *corpus, float *inv_norms, int32_t capacity, int32_t dim,
                       int32_t from, int32_t to) {
  if (!corpus || !inv_norms) return QE_ERR_NULL;
  if (!corpus_ok(capacity, dim)) return QE_ERR_ARGUMENT;
  if (from < 0 || from >= capacity || to < 0 || to >= capacity) return QE_ERR_INDEX;
  qe_f32_corpus_move_row((size_t)dim, corpus, (size_t)from, (size_t)to);
  inv_norms[to] = inv_norms[from];
  return QE_OK;
}

int qe_cosine_topk_check(const float *queries, int32_t nq, const float *corpus,
                         const float *inv_norms, int32_t n, int32_t dim, int32_t k,
                         const int32_t *out_idx, const float *out_score) {
  if (!queries || !corpus || !inv_norms || !out_idx || !out_score) return QE_ERR_NULL;
  if (!matrix_ok(nq, dim) || !matrix_ok(n, dim) || !matrix_ok(nq, k)) return QE_ERR_ARGUMENT;
  /* The corpus spans whole panels. */
  if (!matrix_ok((n + QE_CORPUS_PANEL - 1) / QE_CORPUS_PANEL * QE_CORPUS_PANEL, dim)) return QE_ERR_ARGUMENT;
  return QE_OK;
}

int qe_cosine_topk(const float *queries, int32_t nq, const float *corpus, const float *inv_norms,
                   int32_t n, int32_t dim, int32_t k, int32_t *out_idx, float *out_score) {
  const int status = qe_cosine_topk_check(queries, nq, corpus, inv_norms, n, dim, k, out_idx, out_score);
  if (status != QE_OK) return status;

  const size_t norms_bytes = qe_arena_round((size_t)nq * sizeof(float));
  const size_t search_bytes = qe_f32_cosine_topk_workspace_bytes((size_t)nq, (size_t)dim);
  unsigned char *block = qe_arena_acquire(norms_bytes + search_bytes);
  if (!block) return QE_ERR_NO_MEMORY;
  float *q_inv = (float *)block;
  if (qe_f32_row_inv_norms((size_t)nq, (size_t)dim, queries, (size_t)dim, q_inv) != 0)
    return QE_ERR_ARGUMENT;
  qe_f32_cosine_topk((size_t)nq, (size_t)n, (size_t)dim, (size_t)k, queries, (size_t)dim, q_inv,
                     corpus, inv_norms, out_idx, out_score, (size_t)k, block + norms_bytes);
  return QE_OK;
}

int qe_feature_table_fill(float *table, int32_t rows, int32_t dim, uint32_t seed, float scale) {
  if (!table) return QE_ERR_NULL;
  if (!matrix_ok(rows, dim) || !isfinite(scale)) return QE_ERR_ARGUMENT;
  qe_f32_feature_table_fill((size_t)rows, (size_t)dim, seed, scale, table);
  return QE_OK;
}

int qe_feature_hash_embed(const int32_t *offsets, const int32_t *rows, const float *weights,
                          int32_t tokens, int32_t features, const float *table,
                          int32_t table_rows, int32_t dim, float *out) {
  if (!offsets || !rows || !weights || !table || !out) return QE_ERR_NULL;
  if (!matrix_ok(tokens, dim) || !matrix_ok(table_rows, dim) || features < 0 ||
      !buffer_ok((int64_t)features + 1, 4) || !buffer_ok((int64_t)tokens + 1, 4))
    return QE_ERR_ARGUMENT;
  if (offsets[0] != 0 || offsets[tokens] != features) return QE_ERR_ARGUMENT;
  for (int32_t t = 0; t < tokens; t++)
    if (offsets[t + 1] < offsets[t]) return QE_ERR_ARGUMENT;
  for (int32_t f = 0; f < features; f++) {
    if (!isfinite(weights[f])) return QE_ERR_ARGUMENT;
    if (rows[f] < 0 || rows[f] >= table_rows) return QE_ERR_INDEX;
  }
  qe_f32_embedding_bag_sum((size_t)tokens, offsets, rows, weights, table, (size_t)dim, out);
  /* Finite weights can still sum past FLT_MAX: refuse rather than return infinity. */
  const size_t n = (size_t)tokens * (size_t)dim;
  return qe_f32_first_nonfinite(n, out) == n ? QE_OK : QE_ERR_ARGUMENT;
}

/* A document-frequency table: a power of two of buckets, at most 2^26. */
static int buckets_ok(int32_t buckets) {
  return buckets > 0 && buckets <= (1 << 26) && (buckets & (buckets - 1)) == 0;
}

int qe_text_df_add(uint32_t *df, int32_t buckets, const uint32_t *features, int32_t count) {
  if (!df || (count > 0 && !features)) return QE_ERR_NULL;
  if (!buckets_ok(buckets) || count < 0 || (count > 0 && !buffer_ok(count, 4))) return QE_ERR_ARGUMENT;
  const uint32_t mask = (uint32_t)buckets - 1u;
  for (int32_t i = 0; i < count; i++)
    if (df[features[i] & mask] >= 0x7fffffffu) return QE_ERR_ARGUMENT;
  qe_u32_df_count((size_t)count, features, mask, df);
  return QE_OK;
}

int qe_text_idf(const uint32_t *features, int32_t count, const uint32_t *df, int32_t buckets,
                int32_t docs, float *out) {
  if (!df || (count > 0 && (!features || !out))) return QE_ERR_NULL;
  if (!buckets_ok(buckets) || count < 0 || (count > 0 && !buffer_ok(count, 4)) || docs < 0)
    return QE_ERR_ARGUMENT;
  qe_f32_features_idf((size_t)count, features, df, (uint32_t)buckets - 1u, (float)docs, out);
  return QE_OK;
}

int qe_text_tfidf_embed(const int32_t *offsets, const uint32_t *features, const float *tf,
                        const float *weight, int32_t documents, int32_t features_count,
                        const uint32_t *df, int32_t buckets, int32_t docs, float k1, int32_t dim,
                        float *out) {
  if (!offsets || !df || !out || (features_count > 0 && (!features || !tf || !weight))) return QE_ERR_NULL;
  if (!matrix_ok(documents, dim) || features_count < 0 || !buffer_ok((int64_t)features_count + 1, 4) ||
      !buckets_ok(buckets) || docs < 0 || !(k1 > 0.0f) || !isfinite(k1))
    return QE_ERR_ARGUMENT;
  if (offsets[0] != 0 || offsets[documents] != features_count) return QE_ERR_ARGUMENT;
  for (int32_t d = 0; d < documents; d++)
    if (offsets[d + 1] < offsets[d]) return QE_ERR_ARGUMENT;
  for (int32_t f = 0; f < features_count; f++)
    if (!(tf[f] >= 0.0f) || !isfinite(tf[f]) || !isfinite(weight[f])) return QE_ERR_ARGUMENT;
  qe_f32_tfidf_hash_embed((size_t)documents, offsets, features, tf, weight, df, (uint32_t)buckets - 1u,
                          (float)docs, k1, (size_t)dim, out);
  return QE_OK;
}
