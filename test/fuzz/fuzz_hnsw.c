/*
 * libFuzzer target: the HNSW loader of bytes (csrc/search/hnsw.c). The first
 * byte picks what the rest is:
 *   0: raw bytes handed to qe_hnsw_load (any dimension and metric). Whatever
 *      is accepted must be a sound index: counts, levels and links agree,
 *      searches return live slots best first, and save -> load -> save gives
 *      the same bytes.
 *   1: a small index built from the bytes (dimension, metric, M, adds and
 *      removes of fuzzed vectors), saved; the file must load and round-trip.
 *      Then a fuzzed run of bytes is written over it and the CRC32C
 *      recomputed, so the content checks alone must refuse what is
 *      inconsistent (or accept a sound index).
 * Files whose header asks for more than 64 MB of slots are skipped: the
 * loader allocates what a file declares (as the index had in memory), and
 * the fuzzer checks memory safety, not that policy.
 */
#include <stdlib.h>

#include "adapt/crc32c.h"
#include "fuzz_input.h"
#include "qe_api.h"
#include "search/hnsw.h"

static uint32_t le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Rough bytes the loader would reserve for the header's dim and slot count. */
static int too_big(const uint8_t *b, size_t n) {
  if (n < 80) return 0;
  const uint64_t dim = le32(b + 12), slots = le32(b + 48), m = le32(b + 20);
  return (dim * 4 + (2 * m + 1) * 4 + 64) * (slots + 16) > ((uint64_t)64 << 20);
}

static void check_sound(qe_hnsw *h, const uint8_t *user, size_t user_bytes) {
  const uint32_t dim = qe_hnsw_dim(h), count = qe_hnsw_count(h), slots = qe_hnsw_slot_count(h);
  const int32_t top = qe_hnsw_max_level(h);
  if (count > slots || top < -1 || top > QE_HNSW_MAX_LEVEL || (count == 0) != (top == -1)) FUZZ_ABORT();
  uint32_t links[2 * QE_HNSW_MAX_M], first = UINT32_MAX, live = 0;
  int32_t highest = -1;
  for (uint32_t s = 0; s < slots; s++) {
    if (qe_hnsw_links(h, s, 0, links) < 0) continue;
    live++;
    if (first == UINT32_MAX) first = s;
    for (int32_t l = 0; l <= QE_HNSW_MAX_LEVEL; l++) {
      const int32_t n = qe_hnsw_links(h, s, l, links);
      if (n < 0) break;
      if (l > highest) highest = l;
      for (int32_t i = 0; i < n; i++) {
        uint32_t other[2 * QE_HNSW_MAX_M];
        /* Every link leads to another live node that has this level. */
        if (links[i] >= slots || links[i] == s || qe_hnsw_links(h, links[i], l, other) < 0) FUZZ_ABORT();
      }
    }
  }
  if (live != count || highest != top) FUZZ_ABORT();
  if (count > 0) {
    float *q = malloc((size_t)dim * sizeof *q);
    if (!q) FUZZ_ABORT();
    if (qe_hnsw_vector(h, first, q) != QE_OK || !fuzz_all_finite(q, dim)) FUZZ_ABORT();
    q[0] += 0.5f;
    enum { K = 8 };
    uint32_t got[K], want[K];
    float gd[K], wd[K];
    const uint32_t k = count < K ? count : K;
    const int32_t n = qe_hnsw_search(h, q, k, 0, NULL, got, gd);
    const int32_t e = qe_hnsw_search_exact(h, q, k, NULL, want, wd);
    /* A graph from a file need not be connected: the walk may find fewer, the scan finds k. */
    if (n < 0 || (uint32_t)n > k || e != (int32_t)k) FUZZ_ABORT();
    for (int32_t i = 0; i < n; i++) {
      if (got[i] >= slots || qe_hnsw_links(h, got[i], 0, links) < 0 || gd[i] != gd[i]) FUZZ_ABORT();
      if (i > 0 && gd[i] < gd[i - 1]) FUZZ_ABORT();
    }
    for (int32_t i = 0; i < e; i++) {
      if (want[i] >= slots || (i > 0 && wd[i] < wd[i - 1]) || wd[i] != wd[i]) FUZZ_ABORT();
      if (n == e && gd[i] < wd[i] - 1e-5f * (1 + fabsf(wd[i]))) FUZZ_ABORT(); /* nothing beats the exact scan */
    }
    free(q);
  }
  /* save -> load -> save: the same bytes. */
  size_t size = 0;
  if (qe_hnsw_save_size(h, user_bytes, &size) != QE_OK) FUZZ_ABORT();
  uint8_t *a = malloc(size), *b = malloc(size);
  if (!a || !b) FUZZ_ABORT();
  if (qe_hnsw_save(h, user, user_bytes, a, size) != QE_OK) FUZZ_ABORT();
  qe_hnsw *back = NULL;
  const uint8_t *u = NULL;
  size_t ub = 0;
  if (qe_hnsw_load(a, size, dim, 0xFFFFFFFFu, &back, &u, &ub) != QE_OK || !back || ub != user_bytes) FUZZ_ABORT();
  if (qe_hnsw_save(back, u, ub, b, size) != QE_OK || memcmp(a, b, size) != 0) FUZZ_ABORT();
  qe_hnsw_destroy(back);
  free(a);
  free(b);
}

/* Loads bytes; anything accepted must be sound. */
static void load_and_check(const uint8_t *bytes, size_t n) {
  if (too_big(bytes, n)) return;
  qe_hnsw *h = NULL;
  const uint8_t *user = NULL;
  size_t user_bytes = 0;
  const int status = qe_hnsw_load(bytes, n, 0xFFFFFFFFu, 0xFFFFFFFFu, &h, &user, &user_bytes);
  if (status != QE_OK) {
    if (h || status > 0) FUZZ_ABORT();
    return;
  }
  if (!h || (user_bytes && (user < bytes || user + user_bytes > bytes + n))) FUZZ_ABORT();
  check_sound(h, user, user_bytes);
  qe_hnsw_destroy(h);
}

static void build(fuzz_input *in) {
  const qe_hnsw_params p = {fuzz_u32(in, 17) + 1, fuzz_u32(in, 3), fuzz_u32(in, 7) + 2, fuzz_u32(in, 32) + 1,
                            fuzz_u32(in, 32) + 1, fuzz_u32(in, 0)};
  qe_hnsw *h = NULL;
  if (qe_hnsw_create(&p, fuzz_u32(in, 8), &h) != QE_OK) FUZZ_ABORT();
  float v[17];
  uint32_t slot;
  for (int ops = fuzz_u8(in) % 64; ops > 0 && in->at < in->size; ops--) {
    if (fuzz_u8(in) % 4 == 0 && qe_hnsw_slot_count(h) > 0) {
      const int s = qe_hnsw_remove(h, fuzz_u32(in, qe_hnsw_slot_count(h)));
      if (s != QE_OK && s != QE_ERR_INDEX) FUZZ_ABORT();
    } else {
      fuzz_floats(in, v, p.dim);
      const int s = qe_hnsw_add(h, v, &slot);
      /* Non-finite: refused; finite: added, or refused when the norm is beyond float. */
      if ((s != QE_OK && s != QE_ERR_ARGUMENT) || (s == QE_OK && !fuzz_all_finite(v, p.dim))) FUZZ_ABORT();
    }
  }
  const uint8_t user[3] = {'k', 'e', 'y'};
  size_t size = 0;
  if (qe_hnsw_save_size(h, sizeof user, &size) != QE_OK) FUZZ_ABORT();
  uint8_t *bytes = malloc(size);
  if (!bytes || qe_hnsw_save(h, user, sizeof user, bytes, size) != QE_OK) FUZZ_ABORT();
  qe_hnsw *back = NULL;
  const uint8_t *u = NULL;
  size_t ub = 0;
  /* Asked for another dimension or metric, the loader says so. */
  if (qe_hnsw_load(bytes, size, p.dim + 1, 0xFFFFFFFFu, &back, &u, &ub) != QE_HNSW_ERR_DIM || back) FUZZ_ABORT();
  if (qe_hnsw_load(bytes, size, p.dim, (p.metric + 1) % 3, &back, &u, &ub) != QE_HNSW_ERR_METRIC || back) FUZZ_ABORT();
  if (qe_hnsw_load(bytes, size, p.dim, p.metric, &back, &u, &ub) != QE_OK || ub != sizeof user) FUZZ_ABORT();
  check_sound(back, u, ub);
  qe_hnsw_destroy(back);
  /* Damage, then a valid checksum over the damage. */
  if (size > 84 && in->at < in->size) {
    size_t at = 80 + fuzz_u32(in, (uint32_t)(size - 84));
    for (int n = fuzz_u8(in) % 8 + 1; n > 0 && at < size - 4; n--) bytes[at++] = fuzz_u8(in);
    const uint32_t crc = qe_crc32c_update(0, bytes, size - 4);
    for (int i = 0; i < 4; i++) bytes[size - 4 + i] = (uint8_t)(crc >> (8 * i));
    load_and_check(bytes, size);
  }
  free(bytes);
  qe_hnsw_destroy(h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) {
    load_and_check(data, 0);
    return 0;
  }
  if (data[0] % 2 == 0) {
    load_and_check(data + 1, size - 1);
  } else {
    fuzz_input in = {data + 1, size - 1, 0};
    build(&in);
  }
  return 0;
}
