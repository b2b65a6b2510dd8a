/*
 * libFuzzer target: the resident corpus through its handle entries. The
 * bytes script a sequence of create, append, remove, search and destroy
 * calls (bad sizes, bad rows, bad row numbers and destroyed handles
 * included), mirrored by a plain model here. After every call the size
 * must match the model; every search must return distinct live rows, best
 * first, each with its cosine (recomputed in double) within 1e-5, and no
 * row left out may beat the last one returned. The job form must agree
 * bit for bit with the direct search.
 */
#include <float.h>
#include <stdlib.h>

#include "fuzz_input.h"
#include "qe_api.h"
#include "search/corpus.h"

#define MAX_ROWS 96

/* The contract's cosine: zero for a vector whose norm is below FLT_MIN. */
static double cosine(const float *a, const float *b, int32_t dim) {
  double dot = 0, aa = 0, bb = 0;
  for (int32_t d = 0; d < dim; d++) dot += (double)a[d] * b[d], aa += (double)a[d] * a[d], bb += (double)b[d] * b[d];
  if (sqrt(aa) < FLT_MIN || sqrt(bb) < FLT_MIN) return 0;
  double c = dot / sqrt(aa * bb);
  return c > 1 ? 1 : c < -1 ? -1 : c;
}

/* A row the corpus must refuse: a non-finite element or a norm above FLT_MAX. */
static int refusable(const float *row, int32_t dim) {
  double ss = 0;
  for (int32_t d = 0; d < dim; d++) {
    if (!isfinite(row[d])) return 1;
    ss += (double)row[d] * row[d];
  }
  return sqrt(ss) > FLT_MAX;
}

static void check_search(const qe_corpus *c, const float *model, int32_t n, int32_t dim, fuzz_input *in) {
  int32_t nq = (int32_t)fuzz_u32(in, 4) + 1, k = (int32_t)fuzz_u32(in, 12) - 1;
  size_t kn = k > 0 ? (size_t)k : 1;
  float *q = malloc((size_t)nq * dim * sizeof *q);
  int32_t *idx = malloc((size_t)nq * kn * sizeof *idx), *idx2 = malloc((size_t)nq * kn * sizeof *idx2);
  float *score = malloc((size_t)nq * kn * sizeof *score), *score2 = malloc((size_t)nq * kn * sizeof *score2);
  if (!q || !idx || !idx2 || !score || !score2) FUZZ_ABORT();
  fuzz_floats(in, q, (size_t)nq * dim);
  int st = qe_corpus_search(c, q, nq, k, idx, score);
  int bad_q = 0;
  for (int32_t i = 0; i < nq; i++) bad_q |= refusable(q + (size_t)i * dim, dim);
  if (n == 0 || k < 1 || bad_q) {
    if (st == QE_OK) FUZZ_ABORT();
  } else if (st != QE_OK) {
    FUZZ_ABORT();
  }
  if (st == QE_OK) {
    for (int32_t i = 0; i < nq; i++) {
      const float *qi = q + (size_t)i * dim;
      const int32_t *ri = idx + (size_t)i * k;
      const float *si = score + (size_t)i * k;
      int32_t got = k < n ? k : n;
      for (int32_t j = 0; j < k; j++) {
        if (j >= got) {
          if (ri[j] != -1 || si[j] != 0) FUZZ_ABORT();
          continue;
        }
        if (ri[j] < 0 || ri[j] >= n) FUZZ_ABORT();
        for (int32_t jj = 0; jj < j; jj++)
          if (ri[jj] == ri[j]) FUZZ_ABORT();
        if (j > 0 && si[j] > si[j - 1]) FUZZ_ABORT();
        if (fabs(cosine(qi, model + (size_t)ri[j] * dim, dim) - si[j]) > 1e-5) FUZZ_ABORT();
      }
      /* No row left out beats the last one returned (beyond rounding). */
      for (int32_t r = 0; r < n; r++) {
        int in_result = 0;
        for (int32_t j = 0; j < got; j++) in_result |= ri[j] == r;
        if (!in_result && cosine(qi, model + (size_t)r * dim, dim) > si[got - 1] + 1e-5) FUZZ_ABORT();
      }
    }
    int32_t workers = (int32_t)fuzz_u32(in, 3) + 1;
    qe_job *job = qe_corpus_search_job_create(c, q, nq, k, idx2, score2, workers);
    if (!job) FUZZ_ABORT();
    for (int32_t w = 0; w < workers; w++)
      if (qe_job_work(job, w) < 0) FUZZ_ABORT();
    if (qe_search_job_merge(job) != QE_OK || qe_job_destroy(job) != QE_OK) FUZZ_ABORT();
    if (memcmp(idx, idx2, (size_t)nq * k * sizeof *idx) || memcmp(score, score2, (size_t)nq * k * sizeof *score))
      FUZZ_ABORT();
  }
  free(q), free(idx), free(idx2), free(score), free(score2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_input in = {data, size, 0};
  int32_t dim = (int32_t)fuzz_u32(&in, 24) - 1;
  int32_t capacity = (int32_t)fuzz_u32(&in, 20) - 1;
  qe_corpus *c = NULL;
  int st = qe_corpus_create(dim, capacity, &c);
  if (dim < 1 || capacity < 0) {
    if (st == QE_OK || c != NULL) FUZZ_ABORT();
    if (qe_corpus_create(4, 0, NULL) == QE_OK) FUZZ_ABORT();
    return 0;
  }
  if (st != QE_OK || c == NULL) FUZZ_ABORT();
  float *model = malloc((size_t)MAX_ROWS * dim * sizeof *model);
  float *rows = malloc((size_t)8 * dim * sizeof *rows);
  if (!model || !rows) FUZZ_ABORT();
  int32_t n = 0;
  for (int ops = 0; ops < 24 && in.at < in.size; ops++) {
    switch (fuzz_u8(&in) % 4) {
    case 0: { /* append -1..7 rows; fewer than one, or a bad row, refuses the whole call */
      int32_t count = (int32_t)fuzz_u32(&in, 9) - 1;
      if (count > 0) fuzz_floats(&in, rows, (size_t)count * dim);
      int bad = 0;
      for (int32_t r = 0; r < count; r++) bad |= refusable(rows + (size_t)r * dim, dim);
      if (n + (count > 0 ? count : 0) > MAX_ROWS) break;
      st = qe_corpus_append(c, rows, count);
      if (count < 1 || bad) {
        if (st == QE_OK) FUZZ_ABORT();
      } else if (st != QE_OK) {
        FUZZ_ABORT();
      }
      if (st == QE_OK && count > 0) {
        memcpy(model + (size_t)n * dim, rows, (size_t)count * dim * sizeof *rows);
        n += count;
      }
      break;
    }
    case 1: { /* remove a row, in range or not; the last row moves into its place */
      int32_t row = (int32_t)fuzz_u32(&in, (uint32_t)n + 3) - 1;
      st = qe_corpus_remove_row(c, row);
      if (row < 0 || row >= n) {
        if (st != QE_ERR_INDEX) FUZZ_ABORT();
      } else {
        if (st != QE_OK) FUZZ_ABORT();
        memmove(model + (size_t)row * dim, model + (size_t)(n - 1) * dim, (size_t)dim * sizeof *model);
        n--;
      }
      break;
    }
    case 2:
      check_search(c, model, n, dim, &in);
      break;
    default:
      if (qe_corpus_capacity(c) < n) FUZZ_ABORT();
      break;
    }
    if (qe_corpus_size(c) != n) FUZZ_ABORT();
  }
  if (qe_corpus_destroy(c) != QE_OK) FUZZ_ABORT();
  qe_workspace_release();
  free(model), free(rows);
  return 0;
}
