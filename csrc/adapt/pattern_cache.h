/*
 * A pattern cache: up to max_patterns embeddings, each with a quality
 * score, a hit count, a last-use tick and a label (opaque bytes: the
 * caller's id and metadata), searched by exact cosine top-k through an
 * optional Micro-LoRA on the query.
 *
 * Layout: the embeddings are a corpus in the panel layout of
 * csrc/search/similarity.h (rows 0 .. count-1, no holes: a removal moves
 * the last row into the hole), with their inverse norms; per row arrays of
 * quality, hits, last use, and label pointers. Capacity grows by doubling,
 * whole panels at a time; a row's place in the panel layout does not depend
 * on the capacity, so growth is a plain reallocation.
 *
 * Time is a counter (the clock), ticked by every store and every look-up
 * that touches its results, so "least recently used" needs no wall clock
 * and survives export and import.
 *
 * Search: with enough rows (QE_CACHE_QUANTIZED_MIN) and k small, a first
 * pass scores int8 codes of the rows (per-row scale) and bounds each code
 * score's distance from the exact one (see pattern_cache.c); only the rows
 * whose bound reaches the k-th best lower bound are scored exactly, with the
 * arithmetic of qe_f32_cosine_topk, so the results are the same to the bit.
 *
 * Eviction, when a new pattern arrives and the cache is full: the row of
 * lowest quality; among equal qualities the least recently used; then the
 * lowest row. The new pattern takes the victim's row.
 */
#ifndef QE_PATTERN_CACHE_H
#define QE_PATTERN_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "adapt/micro_lora.h"

#define QE_CACHE_MAX_PATTERNS (1 << 24)
#define QE_CACHE_MAX_LABEL (1u << 24)

/* Layout version of struct qe_pattern_cache (its handle header carries it). */
#define QE_PATTERN_CACHE_LAYOUT 1u

typedef struct qe_pattern_cache {
  qe_handle h; /* first: the entries check it (runtime/handle.h) */
  size_t dim, count, max_patterns, capacity;
  uint64_t clock;
  float *corpus, *inv_norms, *quality;
  uint32_t *hits;
  uint64_t *last_use;
  unsigned char **label;
  uint32_t *label_len;
  /* int8 codes, rows of ldc (dim rounded up to 16, zero padded): row r is
   * about code_w[r] / inv_norms[r] * codes[r]; code_w[r] = scale * inv_norm,
   * code_err[r] >= |row - scale * codes| * inv_norm (the residual, relative
   * to the row's norm), code_sum[r] = the sum of the codes. */
  size_t ldc;
  int8_t *codes;
  float *code_w, *code_err;
  int32_t *code_sum;
  size_t last_candidates;
} qe_pattern_cache;

/* Rows from which search scans codes first, and the largest k it does so for. */
#define QE_CACHE_QUANTIZED_MIN 256
#define QE_CACHE_QUANTIZED_MAX_K 64

qe_pattern_cache *qe_pattern_cache_create(size_t dim, size_t max_patterns);
void qe_pattern_cache_destroy(qe_pattern_cache *cache);
void qe_pattern_cache_clear(qe_pattern_cache *cache);

/* The row a new pattern would replace in a full cache. count >= 1. */
size_t qe_pattern_cache_victim(const qe_pattern_cache *cache);

/*
 * Stores a pattern: row < 0 adds one (evicting qe_pattern_cache_victim when
 * full), row >= 0 replaces that row's fields. embedding NULL keeps the
 * row's (updates only); label NULL with label_len 0 empties it, label_len
 * SIZE_MAX keeps it. out[0] = the row used, out[1] = 1 when a pattern was
 * evicted. Returns a status of qe_api.h (QE_ERR_ARGUMENT for an embedding
 * with NaN or infinity, or a norm beyond float range).
 */
int qe_pattern_cache_store(qe_pattern_cache *cache, int64_t row, const float *embedding,
                           float quality, const unsigned char *label, size_t label_len,
                           int32_t *out);

/* Removes row; the last row moves into it: *moved_from is its old index,
 * or -1 when the removed row was the last. */
void qe_pattern_cache_remove(qe_pattern_cache *cache, size_t row, int32_t *moved_from);

/* Copies row's embedding to out (dim floats). */
void qe_pattern_cache_row(const qe_pattern_cache *cache, size_t row, float *out);

/* Workspace of qe_pattern_cache_search for k results (grows with the count). */
size_t qe_pattern_cache_search_workspace_bytes(const qe_pattern_cache *cache, size_t k);

/* Candidates the last quantized search scored exactly (0: it scanned exactly). */
size_t qe_pattern_cache_last_candidates(const qe_pattern_cache *cache);

/*
 * The k rows most similar to lora(x) (x itself when lora is NULL), best
 * first, as qe_cosine_topk orders them (rows past count: -1 and 0). touch
 * ticks the clock once and marks every returned row used and hit.
 * Returns QE_ERR_ARGUMENT when the adapted query is not finite.
 */
int qe_pattern_cache_search(qe_pattern_cache *cache, const qe_micro_lora *lora, const float *x,
                            size_t k, int touch, int32_t *out_idx, float *out_score,
                            void *workspace);

/* Byte format: see pattern_cache.c. */
size_t qe_pattern_cache_export_bytes(const qe_pattern_cache *cache);
void qe_pattern_cache_export(const qe_pattern_cache *cache, unsigned char *out);
int qe_pattern_cache_import(const unsigned char *bytes, size_t n, qe_pattern_cache **out);

#endif /* QE_PATTERN_CACHE_H */
