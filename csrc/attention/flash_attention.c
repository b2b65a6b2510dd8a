/*
 * FlashAttention forward pass, one (query tile, head) task at a time.
 *
 * Both products run the same register kernel: eight queries in two vectors
 * (lanes = queries) times four broadcast scalars, eight accumulators, every
 * load at a constant offset from one of two pointers that advance by
 * constant steps. Everything per query is stored in strips of eight queries,
 * so each strip is contiguous. For head h with head size d (dp = d rounded
 * up to 4), a tile of bq queries (nb = bq rounded up to 8, in nb/8 strips),
 * and one key tile of bk keys (bk4 = bk rounded up to 4):
 *
 *   qt  [nb/8][d][8]     queries, transposed per strip, times scale * log2(e)
 *   kb  [bk4/4][d][4]    keys, four interleaved per group: kb[g][p][r] = K[4g+r][p]
 *   vb  [dp/4][tk][4]    values, four columns per block: vb[c][j][r] = V[j][4c+r]
 *   st  [tk][8]          scores, then probabilities, of the key tile for one strip
 *   acc [nb/8][dp][8]    running, unnormalized output, transposed per strip
 *   m, l [nb]            reference max (log2 units) and running sum per query
 *
 * For each key tile, K and V are packed once and every strip of the query
 * tile then, with its probabilities in L1:
 *   1. scores its keys, four keys by eight queries in registers, storing raw
 *      scores to st and keeping the lane-wise max;
 *   2. lazy rescaling: each query keeps a reference max m and uses
 *      exp2(s - m) as long as s <= m + QE_LAZY_MARGIN (values stay <= 2^8,
 *      nothing overflows); only a key tile with a score beyond that moves m
 *      and rescales the strip's sum and accumulator (always on the first key
 *      tile, rarely after). One test per strip and key tile, lane-wise;
 *   3. exp2 over st in a short loop (keeping the exp in its own loop keeps
 *      V8 from spilling the score tile's registers), summing into l;
 *   4. acc[4c+r][0..8] += splat(vb[c][j][r]) * st[j][0..8], four columns by
 *      eight queries in registers.
 * The output is transposed back and divided by the sums once per task.
 *
 * Why this shape (measured on V8 / Zen 5): wasm has only base + constant
 * addressing, so every distinct runtime offset in an inner loop costs an
 * address computation; with both operands packed, each product's loop is six
 * loads at constant offsets, sixteen mul/add, two pointer bumps. The query
 * strips keep each packed buffer contiguous (no cache-set conflicts from
 * power-of-two strides).
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
  /* Query tiles are a multiple of 8 (one strip per register tile), key tiles
   * a multiple of 4 (four keys per register tile). */
  size_t tq = min_size(block_q ? block_q : QE_ATTENTION_DEFAULT_TILE_Q, QE_ATTENTION_MAX_TILE_Q);
  tq = min_size(round_up(tq, 8), round_up(p->nq, 8));
  size_t tk = min_size(block_k ? block_k : QE_ATTENTION_DEFAULT_TILE_K, QE_ATTENTION_MAX_TILE_K);
  tk = min_size(round_up(tk, 4), round_up(p->valid_k, 4));
  p->tile_q = tq;
  p->tile_k = tk;
}

size_t qe_attention_task_count(const qe_attention_problem *p) {
  return p->heads * ((p->nq + p->tile_q - 1) / p->tile_q);
}

size_t qe_attention_workspace_bytes(const qe_attention_problem *p) {
  /* In 64 bits: a head of 2^26 floats would wrap a 32-bit size_t. */
  const uint64_t tq = p->tile_q, tk = p->tile_k, d = p->head_dim, dp = round_up(p->head_dim, 4);
  const uint64_t line = 64, f = sizeof(float);
#define QE_ROUND64(x) (((x) + line - 1) / line * line)
  const uint64_t bytes = QE_ROUND64(tq * d * f)    /* qt */
                         + QE_ROUND64(tk * d * f)  /* kb */
                         + QE_ROUND64(tk * dp * f) /* vb */
                         + QE_ROUND64(tk * 8 * f)  /* st */
                         + QE_ROUND64(tq * dp * f) /* acc */
                         + 2 * QE_ROUND64(tq * f); /* m, l */
#undef QE_ROUND64
  return bytes > QE_ATTENTION_MAX_WORKSPACE ? SIZE_MAX : (size_t)bytes;
}

/* How far a score may exceed its query's reference max before the reference
 * moves (log2 units): exp2 values then stay at most 256. */
#define QE_LAZY_MARGIN 8.0f

/* One strip of eight queries: its packed queries, accumulator, max and sum. */
typedef struct {
  const float *qt;
  float *acc, *m, *l;
} strip;

/* Raises the strip's reference max to at least the key tile's max (t0, t1)
 * where a score passed m + QE_LAZY_MARGIN, rescaling the sums and the
 * accumulator. Lane-wise throughout. */
static void raise_reference_max(const strip *sp, size_t dp, v128_t t0, v128_t t1) {
  const v128_t one = wasm_f32x4_splat(1.0f);
  const v128_t old0 = wasm_v128_load(sp->m), old1 = wasm_v128_load(sp->m + 4);
  const v128_t new0 = wasm_f32x4_pmax(old0, t0), new1 = wasm_f32x4_pmax(old1, t1);
  /* Lanes whose max did not grow keep exactly 1 (this also avoids -inf - -inf).
   * exp2(-inf) is 0: a query's first scores discard its empty state. */
  const v128_t a0 = wasm_v128_bitselect(qe_vexp2_f32x4(wasm_f32x4_sub(old0, new0)), one,
                                        wasm_f32x4_gt(new0, old0));
  const v128_t a1 = wasm_v128_bitselect(qe_vexp2_f32x4(wasm_f32x4_sub(old1, new1)), one,
                                        wasm_f32x4_gt(new1, old1));
  wasm_v128_store(sp->l, wasm_f32x4_mul(wasm_v128_load(sp->l), a0));
  wasm_v128_store(sp->l + 4, wasm_f32x4_mul(wasm_v128_load(sp->l + 4), a1));
  for (size_t c = 0; c < dp; c++) {
    float *row = sp->acc + 8 * c;
    wasm_v128_store(row, wasm_f32x4_mul(wasm_v128_load(row), a0));
    wasm_v128_store(row + 4, wasm_f32x4_mul(wasm_v128_load(row + 4), a1));
  }
  wasm_v128_store(sp->m, new0);
  wasm_v128_store(sp->m + 4, new1);
}

/* Masks scores of one 4x8 tile (in memory) hidden by causality or key padding. */
static void mask_tile(float *s, size_t key0, size_t keys_left, size_t query0, int causal) {
  for (size_t jj = 0; jj < 4; jj++)
    for (size_t r = 0; r < 8; r++)
      if (jj >= keys_left || (causal && key0 + jj > query0 + r)) s[8 * jj + r] = -INFINITY;
}

/*
 * Scores of four keys (packed at kp) against the strip's eight queries
 * (packed at qp), written to s[0..4][0..8], their max folded into tmax.
 * `masked` asks for the slow path that applies the causal or padding mask
 * (keys from key0, keys_left of them real, queries from query0).
 */
static inline void score_tile(const float *qp, const float *kp, size_t d, float *s, float *tmax,
                              int masked, size_t key0, size_t keys_left, size_t query0, int causal) {
  v128_t a00 = wasm_f32x4_splat(0.0f), a01 = a00, a10 = a00, a11 = a00;
  v128_t a20 = a00, a21 = a00, a30 = a00, a31 = a00;
  for (const float *kend = kp + 4 * d; kp != kend; kp += 4, qp += 8) {
    const v128_t q0 = wasm_v128_load(qp);
    const v128_t q1 = wasm_v128_load(qp + 4);
    v128_t kv = wasm_v128_load32_splat(kp);
    a00 = qe_f32x4_madd(kv, q0, a00);
    a01 = qe_f32x4_madd(kv, q1, a01);
    kv = wasm_v128_load32_splat(kp + 1);
    a10 = qe_f32x4_madd(kv, q0, a10);
    a11 = qe_f32x4_madd(kv, q1, a11);
    kv = wasm_v128_load32_splat(kp + 2);
    a20 = qe_f32x4_madd(kv, q0, a20);
    a21 = qe_f32x4_madd(kv, q1, a21);
    kv = wasm_v128_load32_splat(kp + 3);
    a30 = qe_f32x4_madd(kv, q0, a30);
    a31 = qe_f32x4_madd(kv, q1, a31);
  }
  wasm_v128_store(s, a00), wasm_v128_store(s + 4, a01);
  wasm_v128_store(s + 8, a10), wasm_v128_store(s + 12, a11);
  wasm_v128_store(s + 16, a20), wasm_v128_store(s + 20, a21);
  wasm_v128_store(s + 24, a30), wasm_v128_store(s + 28, a31);
  if (masked) {
    mask_tile(s, key0, keys_left, query0, causal);
    a00 = wasm_v128_load(s), a01 = wasm_v128_load(s + 4);
    a10 = wasm_v128_load(s + 8), a11 = wasm_v128_load(s + 12);
    a20 = wasm_v128_load(s + 16), a21 = wasm_v128_load(s + 20);
    a30 = wasm_v128_load(s + 24), a31 = wasm_v128_load(s + 28);
  }
  const v128_t t0 = wasm_f32x4_pmax(wasm_f32x4_pmax(a00, a10), wasm_f32x4_pmax(a20, a30));
  const v128_t t1 = wasm_f32x4_pmax(wasm_f32x4_pmax(a01, a11), wasm_f32x4_pmax(a21, a31));
  wasm_v128_store(tmax, wasm_f32x4_pmax(wasm_v128_load(tmax), t0));
  wasm_v128_store(tmax + 4, wasm_f32x4_pmax(wasm_v128_load(tmax + 4), t1));
}

/* Scores of keys [0, n) in st (n a multiple of 4) become exp2(s - m), their
 * sums added to l. */
static void exp_strip(float *st, size_t n, const float *m, float *l) {
  const v128_t m0 = wasm_v128_load(m), m1 = wasm_v128_load(m + 4);
  v128_t l0 = wasm_f32x4_splat(0.0f), l1 = l0;
  for (float *end = st + 8 * n; st != end; st += 8) {
    const v128_t e0 = qe_vexp2_f32x4(wasm_f32x4_sub(wasm_v128_load(st), m0));
    const v128_t e1 = qe_vexp2_f32x4(wasm_f32x4_sub(wasm_v128_load(st + 4), m1));
    wasm_v128_store(st, e0);
    wasm_v128_store(st + 4, e1);
    l0 = wasm_f32x4_add(l0, e0);
    l1 = wasm_f32x4_add(l1, e1);
  }
  wasm_v128_store(l, wasm_f32x4_add(wasm_v128_load(l), l0));
  wasm_v128_store(l + 4, wasm_f32x4_add(wasm_v128_load(l + 4), l1));
}

/* acc[r][0..8] += sum_j vp[j][r] * st[j][0..8] for the four columns r of one
 * packed value block. */
static inline void pv_tile(size_t bk, const float *sp, const float *vp, float *acc) {
  v128_t a00 = wasm_v128_load(acc), a01 = wasm_v128_load(acc + 4);
  v128_t a10 = wasm_v128_load(acc + 8), a11 = wasm_v128_load(acc + 12);
  v128_t a20 = wasm_v128_load(acc + 16), a21 = wasm_v128_load(acc + 20);
  v128_t a30 = wasm_v128_load(acc + 24), a31 = wasm_v128_load(acc + 28);
  for (const float *vend = vp + 4 * bk; vp != vend; vp += 4, sp += 8) {
    const v128_t s0 = wasm_v128_load(sp);
    const v128_t s1 = wasm_v128_load(sp + 4);
    v128_t vv = wasm_v128_load32_splat(vp);
    a00 = qe_f32x4_madd(vv, s0, a00);
    a01 = qe_f32x4_madd(vv, s1, a01);
    vv = wasm_v128_load32_splat(vp + 1);
    a10 = qe_f32x4_madd(vv, s0, a10);
    a11 = qe_f32x4_madd(vv, s1, a11);
    vv = wasm_v128_load32_splat(vp + 2);
    a20 = qe_f32x4_madd(vv, s0, a20);
    a21 = qe_f32x4_madd(vv, s1, a21);
    vv = wasm_v128_load32_splat(vp + 3);
    a30 = qe_f32x4_madd(vv, s0, a30);
    a31 = qe_f32x4_madd(vv, s1, a31);
  }
  wasm_v128_store(acc, a00), wasm_v128_store(acc + 4, a01);
  wasm_v128_store(acc + 8, a10), wasm_v128_store(acc + 12, a11);
  wasm_v128_store(acc + 16, a20), wasm_v128_store(acc + 20, a21);
  wasm_v128_store(acc + 24, a30), wasm_v128_store(acc + 28, a31);
}

/* Keys j0..j0+bk of one head into kb, four keys interleaved per group, the
 * last group padded with zero keys. Full groups go 4 x 4 blocks at a time,
 * transposed in registers. */
static void pack_keys(const float *src, size_t ld, size_t bk, size_t d, float *kb) {
  const size_t groups = (bk + 3) / 4, d4 = d / 4 * 4;
  for (size_t g = 0; g < groups; g++) {
    const size_t rows = min_size(4, bk - 4 * g);
    const float *s0 = src + 4 * g * ld;
    float *out = kb + 4 * g * d;
    if (rows == 4) {
      const float *s1 = s0 + ld, *s2 = s1 + ld, *s3 = s2 + ld;
      for (size_t p = 0; p < d4; p += 4) {
        v128_t r0 = wasm_v128_load(s0 + p), r1 = wasm_v128_load(s1 + p);
        v128_t r2 = wasm_v128_load(s2 + p), r3 = wasm_v128_load(s3 + p);
        qe_transpose4x4(&r0, &r1, &r2, &r3);
        wasm_v128_store(out + 4 * p, r0);
        wasm_v128_store(out + 4 * p + 4, r1);
        wasm_v128_store(out + 4 * p + 8, r2);
        wasm_v128_store(out + 4 * p + 12, r3);
      }
      for (size_t p = d4; p < d; p++)
        wasm_v128_store(out + 4 * p, wasm_f32x4_make(s0[p], s1[p], s2[p], s3[p]));
    } else {
      for (size_t p = 0; p < d; p++)
        for (size_t r = 0; r < 4; r++) out[4 * p + r] = r < rows ? s0[r * ld + p] : 0.0f;
    }
  }
}

/* Values j0..j0+bk of one head into vb, four columns per block (blocks tk
 * keys apart), the last block zero-padded to four columns. */
static void pack_values(const float *src, size_t ld, size_t bk, size_t tk, size_t d, float *vb) {
  const size_t full = d / 4;
  for (size_t j = 0; j < bk; j++) {
    const float *row = src + j * ld;
    float *out = vb + 4 * j;
    for (size_t c = 0; c < full; c++) wasm_v128_store(out + 4 * tk * c, wasm_v128_load(row + 4 * c));
    if (full * 4 < d) {
      float tail[4] = {0.0f, 0.0f, 0.0f, 0.0f};
      for (size_t c = full * 4; c < d; c++) tail[c - full * 4] = row[c];
      wasm_v128_store(out + 4 * tk * full, wasm_v128_load(tail));
    }
  }
}

typedef struct {
  size_t d, dp;
  float *qt, *kb, *vb, *st, *acc, *m, *l;
} workspace_view;

static void attention_task(const qe_attention_problem *p, size_t task, const workspace_view *w) {
  const size_t d = p->head_dim, dp = w->dp, dim = p->dim, tq = p->tile_q, tk = p->tile_k;
  const size_t h = task % p->heads;
  const size_t i0 = (task / p->heads) * tq;
  const size_t bq = min_size(tq, p->nq - i0);
  const size_t nb = round_up(bq, 8);
  const size_t col = h * d;
  const int causal = p->causal;
  /* Scores in log2 units: exp(x) = exp2(x * log2(e)), folded into the queries. */
  const float qscale = p->scale * 1.44269504088896341f;

  /* Q^T per strip, times qscale; rows past bq are zero so their scores
   * stay finite. Four full rows at a time go as transposed 4 x 4 blocks. */
  const size_t d4 = d / 4 * 4;
  const v128_t qs = wasm_f32x4_splat(qscale);
  for (size_t i = 0; i < nb; i += 4) {
    float *out = w->qt + (i / 8) * 8 * d + i % 8;
    const float *q0 = p->q + (i0 + i) * dim + col;
    if (i + 4 <= bq) {
      const float *q1 = q0 + dim, *q2 = q1 + dim, *q3 = q2 + dim;
      for (size_t c = 0; c < d4; c += 4) {
        v128_t r0 = wasm_v128_load(q0 + c), r1 = wasm_v128_load(q1 + c);
        v128_t r2 = wasm_v128_load(q2 + c), r3 = wasm_v128_load(q3 + c);
        qe_transpose4x4(&r0, &r1, &r2, &r3);
        wasm_v128_store(out + 8 * c, wasm_f32x4_mul(r0, qs));
        wasm_v128_store(out + 8 * c + 8, wasm_f32x4_mul(r1, qs));
        wasm_v128_store(out + 8 * c + 16, wasm_f32x4_mul(r2, qs));
        wasm_v128_store(out + 8 * c + 24, wasm_f32x4_mul(r3, qs));
      }
      for (size_t c = d4; c < d; c++)
        for (size_t r = 0; r < 4; r++) out[8 * c + r] = q0[r * dim + c] * qscale;
    } else {
      for (size_t c = 0; c < d; c++)
        for (size_t r = 0; r < 4; r++) out[8 * c + r] = i + r < bq ? q0[r * dim + c] * qscale : 0.0f;
    }
  }
  for (size_t i = 0; i < nb; i += 4) {
    wasm_v128_store(w->m + i, wasm_f32x4_splat(-INFINITY));
    wasm_v128_store(w->l + i, wasm_f32x4_splat(0.0f));
  }
  for (size_t i = 0; i < nb * dp; i += 4) wasm_v128_store(w->acc + i, wasm_f32x4_splat(0.0f));

  /* Keys this tile can see: padding never; under the causal mask nothing
   * past the tile's last query. Key 0 is always visible, so every query's
   * reference max is finite after the first group of keys. */
  size_t k_end = p->valid_k;
  if (causal) k_end = min_size(k_end, i0 + bq);

  for (size_t j0 = 0; j0 < k_end; j0 += tk) {
    const size_t bk = min_size(tk, k_end - j0);
    pack_keys(p->k + j0 * dim + col, dim, bk, d, w->kb);
    pack_values(p->v + j0 * dim + col, dim, bk, tk, d, w->vb);

    for (size_t i = 0; i < nb; i += 8) {
      const strip sp = {w->qt + i * d, w->acc + i * dp, w->m + i, w->l + i};
      /* Keys a strip sees, under causality: up to its last query. */
      size_t bks = bk;
      if (causal) bks = i0 + i + 8 > j0 ? min_size(bk, i0 + i + 8 - j0) : 0;
      if (bks == 0) continue;
      float tmax[8];
      wasm_v128_store(tmax, wasm_f32x4_splat(-INFINITY));
      wasm_v128_store(tmax + 4, wasm_f32x4_splat(-INFINITY));
      for (size_t j = 0; j < bks; j += 4) {
        /* A group needs masking if it is short or crosses the causal diagonal. */
        const int masked = j + 4 > bks || (causal && j0 + j + 3 > i0 + i);
        score_tile(sp.qt, w->kb + j * d, d, w->st + 8 * j, tmax, masked, j0 + j, bk - j, i0 + i,
                   causal);
      }
      /* Lazy rescaling: move the reference max only for a score beyond it
       * plus the margin (always on a query's first key tile). */
      const v128_t t0 = wasm_v128_load(tmax), t1 = wasm_v128_load(tmax + 4);
      const v128_t margin = wasm_f32x4_splat(QE_LAZY_MARGIN);
      if (wasm_v128_any_true(
              wasm_v128_or(wasm_f32x4_gt(t0, wasm_f32x4_add(wasm_v128_load(sp.m), margin)),
                           wasm_f32x4_gt(t1, wasm_f32x4_add(wasm_v128_load(sp.m + 4), margin)))))
        raise_reference_max(&sp, dp, t0, t1);
      exp_strip(w->st, round_up(bks, 4), sp.m, sp.l);
      /* acc += P V over the keys scored (the rest of a group was masked to 0). */
      const size_t bk4 = round_up(bks, 4);
      for (size_t c = 0; c < dp; c += 4) pv_tile(min_size(bk4, bk), w->st, w->vb + c * tk, sp.acc + 8 * c);
    }
  }

  /* One division per output element, at the end; four full rows at a time
   * transposed back from the strips in 4 x 4 blocks. */
  for (size_t i = 0; i < bq; i += 4) {
    const float *arow = w->acc + (i / 8) * 8 * dp + i % 8;
    float *o0 = p->o + (i0 + i) * dim + col;
    if (i + 4 <= bq) {
      float *o1 = o0 + dim, *o2 = o1 + dim, *o3 = o2 + dim;
      const v128_t l = wasm_v128_load(w->l + i);
      const v128_t l0 = wasm_i32x4_shuffle(l, l, 0, 0, 0, 0), l1 = wasm_i32x4_shuffle(l, l, 1, 1, 1, 1);
      const v128_t l2 = wasm_i32x4_shuffle(l, l, 2, 2, 2, 2), l3 = wasm_i32x4_shuffle(l, l, 3, 3, 3, 3);
      for (size_t c = 0; c < d4; c += 4) {
        v128_t r0 = wasm_v128_load(arow + 8 * c), r1 = wasm_v128_load(arow + 8 * c + 8);
        v128_t r2 = wasm_v128_load(arow + 8 * c + 16), r3 = wasm_v128_load(arow + 8 * c + 24);
        qe_transpose4x4(&r0, &r1, &r2, &r3);
        wasm_v128_store(o0 + c, wasm_f32x4_div(r0, l0));
        wasm_v128_store(o1 + c, wasm_f32x4_div(r1, l1));
        wasm_v128_store(o2 + c, wasm_f32x4_div(r2, l2));
        wasm_v128_store(o3 + c, wasm_f32x4_div(r3, l3));
      }
      for (size_t c = d4; c < d; c++)
        for (size_t r = 0; r < 4; r++) o0[r * dim + c] = arow[8 * c + r] / w->l[i + r];
    } else {
      for (size_t r = 0; i + r < bq; r++)
        for (size_t c = 0; c < d; c++) o0[r * dim + c] = arow[8 * c + r] / w->l[i + r];
    }
  }
}

void qe_flash_attention_forward(const qe_attention_problem *p, size_t task_begin, size_t task_end,
                                void *workspace) {
  const size_t tq = p->tile_q, tk = p->tile_k, d = p->head_dim, dp = round_up(d, 4);
  workspace_view w = {.d = d, .dp = dp};
  qe_arena_cursor cur = {(unsigned char *)workspace, 0, qe_attention_workspace_bytes(p)};
  w.qt = qe_arena_take(&cur, tq * d * sizeof(float));
  w.kb = qe_arena_take(&cur, tk * d * sizeof(float));
  w.vb = qe_arena_take(&cur, tk * dp * sizeof(float));
  w.st = qe_arena_take(&cur, tk * 8 * sizeof(float));
  w.acc = qe_arena_take(&cur, tq * dp * sizeof(float));
  w.m = qe_arena_take(&cur, tq * sizeof(float));
  w.l = qe_arena_take(&cur, tq * sizeof(float));
  for (size_t t = task_begin; t < task_end; t++) attention_task(p, t, &w);
}
