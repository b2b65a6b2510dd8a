/*
 * The exported entries of the HNSW index: argument checks in JavaScript's
 * integer types, then csrc/search/hnsw.c, which checks again and owns the
 * graph. No arena: the index holds its own working memory. Every entry
 * taking an index first checks its handle header (runtime/handle.h): a
 * NULL is QE_ERR_NULL; a destroyed, foreign, corrupt or misaligned pointer
 * is QE_ERR_HANDLE, never a read of garbage.
 */
#include "api_hnsw.h"

#include <stdint.h>

#include "api_internal.h"

#define RETURN_UNLESS_LIVE(h)                     \
  do {                                            \
    const int live_ = qe_hnsw_check(h);           \
    if (live_ != QE_OK) return live_;             \
  } while (0)

int qe_hnsw_index_create(int32_t dim, int32_t metric, int32_t M, int32_t ef_construction, int32_t ef_search,
                         uint32_t seed_lo, uint32_t seed_hi, int32_t capacity, qe_hnsw **out) {
  if (!out) return QE_ERR_NULL;
  *out = NULL;
  if (dim < 1 || metric < 0 || M < 1 || ef_construction < 1 || ef_search < 1 || capacity < 0)
    return QE_ERR_ARGUMENT;
  const qe_hnsw_params p = {(uint32_t)dim, (uint32_t)metric, (uint32_t)M, (uint32_t)ef_construction,
                            (uint32_t)ef_search, (uint64_t)seed_hi << 32 | seed_lo};
  return qe_hnsw_create(&p, (uint32_t)capacity, out);
}

int qe_hnsw_index_destroy(qe_hnsw *h) {
  if (!h) return QE_OK; /* as free(NULL), and qe_corpus_destroy */
  RETURN_UNLESS_LIVE(h);
  /* A handle in use by a call on another thread is not freed under it. */
  return qe_hnsw_try_destroy(h);
}

int qe_hnsw_index_add(qe_hnsw *h, const float *vectors, int32_t count, uint32_t *slots, int32_t *added) {
  RETURN_UNLESS_LIVE(h);
  if (!vectors || !slots || !added) return QE_ERR_NULL;
  *added = 0;
  if (count < 1) return QE_ERR_ARGUMENT;
  const size_t dim = qe_hnsw_dim(h);
  for (int32_t i = 0; i < count; i++) {
    const int status = qe_hnsw_add(h, vectors + (size_t)i * dim, slots + i);
    if (status != QE_OK) return status;
    *added = i + 1;
  }
  return QE_OK;
}

int qe_hnsw_index_remove(qe_hnsw *h, int32_t slot) {
  RETURN_UNLESS_LIVE(h);
  if (slot < 0) return QE_ERR_INDEX;
  return qe_hnsw_remove(h, (uint32_t)slot);
}

int qe_hnsw_index_search(qe_hnsw *h, const float *queries, int32_t nq, int32_t k, int32_t ef, const uint8_t *allow,
                         int32_t exact, uint32_t *out_slots, float *out_distances, int32_t *out_counts) {
  RETURN_UNLESS_LIVE(h);
  if (!queries || !out_slots || !out_distances || !out_counts) return QE_ERR_NULL;
  if (nq < 1 || k < 1 || ef < 0 || (int64_t)nq * k > INT32_MAX) return QE_ERR_ARGUMENT;
  const size_t dim = qe_hnsw_dim(h);
  for (int32_t i = 0; i < nq; i++) {
    const float *q = queries + (size_t)i * dim;
    uint32_t *s = out_slots + (size_t)i * (size_t)k;
    float *d = out_distances + (size_t)i * (size_t)k;
    const int32_t n = exact ? qe_hnsw_search_exact(h, q, (uint32_t)k, allow, s, d)
                            : qe_hnsw_search(h, q, (uint32_t)k, (uint32_t)ef, allow, s, d);
    if (n < 0) return n;
    out_counts[i] = n;
  }
  return QE_OK;
}

typedef struct {
  const qe_hnsw *h;
  const float *queries;
  const uint8_t *allow;
  uint32_t *out_slots;
  float *out_distances;
  int32_t *out_counts;
  uint32_t nq, k, ef, per_task, dim;
  int32_t exact;
} hnsw_batch;

static void hnsw_batch_task(const void *ctx, size_t task, unsigned char *ws) {
  const hnsw_batch *b = ctx;
  const uint32_t q0 = (uint32_t)task * b->per_task;
  const uint32_t n = b->nq - q0 < b->per_task ? b->nq - q0 : b->per_task;
  const int32_t status = qe_hnsw_search_many(b->h, ws, b->queries + (size_t)q0 * b->dim, n, b->k, b->ef, b->allow,
                                             b->exact, b->out_slots + (size_t)q0 * b->k,
                                             b->out_distances + (size_t)q0 * b->k, b->out_counts + q0);
  if (status != QE_OK)
    for (uint32_t i = 0; i < n; i++) b->out_counts[q0 + i] = status;
}

qe_job *qe_hnsw_index_search_job_create(qe_hnsw *h, const float *queries, int32_t nq, int32_t k, int32_t ef,
                                  const uint8_t *allow, int32_t exact, uint32_t *out_slots, float *out_distances,
                                  int32_t *out_counts, int32_t workers) {
  if (qe_hnsw_check(h) != QE_OK || !queries || !out_slots || !out_distances || !out_counts) return NULL;
  if (nq < 1 || k < 1 || ef < 0 || ef > (int32_t)QE_HNSW_MAX_EF || (int64_t)nq * k > INT32_MAX) return NULL;
  if (workers < 1 || workers > QE_JOB_MAX_WORKERS) return NULL;
  /* About four ranges per participant, so one held up costs little; each
   * range clears its own visited marks once. */
  uint32_t tasks = 4u * (uint32_t)workers;
  if (tasks > (uint32_t)nq) tasks = (uint32_t)nq;
  const uint32_t per_task = ((uint32_t)nq + tasks - 1) / tasks;
  tasks = ((uint32_t)nq + per_task - 1) / per_task;
  const hnsw_batch b = {h, queries, allow, out_slots, out_distances, out_counts, (uint32_t)nq, (uint32_t)k,
                        (uint32_t)ef, per_task, qe_hnsw_dim(h), exact};
  return qe_tasks_job_create(workers, tasks, &b, sizeof b, qe_hnsw_search_scratch_bytes(h), hnsw_batch_task);
}

int qe_hnsw_index_set_ef_search(qe_hnsw *h, int32_t ef) {
  RETURN_UNLESS_LIVE(h);
  return ef < 1 ? QE_ERR_ARGUMENT : qe_hnsw_set_ef_search(h, (uint32_t)ef);
}

int qe_hnsw_index_set_traversal(qe_hnsw *h, int32_t traversal) {
  RETURN_UNLESS_LIVE(h);
  return qe_hnsw_set_traversal(h, traversal);
}

/* Counts and the top level; a bad handle's status (negative) instead. */
int32_t qe_hnsw_index_count(const qe_hnsw *h) {
  RETURN_UNLESS_LIVE(h);
  return (int32_t)qe_hnsw_count(h);
}
int32_t qe_hnsw_index_slot_count(const qe_hnsw *h) {
  RETURN_UNLESS_LIVE(h);
  return (int32_t)qe_hnsw_slot_count(h);
}
int32_t qe_hnsw_index_max_level(const qe_hnsw *h) {
  RETURN_UNLESS_LIVE(h);
  return qe_hnsw_max_level(h);
}

/* 0 for a bad handle (a byte count has no room for a status). */
uint32_t qe_hnsw_index_memory_bytes(const qe_hnsw *h) {
  if (qe_hnsw_check(h) != QE_OK) return 0;
  const size_t b = qe_hnsw_memory_bytes(h);
  return b > 0xFFFFFFFFu ? 0xFFFFFFFFu : (uint32_t)b;
}

int qe_hnsw_index_vector(const qe_hnsw *h, int32_t slot, float *out) {
  RETURN_UNLESS_LIVE(h);
  if (slot < 0) return QE_ERR_INDEX;
  return qe_hnsw_vector(h, (uint32_t)slot, out);
}

int32_t qe_hnsw_index_links(const qe_hnsw *h, int32_t slot, int32_t level, uint32_t *out) {
  RETURN_UNLESS_LIVE(h);
  if (slot < 0) return QE_ERR_INDEX;
  return qe_hnsw_links(h, (uint32_t)slot, level, out);
}

int qe_hnsw_index_save_size(const qe_hnsw *h, int32_t user_bytes, uint32_t *size) {
  RETURN_UNLESS_LIVE(h);
  if (!size) return QE_ERR_NULL;
  if (user_bytes < 0) return QE_ERR_ARGUMENT;
  size_t total = 0;
  const int status = qe_hnsw_save_size(h, (size_t)user_bytes, &total);
  if (status != QE_OK) return status;
  if (total > 0xFFFFFFFFu) return QE_ERR_ARGUMENT;
  *size = (uint32_t)total;
  return QE_OK;
}

int qe_hnsw_index_save(qe_hnsw *h, const uint8_t *user, int32_t user_bytes, uint8_t *out, uint32_t size) {
  RETURN_UNLESS_LIVE(h);
  if (user_bytes < 0) return QE_ERR_ARGUMENT;
  return qe_hnsw_save(h, user, (size_t)user_bytes, out, size);
}

int qe_hnsw_index_load(const uint8_t *bytes, uint32_t n, int32_t expect_dim, int32_t expect_metric, qe_hnsw **out,
                       uint32_t *user_offset, uint32_t *user_bytes) {
  if (!out || !user_offset || !user_bytes) return QE_ERR_NULL;
  const uint8_t *user = NULL;
  size_t extra = 0;
  const int status = qe_hnsw_load(bytes, n, (uint32_t)expect_dim, (uint32_t)expect_metric, out, &user, &extra);
  *user_offset = status == QE_OK ? (uint32_t)(user - bytes) : 0;
  *user_bytes = (uint32_t)extra;
  return status;
}
