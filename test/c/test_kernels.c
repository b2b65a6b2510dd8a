/*
 * Tests of the arithmetic kernels (csrc/kernels) and of the vector exp, each
 * against a double-precision reference written here.
 */
#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "qe_test.h"
#include "vexp.h"

static float *alloc_floats(size_t n) {
  float *p = malloc((n ? n : 1) * sizeof(float));
  if (!p) abort();
  return p;
}
static double *alloc_doubles(size_t n) {
  double *p = malloc((n ? n : 1) * sizeof(double));
  if (!p) abort();
  return p;
}

static double max_abs(const float *x, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; i++)
    if (fabs((double)x[i]) > m) m = fabs((double)x[i]);
  return m;
}

/* ---------------------------------------------------------------- gemm */

typedef struct {
  size_t m, n, k;
} gemm_shape;

static const gemm_shape k_gemm_shapes[] = {
    {1, 1, 1},   {3, 5, 7},    {4, 8, 1},   {4, 8, 4},     {2, 3, 4},   {5, 9, 3},
    {8, 16, 32}, {7, 15, 31},  {17, 33, 65}, {64, 64, 64}, {1, 300, 2}, {300, 1, 3},
    {5, 9, 513}, {6, 257, 300}, {13, 520, 17}, {33, 7, 600},
};

/*
 * Runs one GEMM on a submatrix view (leading dimensions larger than the
 * widths), with c pre-filled with NaN so a kernel that reads c before the
 * first write fails, and a sentinel around the view that must survive. The
 * packing space is exactly what the workspace function asks for, so an
 * overrun shows under AddressSanitizer.
 */
static void check_gemm(size_t m, size_t n, size_t k, size_t pad_a, size_t pad_b, size_t pad_c,
                       int integers) {
  size_t lda = k + pad_a, ldb = n + pad_b, ldc = n + pad_c;
  float *a = alloc_floats(m * lda), *b = alloc_floats(k * ldb), *c = alloc_floats(m * ldc);
  float *pack = alloc_floats(qe_f32_gemm_workspace_floats(m, n, k));
  double *want = alloc_doubles(m * n);
  const float sentinel = 12345.0f;

  if (integers) {
    /* Small integers: every product and partial sum is exact in float. */
    for (size_t i = 0; i < m * lda; i++) a[i] = floorf(qe_rng_uniform(-4.0f, 5.0f));
    for (size_t i = 0; i < k * ldb; i++) b[i] = floorf(qe_rng_uniform(-4.0f, 5.0f));
  } else {
    qe_rng_fill(a, m * lda, -1.0f, 1.0f);
    qe_rng_fill(b, k * ldb, -1.0f, 1.0f);
  }
  for (size_t i = 0; i < m * ldc; i++) c[i] = sentinel;
  for (size_t i = 0; i < m; i++)
    for (size_t j = 0; j < n; j++) c[i * ldc + j] = NAN;

  double amax = 0, bmax = 0;
  for (size_t i = 0; i < m; i++) {
    double r = max_abs(a + i * lda, k);
    if (r > amax) amax = r;
  }
  for (size_t p = 0; p < k; p++) {
    double r = max_abs(b + p * ldb, n);
    if (r > bmax) bmax = r;
  }
  for (size_t i = 0; i < m; i++)
    for (size_t j = 0; j < n; j++) {
      double s = 0;
      for (size_t p = 0; p < k; p++) s += (double)a[i * lda + p] * (double)b[p * ldb + j];
      want[i * n + j] = s;
    }

  qe_f32_gemm(m, n, k, a, lda, b, ldb, c, ldc, pack);

  /* Rounding error grows at worst like k; 1e-6 * k still exposes one dropped term. */
  double tol = integers ? 0.0 : 1e-6 * (double)k * amax * bmax;
  float *row = alloc_floats(n);
  char what[96];
  for (size_t i = 0; i < m; i++) {
    memcpy(row, c + i * ldc, n * sizeof(float));
    snprintf(what, sizeof what, "gemm %zux%zux%zu ld+%zu/%zu/%zu row %zu%s", m, n, k, pad_a,
             pad_b, pad_c, i, integers ? " (integers)" : "");
    QE_CHECK_CLOSE(what, row, want + i * n, n, tol);
    for (size_t j = n; j < ldc; j++)
      QE_CHECK(c[i * ldc + j] == sentinel, "%s: column %zu outside the view was written", what, j);
  }

  free(row);
  free(want);
  free(pack);
  free(c);
  free(b);
  free(a);
}

QE_TEST(gemm_shapes) {
  qe_rng_seed(1);
  for (size_t s = 0; s < sizeof k_gemm_shapes / sizeof k_gemm_shapes[0]; s++) {
    const gemm_shape *g = &k_gemm_shapes[s];
    check_gemm(g->m, g->n, g->k, 0, 0, 0, 0);
  }
}

QE_TEST(gemm_submatrix_views) {
  qe_rng_seed(2);
  for (size_t s = 0; s < sizeof k_gemm_shapes / sizeof k_gemm_shapes[0]; s++) {
    const gemm_shape *g = &k_gemm_shapes[s];
    check_gemm(g->m, g->n, g->k, 3, 5, 2, 0);
    check_gemm(g->m, g->n, g->k, 1, 8, 9, 0);
  }
}

QE_TEST(gemm_exact_on_integers) {
  qe_rng_seed(3);
  check_gemm(1, 1, 1, 0, 0, 0, 1);
  check_gemm(3, 5, 7, 0, 0, 0, 1);
  check_gemm(17, 33, 65, 2, 3, 1, 1);
  check_gemm(9, 300, 520, 0, 0, 0, 1);  /* crosses both the depth and the column blocks */
  check_gemm(37, 263, 777, 1, 1, 1, 1);
}

QE_TEST(gemm_workspace_independent_of_m) {
  const size_t ns[] = {1, 7, 8, 9, 255, 256, 257, 1000};
  const size_t ks[] = {1, 3, 256, 257, 5000};
  for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++)
    for (size_t j = 0; j < sizeof ks / sizeof ks[0]; j++) {
      size_t w1 = qe_f32_gemm_workspace_floats(1, ns[i], ks[j]);
      size_t w2 = qe_f32_gemm_workspace_floats(100000, ns[i], ks[j]);
      QE_CHECK(w1 == w2, "n=%zu k=%zu: %zu vs %zu floats", ns[i], ks[j], w1, w2);
      QE_CHECK(w1 >= 8, "n=%zu k=%zu: %zu floats", ns[i], ks[j], w1);
    }
  /* Bounded by the blocking, not by the problem. */
  QE_CHECK(qe_f32_gemm_workspace_floats(4096, 4096, 4096) ==
               qe_f32_gemm_workspace_floats(1, 100000, 100000),
           "workspace grows past the block size");
}

/* ---------------------------------------------------------------- vadd */

QE_TEST(vadd_lengths_and_aliasing) {
  const size_t ns[] = {1, 2, 3, 4, 5, 8, 9, 1001};
  qe_rng_seed(4);
  for (size_t t = 0; t < sizeof ns / sizeof ns[0]; t++) {
    size_t n = ns[t];
    float *a = alloc_floats(n), *b = alloc_floats(n), *out = alloc_floats(n);
    float *work = alloc_floats(n);
    double *want = alloc_doubles(n), *twice = alloc_doubles(n);
    qe_rng_fill(a, n, -10.0f, 10.0f);
    qe_rng_fill(b, n, -10.0f, 10.0f);
    /* The float sum of two floats is the double sum rounded once. */
    for (size_t i = 0; i < n; i++) {
      want[i] = (double)(float)((double)a[i] + (double)b[i]);
      twice[i] = 2.0 * (double)a[i];
    }
    char what[64];

    qe_f32_vadd(n, a, b, out);
    snprintf(what, sizeof what, "vadd n=%zu", n);
    QE_CHECK_CLOSE(what, out, want, n, 0.0);

    memcpy(work, a, n * sizeof(float));
    qe_f32_vadd(n, work, b, work);
    snprintf(what, sizeof what, "vadd n=%zu out==a", n);
    QE_CHECK_CLOSE(what, work, want, n, 0.0);

    memcpy(work, b, n * sizeof(float));
    qe_f32_vadd(n, a, work, work);
    snprintf(what, sizeof what, "vadd n=%zu out==b", n);
    QE_CHECK_CLOSE(what, work, want, n, 0.0);

    memcpy(work, a, n * sizeof(float));
    qe_f32_vadd(n, work, work, work);
    snprintf(what, sizeof what, "vadd n=%zu out==a==b", n);
    QE_CHECK_CLOSE(what, work, twice, n, 0.0);

    free(twice);
    free(want);
    free(work);
    free(out);
    free(b);
    free(a);
  }
}

/* ---------------------------------------------------------------- finiteness */

/* The first non-finite index found by a plain loop over isfinite(). */
static size_t first_nonfinite_reference(const float *x, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!isfinite(x[i])) return i;
  return n;
}

QE_TEST(first_nonfinite_positions) {
  const size_t ns[] = {1, 3, 4, 63, 64, 65, 127, 128, 1000};
  const float bad[] = {NAN, INFINITY, -INFINITY};
  qe_rng_seed(5);
  for (size_t t = 0; t < sizeof ns / sizeof ns[0]; t++) {
    const size_t n = ns[t];
    float *x = alloc_floats(n);
    qe_rng_fill(x, n, -1e30f, 1e30f);
    x[n - 1] = FLT_MAX; /* the largest finite float is finite */
    if (n > 1) x[0] = -FLT_MAX;
    QE_CHECK(qe_f32_first_nonfinite(n, x) == n, "n=%zu all finite", n);
    /* Every position, or a spread of them, with each kind of non-finite;
     * a second one later must not win. */
    const size_t step = n > 200 ? 37 : 1;
    for (size_t at = 0; at < n; at += step) {
      for (size_t b = 0; b < 3; b++) {
        const float keep = x[at];
        x[at] = bad[b];
        const size_t later = at + (n - at) / 2;
        const float keep_later = x[later];
        if (later > at) x[later] = NAN;
        QE_CHECK(qe_f32_first_nonfinite(n, x) == first_nonfinite_reference(x, n),
                 "n=%zu bad at %zu kind %zu: got %zu", n, at, b, qe_f32_first_nonfinite(n, x));
        QE_CHECK(first_nonfinite_reference(x, n) == at, "reference n=%zu at %zu", n, at);
        x[later] = keep_later;
        x[at] = keep;
      }
    }
    free(x);
  }
}

/* ---------------------------------------------------------------- embedding */

QE_TEST(embedding_lookup_rows) {
  const size_t dims[] = {1, 7, 16, 33};
  const int32_t ids[] = {2, 0, 2, 4, 4, 4, 1, 3, 0};
  const size_t count = sizeof ids / sizeof ids[0], rows = 5;
  qe_rng_seed(5);
  for (size_t t = 0; t < sizeof dims / sizeof dims[0]; t++) {
    size_t dim = dims[t];
    float *table = alloc_floats(rows * dim), *out = alloc_floats(count * dim);
    double *want = alloc_doubles(count * dim);
    qe_rng_fill(table, rows * dim, -3.0f, 3.0f);
    for (size_t i = 0; i < count; i++)
      for (size_t d = 0; d < dim; d++) want[i * dim + d] = table[(size_t)ids[i] * dim + d];
    qe_f32_embedding_lookup(count, ids, table, dim, out);
    char what[48];
    snprintf(what, sizeof what, "embedding dim=%zu", dim);
    QE_CHECK_CLOSE(what, out, want, count * dim, 0.0);
    free(want);
    free(out);
    free(table);
  }
}

/* ---------------------------------------------------------------- vexp */

static uint32_t float_bits(float x) {
  uint32_t u;
  memcpy(&u, &x, sizeof u);
  return u;
}

static float vexp_scalar(float x) {
  return wasm_f32x4_extract_lane(qe_vexp_f32x4(wasm_f32x4_splat(x)), 0);
}

QE_TEST(vexp_within_2_ulp) {
  /* A dense sweep of [-86, 88] plus random points; four lanes at a time, as
   * the kernels use it. */
  const size_t sweep = 1u << 20, random = 1u << 18;
  uint32_t worst = 0;
  float worst_x = 0;
  size_t points = 0;
  qe_rng_seed(6);
  float lanes[4], got[4];
  for (size_t i = 0; i < sweep + random; i += 4) {
    for (int l = 0; l < 4; l++) {
      size_t j = i + (size_t)l;
      lanes[l] = j < sweep ? (float)(-86.0 + 174.0 * (double)j / (double)(sweep - 1))
                           : qe_rng_uniform(-86.0f, 88.0f);
    }
    wasm_v128_store(got, qe_vexp_f32x4(wasm_v128_load(lanes)));
    for (int l = 0; l < 4; l++) {
      float want = (float)exp((double)lanes[l]);
      int64_t d = (int64_t)float_bits(got[l]) - (int64_t)float_bits(want);
      uint32_t ulp = (uint32_t)(d < 0 ? -d : d);
      if (ulp > worst) {
        worst = ulp;
        worst_x = lanes[l];
      }
      points++;
    }
  }
  printf("    vexp: max error %u ULP over %zu points in [-86, 88] (worst at x = %.9g)\n", worst,
         points, (double)worst_x);
  QE_CHECK(worst <= 2, "max error %u ULP at x = %.9g", worst, (double)worst_x);
}

QE_TEST(vexp_special_values) {
  QE_CHECK(vexp_scalar(-INFINITY) == 0.0f, "exp(-inf) = %.9g", (double)vexp_scalar(-INFINITY));
  QE_CHECK(vexp_scalar(-1000.0f) == 0.0f, "exp(-1000) = %.9g", (double)vexp_scalar(-1000.0f));
  QE_CHECK(vexp_scalar(-87.0f) == 0.0f, "exp(-87) = %.9g", (double)vexp_scalar(-87.0f));
  QE_CHECK(vexp_scalar(0.0f) == 1.0f, "exp(0) = %.9g", (double)vexp_scalar(0.0f));
  QE_CHECK(vexp_scalar(-0.0f) == 1.0f, "exp(-0) = %.9g", (double)vexp_scalar(-0.0f));
  float top = vexp_scalar(88.0f);
  QE_CHECK(isfinite(top) && top > 1.6e38f, "exp(88) = %.9g", (double)top);
  QE_CHECK(vexp_scalar(1000.0f) == top, "exp(1000) = %.9g, not clamped to exp(88)",
           (double)vexp_scalar(1000.0f));
}

/* ---------------------------------------------------------------- softmax */

static void softmax_reference(size_t n, const float *x, double *want) {
  double mx = x[0], s = 0;
  for (size_t i = 1; i < n; i++)
    if (x[i] > mx) mx = x[i];
  for (size_t i = 0; i < n; i++) s += (want[i] = exp((double)x[i] - mx));
  for (size_t i = 0; i < n; i++) want[i] /= s;
}

/* Inputs uniform in [-range, range], or all equal to range when identical. */
static void check_softmax(size_t rows, size_t n, float range, int identical) {
  size_t total = rows * n;
  float *x = alloc_floats(total), *y = alloc_floats(total), *work = alloc_floats(total);
  double *want = alloc_doubles(total);
  if (identical)
    for (size_t i = 0; i < total; i++) x[i] = range;
  else
    qe_rng_fill(x, total, -range, range);
  for (size_t r = 0; r < rows; r++) softmax_reference(n, x + r * n, want + r * n);

  char what[80];
  snprintf(what, sizeof what, "softmax %zux%zu range %g%s", rows, n, (double)range,
           identical ? " identical" : "");
  qe_f32_softmax_rows(rows, n, x, y);
  QE_CHECK_CLOSE(what, y, want, total, 1e-6);
  for (size_t r = 0; r < rows; r++) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += y[r * n + i];
    QE_CHECK(fabs(s - 1.0) <= 1e-6, "%s row %zu sums to %.9g", what, r, s);
  }

  memcpy(work, x, total * sizeof(float));
  qe_f32_softmax_rows(rows, n, work, work);
  snprintf(what, sizeof what, "softmax %zux%zu range %g%s y==x", rows, n, (double)range,
           identical ? " identical" : "");
  QE_CHECK_CLOSE(what, work, want, total, 1e-6);

  free(want);
  free(work);
  free(y);
  free(x);
}

QE_TEST(softmax_rows) {
  const size_t ns[] = {1, 2, 3, 4, 5, 7, 8, 33, 1000};
  qe_rng_seed(7);
  for (size_t t = 0; t < sizeof ns / sizeof ns[0]; t++) {
    check_softmax(1, ns[t], 1.0f, 0);
    check_softmax(3, ns[t], 1.0f, 0);
    check_softmax(3, ns[t], 8.0f, 0);
    check_softmax(2, ns[t], 1e4f, 0); /* naive exp overflows */
    check_softmax(2, ns[t], 1e4f, 1);
    check_softmax(2, ns[t], -3.5f, 1);
  }
}

QE_TEST(softmax_dominant_element) {
  /* One element far above the rest: the result is one-hot, with no NaN from
   * 0/0 or inf/inf. */
  float x[7] = {-5e3f, 2e4f, 0.0f, 1.0f, -1e4f, 3.0f, 1e3f};
  double want[7] = {0, 1, 0, 0, 0, 0, 0};
  float y[7];
  qe_f32_softmax_rows(1, 7, x, y);
  QE_CHECK_CLOSE("softmax one-hot", y, want, 7, 0.0);
}

/* ---------------------------------------------------------------- layer norm */

static void layer_norm_reference(size_t n, const float *x, const float *gamma, const float *beta,
                                 double eps, double *want) {
  double mean = 0, var = 0;
  for (size_t i = 0; i < n; i++) mean += x[i];
  mean /= (double)n;
  for (size_t i = 0; i < n; i++) var += ((double)x[i] - mean) * ((double)x[i] - mean);
  var /= (double)n;
  double rstd = 1.0 / sqrt(var + eps);
  for (size_t i = 0; i < n; i++) want[i] = ((double)x[i] - mean) * rstd * gamma[i] + beta[i];
}

static void check_layer_norm(size_t rows, size_t n, float offset, double tol) {
  const float eps = 1e-5f;
  size_t total = rows * n;
  float *x = alloc_floats(total), *y = alloc_floats(total), *work = alloc_floats(total);
  float *gamma = alloc_floats(n), *beta = alloc_floats(n);
  double *want = alloc_doubles(total);
  qe_rng_fill(x, total, offset - 1.0f, offset + 1.0f);
  qe_rng_fill(gamma, n, 0.5f, 1.5f);
  qe_rng_fill(beta, n, -0.5f, 0.5f);
  for (size_t r = 0; r < rows; r++)
    layer_norm_reference(n, x + r * n, gamma, beta, eps, want + r * n);

  char what[64];
  snprintf(what, sizeof what, "layer norm %zux%zu offset %g", rows, n, (double)offset);
  qe_f32_layer_norm_rows(rows, n, x, gamma, beta, eps, y);
  QE_CHECK_CLOSE(what, y, want, total, tol);

  memcpy(work, x, total * sizeof(float));
  qe_f32_layer_norm_rows(rows, n, work, gamma, beta, eps, work);
  snprintf(what, sizeof what, "layer norm %zux%zu offset %g y==x", rows, n, (double)offset);
  QE_CHECK_CLOSE(what, work, want, total, tol);

  if (n == 1)
    for (size_t r = 0; r < rows; r++)
      QE_CHECK(y[r] == beta[0], "n=1 row %zu: %.9g, not beta %.9g", r, (double)y[r],
               (double)beta[0]);

  free(want);
  free(beta);
  free(gamma);
  free(work);
  free(y);
  free(x);
}

QE_TEST(layer_norm_rows) {
  const size_t ns[] = {1, 2, 3, 4, 5, 8, 13, 384};
  qe_rng_seed(8);
  for (size_t t = 0; t < sizeof ns / sizeof ns[0]; t++) {
    check_layer_norm(1, ns[t], 0.0f, 1e-5);
    check_layer_norm(3, ns[t], 0.0f, 1e-5);
    /* An offset mean: the two-pass variance keeps this accurate. */
    check_layer_norm(2, ns[t], 10.0f, 1e-5);
  }
}

QE_TEST(layer_norm_constant_row) {
  /* Zero variance: eps alone keeps the result finite, (x - mean) is 0, y = beta. */
  float x[6] = {2.5f, 2.5f, 2.5f, 2.5f, 2.5f, 2.5f};
  float gamma[6] = {1, 2, 3, 4, 5, 6}, beta[6] = {0.5f, -1, 0, 7, 0.25f, -3};
  double want[6];
  for (int i = 0; i < 6; i++) want[i] = beta[i];
  float y[6];
  qe_f32_layer_norm_rows(1, 6, x, gamma, beta, 1e-5f, y);
  QE_CHECK_CLOSE("layer norm constant row", y, want, 6, 0.0);
}

QE_SUITE(qe_suite_kernels, "kernels", QE_CASE(first_nonfinite_positions), QE_CASE(gemm_shapes), QE_CASE(gemm_submatrix_views),
         QE_CASE(gemm_exact_on_integers), QE_CASE(gemm_workspace_independent_of_m),
         QE_CASE(vadd_lengths_and_aliasing), QE_CASE(embedding_lookup_rows),
         QE_CASE(vexp_within_2_ulp), QE_CASE(vexp_special_values), QE_CASE(softmax_rows),
         QE_CASE(softmax_dominant_element), QE_CASE(layer_norm_rows),
         QE_CASE(layer_norm_constant_row));
