/*
 * FlashAttention forward pass, one (query tile, head) task at a time.
 *
 * Layout inside a task, for head h with head size d (dp = d rounded up to 4),
 * query rows i0..i0+bq, and one key tile of bk keys at a time:
 *   qt  [d][tq]   the tile's queries, transposed, times scale * log2(e)
 *   kb  [tk][dp]  the key tile's rows of this head, packed contiguously
 *   vb  [tk][dp]  the same for values, zero-padded to dp columns
 *   st  [tk][tq]  probabilities of the key tile, key-major: st[j][i]
 *   acc [tq][dp]  running, unnormalized output rows
 *   m, l [tq]     reference max (log2 units) and running sum per query
 *
 * Scores are computed key-major, four keys by eight queries in registers,
 * so max, exp and sums are lane-wise with no horizontal reductions, and
 * exp2 runs on the tile while it is still in registers. The softmax is
 * online with lazy rescaling: each query keeps a reference max m and uses
 * exp2(s - m) as long as s <= m + QE_LAZY_MARGIN (so values stay <= 2^8 and
 * nothing overflows); only a score beyond that moves m and rescales what was
 * accumulated. After the first key tile that almost never happens. Both
 * products use a 4x8 register tile: eight v128 accumulators, two vector
 * loads and four broadcasts per step.
 */
#include "attention/flash_attention.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "arena.h"
#include "simd.h"
#include "vexp.h"

static size_t round_up(size_t x, size_t m) { return (x + m - 1) / m * m; }
static size_t min_size(size_t a, size_t b) { return a < b ? a : b; }

void qe_attention_choose_tiles(qe_attention_problem *p, size_t block_q, size_t block_k) {
  /* Query tiles are a multiple of 8 (two vectors of queries per score tile),
   * key tiles a multiple of 4 (four keys per score tile). */
  size_t tq = min_size(block_q ? block_q : QE_ATTENTION_MAX_TILE_Q, QE_ATTENTION_MAX_TILE_Q);
  tq = min_size(round_up(tq, 8), round_up(p->nq, 8));
  size_t tk = min_size(block_k ? block_k : QE_ATTENTION_MAX_TILE_K, QE_ATTENTION_MAX_TILE_K);
  tk = min_size(round_up(tk, 4), round_up(p->valid_k, 4));
  p->tile_q = tq;
  p->tile_k = tk;
}

size_t qe_attention_task_count(const qe_attention_problem *p) {
  return p->heads * ((p->nq + p->tile_q - 1) / p->tile_q);
}

size_t qe_attention_workspace_bytes(const qe_attention_problem *p) {
  size_t tq = p->tile_q, tk = p->tile_k, d = p->head_dim, dp = round_up(d, 4);
  return qe_arena_round(d * tq * sizeof(float))        /* qt */
         + 2 * qe_arena_round(tk * dp * sizeof(float)) /* kb, vb */
         + qe_arena_round(tk * tq * sizeof(float))     /* st */
         + qe_arena_round(tq * dp * sizeof(float))     /* acc */
         + 2 * qe_arena_round(tq * sizeof(float));     /* m, l */
}

/* How far a score may exceed its query's reference max before the reference
 * moves (log2 units): exp2 values then stay at most 256. */
#define QE_LAZY_MARGIN 8.0f

typedef struct {
  size_t tq, dp, d, bk;
  float *qt, *kb, *vb, *st, *acc, *m, *l;
} tile_state;

/* Raises the reference max of queries i..i+8 to at least tile max (t0, t1),
 * rescaling their sums, accumulator rows, and the probabilities already
 * stored for keys [0, j) of this key tile. */
static void raise_reference_max(tile_state *ts, size_t i, size_t j, v128_t t0, v128_t t1) {
  float old_m[8], new_m[8];
  wasm_v128_store(old_m, wasm_v128_load(ts->m + i));
  wasm_v128_store(old_m + 4, wasm_v128_load(ts->m + i + 4));
  wasm_v128_store(new_m, wasm_f32x4_pmax(wasm_v128_load(ts->m + i), t0));
  wasm_v128_store(new_m + 4, wasm_f32x4_pmax(wasm_v128_load(ts->m + i + 4), t1));
  float alpha[8];
  /* exp2(-inf) is 0: a query's first scores discard its empty state. */
  wasm_v128_store(alpha, qe_vexp2_f32x4(wasm_f32x4_sub(wasm_v128_load(old_m), wasm_v128_load(new_m))));
  wasm_v128_store(alpha + 4,
                  qe_vexp2_f32x4(wasm_f32x4_sub(wasm_v128_load(old_m + 4), wasm_v128_load(new_m + 4))));
  for (size_t r = 0; r < 8; r++) {
    if (new_m[r] == old_m[r]) continue;
    const float a = alpha[r];
    ts->l[i + r] *= a;
    float *row = ts->acc + (i + r) * ts->dp;
    const v128_t av = wasm_f32x4_splat(a);
    for (size_t c = 0; c < ts->dp; c += 4) wasm_v128_store(row + c, wasm_f32x4_mul(wasm_v128_load(row + c), av));
    for (size_t jj = 0; jj < j; jj++) ts->st[jj * ts->tq + i + r] *= a;
    ts->m[i + r] = new_m[r];
  }
}

/* Masks scores of one 4x8 tile (in memory) hidden by causality or key padding. */
static void mask_tile(float *s, size_t tq, size_t key0, size_t keys_left, size_t query0,
                      int causal) {
  for (size_t jj = 0; jj < 4; jj++)
    for (size_t r = 0; r < 8; r++)
      if (jj >= keys_left || (causal && key0 + jj > query0 + r)) s[jj * tq + r] = -INFINITY;
}

/*
 * Scores of keys j..j+4 against queries i..i+8, then their probabilities,
 * written to st, and their sums added to l. `masked` asks for the slow path
 * that applies the causal or padding mask.
 */
static inline void score_exp_tile_4x8(tile_state *ts, size_t i, size_t j, int masked,
                                      size_t key0, size_t query0, int causal) {
  const size_t d = ts->d, dp = ts->dp, tq = ts->tq;
  const float *qt = ts->qt + i;
  const float *k0 = ts->kb + j * dp, *k1 = k0 + dp, *k2 = k1 + dp, *k3 = k2 + dp;
  v128_t a00 = wasm_f32x4_splat(0.0f), a01 = a00, a10 = a00, a11 = a00;
  v128_t a20 = a00, a21 = a00, a30 = a00, a31 = a00;
  for (size_t p = 0; p < d; p++) {
    const v128_t q0 = wasm_v128_load(qt + p * tq);
    const v128_t q1 = wasm_v128_load(qt + p * tq + 4);
    v128_t kv = wasm_v128_load32_splat(k0 + p);
    a00 = wasm_f32x4_add(a00, wasm_f32x4_mul(kv, q0));
    a01 = wasm_f32x4_add(a01, wasm_f32x4_mul(kv, q1));
    kv = wasm_v128_load32_splat(k1 + p);
    a10 = wasm_f32x4_add(a10, wasm_f32x4_mul(kv, q0));
    a11 = wasm_f32x4_add(a11, wasm_f32x4_mul(kv, q1));
    kv = wasm_v128_load32_splat(k2 + p);
    a20 = wasm_f32x4_add(a20, wasm_f32x4_mul(kv, q0));
    a21 = wasm_f32x4_add(a21, wasm_f32x4_mul(kv, q1));
    kv = wasm_v128_load32_splat(k3 + p);
    a30 = wasm_f32x4_add(a30, wasm_f32x4_mul(kv, q0));
    a31 = wasm_f32x4_add(a31, wasm_f32x4_mul(kv, q1));
  }
  if (masked) {
    float *s = ts->st + j * tq + i;
    wasm_v128_store(s, a00), wasm_v128_store(s + 4, a01);
    wasm_v128_store(s + tq, a10), wasm_v128_store(s + tq + 4, a11);
    wasm_v128_store(s + 2 * tq, a20), wasm_v128_store(s + 2 * tq + 4, a21);
    wasm_v128_store(s + 3 * tq, a30), wasm_v128_store(s + 3 * tq + 4, a31);
    mask_tile(s, tq, key0 + j, ts->bk - j, query0 + i, causal);
    a00 = wasm_v128_load(s), a01 = wasm_v128_load(s + 4);
    a10 = wasm_v128_load(s + tq), a11 = wasm_v128_load(s + tq + 4);
    a20 = wasm_v128_load(s + 2 * tq), a21 = wasm_v128_load(s + 2 * tq + 4);
    a30 = wasm_v128_load(s + 3 * tq), a31 = wasm_v128_load(s + 3 * tq + 4);
  }
  const v128_t t0 = wasm_f32x4_pmax(wasm_f32x4_pmax(a00, a10), wasm_f32x4_pmax(a20, a30));
  const v128_t t1 = wasm_f32x4_pmax(wasm_f32x4_pmax(a01, a11), wasm_f32x4_pmax(a21, a31));
  v128_t m0 = wasm_v128_load(ts->m + i), m1 = wasm_v128_load(ts->m + i + 4);
  const v128_t margin = wasm_f32x4_splat(QE_LAZY_MARGIN);
  if (wasm_v128_any_true(wasm_v128_or(wasm_f32x4_gt(t0, wasm_f32x4_add(m0, margin)),
                                      wasm_f32x4_gt(t1, wasm_f32x4_add(m1, margin))))) {
    raise_reference_max(ts, i, j, t0, t1);
    m0 = wasm_v128_load(ts->m + i);
    m1 = wasm_v128_load(ts->m + i + 4);
  }
  a00 = qe_vexp2_f32x4(wasm_f32x4_sub(a00, m0));
  a01 = qe_vexp2_f32x4(wasm_f32x4_sub(a01, m1));
  a10 = qe_vexp2_f32x4(wasm_f32x4_sub(a10, m0));
  a11 = qe_vexp2_f32x4(wasm_f32x4_sub(a11, m1));
  a20 = qe_vexp2_f32x4(wasm_f32x4_sub(a20, m0));
  a21 = qe_vexp2_f32x4(wasm_f32x4_sub(a21, m1));
  a30 = qe_vexp2_f32x4(wasm_f32x4_sub(a30, m0));
  a31 = qe_vexp2_f32x4(wasm_f32x4_sub(a31, m1));
  float *s = ts->st + j * tq + i;
  wasm_v128_store(s, a00), wasm_v128_store(s + 4, a01);
  wasm_v128_store(s + tq, a10), wasm_v128_store(s + tq + 4, a11);
  wasm_v128_store(s + 2 * tq, a20), wasm_v128_store(s + 2 * tq + 4, a21);
  wasm_v128_store(s + 3 * tq, a30), wasm_v128_store(s + 3 * tq + 4, a31);
  float *l = ts->l + i;
  wasm_v128_store(l, wasm_f32x4_add(wasm_v128_load(l),
                                    wasm_f32x4_add(wasm_f32x4_add(a00, a10), wasm_f32x4_add(a20, a30))));
  wasm_v128_store(l + 4, wasm_f32x4_add(wasm_v128_load(l + 4),
                                        wasm_f32x4_add(wasm_f32x4_add(a01, a11), wasm_f32x4_add(a21, a31))));
}

/* acc[r][0..8] += sum_j st[j][r] * vb[j][0..8] for four query rows r. */
static inline void pv_tile_4x8(size_t bk, const float *st, size_t tq, const float *vb, size_t dp,
                               float *acc) {
  float *o0 = acc, *o1 = acc + dp, *o2 = acc + 2 * dp, *o3 = acc + 3 * dp;
  v128_t a00 = wasm_v128_load(o0), a01 = wasm_v128_load(o0 + 4);
  v128_t a10 = wasm_v128_load(o1), a11 = wasm_v128_load(o1 + 4);
  v128_t a20 = wasm_v128_load(o2), a21 = wasm_v128_load(o2 + 4);
  v128_t a30 = wasm_v128_load(o3), a31 = wasm_v128_load(o3 + 4);
  for (size_t j = 0; j < bk; j++) {
    const v128_t v0 = wasm_v128_load(vb + j * dp);
    const v128_t v1 = wasm_v128_load(vb + j * dp + 4);
    const float *pj = st + j * tq;
    v128_t pv = wasm_v128_load32_splat(pj);
    a00 = wasm_f32x4_add(a00, wasm_f32x4_mul(pv, v0));
    a01 = wasm_f32x4_add(a01, wasm_f32x4_mul(pv, v1));
    pv = wasm_v128_load32_splat(pj + 1);
    a10 = wasm_f32x4_add(a10, wasm_f32x4_mul(pv, v0));
    a11 = wasm_f32x4_add(a11, wasm_f32x4_mul(pv, v1));
    pv = wasm_v128_load32_splat(pj + 2);
    a20 = wasm_f32x4_add(a20, wasm_f32x4_mul(pv, v0));
    a21 = wasm_f32x4_add(a21, wasm_f32x4_mul(pv, v1));
    pv = wasm_v128_load32_splat(pj + 3);
    a30 = wasm_f32x4_add(a30, wasm_f32x4_mul(pv, v0));
    a31 = wasm_f32x4_add(a31, wasm_f32x4_mul(pv, v1));
  }
  wasm_v128_store(o0, a00), wasm_v128_store(o0 + 4, a01);
  wasm_v128_store(o1, a10), wasm_v128_store(o1 + 4, a11);
  wasm_v128_store(o2, a20), wasm_v128_store(o2 + 4, a21);
  wasm_v128_store(o3, a30), wasm_v128_store(o3 + 4, a31);
}

/* The same for the last four columns when dp is not a multiple of 8. */
static inline void pv_tile_4x4(size_t bk, const float *st, size_t tq, const float *vb, size_t dp,
                               float *acc) {
  v128_t a0 = wasm_v128_load(acc), a1 = wasm_v128_load(acc + dp);
  v128_t a2 = wasm_v128_load(acc + 2 * dp), a3 = wasm_v128_load(acc + 3 * dp);
  for (size_t j = 0; j < bk; j++) {
    const v128_t v0 = wasm_v128_load(vb + j * dp);
    const float *pj = st + j * tq;
    a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(wasm_v128_load32_splat(pj), v0));
    a1 = wasm_f32x4_add(a1, wasm_f32x4_mul(wasm_v128_load32_splat(pj + 1), v0));
    a2 = wasm_f32x4_add(a2, wasm_f32x4_mul(wasm_v128_load32_splat(pj + 2), v0));
    a3 = wasm_f32x4_add(a3, wasm_f32x4_mul(wasm_v128_load32_splat(pj + 3), v0));
  }
  wasm_v128_store(acc, a0);
  wasm_v128_store(acc + dp, a1);
  wasm_v128_store(acc + 2 * dp, a2);
  wasm_v128_store(acc + 3 * dp, a3);
}

/* Copies rows [j0, j0+bk) of one head's columns into a contiguous [rows][dp]
 * block, zero-filling the padding columns and the rows up to `rows`. */
static void pack_rows(const float *src, size_t ld, size_t bk, size_t rows, size_t d, size_t dp,
                      float *dst) {
  for (size_t j = 0; j < rows; j++) {
    float *out = dst + j * dp;
    if (j < bk) {
      memcpy(out, src + j * ld, d * sizeof(float));
      for (size_t c = d; c < dp; c++) out[c] = 0.0f;
    } else {
      for (size_t c = 0; c < dp; c++) out[c] = 0.0f;
    }
  }
}

static void attention_task(const qe_attention_problem *p, size_t task, tile_state *ts) {
  const size_t d = p->head_dim, dp = ts->dp, dim = p->dim, tq = p->tile_q, tk = p->tile_k;
  const size_t h = task % p->heads;
  const size_t i0 = (task / p->heads) * tq;
  const size_t bq = min_size(tq, p->nq - i0);
  const size_t col = h * d;
  /* Scores in log2 units: exp(x) = exp2(x * log2(e)), folded into the queries. */
  const float qscale = p->scale * 1.44269504088896341f;

  /* Q^T for the tile; rows past bq are zero so their scores stay finite. */
  for (size_t i = 0; i < tq; i++) {
    const float *qi = p->q + (i0 + i) * dim + col;
    for (size_t c = 0; c < d; c++) ts->qt[c * tq + i] = i < bq ? qi[c] * qscale : 0.0f;
  }
  for (size_t i = 0; i < tq; i++) {
    ts->m[i] = -INFINITY;
    ts->l[i] = 0.0f;
  }
  memset(ts->acc, 0, tq * dp * sizeof(float));

  /* Keys this tile can see: padding never; under the causal mask nothing
   * past the tile's last query. Key 0 is always visible, so every query's
   * reference max is finite after the first group of keys. */
  size_t k_end = p->valid_k;
  if (p->causal) k_end = min_size(k_end, i0 + bq);

  for (size_t j0 = 0; j0 < k_end; j0 += tk) {
    const size_t bk = min_size(tk, k_end - j0);
    const size_t bk4 = (bk + 3) & ~(size_t)3;
    ts->bk = bk;
    pack_rows(p->k + j0 * dim + col, dim, bk, bk4, d, dp, ts->kb);
    pack_rows(p->v + j0 * dim + col, dim, bk, bk, d, dp, ts->vb);

    const int diagonal = p->causal && j0 + bk - 1 > i0;
    for (size_t j = 0; j < bk; j += 4) {
      /* A group needs masking if it is short or crosses the causal diagonal. */
      const int group_masked = j + 4 > bk || (diagonal && j0 + j + 3 > i0);
      for (size_t i = 0; i < tq; i += 8)
        score_exp_tile_4x8(ts, i, j, group_masked && (j + 4 > bk || j0 + j + 3 > i0 + i), j0,
                           i0, p->causal);
    }

    /* acc += P V, four query rows at a time. */
    for (size_t i = 0; i < bq; i += 4) {
      float *arow = ts->acc + i * dp;
      size_t c = 0;
      for (; c + 8 <= dp; c += 8) pv_tile_4x8(bk, ts->st + i, tq, ts->vb + c, dp, arow + c);
      if (c < dp) pv_tile_4x4(bk, ts->st + i, tq, ts->vb + c, dp, arow + c);
    }
  }

  /* One division per output element, at the end. */
  for (size_t i = 0; i < bq; i++) {
    const float li = ts->l[i];
    const float *arow = ts->acc + i * dp;
    float *orow = p->o + (i0 + i) * dim + col;
    for (size_t c = 0; c < d; c++) orow[c] = arow[c] / li;
  }
}

void qe_flash_attention_forward(const qe_attention_problem *p, size_t task_begin, size_t task_end,
                                void *workspace) {
  const size_t tq = p->tile_q, tk = p->tile_k, d = p->head_dim;
  tile_state ts = {.tq = tq, .d = d, .dp = round_up(d, 4)};
  qe_arena_cursor cur = {(unsigned char *)workspace, 0, qe_attention_workspace_bytes(p)};
  ts.qt = qe_arena_take(&cur, d * tq * sizeof(float));
  ts.kb = qe_arena_take(&cur, tk * ts.dp * sizeof(float));
  ts.vb = qe_arena_take(&cur, tk * ts.dp * sizeof(float));
  ts.st = qe_arena_take(&cur, tk * tq * sizeof(float));
  ts.acc = qe_arena_take(&cur, tq * ts.dp * sizeof(float));
  ts.m = qe_arena_take(&cur, tq * sizeof(float));
  ts.l = qe_arena_take(&cur, tq * sizeof(float));
  for (size_t t = task_begin; t < task_end; t++) attention_task(p, t, &ts);
}
