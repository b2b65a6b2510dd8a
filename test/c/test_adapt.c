/*
 * Tests of pattern adaptation (csrc/adapt/, csrc/api_adapt.c): the
 * Micro-LoRA forward pass and the gradient of its loss against a double
 * precision reference written here (checked itself by central finite
 * differences), the optimizer steps, merge, the byte formats and their
 * corruptions, and the pattern cache (search, eviction, removal, export).
 */
#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "adapt/crc32c.h"
#include "adapt/micro_lora.h"
#include "adapt/pattern_cache.h"
#include "adapt/scalar_math.h"
#include "search/similarity.h"
#include "qe_api.h"
#include "qe_test.h"

static void *xmalloc(size_t bytes) {
  void *p = malloc(bytes ? bytes : 1);
  if (!p) abort();
  return p;
}

/* ----------------------------------------------- the double reference */

typedef struct {
  size_t d, r;
  double scale;
  double *a;  /* r x d */
  double *b;  /* d x r */
} ref_lora;

static ref_lora ref_from(const qe_micro_lora *l) {
  ref_lora m = {l->dim, l->rank, (double)l->alpha / (double)l->rank, xmalloc(l->rank * l->dim * sizeof(double)),
                xmalloc(l->rank * l->dim * sizeof(double))};
  float *a = xmalloc(m.r * m.d * sizeof(float)), *b = xmalloc(m.r * m.d * sizeof(float));
  qe_lora_get_weights(l, a, b);
  for (size_t i = 0; i < m.r * m.d; i++) {
    m.a[i] = a[i];
    m.b[i] = b[i];
  }
  free(a);
  free(b);
  return m;
}

static void ref_free(ref_lora *m) {
  free(m->a);
  free(m->b);
}

static void ref_forward(const ref_lora *m, const float *x, double *y) {
  double h[QE_LORA_MAX_RANK];
  for (size_t j = 0; j < m->r; j++) {
    h[j] = 0;
    for (size_t i = 0; i < m->d; i++) h[j] += m->a[j * m->d + i] * x[i];
  }
  for (size_t i = 0; i < m->d; i++) {
    y[i] = x[i];
    for (size_t j = 0; j < m->r; j++) y[i] += m->scale * m->b[i * m->r + j] * h[j];
  }
}

/* The loss of micro_lora.h, all in double. */
static double ref_loss(const ref_lora *m, const float *x, const float *keys, size_t nk, double t, double w) {
  double *y = xmalloc(m->d * sizeof(double));
  ref_forward(m, x, y);
  double ny = 0;
  for (size_t i = 0; i < m->d; i++) ny += y[i] * y[i];
  ny = sqrt(ny);
  double c[64];
  for (size_t k = 0; k < nk; k++) {
    double dot = 0, nk2 = 0;
    for (size_t i = 0; i < m->d; i++) {
      dot += y[i] * keys[k * m->d + i];
      nk2 += (double)keys[k * m->d + i] * keys[k * m->d + i];
    }
    c[k] = nk2 > 0 ? dot / (ny * sqrt(nk2)) : 0;
  }
  free(y);
  if (nk == 1) return w * (1 - c[0]);
  double s = 0, rest = 0;
  for (size_t k = 0; k < nk; k++) s += exp(c[k] / t);
  for (size_t k = 1; k < nk; k++) rest += exp(c[k] / t);
  if (w >= 0) return w * (log(s) - c[0] / t);
  return -w * (log(s) - log(rest));
}

/* Central differences of ref_loss over every weight: ga [r x d], gb [d x r]. */
static void ref_numeric_grad(ref_lora *m, const float *x, const float *keys, size_t nk, double t, double w,
                             double *ga, double *gb) {
  const double h = 1e-6;
  for (int which = 0; which < 2; which++) {
    double *p = which ? m->b : m->a, *g = which ? gb : ga;
    for (size_t i = 0; i < m->r * m->d; i++) {
      const double keep = p[i];
      p[i] = keep + h;
      const double up = ref_loss(m, x, keys, nk, t, w);
      p[i] = keep - h;
      const double down = ref_loss(m, x, keys, nk, t, w);
      p[i] = keep;
      g[i] = (up - down) / (2 * h);
    }
  }
}

static qe_micro_lora *make_lora(int32_t dim, int32_t rank, float alpha, uint32_t seed) {
  qe_micro_lora *l = NULL;
  QE_CHECK(qe_lora_create(dim, rank, alpha, seed, &l) == QE_OK, "create %d x %d", dim, rank);
  if (!l) abort();
  return l;
}

/* Gives B random values, so the gradient of A is not zero. */
static void randomize_b(qe_micro_lora *l, float amp) {
  const size_t n = l->rank * l->dim;
  float *a = xmalloc(n * sizeof(float)), *b = xmalloc(n * sizeof(float));
  qe_lora_get_weights(l, a, b);
  qe_rng_fill(b, n, -amp, amp);
  qe_lora_set_weights(l, a, b);
  free(a);
  free(b);
}

/* --------------------------------------------------------------- tests */

QE_TEST(lora_new_is_identity_and_a_is_seeded) {
  static const int32_t dims[] = {1, 3, 5, 17, 256, 384};
  for (size_t t = 0; t < sizeof dims / sizeof dims[0]; t++) {
    for (int32_t r = 1; r <= 8; r++) {
      qe_micro_lora *l = make_lora(dims[t], r, (float)r, 7), *l2 = make_lora(dims[t], r, (float)r, 7);
      float *x = xmalloc(dims[t] * sizeof(float)), *y = xmalloc(dims[t] * sizeof(float));
      qe_rng_fill(x, dims[t], -1, 1);
      QE_CHECK(qe_lora_apply(l, x, y) == QE_OK, "apply");
      QE_CHECK(memcmp(x, y, dims[t] * sizeof(float)) == 0, "a new adapter is the identity (dim %d rank %d)", dims[t], r);
      QE_CHECK(memcmp(l->a, l2->a, r * l->ld * sizeof(float)) == 0, "the same seed draws the same A");
      /* A ~ N(0, 1/dim): the mean square of the entries is near 1/dim. */
      if (dims[t] >= 256) {
        double ms = 0;
        for (int32_t j = 0; j < r; j++)
          for (int32_t i = 0; i < dims[t]; i++) ms += (double)l->a[j * l->ld + i] * l->a[j * l->ld + i];
        ms /= (double)(r * dims[t]);
        QE_CHECK(fabs(ms * dims[t] - 1) < 0.25, "A's variance %g * dim should be near 1", ms);
      }
      free(x);
      free(y);
      qe_lora_destroy(l);
      qe_lora_destroy(l2);
    }
  }
}

QE_TEST(lora_forward_matches_reference) {
  static const int32_t dims[] = {1, 2, 3, 4, 5, 7, 8, 9, 17, 64, 255, 256, 384};
  qe_rng_seed(11);
  for (size_t t = 0; t < sizeof dims / sizeof dims[0]; t++) {
    for (int32_t r = 1; r <= 8; r += (r < 2 ? 1 : 3)) {
      const int32_t d = dims[t];
      qe_micro_lora *l = make_lora(d, r, 2.0f, 3);
      randomize_b(l, 0.5f);
      ref_lora m = ref_from(l);
      float *x = xmalloc(3 * d * sizeof(float)), *y = xmalloc(3 * d * sizeof(float));
      double *want = xmalloc(d * sizeof(double));
      qe_rng_fill(x, 3 * d, -1, 1);
      QE_CHECK(qe_lora_apply_batch(l, x, y, 3) == QE_OK, "apply batch");
      for (int q = 0; q < 3; q++) {
        ref_forward(&m, x + q * d, want);
        QE_CHECK_CLOSE("forward", y + q * d, want, d, 1e-5 * (1 + sqrt((double)d)));
      }
      /* In place. */
      QE_CHECK(qe_lora_apply(l, x, x) == QE_OK, "apply in place");
      QE_CHECK(memcmp(x, y, d * sizeof(float)) == 0, "in place gives the same");
      free(x);
      free(y);
      free(want);
      ref_free(&m);
      qe_lora_destroy(l);
    }
  }
}

QE_TEST(lora_rejects_bad_arguments_and_nonfinite) {
  qe_micro_lora *l = NULL;
  QE_CHECK(qe_lora_create(0, 2, 1, 0, &l) == QE_ERR_ARGUMENT && !l, "dim 0");
  QE_CHECK(qe_lora_create(8, 0, 1, 0, &l) == QE_ERR_ARGUMENT, "rank 0");
  QE_CHECK(qe_lora_create(8, 9, 1, 0, &l) == QE_ERR_ARGUMENT, "rank 9");
  QE_CHECK(qe_lora_create(8, 2, NAN, 0, &l) == QE_ERR_ARGUMENT, "alpha NaN");
  QE_CHECK(qe_lora_create(8, 2, 1, 0, NULL) == QE_ERR_NULL, "null out");
  l = make_lora(8, 2, 1, 0);
  float x[8] = {1, 2, 3, 4, 5, 6, 7, 8}, y[8], loss;
  x[5] = NAN;
  QE_CHECK(qe_lora_apply(l, x, y) == QE_ERR_ARGUMENT, "NaN input");
  x[5] = INFINITY;
  QE_CHECK(qe_lora_apply(l, x, y) == QE_ERR_ARGUMENT, "infinite input");
  x[5] = 6;
  float keys[16] = {0};
  QE_CHECK(qe_lora_adapt(l, x, keys, 0, 0.1f, 1, &loss) == QE_ERR_ARGUMENT, "no keys");
  QE_CHECK(qe_lora_adapt(l, x, keys, 2, 0.0f, 1, &loss) == QE_ERR_ARGUMENT, "temperature 0");
  QE_CHECK(qe_lora_adapt(l, x, keys, 2, 0.1f, NAN, &loss) == QE_ERR_ARGUMENT, "reward NaN");
  float zero[8] = {0};
  QE_CHECK(qe_lora_adapt(l, zero, keys, 2, 0.1f, 1, &loss) == QE_ERR_ARGUMENT, "zero query");
  keys[3] = NAN;
  QE_CHECK(qe_lora_adapt(l, x, keys, 2, 0.1f, 1, &loss) == QE_ERR_ARGUMENT, "NaN key");
  QE_CHECK(qe_lora_steps(l) == 0, "no step was taken by a failed call");
  QE_CHECK(qe_lora_set_optimizer(l, 2, 0.1f, 0.9f, 0.999f, 1e-8f, 0) == QE_ERR_ARGUMENT, "optimizer 2");
  QE_CHECK(qe_lora_set_optimizer(l, 1, -0.1f, 0.9f, 0.999f, 1e-8f, 0) == QE_ERR_ARGUMENT, "negative rate");
  QE_CHECK(qe_lora_set_optimizer(l, 1, 0.1f, 1.0f, 0.999f, 1e-8f, 0) == QE_ERR_ARGUMENT, "beta1 1");
  QE_CHECK(qe_lora_set_optimizer(l, 1, 0.1f, 0.9f, 0.999f, 0, 0) == QE_ERR_ARGUMENT, "epsilon 0");
  QE_CHECK(qe_lora_set_optimizer(l, 0, 0.1f, 0.9f, 0.999f, 1e-8f, -1) == QE_ERR_ARGUMENT, "negative decay");
  qe_lora_destroy(l);
}

/* The C gradient against the analytic double reference's central differences. */
static void check_gradient(int32_t d, int32_t r, size_t nk, float temperature, float reward) {
  qe_micro_lora *l = make_lora(d, r, (float)r * 1.5f, (uint32_t)(d * 31 + r));
  randomize_b(l, 0.3f);
  ref_lora m = ref_from(l);
  float *x = xmalloc(d * sizeof(float)), *keys = xmalloc(nk * d * sizeof(float));
  qe_rng_fill(x, d, -1, 1);
  qe_rng_fill(keys, nk * d, -1, 1);
  /* The positive near the query, so the loss is in an interesting range. */
  for (int32_t i = 0; i < d; i++) keys[i] = 0.6f * keys[i] + x[i];
  const size_t n = (size_t)r * d;
  float *ga = xmalloc(n * sizeof(float)), *gb = xmalloc(n * sizeof(float)), loss;
  double *na = xmalloc(n * sizeof(double)), *nb = xmalloc(n * sizeof(double));
  QE_CHECK(qe_lora_gradient(l, x, keys, (int32_t)nk, temperature, reward, &loss, ga, gb) == QE_OK, "gradient");
  ref_numeric_grad(&m, x, keys, nk, temperature, reward, na, nb);
  const double want_loss = ref_loss(&m, x, keys, nk, temperature, reward);
  QE_CHECK(fabs(loss - want_loss) < 1e-4 * (1 + fabs(want_loss)), "loss %g, reference %g (d %d r %d keys %zu reward %g)",
           (double)loss, want_loss, d, r, nk, (double)reward);
  double big = 0;
  for (size_t i = 0; i < n; i++) big = fmax(big, fmax(fabs(na[i]), fabs(nb[i])));
  char what[96];
  snprintf(what, sizeof what, "dL/dA d %d r %d keys %zu reward %g", d, r, nk, (double)reward);
  QE_CHECK_CLOSE(what, ga, na, n, 2e-3 * big + 1e-6);
  snprintf(what, sizeof what, "dL/dB d %d r %d keys %zu reward %g", d, r, nk, (double)reward);
  QE_CHECK_CLOSE(what, gb, nb, n, 2e-3 * big + 1e-6);
  /* In one dimension the direction of y cannot change: the gradient is 0. */
  QE_CHECK(d == 1 ? big < 1e-9 : big > 1e-4, "gradient size %g (d %d, keys %zu, reward %g)", big, d, nk, (double)reward);
  free(x);
  free(keys);
  free(ga);
  free(gb);
  free(na);
  free(nb);
  ref_free(&m);
  qe_lora_destroy(l);
}

QE_TEST(lora_gradient_matches_finite_differences) {
  qe_rng_seed(21);
  check_gradient(1, 1, 3, 0.5f, 1.0f);
  check_gradient(5, 2, 4, 0.2f, 1.0f);
  check_gradient(17, 3, 6, 0.1f, 1.0f);
  check_gradient(33, 8, 9, 0.1f, 0.7f);
  check_gradient(12, 2, 5, 0.2f, -1.0f);   /* unlikelihood */
  check_gradient(12, 4, 1, 0.2f, 1.0f);    /* cosine, one key */
  check_gradient(12, 4, 1, 0.2f, -0.5f);
  check_gradient(64, 2, 8, 0.3f, 1.0f);
}

QE_TEST(lora_sgd_step_is_minus_rate_times_mean_gradient) {
  qe_rng_seed(5);
  const int32_t d = 19, r = 3;
  qe_micro_lora *l = make_lora(d, r, 3.0f, 1);
  randomize_b(l, 0.2f);
  QE_CHECK(qe_lora_set_optimizer(l, 0, 0.5f, 0.9f, 0.999f, 1e-8f, 0.1f) == QE_OK, "SGD");
  float x[2][19], keys[2][4 * 19], loss;
  qe_rng_fill(&x[0][0], 2 * 19, -1, 1);
  qe_rng_fill(&keys[0][0], 2 * 4 * 19, -1, 1);
  const size_t n = (size_t)r * d;
  float *a0 = xmalloc(n * 4), *b0 = xmalloc(n * 4), *ga = xmalloc(n * 4), *gb = xmalloc(n * 4);
  float *a1 = xmalloc(n * 4), *b1 = xmalloc(n * 4), *sa = xmalloc(n * 4), *sb = xmalloc(n * 4);
  qe_lora_get_weights(l, a0, b0);
  memset(sa, 0, n * 4);
  memset(sb, 0, n * 4);
  for (int e = 0; e < 2; e++) {
    QE_CHECK(qe_lora_gradient(l, x[e], keys[e], 4, 0.1f, 1, &loss, ga, gb) == QE_OK, "gradient");
    for (size_t i = 0; i < n; i++) {
      sa[i] += ga[i];
      sb[i] += gb[i];
    }
    QE_CHECK(qe_lora_accumulate(l, x[e], keys[e], 4, 0.1f, 1, &loss) == QE_OK, "accumulate");
  }
  QE_CHECK(qe_lora_step(l) == QE_OK && qe_lora_steps(l) == 1, "one step");
  qe_lora_get_weights(l, a1, b1);
  double *wa = xmalloc(n * 8), *wb = xmalloc(n * 8);
  for (size_t i = 0; i < n; i++) {
    wa[i] = a0[i] * (1 - 0.5 * 0.1) - 0.5 * sa[i] / 2;
    wb[i] = b0[i] * (1 - 0.5 * 0.1) - 0.5 * sb[i] / 2;
  }
  QE_CHECK_CLOSE("A after SGD", a1, wa, n, 1e-6);
  QE_CHECK_CLOSE("B after SGD", b1, wb, n, 1e-6);
  /* A step with nothing accumulated changes nothing. */
  QE_CHECK(qe_lora_step(l) == QE_OK && qe_lora_steps(l) == 1, "empty step");
  free(a0); free(b0); free(ga); free(gb); free(a1); free(b1); free(sa); free(sb); free(wa); free(wb);
  qe_lora_destroy(l);
}

QE_TEST(lora_adam_step_matches_reference) {
  qe_rng_seed(6);
  const int32_t d = 10, r = 2;
  qe_micro_lora *l = make_lora(d, r, 2.0f, 2);
  randomize_b(l, 0.2f);
  QE_CHECK(qe_lora_set_optimizer(l, 1, 0.01f, 0.9f, 0.99f, 1e-6f, 0.0f) == QE_OK, "Adam");
  const size_t n = (size_t)r * d;
  float x[10], keys[3 * 10], loss, ga[20], gb[20], a[20], b[20];
  double ma[20] = {0}, va[20] = {0}, mb[20] = {0}, vb[20] = {0}, wa[20], wb[20];
  qe_lora_get_weights(l, a, b);
  for (size_t i = 0; i < n; i++) { wa[i] = a[i]; wb[i] = b[i]; }
  for (int t = 1; t <= 3; t++) {
    qe_rng_fill(x, 10, -1, 1);
    qe_rng_fill(keys, 30, -1, 1);
    QE_CHECK(qe_lora_gradient(l, x, keys, 3, 0.2f, 1, &loss, ga, gb) == QE_OK, "gradient");
    QE_CHECK(qe_lora_adapt(l, x, keys, 3, 0.2f, 1, &loss) == QE_OK, "adapt");
    const double c1 = 1 - pow(0.9, t), c2 = 1 - pow(0.99, t);
    for (size_t i = 0; i < n; i++) {
      ma[i] = 0.9 * ma[i] + 0.1 * ga[i];
      va[i] = 0.99 * va[i] + 0.01 * (double)ga[i] * ga[i];
      wa[i] -= 0.01 * (ma[i] / c1) / (sqrt(va[i] / c2) + 1e-6);
      mb[i] = 0.9 * mb[i] + 0.1 * gb[i];
      vb[i] = 0.99 * vb[i] + 0.01 * (double)gb[i] * gb[i];
      wb[i] -= 0.01 * (mb[i] / c1) / (sqrt(vb[i] / c2) + 1e-6);
    }
    qe_lora_get_weights(l, a, b);
    QE_CHECK_CLOSE("A after Adam", a, wa, n, 2e-5);
    QE_CHECK_CLOSE("B after Adam", b, wb, n, 2e-5);
  }
  qe_lora_destroy(l);
}

QE_TEST(lora_merge_equals_apply) {
  qe_rng_seed(8);
  const int32_t d = 13, r = 5;
  qe_micro_lora *l = make_lora(d, r, 4.0f, 9);
  randomize_b(l, 0.4f);
  float *w = xmalloc(d * d * 4), x[13], y[13];
  double want[13];
  memset(w, 0, d * d * 4);
  for (int32_t i = 0; i < d; i++) w[i * d + i] = 1;
  QE_CHECK(qe_lora_merge(l, w) == QE_OK, "merge");
  qe_rng_fill(x, d, -1, 1);
  qe_lora_apply(l, x, y);
  for (int32_t i = 0; i < d; i++) {
    want[i] = 0;
    for (int32_t k = 0; k < d; k++) want[i] += (double)w[i * d + k] * x[k];
  }
  QE_CHECK_CLOSE("(I + sBA) x", y, want, d, 1e-5);
  free(w);
  qe_lora_destroy(l);
}

QE_TEST(lora_export_import_and_corruption) {
  qe_rng_seed(9);
  const int32_t d = 7, r = 3;
  qe_micro_lora *l = make_lora(d, r, 1.5f, 4);
  float x[7], keys[21], loss, y1[7], y2[7];
  for (int s = 0; s < 4; s++) {
    qe_rng_fill(x, 7, -1, 1);
    qe_rng_fill(keys, 21, -1, 1);
    qe_lora_adapt(l, x, keys, 3, 0.2f, 1, &loss);
  }
  const size_t n = (size_t)qe_lora_export_bytes(l);
  QE_CHECK(n == 72 + 6 * 21 * 4 + 4, "size %zu", n);
  unsigned char *bytes = xmalloc(n), *bad = xmalloc(n);
  QE_CHECK(qe_lora_export(l, bytes, (double)n - 1) == QE_ERR_ARGUMENT, "short buffer");
  QE_CHECK(qe_lora_export(l, bytes, (double)n) == QE_OK, "export");
  qe_micro_lora *back = NULL;
  QE_CHECK(qe_lora_import(bytes, (double)n, &back) == QE_OK && back, "import");
  qe_lora_apply(l, x, y1);
  qe_lora_apply(back, x, y2);
  QE_CHECK(memcmp(y1, y2, sizeof y1) == 0, "same output after import");
  /* Training continues identically: Adam's moments and step count came along. */
  qe_lora_adapt(l, x, keys, 3, 0.2f, 1, &loss);
  qe_lora_adapt(back, x, keys, 3, 0.2f, 1, &loss);
  qe_lora_apply(l, x, y1);
  qe_lora_apply(back, x, y2);
  QE_CHECK(memcmp(y1, y2, sizeof y1) == 0, "same output after one more step each");
  qe_lora_destroy(back);

  qe_micro_lora *none = (qe_micro_lora *)1;
  QE_CHECK(qe_lora_import(bytes, 0, &none) == QE_ERR_TRUNCATED && none == NULL, "empty");
  for (size_t cut = 1; cut < n; cut += (cut < 80 ? 1 : 37))
    QE_CHECK(qe_lora_import(bytes, (double)cut, &none) == QE_ERR_TRUNCATED || (cut < 8 && qe_lora_import(bytes, (double)cut, &none) == QE_ERR_TRUNCATED),
             "truncated to %zu bytes: %d", cut, qe_lora_import(bytes, (double)cut, &none));
  memcpy(bad, bytes, n);
  bad[0] ^= 0x20;
  QE_CHECK(qe_lora_import(bad, (double)n, &none) == QE_ERR_FORMAT, "wrong magic");
  memcpy(bad, bytes, n);
  bad[4] = 2;
  QE_CHECK(qe_lora_import(bad, (double)n, &none) == QE_ERR_VERSION, "version 2");
  /* Every single bit flip past the version is caught (checksum, or length). */
  int missed = 0;
  for (size_t byte = 8; byte < n; byte++)
    for (int bit = 0; bit < 8; bit++) {
      memcpy(bad, bytes, n);
      bad[byte] ^= (unsigned char)(1u << bit);
      const int s = qe_lora_import(bad, (double)n, &none);
      if (s == QE_OK || none) missed++;
      if (none) qe_lora_destroy(none);
    }
  QE_CHECK(missed == 0, "%d bit flips were accepted", missed);
  /* Bytes appended. */
  unsigned char *longer = xmalloc(n + 4);
  memcpy(longer, bytes, n);
  memset(longer + n, 0, 4);
  QE_CHECK(qe_lora_import(longer, (double)n + 4, &none) != QE_OK && none == NULL, "trailing bytes");
  free(longer);
  free(bytes);
  free(bad);
  qe_lora_destroy(l);
}

/* ------------------------------------------------------------ the cache */

static qe_pattern_cache *make_cache(int32_t dim, int32_t max) {
  qe_pattern_cache *c = NULL;
  QE_CHECK(qe_cache_create(dim, max, &c) == QE_OK && c, "cache create");
  if (!c) abort();
  return c;
}

static int32_t store(qe_pattern_cache *c, const float *e, float q, const char *label, int32_t *evicted) {
  int32_t out[2] = {-9, -9};
  QE_CHECK(qe_cache_store(c, -1, e, q, (const unsigned char *)label, (int32_t)strlen(label), out) == QE_OK, "store %s", label);
  if (evicted) *evicted = out[1];
  return out[0];
}

static const char *label_of(const qe_pattern_cache *c, int32_t row, char *buf) {
  int32_t len;
  const unsigned char *p = qe_cache_row_label(c, row, &len);
  if (len < 0) return "(bad row)";
  if (len > 0) memcpy(buf, p, (size_t)len);
  buf[len] = 0;
  return buf;
}

QE_TEST(cache_search_matches_brute_force_through_the_adapter) {
  qe_rng_seed(31);
  static const int32_t dims[] = {1, 3, 16, 37};
  for (size_t t = 0; t < 4; t++) {
    const int32_t d = dims[t], n = 150;
    qe_pattern_cache *c = make_cache(d, 1000);
    qe_micro_lora *l = make_lora(d, 2, 2.0f, 5);
    randomize_b(l, 0.5f);
    float *rows = xmalloc((size_t)n * d * 4), *q = xmalloc(d * 4), *aq = xmalloc(d * 4);
    qe_rng_fill(rows, (size_t)n * d, -1, 1);
    char name[16];
    for (int32_t i = 0; i < n; i++) {
      snprintf(name, sizeof name, "p%d", i);
      QE_CHECK(store(c, rows + i * d, 0.5f, name, NULL) == i, "row %d", i);
    }
    QE_CHECK(qe_cache_count(c) == n, "count");
    qe_rng_fill(q, d, -1, 1);
    qe_lora_apply(l, q, aq);
    int32_t idx[10];
    float score[10];
    QE_CHECK(qe_cache_search(c, l, q, 10, 1, idx, score) == QE_OK, "search");
    /* Reference: cosine of the adapted query with each row, in double. */
    double best[150];
    double nq = 0;
    for (int32_t i = 0; i < d; i++) nq += (double)aq[i] * aq[i];
    for (int32_t r = 0; r < n; r++) {
      double dot = 0, nr = 0;
      for (int32_t i = 0; i < d; i++) {
        dot += (double)aq[i] * rows[r * d + i];
        nr += (double)rows[r * d + i] * rows[r * d + i];
      }
      best[r] = dot / sqrt(nq * nr);
    }
    for (int j = 0; j < 10; j++) {
      int32_t better = 0;
      for (int32_t r = 0; r < n; r++) better += best[r] > best[idx[j]] + 1e-5;
      QE_CHECK(better <= j, "dim %d: result %d (row %d) has %d rows clearly better", d, j, idx[j], better);
      QE_CHECK(fabs(score[j] - best[idx[j]]) < 1e-5, "score %g vs %g", (double)score[j], best[idx[j]]);
    }
    double info[4];
    qe_cache_row_info(c, idx[0], info);
    QE_CHECK(info[1] == 1 && info[2] == info[3], "the best result was hit once, just now");
    /* k beyond the count. */
    int32_t big_idx[200];
    float big_score[200];
    QE_CHECK(qe_cache_search(c, NULL, q, 200, 0, big_idx, big_score) == QE_OK, "k 200");
    QE_CHECK(big_idx[149] >= 0 && big_idx[150] == -1 && big_score[199] == 0, "padding past the count");
    free(rows);
    free(q);
    free(aq);
    qe_lora_destroy(l);
    qe_cache_destroy(c);
  }
}

/* The code-first search against the full exact scan (qe_f32_cosine_topk on
 * the cache's own corpus), bit for bit: random rows, clustered rows, near
 * duplicates (a row plus noise at the codes' resolution), exact duplicates
 * and zero rows, queries on and between the rows, several dims and k. */
QE_TEST(cache_code_search_equals_the_exact_scan) {
  qe_rng_seed(77);
  static const int32_t dims[] = {1, 3, 16, 37, 256, 300};
  static const int32_t counts[] = {256, 257, 1100};
  static const int32_t ks[] = {1, 5, 10, 64};
  size_t total_candidates = 0, searches = 0;
  for (size_t t = 0; t < 6; t++) {
    for (size_t u = 0; u < 3; u++) {
      for (int kind = 0; kind < 3; kind++) {
        const int32_t d = dims[t], n = counts[u];
        qe_pattern_cache *c = make_cache(d, n);
        float *rows = xmalloc((size_t)n * d * 4), *q = xmalloc(d * 4), *qn = xmalloc(d * 4);
        float *centers = xmalloc(8 * (size_t)d * 4);
        qe_rng_fill(centers, 8 * (size_t)d, -1, 1);
        for (int32_t i = 0; i < n; i++) {
          float *row = rows + (size_t)i * d;
          if (kind == 0) {
            qe_rng_fill(row, d, -1, 1);
          } else {
            /* Clusters; kind 2 packs them tight (noise 1e-3) with copies and zeros. */
            const float amp = kind == 1 ? 0.2f : 1e-3f;
            for (int32_t j = 0; j < d; j++) row[j] = centers[(i % 8) * d + j] + qe_rng_uniform(-amp, amp);
            if (kind == 2 && i % 50 == 7) memcpy(row, rows + (size_t)(i - 7) * d, d * 4);
            if (kind == 2 && i % 97 == 3) memset(row, 0, d * 4);
          }
          char name[16];
          snprintf(name, sizeof name, "p%d", i);
          store(c, row, 0.5f, name, NULL);
        }
        for (int trial = 0; trial < 6; trial++) {
          if (trial < 3) {
            memcpy(q, rows + (size_t)(trial * 37 % n) * d, d * 4);
            for (int32_t j = 0; j < d; j++) q[j] += qe_rng_uniform(-1e-4f, 1e-4f) * (trial == 2);
          } else {
            qe_rng_fill(q, d, -1, 1);
          }
          float qinv;
          qe_f32_row_inv_norms(1, d, q, d, &qinv);
          for (size_t kk = 0; kk < 4; kk++) {
            const int32_t k = ks[kk];
            int32_t idx[64], want_idx[64];
            float score[64], want_score[64];
            QE_CHECK(qe_cache_search(c, NULL, q, k, 0, idx, score) == QE_OK, "search");
            if (qinv == 0.0f) continue;
            void *ws = xmalloc(qe_f32_cosine_topk_workspace_bytes(1, d));
            qe_f32_cosine_topk(1, (size_t)n, d, k, q, d, &qinv, c->corpus, c->inv_norms, want_idx, want_score, k, ws);
            free(ws);
            total_candidates += qe_pattern_cache_last_candidates(c);
            searches++;
            QE_CHECK(qe_pattern_cache_last_candidates(c) >= (size_t)k, "the code path ran (%zu scored)", qe_pattern_cache_last_candidates(c));
            for (int32_t j = 0; j < k; j++) {
              QE_CHECK(idx[j] == want_idx[j] && score[j] == want_score[j],
                       "dim %d n %d kind %d k %d: result %d is row %d (%.9g), exact scan row %d (%.9g)", d, n, kind, k, j,
                       idx[j], (double)score[j], want_idx[j], (double)want_score[j]);
            }
          }
        }
        free(rows);
        free(q);
        free(qn);
        free(centers);
        qe_cache_destroy(c);
      }
    }
  }
  printf("    code search: %.1f rows scored exactly per search on average (%zu searches)\n",
         (double)total_candidates / (double)searches, searches);
}

QE_TEST(cache_evicts_lowest_quality_then_least_recently_used) {
  const int32_t d = 4;
  qe_pattern_cache *c = make_cache(d, 4);
  float e[6][4] = {{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 1, 0}, {0, 0, 0, 1}, {1, 1, 0, 0}, {0, 1, 1, 0}};
  int32_t ev;
  store(c, e[0], 0.9f, "a", &ev);
  store(c, e[1], 0.2f, "b", &ev);
  store(c, e[2], 0.2f, "c", &ev);
  store(c, e[3], 0.5f, "d", &ev);
  QE_CHECK(ev == 0 && qe_cache_count(c) == 4, "not full until now");
  /* b and c tie on quality; using b makes c the least recently used. */
  int32_t idx[1];
  float score[1];
  qe_cache_search(c, NULL, e[1], 1, 1, idx, score);
  QE_CHECK(idx[0] == 1, "found b");
  char buf[16];
  QE_CHECK(qe_cache_victim(c) == 2, "victim c, got %s", label_of(c, qe_cache_victim(c), buf));
  int32_t row = store(c, e[4], 0.6f, "e", &ev);
  QE_CHECK(ev == 1 && row == 2 && strcmp(label_of(c, 2, buf), "e") == 0, "e replaced c");
  /* Next: b (0.2), then d (0.5), then e (0.6), then a (0.9). */
  row = store(c, e[5], 0.95f, "f", &ev);
  QE_CHECK(row == 1 && ev == 1, "f replaced b (row %d)", row);
  row = store(c, e[0], 0.95f, "g", &ev);
  QE_CHECK(row == 3, "g replaced d (row %d)", row);
  row = store(c, e[0], 0.95f, "h", &ev);
  QE_CHECK(row == 2, "h replaced e (row %d)", row);
  /* Now a 0.9, f 0.95, h 0.95, g 0.95: a goes; then among the 0.95s the oldest, g. */
  row = store(c, e[1], 0.95f, "i", &ev);
  QE_CHECK(row == 0, "i replaced a (row %d)", row);
  row = store(c, e[1], 0.95f, "j", &ev);
  QE_CHECK(row == 1, "j replaced f, the least recently used of equal quality (row %d)", row);
  /* Updating a row's quality counts as a use. */
  int32_t out[2];
  QE_CHECK(qe_cache_store(c, 3, NULL, 0.95f, NULL, -1, out) == QE_OK && out[0] == 3 && out[1] == 0, "update g");
  QE_CHECK(qe_cache_victim(c) == 2, "h is now the oldest");
  QE_CHECK(strcmp(label_of(c, 3, buf), "g") == 0, "label kept by update");
  qe_cache_destroy(c);
}

QE_TEST(cache_remove_moves_the_last_row) {
  const int32_t d = 3;
  qe_pattern_cache *c = make_cache(d, 100);
  float e[40][3];
  qe_rng_seed(44);
  qe_rng_fill(&e[0][0], 120, -1, 1);
  char name[16], buf[16];
  for (int i = 0; i < 40; i++) {
    snprintf(name, sizeof name, "%d", i);
    store(c, e[i], (float)i, name, NULL);
  }
  int32_t moved;
  QE_CHECK(qe_cache_remove(c, 5, &moved) == QE_OK && moved == 39, "remove 5");
  QE_CHECK(strcmp(label_of(c, 5, buf), "39") == 0, "39 now at row 5");
  float got[3];
  qe_cache_row_embedding(c, 5, got);
  QE_CHECK(memcmp(got, e[39], sizeof got) == 0, "embedding moved too");
  QE_CHECK(qe_cache_remove(c, 38, &moved) == QE_OK && moved == -1, "remove the last");
  QE_CHECK(qe_cache_count(c) == 38, "count");
  QE_CHECK(qe_cache_remove(c, 38, &moved) == QE_ERR_INDEX, "out of range");
  /* Search still exact: the query equal to 39's embedding finds row 5. */
  int32_t idx[1];
  float score[1];
  qe_cache_search(c, NULL, e[39], 1, 0, idx, score);
  QE_CHECK(idx[0] == 5 && score[0] > 0.99999f, "row 5 found");
  qe_cache_destroy(c);
}

QE_TEST(cache_export_import_and_corruption) {
  const int32_t d = 9;
  qe_pattern_cache *c = make_cache(d, 50);
  float e[30][9];
  qe_rng_seed(45);
  qe_rng_fill(&e[0][0], 270, -1, 1);
  char name[32];
  for (int i = 0; i < 30; i++) {
    snprintf(name, sizeof name, "pattern-%d%s", i, i % 3 ? "" : "-with-a-longer-label");
    store(c, e[i], (float)(i % 7), i == 4 ? "" : name, NULL);
  }
  int32_t idx[5], idx2[5];
  float score[5], score2[5];
  qe_cache_search(c, NULL, e[3], 5, 1, idx, score);
  const size_t n = (size_t)qe_cache_export_bytes(c);
  unsigned char *bytes = xmalloc(n), *bad = xmalloc(n);
  QE_CHECK(qe_cache_export(c, bytes, (double)n) == QE_OK, "export");
  qe_pattern_cache *back = NULL;
  QE_CHECK(qe_cache_import(bytes, (double)n, &back) == QE_OK && back, "import");
  QE_CHECK(qe_cache_count(back) == 30, "count");
  for (int q = 0; q < 30; q++) {
    qe_cache_search(c, NULL, e[q], 5, 0, idx, score);
    qe_cache_search(back, NULL, e[q], 5, 0, idx2, score2);
    QE_CHECK(memcmp(idx, idx2, sizeof idx) == 0 && memcmp(score, score2, sizeof score) == 0, "same look-up %d", q);
  }
  char b1[64], b2[64];
  double i1[4], i2[4];
  for (int r = 0; r < 30; r++) {
    QE_CHECK(strcmp(label_of(c, r, b1), label_of(back, r, b2)) == 0, "label %d", r);
    qe_cache_row_info(c, r, i1);
    qe_cache_row_info(back, r, i2);
    QE_CHECK(memcmp(i1, i2, sizeof i1) == 0, "quality, hits, last use %d", r);
  }
  QE_CHECK(qe_cache_victim(c) == qe_cache_victim(back), "same eviction order");
  qe_cache_destroy(back);

  qe_pattern_cache *none = NULL;
  QE_CHECK(qe_cache_import(bytes, 0, &none) == QE_ERR_TRUNCATED, "empty");
  for (size_t cut = 1; cut < n; cut += 53)
    QE_CHECK(qe_cache_import(bytes, (double)cut, &none) == QE_ERR_TRUNCATED && !none, "truncated to %zu", cut);
  memcpy(bad, bytes, n);
  memcpy(bad, "QELR", 4);
  QE_CHECK(qe_cache_import(bad, (double)n, &none) == QE_ERR_FORMAT, "an adapter's magic");
  memcpy(bad, bytes, n);
  bad[4] = 9;
  QE_CHECK(qe_cache_import(bad, (double)n, &none) == QE_ERR_VERSION, "version 9");
  int missed = 0;
  for (size_t byte = 8; byte < n; byte += 3) {
    memcpy(bad, bytes, n);
    bad[byte] ^= (unsigned char)(1u << (byte % 8));
    if (qe_cache_import(bad, (double)n, &none) == QE_OK || none) missed++;
    if (none) qe_cache_destroy(none);
  }
  QE_CHECK(missed == 0, "%d bit flips accepted", missed);
  /* A consistent checksum over inconsistent contents (count larger than
   * max_patterns) is still refused. */
  memcpy(bad, bytes, n);
  const uint32_t count = 60;
  memcpy(bad + 20, &count, 4);
  const uint32_t crc = qe_crc32c_update(0, bad, n - 4);
  memcpy(bad + n - 4, &crc, 4);
  QE_CHECK(qe_cache_import(bad, (double)n, &none) == QE_ERR_FORMAT, "count beyond max_patterns");
  free(bytes);
  free(bad);
  qe_cache_destroy(c);
}

QE_TEST(cache_adapt_mines_negatives_and_learns) {
  /* Two patterns; queries of the first are distorted toward the second.
   * Steps with mined negatives must make the first the nearest. */
  const int32_t d = 8;
  qe_pattern_cache *c = make_cache(d, 10);
  qe_micro_lora *l = make_lora(d, 2, 2.0f, 3);
  float p0[8] = {1, 0, 0, 0, 0, 0, 0, 0}, p1[8] = {0.8f, 0.6f, 0, 0, 0, 0, 0, 0};
  float q[8] = {0.7f, 0.7f, 0.1f, 0, 0, 0, 0, 0};
  store(c, p0, 1, "p0", NULL);
  store(c, p1, 1, "p1", NULL);
  int32_t idx[1], used;
  float score[1], loss, first = 0;
  qe_cache_search(c, l, q, 1, 0, idx, score);
  QE_CHECK(idx[0] == 1, "before: p1 is nearest");
  for (int s = 0; s < 100; s++) {
    QE_CHECK(qe_cache_adapt(c, l, q, 0, NULL, 4, 0.1f, 1, 1, &loss, &used) == QE_OK && used == 0, "adapt");
    if (s == 0) first = loss;
  }
  QE_CHECK(loss < first * 0.5f, "loss fell: %g -> %g", (double)first, (double)loss);
  qe_cache_search(c, l, q, 1, 0, idx, score);
  QE_CHECK(idx[0] == 0, "after: p0 is nearest");
  /* The reward form with no result given judges the nearest row. */
  QE_CHECK(qe_cache_adapt(c, l, q, -1, NULL, 4, 0.1f, -1, 1, &loss, &used) == QE_OK && used == 0, "reward form");
  qe_pattern_cache *empty = make_cache(d, 10);
  QE_CHECK(qe_cache_adapt(empty, l, q, -1, NULL, 4, 0.1f, 1, 1, &loss, &used) == QE_ERR_INDEX, "empty cache, no result");
  QE_CHECK(qe_cache_adapt(empty, l, q, -1, p0, 4, 0.1f, 1, 1, &loss, &used) == QE_OK && used == -1, "vector positive alone");
  qe_micro_lora *other = make_lora(d + 1, 2, 2.0f, 3);
  QE_CHECK(qe_cache_search(c, other, q, 1, 0, idx, score) == QE_ERR_ARGUMENT, "adapter of another dim");
  qe_lora_destroy(other);
  qe_cache_destroy(empty);
  qe_lora_destroy(l);
  qe_cache_destroy(c);
}

QE_TEST(scalar_exp_log_match_libm) {
  double worst_exp = 0, worst_log = 0;
  for (double x = -700; x <= 700; x += 0.37) {
    worst_exp = fmax(worst_exp, fabs(qe_exp_f64(x) - exp(x)) / exp(x));
  }
  for (double x = 1e-300; x < 1e300; x *= 1.7) worst_log = fmax(worst_log, fabs(qe_log_f64(x) - log(x)) / fmax(1, fabs(log(x))));
  worst_log = fmax(worst_log, fabs(qe_log_f64(4.9e-324) - log(4.9e-324)) / 744);
  QE_CHECK(worst_exp < 1e-14, "exp relative error %g", worst_exp);
  QE_CHECK(worst_log < 1e-14, "log error %g", worst_log);
  QE_CHECK(qe_exp_f64(-1000) == 0 && qe_exp_f64(1000) == INFINITY && qe_log_f64(0) == -INFINITY, "edges");
}

QE_TEST(crc32c_known_value) {
  /* The CRC32C check value of "123456789" (RFC 3720). */
  QE_CHECK(qe_crc32c((const unsigned char *)"123456789", 9) == 0xE3069283u, "got %08x",
           qe_crc32c((const unsigned char *)"123456789", 9));
}

/* The adapter and the cache are handles (runtime/handle.h): a null, foreign,
 * corrupt or misaligned pointer is refused by every entry, never read as one. */
QE_TEST(adapter_and_cache_handles_refuse_wrong_corrupt_and_misaligned) {
  qe_micro_lora *l = NULL;
  qe_pattern_cache *c = NULL;
  QE_CHECK(qe_lora_create(8, 2, 1.0f, 7, &l) == QE_OK && qe_cache_create(8, 4, &c) == QE_OK, "create");
  float x[8] = {1, 2, 3, 4, 5, 6, 7, 8}, y[8];
  int32_t idx[1];
  float score[1];
  QE_CHECK(qe_lora_apply(NULL, x, y) == QE_ERR_NULL && qe_cache_count(NULL) == QE_ERR_NULL, "NULL");
  /* Each kind refuses the other, and an unknown kind of the same size. */
  QE_CHECK(qe_lora_apply((qe_micro_lora *)c, x, y) == QE_ERR_HANDLE, "a cache as an adapter");
  QE_CHECK(qe_cache_count((qe_pattern_cache *)l) == QE_ERR_HANDLE, "an adapter as a cache");
  QE_CHECK(qe_cache_search(c, (qe_micro_lora *)c, x, 1, 0, idx, score) == QE_ERR_HANDLE, "a cache as the search's adapter");
  void *other = qe_handle_new(99, 1, sizeof(qe_micro_lora));
  QE_CHECK(qe_lora_reset(other) == QE_ERR_HANDLE && qe_lora_steps(other) == -1.0, "another kind");
  qe_lora_destroy(other); /* refused: still ours to free */
  QE_CHECK(qe_handle_check(other, 99, 1, sizeof(qe_micro_lora)) == QE_OK, "not destroyed as an adapter");
  qe_handle_free(other);
  QE_CHECK(qe_lora_apply((qe_micro_lora *)((char *)l + 4), x, y) == QE_ERR_HANDLE, "misaligned adapter");
  QE_CHECK(qe_cache_count((qe_pattern_cache *)((char *)c + 4)) == QE_ERR_HANDLE, "misaligned cache");
  qe_handle *h = (qe_handle *)l;
  h->version ^= 1; /* another layout */
  QE_CHECK(qe_lora_apply(l, x, y) == QE_ERR_HANDLE && qe_lora_export_bytes(l) == 0.0, "another layout version");
  h->version ^= 1;
  QE_CHECK(qe_lora_apply(l, x, y) == QE_OK, "repaired");
  h = (qe_handle *)c;
  h->magic ^= 1; /* corrupt */
  QE_CHECK(qe_cache_count(c) == QE_ERR_HANDLE && qe_cache_clear(c) == QE_ERR_HANDLE, "corrupt cache magic");
  qe_cache_destroy(c); /* refused */
  h->magic ^= 1;
  QE_CHECK(qe_cache_count(c) == 0, "repaired");
  qe_cache_destroy(c);
  qe_lora_destroy(l);
}

QE_SUITE(qe_suite_adapt, "adapt", QE_CASE(lora_new_is_identity_and_a_is_seeded),
         QE_CASE(adapter_and_cache_handles_refuse_wrong_corrupt_and_misaligned), QE_CASE(lora_forward_matches_reference),
         QE_CASE(lora_rejects_bad_arguments_and_nonfinite), QE_CASE(lora_gradient_matches_finite_differences),
         QE_CASE(lora_sgd_step_is_minus_rate_times_mean_gradient), QE_CASE(lora_adam_step_matches_reference),
         QE_CASE(lora_merge_equals_apply), QE_CASE(lora_export_import_and_corruption),
         QE_CASE(cache_search_matches_brute_force_through_the_adapter),
         QE_CASE(cache_code_search_equals_the_exact_scan),
         QE_CASE(cache_evicts_lowest_quality_then_least_recently_used), QE_CASE(cache_remove_moves_the_last_row),
         QE_CASE(cache_export_import_and_corruption), QE_CASE(cache_adapt_mines_negatives_and_learns),
         QE_CASE(scalar_exp_log_match_libm), QE_CASE(crc32c_known_value));
