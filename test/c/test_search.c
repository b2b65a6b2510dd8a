/*
 * Tests of cosine top-K search (csrc/search), signed feature hashing
 * (csrc/embed) and their exported entries (csrc/api_search.c), against a
 * double-precision brute force written here.
 */
#include <float.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "embed/feature_hash.h"
#include "qe_api.h"
#include "qe_test.h"
#include "search/similarity.h"

static void *xmalloc(size_t bytes) {
  void *p = malloc(bytes ? bytes : 1);
  if (!p) abort();
  return p;
}

/* ------------------------------------------------------ double reference */

static double ref_norm(const float *x, size_t dim) {
  double s = 0;
  for (size_t i = 0; i < dim; i++) s += (double)x[i] * x[i];
  return sqrt(s);
}

/* The documented similarity: 0 when either side is a zero vector. */
static double ref_cosine(const float *q, const float *x, size_t dim) {
  double nq = ref_norm(q, dim), nx = ref_norm(x, dim);
  if (nq < FLT_MIN || nx < FLT_MIN) return 0.0;
  double d = 0;
  for (size_t i = 0; i < dim; i++) d += (double)q[i] * x[i];
  return d / (nq * nx);
}

typedef struct {
  double score;
  int32_t index;
} ref_entry;

static int ref_order(const void *pa, const void *pb) {
  const ref_entry *a = pa, *b = pb;
  if (a->score != b->score) return a->score > b->score ? -1 : 1;
  return (a->index > b->index) - (a->index < b->index);
}

/* Every row's reference score against q, fully sorted best first. */
static ref_entry *ref_sorted(const float *q, const float *corpus, size_t n, size_t dim) {
  ref_entry *e = xmalloc(n * sizeof *e);
  for (size_t r = 0; r < n; r++) e[r] = (ref_entry){ref_cosine(q, corpus + r * dim, dim), (int32_t)r};
  qsort(e, n, sizeof *e, ref_order);
  return e;
}

/* Stores a row-major corpus in the panel layout (padding zeroed), then
 * searches it through the exported entries; returns the first bad status. */
/* The row-major corpus in the panel layout (padding zeroed), with its
 * inverse norms; returns the status of qe_corpus_store_rows. */
static int store_corpus(const float *corpus, size_t n, size_t dim, float **stored, float **inv) {
  const size_t panel = (size_t)qe_corpus_panel_rows();
  const size_t capacity = (n + panel - 1) / panel * panel;
  *stored = calloc(capacity * dim, sizeof(float));
  *inv = calloc(capacity, sizeof(float));
  if (!*stored || !*inv) abort();
  return qe_corpus_store_rows(*stored, *inv, (int32_t)capacity, (int32_t)dim, 0, corpus, (int32_t)n);
}

static int run_topk(const float *queries, size_t nq, const float *corpus, size_t n, size_t dim,
                    size_t k, int32_t *idx, float *score) {
  float *stored, *inv;
  int status = store_corpus(corpus, n, dim, &stored, &inv);
  if (status == QE_OK)
    status = qe_cosine_topk(queries, (int32_t)nq, stored, inv, (int32_t)n, (int32_t)dim,
                            (int32_t)k, idx, score);
  free(stored);
  free(inv);
  return status;
}

/*
 * Exact comparison with the full sort: the data is planted so that distinct
 * reference scores are at least 1e-3 apart, far beyond float rounding, and
 * equal reference scores come from rows equal up to a power-of-two scale,
 * which the kernel must score bit for bit alike. So the order must match
 * index for index, ties included.
 */
static void expect_equal_to_full_sort(const char *what, const float *queries, size_t nq,
                                      const float *corpus, size_t n, size_t dim, size_t k) {
  int32_t *idx = xmalloc(nq * k * sizeof(int32_t));
  float *score = xmalloc(nq * k * sizeof(float));
  for (size_t i = 0; i < nq * k; i++) idx[i] = 777, score[i] = NAN;
  int status = run_topk(queries, nq, corpus, n, dim, k, idx, score);
  QE_CHECK(status == QE_OK, "%s: status %d", what, status);
  const size_t kk = k < n ? k : n;
  for (size_t i = 0; i < nq && status == QE_OK; i++) {
    ref_entry *ref = ref_sorted(queries + i * dim, corpus, n, dim);
    int bad = 0;
    for (size_t j = 0; j < kk && !bad; j++) {
      const int32_t got = idx[i * k + j];
      if (got != ref[j].index || fabs((double)score[i * k + j] - ref[j].score) > 2e-6) {
        QE_CHECK(0, "%s: query %zu rank %zu: got row %d (%.9g), want row %d (%.9g)", what, i, j,
                 got, (double)score[i * k + j], ref[j].index, ref[j].score);
        bad = 1;
      }
    }
    for (size_t j = kk; j < k && !bad; j++)
      if (idx[i * k + j] != -1 || score[i * k + j] != 0.0f) {
        QE_CHECK(0, "%s: query %zu slot %zu beyond n: got (%d, %g), want (-1, 0)", what, i, j,
                 idx[i * k + j], (double)score[i * k + j]);
        bad = 1;
      }
    free(ref);
  }
  free(idx);
  free(score);
}

/* A random unit vector orthogonal to the unit vector u (u may be NULL). */
static void random_unit_orthogonal(float *v, const float *u, size_t dim) {
  for (;;) {
    qe_rng_fill(v, dim, -1.0f, 1.0f);
    if (u) {
      double d = 0;
      for (size_t i = 0; i < dim; i++) d += (double)v[i] * u[i];
      for (size_t i = 0; i < dim; i++) v[i] = (float)(v[i] - d * u[i]);
    }
    double nv = ref_norm(v, dim);
    if (nv > 0.1) {
      for (size_t i = 0; i < dim; i++) v[i] = (float)(v[i] / nv);
      return;
    }
  }
}

/*
 * A planted corpus for the query direction u: each base row has cosine
 * c = +-(0.01 + 0.98 * g / groups) with u for a distinct grid point g, a
 * random positive scale, and is followed at random places by exact copies,
 * power-of-two multiples, and zero rows (cosine exactly 0 in both kernel and
 * reference, and no base row is near 0).
 */
static float *planted_corpus(const float *u, size_t n, size_t dim) {
  float *x = xmalloc(n * dim * sizeof(float));
  float *v = xmalloc(dim * sizeof(float));
  size_t *grid = xmalloc(n * sizeof(size_t));
  for (size_t i = 0; i < n; i++) grid[i] = i;
  for (size_t i = n; i > 1; i--) { /* shuffle the grid points */
    size_t j = (size_t)qe_rng_uniform(0.0f, (float)i);
    if (j >= i) j = i - 1;
    size_t t = grid[i - 1];
    grid[i - 1] = grid[j];
    grid[j] = t;
  }
  for (size_t r = 0; r < n; r++) {
    float *row = x + r * dim;
    float pick = qe_rng_uniform(0.0f, 1.0f);
    if (r > 0 && pick < 0.2f) { /* a copy of an earlier row, possibly scaled by 2^e */
      size_t src = (size_t)qe_rng_uniform(0.0f, (float)r);
      if (src >= r) src = r - 1;
      static const float pow2[] = {1.0f, 2.0f, 0.25f, 8.0f};
      float m = pow2[(size_t)qe_rng_uniform(0.0f, 4.0f) & 3];
      for (size_t c = 0; c < dim; c++) row[c] = x[src * dim + c] * m;
    } else if (pick < 0.25f) {
      memset(row, 0, dim * sizeof(float));
    } else {
      double c = 0.01 + 0.98 * (double)grid[r] / (double)n;
      if (qe_rng_uniform(0.0f, 1.0f) < 0.5f) c = -c;
      if (dim == 1) c = c > 0 ? 1 : -1;
      if (dim > 1) random_unit_orthogonal(v, u, dim); /* in one dimension nothing is orthogonal to u */
      double s = sqrt(1.0 - c * c), scale = qe_rng_uniform(0.5f, 3.0f);
      for (size_t i = 0; i < dim; i++) row[i] = (float)(scale * (c * u[i] + (dim > 1 ? s * v[i] : 0)));
    }
  }
  free(v);
  free(grid);
  return x;
}

/* Queries along u: scaled copies, the reversed direction, and a zero vector. */
static float *planted_queries(const float *u, size_t nq, size_t dim) {
  float *q = xmalloc(nq * dim * sizeof(float));
  for (size_t i = 0; i < nq; i++) {
    float m = (i % 4 == 1) ? -0.5f : (i % 4 == 3 && i < 8) ? 0.0f : (float)(1 << (i % 3));
    for (size_t c = 0; c < dim; c++) q[i * dim + c] = u[c] * m;
  }
  return q;
}

/* A planted corpus of n rows and nq queries along one random direction. */
static void planted_case(size_t nq, size_t n, size_t dim, float **corpus, float **queries) {
  float *u = xmalloc(dim * sizeof(float));
  random_unit_orthogonal(u, NULL, dim);
  *corpus = planted_corpus(u, n, dim);
  *queries = planted_queries(u, nq, dim);
  free(u);
}

QE_TEST(topk_equals_full_sort_with_ties) {
  static const size_t shapes[][4] = {/* nq, n, dim, k */
      {1, 1, 1, 1},    {1, 1, 5, 3},    {1, 9, 3, 9},    {1, 40, 7, 5},   {2, 40, 7, 40},
      {3, 17, 6, 50},  {4, 64, 16, 10}, {5, 100, 33, 7}, {8, 33, 2, 1},   {1, 300, 384, 10},
      {9, 257, 13, 300}, {70, 45, 9, 6}, {130, 31, 5, 31}, {1, 1000, 20, 1000},
  };
  qe_rng_seed(501);
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
    const size_t nq = shapes[s][0], n = shapes[s][1], dim = shapes[s][2], k = shapes[s][3];
    float *corpus, *queries;
    planted_case(nq, n, dim, &corpus, &queries);
    char what[96];
    snprintf(what, sizeof what, "nq=%zu n=%zu dim=%zu k=%zu", nq, n, dim, k);
    expect_equal_to_full_sort(what, queries, nq, corpus, n, dim, k);
    free(corpus);
    free(queries);
  }
}

/*
 * Random data, where float and double may order near-ties differently: the
 * result must be a valid top-K (each score the row's cosine, ordered, no row
 * left out that beats the last one kept) and equal rows must keep index order.
 */
QE_TEST(topk_random_is_a_valid_top_k) {
  static const size_t shapes[][4] = {
      {1, 500, 384, 10}, {2, 300, 64, 25}, {7, 129, 31, 12}, {66, 200, 10, 3}, {3, 50, 1, 50},
  };
  qe_rng_seed(502);
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
    const size_t nq = shapes[s][0], n = shapes[s][1], dim = shapes[s][2], k = shapes[s][3];
    float *corpus = xmalloc(n * dim * sizeof(float)), *queries = xmalloc(nq * dim * sizeof(float));
    qe_rng_fill(corpus, n * dim, -1.0f, 1.0f);
    qe_rng_fill(queries, nq * dim, -1.0f, 1.0f);
    for (size_t r = 3; r < n; r += 7) memcpy(corpus + r * dim, corpus + (r / 2) * dim, dim * sizeof(float));
    int32_t *idx = xmalloc(nq * k * sizeof(int32_t));
    float *score = xmalloc(nq * k * sizeof(float));
    int status = run_topk(queries, nq, corpus, n, dim, k, idx, score);
    QE_CHECK(status == QE_OK, "status %d", status);
    const size_t kk = k < n ? k : n;
    char *taken = xmalloc(n);
    for (size_t i = 0; i < nq; i++) {
      const float *q = queries + i * dim;
      const int32_t *ix = idx + i * k;
      const float *sc = score + i * k;
      memset(taken, 0, n);
      double last = 2.0;
      for (size_t j = 0; j < kk; j++) {
        QE_CHECK(ix[j] >= 0 && (size_t)ix[j] < n && !taken[ix[j]], "shape %zu query %zu: bad index %d", s, i, ix[j]);
        if (ix[j] < 0 || (size_t)ix[j] >= n) continue;
        taken[ix[j]] = 1;
        double want = ref_cosine(q, corpus + (size_t)ix[j] * dim, dim);
        QE_CHECK(fabs(want - sc[j]) <= 2e-6, "shape %zu query %zu rank %zu: score %.9g, cosine %.9g", s, i, j, (double)sc[j], want);
        if (j > 0)
          QE_CHECK(sc[j - 1] > sc[j] || (sc[j - 1] == sc[j] && ix[j - 1] < ix[j]),
                   "shape %zu query %zu: ranks %zu, %zu out of order", s, i, j - 1, j);
        if (want < last) last = want;
      }
      for (size_t r = 0; r < n; r++) {
        if (taken[r]) continue;
        double c = ref_cosine(q, corpus + r * dim, dim);
        QE_CHECK(c <= last + 2e-6, "shape %zu query %zu: row %zu (%.9g) beats the last kept (%.9g)", s, i, r, c, last);
        /* a duplicate of a kept row with a higher index may not be kept over it */
        for (size_t j = 0; j < kk; j++)
          if ((size_t)ix[j] > r && memcmp(corpus + r * dim, corpus + (size_t)ix[j] * dim, dim * sizeof(float)) == 0)
            QE_CHECK(0, "shape %zu query %zu: row %d kept but its equal row %zu (lower index) not", s, i, ix[j], r);
      }
    }
    free(taken);
    free(idx);
    free(score);
    free(corpus);
    free(queries);
  }
}

/* One query alone and inside a batch (other group position, pair tile) scores bit for bit alike. */
QE_TEST(topk_single_and_batch_agree_bitwise) {
  const size_t n = 203, dim = 37, nq = 71, k = 15;
  qe_rng_seed(503);
  float *corpus = xmalloc(n * dim * sizeof(float)), *queries = xmalloc(nq * dim * sizeof(float));
  qe_rng_fill(corpus, n * dim, -1.0f, 1.0f);
  qe_rng_fill(queries, nq * dim, -1.0f, 1.0f);
  int32_t *bi = xmalloc(nq * k * sizeof(int32_t)), si[15];
  float *bs = xmalloc(nq * k * sizeof(float)), ss[15];
  QE_CHECK(run_topk(queries, nq, corpus, n, dim, k, bi, bs) == QE_OK, "batch failed");
  for (size_t i = 0; i < nq; i++) {
    QE_CHECK(run_topk(queries + i * dim, 1, corpus, n, dim, k, si, ss) == QE_OK, "single failed");
    QE_CHECK(memcmp(si, bi + i * k, sizeof si) == 0 && memcmp(ss, bs + i * k, sizeof ss) == 0,
             "query %zu: single and batch results differ", i);
  }
  free(corpus);
  free(queries);
  free(bi);
  free(bs);
}

QE_TEST(topk_zero_vectors_score_zero) {
  const size_t n = 6, dim = 5, k = 6;
  float corpus[6 * 5] = {0}, q[5] = {1, 2, 3, 4, 5}, zq[5] = {0};
  for (size_t c = 0; c < dim; c++) corpus[1 * dim + c] = q[c];       /* row 1 = q */
  for (size_t c = 0; c < dim; c++) corpus[4 * dim + c] = -2 * q[c];  /* row 4 = -2q */
  int32_t idx[6];
  float score[6];
  QE_CHECK(run_topk(q, 1, corpus, n, dim, k, idx, score) == QE_OK, "status");
  const int32_t want_idx[6] = {1, 0, 2, 3, 5, 4};
  const float want_score[6] = {1, 0, 0, 0, 0, -1};
  for (size_t j = 0; j < n; j++)
    QE_CHECK(idx[j] == want_idx[j] && fabs(score[j] - want_score[j]) <= 1e-6 && !signbit(score[j]) == !signbit(want_score[j]),
             "rank %zu: got (%d, %g), want (%d, %g)", j, idx[j], (double)score[j], want_idx[j], (double)want_score[j]);
  QE_CHECK(run_topk(zq, 1, corpus, n, dim, k, idx, score) == QE_OK, "zero query status");
  for (size_t j = 0; j < n; j++)
    QE_CHECK(idx[j] == (int32_t)j && score[j] == 0.0f, "zero query rank %zu: got (%d, %g)", j, idx[j], (double)score[j]);
}

QE_TEST(store_rows_computes_inverse_norms_and_flags_bad_rows) {
  const size_t dim = 7;
  float x[6 * 7], stored[32 * 7], inv[32];
  qe_rng_seed(504);
  qe_rng_fill(x, sizeof x / sizeof x[0], -1.0f, 1.0f);
  for (size_t c = 0; c < dim; c++) x[1 * dim + c] = 0.0f;            /* zero row */
  for (size_t c = 0; c < dim; c++) x[2 * dim + c] *= 1e-30f;         /* tiny, not zero */
  for (size_t c = 0; c < dim; c++) x[3 * dim + c] *= 1e30f;          /* squares overflow float */
  for (size_t c = 0; c < dim; c++) x[4 * dim + c] = c == 2 ? 1e-40f : 0.0f; /* norm below FLT_MIN */
  QE_CHECK(qe_corpus_store_rows(stored, inv, 32, (int32_t)dim, 0, x, 6) == QE_OK, "finite rows rejected");
  for (size_t r = 0; r < 6; r++) {
    double nr = ref_norm(x + r * dim, dim);
    double want = nr < FLT_MIN ? 0.0 : 1.0 / nr;
    QE_CHECK(fabs(inv[r] - want) <= 1e-6 * want, "row %zu: inv norm %.9g, want %.9g", r, (double)inv[r], want);
  }
  x[5 * dim + 3] = NAN;
  QE_CHECK(qe_corpus_store_rows(stored, inv, 32, (int32_t)dim, 0, x, 6) == QE_ERR_ARGUMENT, "NaN row accepted");
  QE_CHECK(inv[5] == 0.0f && inv[0] > 0.0f, "NaN row should get 0, others their value");
  x[5 * dim + 3] = INFINITY;
  QE_CHECK(qe_corpus_store_rows(stored, inv, 32, (int32_t)dim, 0, x, 6) == QE_ERR_ARGUMENT, "infinite row accepted");
  for (size_t c = 0; c < dim; c++) x[5 * dim + c] = 3e38f; /* finite, but the norm exceeds FLT_MAX */
  QE_CHECK(qe_corpus_store_rows(stored, inv, 32, (int32_t)dim, 0, x, 6) == QE_ERR_ARGUMENT, "norm above FLT_MAX accepted");
  /* A refused row is stored as the zero vector and scores 0, not NaN or -1. */
  float q[7], score[6];
  int32_t idx[6];
  for (size_t c = 0; c < dim; c++) q[c] = x[5 * dim + c] > 0 ? 1.0f : -1.0f;
  QE_CHECK(qe_cosine_topk(q, 1, stored, inv, 6, (int32_t)dim, 6, idx, score) == QE_OK, "search over a refused row");
  for (size_t j = 0; j < 6; j++)
    if (idx[j] == 5) QE_CHECK(score[j] == 0.0f, "refused row scored %g", (double)score[j]);
}

/* The documented layout: row r, element d at ((r / P) * dim + d) * P + r % P; and moves. */
QE_TEST(corpus_layout_store_and_move) {
  const size_t dim = 5, capacity = 64, n = 40, P = (size_t)qe_corpus_panel_rows();
  float rows[40 * 5], stored[64 * 5], inv[64];
  for (size_t i = 0; i < n * dim; i++) rows[i] = (float)(i + 1);
  memset(stored, 0, sizeof stored);
  QE_CHECK(qe_corpus_store_rows(stored, inv, (int32_t)capacity, (int32_t)dim, 3, rows, 37) == QE_OK, "store");
  for (size_t r = 0; r < 37; r++)
    for (size_t d = 0; d < dim; d++) {
      const size_t at = ((r + 3) / P * dim + d) * P + (r + 3) % P;
      QE_CHECK(stored[at] == rows[r * dim + d], "row %zu element %zu misplaced", r + 3, d);
    }
  QE_CHECK(qe_corpus_move_row(stored, inv, (int32_t)capacity, (int32_t)dim, 39, 4) == QE_OK, "move");
  for (size_t d = 0; d < dim; d++)
    QE_CHECK(stored[(0 * dim + d) * P + 4] == rows[36 * dim + d], "moved row element %zu", d);
  QE_CHECK(inv[4] == inv[39], "moved inverse norm");
  QE_CHECK(qe_corpus_move_row(stored, inv, 64, (int32_t)dim, 64, 0) == QE_ERR_INDEX, "from = capacity");
  QE_CHECK(qe_corpus_move_row(stored, inv, 64, (int32_t)dim, 0, -1) == QE_ERR_INDEX, "to < 0");
  QE_CHECK(qe_corpus_store_rows(stored, inv, 64, (int32_t)dim, 30, rows, 35) == QE_ERR_ARGUMENT, "rows past capacity");
  QE_CHECK(qe_corpus_store_rows(stored, inv, 40, (int32_t)dim, 0, rows, 1) == QE_ERR_ARGUMENT, "capacity not a multiple of P");
  QE_CHECK(qe_corpus_store_rows(stored, inv, 64, 0, 0, rows, 1) == QE_ERR_ARGUMENT, "dim 0");
  QE_CHECK(qe_corpus_store_rows(NULL, inv, 64, (int32_t)dim, 0, rows, 1) == QE_ERR_NULL, "null corpus");
  QE_CHECK(64 % P == 0 && 40 % P != 0 && P % 4 == 0, "panel rows %zu", P);
}

/* Very large and very small finite vectors: the query is scaled to unit length first, so no overflow. */
QE_TEST(topk_extreme_magnitudes) {
  const size_t dim = 9, n = 4;
  float corpus[4 * 9], q[9];
  qe_rng_seed(505);
  qe_rng_fill(corpus, n * dim, -1.0f, 1.0f);
  qe_rng_fill(q, dim, -1.0f, 1.0f);
  for (size_t c = 0; c < dim; c++) corpus[c] *= 1e35f, corpus[dim + c] *= 1e-35f, q[c] *= 1e36f;
  int32_t idx[4];
  float score[4];
  QE_CHECK(run_topk(q, 1, corpus, n, dim, n, idx, score) == QE_OK, "status");
  for (size_t j = 0; j < n; j++) {
    double want = ref_cosine(q, corpus + (size_t)idx[j] * dim, dim);
    QE_CHECK(isfinite(score[j]) && fabs(want - score[j]) < 2e-6, "rank %zu: %g vs %g", j, (double)score[j], want);
  }
}

QE_TEST(topk_api_rejects_bad_arguments) {
  float corpus[64] = {0}, inv[32] = {1, 1, 0.7f, 0}, q[2] = {1, 0}, score[4];
  int32_t idx[4];
  QE_CHECK(qe_cosine_topk(NULL, 1, corpus, inv, 4, 2, 1, idx, score) == QE_ERR_NULL, "null queries");
  QE_CHECK(qe_cosine_topk(q, 1, corpus, NULL, 4, 2, 1, idx, score) == QE_ERR_NULL, "null norms");
  QE_CHECK(qe_cosine_topk(q, 0, corpus, inv, 4, 2, 1, idx, score) == QE_ERR_ARGUMENT, "nq = 0");
  QE_CHECK(qe_cosine_topk(q, 1, corpus, inv, 0, 2, 1, idx, score) == QE_ERR_ARGUMENT, "n = 0");
  QE_CHECK(qe_cosine_topk(q, 1, corpus, inv, 4, 0, 1, idx, score) == QE_ERR_ARGUMENT, "dim = 0");
  QE_CHECK(qe_cosine_topk(q, 1, corpus, inv, 4, 2, 0, idx, score) == QE_ERR_ARGUMENT, "k = 0");
  QE_CHECK(qe_cosine_topk(q, 1, corpus, inv, -4, 2, 1, idx, score) == QE_ERR_ARGUMENT, "n < 0");
  QE_CHECK(qe_cosine_topk(q, 70000, corpus, inv, 70000, 70000, 1, idx, score) == QE_ERR_ARGUMENT, "too large");
  q[1] = NAN;
  QE_CHECK(qe_cosine_topk(q, 1, corpus, inv, 4, 2, 1, idx, score) == QE_ERR_ARGUMENT, "NaN query");
}

/* The working memory depends on the queries and the dimension, not on the corpus size. */
QE_TEST(topk_workspace_independent_of_corpus) {
  const size_t dim = 24, big = 3000;
  float *corpus = xmalloc(big * dim * sizeof(float)), q[3 * 24];
  qe_rng_seed(506);
  qe_rng_fill(corpus, big * dim, -1.0f, 1.0f);
  qe_rng_fill(q, 3 * dim, -1.0f, 1.0f);
  int32_t idx[3 * 5];
  float score[3 * 5];
  QE_CHECK(run_topk(q, 3, corpus, 10, dim, 5, idx, score) == QE_OK, "small");
  size_t small_bytes = qe_workspace_last_bytes();
  QE_CHECK(run_topk(q, 3, corpus, big, dim, 5, idx, score) == QE_OK, "big");
  QE_CHECK(qe_workspace_last_bytes() == small_bytes, "workspace %zu vs %zu bytes", qe_workspace_last_bytes(), small_bytes);
  QE_CHECK(small_bytes <= 4096, "workspace %zu bytes for 3 queries of dim 24", small_bytes);
  free(corpus);
}

/* ------------------------------------------------------ feature hashing */

QE_TEST(feature_table_is_deterministic_with_unit_variance) {
  const size_t rows = 64, dim = 33;
  float *a = xmalloc(rows * dim * sizeof(float)), *b = xmalloc(rows * dim * sizeof(float));
  QE_CHECK(qe_feature_table_fill(a, (int32_t)rows, (int32_t)dim, 42u, 1.0f) == QE_OK, "fill");
  QE_CHECK(qe_feature_table_fill(b, (int32_t)rows, (int32_t)dim, 42u, 1.0f) == QE_OK, "fill");
  QE_CHECK(memcmp(a, b, rows * dim * sizeof(float)) == 0, "same seed, different tables");
  /* A value pinned here: the table must not change between releases (stored embeddings depend on it). */
  qe_f32_feature_table_fill(1, 1, 42u, 1.0f, b);
  QE_CHECK(b[0] == a[0], "first element changed");
  double sum = 0, sq = 0, amax = 0;
  for (size_t i = 0; i < rows * dim; i++) {
    sum += a[i];
    sq += (double)a[i] * a[i];
    if (fabs(a[i]) > amax) amax = fabs(a[i]);
  }
  double mean = sum / (rows * dim), var = sq / (rows * dim) - mean * mean;
  QE_CHECK(fabs(mean) < 0.05 && fabs(var - 1.0) < 0.08 && amax < 1.7320509, "mean %g, var %g, max %g", mean, var, amax);
  QE_CHECK(qe_feature_table_fill(b, (int32_t)rows, (int32_t)dim, 43u, 1.0f) == QE_OK, "fill");
  size_t same = 0;
  for (size_t i = 0; i < rows * dim; i++) same += a[i] == b[i];
  QE_CHECK(same < 4, "seeds 42 and 43 share %zu elements", same);
  QE_CHECK(qe_feature_table_fill(b, (int32_t)rows, (int32_t)dim, 1u, NAN) == QE_ERR_ARGUMENT, "NaN scale");
  free(a);
  free(b);
}

QE_TEST(feature_hash_embed_matches_reference) {
  const size_t table_rows = 50, dim = 13, tokens = 6;
  float *table = xmalloc(table_rows * dim * sizeof(float));
  qe_rng_seed(507);
  qe_rng_fill(table, table_rows * dim, -1.0f, 1.0f);
  /* token 2 has no features; token 4 repeats a row with opposite signs */
  const int32_t offsets[7] = {0, 3, 4, 4, 7, 9, 10};
  const int32_t rows[10] = {0, 17, 49, 5, 8, 8, 1, 3, 3, 22};
  const float weights[10] = {1, -1, 0.5f, -1, 1, -1, 0.25f, 1, 1, -2};
  float out[6 * 13];
  double want[6 * 13];
  memset(out, 0xff, sizeof out);
  QE_CHECK(qe_feature_hash_embed(offsets, rows, weights, (int32_t)tokens, 10, table,
                                 (int32_t)table_rows, (int32_t)dim, out) == QE_OK, "status");
  for (size_t t = 0; t < tokens; t++)
    for (size_t c = 0; c < dim; c++) {
      double s = 0;
      for (int32_t f = offsets[t]; f < offsets[t + 1]; f++) s += (double)weights[f] * table[rows[f] * dim + c];
      want[t * dim + c] = s;
    }
  QE_CHECK_CLOSE("bag sums", out, want, tokens * dim, 1e-6);

  int32_t bad_rows[10];
  memcpy(bad_rows, rows, sizeof rows);
  bad_rows[9] = 50;
  QE_CHECK(qe_feature_hash_embed(offsets, bad_rows, weights, 6, 10, table, 50, (int32_t)dim, out) == QE_ERR_INDEX, "row = table_rows");
  bad_rows[9] = -1;
  QE_CHECK(qe_feature_hash_embed(offsets, bad_rows, weights, 6, 10, table, 50, (int32_t)dim, out) == QE_ERR_INDEX, "row < 0");
  /* Finite weights whose sums pass FLT_MAX: refused, not infinity. */
  const float huge[10] = {3e38f, 3e38f, 3e38f, 3e38f, 3e38f, 3e38f, 3e38f, 3e38f, 3e38f, 3e38f};
  float big_table[50 * 13];
  for (size_t i = 0; i < 50 * 13; i++) big_table[i] = 1.5f;
  QE_CHECK(qe_feature_hash_embed(offsets, rows, huge, 6, 10, big_table, 50, (int32_t)dim, out) == QE_ERR_ARGUMENT, "overflowing sums accepted");
  int32_t bad_offsets[7] = {0, 3, 2, 4, 7, 9, 10};
  QE_CHECK(qe_feature_hash_embed(bad_offsets, rows, weights, 6, 10, table, 50, (int32_t)dim, out) == QE_ERR_ARGUMENT, "descending offsets");
  QE_CHECK(qe_feature_hash_embed(offsets, rows, weights, 6, 9, table, 50, (int32_t)dim, out) == QE_ERR_ARGUMENT, "offsets past features");
  float bad_weights[10];
  memcpy(bad_weights, weights, sizeof weights);
  bad_weights[0] = INFINITY;
  QE_CHECK(qe_feature_hash_embed(offsets, rows, bad_weights, 6, 10, table, 50, (int32_t)dim, out) == QE_ERR_ARGUMENT, "infinite weight");
  QE_CHECK(qe_feature_hash_embed(offsets, rows, weights, 0, 0, table, 50, (int32_t)dim, out) == QE_ERR_ARGUMENT, "no tokens");
  const int32_t empty_offsets[3] = {0, 0, 0};
  QE_CHECK(qe_feature_hash_embed(empty_offsets, rows, weights, 2, 0, table, 50, (int32_t)dim, out) == QE_OK, "no features");
  for (size_t i = 0; i < 2 * dim; i++) QE_CHECK(out[i] == 0.0f, "featureless token not zero at %zu", i);
  free(table);
}

/* ---------------------------------------------------------- search jobs */

static void *search_participant(void *arg) {
  void **a = arg;
  *(int32_t *)a[2] = qe_job_work((qe_job *)a[0], (int32_t)(intptr_t)a[1]);
  return NULL;
}

/* A search job split over `workers` participants (sequential, or on threads)
 * gives qe_cosine_topk's output bit for bit, ties and short corpora included. */
QE_TEST(search_job_matches_single_pass) {
  static const size_t shapes[][4] = {/* nq, n, dim, k */
      {1, 1, 1, 1}, {1, 9, 3, 9}, {1, 40, 7, 5}, {3, 17, 6, 50}, {5, 100, 33, 7},
      {1, 300, 384, 10}, {9, 257, 13, 300}, {70, 450, 9, 6}, {1, 2000, 20, 11}, {2, 1000, 16, 1000},
  };
  qe_rng_seed(777);
  for (size_t sh = 0; sh < sizeof shapes / sizeof shapes[0]; sh++) {
    const size_t nq = shapes[sh][0], n = shapes[sh][1], dim = shapes[sh][2], k = shapes[sh][3];
    float *corpus, *queries;
    planted_case(nq, n, dim, &corpus, &queries);
    float *stored, *inv;
    QE_CHECK(store_corpus(corpus, n, dim, &stored, &inv) == QE_OK, "store");
    int32_t *want_idx = xmalloc(nq * k * 4), *got_idx = xmalloc(nq * k * 4);
    float *want_score = xmalloc(nq * k * 4), *got_score = xmalloc(nq * k * 4);
    QE_CHECK(qe_cosine_topk(queries, (int32_t)nq, stored, inv, (int32_t)n, (int32_t)dim, (int32_t)k,
                            want_idx, want_score) == QE_OK, "single pass");
    static const int32_t worker_counts[] = {1, 2, 3, 5, 16};
    for (size_t wc = 0; wc < sizeof worker_counts / sizeof worker_counts[0]; wc++) {
      for (int threaded = 0; threaded < 2; threaded++) {
        const int32_t workers = worker_counts[wc];
        memset(got_idx, 0x55, nq * k * 4);
        memset(got_score, 0x55, nq * k * 4);
        qe_job *job = qe_search_job_create(queries, (int32_t)nq, stored, inv, (int32_t)n, (int32_t)dim,
                                           (int32_t)k, got_idx, got_score, workers);
        QE_CHECK(job != NULL, "nq=%zu n=%zu: create with %d workers", nq, n, workers);
        if (!job) continue;
        QE_CHECK(qe_attention_job_tile_q(job) == 0, "a search job has no tiles");
        int32_t ran[16] = {0};
        if (threaded) {
          pthread_t t[16];
          void *args[16][3];
          for (int32_t w = 1; w < workers; w++) {
            args[w][0] = job, args[w][1] = (void *)(intptr_t)w, args[w][2] = &ran[w];
            if (pthread_create(&t[w], NULL, search_participant, args[w]) != 0) abort();
          }
          ran[0] = qe_job_work(job, 0);
          for (int32_t w = 1; w < workers; w++) pthread_join(t[w], NULL);
        } else {
          for (int32_t w = 0; w < workers; w++) ran[w] = qe_job_work(job, w);
        }
        int32_t total = 0;
        for (int32_t w = 0; w < workers; w++) total += ran[w];
        QE_CHECK(total == qe_job_task_count(job), "tasks run %d of %d", total, qe_job_task_count(job));
        QE_CHECK(qe_search_job_merge(job) == QE_OK, "merge");
        QE_CHECK(memcmp(got_idx, want_idx, nq * k * 4) == 0 && memcmp(got_score, want_score, nq * k * 4) == 0,
                 "nq=%zu n=%zu dim=%zu k=%zu, %d workers%s: differs from qe_cosine_topk", nq, n, dim, k,
                 workers, threaded ? " on threads" : "");
        QE_CHECK(qe_job_destroy(job) == QE_OK, "destroy");
      }
    }
    free(stored), free(inv), free(want_idx), free(got_idx), free(want_score), free(got_score);
    free(corpus), free(queries);
  }
}

QE_TEST(search_job_rejects_bad_arguments_and_misuse) {
  const size_t n = 64, dim = 8, k = 3;
  float *stored = calloc(n * dim, sizeof(float)), *inv = calloc(n, sizeof(float)), q[8] = {1};
  float *rows = xmalloc(n * dim * sizeof(float));
  qe_rng_fill(rows, n * dim, -1.0f, 1.0f);
  QE_CHECK(qe_corpus_store_rows(stored, inv, (int32_t)n, (int32_t)dim, 0, rows, (int32_t)n) == QE_OK, "store");
  int32_t idx[3];
  float score[3];
  QE_CHECK(qe_search_job_create(NULL, 1, stored, inv, 64, 8, 3, idx, score, 2) == NULL, "null queries");
  QE_CHECK(qe_search_job_create(q, 0, stored, inv, 64, 8, 3, idx, score, 2) == NULL, "no queries");
  QE_CHECK(qe_search_job_create(q, 1, stored, inv, 64, 8, 0, idx, score, 2) == NULL, "k 0");
  QE_CHECK(qe_search_job_create(q, 1, stored, inv, 64, 8, 3, idx, score, 0) == NULL, "0 workers");
  QE_CHECK(qe_search_job_create(q, 1, stored, inv, 64, 8, 3, idx, score, QE_JOB_MAX_WORKERS + 1) == NULL,
           "too many workers");
  /* Part lists too large (8 x 8191 x 8193 results, 2^31 bytes each on the
   * wasm side, where they wrapped size_t): refused from the sizes alone,
   * before any input is read (the buffers here are far too small to read). */
  QE_CHECK(qe_search_job_create(q, 8191, stored, inv, 70000, 8, 8193, idx, score, 2) == NULL,
           "part lists over the limit");
  const float huge[8] = {FLT_MAX, FLT_MAX};
  QE_CHECK(qe_search_job_create(huge, 1, stored, inv, 64, 8, 3, idx, score, 2) == NULL, "query norm beyond float");
  qe_job *job = qe_search_job_create(q, 1, stored, inv, (int32_t)n, (int32_t)dim, (int32_t)k, idx, score, 2);
  QE_CHECK(job != NULL, "create");
  QE_CHECK(qe_search_job_merge(job) == QE_ERR_ARGUMENT, "merge before the work");
  qe_job_work(job, 0);
  qe_job_work(job, 1);
  QE_CHECK(qe_search_job_merge(job) == QE_OK, "merge after the work");
  QE_CHECK(qe_job_destroy(job) == QE_OK, "destroy");
  QE_CHECK(qe_search_job_merge(NULL) == QE_ERR_NULL, "merge of NULL");
  free(stored), free(inv), free(rows);
}

QE_SUITE(qe_suite_search, "search",
         QE_CASE(topk_equals_full_sort_with_ties), QE_CASE(topk_random_is_a_valid_top_k),
         QE_CASE(search_job_matches_single_pass), QE_CASE(search_job_rejects_bad_arguments_and_misuse),
         QE_CASE(topk_single_and_batch_agree_bitwise), QE_CASE(topk_zero_vectors_score_zero),
         QE_CASE(store_rows_computes_inverse_norms_and_flags_bad_rows),
         QE_CASE(corpus_layout_store_and_move), QE_CASE(topk_extreme_magnitudes),
         QE_CASE(topk_api_rejects_bad_arguments), QE_CASE(topk_workspace_independent_of_corpus),
         QE_CASE(feature_table_is_deterministic_with_unit_variance),
         QE_CASE(feature_hash_embed_matches_reference));
