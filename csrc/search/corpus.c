/*
 * The resident corpus (corpus.h): the rows and inverse norms in the panel
 * layout of similarity.h, written and searched through the entries of
 * api_search.c and api_threads.c, behind a handle.
 */
#include "search/corpus.h"

#include <stdlib.h>
#include <string.h>

#include "runtime/handle.h"
#include "search/similarity.h"

/* Layout version of struct qe_corpus (qe_handle_check compares it). */
#define CORPUS_VERSION 1u
#define MIN_CAPACITY 64

struct qe_corpus {
  qe_handle h;
  int32_t dim;
  int32_t capacity; /* rows, a multiple of QE_CORPUS_PANEL (or 0) */
  int32_t size;
  float *rows;      /* capacity * dim floats, panel layout */
  float *inv_norms; /* capacity floats */
};

static int check(const qe_corpus *c) {
  return qe_handle_check(c, QE_HANDLE_CORPUS, CORPUS_VERSION, sizeof(qe_corpus));
}

/* Bytes of `rows` rows of dim floats, or 0 when that passes 4 GiB - 1. */
static uint64_t rows_bytes(int64_t rows, int32_t dim) {
  const uint64_t b = (uint64_t)rows * (uint64_t)dim * sizeof(float);
  return b > UINT32_MAX ? 0 : b;
}

/* Room for at least `rows` rows, rounded to whole panels: doubling (from
 * 64) when `grow`, else exactly; the used panels move once. */
static int reserve(qe_corpus *c, int64_t rows, int grow) {
  if (rows <= c->capacity) return QE_OK;
  if (rows > INT32_MAX - QE_CORPUS_PANEL) return QE_ERR_ARGUMENT;
  int64_t cap = rows;
  if (grow) {
    cap = c->capacity > MIN_CAPACITY ? c->capacity : MIN_CAPACITY;
    while (cap < rows) cap *= 2;
  }
  /* Near the 4 GiB ceiling, take what is needed rather than double. */
  if (cap > INT32_MAX - QE_CORPUS_PANEL || rows_bytes(cap, c->dim) == 0) cap = rows;
  cap = (cap + QE_CORPUS_PANEL - 1) / QE_CORPUS_PANEL * QE_CORPUS_PANEL;
  const uint64_t bytes = rows_bytes(cap, c->dim);
  if (bytes == 0) return QE_ERR_ARGUMENT;
  float *r = aligned_alloc(16, (size_t)bytes);
  float *n = aligned_alloc(16, (size_t)cap * sizeof(float));
  if (!r || !n) {
    free(r), free(n);
    return QE_ERR_NO_MEMORY;
  }
  const size_t used = (size_t)(c->size + QE_CORPUS_PANEL - 1) / QE_CORPUS_PANEL * QE_CORPUS_PANEL;
  if (used > 0) {
    memcpy(r, c->rows, used * (size_t)c->dim * sizeof(float));
    memcpy(n, c->inv_norms, used * sizeof(float));
  }
  /* Spare rows are computed and ignored by the search: zeros, not stale bits. */
  memset(r + used * (size_t)c->dim, 0, ((size_t)cap - used) * (size_t)c->dim * sizeof(float));
  memset(n + used, 0, ((size_t)cap - used) * sizeof(float));
  free(c->rows), free(c->inv_norms);
  c->rows = r, c->inv_norms = n, c->capacity = (int32_t)cap;
  return QE_OK;
}

int qe_corpus_create(int32_t dim, int32_t capacity, qe_corpus **out) {
  if (!out) return QE_ERR_NULL;
  *out = NULL;
  if (dim < 1 || capacity < 0 || rows_bytes(1, dim) == 0) return QE_ERR_ARGUMENT;
  qe_corpus *c = qe_handle_new(QE_HANDLE_CORPUS, CORPUS_VERSION, sizeof(qe_corpus));
  if (!c) return QE_ERR_NO_MEMORY;
  c->dim = dim;
  const int st = capacity > 0 ? reserve(c, capacity, 0) : QE_OK;
  if (st != QE_OK) {
    qe_handle_free(c);
    return st;
  }
  *out = c;
  return QE_OK;
}

int qe_corpus_destroy(qe_corpus *c) {
  if (!c) return QE_OK;
  const int st = check(c);
  if (st != QE_OK) return st;
  free(c->rows), free(c->inv_norms);
  qe_handle_free(c);
  return QE_OK;
}

int32_t qe_corpus_size(const qe_corpus *c) {
  const int st = check(c);
  return st != QE_OK ? st : c->size;
}

int32_t qe_corpus_capacity(const qe_corpus *c) {
  const int st = check(c);
  return st != QE_OK ? st : c->capacity;
}

int qe_corpus_append(qe_corpus *c, const float *rows, int32_t count) {
  int st = check(c);
  if (st != QE_OK) return st;
  if (!rows) return QE_ERR_NULL;
  if (count < 1) return QE_ERR_ARGUMENT;
  st = reserve(c, (int64_t)c->size + count, 1);
  if (st != QE_OK) return st;
  st = qe_corpus_store_rows(c->rows, c->inv_norms, c->capacity, c->dim, c->size, rows, count);
  if (st != QE_OK) {
    /* Rows past the size are ignored; clear them so no refused row lingers. */
    for (int32_t r = c->size; r < c->size + count; r++) {
      qe_f32_corpus_clear_row((size_t)c->dim, c->rows, (size_t)r);
      c->inv_norms[r] = 0;
    }
    return st;
  }
  c->size += count;
  return QE_OK;
}

int qe_corpus_remove_row(qe_corpus *c, int32_t row) {
  int st = check(c);
  if (st != QE_OK) return st;
  if (row < 0 || row >= c->size) return QE_ERR_INDEX;
  const int32_t last = c->size - 1;
  if (row != last) {
    st = qe_corpus_move_row(c->rows, c->inv_norms, c->capacity, c->dim, last, row);
    if (st != QE_OK) return st;
  }
  qe_f32_corpus_clear_row((size_t)c->dim, c->rows, (size_t)last);
  c->inv_norms[last] = 0;
  c->size = last;
  return QE_OK;
}

int qe_corpus_search(const qe_corpus *c, const float *queries, int32_t nq, int32_t k, int32_t *out_idx,
                     float *out_score) {
  const int st = check(c);
  if (st != QE_OK) return st;
  return qe_cosine_topk(queries, nq, c->rows, c->inv_norms, c->size, c->dim, k, out_idx, out_score);
}

qe_job *qe_corpus_search_job_create(const qe_corpus *c, const float *queries, int32_t nq, int32_t k,
                                    int32_t *out_idx, float *out_score, int32_t workers) {
  if (check(c) != QE_OK || c->size < 1) return NULL;
  return qe_search_job_create(queries, nq, c->rows, c->inv_norms, c->size, c->dim, k, out_idx, out_score, workers);
}
