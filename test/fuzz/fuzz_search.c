/*
 * libFuzzer target: the resident corpus and exact cosine top-k. Rows from
 * the fuzzer are stored (some rejected), some moved, then queried; on
 * success every result must name a distinct stored row, come best first,
 * and carry its cosine (recomputed here in double) within 1e-5. The job
 * form must agree bit for bit.
 */
#include <float.h>
#include <stdlib.h>

#include "fuzz_input.h"
#include "qe_api.h"

static double cosine(const float *q, const float *corpus, int32_t row, int32_t dim, int32_t p) {
  double dot = 0, qq = 0, xx = 0;
  for (int32_t d = 0; d < dim; d++) {
    double x = corpus[((size_t)(row / p) * dim + d) * p + row % p];
    dot += q[d] * x, qq += (double)q[d] * q[d], xx += x * x;
  }
  /* The contract's zero vector: a norm below FLT_MIN. */
  if (sqrt(qq) < FLT_MIN || sqrt(xx) < FLT_MIN) return 0;
  double c = dot / sqrt(qq * xx);
  return c > 1 ? 1 : c < -1 ? -1 : c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_input in = {data, size, 0};
  const int32_t p = qe_corpus_panel_rows();
  int32_t dim = (int32_t)fuzz_u32(&in, 40) - 1;
  int32_t n = (int32_t)fuzz_u32(&in, 80) - 1;
  int32_t capacity = ((n > 0 ? n : 1) + p - 1) / p * p + (fuzz_u8(&in) == 3 ? 1 : 0);
  int32_t nq = (int32_t)fuzz_u32(&in, 6) - 1;
  int32_t k = (int32_t)fuzz_u32(&in, 100) - 1;
  int32_t workers = (int32_t)fuzz_u32(&in, 4);
  size_t dims = dim > 0 ? (size_t)dim : 1;
  size_t rows_n = n > 0 ? (size_t)n : 1, q_n = nq > 0 ? (size_t)nq : 1, k_n = k > 0 ? (size_t)k : 1;

  float *rows = malloc(rows_n * dims * sizeof *rows);
  float *corpus = calloc((size_t)capacity * dims, sizeof *corpus);
  float *inv = calloc((size_t)capacity, sizeof *inv);
  float *queries = malloc(q_n * dims * sizeof *queries);
  int32_t *idx = malloc(q_n * k_n * sizeof *idx), *idx2 = malloc(q_n * k_n * sizeof *idx2);
  float *score = malloc(q_n * k_n * sizeof *score), *score2 = malloc(q_n * k_n * sizeof *score2);
  if (!rows || !corpus || !inv || !queries || !idx || !idx2 || !score || !score2) FUZZ_ABORT();
  fuzz_floats(&in, rows, rows_n * dims);
  qe_corpus_store_rows(corpus, inv, capacity, dim, 0, rows, n);
  for (int moves = fuzz_u8(&in) % 4; moves > 0; moves--) {
    int32_t from = (int32_t)fuzz_u32(&in, (uint32_t)capacity + 2) - 1, to = (int32_t)fuzz_u32(&in, (uint32_t)capacity + 2) - 1;
    qe_corpus_move_row(corpus, inv, capacity, dim, from, to);
  }
  fuzz_floats(&in, queries, q_n * dims);

  int status = qe_cosine_topk(queries, nq, corpus, inv, n, dim, k, idx, score);
  if (status == QE_OK) {
    for (int32_t i = 0; i < nq; i++) {
      for (int32_t j = 0; j < k; j++) {
        int32_t r = idx[(size_t)i * k + j];
        float s = score[(size_t)i * k + j];
        if (j >= n) {
          if (r != -1 || s != 0) FUZZ_ABORT();
          continue;
        }
        if (r < 0 || r >= n) FUZZ_ABORT();
        for (int32_t jj = 0; jj < j; jj++)
          if (idx[(size_t)i * k + jj] == r) FUZZ_ABORT();
        if (j > 0 && s > score[(size_t)i * k + j - 1]) FUZZ_ABORT();
        /* A row whose norm was refused scores 0 (inverse norm 0). */
        double want = inv[r] == 0 ? 0 : cosine(queries + (size_t)i * dim, corpus, r, dim, p);
        if (fabs(want - s) > 1e-5) FUZZ_ABORT();
      }
    }
  }
  if (workers > 0) {
    qe_job *job = qe_search_job_create(queries, nq, corpus, inv, n, dim, k, idx2, score2, workers);
    if (job != NULL && status != QE_OK) FUZZ_ABORT();
    if (job) {
      for (int32_t w = 0; w < workers; w++)
        if (qe_job_work(job, w) < 0) FUZZ_ABORT();
      if (qe_search_job_merge(job) != QE_OK || qe_job_destroy(job) != QE_OK) FUZZ_ABORT();
      if (memcmp(idx, idx2, (size_t)nq * k * sizeof *idx) || memcmp(score, score2, (size_t)nq * k * sizeof *score)) FUZZ_ABORT();
    }
  }
  qe_workspace_release();
  free(rows), free(corpus), free(inv), free(queries), free(idx), free(idx2), free(score), free(score2);
  return 0;
}
