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

void qe_attention_problem_dense(qe_attention_problem *p, const float *q, const float *k, const float *v,
                                float *o, size_t nq, size_t nk, size_t dim, size_t heads, float scale,
                                int causal, size_t valid_k) {
  const size_t d = dim / heads;
  *p = (qe_attention_problem){
      .q = q, .k = k, .v = v, .o = o,
      .q_sh = d, .q_sr = dim, .k_sh = d, .k_sr = dim, .v_sh = d, .v_sr = dim, .o_sh = d, .o_sr = dim,
      .batch = 1, .q_heads = heads, .kv_heads = heads,
      .nq = nq, .nk = nk, .head_dim = d, .v_head_dim = d,
      .scale = scale, .causal = causal != 0,
      .window_left = -1, .window_right = -1, .valid_k = valid_k,
  };
}

/* Rows of one (batch, kv head): each query once per q head of the group,
 * query-major (row r is query r / group of q head r % group), so the group's
 * heads share every packed key and value tile. */
static size_t group_size(const qe_attention_problem *p) { return p->q_heads / p->kv_heads; }

void qe_attention_choose_tiles(qe_attention_problem *p, size_t block_q, size_t block_k) {
  /* Query tiles are a multiple of 8 (one strip per register tile), key tiles
   * a multiple of 4 (four keys per register tile). */
  size_t tq = min_size(block_q ? block_q : QE_ATTENTION_DEFAULT_TILE_Q, QE_ATTENTION_MAX_TILE_Q);
  tq = min_size(round_up(tq, 8), round_up(p->nq * group_size(p), 8));
  size_t tk = min_size(block_k ? block_k : QE_ATTENTION_DEFAULT_TILE_K, QE_ATTENTION_MAX_TILE_K);
  tk = min_size(round_up(tk, 4), round_up(p->valid_k, 4));
  p->tile_q = tq;
  p->tile_k = tk;
}

size_t qe_attention_task_count(const qe_attention_problem *p) {
  const size_t rows = p->nq * group_size(p);
  return p->batch * p->kv_heads * ((rows + p->tile_q - 1) / p->tile_q);
}

size_t qe_attention_workspace_bytes(const qe_attention_problem *p) {
  /* In 64 bits: a head of 2^26 floats would wrap a 32-bit size_t. */
  const uint64_t tq = p->tile_q, tk = p->tile_k, d = p->head_dim, dvp = round_up(p->v_head_dim, 4);
  const uint64_t line = 64, f = sizeof(float);
#define QE_ROUND64(x) (((x) + line - 1) / line * line)
  const uint64_t bytes = QE_ROUND64(tq * d * f)     /* qt */
                         + QE_ROUND64(tk * d * f)   /* kb */
                         + QE_ROUND64(tk * dvp * f) /* vb */
                         + QE_ROUND64(tk * 8 * f)   /* st */
                         + QE_ROUND64(tq * dvp * f) /* acc */
                         + 2 * QE_ROUND64(tq * f);  /* m, l */
#undef QE_ROUND64
  return bytes > QE_ATTENTION_MAX_WORKSPACE ? SIZE_MAX : (size_t)bytes;
}

/* The keys [lo, hi) query qi of batch b may see before any mask tensor:
 * padding, causality and the window, all aligned to the query's position
 * qi + offset. May be empty (hi <= lo). */
typedef struct {
  int64_t offset, valid;
} batch_frame;

static batch_frame frame_of(const qe_attention_problem *p, size_t b) {
  batch_frame f = {p->offset, (int64_t)p->valid_k};
  if (p->kv_len) {
    f.offset = (int64_t)p->kv_len[b] - (int64_t)p->nq;
    if ((int64_t)p->kv_len[b] < f.valid) f.valid = p->kv_len[b];
  }
  if (p->mask_kind != QE_MASK_NONE && (int64_t)p->mask_len < f.valid) f.valid = (int64_t)p->mask_len;
  return f;
}

static int64_t keys_from(const qe_attention_problem *p, const batch_frame *f, int64_t qi) {
  if (p->window_left < 0) return 0;
  const int64_t lo = qi + f->offset - p->window_left;
  return lo > 0 ? lo : 0;
}

static int64_t keys_to(const qe_attention_problem *p, const batch_frame *f, int64_t qi) {
  int64_t hi = f->valid;
  const int64_t pos = qi + f->offset;
  if (p->causal && pos + 1 < hi) hi = pos + 1;
  if (p->window_right >= 0 && pos + p->window_right + 1 < hi) hi = pos + p->window_right + 1;
  return hi;
}

/* The mask tensor's row for (b, q head h, query i): its key j is at index j. */
static size_t mask_row(const qe_attention_problem *p, size_t b, size_t h, size_t i) {
  return b * p->mask_sb + h * p->mask_sh + i * p->mask_sq;
}

static float mask_value(const qe_attention_problem *p, size_t at) {
  if (p->mask_kind == QE_MASK_BOOL) return ((const uint8_t *)p->mask)[at] ? 0.0f : -INFINITY;
  return ((const float *)p->mask)[at];
}

float qe_attention_bias(const qe_attention_problem *p, size_t b, size_t h, size_t i, size_t j) {
  const batch_frame f = frame_of(p, b);
  if ((int64_t)j < keys_from(p, &f, (int64_t)i) || (int64_t)j >= keys_to(p, &f, (int64_t)i)) return -INFINITY;
  return p->mask_kind == QE_MASK_NONE ? 0.0f : mask_value(p, mask_row(p, b, h, i) + j);
}

v128_t qe_softcap_f32x4(v128_t x, float c) {
  /* tanh(a) = (1 - e) / (1 + e) with e = exp(-2|a|) <= 1, sign restored:
   * no overflow, and exp's argument stays in its accurate range. */
  const v128_t a = wasm_f32x4_div(x, wasm_f32x4_splat(c));
  const v128_t e = qe_vexp2_f32x4(
      wasm_f32x4_mul(wasm_v128_and(a, wasm_i32x4_splat(0x7fffffff)), wasm_f32x4_splat(-2.88539008177792681f)));
  const v128_t one = wasm_f32x4_splat(1.0f);
  const v128_t t = wasm_f32x4_div(wasm_f32x4_sub(one, e), wasm_f32x4_add(one, e));
  const v128_t sign = wasm_v128_and(a, wasm_i32x4_splat((int32_t)0x80000000u));
  return wasm_f32x4_mul(wasm_v128_or(t, sign), wasm_f32x4_splat(c));
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

/* What the slow path needs to know about one strip's eight rows: the keys
 * [lo, hi) each may see, where its mask tensor row starts (has_bias 0 for the
 * strip's padding rows, whose output is never written), and the softcap in
 * log2 units (0: none). */
typedef struct {
  const qe_attention_problem *p;
  int64_t lo[8], hi[8];
  size_t bias_at[8];
  int has_bias[8];
  float softcap2;
} strip_mask;

/* Applies softcap, the mask tensor's bias and every hidden key to one 4 x 8
 * tile of log2-unit scores in memory (keys key0.., hidden from key_end on). */
static void mask_tile(float *s, size_t key0, size_t key_end, const strip_mask *sm) {
  if (sm->softcap2 > 0.0f)
    for (size_t t = 0; t < 32; t += 4) wasm_v128_store(s + t, qe_softcap_f32x4(wasm_v128_load(s + t), sm->softcap2));
  const qe_attention_problem *p = sm->p;
  for (size_t jj = 0; jj < 4; jj++) {
    const int64_t key = (int64_t)(key0 + jj);
    for (size_t r = 0; r < 8; r++) {
      float *x = s + 8 * jj + r;
      if (key >= (int64_t)key_end || key < sm->lo[r] || key >= sm->hi[r])
        *x = -INFINITY;
      else if (p->mask_kind != QE_MASK_NONE && sm->has_bias[r])
        *x += mask_value(p, sm->bias_at[r] + (size_t)key) * 1.44269504088896341f;
    }
  }
}

/*
 * Scores of four keys (packed at kp) against the strip's eight queries
 * (packed at qp), written to s[0..4][0..8], their max folded into tmax.
 * A strip mask asks for the slow path (keys from key0, hidden from key_end).
 */
static inline void score_tile(const float *qp, const float *kp, size_t d, float *s, float *tmax,
                              const strip_mask *sm, size_t key0, size_t key_end) {
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
  if (sm) {
    mask_tile(s, key0, key_end, sm);
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
  size_t d, dvp;
  float *qt, *kb, *vb, *st, *acc, *m, *l;
} workspace_view;

/* Row r of a (batch, kv head)'s rows, in a q/o tensor: query r / group of
 * q head h0 + r % group. */
static size_t row_offset(size_t r, size_t group, size_t sh, size_t sr) {
  return group == 1 ? r * sr : (r % group) * sh + (r / group) * sr;
}

/* Row i of the tile had every key hidden: its max never left -inf. */
static int saw_no_key(const qe_attention_problem *p, const workspace_view *w, size_t i) {
  return p->zero_empty_rows && w->m[i] == -INFINITY && w->l[i] == 0.0f;
}

/* The slow path's view of the strip whose first row is `row0` of its
 * (batch, kv head): each row's visible keys and mask row; rows from `real`
 * on are the strip's padding. */
static void prepare_strip_mask(strip_mask *sm, const qe_attention_problem *p, const batch_frame *frame, size_t b,
                               size_t h0, size_t group, size_t row0, size_t real) {
  sm->p = p;
  sm->softcap2 = p->softcap > 0.0f ? p->softcap * 1.44269504088896341f : 0.0f;
  for (size_t r = 0; r < 8; r++) {
    const size_t row = row0 + r, qi = row / group;
    sm->lo[r] = keys_from(p, frame, (int64_t)qi);
    sm->hi[r] = keys_to(p, frame, (int64_t)qi);
    sm->has_bias[r] = r < real && p->mask_kind != QE_MASK_NONE;
    sm->bias_at[r] = sm->has_bias[r] ? mask_row(p, b, h0 + row % group, qi) : 0;
  }
}

static void attention_task(const qe_attention_problem *p, size_t task, const workspace_view *w) {
  const size_t d = p->head_dim, dv = p->v_head_dim, dvp = w->dvp, tq = p->tile_q, tk = p->tile_k;
  const size_t group = group_size(p), rows = p->nq * group, bh = task % (p->batch * p->kv_heads);
  const size_t b = bh / p->kv_heads, hk = bh % p->kv_heads, h0 = hk * group;
  const size_t i0 = (task / (p->batch * p->kv_heads)) * tq;
  const size_t bq = min_size(tq, rows - i0);
  const size_t nb = round_up(bq, 8);
  const float *qbase = p->q + b * p->q_sb + h0 * p->q_sh;
  float *obase = p->o + b * p->o_sb + h0 * p->o_sh;
  const size_t q_sh = p->q_sh, q_sr = p->q_sr, o_sh = p->o_sh, o_sr = p->o_sr;
  /* Every score goes through the slow path with a mask tensor or softcap. */
  const int always_masked = p->mask_kind != QE_MASK_NONE || p->softcap > 0.0f;
  const batch_frame frame = frame_of(p, b);
  /* Scores in log2 units: exp(x) = exp2(x * log2(e)), folded into the queries. */
  const float qscale = p->scale * 1.44269504088896341f;

  /* Q^T per strip, times qscale; rows past bq are zero so their scores
   * stay finite. Four full rows at a time go as transposed 4 x 4 blocks. */
  const size_t d4 = d / 4 * 4;
  const v128_t qs = wasm_f32x4_splat(qscale);
  for (size_t i = 0; i < nb; i += 4) {
    float *out = w->qt + (i / 8) * 8 * d + i % 8;
    if (i + 4 <= bq) {
      const float *q0 = qbase + row_offset(i0 + i, group, q_sh, q_sr);
      const float *q1 = qbase + row_offset(i0 + i + 1, group, q_sh, q_sr);
      const float *q2 = qbase + row_offset(i0 + i + 2, group, q_sh, q_sr);
      const float *q3 = qbase + row_offset(i0 + i + 3, group, q_sh, q_sr);
      for (size_t c = 0; c < d4; c += 4) {
        v128_t r0 = wasm_v128_load(q0 + c), r1 = wasm_v128_load(q1 + c);
        v128_t r2 = wasm_v128_load(q2 + c), r3 = wasm_v128_load(q3 + c);
        qe_transpose4x4(&r0, &r1, &r2, &r3);
        wasm_v128_store(out + 8 * c, wasm_f32x4_mul(r0, qs));
        wasm_v128_store(out + 8 * c + 8, wasm_f32x4_mul(r1, qs));
        wasm_v128_store(out + 8 * c + 16, wasm_f32x4_mul(r2, qs));
        wasm_v128_store(out + 8 * c + 24, wasm_f32x4_mul(r3, qs));
      }
      for (size_t c = d4; c < d; c++) {
        out[8 * c] = q0[c] * qscale, out[8 * c + 1] = q1[c] * qscale;
        out[8 * c + 2] = q2[c] * qscale, out[8 * c + 3] = q3[c] * qscale;
      }
    } else {
      for (size_t r = 0; r < 4; r++) {
        const float *qr = i + r < bq ? qbase + row_offset(i0 + i + r, group, q_sh, q_sr) : NULL;
        for (size_t c = 0; c < d; c++) out[8 * c + r] = qr ? qr[c] * qscale : 0.0f;
      }
    }
  }
  for (size_t i = 0; i < nb; i += 4) {
    wasm_v128_store(w->m + i, wasm_f32x4_splat(-INFINITY));
    wasm_v128_store(w->l + i, wasm_f32x4_splat(0.0f));
  }
  for (size_t i = 0; i < nb * dvp; i += 4) wasm_v128_store(w->acc + i, wasm_f32x4_splat(0.0f));

  /* Keys this tile can see: from the first query's window start to the last
   * query's end (padding, causality, window). A row that sees none keeps a
   * zero sum, and its output is 0. */
  const int64_t k_lo = keys_from(p, &frame, (int64_t)(i0 / group));
  const int64_t k_hi = keys_to(p, &frame, (int64_t)((i0 + bq - 1) / group));
  const size_t k_begin = (size_t)k_lo, k_end = k_hi > k_lo ? (size_t)k_hi : k_begin;

  for (size_t j0 = k_begin; j0 < k_end; j0 += tk) {
    const size_t bk = min_size(tk, k_end - j0);
    pack_keys(p->k + b * p->k_sb + hk * p->k_sh + j0 * p->k_sr, p->k_sr, bk, d, w->kb);
    pack_values(p->v + b * p->v_sb + hk * p->v_sh + j0 * p->v_sr, p->v_sr, bk, tk, dv, w->vb);

    for (size_t i = 0; i < nb; i += 8) {
      const strip sp = {w->qt + i * d, w->acc + i * dvp, w->m + i, w->l + i};
      /* The strip's eight rows (its padding rows too, counted as further
       * queries so they stay finite): keys any of them sees, [s_lo, s_hi),
       * and keys all of them see, [f_lo, f_hi), which need no masking. */
      const int64_t q_first = (int64_t)((i0 + i) / group), q_last = (int64_t)((i0 + i + 7) / group);
      const int64_t s_lo = keys_from(p, &frame, q_first), s_hi = keys_to(p, &frame, q_last);
      const int64_t f_lo = keys_from(p, &frame, q_last), f_hi = keys_to(p, &frame, q_first);
      if (s_hi <= (int64_t)j0 || s_lo >= (int64_t)(j0 + bk) || s_hi <= s_lo) continue;
      /* Keys a strip scores: up to the last one it sees. */
      const size_t bks = min_size(bk, (size_t)(s_hi - (int64_t)j0));
      float tmax[8];
      wasm_v128_store(tmax, wasm_f32x4_splat(-INFINITY));
      wasm_v128_store(tmax + 4, wasm_f32x4_splat(-INFINITY));
      /* Groups [jf0, jf1) need no masking: whole, and inside the keys all
       * rows see; the others (the tail, a causal diagonal, window edges, or
       * all of them with a mask tensor or softcap) take the slow path. */
      size_t jf0 = 0, jf1 = 0;
      if (!always_masked) {
        const int64_t lo = f_lo - (int64_t)j0, hi = f_hi - (int64_t)j0;
        jf0 = lo > 0 ? round_up((size_t)lo, 4) : 0;
        jf1 = hi > 0 ? min_size(bks, (size_t)hi) / 4 * 4 : 0;
        if (jf1 < jf0) jf0 = jf1 = 0;
      }
      strip_mask sm;
      if (jf0 > 0 || jf1 < bks) prepare_strip_mask(&sm, p, &frame, b, h0, group, i0 + i, bq - i);
      for (size_t j = 0; j < jf0; j += 4)
        score_tile(sp.qt, w->kb + j * d, d, w->st + 8 * j, tmax, &sm, j0 + j, j0 + bk);
      for (size_t j = jf0; j < jf1; j += 4)
        score_tile(sp.qt, w->kb + j * d, d, w->st + 8 * j, tmax, NULL, 0, 0);
      for (size_t j = jf1; j < bks; j += 4)
        score_tile(sp.qt, w->kb + j * d, d, w->st + 8 * j, tmax, &sm, j0 + j, j0 + bk);
      /* Lazy rescaling: move the reference max only for a score beyond it
       * plus the margin (always on a query's first key tile). */
      const v128_t t0 = wasm_v128_load(tmax), t1 = wasm_v128_load(tmax + 4);
      const v128_t margin = wasm_f32x4_splat(QE_LAZY_MARGIN);
      if (wasm_v128_any_true(
              wasm_v128_or(wasm_f32x4_gt(t0, wasm_f32x4_add(wasm_v128_load(sp.m), margin)),
                           wasm_f32x4_gt(t1, wasm_f32x4_add(wasm_v128_load(sp.m + 4), margin)))))
        raise_reference_max(&sp, dvp, t0, t1);
      /* A row with every score so far hidden keeps m = -inf; exp2 of its
       * -inf - -inf (NaN) is 0 (qe_vexp2_f32x4 clears what is not >= -125). */
      exp_strip(w->st, round_up(bks, 4), sp.m, sp.l);
      /* acc += P V over the keys scored (the rest of a group was masked to 0). */
      const size_t bk4 = round_up(bks, 4);
      for (size_t c = 0; c < dvp; c += 4) pv_tile(min_size(bk4, bk), w->st, w->vb + c * tk, sp.acc + 8 * c);
    }
  }

  /* One division per output element, at the end; four full rows at a time
   * transposed back from the strips in 4 x 4 blocks. A row that saw no key
   * (max still -inf, sum 0) is 0, not 0/0, when p->zero_empty_rows; any
   * other zero sum (scores that overflowed float32) stays NaN, for the
   * caller to report. */
  const size_t dv4 = dv / 4 * 4;
  const v128_t zero = wasm_f32x4_splat(0.0f), ones = wasm_i32x4_splat(-1);
  const v128_t neg_inf = wasm_f32x4_splat(-INFINITY);
  const v128_t keep_all = wasm_i32x4_splat(p->zero_empty_rows ? 0 : -1);
  for (size_t i = 0; i < bq; i += 4) {
    const float *arow = w->acc + (i / 8) * 8 * dvp + i % 8;
    if (i + 4 <= bq) {
      float *o0 = obase + row_offset(i0 + i, group, o_sh, o_sr);
      float *o1 = obase + row_offset(i0 + i + 1, group, o_sh, o_sr);
      float *o2 = obase + row_offset(i0 + i + 2, group, o_sh, o_sr);
      float *o3 = obase + row_offset(i0 + i + 3, group, o_sh, o_sr);
      const v128_t l = wasm_v128_load(w->l + i);
      const v128_t l0 = wasm_i32x4_shuffle(l, l, 0, 0, 0, 0), l1 = wasm_i32x4_shuffle(l, l, 1, 1, 1, 1);
      const v128_t l2 = wasm_i32x4_shuffle(l, l, 2, 2, 2, 2), l3 = wasm_i32x4_shuffle(l, l, 3, 3, 3, 3);
      /* All ones except for rows that saw no key. */
      const v128_t keep = wasm_v128_or(keep_all, wasm_v128_bitselect(wasm_f32x4_gt(l, zero), ones,
                                                                     wasm_i32x4_eq(wasm_v128_load(w->m + i), neg_inf)));
      const v128_t k0 = wasm_i32x4_shuffle(keep, keep, 0, 0, 0, 0), k1 = wasm_i32x4_shuffle(keep, keep, 1, 1, 1, 1);
      const v128_t k2 = wasm_i32x4_shuffle(keep, keep, 2, 2, 2, 2), k3 = wasm_i32x4_shuffle(keep, keep, 3, 3, 3, 3);
      for (size_t c = 0; c < dv4; c += 4) {
        v128_t r0 = wasm_v128_load(arow + 8 * c), r1 = wasm_v128_load(arow + 8 * c + 8);
        v128_t r2 = wasm_v128_load(arow + 8 * c + 16), r3 = wasm_v128_load(arow + 8 * c + 24);
        qe_transpose4x4(&r0, &r1, &r2, &r3);
        wasm_v128_store(o0 + c, wasm_v128_and(wasm_f32x4_div(r0, l0), k0));
        wasm_v128_store(o1 + c, wasm_v128_and(wasm_f32x4_div(r1, l1), k1));
        wasm_v128_store(o2 + c, wasm_v128_and(wasm_f32x4_div(r2, l2), k2));
        wasm_v128_store(o3 + c, wasm_v128_and(wasm_f32x4_div(r3, l3), k3));
      }
      float *orow[4] = {o0, o1, o2, o3};
      for (size_t c = dv4; c < dv; c++)
        for (size_t r = 0; r < 4; r++)
          orow[r][c] = saw_no_key(p, w, i + r) ? 0.0f : arow[8 * c + r] / w->l[i + r];
    } else {
      for (size_t r = 0; i + r < bq; r++) {
        float *orow = obase + row_offset(i0 + i + r, group, o_sh, o_sr);
        const int none = saw_no_key(p, w, i + r);
        for (size_t c = 0; c < dv; c++) orow[c] = none ? 0.0f : arow[8 * c + r] / w->l[i + r];
      }
    }
  }
}

void qe_flash_attention_forward(const qe_attention_problem *p, size_t task_begin, size_t task_end,
                                void *workspace) {
  const size_t tq = p->tile_q, tk = p->tile_k, d = p->head_dim, dvp = round_up(p->v_head_dim, 4);
  workspace_view w = {.d = d, .dvp = dvp};
  qe_arena_cursor cur = {(unsigned char *)workspace, 0, qe_attention_workspace_bytes(p)};
  w.qt = qe_arena_take(&cur, tq * d * sizeof(float));
  w.kb = qe_arena_take(&cur, tk * d * sizeof(float));
  w.vb = qe_arena_take(&cur, tk * dvp * sizeof(float));
  w.st = qe_arena_take(&cur, tk * 8 * sizeof(float));
  w.acc = qe_arena_take(&cur, tq * dvp * sizeof(float));
  w.m = qe_arena_take(&cur, tq * sizeof(float));
  w.l = qe_arena_take(&cur, tq * sizeof(float));
  for (size_t t = task_begin; t < task_end; t++) attention_task(p, t, &w);
}

void qe_attention_scores(const qe_attention_problem *p, int mode, float *out) {
  const size_t nq = p->nq, nk = p->nk, d = p->head_dim, group = group_size(p);
  for (size_t b = 0; b < p->batch; b++)
    for (size_t h = 0; h < p->q_heads; h++)
      for (size_t i = 0; i < nq; i++) {
        const float *q = p->q + b * p->q_sb + h * p->q_sh + i * p->q_sr;
        const float *kh = p->k + b * p->k_sb + (h / group) * p->k_sh;
        float *row = out + ((b * p->q_heads + h) * nq + i) * nk;
        for (size_t j = 0; j < nk; j++) {
          const float *k = kh + j * p->k_sr;
          float dot = 0.0f;
          for (size_t c = 0; c < d; c++) dot += q[c] * k[c];
          row[j] = dot * p->scale;
        }
        if (p->softcap > 0.0f) {
          size_t j = 0;
          for (; j + 4 <= nk; j += 4) wasm_v128_store(row + j, qe_softcap_f32x4(wasm_v128_load(row + j), p->softcap));
          for (; j < nk; j++) {
            float t[4] = {row[j], 0.0f, 0.0f, 0.0f};
            wasm_v128_store(t, qe_softcap_f32x4(wasm_v128_load(t), p->softcap));
            row[j] = t[0];
          }
        }
        if (mode < 2) continue;
        /* The reference zeroes a row whose bias hides every key, whatever its scores. */
        int any_visible = 0;
        float max = -INFINITY;
        for (size_t j = 0; j < nk; j++) {
          const float bias = qe_attention_bias(p, b, h, i, j);
          if (bias != -INFINITY) any_visible = 1;
          row[j] += bias;
          if (row[j] > max) max = row[j];
        }
        if (mode < 3) continue;
        if (!any_visible || max == -INFINITY) {
          for (size_t j = 0; j < nk; j++) row[j] = 0.0f;
          continue;
        }
        float sum = 0.0f;
        for (size_t j = 0; j < nk; j++) {
          float t[4] = {row[j] - max, 0.0f, 0.0f, 0.0f};
          wasm_v128_store(t, qe_vexp_f32x4(wasm_v128_load(t)));
          row[j] = t[0];
          sum += t[0];
        }
        for (size_t j = 0; j < nk; j++) row[j] /= sum;
      }
}
