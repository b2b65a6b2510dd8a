#include <stdlib.h>
#include <string.h>

#include "qe_test.h"

int qe_test_failures;

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;

void qe_rng_seed(uint64_t seed) { g_rng = seed ? seed : 0x9E3779B97F4A7C15ull; }

float qe_rng_uniform(float lo, float hi) {
  g_rng ^= g_rng << 13;
  g_rng ^= g_rng >> 7;
  g_rng ^= g_rng << 17;
  double u = (double)(g_rng >> 11) / 9007199254740992.0; /* [0, 1) */
  return (float)(lo + (hi - lo) * u);
}

void qe_rng_fill(float *x, size_t n, float lo, float hi) {
  for (size_t i = 0; i < n; i++) x[i] = qe_rng_uniform(lo, hi);
}

void qe_check_close(const char *file, int line, const char *what, const float *got,
                    const double *want, size_t n, double tol) {
  double worst = 0;
  size_t at = 0;
  int nonfinite = 0;
  for (size_t i = 0; i < n; i++) {
    if (!isfinite(got[i])) {
      nonfinite = 1;
      at = i;
      break;
    }
    double e = fabs((double)got[i] - want[i]);
    if (e > worst) {
      worst = e;
      at = i;
    }
  }
  if (nonfinite || worst > tol) {
    qe_test_failures++;
    fprintf(stderr, "    %s:%d: %s: |got - want| = %.3g > %.3g at [%zu] (got %.9g, want %.9g)\n",
            file, line, what, nonfinite ? INFINITY : worst, tol, at, (double)got[at], want[at]);
  }
}

int main(int argc, char **argv) {
  const qe_test_suite *suites[] = {&qe_suite_kernels, &qe_suite_attention, &qe_suite_search, &qe_suite_heap, &qe_suite_threads};
  const char *only = argc > 1 ? argv[1] : NULL;
  int passed = 0, failed = 0;
  for (size_t s = 0; s < sizeof suites / sizeof suites[0]; s++) {
    const qe_test_suite *suite = suites[s];
    for (size_t i = 0; i < suite->count; i++) {
      if (only && !strstr(suite->cases[i].name, only)) continue;
      qe_test_failures = 0;
      suite->cases[i].fn();
      if (qe_test_failures == 0) {
        passed++;
        printf("  ok   %s/%s\n", suite->name, suite->cases[i].name);
      } else {
        failed++;
        printf("  FAIL %s/%s (%d checks)\n", suite->name, suite->cases[i].name, qe_test_failures);
      }
    }
  }
  printf("c-tests: %d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
