/*
 * The exported entries. Each re-checks its sizes (the TypeScript layer has
 * already given the caller a precise error; this is the last line before the
 * kernels, which trust their arguments), takes working memory from the arena,
 * runs, and returns a status code.
 */
#include "qe_api.h"

#include <math.h>
#include <stdlib.h>

#include "api_internal.h"
#include "arena.h"
#include "attention/flash_attention.h"
#include "kernels/kernels.h"
#include "simd.h"

/* Largest buffer a caller may describe: module memory is at most 4 GiB. */
#define QE_MAX_BYTES ((uint64_t)1 << 32)

static int32_t g_tile_q, g_tile_k;

int qe_sizes_ok(int64_t count, uint64_t elem_bytes) {
  return count > 0 && (uint64_t)count * elem_bytes < QE_MAX_BYTES;
}

void *qe_alloc(size_t bytes) {
  if (bytes == 0) bytes = 1;
  if (bytes > SIZE_MAX - 15) return NULL; /* the rounding below would wrap */
  return aligned_alloc(16, (bytes + 15) & ~(size_t)15);
}

void qe_free(void *ptr) { free(ptr); }

int qe_simd_level(void) { return QE_SIMD_LEVEL; }

size_t qe_workspace_last_bytes(void) { return qe_arena_last_bytes(); }
size_t qe_workspace_high_water_bytes(void) { return qe_arena_high_water_bytes(); }
void qe_workspace_reset_high_water(void) { qe_arena_reset_high_water(); }
size_t qe_workspace_reserved_bytes(void) { return qe_arena_reserved_bytes(); }
void qe_workspace_release(void) { qe_arena_release(); }

int32_t qe_first_nonfinite(const float *x, int32_t n) {
  if (!x) return QE_ERR_NULL;
  if (!qe_sizes_ok(n, 4)) return QE_ERR_ARGUMENT;
  return (int32_t)qe_f32_first_nonfinite((size_t)n, x);
}

int qe_vec_add(const float *a, const float *b, float *out, int32_t n) {
  if (!a || !b || !out) return QE_ERR_NULL;
  if (!qe_sizes_ok(n, 4)) return QE_ERR_ARGUMENT;
  qe_f32_vadd((size_t)n, a, b, out);
  return QE_OK;
}

int qe_matmul(const float *a, const float *b, float *c, int32_t m, int32_t n, int32_t k) {
  if (!a || !b || !c) return QE_ERR_NULL;
  if (!qe_sizes_ok(m, 4) || !qe_sizes_ok(n, 4) || !qe_sizes_ok(k, 4)) return QE_ERR_ARGUMENT;
  if (!qe_sizes_ok((int64_t)m * k, 4) || !qe_sizes_ok((int64_t)k * n, 4) || !qe_sizes_ok((int64_t)m * n, 4))
    return QE_ERR_ARGUMENT;
  size_t floats = qe_f32_gemm_workspace_floats((size_t)m, (size_t)n, (size_t)k);
  float *pack = qe_arena_acquire(floats * sizeof(float));
  if (!pack) return QE_ERR_NO_MEMORY;
  qe_f32_gemm((size_t)m, (size_t)n, (size_t)k, a, (size_t)k, b, (size_t)n, c, (size_t)n, pack);
  return QE_OK;
}

int qe_embedding_lookup(const int32_t *ids, int32_t count, const float *table, int32_t rows,
                        int32_t dim, float *out) {
  if (!ids || !table || !out) return QE_ERR_NULL;
  if (!qe_sizes_ok(count, 4) || !qe_sizes_ok(rows, 4) || !qe_sizes_ok(dim, 4)) return QE_ERR_ARGUMENT;
  if (!qe_sizes_ok((int64_t)rows * dim, 4) || !qe_sizes_ok((int64_t)count * dim, 4)) return QE_ERR_ARGUMENT;
  for (int32_t i = 0; i < count; i++)
    if (ids[i] < 0 || ids[i] >= rows) return QE_ERR_INDEX;
  qe_f32_embedding_lookup((size_t)count, ids, table, (size_t)dim, out);
  return QE_OK;
}

int qe_softmax(const float *x, float *y, int32_t rows, int32_t n) {
  if (!x || !y) return QE_ERR_NULL;
  if (!qe_sizes_ok(rows, 4) || !qe_sizes_ok(n, 4) || !qe_sizes_ok((int64_t)rows * n, 4)) return QE_ERR_ARGUMENT;
  qe_f32_softmax_rows((size_t)rows, (size_t)n, x, y);
  return QE_OK;
}

int qe_layer_norm(const float *x, const float *gamma, const float *beta, float *y, int32_t rows,
                  int32_t n, float eps) {
  if (!x || !gamma || !beta || !y) return QE_ERR_NULL;
  if (!qe_sizes_ok(rows, 4) || !qe_sizes_ok(n, 4) || !qe_sizes_ok((int64_t)rows * n, 4)) return QE_ERR_ARGUMENT;
  if (!(eps >= 0.0f) || !isfinite(eps)) return QE_ERR_ARGUMENT;
  qe_f32_layer_norm_rows((size_t)rows, (size_t)n, x, gamma, beta, eps, y);
  return QE_OK;
}

int qe_attention_problem_init(qe_attention_problem *p, const float *q, const float *k, const float *v,
                              float *o, int32_t nq, int32_t nk, int32_t dim, int32_t heads, float scale,
                              int32_t causal, int32_t valid_k, int32_t block_q, int32_t block_k) {
  if (!q || !k || !v || !o) return QE_ERR_NULL;
  if (!qe_sizes_ok(nq, 4) || !qe_sizes_ok(nk, 4) || !qe_sizes_ok(dim, 4) || heads <= 0 || dim % heads != 0)
    return QE_ERR_ARGUMENT;
  if (!qe_sizes_ok((int64_t)nq * dim, 4) || !qe_sizes_ok((int64_t)nk * dim, 4)) return QE_ERR_ARGUMENT;
  if (valid_k < 1 || valid_k > nk || block_q < 0 || block_k < 0 || !isfinite(scale))
    return QE_ERR_ARGUMENT;
  qe_attention_problem_dense(p, q, k, v, o, (size_t)nq, (size_t)nk, (size_t)dim, (size_t)heads, scale,
                             causal != 0, (size_t)valid_k);
  qe_attention_choose_tiles(p, (size_t)block_q, (size_t)block_k);
  /* A head too large for any workspace. */
  if (qe_attention_workspace_bytes(p) == SIZE_MAX) return QE_ERR_ARGUMENT;
  return QE_OK;
}

int qe_attention(const float *q, const float *k, const float *v, float *o, int32_t nq, int32_t nk,
                 int32_t dim, int32_t heads, float scale, int32_t causal, int32_t valid_k,
                 int32_t block_q, int32_t block_k) {
  qe_attention_problem p;
  int status = qe_attention_problem_init(&p, q, k, v, o, nq, nk, dim, heads, scale, causal, valid_k,
                                         block_q, block_k);
  if (status != QE_OK) return status;
  void *workspace = qe_arena_acquire(qe_attention_workspace_bytes(&p));
  if (!workspace) return QE_ERR_NO_MEMORY;
  g_tile_q = (int32_t)p.tile_q;
  g_tile_k = (int32_t)p.tile_k;
  qe_flash_attention_forward(&p, 0, qe_attention_task_count(&p), workspace);
  return QE_OK;
}

int32_t qe_attention_tile_q(void) { return g_tile_q; }
int32_t qe_attention_tile_k(void) { return g_tile_k; }
