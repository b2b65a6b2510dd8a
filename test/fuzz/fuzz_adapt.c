/*
 * libFuzzer target: pattern adaptation (csrc/adapt/). The first byte picks
 * what the rest is:
 *   0: raw bytes handed to qe_lora_import and qe_cache_import. Whatever is
 *      accepted must work (apply, search) and export to the same bytes.
 *   1: a small adapter and cache built from the bytes (dims, patterns,
 *      labels, stores, removals, learning steps with fuzzed keys, rewards
 *      and temperatures); every call must return a status, the adapter stay
 *      finite after accepted steps, and export then import reproduce it.
 *   2: a valid export of such a cache, with a fuzzed run of bytes written
 *      over it and the CRC32C recomputed: the contents' own checks alone
 *      must refuse what is inconsistent.
 *   3: a cache of 256 to 319 rows (fuzzed rows, scaled by fuzzed powers of
 *      two and nudged, so near-duplicates, huge and tiny norms are common)
 *      and a fuzzed query: the search through int8 codes must give the
 *      full exact scan's rows and scores to the bit.
 */
#include <stdlib.h>

#include "adapt/crc32c.h"
#include "adapt/micro_lora.h"
#include "adapt/pattern_cache.h"
#include "fuzz_input.h"
#include "qe_api.h"
#include "search/similarity.h"

static void check_lora_roundtrip(qe_micro_lora *l) {
  const size_t n = (size_t)qe_lora_export_bytes(l);
  unsigned char *bytes = malloc(n), *again = malloc(n);
  if (!bytes || !again) FUZZ_ABORT();
  if (qe_lora_export(l, bytes, (double)n) != QE_OK) FUZZ_ABORT();
  qe_micro_lora *back = NULL;
  if (qe_lora_import(bytes, (double)n, &back) != QE_OK || !back) FUZZ_ABORT();
  if (qe_lora_export(back, again, (double)n) != QE_OK || memcmp(bytes, again, n) != 0) FUZZ_ABORT();
  qe_lora_destroy(back);
  free(bytes);
  free(again);
}

static void check_cache(qe_pattern_cache *c, qe_micro_lora *l) {
  const size_t n = (size_t)qe_cache_export_bytes(c);
  unsigned char *bytes = malloc(n), *again = malloc(n);
  if (!bytes || !again) FUZZ_ABORT();
  if (qe_cache_export(c, bytes, (double)n) != QE_OK) FUZZ_ABORT();
  qe_pattern_cache *back = NULL;
  if (qe_cache_import(bytes, (double)n, &back) != QE_OK || !back) FUZZ_ABORT();
  if ((size_t)qe_cache_export_bytes(back) != n || qe_cache_export(back, again, (double)n) != QE_OK ||
      memcmp(bytes, again, n) != 0)
    FUZZ_ABORT();
  int32_t shape[3];
  qe_cache_shape(back, shape);
  float *q = calloc((size_t)shape[0], sizeof *q);
  int32_t idx[4], idx2[4];
  float score[4], score2[4];
  if (!q) FUZZ_ABORT();
  q[0] = 1;
  const qe_micro_lora *fits = l && l->dim == (size_t)shape[0] ? l : NULL;
  const int s1 = qe_cache_search(c, fits, q, 4, 0, idx, score);
  const int s2 = qe_cache_search(back, fits, q, 4, 0, idx2, score2);
  if (s1 != s2 || (s1 == QE_OK && (memcmp(idx, idx2, sizeof idx) || memcmp(score, score2, sizeof score)))) FUZZ_ABORT();
  for (int j = 0; s1 == QE_OK && j < 4; j++) {
    if (idx[j] >= shape[1] || (idx[j] < 0 && j < shape[1])) FUZZ_ABORT();
    if (!(score[j] >= -1.0f && score[j] <= 1.0f)) FUZZ_ABORT();
  }
  qe_cache_destroy(back);
  free(q);
  free(bytes);
  free(again);
}

static void build_and_use(fuzz_input *in, unsigned char **export_out, size_t *export_n) {
  const int32_t dim = (int32_t)fuzz_u32(in, 20) + 1, rank = (int32_t)fuzz_u32(in, 8) + 1;
  const int32_t max = (int32_t)fuzz_u32(in, 40) + 1;
  qe_micro_lora *l = NULL;
  qe_pattern_cache *c = NULL;
  if (qe_lora_create(dim, rank, fuzz_float(in), fuzz_u32(in, 0), &l) != QE_OK) return;
  if (qe_cache_create(dim, max, &c) != QE_OK) FUZZ_ABORT();
  qe_lora_set_optimizer(l, (int32_t)fuzz_u32(in, 3), fuzz_float(in), 0.9f, 0.99f, 1e-6f, fuzz_u8(in) / 255.0f);
  float *v = malloc((size_t)dim * 10 * sizeof *v);
  if (!v) FUZZ_ABORT();
  int32_t out[2], moved, used;
  float loss;
  unsigned char label[16];
  for (int ops = fuzz_u8(in) % 48; ops > 0 && in->at < in->size; ops--) {
    const int32_t count = qe_cache_count(c);
    switch (fuzz_u8(in) % 6) {
      case 0:
      case 1: {
        fuzz_floats(in, v, (size_t)dim);
        const int32_t len = (int32_t)fuzz_u32(in, 17) - 1;
        for (int32_t i = 0; i < len; i++) label[i] = fuzz_u8(in);
        const int32_t row = (int32_t)fuzz_u32(in, (uint32_t)count + 2) - 1;
        qe_cache_store(c, row, fuzz_u8(in) == 7 && row >= 0 ? NULL : v, fuzz_float(in), label, len, out);
        break;
      }
      case 2:
        qe_cache_remove(c, (int32_t)fuzz_u32(in, (uint32_t)count + 1), &moved);
        break;
      case 3: {
        const int32_t nk = (int32_t)fuzz_u32(in, 5) + 1;
        fuzz_floats(in, v, (size_t)dim * (size_t)(nk + 1));
        if (qe_lora_adapt(l, v, v + dim, nk, fuzz_float(in), fuzz_float(in), &loss) == QE_OK && !isfinite(loss)) FUZZ_ABORT();
        break;
      }
      case 4:
        fuzz_floats(in, v, (size_t)dim * 2);
        qe_cache_adapt(c, l, v, (int32_t)fuzz_u32(in, (uint32_t)count + 2) - 1, fuzz_u8(in) & 1 ? v + dim : NULL,
                       (int32_t)fuzz_u32(in, 6), fuzz_float(in), fuzz_float(in), 1, &loss, &used);
        break;
      default: {
        int32_t idx[3];
        float score[3];
        fuzz_floats(in, v, (size_t)dim);
        qe_cache_search(c, fuzz_u8(in) & 1 ? l : NULL, v, 3, 1, idx, score);
      }
    }
  }
  /* The adapter's weights stay finite whatever was accepted. */
  float *a = malloc((size_t)dim * rank * sizeof *a), *b = malloc((size_t)dim * rank * sizeof *b);
  if (!a || !b) FUZZ_ABORT();
  qe_lora_get_weights(l, a, b);
  for (int32_t i = 0; i < dim * rank; i++)
    if (!isfinite(a[i]) || !isfinite(b[i])) FUZZ_ABORT();
  check_lora_roundtrip(l);
  check_cache(c, l);
  if (export_out) {
    *export_n = (size_t)qe_cache_export_bytes(c);
    *export_out = malloc(*export_n);
    if (!*export_out || qe_cache_export(c, *export_out, (double)*export_n) != QE_OK) FUZZ_ABORT();
  }
  free(a);
  free(b);
  free(v);
  qe_cache_destroy(c);
  qe_lora_destroy(l);
}

static void code_search_equals_exact_scan(fuzz_input *in) {
  const int32_t dim = 1 + (int32_t)fuzz_u32(in, 40), n = 256 + (int32_t)fuzz_u32(in, 64);
  const int32_t k = 1 + (int32_t)fuzz_u32(in, 64);
  qe_pattern_cache *c = NULL;
  if (qe_cache_create(dim, n, &c) != QE_OK) FUZZ_ABORT();
  float base[8][40], row[40], q[40];
  for (int b = 0; b < 8; b++) fuzz_floats(in, base[b], (size_t)dim);
  for (int32_t i = 0; i < n; i++) {
    const uint8_t pick = fuzz_u8(in);
    const float scale = ldexpf(1.0f, (int)(fuzz_u8(in) % 61) - 30);
    for (int32_t j = 0; j < dim; j++) row[j] = base[pick % 8][j] * scale;
    if (pick & 8) row[fuzz_u32(in, (uint32_t)dim)] += fuzz_float(in) * 1e-6f * scale;
    int32_t out[2];
    const int status = qe_cache_store(c, -1, row, 0.5f, NULL, 0, out);
    if (status != QE_OK && status != QE_ERR_ARGUMENT) FUZZ_ABORT();
  }
  fuzz_floats(in, q, (size_t)dim);
  const size_t count = c->count;
  int32_t idx[64], want_idx[64];
  float score[64], want_score[64], q_inv;
  const int status = qe_cache_search(c, NULL, q, k, 0, idx, score);
  const int query_ok = qe_f32_row_inv_norms(1, (size_t)dim, q, (size_t)dim, &q_inv) == 0;
  if (status != (query_ok ? QE_OK : QE_ERR_ARGUMENT)) FUZZ_ABORT();
  if (status == QE_OK && count > 0) {
    void *ws = malloc(qe_f32_cosine_topk_workspace_bytes(1, (size_t)dim));
    if (!ws) FUZZ_ABORT();
    qe_f32_cosine_topk(1, count, (size_t)dim, (size_t)k, q, (size_t)dim, &q_inv, c->corpus, c->inv_norms, want_idx,
                       want_score, (size_t)k, ws);
    free(ws);
    if (memcmp(idx, want_idx, (size_t)k * sizeof *idx) != 0 || memcmp(score, want_score, (size_t)k * sizeof *score) != 0)
      FUZZ_ABORT();
  }
  qe_cache_destroy(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_input in = {data, size, 0};
  switch (fuzz_u8(&in) % 4) {
    case 0: {
      const unsigned char *rest = data + in.at;
      const size_t n = size - in.at;
      qe_micro_lora *l = NULL;
      qe_pattern_cache *c = NULL;
      if (qe_lora_import(rest, (double)n, &l) == QE_OK) {
        check_lora_roundtrip(l);
        qe_lora_destroy(l);
      } else if (l) {
        FUZZ_ABORT();
      }
      if (qe_cache_import(rest, (double)n, &c) == QE_OK) {
        check_cache(c, NULL);
        qe_cache_destroy(c);
      } else if (c) {
        FUZZ_ABORT();
      }
      break;
    }
    case 1:
      build_and_use(&in, NULL, NULL);
      break;
    case 3:
      code_search_equals_exact_scan(&in);
      break;
    default: {
      unsigned char *bytes = NULL;
      size_t n = 0;
      build_and_use(&in, &bytes, &n);
      if (!bytes) break;
      const size_t at = fuzz_u32(&in, (uint32_t)n);
      for (size_t i = at; i < n - 4 && in.at < in.size; i++) bytes[i] = fuzz_u8(&in);
      const uint32_t crc = qe_crc32c_update(0, bytes, n - 4);
      memcpy(bytes + n - 4, &crc, 4);
      qe_pattern_cache *c = NULL;
      if (qe_cache_import(bytes, (double)n, &c) == QE_OK) {
        check_cache(c, NULL);
        qe_cache_destroy(c);
      }
      free(bytes);
    }
  }
  return 0;
}
