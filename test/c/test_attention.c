/*
 * Flash attention against a double-precision reference that holds the whole
 * score row, on shapes chosen to hit every tail: one query, one key, head
 * sizes not a multiple of 4 or 8, tiles larger and smaller than the sequence,
 * cross attention both ways, causal and padding masks, and inputs whose
 * scores overflow a naive exp.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "attention/flash_attention.h"
#include "qe_api.h"
#include "qe_test.h"

typedef struct {
  int nq, nk, dim, heads, causal, valid_k, block_q, block_k;
  float lo, hi, scale; /* scale 0: 1/sqrt(head_dim) */
} attn_case;

static void reference_attention(const attn_case *c, const float *q, const float *k, const float *v,
                                double *out) {
  const int d = c->dim / c->heads;
  const double scale = c->scale != 0 ? c->scale : 1.0 / sqrt((double)d);
  double *s = malloc(sizeof(double) * (size_t)c->nk);
  for (int h = 0; h < c->heads; h++) {
    for (int i = 0; i < c->nq; i++) {
      double mx = -INFINITY;
      for (int j = 0; j < c->nk; j++) {
        int visible = j < c->valid_k && (!c->causal || j <= i);
        double dot = 0;
        for (int p = 0; p < d; p++)
          dot += (double)q[i * c->dim + h * d + p] * (double)k[j * c->dim + h * d + p];
        s[j] = visible ? dot * scale : -INFINITY;
        if (s[j] > mx) mx = s[j];
      }
      double sum = 0;
      for (int j = 0; j < c->nk; j++) {
        s[j] = isinf(s[j]) ? 0 : exp(s[j] - mx);
        sum += s[j];
      }
      for (int p = 0; p < d; p++) {
        double acc = 0;
        for (int j = 0; j < c->nk; j++) acc += s[j] * (double)v[j * c->dim + h * d + p];
        out[i * c->dim + h * d + p] = acc / sum;
      }
    }
  }
  free(s);
}

static void run_case(const attn_case *c, double tol) {
  size_t qn = (size_t)c->nq * c->dim, kn = (size_t)c->nk * c->dim;
  float *q = malloc(qn * 4), *k = malloc(kn * 4), *v = malloc(kn * 4), *o = malloc(qn * 4);
  double *want = malloc(qn * sizeof(double));
  qe_rng_fill(q, qn, c->lo, c->hi);
  qe_rng_fill(k, kn, c->lo, c->hi);
  qe_rng_fill(v, kn, -1, 1);
  float scale = c->scale != 0 ? c->scale : 1.0f / sqrtf((float)(c->dim / c->heads));
  int valid = c->valid_k ? c->valid_k : c->nk;
  attn_case full = *c;
  full.valid_k = valid;
  int st = qe_attention(q, k, v, o, c->nq, c->nk, c->dim, c->heads, scale, c->causal, valid,
                        c->block_q, c->block_k);
  QE_CHECK(st == QE_OK, "status %d", st);
  reference_attention(&full, q, k, v, want);
  char what[160];
  snprintf(what, sizeof what, "attention nq=%d nk=%d dim=%d heads=%d causal=%d valid=%d tiles=%d/%d",
           c->nq, c->nk, c->dim, c->heads, c->causal, valid, qe_attention_tile_q(),
           qe_attention_tile_k());
  if (st == QE_OK) QE_CHECK_CLOSE(what, o, want, qn, tol);
  free(q), free(k), free(v), free(o), free(want);
}

QE_TEST(attention_matches_reference_on_awkward_shapes) {
  static const attn_case cases[] = {
      {1, 1, 1, 1, 0, 0, 0, 0, -1, 1, 0},
      {1, 5, 4, 1, 0, 0, 0, 0, -1, 1, 0},
      {5, 1, 4, 2, 0, 0, 0, 0, -1, 1, 0},
      {7, 7, 7, 1, 0, 0, 0, 0, -1, 1, 0},
      {9, 13, 6, 2, 0, 0, 0, 0, -1, 1, 0},
      {17, 33, 15, 3, 0, 0, 4, 4, -1, 1, 0},
      {33, 17, 20, 5, 0, 0, 8, 8, -1, 1, 0},
      {64, 64, 64, 8, 0, 0, 0, 0, -1, 1, 0},
      {100, 130, 96, 12, 0, 0, 16, 12, -1, 1, 0},
      {130, 257, 48, 1, 0, 0, 1024, 1024, -1, 1, 0},
      {65, 200, 36, 3, 0, 0, 64, 128, -1, 1, 0},
      {257, 129, 384, 8, 0, 0, 512, 512, -1, 1, 0},
      {3, 40, 22, 11, 0, 0, 0, 0, -1, 1, 0},
  };
  qe_rng_seed(7);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(&cases[i], 1e-5);
}

QE_TEST(attention_causal_and_padding_masks) {
  static const attn_case cases[] = {
      {1, 1, 8, 1, 1, 0, 0, 0, -1, 1, 0},
      {37, 37, 12, 3, 1, 0, 8, 4, -1, 1, 0},
      {130, 130, 64, 4, 1, 0, 0, 0, -1, 1, 0},
      {20, 50, 16, 2, 1, 0, 8, 8, -1, 1, 0},  /* Nq < Nk: top-left aligned */
      {50, 20, 16, 2, 1, 0, 8, 8, -1, 1, 0},  /* Nq > Nk: late queries see every key */
      {40, 70, 24, 2, 0, 33, 16, 16, -1, 1, 0},
      {40, 70, 24, 2, 1, 5, 16, 16, -1, 1, 0},
      {9, 9, 4, 1, 0, 1, 0, 0, -1, 1, 0},
  };
  qe_rng_seed(11);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(&cases[i], 1e-5);
}

QE_TEST(attention_large_scores_do_not_overflow) {
  /* Scores reach several thousand: exp(score) overflows float, exp(score - max) cannot. */
  static const attn_case cases[] = {
      {48, 80, 32, 2, 0, 0, 16, 16, -12, 12, 1.0f},
      {48, 80, 32, 2, 1, 0, 16, 16, -12, 12, 1.0f},
  };
  qe_rng_seed(13);
  /* Near one-hot probabilities: outputs are within rounding of single rows of V. */
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(&cases[i], 1e-4);
}

QE_TEST(attention_rejects_bad_sizes) {
  float x[16] = {0};
  QE_CHECK(qe_attention(x, x, x, x, 0, 1, 4, 1, 1, 0, 1, 0, 0) == QE_ERR_ARGUMENT, "nq 0");
  QE_CHECK(qe_attention(x, x, x, x, 1, -1, 4, 1, 1, 0, 1, 0, 0) == QE_ERR_ARGUMENT, "nk -1");
  QE_CHECK(qe_attention(x, x, x, x, 1, 1, 6, 4, 1, 0, 1, 0, 0) == QE_ERR_ARGUMENT, "heads 4, dim 6");
  QE_CHECK(qe_attention(x, x, x, x, 2, 2, 4, 1, 1, 0, 0, 0, 0) == QE_ERR_ARGUMENT, "valid 0");
  QE_CHECK(qe_attention(x, x, x, x, 2, 2, 4, 1, 1, 0, 3, 0, 0) == QE_ERR_ARGUMENT, "valid > nk");
  QE_CHECK(qe_attention(x, x, x, x, 2, 2, 4, 1, NAN, 0, 2, 0, 0) == QE_ERR_ARGUMENT, "scale NaN");
  QE_CHECK(qe_attention(NULL, x, x, x, 2, 2, 4, 1, 1, 0, 2, 0, 0) == QE_ERR_NULL, "null q");
  QE_CHECK(qe_attention(x, x, x, x, 65536, 65536, 65536, 1, 1, 0, 2, 0, 0) == QE_ERR_ARGUMENT,
           "16 GiB of queries");
}

QE_TEST(attention_workspace_is_independent_of_length) {
  qe_attention_problem a = {.batch = 1, .q_heads = 1, .kv_heads = 1, .nq = 4096, .nk = 4096, .head_dim = 64, .v_head_dim = 64, .valid_k = 4096};
  qe_attention_problem b = a;
  b.nq = b.nk = b.valid_k = 1 << 20;
  qe_attention_choose_tiles(&a, 512, 512);
  qe_attention_choose_tiles(&b, 512, 512);
  QE_CHECK(qe_attention_workspace_bytes(&a) == qe_attention_workspace_bytes(&b),
           "%zu vs %zu bytes", qe_attention_workspace_bytes(&a), qe_attention_workspace_bytes(&b));
  QE_CHECK(qe_attention_workspace_bytes(&b) < ((size_t)1 << 20), "%zu bytes",
           qe_attention_workspace_bytes(&b));
}

QE_TEST(attention_refuses_heads_too_large_for_a_workspace) {
  /* 2^26 floats per head would wrap a 32-bit size computation; it must be refused, not wrapped. */
  qe_attention_problem p = {.batch = 1, .q_heads = 1, .kv_heads = 1, .nq = 1, .nk = 1, .head_dim = (size_t)1 << 26, .v_head_dim = (size_t)1 << 26, .valid_k = 1};
  qe_attention_choose_tiles(&p, 0, 0);
  QE_CHECK(qe_attention_workspace_bytes(&p) == SIZE_MAX, "%zu bytes", qe_attention_workspace_bytes(&p));
  p.head_dim = p.v_head_dim = 4096;
  QE_CHECK(qe_attention_workspace_bytes(&p) < ((size_t)1 << 20), "%zu bytes", qe_attention_workspace_bytes(&p));
}


/* The ONNX entry, under the sanitizers: GQA over a cache with a boolean mask
 * shorter than the keys, a window and softcap, against the same call with
 * every K/V head repeated per query head (the kernel's group-of-one path);
 * present_* holds the cache then the new rows; and its argument checks. */
static float *filled(size_t n, unsigned seed) {
  float *x = malloc(n * sizeof(float));
  for (size_t i = 0; i < n; i++) {
    seed = seed * 1103515245u + 12345u;
    x[i] = (float)((seed >> 8) & 0xffff) / 32768.0f - 1.0f;
  }
  return x;
}

QE_TEST(onnx_attention_gqa_matches_repeated_heads) {
  enum { B = 2, HQ = 6, HKV = 2, SQ = 11, P = 23, S = 11, T = P + S, D = 12, DV = 7, L = 30 };
  float *q = filled(B * HQ * SQ * D, 1), *k = filled(B * HKV * S * D, 2), *v = filled(B * HKV * S * DV, 3);
  float *pk = filled(B * HKV * P * D, 4), *pv = filled(B * HKV * P * DV, 5);
  uint8_t mask[B * L];
  for (int i = 0; i < B * L; i++) mask[i] = (uint8_t)(i % 7 != 3);
  float *y = malloc(sizeof(float) * B * HQ * SQ * DV), *y2 = malloc(sizeof(float) * B * HQ * SQ * DV);
  float *prk = malloc(sizeof(float) * B * HKV * T * D), *prv = malloc(sizeof(float) * B * HKV * T * DV);
  qe_attention_args a = {
      .q = q, .k = k, .v = v, .mask = mask, .past_key = pk, .past_value = pv, .y = y,
      .present_key = prk, .present_value = prv, .layout = 4, .batch = B, .q_heads = HQ, .kv_heads = HKV,
      .q_len = SQ, .kv_len = S, .past_len = P, .head_size = D, .v_head_size = DV, .mask_kind = 1,
      .mask_dims = {B, 1, 1, L}, .causal = 1, .window_left = 9, .window_right = -1, .scale = 0.4f, .softcap = 2.5f,
      .block_q = 8, .block_k = 8,
  };
  QE_CHECK(qe_attention_onnx(&a) == QE_OK, "GQA call");
  for (int b = 0; b < B; b++)
    for (int h = 0; h < HKV; h++)
      for (int j = 0; j < T; j++)
        for (int c = 0; c < D; c++) {
          const float want = j < P ? pk[((b * HKV + h) * P + j) * D + c] : k[((b * HKV + h) * S + j - P) * D + c];
          QE_CHECK(prk[((b * HKV + h) * T + j) * D + c] == want, "present_key[%d][%d][%d][%d]", b, h, j, c);
        }
  /* The same attention with K/V heads repeated, no cache (the presents are the keys). */
  float *kr = malloc(sizeof(float) * B * HQ * T * D), *vr = malloc(sizeof(float) * B * HQ * T * DV);
  for (int b = 0; b < B; b++)
    for (int h = 0; h < HQ; h++) {
      memcpy(kr + (b * HQ + h) * T * D, prk + (b * HKV + h / 3) * T * D, sizeof(float) * T * D);
      memcpy(vr + (b * HQ + h) * T * DV, prv + (b * HKV + h / 3) * T * DV, sizeof(float) * T * DV);
    }
  /* Causal offset P: query i sits at P + i; without a past, nonpad = T gives offset T - SQ = P. */
  int32_t nonpad[B] = {T, T};
  qe_attention_args r = a;
  r.k = kr, r.v = vr, r.past_key = r.past_value = NULL, r.present_key = r.present_value = NULL;
  r.kv_heads = HQ, r.kv_len = T, r.past_len = 0, r.kv_seqlen = nonpad, r.y = y2, r.block_q = 16, r.block_k = 12;
  QE_CHECK(qe_attention_onnx(&r) == QE_OK, "repeated-heads call");
  double worst = 0;
  for (int i = 0; i < B * HQ * SQ * DV; i++) {
    const double d = fabs((double)y[i] - (double)y2[i]);
    if (!(d <= worst)) worst = d;
  }
  QE_CHECK(worst < 1e-6, "max |GQA - repeated| = %g", worst);

  qe_attention_args bad = a;
  bad.kv_heads = 4;
  QE_CHECK(qe_attention_onnx(&bad) == QE_ERR_ARGUMENT, "6 q heads over 4 kv heads");
  bad = a, bad.mask_dims[0] = 3;
  QE_CHECK(qe_attention_onnx(&bad) == QE_ERR_ARGUMENT, "mask batch 3");
  bad = a, bad.mask_dims[3] = T + 1;
  QE_CHECK(qe_attention_onnx(&bad) == QE_ERR_ARGUMENT, "mask longer than the keys");
  bad = a, bad.kv_seqlen = nonpad;
  QE_CHECK(qe_attention_onnx(&bad) == QE_ERR_ARGUMENT, "nonpad with a past");
  int32_t negative[B] = {3, -1};
  bad = r, bad.kv_seqlen = negative;
  QE_CHECK(qe_attention_onnx(&bad) == QE_ERR_ARGUMENT, "negative nonpad");
  bad = a, bad.present_key = NULL, bad.present_value = NULL;
  QE_CHECK(qe_attention_onnx(&bad) == QE_ERR_ARGUMENT, "a past without presents");
  QE_CHECK(qe_attention_onnx(NULL) == QE_ERR_NULL, "null args");
  free(q), free(k), free(v), free(pk), free(pv), free(y), free(y2), free(prk), free(prv), free(kr), free(vr);
}

QE_SUITE(qe_suite_attention, "flash-attention",
         QE_CASE(onnx_attention_gqa_matches_repeated_heads),
         QE_CASE(attention_refuses_heads_too_large_for_a_workspace),
         QE_CASE(attention_matches_reference_on_awkward_shapes),
         QE_CASE(attention_causal_and_padding_masks),
         QE_CASE(attention_large_scores_do_not_overflow),
         QE_CASE(attention_rejects_bad_sizes),
         QE_CASE(attention_workspace_is_independent_of_length));
