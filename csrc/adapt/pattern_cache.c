/*
 * The pattern cache (see pattern_cache.h). Search is the exact cosine top-K
 * of csrc/search/similarity.c on the cache's corpus: no score matrix, and
 * working memory that does not grow with the cache.
 *
 * Byte format, version 1, little-endian:
 *   0  u32 magic "QEPC"   4  u32 version   8  u64 total bytes
 *   16 u32 dim            20 u32 count     24 u32 max_patterns   28 u32 zero
 *   32 u64 clock
 *   40 per pattern, in row order: f32 quality, u32 hits, u64 last use,
 *      u32 label length, the label, zero bytes to a multiple of 4,
 *      dim f32 embedding
 *   end-4 u32 CRC32C of every byte before it
 */
#include "adapt/pattern_cache.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "adapt/bytes.h"
#include "adapt/crc32c.h"
#include "arena.h"
#include "qe_api.h"
#include "search/similarity.h"
#include "simd.h"

#define CACHE_MAGIC 0x43504551u /* "QEPC" */

/* Code range of the rows: the relaxed-SIMD search sums four products of a
 * row code by a 7-bit query code in one int16 lane (see code_dots), which
 * |code| <= 31 keeps exact (4 * 2 * 31 * 127 < 2^15); the int16-query
 * search takes full int8. */
#if defined(__wasm_relaxed_simd__)
#  define ROW_CODE_MAX 31
#else
#  define ROW_CODE_MAX 127
#endif
#define CACHE_VERSION 1u
#define CACHE_HEADER 40u

qe_pattern_cache *qe_pattern_cache_create(size_t dim, size_t max_patterns) {
  qe_pattern_cache *c = qe_handle_new(QE_HANDLE_CACHE, QE_PATTERN_CACHE_LAYOUT, sizeof *c);
  if (!c) return NULL;
  c->dim = dim;
  c->ldc = (dim + 15) / 16 * 16;
  c->max_patterns = max_patterns;
  return c;
}

static void free_labels(qe_pattern_cache *c) {
  for (size_t i = 0; i < c->count; i++) {
    free(c->label[i]);
    c->label[i] = NULL;
    c->label_len[i] = 0;
  }
}

void qe_pattern_cache_clear(qe_pattern_cache *c) {
  free_labels(c);
  c->count = 0;
  c->clock = 0;
}

void qe_pattern_cache_destroy(qe_pattern_cache *c) {
  if (!c) return;
  free_labels(c);
  free(c->corpus);
  free(c->inv_norms);
  free(c->quality);
  free(c->hits);
  free(c->last_use);
  free(c->label);
  free(c->label_len);
  free(c->codes);
  free(c->code_w);
  free(c->code_err);
  free(c->code_sum);
  qe_handle_free(c);
}

/* A larger copy of a block; the old one is freed only once the copy exists. */
static void *grow_block(void *old, size_t old_bytes, size_t new_bytes) {
  void *p = malloc(new_bytes);
  if (!p) return NULL;
  if (old) memcpy(p, old, old_bytes);
  free(old);
  return p;
}

/* Room for at least `need` rows. Returns 0, or -1 when out of memory (the
 * cache is unchanged then: each array is grown into a fresh block). */
static int reserve(qe_pattern_cache *c, size_t need) {
  if (need <= c->capacity) return 0;
  const size_t limit = (c->max_patterns + QE_CORPUS_PANEL - 1) / QE_CORPUS_PANEL * QE_CORPUS_PANEL;
  size_t cap = c->capacity ? c->capacity * 2 : 4 * QE_CORPUS_PANEL;
  while (cap < need) cap *= 2;
  if (cap > limit) cap = limit;
  float *corpus = grow_block(c->corpus, c->capacity * c->dim * sizeof(float), cap * c->dim * sizeof(float));
  if (!corpus) return -1;
  c->corpus = corpus;
#define GROW(field, type)                                   \
  do {                                                      \
    type *p = grow_block(c->field, c->capacity * sizeof(type), cap * sizeof(type)); \
    if (!p) return -1;                                      \
    c->field = p;                                           \
  } while (0)
  GROW(inv_norms, float);
  GROW(quality, float);
  GROW(hits, uint32_t);
  GROW(last_use, uint64_t);
  GROW(label, unsigned char *);
  GROW(label_len, uint32_t);
  GROW(code_w, float);
  GROW(code_err, float);
  GROW(code_sum, int32_t);
#undef GROW
  int8_t *codes = grow_block(c->codes, c->capacity * c->ldc, cap * c->ldc);
  if (!codes) return -1;
  c->codes = codes;
  for (size_t i = c->capacity; i < cap; i++) {
    c->label[i] = NULL;
    c->label_len[i] = 0;
  }
  /* The last panel's rows past count are read by the kernel (and ignored). */
  memset(c->corpus + c->capacity * c->dim, 0, (cap - c->capacity) * c->dim * sizeof(float));
  c->capacity = cap;
  return 0;
}

/*
 * The int8 code of a row: codes = round(row / scale), scale = max |row| /
 * ROW_CODE_MAX, and the residual's norm relative to the row's, rounded up, so that
 * the search's bound holds (see search_quantized).
 */
static void encode_row(qe_pattern_cache *c, size_t r, const float *x, float inv_norm) {
  int8_t *code = c->codes + r * c->ldc;
  memset(code, 0, c->ldc);
  double m = 0.0;
  for (size_t d = 0; d < c->dim; d++) {
    const double a = fabs((double)x[d]);
    if (a > m) m = a;
  }
  if (m == 0.0 || inv_norm == 0.0f) {
    c->code_w[r] = 0.0f;
    c->code_err[r] = 0.0f;
    c->code_sum[r] = 0;
    return;
  }
  const double scale = m / (double)ROW_CODE_MAX;
  double err = 0.0;
  int32_t sum = 0;
  for (size_t d = 0; d < c->dim; d++) {
    const double v = (double)x[d] / scale;
    const double q = rint(v);
    const int8_t cq = (int8_t)(q > ROW_CODE_MAX ? ROW_CODE_MAX : q < -ROW_CODE_MAX ? -ROW_CODE_MAX : q);
    code[d] = cq;
    sum += cq;
    const double e = (double)x[d] - scale * cq;
    err += e * e;
  }
  c->code_w[r] = (float)(scale * (double)inv_norm);
  c->code_err[r] = (float)(sqrt(err) * (double)inv_norm * (1.0 + 1e-5)) + FLT_MIN;
  c->code_sum[r] = sum;
}

size_t qe_pattern_cache_victim(const qe_pattern_cache *c) {
  size_t v = 0;
  for (size_t i = 1; i < c->count; i++) {
    if (c->quality[i] < c->quality[v] ||
        (c->quality[i] == c->quality[v] && c->last_use[i] < c->last_use[v]))
      v = i;
  }
  return v;
}

static int set_label(qe_pattern_cache *c, size_t row, const unsigned char *label, size_t len) {
  unsigned char *copy = NULL;
  if (len > 0) {
    copy = malloc(len);
    if (!copy) return -1;
    memcpy(copy, label, len);
  }
  free(c->label[row]);
  c->label[row] = copy;
  c->label_len[row] = (uint32_t)len;
  return 0;
}

int qe_pattern_cache_store(qe_pattern_cache *c, int64_t row, const float *embedding,
                           float quality, const unsigned char *label, size_t label_len,
                           int32_t *out) {
  if (!isfinite(quality)) return QE_ERR_ARGUMENT;
  if (label_len != SIZE_MAX && label_len > QE_CACHE_MAX_LABEL) return QE_ERR_ARGUMENT;
  if (row >= (int64_t)c->count) return QE_ERR_INDEX;
  float inv_norm = 0.0f;
  if (embedding && qe_f32_row_inv_norms(1, c->dim, embedding, c->dim, &inv_norm) != 0)
    return QE_ERR_ARGUMENT;
  int evicted = 0;
  size_t r;
  if (row >= 0) {
    r = (size_t)row;
  } else if (c->count < c->max_patterns) {
    if (!embedding) return QE_ERR_NULL;
    if (reserve(c, c->count + 1) != 0) return QE_ERR_NO_MEMORY;
    r = c->count;
    c->label[r] = NULL;
    c->label_len[r] = 0;
  } else {
    if (!embedding) return QE_ERR_NULL;
    r = qe_pattern_cache_victim(c);
    evicted = 1;
  }
  /* The label first: the only step that can fail, so a failed store changes nothing. */
  if (label_len != SIZE_MAX && set_label(c, r, label, label_len) != 0) return QE_ERR_NO_MEMORY;
  if (row < 0 && !evicted) c->count++;
  if (embedding) {
    qe_f32_corpus_store_rows(c->dim, c->corpus, r, 1, embedding, c->dim);
    c->inv_norms[r] = inv_norm;
    encode_row(c, r, embedding, inv_norm);
  }
  c->quality[r] = quality;
  if (row < 0) c->hits[r] = 0;
  c->last_use[r] = ++c->clock;
  out[0] = (int32_t)r;
  out[1] = evicted;
  return QE_OK;
}

void qe_pattern_cache_remove(qe_pattern_cache *c, size_t row, int32_t *moved_from) {
  const size_t last = c->count - 1;
  free(c->label[row]);
  if (row != last) {
    qe_f32_corpus_move_row(c->dim, c->corpus, last, row);
    c->inv_norms[row] = c->inv_norms[last];
    c->quality[row] = c->quality[last];
    c->hits[row] = c->hits[last];
    c->last_use[row] = c->last_use[last];
    c->label[row] = c->label[last];
    c->label_len[row] = c->label_len[last];
    memcpy(c->codes + row * c->ldc, c->codes + last * c->ldc, c->ldc);
    c->code_w[row] = c->code_w[last];
    c->code_err[row] = c->code_err[last];
    c->code_sum[row] = c->code_sum[last];
    *moved_from = (int32_t)last;
  } else {
    *moved_from = -1;
  }
  c->label[last] = NULL;
  c->label_len[last] = 0;
  c->count = last;
}

void qe_pattern_cache_row(const qe_pattern_cache *c, size_t row, float *out) {
  const float *src = c->corpus + (row / QE_CORPUS_PANEL) * c->dim * QE_CORPUS_PANEL + row % QE_CORPUS_PANEL;
  for (size_t d = 0; d < c->dim; d++) out[d] = src[d * QE_CORPUS_PANEL];
}

/* ---------------------------------------------------------------- search */

static size_t quantized_k_ok(const qe_pattern_cache *c, size_t k) {
  return c->count >= QE_CACHE_QUANTIZED_MIN && k <= QE_CACHE_QUANTIZED_MAX_K;
}

size_t qe_pattern_cache_search_workspace_bytes(const qe_pattern_cache *c, size_t k) {
  const size_t n = c->count > 0 ? c->count : 1;
  return qe_arena_round(c->dim * sizeof(float)) /* the adapted query */
         + qe_arena_round(c->dim * sizeof(float)) /* the unit query */
         + qe_arena_round(c->ldc * sizeof(int16_t)) /* its codes */
         + qe_arena_round(n * sizeof(float)) + qe_arena_round(n * sizeof(int32_t)) /* code scores, candidates */
         + qe_arena_round(k * sizeof(float)) + qe_arena_round(k * sizeof(int32_t)) /* k best lower ends */
         + qe_f32_cosine_topk_workspace_bytes(1, c->dim);
}

size_t qe_pattern_cache_last_candidates(const qe_pattern_cache *c) { return c->last_candidates; }

/*
 * Code dot products <qc, codes[r]> for rows [0, n), four rows per pass so
 * each load of the query serves four. The relaxed-SIMD build multiplies
 * row codes (|code| <= 31) by a 7-bit query (qc + 64 in [1, 127], the
 * offset taken out with the row's code sum) with
 * i16x8.relaxed_dot_i8x16_i7x16_s, exact and deterministic for such
 * operands (the 7-bit operand's top bit is clear); the SIMD128 build
 * multiplies int8 codes by an int16 query with i32x4.dot_i16x8_s. Sums are exact in int32 (the query's
 * range is chosen for that).
 */
#if defined(__wasm_relaxed_simd__)
#  define QUERY_CODE_MAX 63
/* <q7, x> over 64 elements (four 16-element chunks) into acc: pairs of
 * products by i16x8.relaxed_dot_i8x16_i7x16_s, four of them summed in int16
 * (|sum| <= 4 * 2 * 31 * 127 = 31496), then widened and added in int32. */
#  define DOT64(acc, x, q0, q1, q2, q3)                                                        \
    acc = wasm_i32x4_add(                                                                      \
        acc, wasm_i32x4_extadd_pairwise_i16x8(wasm_i16x8_add(                                  \
                 wasm_i16x8_add(wasm_i16x8_relaxed_dot_i8x16_i7x16(wasm_v128_load(x), q0),      \
                                wasm_i16x8_relaxed_dot_i8x16_i7x16(wasm_v128_load((x) + 16), q1)), \
                 wasm_i16x8_add(wasm_i16x8_relaxed_dot_i8x16_i7x16(wasm_v128_load((x) + 32), q2), \
                                wasm_i16x8_relaxed_dot_i8x16_i7x16(wasm_v128_load((x) + 48), q3)))))

static void code_dots(const qe_pattern_cache *c, size_t n, const int16_t *qc16, float *out, float t) {
  const size_t ldc = c->ldc, ld64 = ldc / 64 * 64;
  const int8_t *q7 = (const int8_t *)qc16; /* the 7-bit query, ldc bytes */
  size_t r = 0;
  for (; r + 4 <= n; r += 4) {
    const int8_t *x = c->codes + r * ldc;
    v128_t a0 = wasm_i32x4_splat(0), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i < ld64; i += 64) {
      const v128_t q0 = wasm_v128_load(q7 + i), q1 = wasm_v128_load(q7 + i + 16);
      const v128_t q2 = wasm_v128_load(q7 + i + 32), q3 = wasm_v128_load(q7 + i + 48);
      DOT64(a0, x + i, q0, q1, q2, q3);
      DOT64(a1, x + ldc + i, q0, q1, q2, q3);
      DOT64(a2, x + 2 * ldc + i, q0, q1, q2, q3);
      DOT64(a3, x + 3 * ldc + i, q0, q1, q2, q3);
    }
    for (; i < ldc; i += 16) {
      const v128_t q = wasm_v128_load(q7 + i);
      a0 = wasm_i32x4_relaxed_dot_i8x16_i7x16_add(wasm_v128_load(x + i), q, a0);
      a1 = wasm_i32x4_relaxed_dot_i8x16_i7x16_add(wasm_v128_load(x + ldc + i), q, a1);
      a2 = wasm_i32x4_relaxed_dot_i8x16_i7x16_add(wasm_v128_load(x + 2 * ldc + i), q, a2);
      a3 = wasm_i32x4_relaxed_dot_i8x16_i7x16_add(wasm_v128_load(x + 3 * ldc + i), q, a3);
    }
    /* Horizontal sums of the four: two rounds of lane shuffles. */
    const v128_t s01 = wasm_i32x4_add(wasm_i32x4_shuffle(a0, a1, 0, 2, 4, 6), wasm_i32x4_shuffle(a0, a1, 1, 3, 5, 7));
    const v128_t s23 = wasm_i32x4_add(wasm_i32x4_shuffle(a2, a3, 0, 2, 4, 6), wasm_i32x4_shuffle(a2, a3, 1, 3, 5, 7));
    v128_t s = wasm_i32x4_add(wasm_i32x4_shuffle(s01, s23, 0, 2, 4, 6), wasm_i32x4_shuffle(s01, s23, 1, 3, 5, 7));
    s = wasm_i32x4_sub(s, wasm_i32x4_shl(wasm_v128_load(c->code_sum + r), 6));
    wasm_v128_store(out + r, wasm_f32x4_mul(wasm_f32x4_mul(wasm_f32x4_convert_i32x4(s), wasm_f32x4_splat(t)),
                                            wasm_v128_load(c->code_w + r)));
  }
  for (; r < n; r++) {
    const int8_t *x = c->codes + r * ldc;
    v128_t a = wasm_i32x4_splat(0);
    for (size_t i = 0; i < ldc; i += 16)
      a = wasm_i32x4_relaxed_dot_i8x16_i7x16_add(wasm_v128_load(x + i), wasm_v128_load(q7 + i), a);
    const int32_t s = wasm_i32x4_extract_lane(a, 0) + wasm_i32x4_extract_lane(a, 1) +
                      wasm_i32x4_extract_lane(a, 2) + wasm_i32x4_extract_lane(a, 3) - 64 * c->code_sum[r];
    out[r] = (float)s * t * c->code_w[r];
  }
}
#else
#  define QUERY_CODE_MAX 16383
static void code_dots(const qe_pattern_cache *c, size_t n, const int16_t *qc, float *out, float t) {
  for (size_t r = 0; r < n; r++)
    out[r] = (float)qe_i8_i16_dot(c->ldc, c->codes + r * c->ldc, qc) * t * c->code_w[r];
}
#endif

/* The k best (score, row) so far, best first, ties to the lower row: as
 * qe_f32_cosine_topk ranks them. Returns the new count. */
static size_t best_insert(float *score, int32_t *idx, size_t count, size_t k, float s, int32_t row) {
  size_t pos = count < k ? count : k;
  if (pos == k && !(s > score[k - 1] || (s == score[k - 1] && row < idx[k - 1]))) return count;
  while (pos > 0 && (s > score[pos - 1] || (s == score[pos - 1] && row < idx[pos - 1]))) {
    if (pos < k) {
      score[pos] = score[pos - 1];
      idx[pos] = idx[pos - 1];
    }
    pos--;
  }
  score[pos] = s;
  idx[pos] = row;
  return count < k ? count + 1 : k;
}

/*
 * The exact top-k through int8 codes. For the unit query u = t qc + e_q and
 * a row x = s c + e_x, with score(x) = <u, x> / |x|:
 *   score = t s <qc, c> / |x| + t <qc, e_x> / |x| + <e_q, x> / |x|,
 * and by Cauchy-Schwarz the last two terms are at most
 *   |t qc| code_err[x] + |e_q|                                  (bound_x)
 * in size. The float32 score the exact kernel computes differs from the
 * real one by at most (dim + 8) float epsilons (sequential sums of products
 * of two unit-norm vectors), taken in too. So each row's exact float32 score
 * lies in [a_x - b_x, a_x + b_x] with a_x its code score. The k-th largest
 * lower end L is a floor under the k-th best exact score; a row whose upper
 * end is below L cannot be in the top k. The others are scored exactly, in
 * row order, with the exact kernel's arithmetic and tie rule: the result is
 * the full scan's.
 */
static void search_quantized(qe_pattern_cache *c, const float *u, size_t k, int32_t *out_idx,
                             float *out_score, qe_arena_cursor *cur) {
  const size_t n = c->count, dim = c->dim;
  int16_t *qc = qe_arena_take(cur, c->ldc * sizeof(int16_t));
  float *approx = qe_arena_take(cur, n * sizeof(float));
  float *lo = qe_arena_take(cur, k * sizeof(float));
  int32_t *lo_idx = qe_arena_take(cur, k * sizeof(int32_t));
  int32_t *cand = qe_arena_take(cur, n * sizeof(int32_t));

  /* The query's code: qc = round(u / t), t = max |u| / QUERY_CODE_MAX, where
   * QUERY_CODE_MAX * 127 * ldc stays inside int32. */
  double m = 0.0;
  for (size_t d = 0; d < dim; d++) {
    const double a = fabs((double)u[d]);
    if (a > m) m = a;
  }
  double qmax = QUERY_CODE_MAX;
  const double fit = 2147483647.0 / (127.0 * (double)c->ldc + 1.0) - 1.0;
  if (qmax > fit) qmax = floor(fit);
  const double t = m > 0.0 ? m / qmax : 1.0;
  double eq = 0.0, nq = 0.0;
#if defined(__wasm_relaxed_simd__)
  int8_t *q7 = (int8_t *)qc;
  memset(q7, 64, c->ldc);
#else
  memset(qc, 0, c->ldc * sizeof(int16_t));
#endif
  for (size_t d = 0; d < dim; d++) {
    const double q = rint((double)u[d] / t), e = (double)u[d] - t * q;
#if defined(__wasm_relaxed_simd__)
    q7[d] = (int8_t)(q + 64.0);
#else
    qc[d] = (int16_t)q;
#endif
    eq += e * e;
    nq += (t * q) * (t * q);
  }
  const float nq_f = (float)(sqrt(nq) * (1.0 + 1e-5));
  const float slack = (float)(sqrt(eq) * (1.0 + 1e-5) + ((double)dim + 8.0) * 1.2e-7 * (1.0 + sqrt(nq)) + 1e-6);

  code_dots(c, n, qc, approx, (float)t);

  /* The k largest lower ends a - b, then the rows whose upper end a + b
   * reaches the k-th of them, in row order; four rows per step where the
   * build has SIMD (most rows are passed over on one comparison). */
  size_t have = 0, r = 0;
  float thr = -INFINITY; /* lo[k - 1] once k are in */
#if QE_SIMD_LANES_NATIVE
  const v128_t vnq = wasm_f32x4_splat(nq_f), vslack = wasm_f32x4_splat(slack);
  for (; r + 4 <= n; r += 4) {
    const v128_t b = wasm_f32x4_add(wasm_f32x4_mul(vnq, wasm_v128_load(c->code_err + r)), vslack);
    const v128_t l = wasm_f32x4_sub(wasm_v128_load(approx + r), b);
    if (have == k && !wasm_i32x4_bitmask(wasm_f32x4_gt(l, wasm_f32x4_splat(thr)))) continue;
    float ls[4];
    wasm_v128_store(ls, l);
    for (size_t j = 0; j < 4; j++) {
      if (have < k || ls[j] > thr) have = best_insert(lo, lo_idx, have, k, ls[j], (int32_t)(r + j));
      if (have == k) thr = lo[k - 1];
    }
  }
#endif
  for (; r < n; r++) {
    const float l = approx[r] - (nq_f * c->code_err[r] + slack);
    if (have < k || l > thr) have = best_insert(lo, lo_idx, have, k, l, (int32_t)r);
    if (have == k) thr = lo[k - 1];
  }
  const float floor_k = lo[k - 1];

  size_t nc = 0;
  r = 0;
#if QE_SIMD_LANES_NATIVE
  const v128_t vfloor = wasm_f32x4_splat(floor_k);
  for (; r + 4 <= n; r += 4) {
    const v128_t b = wasm_f32x4_add(wasm_f32x4_mul(vnq, wasm_v128_load(c->code_err + r)), vslack);
    const int mask = wasm_i32x4_bitmask(wasm_f32x4_ge(wasm_f32x4_add(wasm_v128_load(approx + r), b), vfloor));
    for (int j = 0; j < 4; j++)
      if (mask & (1 << j)) cand[nc++] = (int32_t)(r + (size_t)j);
  }
#endif
  for (; r < n; r++) {
    if (approx[r] + (nq_f * c->code_err[r] + slack) >= floor_k) cand[nc++] = (int32_t)r;
  }
  float four[4];
  size_t got = 0;
  for (size_t i = 0; i < nc; i += 4) {
    if (i + 4 <= nc) {
      qe_f32_corpus_cosine4(dim, c->corpus, cand + i, u, c->inv_norms, four);
    } else {
      for (size_t j = i; j < nc; j++) four[j - i] = qe_f32_corpus_cosine(dim, c->corpus, (size_t)cand[j], u, c->inv_norms[cand[j]]);
    }
    for (size_t j = i; j < nc && j < i + 4; j++) got = best_insert(out_score, out_idx, got, k, four[j - i], cand[j]);
  }
  c->last_candidates = nc;
}

int qe_pattern_cache_search(qe_pattern_cache *c, const qe_micro_lora *lora, const float *x,
                            size_t k, int touch, int32_t *out_idx, float *out_score,
                            void *workspace) {
  qe_arena_cursor cur = {workspace, 0, qe_pattern_cache_search_workspace_bytes(c, k)};
  float *q = qe_arena_take(&cur, c->dim * sizeof(float));
  float *u = qe_arena_take(&cur, c->dim * sizeof(float));
  void *topk_ws = qe_arena_take(&cur, qe_f32_cosine_topk_workspace_bytes(1, c->dim));
  if (lora) {
    if (qe_micro_lora_forward(lora, x, q) != 0) return QE_ERR_ARGUMENT;
  } else {
    memcpy(q, x, c->dim * sizeof(float));
  }
  float q_inv;
  if (qe_f32_row_inv_norms(1, c->dim, q, c->dim, &q_inv) != 0) return QE_ERR_ARGUMENT;
  c->last_candidates = 0;
  if (c->count == 0) {
    for (size_t j = 0; j < k; j++) {
      out_idx[j] = -1;
      out_score[j] = 0.0f;
    }
    return QE_OK;
  }
  if (quantized_k_ok(c, k)) {
    qe_f32_unit_query(c->dim, q, q_inv, u);
    search_quantized(c, u, k, out_idx, out_score, &cur);
  } else {
    qe_f32_cosine_topk(1, c->count, c->dim, k, q, c->dim, &q_inv, c->corpus, c->inv_norms, out_idx,
                       out_score, k, topk_ws);
  }
  if (touch) {
    const uint64_t now = ++c->clock;
    for (size_t j = 0; j < k && out_idx[j] >= 0; j++) {
      c->hits[out_idx[j]]++;
      c->last_use[out_idx[j]] = now;
    }
  }
  return QE_OK;
}

/* --------------------------------------------------------- byte format */

static size_t pad4(size_t n) { return (n + 3) & ~(size_t)3; }

size_t qe_pattern_cache_export_bytes(const qe_pattern_cache *c) {
  size_t total = CACHE_HEADER + 4;
  for (size_t i = 0; i < c->count; i++) total += 20 + pad4(c->label_len[i]) + c->dim * sizeof(float);
  return total;
}

void qe_pattern_cache_export(const qe_pattern_cache *c, unsigned char *out) {
  const size_t total = qe_pattern_cache_export_bytes(c);
  qe_byte_writer w = {out, total};
  qe_put_u32(&w, CACHE_MAGIC);
  qe_put_u32(&w, CACHE_VERSION);
  qe_put_u64(&w, total);
  qe_put_u32(&w, (uint32_t)c->dim);
  qe_put_u32(&w, (uint32_t)c->count);
  qe_put_u32(&w, (uint32_t)c->max_patterns);
  qe_put_u32(&w, 0);
  qe_put_u64(&w, c->clock);
  const unsigned char zeros[4] = {0, 0, 0, 0};
  for (size_t i = 0; i < c->count; i++) {
    qe_put_f32(&w, c->quality[i]);
    qe_put_u32(&w, c->hits[i]);
    qe_put_u64(&w, c->last_use[i]);
    qe_put_u32(&w, c->label_len[i]);
    if (c->label_len[i]) qe_put(&w, c->label[i], c->label_len[i]);
    qe_put(&w, zeros, pad4(c->label_len[i]) - c->label_len[i]);
    const float *src = c->corpus + (i / QE_CORPUS_PANEL) * c->dim * QE_CORPUS_PANEL + i % QE_CORPUS_PANEL;
    for (size_t d = 0; d < c->dim; d++) qe_put_f32(&w, src[d * QE_CORPUS_PANEL]);
  }
  qe_put_u32(&w, qe_crc32c_update(0, out, total - 4));
}

int qe_pattern_cache_import(const unsigned char *bytes, size_t n, qe_pattern_cache **out) {
  *out = NULL;
  const int env = qe_adapt_check_envelope(bytes, n, CACHE_MAGIC, CACHE_VERSION, CACHE_HEADER + 4);
  if (env != QE_OK) return env;
  qe_byte_reader r = {bytes + 16, n - 20, 0}; /* the header's rest and the patterns, not the CRC */
  const uint32_t dim = qe_get_u32(&r), count = qe_get_u32(&r), max_patterns = qe_get_u32(&r);
  qe_get_u32(&r);
  const uint64_t clock = qe_get_u64(&r);
  if (dim < 1 || dim > QE_LORA_MAX_DIM || max_patterns < 1 || max_patterns > QE_CACHE_MAX_PATTERNS ||
      count > max_patterns || (uint64_t)count * (20 + dim * sizeof(float)) > n)
    return QE_ERR_FORMAT;
  qe_pattern_cache *c = qe_pattern_cache_create(dim, max_patterns);
  if (!c) return QE_ERR_NO_MEMORY;
  float *row = malloc(dim * sizeof(float));
  int status = row && reserve(c, count > 0 ? count : 1) == 0 ? QE_OK : QE_ERR_NO_MEMORY;
  for (uint32_t i = 0; i < count && status == QE_OK; i++) {
    const float quality = qe_get_f32(&r);
    const uint32_t hits = qe_get_u32(&r);
    const uint64_t last_use = qe_get_u64(&r);
    const uint32_t len = qe_get_u32(&r);
    if (r.short_read || len > QE_CACHE_MAX_LABEL || pad4(len) > r.left || !isfinite(quality) ||
        last_use > clock) {
      status = QE_ERR_FORMAT;
      break;
    }
    if (set_label(c, i, r.at, len) != 0) {
      status = QE_ERR_NO_MEMORY;
      break;
    }
    c->count = i + 1; /* from here the row's label is the cache's to free */
    r.at += pad4(len);
    r.left -= pad4(len);
    qe_get(&r, row, dim * sizeof(float));
    float inv_norm;
    if (r.short_read || qe_f32_row_inv_norms(1, dim, row, dim, &inv_norm) != 0) {
      status = QE_ERR_FORMAT;
      break;
    }
    qe_f32_corpus_store_rows(dim, c->corpus, i, 1, row, dim);
    c->inv_norms[i] = inv_norm;
    encode_row(c, i, row, inv_norm);
    c->quality[i] = quality;
    c->hits[i] = hits;
    c->last_use[i] = last_use;
  }
  if (status == QE_OK && r.left != 0) status = QE_ERR_FORMAT; /* bytes left over */
  free(row);
  if (status != QE_OK) {
    qe_pattern_cache_destroy(c);
    return status;
  }
  c->clock = clock;
  *out = c;
  return QE_OK;
}
