/*
 * Fused cosine top-K: panel dot products and a streaming bounded heap.
 *
 * Queries are taken QE_SIMILARITY_QUERY_GROUP at a time and scaled to unit
 * length once into the workspace, so a score is one dot product times the
 * row's precomputed inverse norm. For a group the corpus is visited once,
 * a block of panels at a time (sized for L2), and every query of the group
 * passes over the block while it is cached.
 *
 * The microkernels: one query against one panel of 16 rows, per dimension d
 * one broadcast of q[d] and four vectors of rows into four accumulators; or
 * two queries against the panel, each row vector loaded once for both (eight
 * accumulators). Either way the accumulators, broadcasts and loads of a
 * step fit the 16 vector registers engines give wasm, so nothing spills. A
 * lone query is bound by memory bandwidth, and the panel layout makes the
 * corpus one contiguous stream; a batch is bound by arithmetic, and takes
 * its queries two at a time.
 *
 * Each query keeps a heap of its best min(k, n) results in its own output
 * row, the worst at the root, plus that worst score as a threshold. Rows are
 * visited in increasing index order, so a score equal to the threshold can
 * never win its tie and the test is a plain `score > threshold`; after the
 * first panels almost no score passes it. At the end the heap is sorted in
 * place: score descending, index ascending.
 */
#include "search/similarity.h"

#include <float.h>
#include <math.h>

#include "arena.h"
#include "simd.h"

/* Bytes of panels per block: the block stays in L2 while the group's
 * queries pass over it. */
#ifndef QE_SIM_BLOCK_BYTES
#  define QE_SIM_BLOCK_BYTES (256u * 1024u)
#endif

#define PANEL QE_CORPUS_PANEL

#define QE_SIM_INLINE static inline __attribute__((always_inline))

static size_t min_size(size_t a, size_t b) { return a < b ? a : b; }

/* ------------------------------------------------------------------ norms */

static float row_inv_norm(size_t dim, const float *x, int *bad) {
  const size_t full = dim / 4 * 4;
  v128_t acc = wasm_f32x4_splat(0.0f);
  for (size_t i = 0; i < full; i += 4) {
    const v128_t v = wasm_v128_load(x + i);
    acc = qe_f32x4_madd(v, v, acc);
  }
  float s = qe_f32x4_hsum(acc);
  for (size_t i = full; i < dim; i++) s += x[i] * x[i];
  /* The common case: a sum of squares well inside float's range (NaN fails too). */
  if (s >= 0x1p-60f && s <= FLT_MAX) return 1.0f / sqrtf(s);
  /* Tiny, huge or not finite: again in double, whose range holds any
   * float's square, to tell a zero vector from a small one and to reject
   * what float cannot represent. */
  double d = 0.0;
  for (size_t i = 0; i < dim; i++) d += (double)x[i] * (double)x[i];
  const double norm = sqrt(d);
  if (!(norm <= (double)FLT_MAX)) {
    *bad = 1;
    return 0.0f;
  }
  if (norm < (double)FLT_MIN) return 0.0f;
  return (float)(1.0 / norm);
}

size_t qe_f32_row_inv_norms(size_t rows, size_t dim, const float *x, size_t ldx,
                            float *inv_norms) {
  size_t bad_rows = 0;
  for (size_t r = 0; r < rows; r++) {
    int bad = 0;
    inv_norms[r] = row_inv_norm(dim, x + r * ldx, &bad);
    bad_rows += (size_t)bad;
  }
  return bad_rows;
}

/* ------------------------------------------------------- one-pair kernels */

float qe_f32_dot(size_t dim, const float *a, const float *b) {
  v128_t acc0 = wasm_f32x4_splat(0.0f), acc1 = acc0, acc2 = acc0, acc3 = acc0;
  size_t i = 0;
  for (; i + 16 <= dim; i += 16) {
    acc0 = qe_f32x4_madd(wasm_v128_load(a + i), wasm_v128_load(b + i), acc0);
    acc1 = qe_f32x4_madd(wasm_v128_load(a + i + 4), wasm_v128_load(b + i + 4), acc1);
    acc2 = qe_f32x4_madd(wasm_v128_load(a + i + 8), wasm_v128_load(b + i + 8), acc2);
    acc3 = qe_f32x4_madd(wasm_v128_load(a + i + 12), wasm_v128_load(b + i + 12), acc3);
  }
  for (; i + 4 <= dim; i += 4) acc0 = qe_f32x4_madd(wasm_v128_load(a + i), wasm_v128_load(b + i), acc0);
  float s = qe_f32x4_hsum(wasm_f32x4_add(wasm_f32x4_add(acc0, acc1), wasm_f32x4_add(acc2, acc3)));
  for (; i < dim; i++) s += a[i] * b[i];
  return s;
}

float qe_f32_l2_squared(size_t dim, const float *a, const float *b) {
  v128_t acc0 = wasm_f32x4_splat(0.0f), acc1 = acc0, acc2 = acc0, acc3 = acc0;
  size_t i = 0;
  for (; i + 16 <= dim; i += 16) {
    const v128_t d0 = wasm_f32x4_sub(wasm_v128_load(a + i), wasm_v128_load(b + i));
    const v128_t d1 = wasm_f32x4_sub(wasm_v128_load(a + i + 4), wasm_v128_load(b + i + 4));
    const v128_t d2 = wasm_f32x4_sub(wasm_v128_load(a + i + 8), wasm_v128_load(b + i + 8));
    const v128_t d3 = wasm_f32x4_sub(wasm_v128_load(a + i + 12), wasm_v128_load(b + i + 12));
    acc0 = qe_f32x4_madd(d0, d0, acc0);
    acc1 = qe_f32x4_madd(d1, d1, acc1);
    acc2 = qe_f32x4_madd(d2, d2, acc2);
    acc3 = qe_f32x4_madd(d3, d3, acc3);
  }
  for (; i + 4 <= dim; i += 4) {
    const v128_t d = wasm_f32x4_sub(wasm_v128_load(a + i), wasm_v128_load(b + i));
    acc0 = qe_f32x4_madd(d, d, acc0);
  }
  float s = qe_f32x4_hsum(wasm_f32x4_add(wasm_f32x4_add(acc0, acc1), wasm_f32x4_add(acc2, acc3)));
  for (; i < dim; i++) {
    const float d = a[i] - b[i];
    s += d * d;
  }
  return s;
}

int32_t qe_i8_u7_dot(size_t n, const int8_t *a, const uint8_t *b) {
#if QE_SIMD_LANES_NATIVE
  v128_t acc0 = wasm_i32x4_splat(0), acc1 = acc0;
#  if defined(__wasm_relaxed_simd__)
  /* One instruction per 16 pairs (x86: pmaddubsw + pmaddwd); b < 128, so the
   * result is the same exact integer on every engine. */
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    acc0 = wasm_i32x4_relaxed_dot_i8x16_i7x16_add(wasm_v128_load(a + i), wasm_v128_load(b + i), acc0);
    acc1 = wasm_i32x4_relaxed_dot_i8x16_i7x16_add(wasm_v128_load(a + i + 16), wasm_v128_load(b + i + 16), acc1);
  }
  if (i < n) acc0 = wasm_i32x4_relaxed_dot_i8x16_i7x16_add(wasm_v128_load(a + i), wasm_v128_load(b + i), acc0);
#  else
  for (size_t i = 0; i < n; i += 16) {
    const v128_t x = wasm_v128_load(a + i), y = wasm_v128_load(b + i);
    acc0 = wasm_i32x4_add(acc0, wasm_i32x4_dot_i16x8(wasm_i16x8_extend_low_i8x16(x), wasm_u16x8_extend_low_u8x16(y)));
    acc1 = wasm_i32x4_add(acc1, wasm_i32x4_dot_i16x8(wasm_i16x8_extend_high_i8x16(x), wasm_u16x8_extend_high_u8x16(y)));
  }
#  endif
  const v128_t acc = wasm_i32x4_add(acc0, acc1);
  return wasm_i32x4_extract_lane(acc, 0) + wasm_i32x4_extract_lane(acc, 1) + wasm_i32x4_extract_lane(acc, 2) +
         wasm_i32x4_extract_lane(acc, 3);
#else
  int32_t s = 0;
  for (size_t i = 0; i < n; i++) s += (int32_t)a[i] * b[i];
  return s;
#endif
}

int32_t qe_i8_i16_dot(size_t n, const int8_t *a, const int16_t *b) {
#if QE_SIMD_LANES_NATIVE
  v128_t acc0 = wasm_i32x4_splat(0), acc1 = acc0;
  for (size_t i = 0; i < n; i += 16) {
    const v128_t x = wasm_v128_load(a + i);
    acc0 = wasm_i32x4_add(acc0, wasm_i32x4_dot_i16x8(wasm_i16x8_extend_low_i8x16(x), wasm_v128_load(b + i)));
    acc1 = wasm_i32x4_add(acc1, wasm_i32x4_dot_i16x8(wasm_i16x8_extend_high_i8x16(x), wasm_v128_load(b + i + 8)));
  }
  const v128_t acc = wasm_i32x4_add(acc0, acc1);
  return wasm_i32x4_extract_lane(acc, 0) + wasm_i32x4_extract_lane(acc, 1) + wasm_i32x4_extract_lane(acc, 2) +
         wasm_i32x4_extract_lane(acc, 3);
#else
  int32_t s = 0;
  for (size_t i = 0; i < n; i++) s += (int32_t)a[i] * b[i];
  return s;
#endif
}

/* ------------------------------------------------------------------ top-K */

typedef struct {
  float *score;    /* heap of the best results so far, worst at [0] */
  int32_t *index;
  size_t capacity; /* min(k, n) */
  size_t count;
} topk_heap;

/* a ranks below b: lower score, or the same score and a higher index. */
QE_SIM_INLINE int ranks_below(float sa, int32_t ia, float sb, int32_t ib) {
  return sa < sb || (sa == sb && ia > ib);
}

static void heap_sift_down(float *s, int32_t *ix, size_t size, size_t pos) {
  const float sv = s[pos];
  const int32_t iv = ix[pos];
  for (;;) {
    size_t c = 2 * pos + 1;
    if (c >= size) break;
    if (c + 1 < size && ranks_below(s[c + 1], ix[c + 1], s[c], ix[c])) c++;
    if (!ranks_below(s[c], ix[c], sv, iv)) break;
    s[pos] = s[c];
    ix[pos] = ix[c];
    pos = c;
  }
  s[pos] = sv;
  ix[pos] = iv;
}

/* Called only with score > *threshold, the score a candidate must beat:
 * -inf until the heap is full, then the root's score. */
static void topk_offer(topk_heap *h, float *threshold, float score, int32_t index) {
  float *s = h->score;
  int32_t *ix = h->index;
  if (h->count < h->capacity) {
    size_t pos = h->count++;
    while (pos > 0) {
      const size_t parent = (pos - 1) / 2;
      if (!ranks_below(score, index, s[parent], ix[parent])) break;
      s[pos] = s[parent];
      ix[pos] = ix[parent];
      pos = parent;
    }
    s[pos] = score;
    ix[pos] = index;
    if (h->count == h->capacity) *threshold = s[0];
    return;
  }
  s[0] = score;
  ix[0] = index;
  heap_sift_down(s, ix, h->count, 0);
  *threshold = s[0];
}

/* Heap sort in place: the worst goes last each round, so the array ends best first. */
static void topk_finish(topk_heap *h, size_t k) {
  float *s = h->score;
  int32_t *ix = h->index;
  for (size_t m = h->count; m > 1; m--) {
    const float ts = s[0];
    const int32_t ti = ix[0];
    s[0] = s[m - 1];
    ix[0] = ix[m - 1];
    s[m - 1] = ts;
    ix[m - 1] = ti;
    heap_sift_down(s, ix, m - 1, 0);
  }
  for (size_t j = h->count; j < k; j++) {
    s[j] = 0.0f;
    ix[j] = -1;
  }
}

/* The cosine of a dot product of a unit query with a row: clamped to
 * [-1, 1] (rounding can step past 1 for a row equal to the query), NaN
 * (only from a corrupted corpus) taken as -1, and -0 as +0. */
QE_SIM_INLINE float cosine_of(float dot, float inv_norm) {
  const float s = dot * inv_norm;
  if (!(s >= -1.0f)) return -1.0f;
  return s > 1.0f ? 1.0f : s + 0.0f;
}

/* ------------------------------------------------------------ the layout */

void qe_f32_corpus_store_rows(size_t dim, float *corpus, size_t row0, size_t count,
                              const float *rows, size_t ldr) {
  for (size_t i = 0; i < count; i++) {
    const size_t r = row0 + i;
    float *dst = corpus + (r / PANEL) * dim * PANEL + r % PANEL;
    const float *src = rows + i * ldr;
    for (size_t d = 0; d < dim; d++) dst[d * PANEL] = src[d];
  }
}

void qe_f32_corpus_move_row(size_t dim, float *corpus, size_t from, size_t to) {
  const float *src = corpus + (from / PANEL) * dim * PANEL + from % PANEL;
  float *dst = corpus + (to / PANEL) * dim * PANEL + to % PANEL;
  for (size_t d = 0; d < dim; d++) dst[d * PANEL] = src[d * PANEL];
}

void qe_f32_corpus_clear_row(size_t dim, float *corpus, size_t r) {
  float *dst = corpus + (r / PANEL) * dim * PANEL + r % PANEL;
  for (size_t d = 0; d < dim; d++) dst[d * PANEL] = 0.0f;
}

void qe_f32_unit_query(size_t dim, const float *q, float inv, float *out) {
  size_t d = 0;
  for (; d + 4 <= dim; d += 4)
    wasm_v128_store(out + d, wasm_f32x4_mul(wasm_v128_load(q + d), wasm_f32x4_splat(inv)));
  for (; d < dim; d++) out[d] = q[d] * inv;
}

float qe_f32_corpus_cosine(size_t dim, const float *corpus, size_t row, const float *unit_q,
                           float inv_norm) {
  /* The panel's vector of four rows that holds `row`, computed as
   * panel_dots computes it; then the row's lane. */
  const float *p = corpus + (row / PANEL) * dim * PANEL + (row % PANEL) / 4 * 4;
  v128_t acc = wasm_f32x4_splat(0.0f);
  for (size_t d = 0; d < dim; d++, p += PANEL)
    acc = qe_f32x4_madd(wasm_v128_load32_splat(unit_q + d), wasm_v128_load(p), acc);
  float lanes[4];
  wasm_v128_store(lanes, acc);
  return cosine_of(lanes[row % 4], inv_norm);
}

void qe_f32_corpus_cosine4(size_t dim, const float *corpus, const int32_t *rows, const float *unit_q,
                           const float *inv_norms, float *out) {
  const float *p[4];
  for (size_t i = 0; i < 4; i++)
    p[i] = corpus + ((size_t)rows[i] / PANEL) * dim * PANEL + ((size_t)rows[i] % PANEL) / 4 * 4;
  v128_t a0 = wasm_f32x4_splat(0.0f), a1 = a0, a2 = a0, a3 = a0;
  for (size_t d = 0, o = 0; d < dim; d++, o += PANEL) {
    const v128_t s = wasm_v128_load32_splat(unit_q + d);
    a0 = qe_f32x4_madd(s, wasm_v128_load(p[0] + o), a0);
    a1 = qe_f32x4_madd(s, wasm_v128_load(p[1] + o), a1);
    a2 = qe_f32x4_madd(s, wasm_v128_load(p[2] + o), a2);
    a3 = qe_f32x4_madd(s, wasm_v128_load(p[3] + o), a3);
  }
  float lanes[16];
  wasm_v128_store(lanes, a0);
  wasm_v128_store(lanes + 4, a1);
  wasm_v128_store(lanes + 8, a2);
  wasm_v128_store(lanes + 12, a3);
  for (size_t i = 0; i < 4; i++) out[i] = cosine_of(lanes[4 * i + (size_t)rows[i] % 4], inv_norms[rows[i]]);
}

/* ----------------------------------------------------- the microkernel */

/* dots[j] = q . row j of the panel, j < PANEL; q a unit query of length dim. */
static void panel_dots(size_t dim, const float *q, const float *panel, float *dots) {
  v128_t acc[PANEL / 4];
  for (size_t j = 0; j < PANEL / 4; j++) acc[j] = wasm_f32x4_splat(0.0f);
  const float *p = panel;
  for (size_t d = 0; d < dim; d++, p += PANEL) {
    const v128_t s = wasm_v128_load32_splat(q + d);
    for (size_t j = 0; j < PANEL / 4; j++)
      acc[j] = qe_f32x4_madd(s, wasm_v128_load(p + 4 * j), acc[j]);
  }
  for (size_t j = 0; j < PANEL / 4; j++) wasm_v128_store(dots + 4 * j, acc[j]);
}

/* As panel_dots for two queries at once: each panel vector loaded serves both. */
static void panel_dots2(size_t dim, const float *q0, const float *q1, const float *panel,
                        float *dots0, float *dots1) {
  v128_t a[PANEL / 4], b[PANEL / 4];
  for (size_t j = 0; j < PANEL / 4; j++) a[j] = b[j] = wasm_f32x4_splat(0.0f);
  const float *p = panel;
  for (size_t d = 0; d < dim; d++, p += PANEL) {
    const v128_t s0 = wasm_v128_load32_splat(q0 + d), s1 = wasm_v128_load32_splat(q1 + d);
    for (size_t j = 0; j < PANEL / 4; j++) {
      const v128_t x = wasm_v128_load(p + 4 * j);
      a[j] = qe_f32x4_madd(s0, x, a[j]);
      b[j] = qe_f32x4_madd(s1, x, b[j]);
    }
  }
  for (size_t j = 0; j < PANEL / 4; j++) {
    wasm_v128_store(dots0 + 4 * j, a[j]);
    wasm_v128_store(dots1 + 4 * j, b[j]);
  }
}

/* Offers the scores of one panel (rows row0 ..) to one query. */
static void offer_panel(size_t n, const float *dots, topk_heap *h, float *thr,
                        const float *inv_norms, size_t row0) {
  const size_t rows = min_size(PANEL, n - row0);
  for (size_t j = 0; j < rows; j++) {
    const float s = cosine_of(dots[j], inv_norms[row0 + j]);
    if (s > *thr) topk_offer(h, thr, s, (int32_t)(row0 + j));
  }
}

/* One query (heap h, threshold *thr) against panels [p0, p1) of a corpus of n rows. */
static void scan_panels(size_t n, size_t dim, const float *q, topk_heap *h, float *thr,
                        const float *corpus, const float *inv_norms, size_t p0, size_t p1) {
  float dots[PANEL];
  for (size_t p = p0; p < p1; p++) {
    panel_dots(dim, q, corpus + p * dim * PANEL, dots);
    offer_panel(n, dots, h, thr, inv_norms, p * PANEL);
  }
}

/* Two queries against panels [p0, p1). */
static void scan_panels2(size_t n, size_t dim, const float *q0, const float *q1, topk_heap *h,
                         float *thr, const float *corpus, const float *inv_norms, size_t p0,
                         size_t p1) {
  float dots0[PANEL], dots1[PANEL];
  for (size_t p = p0; p < p1; p++) {
    panel_dots2(dim, q0, q1, corpus + p * dim * PANEL, dots0, dots1);
    offer_panel(n, dots0, &h[0], &thr[0], inv_norms, p * PANEL);
    offer_panel(n, dots1, &h[1], &thr[1], inv_norms, p * PANEL);
  }
}

/* ---------------------------------------------------------------- driver */

static size_t group_size(size_t nq) { return min_size(nq, QE_SIMILARITY_QUERY_GROUP); }

size_t qe_f32_cosine_topk_workspace_bytes(size_t nq, size_t dim) {
  const size_t g = group_size(nq);
  return qe_arena_round(g * dim * sizeof(float))  /* unit queries */
         + qe_arena_round(g * sizeof(topk_heap))  /* heaps */
         + qe_arena_round(g * sizeof(float));     /* thresholds */
}

void qe_f32_cosine_topk(size_t nq, size_t n, size_t dim, size_t k, const float *queries,
                        size_t ldq, const float *q_inv_norms, const float *corpus,
                        const float *inv_norms, int32_t *out_idx, float *out_score, size_t ldo,
                        void *workspace) {
  qe_f32_cosine_topk_panels(nq, n, dim, k, queries, ldq, q_inv_norms, corpus, inv_norms, 0,
                            (n + PANEL - 1) / PANEL, out_idx, out_score, ldo, workspace);
}

void qe_f32_cosine_topk_panels(size_t nq, size_t n, size_t dim, size_t k, const float *queries,
                               size_t ldq, const float *q_inv_norms, const float *corpus,
                               const float *inv_norms, size_t first_panel, size_t end_panel,
                               int32_t *out_idx, float *out_score, size_t ldo, void *workspace) {
  const size_t row0 = first_panel * PANEL, row1 = min_size(n, end_panel * PANEL);
  const size_t g = group_size(nq), capacity = min_size(k, row1 - row0);
  qe_arena_cursor cursor = {workspace, 0, qe_f32_cosine_topk_workspace_bytes(nq, dim)};
  float *qn = qe_arena_take(&cursor, g * dim * sizeof(float));
  topk_heap *heaps = qe_arena_take(&cursor, g * sizeof(topk_heap));
  float *thr = qe_arena_take(&cursor, g * sizeof(float));

  size_t block = QE_SIM_BLOCK_BYTES / (PANEL * dim * sizeof(float));
  if (block < 1) block = 1;

  for (size_t g0 = 0; g0 < nq; g0 += g) {
    const size_t gq = min_size(g, nq - g0);
    for (size_t i = 0; i < gq; i++) {
      qe_f32_unit_query(dim, queries + (g0 + i) * ldq, q_inv_norms[g0 + i], qn + i * dim);
      heaps[i] = (topk_heap){out_score + (g0 + i) * ldo, out_idx + (g0 + i) * ldo, capacity, 0};
      thr[i] = -INFINITY;
    }
    for (size_t p0 = first_panel; p0 < end_panel; p0 += block) {
      const size_t p1 = min_size(end_panel, p0 + block);
      size_t i = 0;
      for (; i + 2 <= gq; i += 2)
        scan_panels2(n, dim, qn + i * dim, qn + (i + 1) * dim, &heaps[i], &thr[i], corpus,
                     inv_norms, p0, p1);
      for (; i < gq; i++)
        scan_panels(n, dim, qn + i * dim, &heaps[i], &thr[i], corpus, inv_norms, p0, p1);
    }
    for (size_t i = 0; i < gq; i++) topk_finish(&heaps[i], k);
  }
}

void qe_f32_topk_merge(size_t nq, size_t k, size_t parts, const int32_t *part_idx,
                       const float *part_score, int32_t *out_idx, float *out_score, size_t ldo) {
  /* Each part lists, per query, its best results first (index -1 past its
   * last); the merge takes the best head k times. Parts cover increasing
   * row ranges, so on equal scores the earlier part holds the lower index. */
  for (size_t i = 0; i < nq; i++) {
    size_t at[QE_SIMILARITY_MAX_PARTS] = {0};
    for (size_t j = 0; j < k; j++) {
      size_t best = parts;
      for (size_t p = 0; p < parts; p++) {
        if (at[p] >= k) continue;
        const size_t e = (p * nq + i) * k + at[p];
        if (part_idx[e] < 0) continue;
        if (best == parts) {
          best = p;
          continue;
        }
        const size_t b = (best * nq + i) * k + at[best];
        if (ranks_below(part_score[b], part_idx[b], part_score[e], part_idx[e])) best = p;
      }
      if (best == parts) {
        out_idx[i * ldo + j] = -1;
        out_score[i * ldo + j] = 0.0f;
        continue;
      }
      const size_t e = (best * nq + i) * k + at[best]++;
      out_idx[i * ldo + j] = part_idx[e];
      out_score[i * ldo + j] = part_score[e];
    }
  }
}
