/*
 * Micro-LoRA (see micro_lora.h): forward pass, exact gradient of the
 * contrastive loss, SGD / Adam steps, merge, and the byte format.
 *
 * Byte format, version 1, little-endian:
 *   0  u32 magic "QELR"      4  u32 version       8  u64 total bytes
 *   16 i32 dim               20 i32 rank          24 f32 alpha
 *   28 u32 optimizer         32 f32 learning rate, beta1, beta2, epsilon,
 *                               weight decay (5 x 4)
 *   52 u32 zero              56 u64 seed          64 u64 steps
 *   72 A, B^T, m_A, v_A, m_B^T, v_B^T: each rank x dim f32, rows unpadded
 *   end-4 u32 CRC32C of every byte before it
 * Accumulated gradients are not saved: an export is taken between steps.
 */
#include "adapt/micro_lora.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "adapt/bytes.h"
#include "adapt/crc32c.h"
#include "adapt/scalar_math.h"
#include "arena.h"
#include "qe_api.h"
#include "search/similarity.h"
#include "simd.h"

#define LORA_MAGIC 0x524C4551u /* "QELR" */
#define LORA_VERSION 1u
#define LORA_HEADER 72u
#define LORA_ARRAYS 12u

/* ------------------------------------------------------------- vectors */


/* *kk = k . k and *uk = u . k in one pass over k. */
static void norm_and_dot_f32(size_t n, const float *u, const float *k, float *kk, float *uk) {
  v128_t n0 = wasm_f32x4_splat(0.0f), n1 = n0, d0 = n0, d1 = n0;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const v128_t k0 = wasm_v128_load(k + i), k1 = wasm_v128_load(k + i + 4);
    n0 = qe_f32x4_madd(k0, k0, n0);
    n1 = qe_f32x4_madd(k1, k1, n1);
    d0 = qe_f32x4_madd(wasm_v128_load(u + i), k0, d0);
    d1 = qe_f32x4_madd(wasm_v128_load(u + i + 4), k1, d1);
  }
  for (; i + 4 <= n; i += 4) {
    const v128_t k0 = wasm_v128_load(k + i);
    n0 = qe_f32x4_madd(k0, k0, n0);
    d0 = qe_f32x4_madd(wasm_v128_load(u + i), k0, d0);
  }
  float sn = qe_f32x4_hsum(wasm_f32x4_add(n0, n1)), sd = qe_f32x4_hsum(wasm_f32x4_add(d0, d1));
  for (; i < n; i++) {
    sn += k[i] * k[i];
    sd += u[i] * k[i];
  }
  *kk = sn;
  *uk = sd;
}

/* out[j] = row j of a (stride lda) . x, for j < rows: two rows per pass, so
 * each load of x serves both, with eight independent add chains (four were
 * bound by the multiply-add's latency: 4 cycles per chain link). */
static void dot_rows_f32(size_t rows, size_t n, const float *a, size_t lda, const float *x, float *out) {
  size_t j = 0;
  for (; j + 2 <= rows; j += 2) {
    const float *r0 = a + j * lda, *r1 = r0 + lda;
    v128_t a0 = wasm_f32x4_splat(0.0f), a1 = a0, b0 = a0, b1 = a0;
    v128_t a2 = a0, a3 = a0, b2 = a0, b3 = a0;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
      const v128_t x0 = wasm_v128_load(x + i), x1 = wasm_v128_load(x + i + 4);
      const v128_t x2 = wasm_v128_load(x + i + 8), x3 = wasm_v128_load(x + i + 12);
      a0 = qe_f32x4_madd(wasm_v128_load(r0 + i), x0, a0);
      a1 = qe_f32x4_madd(wasm_v128_load(r0 + i + 4), x1, a1);
      a2 = qe_f32x4_madd(wasm_v128_load(r0 + i + 8), x2, a2);
      a3 = qe_f32x4_madd(wasm_v128_load(r0 + i + 12), x3, a3);
      b0 = qe_f32x4_madd(wasm_v128_load(r1 + i), x0, b0);
      b1 = qe_f32x4_madd(wasm_v128_load(r1 + i + 4), x1, b1);
      b2 = qe_f32x4_madd(wasm_v128_load(r1 + i + 8), x2, b2);
      b3 = qe_f32x4_madd(wasm_v128_load(r1 + i + 12), x3, b3);
    }
    a0 = wasm_f32x4_add(a0, a2);
    a1 = wasm_f32x4_add(a1, a3);
    b0 = wasm_f32x4_add(b0, b2);
    b1 = wasm_f32x4_add(b1, b3);
    for (; i + 8 <= n; i += 8) {
      const v128_t x0 = wasm_v128_load(x + i), x1 = wasm_v128_load(x + i + 4);
      a0 = qe_f32x4_madd(wasm_v128_load(r0 + i), x0, a0);
      a1 = qe_f32x4_madd(wasm_v128_load(r0 + i + 4), x1, a1);
      b0 = qe_f32x4_madd(wasm_v128_load(r1 + i), x0, b0);
      b1 = qe_f32x4_madd(wasm_v128_load(r1 + i + 4), x1, b1);
    }
    for (; i + 4 <= n; i += 4) {
      const v128_t x0 = wasm_v128_load(x + i);
      a0 = qe_f32x4_madd(wasm_v128_load(r0 + i), x0, a0);
      b0 = qe_f32x4_madd(wasm_v128_load(r1 + i), x0, b0);
    }
    float s0 = qe_f32x4_hsum(wasm_f32x4_add(a0, a1)), s1 = qe_f32x4_hsum(wasm_f32x4_add(b0, b1));
    for (; i < n; i++) {
      s0 += r0[i] * x[i];
      s1 += r1[i] * x[i];
    }
    out[j] = s0;
    out[j + 1] = s1;
  }
  if (j < rows) out[j] = qe_f32_dot(n, a + j * lda, x);
}

/* y[i] += c * x[i] */
static void axpy_f32(size_t n, float c, const float *x, float *y) {
  const v128_t vc = wasm_f32x4_splat(c);
  size_t i = 0;
  for (; i + 4 <= n; i += 4)
    wasm_v128_store(y + i, qe_f32x4_madd(vc, wasm_v128_load(x + i), wasm_v128_load(y + i)));
  for (; i < n; i++) y[i] += c * x[i];
}

/* ------------------------------------------------------ create / reset */

/* splitmix64: a seeded stream that is the same in every build. */
static uint64_t splitmix64(uint64_t *state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* Uniform in (0, 1]: never 0, so its log is finite. */
static double uniform_open0(uint64_t *state) {
  return (double)((splitmix64(state) >> 11) + 1) * (1.0 / 9007199254740992.0);
}

static void draw_a(qe_micro_lora *l) {
  uint64_t state = l->seed;
  const double sd = 1.0 / sqrt((double)l->dim);
  for (size_t j = 0; j < l->rank; j++) {
    float *row = l->a + j * l->ld;
    for (size_t i = 0; i < l->dim; i += 2) {
      /* Marsaglia's polar method: two normal draws per accepted point of
       * the unit disc (only log and sqrt needed). */
      double u, v, s;
      do {
        u = 2.0 * uniform_open0(&state) - 1.0;
        v = 2.0 * uniform_open0(&state) - 1.0;
        s = u * u + v * v;
      } while (s >= 1.0 || s == 0.0);
      const double f = sd * sqrt(-2.0 * qe_log_f64(s) / s);
      row[i] = (float)(u * f);
      if (i + 1 < l->dim) row[i + 1] = (float)(v * f);
    }
  }
}

static size_t array_floats(const qe_micro_lora *l) { return l->rank * l->ld; }

qe_micro_lora *qe_micro_lora_create(size_t dim, size_t rank, float alpha, uint64_t seed) {
  qe_micro_lora *l = qe_handle_new(QE_HANDLE_LORA, QE_MICRO_LORA_LAYOUT, sizeof *l);
  if (!l) return NULL;
  l->dim = dim;
  l->rank = rank;
  l->ld = (dim + 3) / 4 * 4;
  l->alpha = alpha;
  l->scale = alpha / (float)rank;
  l->seed = seed;
  l->optimizer = QE_LORA_ADAM;
  l->learning_rate = 0.01f;
  l->beta1 = 0.9f;
  l->beta2 = 0.999f;
  l->epsilon = 1e-8f;
  l->weight_decay = 0.0f;
  const size_t n = array_floats(l);
  l->block = aligned_alloc(16, LORA_ARRAYS * n * sizeof(float));
  if (!l->block) {
    qe_handle_free(l);
    return NULL;
  }
  float **arrays[LORA_ARRAYS] = {&l->a, &l->bt, &l->grad_a, &l->grad_bt, &l->m_a, &l->v_a,
                                 &l->m_bt, &l->v_bt, &l->spare[0], &l->spare[1], &l->spare[2], &l->spare[3]};
  for (size_t k = 0; k < LORA_ARRAYS; k++) *arrays[k] = l->block + k * n;
  qe_micro_lora_reset(l);
  return l;
}

void qe_micro_lora_destroy(qe_micro_lora *l) {
  if (!l) return;
  free(l->block);
  qe_handle_free(l);
}

void qe_micro_lora_reset(qe_micro_lora *l) {
  memset(l->block, 0, LORA_ARRAYS * array_floats(l) * sizeof(float));
  draw_a(l);
  l->steps = 0;
  l->grad_count = 0;
}

/* ------------------------------------------------------------- forward */

/* y = x + sum_j c_j B^T_j for a rank known at compile time (the switch in
 * forward makes one copy per rank, loops unrolled over j). Returns the sum
 * of every y: finite whenever every y is, and infinite or NaN when one is
 * not (an overflow of the sum alone is told apart by the caller). */
static inline __attribute__((always_inline)) float add_low_rank(size_t d, size_t ld, const float *bt,
                                                                const float *c, size_t r, const float *x,
                                                                float *y) {
  v128_t cv[QE_LORA_MAX_RANK];
  for (size_t j = 0; j < r; j++) cv[j] = wasm_f32x4_splat(c[j]);
  /* Four running sums: one would chain every add of the pass on the last
   * (its latency, not the loads, then sets the pace). */
  v128_t s0 = wasm_f32x4_splat(0.0f), s1 = s0, s2 = s0, s3 = s0;
  size_t i = 0;
  for (; i + 16 <= d; i += 16) {
    v128_t a0 = wasm_v128_load(x + i), a1 = wasm_v128_load(x + i + 4);
    v128_t a2 = wasm_v128_load(x + i + 8), a3 = wasm_v128_load(x + i + 12);
    for (size_t j = 0; j < r; j++) {
      const float *b = bt + j * ld + i;
      a0 = qe_f32x4_madd(cv[j], wasm_v128_load(b), a0);
      a1 = qe_f32x4_madd(cv[j], wasm_v128_load(b + 4), a1);
      a2 = qe_f32x4_madd(cv[j], wasm_v128_load(b + 8), a2);
      a3 = qe_f32x4_madd(cv[j], wasm_v128_load(b + 12), a3);
    }
    wasm_v128_store(y + i, a0);
    wasm_v128_store(y + i + 4, a1);
    wasm_v128_store(y + i + 8, a2);
    wasm_v128_store(y + i + 12, a3);
    s0 = wasm_f32x4_add(s0, a0);
    s1 = wasm_f32x4_add(s1, a1);
    s2 = wasm_f32x4_add(s2, a2);
    s3 = wasm_f32x4_add(s3, a3);
  }
  for (; i + 4 <= d; i += 4) {
    v128_t acc = wasm_v128_load(x + i);
    for (size_t j = 0; j < r; j++) acc = qe_f32x4_madd(cv[j], wasm_v128_load(bt + j * ld + i), acc);
    wasm_v128_store(y + i, acc);
    s0 = wasm_f32x4_add(s0, acc);
  }
  const v128_t sum = wasm_f32x4_add(wasm_f32x4_add(s0, s1), wasm_f32x4_add(s2, s3));
  float tail = 0.0f;
  for (; i < d; i++) {
    float acc = x[i];
    for (size_t j = 0; j < r; j++) acc += c[j] * bt[j * ld + i];
    y[i] = acc;
    tail += acc;
  }
  return qe_f32x4_hsum(sum) + tail;
}

/* h[j] = A_j . x, and y = x + scale * sum_j h_j B^T_j, in two passes over
 * dim (the r dot products, then one fused pass writing y). Returns -1 when
 * h or y holds a NaN or an infinity. A non-finite x makes h non-finite (a
 * NaN or infinity times any weight is not finite), so x needs no check of
 * its own. */
static int forward(const qe_micro_lora *l, const float *x, float *y, float *h) {
  const size_t d = l->dim, r = l->rank, ld = l->ld;
  float c[QE_LORA_MAX_RANK];
  dot_rows_f32(r, d, l->a, ld, x, h);
  for (size_t j = 0; j < r; j++) {
    c[j] = l->scale * h[j];
    if (!isfinite(c[j])) return -1;
  }
  float sum;
  switch (r) {
    case 1: sum = add_low_rank(d, ld, l->bt, c, 1, x, y); break;
    case 2: sum = add_low_rank(d, ld, l->bt, c, 2, x, y); break;
    case 4: sum = add_low_rank(d, ld, l->bt, c, 4, x, y); break;
    case 8: sum = add_low_rank(d, ld, l->bt, c, 8, x, y); break;
    default: sum = add_low_rank(d, ld, l->bt, c, r, x, y); break;
  }
  if (isfinite(sum)) return 0;
  /* The sum can overflow with every y finite (elements near FLT_MAX): look. */
  for (size_t i = 0; i < d; i++)
    if (!isfinite(y[i])) return -1;
  return 0;
}

int qe_micro_lora_forward(const qe_micro_lora *l, const float *x, float *y) {
  float h[QE_LORA_MAX_RANK];
  return forward(l, x, y, h);
}

/* ------------------------------------------------------------ gradient */

size_t qe_micro_lora_grad_workspace_bytes(size_t dim, size_t keys) {
  return 2 * qe_arena_round(dim * sizeof(float)) + qe_arena_round(keys * sizeof(float)) +
         2 * qe_arena_round(keys * sizeof(double));
}

int qe_micro_lora_gradient(const qe_micro_lora *l, const float *x, const float *keys,
                           size_t nkeys, size_t ldk, float temperature, float reward,
                           float *grad_a, float *grad_bt, void *workspace, float *loss_out) {
  const size_t d = l->dim, r = l->rank;
  qe_arena_cursor cur = {workspace, 0, qe_micro_lora_grad_workspace_bytes(d, nkeys)};
  float *u = qe_arena_take(&cur, d * sizeof(float));    /* y, then y / |y| */
  float *g = qe_arena_take(&cur, d * sizeof(float));    /* dL/d(y/|y|), then dL/dy */
  float *kinv = qe_arena_take(&cur, nkeys * sizeof(float));
  double *coef = qe_arena_take(&cur, nkeys * sizeof(double)); /* c_i, then e_i, then dL/dc_i */
  double *z = qe_arena_take(&cur, nkeys * sizeof(double));    /* c_i / temperature */
  float h[QE_LORA_MAX_RANK];

  if (forward(l, x, u, h) != 0) return -1;
  const float uu = qe_f32_dot(d, u, u);
  if (!(uu > 0.0f) || !isfinite(uu)) return -1;
  const float inv_nu = 1.0f / sqrtf(uu);
  for (size_t i = 0; i < d; i++) u[i] *= inv_nu;

  const double inv_t = 1.0 / (double)temperature;
  for (size_t i = 0; i < nkeys; i++) {
    float kk, uk;
    norm_and_dot_f32(d, u, keys + i * ldk, &kk, &uk);
    if (!isfinite(kk) || !isfinite(uk)) return -1;
    /* A zero key has cosine 0 with everything, as in the search. */
    kinv[i] = kk > 0.0f ? 1.0f / sqrtf(kk) : 0.0f;
    coef[i] = (double)(uk * kinv[i]);
  }

  const double w = (double)reward;
  double loss;
  if (nkeys == 1) {
    loss = w * (1.0 - coef[0]);
    coef[0] = -w;
  } else {
    double zmax = -INFINITY, rest_max = -INFINITY;
    for (size_t i = 0; i < nkeys; i++) {
      z[i] = coef[i] * inv_t;
      if (z[i] > zmax) zmax = z[i];
      if (i > 0 && z[i] > rest_max) rest_max = z[i];
    }
    /* One exponential per key: e_i = exp(z_i - zmax), p_i = e_i / sum. */
    double sum = 0.0;
    for (size_t i = 0; i < nkeys; i++) {
      coef[i] = qe_exp_f64(z[i] - zmax);
      sum += coef[i];
    }
    const double inv_sum = 1.0 / sum, lse = zmax + qe_log_f64(sum);
    if (w >= 0.0) {
      /* L = w (lse - z_0); dL/dz_i = w (p_i - [i = 0]) */
      loss = w * (lse - z[0]);
      for (size_t i = 0; i < nkeys; i++) coef[i] = w * (coef[i] * inv_sum - (i == 0 ? 1.0 : 0.0)) * inv_t;
    } else {
      /* L = |w| (lse - lse_rest) = -|w| log(1 - p_0); dL/dz_0 = |w| p_0;
       * dL/dz_i = -|w| p_0 q_i, q = softmax over the negatives. Their sum
       * is taken from rest_max, so it cannot underflow. */
      const double aw = -w, shift = qe_exp_f64(zmax - rest_max); /* e_i * shift = exp(z_i - rest_max) */
      double rest = 0.0;
      for (size_t i = 1; i < nkeys; i++) rest += coef[i] * shift;
      if (!(rest >= 1.0) || !isfinite(shift)) {
        /* zmax - rest_max is huge (shift overflows or e_i underflowed): sum from scratch. */
        rest = 0.0;
        for (size_t i = 1; i < nkeys; i++) rest += qe_exp_f64(z[i] - rest_max);
      }
      const double p0 = coef[0] * inv_sum;
      loss = aw * (lse - (rest_max + qe_log_f64(rest)));
      const double inv_rest = 1.0 / rest;
      coef[0] = aw * p0 * inv_t;
      for (size_t i = 1; i < nkeys; i++) coef[i] = -aw * p0 * qe_exp_f64(z[i] - rest_max) * inv_rest * inv_t;
    }
  }

  /* A reward so large that the loss leaves float's range: refused. */
  if (!isfinite((float)loss)) return -1;

  /* g = dL/d(y/|y|) = sum_i dL/dc_i * k_i / |k_i| */
  memset(g, 0, d * sizeof(float));
  for (size_t i = 0; i < nkeys; i++) {
    const float c = (float)(coef[i] * (double)kinv[i]);
    if (c != 0.0f) axpy_f32(d, c, keys + i * ldk, g);
  }
  /* Through the normalisation: dL/dy = (g - <g, y^> y^) / |y|. */
  const float gy = qe_f32_dot(d, g, u);
  for (size_t i = 0; i < d; i++) g[i] = (g[i] - gy * u[i]) * inv_nu;

  /* y = x + s B^T^T h: dL/dB^T_j = s h_j dL/dy; dL/dh_j = s B^T_j . dL/dy;
   * h = A x: dL/dA_j = dL/dh_j x. B^T is read before any change. */
  for (size_t j = 0; j < r; j++) {
    const float t = l->scale * qe_f32_dot(d, l->bt + j * l->ld, g);
    axpy_f32(d, l->scale * h[j], g, grad_bt + j * l->ld);
    axpy_f32(d, t, x, grad_a + j * l->ld);
  }
  *loss_out = (float)loss;
  return 0;
}

int qe_micro_lora_accumulate(qe_micro_lora *l, const float *x, const float *keys, size_t nkeys,
                             size_t ldk, float temperature, float reward, void *workspace,
                             float *loss) {
  if (qe_micro_lora_gradient(l, x, keys, nkeys, ldk, temperature, reward, l->grad_a, l->grad_bt,
                             workspace, loss) != 0)
    return -1;
  l->grad_count++;
  return 0;
}

/* --------------------------------------------------------------- steps */

/* One update of theta (n floats, n a multiple of 4) with gradient sum g,
 * written to new arrays (theta into g's, m and v into spares): the old
 * state stays intact until the whole step is known to be finite. Returns 0
 * when every new value is finite. */
static int update(const qe_micro_lora *l, const float *theta, float *g, const float *m, const float *v,
                  float *m_new, float *v_new, size_t n, float grad_scale, float c1, float c2) {
  const v128_t lr = wasm_f32x4_splat(l->learning_rate);
  const v128_t decay = wasm_f32x4_splat(1.0f - l->learning_rate * l->weight_decay);
  const v128_t gs = wasm_f32x4_splat(grad_scale);
  const v128_t zero = wasm_f32x4_splat(0.0f);
  v128_t fin = zero; /* stays 0 unless some new value is infinite or NaN */
  if (l->optimizer == QE_LORA_SGD) {
    for (size_t i = 0; i < n; i += 4) {
      const v128_t gi = wasm_f32x4_mul(wasm_v128_load(g + i), gs);
      const v128_t t = wasm_f32x4_mul(wasm_v128_load(theta + i), decay);
      const v128_t out = wasm_f32x4_sub(t, wasm_f32x4_mul(lr, gi));
      wasm_v128_store(g + i, out);
      fin = wasm_f32x4_add(fin, wasm_f32x4_mul(out, zero));
    }
    return qe_f32x4_hsum(fin) == 0.0f ? 0 : -1;
  }
  const v128_t b1 = wasm_f32x4_splat(l->beta1), b1c = wasm_f32x4_splat(1.0f - l->beta1);
  const v128_t b2 = wasm_f32x4_splat(l->beta2), b2c = wasm_f32x4_splat(1.0f - l->beta2);
  const v128_t step = wasm_f32x4_splat(l->learning_rate / c1), inv_c2 = wasm_f32x4_splat(1.0f / c2);
  const v128_t eps = wasm_f32x4_splat(l->epsilon);
  for (size_t i = 0; i < n; i += 4) {
    const v128_t gi = wasm_f32x4_mul(wasm_v128_load(g + i), gs);
    const v128_t mi = wasm_f32x4_add(wasm_f32x4_mul(b1, wasm_v128_load(m + i)), wasm_f32x4_mul(b1c, gi));
    const v128_t vi = wasm_f32x4_add(wasm_f32x4_mul(b2, wasm_v128_load(v + i)),
                                     wasm_f32x4_mul(b2c, wasm_f32x4_mul(gi, gi)));
    wasm_v128_store(m_new + i, mi);
    wasm_v128_store(v_new + i, vi);
    const v128_t den = wasm_f32x4_add(wasm_f32x4_sqrt(wasm_f32x4_mul(vi, inv_c2)), eps);
    const v128_t t = wasm_f32x4_mul(wasm_v128_load(theta + i), decay);
    const v128_t out = wasm_f32x4_sub(t, wasm_f32x4_div(wasm_f32x4_mul(step, mi), den));
    wasm_v128_store(g + i, out);
    fin = wasm_f32x4_add(fin, wasm_f32x4_mul(wasm_f32x4_add(out, vi), zero));
  }
  return qe_f32x4_hsum(fin) == 0.0f ? 0 : -1;
}

static void swap_arrays(float **a, float **b) {
  float *t = *a;
  *a = *b;
  *b = t;
}

int qe_micro_lora_step(qe_micro_lora *l) {
  if (l->grad_count == 0) return 0;
  const uint64_t t = l->steps + 1;
  const float grad_scale = 1.0f / (float)l->grad_count;
  /* Adam's bias corrections 1 - beta^t, in double so that t in the millions stays exact enough. */
  const float c1 = (float)(1.0 - qe_exp_f64((double)t * qe_log_f64((double)l->beta1)));
  const float c2 = (float)(1.0 - qe_exp_f64((double)t * qe_log_f64((double)l->beta2)));
  const size_t n = array_floats(l);
  const int bad = update(l, l->a, l->grad_a, l->m_a, l->v_a, l->spare[0], l->spare[1], n, grad_scale, c1, c2) |
                  update(l, l->bt, l->grad_bt, l->m_bt, l->v_bt, l->spare[2], l->spare[3], n, grad_scale, c1, c2);
  if (!bad) {
    /* The new weights are in the gradient arrays, the new moments in the
     * spares: swap them in; the old ones become the next scratch. */
    swap_arrays(&l->a, &l->grad_a);
    swap_arrays(&l->bt, &l->grad_bt);
    if (l->optimizer == QE_LORA_ADAM) {
      swap_arrays(&l->m_a, &l->spare[0]);
      swap_arrays(&l->v_a, &l->spare[1]);
      swap_arrays(&l->m_bt, &l->spare[2]);
      swap_arrays(&l->v_bt, &l->spare[3]);
    }
    l->steps = t;
  }
  memset(l->grad_a, 0, n * sizeof(float));
  memset(l->grad_bt, 0, n * sizeof(float));
  l->grad_count = 0;
  /* The padding of each row is zero in every array, so it stays zero. */
  return bad ? -1 : 0;
}

void qe_micro_lora_merge(const qe_micro_lora *l, float *w, size_t ldw) {
  for (size_t i = 0; i < l->dim; i++)
    for (size_t j = 0; j < l->rank; j++)
      axpy_f32(l->dim, l->scale * l->bt[j * l->ld + i], l->a + j * l->ld, w + i * ldw);
}

/* --------------------------------------------------------- byte format */

static float *saved_arrays(const qe_micro_lora *l, size_t k) {
  float *const arrays[6] = {l->a, l->bt, l->m_a, l->v_a, l->m_bt, l->v_bt};
  return arrays[k];
}

size_t qe_micro_lora_export_bytes(const qe_micro_lora *l) {
  return LORA_HEADER + 6 * l->rank * l->dim * sizeof(float) + 4;
}

void qe_micro_lora_export(const qe_micro_lora *l, unsigned char *out) {
  const size_t total = qe_micro_lora_export_bytes(l);
  qe_byte_writer w = {out, total};
  qe_put_u32(&w, LORA_MAGIC);
  qe_put_u32(&w, LORA_VERSION);
  qe_put_u64(&w, total);
  qe_put_u32(&w, (uint32_t)l->dim);
  qe_put_u32(&w, (uint32_t)l->rank);
  qe_put_f32(&w, l->alpha);
  qe_put_u32(&w, (uint32_t)l->optimizer);
  qe_put_f32(&w, l->learning_rate);
  qe_put_f32(&w, l->beta1);
  qe_put_f32(&w, l->beta2);
  qe_put_f32(&w, l->epsilon);
  qe_put_f32(&w, l->weight_decay);
  qe_put_u32(&w, 0);
  qe_put_u64(&w, l->seed);
  qe_put_u64(&w, l->steps);
  for (size_t k = 0; k < 6; k++)
    for (size_t j = 0; j < l->rank; j++) qe_put(&w, saved_arrays(l, k) + j * l->ld, l->dim * sizeof(float));
  qe_put_u32(&w, qe_crc32c_update(0, out, total - 4));
}

static int finite_all(const float *x, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!isfinite(x[i])) return 0;
  return 1;
}

int qe_micro_lora_import(const unsigned char *bytes, size_t n, qe_micro_lora **out) {
  *out = NULL;
  const int env = qe_adapt_check_envelope(bytes, n, LORA_MAGIC, LORA_VERSION, LORA_HEADER + 4);
  if (env != QE_OK) return env;
  qe_byte_reader r = {bytes + 16, n - 16, 0};
  const uint32_t dim = qe_get_u32(&r), rank = qe_get_u32(&r);
  const float alpha = qe_get_f32(&r);
  const uint32_t optimizer = qe_get_u32(&r);
  float hp[5];
  for (size_t k = 0; k < 5; k++) hp[k] = qe_get_f32(&r);
  qe_get_u32(&r);
  const uint64_t seed = qe_get_u64(&r), steps = qe_get_u64(&r);
  if (dim < 1 || dim > QE_LORA_MAX_DIM || rank < 1 || rank > QE_LORA_MAX_RANK || optimizer > QE_LORA_ADAM ||
      !(fabsf(alpha) <= 1e6f) || !finite_all(hp, 5) || !(hp[0] >= 0 && hp[0] <= 1e6f) ||
      (uint64_t)n != LORA_HEADER + 6 * (uint64_t)rank * dim * sizeof(float) + 4)
    return QE_ERR_FORMAT;
  qe_micro_lora *l = qe_micro_lora_create(dim, rank, alpha, seed);
  if (!l) return QE_ERR_NO_MEMORY;
  l->optimizer = (int32_t)optimizer;
  l->learning_rate = hp[0];
  l->beta1 = hp[1];
  l->beta2 = hp[2];
  l->epsilon = hp[3];
  l->weight_decay = hp[4];
  l->steps = steps;
  for (size_t k = 0; k < 6; k++)
    for (size_t j = 0; j < rank; j++) {
      float *row = saved_arrays(l, k) + j * l->ld;
      qe_get(&r, row, dim * sizeof(float));
      if (!finite_all(row, dim)) {
        qe_micro_lora_destroy(l);
        return QE_ERR_FORMAT;
      }
    }
  *out = l;
  return QE_OK;
}
