/*
 * The HNSW index (csrc/search/hnsw.c) against an exact double-precision
 * brute force: recall, removal and reuse, persistence and a table of
 * corrupt files, filters, and bad arguments. Run under ASan and UBSan.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api_hnsw.h"
#include "adapt/crc32c.h"
#include "qe_test.h"
#include "runtime/handle.h"
#include "search/hnsw.h"
#include "search/similarity.h"

/* n points around `clusters` centres in [-1, 1]^dim, spread sigma. */
static float *clustered(size_t n, size_t dim, size_t clusters, float sigma) {
  float *centres = malloc(clusters * dim * sizeof(float));
  float *x = malloc(n * dim * sizeof(float));
  qe_rng_fill(centres, clusters * dim, -1.0f, 1.0f);
  for (size_t i = 0; i < n; i++) {
    const size_t c = (size_t)(qe_rng_uniform(0.0f, 1.0f) * (float)clusters) % clusters;
    for (size_t d = 0; d < dim; d++) x[i * dim + d] = centres[c * dim + d] + sigma * qe_rng_uniform(-1.0f, 1.0f);
  }
  free(centres);
  return x;
}

/* Distance in double, as the index defines it for `metric`. */
static double ref_distance(int metric, const float *a, const float *b, size_t dim) {
  double dot = 0, na = 0, nb = 0, l2 = 0;
  for (size_t d = 0; d < dim; d++) {
    dot += (double)a[d] * b[d];
    na += (double)a[d] * a[d];
    nb += (double)b[d] * b[d];
    l2 += ((double)a[d] - b[d]) * ((double)a[d] - b[d]);
  }
  if (metric == QE_HNSW_L2) return l2;
  if (metric == QE_HNSW_IP) return 1.0 - dot;
  return (na == 0 || nb == 0) ? 1.0 : 1.0 - dot / sqrt(na * nb);
}

/* The exact k nearest among rows with live[i] (and allow[i] when given), by
 * double distance: ids into want (sorted closest first). Returns the count. */
static size_t ref_topk(int metric, const float *q, const float *x, size_t n, size_t dim, const int *live,
                       const int *allow, size_t k, uint32_t *want) {
  double *best = malloc(k * sizeof(double));
  size_t have = 0;
  for (size_t i = 0; i < n; i++) {
    if ((live && !live[i]) || (allow && !allow[i])) continue;
    const double d = ref_distance(metric, q, x + i * dim, dim);
    if (have == k && d >= best[k - 1]) continue;
    size_t j = have < k ? have++ : k - 1;
    while (j > 0 && best[j - 1] > d) {
      best[j] = best[j - 1];
      want[j] = want[j - 1];
      j--;
    }
    best[j] = d;
    want[j] = (uint32_t)i;
  }
  free(best);
  return have;
}

static size_t overlap(const uint32_t *a, size_t na, const uint32_t *b, size_t nb) {
  size_t hits = 0;
  for (size_t i = 0; i < na; i++)
    for (size_t j = 0; j < nb; j++)
      if (a[i] == b[j]) {
        hits++;
        break;
      }
  return hits;
}

static qe_hnsw *build(const float *x, size_t n, size_t dim, int metric, uint32_t M, uint64_t seed) {
  const qe_hnsw_params p = {(uint32_t)dim, (uint32_t)metric, M, 200, 100, seed};
  qe_hnsw *h = NULL;
  QE_CHECK(qe_hnsw_create(&p, 0, &h) == QE_OK, "create");
  for (size_t i = 0; i < n; i++) {
    uint32_t slot = 0;
    const int status = qe_hnsw_add(h, x + i * dim, &slot);
    QE_CHECK(status == QE_OK && slot == i, "add %zu: status %d slot %u", i, status, slot);
  }
  return h;
}

/* Mean recall@k of nq queries against the exact answer (slot i = row i). */
static double recall_at(qe_hnsw *h, int metric, const float *x, size_t n, size_t dim, const int *live,
                        const float *queries, size_t nq, size_t k, uint32_t ef) {
  uint32_t got[64], want[64];
  float dist[64];
  size_t hits = 0, total = 0;
  for (size_t i = 0; i < nq; i++) {
    const int32_t m = qe_hnsw_search(h, queries + i * dim, (uint32_t)k, ef, NULL, got, dist);
    const size_t w = ref_topk(metric, queries + i * dim, x, n, dim, live, NULL, k, want);
    QE_CHECK(m == (int32_t)w, "query %zu: %d results, want %zu", i, m, w);
    for (int32_t j = 1; j < m; j++) QE_CHECK(dist[j - 1] <= dist[j], "query %zu: not sorted at %d", i, j);
    if (m > 0) hits += overlap(got, (size_t)m, want, w);
    total += w;
  }
  return total ? (double)hits / (double)total : 1.0;
}

QE_TEST(hnsw_crc32c_known_answers) { /* the shared csrc/adapt/crc32c.c, as the index uses it */
  QE_CHECK(qe_crc32c_update(0, "123456789", 9) == 0xE3069283u, "check value %08x", qe_crc32c_update(0, "123456789", 9));
  QE_CHECK(qe_crc32c_update(0, "", 0) == 0, "empty");
  /* Incremental equals one pass, at every split of an odd length. */
  unsigned char buf[37];
  for (int i = 0; i < 37; i++) buf[i] = (unsigned char)(i * 71 + 3);
  const uint32_t whole = qe_crc32c_update(0, buf, 37);
  for (size_t cut = 0; cut <= 37; cut++)
    QE_CHECK(qe_crc32c_update(qe_crc32c_update(0, buf, cut), buf + cut, 37 - cut) == whole, "split at %zu", cut);
  /* Bit-by-bit reference. */
  uint32_t c = 0xFFFFFFFFu;
  for (int i = 0; i < 37; i++) {
    c ^= buf[i];
    for (int b = 0; b < 8; b++) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
  }
  QE_CHECK(~c == whole, "bitwise %08x vs %08x", ~c, whole);
}

QE_TEST(hnsw_int8_dot_kernel) {
  /* Against a plain loop, with the extreme codes, at several lengths. */
  int8_t a[256];
  int16_t b[256];
  for (size_t n = 16; n <= 256; n += 16) {
    for (size_t i = 0; i < n; i++) {
      a[i] = (int8_t)(i % 7 == 0 ? -127 : i % 5 == 0 ? 127 : (int)qe_rng_uniform(-127.0f, 128.0f));
      b[i] = (int16_t)(i % 3 == 0 ? 127 : i % 11 == 0 ? -127 : (int)qe_rng_uniform(-127.0f, 128.0f));
    }
    int64_t want = 0;
    for (size_t i = 0; i < n; i++) want += (int64_t)a[i] * b[i];
    QE_CHECK(qe_i8_i16_dot(n, a, b) == want, "n %zu: %d vs %lld", n, qe_i8_i16_dot(n, a, b), (long long)want);
  }
}

QE_TEST(hnsw_u7_dot_kernel) {
  /* The traversal's kernel (relaxed SIMD's i8 x i7 dot in that build) against a plain loop. */
  int8_t a[272];
  uint8_t b[272];
  for (size_t n = 16; n <= 272; n += 16) {
    for (size_t i = 0; i < n; i++) {
      a[i] = (int8_t)(i % 7 == 0 ? -127 : i % 5 == 0 ? 127 : (int)qe_rng_uniform(-127.0f, 128.0f));
      b[i] = (uint8_t)(i % 3 == 0 ? 127 : i % 11 == 0 ? 0 : (int)qe_rng_uniform(0.0f, 128.0f));
    }
    int64_t want = 0;
    for (size_t i = 0; i < n; i++) want += (int64_t)a[i] * b[i];
    QE_CHECK(qe_i8_u7_dot(n, a, b) == want, "n %zu: %d vs %lld", n, qe_i8_u7_dot(n, a, b), (long long)want);
  }
}

static void *hnsw_participant(void *arg) {
  void **a = arg;
  *(int32_t *)a[2] = qe_job_work((qe_job *)a[0], (int32_t)(intptr_t)a[1]);
  return NULL;
}

/* The batch search job, split over 1 to 5 participants (in turn, or on
 * threads), gives qe_hnsw_index_search's results bit for bit: walked, with a
 * filter, and exact. */
QE_TEST(hnsw_search_job_matches_single) {
  const size_t n = 2000, dim = 37, nq = 23, k = 7;
  qe_rng_seed(77);
  float *x = clustered(n, dim, 20, 0.3f);
  float *q = clustered(nq, dim, 20, 0.3f);
  qe_hnsw *h = build(x, n, dim, QE_HNSW_COSINE, 8, 3);
  uint8_t allow[(2000 + 7) / 8];
  for (size_t i = 0; i < sizeof allow; i++) allow[i] = (uint8_t)(i * 37 + 11);
  uint32_t *ws = malloc(nq * k * 4), *gs = malloc(nq * k * 4);
  float *wd = malloc(nq * k * 4), *gd = malloc(nq * k * 4);
  if (!ws || !gs || !wd || !gd) abort();
  int32_t wc[23], gc[23];
  for (int mode = 0; mode < 3; mode++) {
    const uint8_t *filter = mode == 1 ? allow : NULL;
    QE_CHECK(qe_hnsw_index_search(h, q, (int32_t)nq, (int32_t)k, 24, filter, mode == 2, ws, wd, wc) == QE_OK, "single");
    static const int32_t worker_counts[] = {1, 2, 3, 5};
    for (size_t w = 0; w < 4; w++) {
      for (int threaded = 0; threaded < 2; threaded++) {
        const int32_t workers = worker_counts[w];
        memset(gs, 0x55, nq * k * 4), memset(gd, 0x55, nq * k * 4), memset(gc, 0x55, sizeof gc);
        qe_job *job = qe_hnsw_index_search_job_create(h, q, (int32_t)nq, (int32_t)k, 24, filter, mode == 2, gs, gd, gc, workers);
        QE_CHECK(job != NULL, "create with %d workers", workers);
        if (!job) continue;
        int32_t ran[8] = {0};
        if (threaded) {
          pthread_t t[8];
          void *args[8][3];
          for (int32_t p = 1; p < workers; p++) {
            args[p][0] = job, args[p][1] = (void *)(intptr_t)p, args[p][2] = &ran[p];
            if (pthread_create(&t[p], NULL, hnsw_participant, args[p]) != 0) abort();
          }
          ran[0] = qe_job_work(job, 0);
          for (int32_t p = 1; p < workers; p++) pthread_join(t[p], NULL);
        } else {
          for (int32_t p = 0; p < workers; p++) ran[p] = qe_job_work(job, p);
        }
        int32_t total = 0;
        for (int32_t p = 0; p < workers; p++) total += ran[p];
        QE_CHECK(total == qe_job_task_count(job), "tasks run %d of %d", total, qe_job_task_count(job));
        QE_CHECK(qe_job_destroy(job) == QE_OK, "destroy");
        QE_CHECK(memcmp(wc, gc, sizeof wc) == 0, "mode %d, %d workers: counts", mode, workers);
        for (size_t i = 0; i < nq; i++) {
          QE_CHECK(memcmp(ws + i * k, gs + i * k, (size_t)wc[i] * 4) == 0 && memcmp(wd + i * k, gd + i * k, (size_t)wc[i] * 4) == 0,
                   "mode %d, %d workers, query %zu: results", mode, workers, i);
        }
      }
    }
  }
  QE_CHECK(qe_hnsw_index_search_job_create(h, q, 0, (int32_t)k, 0, NULL, 0, gs, gd, gc, 2) == NULL, "nq 0");
  QE_CHECK(qe_hnsw_index_search_job_create(h, q, (int32_t)nq, (int32_t)k, 0, NULL, 0, gs, gd, gc, 0) == NULL, "workers 0");
  QE_CHECK(qe_hnsw_index_search_job_create(NULL, q, (int32_t)nq, (int32_t)k, 0, NULL, 0, gs, gd, gc, 2) == NULL, "no index");
  qe_hnsw_destroy(h);
  free(x), free(q), free(ws), free(gs), free(wd), free(gd);
}

QE_TEST(hnsw_recall_clustered_every_metric) {
  const size_t n = 3000, dim = 37, nq = 60, k = 10;
  for (int metric = 0; metric <= 2; metric++) {
    qe_rng_seed(100 + (uint64_t)metric);
    float *x = clustered(n, dim, 30, 0.3f);
    float *q = clustered(nq, dim, 30, 0.3f);
    if (metric == QE_HNSW_IP) {
      /* Inner product as it is used: on unit vectors (on raw ones the
       * "distance" is no metric and HNSW, hnswlib's too, loses recall). */
      for (size_t i = 0; i < n + nq; i++) {
        float *v = i < n ? x + i * dim : q + (i - n) * dim;
        double s2 = 0;
        for (size_t d = 0; d < dim; d++) s2 += (double)v[d] * v[d];
        for (size_t d = 0; d < dim; d++) v[d] = (float)(v[d] / sqrt(s2));
      }
    }
    qe_hnsw *h = build(x, n, dim, metric, 16, 7);
    QE_CHECK(qe_hnsw_count(h) == n, "count");
    /* Both traversals: on float32 vectors, and on int8 codes re-ranked in float32. */
    for (int traversal = QE_HNSW_TRAVERSAL_FLOAT32; traversal <= QE_HNSW_TRAVERSAL_INT8; traversal++) {
      QE_CHECK(qe_hnsw_set_traversal(h, traversal) == QE_OK, "traversal %d", traversal);
      const double r = recall_at(h, metric, x, n, dim, NULL, q, nq, k, 0);
      QE_CHECK(r >= 0.95, "metric %d, traversal %d: recall@10 %.3f < 0.95", metric, traversal, r);
    }
    QE_CHECK(qe_hnsw_set_traversal(h, 2) == QE_ERR_ARGUMENT, "traversal 2");
    /* k larger than ef, and k larger than the index. */
    uint32_t got[64];
    float dist[64];
    QE_CHECK(qe_hnsw_search(h, q, 64, 16, NULL, got, dist) == 64, "k 64 > ef 16");
    qe_hnsw_destroy(h);
    qe_hnsw *small = build(x, 5, dim, metric, 4, 1);
    QE_CHECK(qe_hnsw_search(small, q, 10, 0, NULL, got, dist) == 5, "k > count gives every node");
    qe_hnsw_destroy(small);
    free(x);
    free(q);
  }
}

QE_TEST(hnsw_dim_one_and_duplicates) {
  /* dim 1 (padding to 4), many equal vectors: ties broken by the lower slot.
   * 20 copies of each value, fewer than 2M = 32 (more copies of one vector
   * than a list holds can close into an island, as in every HNSW). */
  float x[200];
  for (int i = 0; i < 200; i++) x[i] = (float)(i % 10);
  qe_hnsw *h = build(x, 200, 1, QE_HNSW_L2, 16, 3);
  const float q = 3.0f;
  uint32_t got[20];
  float dist[20];
  const int32_t m = qe_hnsw_search(h, &q, 20, 200, NULL, got, dist);
  QE_CHECK(m == 20, "count %d", m);
  int zeros = 0;
  for (int i = 0; i < m; i++) zeros += dist[i] == 0.0f && (got[i] % 10) == 3;
  QE_CHECK(zeros == 20, "20 exact matches of 3, got %d", zeros);
  for (int i = 1; i < m; i++) QE_CHECK(got[i - 1] < got[i], "ties by lower slot at %d", i);
  qe_hnsw_destroy(h);
}

/* Every link of every live node leads to a live node of that level. */
static int graph_consistent(const qe_hnsw *h, const int *live_by_slot) {
  uint32_t links[512];
  for (uint32_t s = 0; s < qe_hnsw_slot_count(h); s++) {
    if (!live_by_slot[s]) continue;
    for (int32_t l = 0;; l++) {
      const int32_t m = qe_hnsw_links(h, s, l, links);
      if (m < 0) break;
      for (int32_t i = 0; i < m; i++)
        if (links[i] >= qe_hnsw_slot_count(h) || !live_by_slot[links[i]] || links[i] == s) return 0;
    }
  }
  return 1;
}

QE_TEST(hnsw_remove_and_reuse) {
  const size_t n = 2000, dim = 24, k = 10, nq = 40;
  qe_rng_seed(42);
  float *x = clustered(n, dim, 20, 0.4f);
  float *q = clustered(nq, dim, 20, 0.4f);
  qe_hnsw *h = build(x, n, dim, QE_HNSW_COSINE, 8, 11);
  int *live = malloc(n * sizeof(int));
  for (size_t i = 0; i < n; i++) live[i] = 1;
  /* Remove every third node, the entry point among them. */
  QE_CHECK(qe_hnsw_remove(h, 0) == QE_OK, "remove 0");
  live[0] = 0;
  size_t removed = 1;
  for (size_t i = 3; i < n; i += 3) {
    QE_CHECK(qe_hnsw_remove(h, (uint32_t)i) == QE_OK, "remove %zu", i);
    live[i] = 0;
    removed++;
  }
  QE_CHECK(qe_hnsw_remove(h, 3) == QE_ERR_INDEX, "removing a free slot");
  QE_CHECK(qe_hnsw_remove(h, (uint32_t)n) == QE_ERR_INDEX, "removing past the end");
  QE_CHECK(qe_hnsw_count(h) == n - removed, "count after removal");
  QE_CHECK(graph_consistent(h, live), "no link to a removed node");
  const double r = recall_at(h, QE_HNSW_COSINE, x, n, dim, live, q, nq, k, 0);
  QE_CHECK(r >= 0.95, "recall after removal %.3f", r);
  /* Deleted nodes never come back, even when k covers the whole index. */
  uint32_t *got = malloc(n * sizeof(uint32_t));
  float *dist = malloc(n * sizeof(float));
  const int32_t all = qe_hnsw_search(h, q, (uint32_t)n, 0, NULL, got, dist);
  QE_CHECK(all == (int32_t)(n - removed), "k = n returns the live nodes: %d", all);
  for (int32_t i = 0; i < all; i++) QE_CHECK(live[got[i]], "removed slot %u returned", got[i]);

  /* Re-adding takes freed slots (last freed first), not new ones. */
  const uint32_t slots_before = qe_hnsw_slot_count(h);
  float *fresh = clustered(removed, dim, 20, 0.4f);
  for (size_t i = 0; i < removed; i++) {
    uint32_t slot = 0;
    QE_CHECK(qe_hnsw_add(h, fresh + i * dim, &slot) == QE_OK, "re-add");
    QE_CHECK(slot < n && !live[slot], "re-add took slot %u", slot);
    memcpy(x + (size_t)slot * dim, fresh + i * dim, dim * sizeof(float));
    live[slot] = 1;
  }
  QE_CHECK(qe_hnsw_slot_count(h) == slots_before, "no slot grew: %u", qe_hnsw_slot_count(h));
  QE_CHECK(graph_consistent(h, live), "consistent after re-adding");
  const double r2 = recall_at(h, QE_HNSW_COSINE, x, n, dim, live, q, nq, k, 0);
  QE_CHECK(r2 >= 0.95, "recall after re-adding %.3f", r2);
  /* A re-added vector is found at distance 0 in its new slot. */
  uint32_t one;
  float d1;
  QE_CHECK(qe_hnsw_search(h, fresh, 1, 0, NULL, &one, &d1) == 1 && d1 < 1e-6f, "re-added vector found (%g)", d1);

  /* Removing everything leaves an empty index that works again. */
  for (uint32_t s = 0; s < n; s++)
    if (live[s]) QE_CHECK(qe_hnsw_remove(h, s) == QE_OK, "remove all %u", s);
  QE_CHECK(qe_hnsw_count(h) == 0 && qe_hnsw_max_level(h) == -1, "empty");
  QE_CHECK(qe_hnsw_search(h, q, 5, 0, NULL, got, dist) == 0, "empty search");
  uint32_t slot;
  QE_CHECK(qe_hnsw_add(h, q, &slot) == QE_OK && qe_hnsw_search(h, q, 5, 0, NULL, got, dist) == 1, "one again");
  qe_hnsw_destroy(h);
  free(x), free(q), free(live), free(got), free(dist), free(fresh);
}

static uint8_t *save(qe_hnsw *h, const char *user, size_t *size) {
  const size_t user_bytes = user ? strlen(user) : 0;
  QE_CHECK(qe_hnsw_save_size(h, user_bytes, size) == QE_OK, "save size");
  uint8_t *bytes = malloc(*size);
  QE_CHECK(qe_hnsw_save(h, (const uint8_t *)user, user_bytes, bytes, *size) == QE_OK, "save");
  return bytes;
}

QE_TEST(hnsw_save_load_identical_and_deterministic) {
  const size_t n = 1500, dim = 19, nq = 30;
  qe_rng_seed(5);
  float *x = clustered(n, dim, 15, 0.3f);
  float *q = clustered(nq, dim, 15, 0.3f);
  qe_hnsw *a = build(x, n, dim, QE_HNSW_IP, 12, 99);
  qe_hnsw *b = build(x, n, dim, QE_HNSW_IP, 12, 99);
  for (uint32_t s = 10; s < 200; s += 7) qe_hnsw_remove(a, s), qe_hnsw_remove(b, s);
  size_t na, nb;
  uint8_t *fa = save(a, "keys", &na);
  uint8_t *fb = save(b, "keys", &nb);
  QE_CHECK(na == nb && memcmp(fa, fb, na) == 0, "same seed and order: identical bytes");
  qe_hnsw *c = build(x, n, dim, QE_HNSW_IP, 12, 100);
  size_t nc;
  uint8_t *fc = save(c, "keys", &nc);
  QE_CHECK(nc != na || memcmp(fa, fc, na) != 0, "another seed: another graph");

  qe_hnsw *loaded = NULL;
  const uint8_t *user = NULL;
  size_t user_bytes = 0;
  QE_CHECK(qe_hnsw_load(fa, na, (uint32_t)dim, QE_HNSW_IP, &loaded, &user, &user_bytes) == QE_OK, "load");
  QE_CHECK(user_bytes == 4 && memcmp(user, "keys", 4) == 0, "user bytes back");
  uint32_t s1[20], s2[20];
  float d1[20], d2[20];
  for (size_t i = 0; i < nq; i++) {
    const int32_t m1 = qe_hnsw_search(a, q + i * dim, 20, 40, NULL, s1, d1);
    const int32_t m2 = qe_hnsw_search(loaded, q + i * dim, 20, 40, NULL, s2, d2);
    QE_CHECK(m1 == m2 && memcmp(s1, s2, (size_t)m1 * 4) == 0 && memcmp(d1, d2, (size_t)m1 * 4) == 0,
             "query %zu: identical results after load", i);
  }
  /* And the loaded index goes on exactly as the original: same slots, same bytes. */
  for (size_t i = 0; i < 50; i++) {
    uint32_t sa, sb;
    qe_hnsw_add(a, q + (i % nq) * dim, &sa);
    qe_hnsw_add(loaded, q + (i % nq) * dim, &sb);
    QE_CHECK(sa == sb, "add after load: slot %u vs %u", sa, sb);
  }
  size_t nl;
  uint8_t *fl = save(loaded, "keys", &nl);
  free(fa);
  fa = save(a, "keys", &na);
  QE_CHECK(na == nl && memcmp(fa, fl, na) == 0, "same bytes after the same adds");
  /* An empty index round-trips too. */
  qe_hnsw *empty = build(x, 0, dim, QE_HNSW_L2, 16, 1);
  size_t ne;
  uint8_t *fe = save(empty, NULL, &ne);
  qe_hnsw *e2 = NULL;
  QE_CHECK(qe_hnsw_load(fe, ne, (uint32_t)dim, QE_HNSW_L2, &e2, &user, &user_bytes) == QE_OK && qe_hnsw_count(e2) == 0,
           "empty index round trip");
  qe_hnsw_destroy(a), qe_hnsw_destroy(b), qe_hnsw_destroy(c), qe_hnsw_destroy(loaded);
  qe_hnsw_destroy(empty), qe_hnsw_destroy(e2);
  free(fa), free(fb), free(fc), free(fl), free(fe), free(x), free(q);
}

static int load_status(const uint8_t *bytes, size_t n, uint32_t dim, uint32_t metric) {
  qe_hnsw *h = NULL;
  const uint8_t *user = NULL;
  size_t user_bytes = 0;
  const int status = qe_hnsw_load(bytes, n, dim, metric, &h, &user, &user_bytes);
  if (status == QE_OK) qe_hnsw_destroy(h);
  else if (h != NULL) return 999; /* a failed load must hand back nothing */
  return status;
}

/* Rewrites the trailing CRC so a content edit passes the checksum. */
static void reseal(uint8_t *bytes, size_t n) {
  const uint32_t c = qe_crc32c_update(0, bytes, n - 4);
  for (int i = 0; i < 4; i++) bytes[n - 4 + i] = (uint8_t)(c >> (8 * i));
}

QE_TEST(hnsw_corrupt_files_table) {
  const size_t n = 120, dim = 8;
  qe_rng_seed(77);
  float *x = clustered(n, dim, 4, 0.5f);
  qe_hnsw *h = build(x, n, dim, QE_HNSW_COSINE, 4, 5);
  qe_hnsw_remove(h, 17);
  size_t size;
  uint8_t *good = save(h, "user data", &size);
  uint8_t *bad = malloc(size + 16);
  QE_CHECK(load_status(good, size, (uint32_t)dim, QE_HNSW_COSINE) == QE_OK, "the good file loads");
  QE_CHECK(load_status(good, size, 0xFFFFFFFFu, 0xFFFFFFFFu) == QE_OK, "any dim and metric accepted");

  /* Truncated at every length. */
  for (size_t cut = 0; cut < size; cut++) {
    const int s = load_status(good, cut, (uint32_t)dim, QE_HNSW_COSINE);
    const int want = cut == 0 ? QE_HNSW_ERR_EMPTY : cut < 8 ? QE_HNSW_ERR_FOREIGN : QE_HNSW_ERR_TRUNCATED;
    QE_CHECK(s == want, "truncated to %zu: status %d, want %d", cut, s, want);
  }
  /* Every single bit flipped: an error every time, never a load. */
  for (size_t byte = 0; byte < size; byte++) {
    for (int bit = 0; bit < 8; bit++) {
      memcpy(bad, good, size);
      bad[byte] ^= (uint8_t)(1u << bit);
      const int s = load_status(bad, size, (uint32_t)dim, QE_HNSW_COSINE);
      QE_CHECK(s < 0 && s != 999, "bit %d of byte %zu flipped: status %d", bit, byte, s);
    }
  }
  /* A trailing byte. */
  memcpy(bad, good, size);
  bad[size] = 0;
  QE_CHECK(load_status(bad, size + 1, (uint32_t)dim, QE_HNSW_COSINE) == QE_HNSW_ERR_CORRUPT, "trailing byte");
  /* Wrong dimension and metric for the caller. */
  QE_CHECK(load_status(good, size, (uint32_t)dim + 1, QE_HNSW_COSINE) == QE_HNSW_ERR_DIM, "wrong dim");
  QE_CHECK(load_status(good, size, 384, QE_HNSW_COSINE) == QE_HNSW_ERR_DIM, "wrong dim 384");
  QE_CHECK(load_status(good, size, (uint32_t)dim, QE_HNSW_L2) == QE_HNSW_ERR_METRIC, "wrong metric");
  /* Foreign bytes: random, and text. */
  for (int trial = 0; trial < 50; trial++) {
    for (size_t i = 0; i < size; i++) bad[i] = (uint8_t)(qe_rng_uniform(0, 256));
    const int s = load_status(bad, size, (uint32_t)dim, QE_HNSW_COSINE);
    QE_CHECK(s == QE_HNSW_ERR_FOREIGN, "random bytes %d: %d", trial, s);
  }
  QE_CHECK(load_status((const uint8_t *)"{\"hnsw\": true}", 14, (uint32_t)dim, QE_HNSW_COSINE) == QE_HNSW_ERR_FOREIGN, "json");
  /* The right magic with random content after it. */
  memcpy(bad, good, 8);
  QE_CHECK(load_status(bad, size, (uint32_t)dim, QE_HNSW_COSINE) < 0, "magic then noise");
  /* Another version. */
  memcpy(bad, good, size);
  bad[8] = 2;
  QE_CHECK(load_status(bad, size, (uint32_t)dim, QE_HNSW_COSINE) == QE_HNSW_ERR_VERSION, "version 2");

  /* Consistent checksums over inconsistent content: the structural checks. */
  const size_t body = 80;
  struct {
    size_t offset;
    uint32_t value;
    const char *what;
  } edits[] = {
      {52, 118, "live count off by one"}, {56, 17, "entry point a free slot"},
      {56, 500, "entry point past the slots"}, {60, 40, "top level too high"},
      {20, 1, "M below the minimum"}, {20, 100000, "M above the maximum"},
      {12, 0, "dim 0"}, {16, 9, "metric 9"}, {28, 0, "efSearch 0"}, {76, 1, "reserved word set"},
      {48, 0xFFFFFFF0u, "slot count beyond the body"}, {body, 77, "first level 77"},
      {body + 4, 0x7FC00000u, "a NaN element"}, {body + 4 + 4 * dim, 999, "link count beyond 2M"},
      {body + 4 + 4 * dim + 4, 500, "a link past the slots"}, {body + 4 + 4 * dim + 4, 0, "a self link"},
  };
  for (size_t e = 0; e < sizeof edits / sizeof edits[0]; e++) {
    memcpy(bad, good, size);
    for (int i = 0; i < 4; i++) bad[edits[e].offset + i] = (uint8_t)(edits[e].value >> (8 * i));
    reseal(bad, size);
    const uint32_t want_dim = edits[e].offset == 12 ? 0xFFFFFFFFu : (uint32_t)dim;
    const uint32_t want_metric = edits[e].offset == 16 ? 0xFFFFFFFFu : QE_HNSW_COSINE;
    const int s = load_status(bad, size, want_dim, want_metric);
    QE_CHECK(s == QE_HNSW_ERR_CORRUPT, "%s: status %d", edits[e].what, s);
  }
  /* A link to the free slot 17: find a level-0 link list and point it there. */
  memcpy(bad, good, size);
  {
    const size_t at = body + 4 + 4 * dim + 4; /* slot 0's first level-0 link */
    for (int i = 0; i < 4; i++) bad[at + i] = (uint8_t)(17u >> (8 * i));
    reseal(bad, size);
    QE_CHECK(load_status(bad, size, (uint32_t)dim, QE_HNSW_COSINE) == QE_HNSW_ERR_CORRUPT, "link to a free slot");
  }
  /* Through the exported entry too. */
  qe_hnsw *out = NULL;
  uint32_t user_offset = 0, user_bytes = 0;
  QE_CHECK(qe_hnsw_index_load(good, (uint32_t)size, (int32_t)dim, 0, &out, &user_offset, &user_bytes) == QE_OK &&
               user_bytes == 9 && memcmp(good + user_offset, "user data", 9) == 0,
           "exported load");
  QE_CHECK(qe_hnsw_index_destroy(out) == QE_OK, "destroy");
  QE_CHECK(qe_hnsw_index_load(good, 0, (int32_t)dim, 0, &out, &user_offset, &user_bytes) == QE_HNSW_ERR_EMPTY && !out,
           "exported empty");
  qe_hnsw_destroy(h);
  free(good), free(bad), free(x);
}

QE_TEST(hnsw_filtered_search) {
  const size_t n = 4000, dim = 16, nq = 30, k = 10;
  qe_rng_seed(9);
  float *x = clustered(n, dim, 40, 0.3f);
  float *q = clustered(nq, dim, 40, 0.3f);
  qe_hnsw *h = build(x, n, dim, QE_HNSW_L2, 16, 2);
  const size_t selectivity_per_mille[] = {10, 100, 500};
  uint8_t *bits = calloc((n + 7) / 8, 1);
  int *allow = calloc(n, sizeof(int));
  for (size_t t = 0; t < 3; t++) {
    memset(bits, 0, (n + 7) / 8);
    for (size_t i = 0; i < n; i++) {
      allow[i] = (size_t)(qe_rng_uniform(0, 1000)) < selectivity_per_mille[t];
      if (allow[i]) bits[i >> 3] |= (uint8_t)(1u << (i & 7));
    }
    size_t hits = 0, total = 0;
    for (size_t i = 0; i < nq; i++) {
      uint32_t got[10], want[10];
      float dist[10];
      const int32_t m = qe_hnsw_search(h, q + i * dim, (uint32_t)k, 0, bits, got, dist);
      const size_t w = ref_topk(QE_HNSW_L2, q + i * dim, x, n, dim, NULL, allow, k, want);
      QE_CHECK(m == (int32_t)w, "selectivity %zu: %d results, want %zu", selectivity_per_mille[t], m, w);
      for (int32_t j = 0; j < m; j++) QE_CHECK(allow[got[j]], "a rejected node %u returned", got[j]);
      if (m > 0) hits += overlap(got, (size_t)m, want, w);
      total += w;
    }
    const double r = (double)hits / (double)total;
    QE_CHECK(r >= (t == 0 ? 0.999 : 0.95), "filtered recall at %zu per mille: %.3f", selectivity_per_mille[t], r);
  }
  /* Nothing allowed: no results. */
  memset(bits, 0, (n + 7) / 8);
  uint32_t got[10];
  float dist[10];
  QE_CHECK(qe_hnsw_search(h, q, 10, 0, bits, got, dist) == 0, "empty filter");
  qe_hnsw_destroy(h);
  free(x), free(q), free(bits), free(allow);
}

QE_TEST(hnsw_bad_arguments) {
  qe_hnsw *h = NULL;
  qe_hnsw_params p = {8, QE_HNSW_COSINE, 16, 200, 100, 0};
  QE_CHECK(qe_hnsw_create(NULL, 0, &h) == QE_ERR_NULL, "null params");
  p.dim = 0;
  QE_CHECK(qe_hnsw_create(&p, 0, &h) == QE_ERR_ARGUMENT && !h, "dim 0");
  p.dim = 8, p.M = 1;
  QE_CHECK(qe_hnsw_create(&p, 0, &h) == QE_ERR_ARGUMENT, "M 1");
  p.M = 16, p.metric = 3;
  QE_CHECK(qe_hnsw_create(&p, 0, &h) == QE_ERR_ARGUMENT, "metric 3");
  QE_CHECK(qe_hnsw_index_create(8, 0, 16, 0, 100, 0, 0, 0, &h) == QE_ERR_ARGUMENT, "efConstruction 0");
  QE_CHECK(qe_hnsw_index_create(8, 0, 16, 200, 100, 0, 0, 0, &h) == QE_OK && h, "exported create");
  float v[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  uint32_t slots[2];
  int32_t added = -1, counts[1];
  v[3] = NAN;
  QE_CHECK(qe_hnsw_index_add(h, v, 1, slots, &added) == QE_ERR_ARGUMENT && added == 0, "NaN element");
  v[3] = INFINITY;
  QE_CHECK(qe_hnsw_index_add(h, v, 1, slots, &added) == QE_ERR_ARGUMENT, "infinite element");
  v[3] = 3e38f, v[4] = 3e38f;
  QE_CHECK(qe_hnsw_index_add(h, v, 1, slots, &added) == QE_ERR_ARGUMENT, "norm beyond float (cosine)");
  v[3] = 4, v[4] = 5;
  QE_CHECK(qe_hnsw_index_add(h, v, 1, slots, &added) == QE_OK && added == 1 && qe_hnsw_count(h) == 1, "one added");
  float d[4];
  QE_CHECK(qe_hnsw_index_search(h, v, 1, 0, 0, NULL, 0, slots, d, counts) == QE_ERR_ARGUMENT, "k 0");
  QE_CHECK(qe_hnsw_index_search(h, v, 1, 1, -1, NULL, 0, slots, d, counts) == QE_ERR_ARGUMENT, "ef -1");
  QE_CHECK(qe_hnsw_index_search(h, v, 1, 1, 0, NULL, 0, slots, d, counts) == QE_OK && counts[0] == 1 && d[0] < 1e-6f,
           "search");
  QE_CHECK(qe_hnsw_index_remove(h, -1) == QE_ERR_INDEX, "slot -1");
  QE_CHECK(qe_hnsw_index_set_ef_search(h, 0) == QE_ERR_ARGUMENT, "ef 0");
  QE_CHECK(qe_hnsw_index_links(h, 0, 1, slots) == QE_ERR_INDEX || qe_hnsw_max_level(h) >= 1, "links above the level");
  QE_CHECK(qe_hnsw_index_destroy(h) == QE_OK, "destroy");
  QE_CHECK(qe_hnsw_index_destroy(NULL) == QE_OK, "destroy NULL");
  /* ip and l2: |x|^2 must stay within float, so no distance is NaN (+inf + -inf). */
  for (int32_t metric = 1; metric <= 2; metric++) {
    QE_CHECK(qe_hnsw_index_create(8, metric, 16, 200, 100, 0, 0, 0, &h) == QE_OK, "create ip / l2");
    float big[8] = {2e19f, -2e19f, 1, 1, 1, 1, 1, 1};
    QE_CHECK(qe_hnsw_index_add(h, big, 1, slots, &added) == QE_ERR_ARGUMENT && added == 0, "|x|^2 beyond float (ip / l2)");
    big[0] = 1e19f, big[1] = -1e19f; /* |x|^2 = 2e38: kept */
    QE_CHECK(qe_hnsw_index_add(h, big, 1, slots, &added) == QE_OK && added == 1, "|x|^2 within float (ip / l2)");
    big[1] = 1e19f;
    QE_CHECK(qe_hnsw_index_add(h, big, 1, slots, &added) == QE_OK, "second");
    big[0] = 3e19f;
    QE_CHECK(qe_hnsw_index_search(h, big, 1, 1, 0, NULL, 0, slots, d, counts) == QE_ERR_ARGUMENT, "query |q|^2 beyond float");
    QE_CHECK(qe_hnsw_index_search(h, v, 1, 2, 0, NULL, 0, slots, d, counts) == QE_OK && counts[0] == 2 && d[0] == d[0] &&
                 d[1] == d[1] && d[0] <= d[1],
             "distances are numbers");
    QE_CHECK(qe_hnsw_index_destroy(h) == QE_OK, "destroy ip / l2");
  }
}

QE_TEST(hnsw_handles_refuse_null_wrong_corrupt_and_misaligned) {
  qe_hnsw *h = NULL;
  QE_CHECK(qe_hnsw_index_create(4, QE_HNSW_L2, 4, 16, 16, 1, 0, 0, &h) == QE_OK, "create");
  const float v[8] = {1, 0, 0, 0, 0, 1, 0, 0};
  uint32_t slots[2];
  int32_t added = 0, counts[1];
  float dist[2];
  QE_CHECK(qe_hnsw_index_add(h, v, 2, slots, &added) == QE_OK && added == 2, "add");
  /* NULL */
  QE_CHECK(qe_hnsw_index_add(NULL, v, 1, slots, &added) == QE_ERR_NULL, "add NULL");
  QE_CHECK(qe_hnsw_index_count(NULL) == QE_ERR_NULL && qe_hnsw_index_max_level(NULL) == QE_ERR_NULL, "count NULL");
  QE_CHECK(qe_hnsw_index_save_size(NULL, 0, slots) == QE_ERR_NULL && qe_hnsw_index_memory_bytes(NULL) == 0, "save_size NULL");
  /* Another kind of object of the same size, and a misaligned pointer into a live index. */
  void *other = qe_handle_new(QE_HANDLE_CORPUS, 1, 64);
  QE_CHECK(other != NULL, "other");
  QE_CHECK(qe_hnsw_index_count(other) == QE_ERR_HANDLE && qe_hnsw_index_set_ef_search(other, 8) == QE_ERR_HANDLE, "another kind");
  QE_CHECK(qe_hnsw_index_destroy(other) == QE_ERR_HANDLE, "another kind not destroyed");
  QE_CHECK(qe_handle_check(other, QE_HANDLE_CORPUS, 1, 64) == QE_OK, "still alive as what it is");
  qe_handle_free(other);
  qe_hnsw *off = (qe_hnsw *)((char *)h + 4);
  QE_CHECK(qe_hnsw_index_search(off, v, 1, 1, 0, NULL, 0, slots, dist, counts) == QE_ERR_HANDLE, "misaligned search");
  QE_CHECK(qe_hnsw_index_search_job_create(off, v, 1, 1, 0, NULL, 0, slots, dist, counts, 2) == NULL, "misaligned job");
  QE_CHECK(qe_hnsw_index_remove(off, 0) == QE_ERR_HANDLE && qe_hnsw_index_destroy(off) == QE_ERR_HANDLE, "misaligned remove/destroy");
  /* A corrupt header (kind, layout version, magic) is refused; repaired, the index answers as before. */
  qe_handle *hd = (qe_handle *)h;
  const uint32_t fields[3] = {hd->type, hd->version, hd->magic};
  for (int f = 0; f < 3; f++) {
    uint32_t *field = f == 0 ? &hd->type : f == 1 ? &hd->version : &hd->magic;
    *field ^= 1;
    uint32_t size = 0;
    float out[4];
    QE_CHECK(qe_hnsw_index_count(h) == QE_ERR_HANDLE && qe_hnsw_index_save_size(h, 0, &size) == QE_ERR_HANDLE, "corrupt count/save_size");
    QE_CHECK(qe_hnsw_index_vector(h, 0, out) == QE_ERR_HANDLE && qe_hnsw_index_set_traversal(h, 1) == QE_ERR_HANDLE, "corrupt vector/traversal");
    QE_CHECK(qe_hnsw_index_destroy(h) == QE_ERR_HANDLE, "corrupt: not destroyed");
    *field = fields[f];
  }
  QE_CHECK(qe_hnsw_index_count(h) == 2, "repaired");
  QE_CHECK(qe_hnsw_index_search(h, v + 4, 1, 1, 0, NULL, 0, slots, dist, counts) == QE_OK && counts[0] == 1 && slots[0] == 1, "repaired search");
  QE_CHECK(qe_hnsw_index_destroy(h) == QE_OK, "destroy");
}

QE_SUITE(qe_suite_hnsw, "hnsw", QE_CASE(hnsw_handles_refuse_null_wrong_corrupt_and_misaligned), QE_CASE(hnsw_crc32c_known_answers), QE_CASE(hnsw_int8_dot_kernel), QE_CASE(hnsw_u7_dot_kernel), QE_CASE(hnsw_search_job_matches_single), QE_CASE(hnsw_recall_clustered_every_metric),
         QE_CASE(hnsw_dim_one_and_duplicates), QE_CASE(hnsw_remove_and_reuse),
         QE_CASE(hnsw_save_load_identical_and_deterministic), QE_CASE(hnsw_corrupt_files_table),
         QE_CASE(hnsw_filtered_search), QE_CASE(hnsw_bad_arguments));
