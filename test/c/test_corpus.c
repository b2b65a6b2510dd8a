/*
 * The resident corpus behind a handle (csrc/search/corpus.c) and the handle
 * checks (csrc/runtime/handle.c): what the corpus returns must equal
 * qe_cosine_topk on the same rows stored by hand, through growth and
 * removals; a wrong, corrupt or misaligned handle is QE_ERR_HANDLE.
 */
#include <stdlib.h>
#include <string.h>

#include "qe_api.h"
#include "qe_test.h"
#include "runtime/handle.h"
#include "search/corpus.h"

enum { DIM = 19, K = 7 };

/* qe_cosine_topk of `nq` queries against `n` rows stored by hand. */
static void reference_topk(const float *rows, int32_t n, const float *queries, int32_t nq, int32_t k,
                           int32_t *idx, float *score) {
  const int32_t cap = (n + 15) / 16 * 16;
  float *corpus = calloc((size_t)cap * DIM, sizeof(float));
  float *inv = calloc((size_t)cap, sizeof(float));
  QE_CHECK(qe_corpus_store_rows(corpus, inv, cap, DIM, 0, rows, n) == QE_OK, "store");
  QE_CHECK(qe_cosine_topk(queries, nq, corpus, inv, n, DIM, k, idx, score) == QE_OK, "topk");
  free(corpus), free(inv);
}

static void expect_same_search(qe_corpus *c, const float *rows, int32_t n, const char *when) {
  float q[3 * DIM];
  qe_rng_fill(q, 3 * DIM, -1, 1);
  int32_t got_i[3 * K], want_i[3 * K];
  float got_s[3 * K], want_s[3 * K];
  QE_CHECK(qe_corpus_size(c) == n, "%s: size %d, want %d", when, qe_corpus_size(c), n);
  QE_CHECK(qe_corpus_search(c, q, 3, K, got_i, got_s) == QE_OK, "%s: search", when);
  reference_topk(rows, n, q, 3, K, want_i, want_s);
  QE_CHECK(memcmp(got_i, want_i, sizeof got_i) == 0 && memcmp(got_s, want_s, sizeof got_s) == 0,
           "%s: corpus search differs from qe_cosine_topk on the same rows", when);
}

QE_TEST(corpus_append_grow_remove_match_topk) {
  qe_rng_seed(7);
  enum { N = 300 };
  float *rows = malloc((size_t)N * DIM * sizeof(float));
  qe_rng_fill(rows, (size_t)N * DIM, -1, 1);
  qe_corpus *c = NULL;
  QE_CHECK(qe_corpus_create(DIM, 0, &c) == QE_OK && c, "create");
  QE_CHECK(qe_corpus_capacity(c) == 0, "capacity %d", qe_corpus_capacity(c));
  /* One row, then batches: growth doubles from 64. */
  QE_CHECK(qe_corpus_append(c, rows, 1) == QE_OK, "append 1");
  QE_CHECK(qe_corpus_capacity(c) == 64, "capacity %d after one row", qe_corpus_capacity(c));
  expect_same_search(c, rows, 1, "one row");
  QE_CHECK(qe_corpus_append(c, rows + DIM, 99) == QE_OK, "append 99");
  QE_CHECK(qe_corpus_capacity(c) == 128, "capacity %d after 100 rows", qe_corpus_capacity(c));
  QE_CHECK(qe_corpus_append(c, rows + 100 * DIM, N - 100) == QE_OK, "append the rest");
  QE_CHECK(qe_corpus_capacity(c) == 512, "capacity %d after 300 rows", qe_corpus_capacity(c));
  expect_same_search(c, rows, N, "300 rows");
  /* Removals: the last row moves into the gap, as the mirror does here. */
  int32_t n = N;
  const int32_t gone[] = {3, 0, 150, 295, 17};
  for (size_t i = 0; i < sizeof gone / sizeof gone[0]; i++) {
    QE_CHECK(qe_corpus_remove_row(c, gone[i]) == QE_OK, "remove %d", gone[i]);
    memcpy(rows + (size_t)gone[i] * DIM, rows + (size_t)(n - 1) * DIM, DIM * sizeof(float));
    n--;
  }
  QE_CHECK(qe_corpus_remove_row(c, n - 1) == QE_OK, "remove the last");
  n--;
  expect_same_search(c, rows, n, "after removals");
  QE_CHECK(qe_corpus_remove_row(c, n) == QE_ERR_INDEX, "row past the end");
  QE_CHECK(qe_corpus_remove_row(c, -1) == QE_ERR_INDEX, "row -1");
  /* A refused row: nothing appended. */
  float bad[2 * DIM];
  qe_rng_fill(bad, 2 * DIM, -1, 1);
  bad[DIM + 4] = NAN;
  QE_CHECK(qe_corpus_append(c, bad, 2) == QE_ERR_ARGUMENT, "a NaN row");
  expect_same_search(c, rows, n, "after a refused append");
  QE_CHECK(qe_corpus_append(c, NULL, 1) == QE_ERR_NULL, "NULL rows");
  QE_CHECK(qe_corpus_append(c, bad, 0) == QE_ERR_ARGUMENT, "zero rows");
  QE_CHECK(qe_corpus_destroy(c) == QE_OK, "destroy");
  free(rows);
}

QE_TEST(corpus_create_checks_arguments) {
  qe_corpus *c = (qe_corpus *)1;
  QE_CHECK(qe_corpus_create(0, 0, &c) == QE_ERR_ARGUMENT && c == NULL, "dim 0");
  QE_CHECK(qe_corpus_create(4, -1, &c) == QE_ERR_ARGUMENT, "capacity -1");
  QE_CHECK(qe_corpus_create(INT32_MAX, 1, &c) == QE_ERR_ARGUMENT, "a row over 4 GiB");
  QE_CHECK(qe_corpus_create(4, 0, NULL) == QE_ERR_NULL, "no out");
  QE_CHECK(qe_corpus_create(5, 17, &c) == QE_OK && qe_corpus_capacity(c) == 32, "capacity rounds to panels: %d",
           c ? qe_corpus_capacity(c) : -1);
  float q[5] = {1, 0, 0, 0, 0};
  int32_t i;
  float s;
  QE_CHECK(qe_corpus_search(c, q, 1, 1, &i, &s) == QE_ERR_ARGUMENT, "search of an empty corpus");
  qe_corpus_destroy(c);
}

QE_TEST(handle_checks_refuse_wrong_corrupt_and_misaligned) {
  QE_CHECK(qe_corpus_size(NULL) == QE_ERR_NULL, "NULL");
  QE_CHECK(qe_corpus_destroy(NULL) == QE_OK, "destroy NULL is a no-op");
  /* An object of another kind, same size. */
  void *other = qe_handle_new(99, 1, 64);
  QE_CHECK(qe_corpus_size(other) == QE_ERR_HANDLE, "another kind");
  QE_CHECK(qe_corpus_destroy(other) == QE_ERR_HANDLE, "destroying another kind");
  QE_CHECK(qe_handle_check(other, 99, 1, 64) == QE_OK, "its own kind");
  QE_CHECK(qe_handle_check(other, 99, 2, 64) == QE_ERR_HANDLE, "another version");
  QE_CHECK(qe_handle_check(other, 99, 1, 48) == QE_ERR_HANDLE, "another size");
  qe_handle_free(other);
  qe_corpus *c = NULL;
  qe_corpus_create(3, 0, &c);
  QE_CHECK(qe_corpus_size((qe_corpus *)((char *)c + 4)) == QE_ERR_HANDLE, "misaligned");
  qe_handle *h = (qe_handle *)c;
  h->magic ^= 1; /* corrupt */
  QE_CHECK(qe_corpus_size(c) == QE_ERR_HANDLE, "corrupt magic");
  QE_CHECK(qe_corpus_destroy(c) == QE_ERR_HANDLE, "destroying a corrupt handle");
  h->magic ^= 1;
  QE_CHECK(qe_corpus_size(c) == 0, "repaired");
  QE_CHECK(qe_corpus_destroy(c) == QE_OK, "destroy");
}

QE_TEST(corpus_search_job_matches_single_thread) {
  qe_rng_seed(11);
  enum { N = 1000, NQ = 5 };
  float *rows = malloc((size_t)N * DIM * sizeof(float));
  float q[NQ * DIM];
  qe_rng_fill(rows, (size_t)N * DIM, -1, 1);
  qe_rng_fill(q, NQ * DIM, -1, 1);
  qe_corpus *c = NULL;
  qe_corpus_create(DIM, N, &c);
  QE_CHECK(qe_corpus_append(c, rows, N) == QE_OK, "append");
  int32_t want_i[NQ * K], got_i[NQ * K];
  float want_s[NQ * K], got_s[NQ * K];
  QE_CHECK(qe_corpus_search(c, q, NQ, K, want_i, want_s) == QE_OK, "search");
  qe_job *job = qe_corpus_search_job_create(c, q, NQ, K, got_i, got_s, 3);
  QE_CHECK(job != NULL, "job");
  if (job) {
    for (int w = 0; w < 3; w++) qe_job_work(job, w);
    QE_CHECK(qe_search_job_merge(job) == QE_OK, "merge");
    QE_CHECK(memcmp(got_i, want_i, sizeof got_i) == 0 && memcmp(got_s, want_s, sizeof got_s) == 0, "job differs");
    qe_job_destroy(job);
  }
  QE_CHECK(qe_corpus_search_job_create(NULL, q, NQ, K, got_i, got_s, 3) == NULL, "NULL handle");
  qe_corpus_destroy(c);
  free(rows);
}

QE_SUITE(qe_suite_corpus, "corpus", QE_CASE(corpus_append_grow_remove_match_topk), QE_CASE(corpus_create_checks_arguments),
         QE_CASE(handle_checks_refuse_wrong_corrupt_and_misaligned), QE_CASE(corpus_search_job_matches_single_thread));
