/*
 * The exported entries of pattern adaptation: a Micro-LoRA
 * adapter and a pattern cache behind opaque handles. As in api.c: each
 * entry re-checks its arguments, takes working memory from the arena, and
 * returns a status code; csrc/adapt/ trusts its arguments.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "adapt/crc32c.h"
#include "adapt/micro_lora.h"
#include "adapt/pattern_cache.h"
#include "arena.h"
#include "qe_api.h"
#include "search/similarity.h"

/* Most results or keys one call handles. */
#define QE_ADAPT_MAX_K 4096

/* QE_OK for a live adapter or cache; QE_ERR_NULL or QE_ERR_HANDLE (a
 * destroyed, foreign or corrupt pointer) otherwise. */
static int lora_live(const qe_micro_lora *l) {
  return qe_handle_check(l, QE_HANDLE_LORA, QE_MICRO_LORA_LAYOUT, sizeof *l);
}
static int cache_live(const qe_pattern_cache *c) {
  return qe_handle_check(c, QE_HANDLE_CACHE, QE_PATTERN_CACHE_LAYOUT, sizeof *c);
}
#define RETURN_UNLESS_LIVE(check)          \
  do {                                     \
    const int live_ = (check);             \
    if (live_ != QE_OK) return live_;      \
  } while (0)

/* A byte count that module memory can hold, passed as a double. */
static int byte_count_ok(double n) { return n >= 0 && n < 4294967296.0 && n == (double)(uint64_t)n; }

int qe_lora_create(int32_t dim, int32_t rank, float alpha, uint32_t seed, qe_micro_lora **out) {
  if (!out) return QE_ERR_NULL;
  *out = NULL;
  if (dim < 1 || dim > QE_LORA_MAX_DIM || rank < 1 || rank > QE_LORA_MAX_RANK || !(fabsf(alpha) <= 1e6f))
    return QE_ERR_ARGUMENT;
  *out = qe_micro_lora_create((size_t)dim, (size_t)rank, alpha, seed);
  return *out ? QE_OK : QE_ERR_NO_MEMORY;
}

void qe_lora_destroy(qe_micro_lora *lora) {
  if (lora_live(lora) == QE_OK) qe_micro_lora_destroy(lora);
}

int qe_lora_reset(qe_micro_lora *lora) {
  RETURN_UNLESS_LIVE(lora_live(lora));
  qe_micro_lora_reset(lora);
  return QE_OK;
}

int qe_lora_set_optimizer(qe_micro_lora *lora, int32_t optimizer, float learning_rate, float beta1,
                          float beta2, float epsilon, float weight_decay) {
  RETURN_UNLESS_LIVE(lora_live(lora));
  if ((optimizer != QE_LORA_SGD && optimizer != QE_LORA_ADAM) || !(learning_rate >= 0) ||
      !(learning_rate <= 1e6f) || !(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1) ||
      !(epsilon > 0) || !isfinite(epsilon) || !(weight_decay >= 0) || !isfinite(weight_decay) ||
      !(learning_rate * weight_decay < 1))
    return QE_ERR_ARGUMENT;
  lora->optimizer = optimizer;
  lora->learning_rate = learning_rate;
  lora->beta1 = beta1;
  lora->beta2 = beta2;
  lora->epsilon = epsilon;
  lora->weight_decay = weight_decay;
  return QE_OK;
}

int qe_lora_apply(const qe_micro_lora *lora, const float *x, float *y) {
  RETURN_UNLESS_LIVE(lora_live(lora));
  if (!x || !y) return QE_ERR_NULL;
  return qe_micro_lora_forward(lora, x, y) == 0 ? QE_OK : QE_ERR_ARGUMENT;
}

int qe_lora_apply_batch(const qe_micro_lora *lora, const float *x, float *y, int32_t n) {
  RETURN_UNLESS_LIVE(lora_live(lora));
  if (!x || !y) return QE_ERR_NULL;
  if (n < 1) return QE_ERR_ARGUMENT;
  int status = QE_OK;
  for (int32_t i = 0; i < n; i++)
    if (qe_micro_lora_forward(lora, x + (size_t)i * lora->dim, y + (size_t)i * lora->dim) != 0)
      status = QE_ERR_ARGUMENT;
  return status;
}

static int loss_args_ok(int32_t nkeys, float temperature, float reward) {
  return nkeys >= 1 && nkeys <= QE_LORA_MAX_KEYS && temperature > 0 && isfinite(temperature) &&
         isfinite(reward);
}

int qe_lora_accumulate(qe_micro_lora *lora, const float *x, const float *keys, int32_t nkeys,
                       float temperature, float reward, float *loss) {
  RETURN_UNLESS_LIVE(lora_live(lora));
  if (!x || !keys || !loss) return QE_ERR_NULL;
  if (!loss_args_ok(nkeys, temperature, reward)) return QE_ERR_ARGUMENT;
  void *ws = qe_arena_acquire(qe_micro_lora_grad_workspace_bytes(lora->dim, (size_t)nkeys));
  if (!ws) return QE_ERR_NO_MEMORY;
  if (qe_micro_lora_accumulate(lora, x, keys, (size_t)nkeys, lora->dim, temperature, reward, ws, loss) != 0)
    return QE_ERR_ARGUMENT;
  return QE_OK;
}

int qe_lora_step(qe_micro_lora *lora) {
  RETURN_UNLESS_LIVE(lora_live(lora));
  return qe_micro_lora_step(lora) == 0 ? QE_OK : QE_ERR_ARGUMENT;
}

int qe_lora_discard(qe_micro_lora *lora) {
  RETURN_UNLESS_LIVE(lora_live(lora));
  memset(lora->grad_a, 0, lora->rank * lora->ld * sizeof(float));
  memset(lora->grad_bt, 0, lora->rank * lora->ld * sizeof(float));
  lora->grad_count = 0;
  return QE_OK;
}

int qe_lora_shape(const qe_micro_lora *lora, int32_t *out) {
  RETURN_UNLESS_LIVE(lora_live(lora));
  if (!out) return QE_ERR_NULL;
  out[0] = (int32_t)lora->dim;
  out[1] = (int32_t)lora->rank;
  return QE_OK;
}

int qe_lora_adapt(qe_micro_lora *lora, const float *x, const float *keys, int32_t nkeys,
                  float temperature, float reward, float *loss) {
  const int status = qe_lora_accumulate(lora, x, keys, nkeys, temperature, reward, loss);
  if (status != QE_OK) return status;
  return qe_micro_lora_step(lora) == 0 ? QE_OK : QE_ERR_ARGUMENT;
}

int qe_lora_gradient(const qe_micro_lora *lora, const float *x, const float *keys, int32_t nkeys,
                     float temperature, float reward, float *loss, float *grad_a, float *grad_b) {
  RETURN_UNLESS_LIVE(lora_live(lora));
  if (!x || !keys || !loss || !grad_a || !grad_b) return QE_ERR_NULL;
  if (!loss_args_ok(nkeys, temperature, reward)) return QE_ERR_ARGUMENT;
  const size_t d = lora->dim, r = lora->rank, n = r * lora->ld;
  const size_t grad_bytes = qe_arena_round(n * sizeof(float));
  const size_t ws_bytes = qe_micro_lora_grad_workspace_bytes(d, (size_t)nkeys);
  unsigned char *block = qe_arena_acquire(2 * grad_bytes + ws_bytes);
  if (!block) return QE_ERR_NO_MEMORY;
  float *ga = (float *)block, *gbt = (float *)(block + grad_bytes);
  memset(block, 0, 2 * grad_bytes);
  if (qe_micro_lora_gradient(lora, x, keys, (size_t)nkeys, d, temperature, reward, ga, gbt,
                             block + 2 * grad_bytes, loss) != 0)
    return QE_ERR_ARGUMENT;
  for (size_t j = 0; j < r; j++)
    for (size_t i = 0; i < d; i++) {
      grad_a[j * d + i] = ga[j * lora->ld + i];
      grad_b[i * r + j] = gbt[j * lora->ld + i];
    }
  return QE_OK;
}

int qe_lora_get_weights(const qe_micro_lora *lora, float *a, float *b) {
  RETURN_UNLESS_LIVE(lora_live(lora));
  if (!a || !b) return QE_ERR_NULL;
  const size_t d = lora->dim, r = lora->rank;
  for (size_t j = 0; j < r; j++)
    for (size_t i = 0; i < d; i++) {
      a[j * d + i] = lora->a[j * lora->ld + i];
      b[i * r + j] = lora->bt[j * lora->ld + i];
    }
  return QE_OK;
}

int qe_lora_set_weights(qe_micro_lora *lora, const float *a, const float *b) {
  RETURN_UNLESS_LIVE(lora_live(lora));
  if (!a || !b) return QE_ERR_NULL;
  const size_t d = lora->dim, r = lora->rank;
  for (size_t i = 0; i < r * d; i++)
    if (!isfinite(a[i]) || !isfinite(b[i])) return QE_ERR_ARGUMENT;
  for (size_t j = 0; j < r; j++)
    for (size_t i = 0; i < d; i++) {
      lora->a[j * lora->ld + i] = a[j * d + i];
      lora->bt[j * lora->ld + i] = b[i * r + j];
    }
  return QE_OK;
}

int qe_lora_merge(const qe_micro_lora *lora, float *w) {
  RETURN_UNLESS_LIVE(lora_live(lora));
  if (!w) return QE_ERR_NULL;
  qe_micro_lora_merge(lora, w, lora->dim);
  return QE_OK;
}

double qe_lora_steps(const qe_micro_lora *lora) { return lora_live(lora) == QE_OK ? (double)lora->steps : -1.0; }

double qe_lora_export_bytes(const qe_micro_lora *lora) {
  return lora_live(lora) == QE_OK ? (double)qe_micro_lora_export_bytes(lora) : 0.0;
}

int qe_lora_export(const qe_micro_lora *lora, unsigned char *out, double capacity) {
  RETURN_UNLESS_LIVE(lora_live(lora));
  if (!out) return QE_ERR_NULL;
  if (!byte_count_ok(capacity) || capacity < (double)qe_micro_lora_export_bytes(lora)) return QE_ERR_ARGUMENT;
  qe_micro_lora_export(lora, out);
  return QE_OK;
}

int qe_lora_import(const unsigned char *bytes, double n, qe_micro_lora **out) {
  if (!out) return QE_ERR_NULL;
  *out = NULL;
  if (!byte_count_ok(n)) return QE_ERR_ARGUMENT;
  if (n == 0) return QE_ERR_TRUNCATED;
  if (!bytes) return QE_ERR_NULL;
  return qe_micro_lora_import(bytes, (size_t)n, out);
}

/* ------------------------------------------------------------ the cache */

int qe_cache_create(int32_t dim, int32_t max_patterns, qe_pattern_cache **out) {
  if (!out) return QE_ERR_NULL;
  *out = NULL;
  if (dim < 1 || dim > QE_LORA_MAX_DIM || max_patterns < 1 || max_patterns > QE_CACHE_MAX_PATTERNS)
    return QE_ERR_ARGUMENT;
  *out = qe_pattern_cache_create((size_t)dim, (size_t)max_patterns);
  return *out ? QE_OK : QE_ERR_NO_MEMORY;
}

void qe_cache_destroy(qe_pattern_cache *cache) {
  if (cache_live(cache) == QE_OK) qe_pattern_cache_destroy(cache);
}

int qe_cache_clear(qe_pattern_cache *cache) {
  RETURN_UNLESS_LIVE(cache_live(cache));
  qe_pattern_cache_clear(cache);
  return QE_OK;
}

int32_t qe_cache_count(const qe_pattern_cache *cache) {
  RETURN_UNLESS_LIVE(cache_live(cache));
  return (int32_t)cache->count;
}

int qe_cache_shape(const qe_pattern_cache *cache, int32_t *out) {
  RETURN_UNLESS_LIVE(cache_live(cache));
  if (!out) return QE_ERR_NULL;
  out[0] = (int32_t)cache->dim;
  out[1] = (int32_t)cache->count;
  out[2] = (int32_t)cache->max_patterns;
  return QE_OK;
}

int qe_cache_store(qe_pattern_cache *cache, int32_t row, const float *embedding, float quality,
                   const unsigned char *label, int32_t label_len, int32_t *out) {
  RETURN_UNLESS_LIVE(cache_live(cache));
  if (!out) return QE_ERR_NULL;
  if (row < -1 || label_len < -1) return QE_ERR_ARGUMENT;
  if (row >= (int32_t)cache->count) return QE_ERR_INDEX;
  if (label_len > 0 && !label) return QE_ERR_NULL;
  return qe_pattern_cache_store(cache, row, embedding, quality, label,
                                label_len < 0 ? SIZE_MAX : (size_t)label_len, out);
}

int qe_cache_remove(qe_pattern_cache *cache, int32_t row, int32_t *moved_from) {
  RETURN_UNLESS_LIVE(cache_live(cache));
  if (!moved_from) return QE_ERR_NULL;
  if (row < 0 || (size_t)row >= cache->count) return QE_ERR_INDEX;
  qe_pattern_cache_remove(cache, (size_t)row, moved_from);
  return QE_OK;
}

int32_t qe_cache_victim(const qe_pattern_cache *cache) {
  RETURN_UNLESS_LIVE(cache_live(cache));
  return cache->count ? (int32_t)qe_pattern_cache_victim(cache) : -1;
}

/* The adapter's dimension must be the cache's. */
static int lora_fits(const qe_pattern_cache *cache, const qe_micro_lora *lora) {
  return !lora || lora->dim == cache->dim;
}

int qe_cache_search(qe_pattern_cache *cache, const qe_micro_lora *lora, const float *x, int32_t k,
                    int32_t touch, int32_t *out_idx, float *out_score) {
  RETURN_UNLESS_LIVE(cache_live(cache));
  if (!x || !out_idx || !out_score) return QE_ERR_NULL;
  if (lora) RETURN_UNLESS_LIVE(lora_live(lora));
  if (k < 1 || k > QE_ADAPT_MAX_K || !lora_fits(cache, lora)) return QE_ERR_ARGUMENT;
  void *ws = qe_arena_acquire(qe_pattern_cache_search_workspace_bytes(cache, (size_t)k));
  if (!ws) return QE_ERR_NO_MEMORY;
  return qe_pattern_cache_search(cache, lora, x, (size_t)k, touch != 0, out_idx, out_score, ws);
}

int32_t qe_cache_last_candidates(const qe_pattern_cache *cache) {
  return cache_live(cache) == QE_OK ? (int32_t)qe_pattern_cache_last_candidates(cache) : 0;
}

int qe_cache_row_info(const qe_pattern_cache *cache, int32_t row, double *out) {
  RETURN_UNLESS_LIVE(cache_live(cache));
  if (!out) return QE_ERR_NULL;
  if (row < 0 || (size_t)row >= cache->count) return QE_ERR_INDEX;
  out[0] = cache->quality[row];
  out[1] = cache->hits[row];
  out[2] = (double)cache->last_use[row];
  out[3] = (double)cache->clock;
  return QE_OK;
}

int qe_cache_row_embedding(const qe_pattern_cache *cache, int32_t row, float *out) {
  RETURN_UNLESS_LIVE(cache_live(cache));
  if (!out) return QE_ERR_NULL;
  if (row < 0 || (size_t)row >= cache->count) return QE_ERR_INDEX;
  qe_pattern_cache_row(cache, (size_t)row, out);
  return QE_OK;
}

const unsigned char *qe_cache_row_label(const qe_pattern_cache *cache, int32_t row, int32_t *len) {
  if (!len) return NULL;
  if (cache_live(cache) != QE_OK || row < 0 || (size_t)row >= cache->count) {
    *len = -1;
    return NULL;
  }
  *len = (int32_t)cache->label_len[row];
  return cache->label[row];
}

/* Equal element by element (-0 equals +0, as for cosine). */
static int same_floats(size_t n, const float *a, const float *b) {
  for (size_t i = 0; i < n; i++)
    if (a[i] != b[i]) return 0;
  return 1;
}

int qe_cache_adapt(qe_pattern_cache *cache, qe_micro_lora *lora, const float *x, int32_t positive_row,
                   const float *positive, int32_t negatives, float temperature, float reward,
                   int32_t step, float *loss, int32_t *positive_used) {
  RETURN_UNLESS_LIVE(cache_live(cache));
  RETURN_UNLESS_LIVE(lora_live(lora));
  if (!x || !loss || !positive_used) return QE_ERR_NULL;
  if (!lora_fits(cache, lora) || positive_row < -1 || negatives < 0 || negatives >= QE_LORA_MAX_KEYS ||
      !loss_args_ok(1, temperature, reward))
    return QE_ERR_ARGUMENT;
  if (positive_row >= (int32_t)cache->count) return QE_ERR_INDEX;
  const size_t d = cache->dim;
  /* Mined: the nearest negatives + 2 rows (room to skip the positive). */
  const size_t k = (size_t)negatives + 2;
  const size_t nkeys_max = (size_t)negatives + 1;
  const size_t search_bytes = qe_pattern_cache_search_workspace_bytes(cache, k);
  const size_t grad_bytes = qe_micro_lora_grad_workspace_bytes(d, nkeys_max);
  const size_t idx_bytes = qe_arena_round(k * sizeof(int32_t)), score_bytes = qe_arena_round(k * sizeof(float));
  const size_t keys_bytes = qe_arena_round(nkeys_max * d * sizeof(float));
  const size_t work = search_bytes > grad_bytes ? search_bytes : grad_bytes;
  unsigned char *block = qe_arena_acquire(idx_bytes + score_bytes + keys_bytes + work);
  if (!block) return QE_ERR_NO_MEMORY;
  int32_t *idx = (int32_t *)block;
  float *score = (float *)(block + idx_bytes);
  float *keys = (float *)(block + idx_bytes + score_bytes);
  void *ws = block + idx_bytes + score_bytes + keys_bytes;

  int status = QE_OK;
  if (cache->count > 0 || (positive_row < 0 && !positive)) {
    status = qe_pattern_cache_search(cache, lora, x, k, 0, idx, score, ws);
    if (status != QE_OK) return status;
  } else {
    for (size_t j = 0; j < k; j++) idx[j] = -1;
  }
  if (positive_row < 0 && !positive) {
    /* The reward form: the result judged is the nearest row. */
    if (idx[0] < 0) return QE_ERR_INDEX; /* an empty cache has no result */
    positive_row = idx[0];
  }
  if (positive_row >= 0) {
    qe_pattern_cache_row(cache, (size_t)positive_row, keys);
  } else {
    float inv;
    if (qe_f32_row_inv_norms(1, d, positive, d, &inv) != 0) return QE_ERR_ARGUMENT;
    memcpy(keys, positive, d * sizeof(float));
  }
  size_t nkeys = 1;
  for (size_t j = 0; j < k && idx[j] >= 0 && nkeys < nkeys_max; j++) {
    if (idx[j] == positive_row) continue;
    float *row = keys + nkeys * d;
    qe_pattern_cache_row(cache, (size_t)idx[j], row);
    /* A stored copy of a vector positive is not a negative. */
    if (positive_row < 0 && same_floats(d, row, keys)) continue;
    nkeys++;
  }
  if (qe_micro_lora_accumulate(lora, x, keys, nkeys, d, temperature, reward, ws, loss) != 0)
    return QE_ERR_ARGUMENT;
  *positive_used = positive_row;
  if (step && qe_micro_lora_step(lora) != 0) return QE_ERR_ARGUMENT;
  return QE_OK;
}

double qe_cache_export_bytes(const qe_pattern_cache *cache) {
  return cache_live(cache) == QE_OK ? (double)qe_pattern_cache_export_bytes(cache) : 0.0;
}

int qe_cache_export(const qe_pattern_cache *cache, unsigned char *out, double capacity) {
  RETURN_UNLESS_LIVE(cache_live(cache));
  if (!out) return QE_ERR_NULL;
  if (!byte_count_ok(capacity) || capacity < (double)qe_pattern_cache_export_bytes(cache)) return QE_ERR_ARGUMENT;
  qe_pattern_cache_export(cache, out);
  return QE_OK;
}

int qe_cache_import(const unsigned char *bytes, double n, qe_pattern_cache **out) {
  if (!out) return QE_ERR_NULL;
  *out = NULL;
  if (!byte_count_ok(n)) return QE_ERR_ARGUMENT;
  if (n == 0) return QE_ERR_TRUNCATED;
  if (!bytes) return QE_ERR_NULL;
  return qe_pattern_cache_import(bytes, (size_t)n, out);
}

uint32_t qe_crc32c(const unsigned char *bytes, double n) {
  if (!bytes || !byte_count_ok(n)) return 0;
  return qe_crc32c_update(0, bytes, (size_t)n);
}
