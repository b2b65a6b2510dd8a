/*
 * Flash attention against a double-precision reference that holds the whole
 * score row, on shapes chosen to hit every tail: one query, one key, head
 * sizes not a multiple of 4 or 8, tiles larger and smaller than the sequence,
 * cross attention both ways, causal and padding masks, and inputs whose
 * scores overflow a naive exp.
 */
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

QE_SUITE(qe_suite_attention, "flash-attention",
         QE_CASE(attention_refuses_heads_too_large_for_a_workspace),
         QE_CASE(attention_matches_reference_on_awkward_shapes),
         QE_CASE(attention_causal_and_padding_masks),
         QE_CASE(attention_large_scores_do_not_overflow),
         QE_CASE(attention_rejects_bad_sizes),
         QE_CASE(attention_workspace_is_independent_of_length));
