#define _POSIX_C_SOURCE 200809L
#include <regex.h>
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

/*
 * qe-ctests [pattern...]: with patterns, runs only the cases whose full name
 * "suite/case" matches one of them, as a case-insensitive POSIX extended
 * regular expression (a plain word matches as a substring), the way Jest
 * matches test file paths; scripts/run-tests.sh hands both the same patterns.
 * Nothing matching is not a failure here: the script decides, since the
 * pattern may select Jest suites only.
 */
int main(int argc, char **argv) {
  const qe_test_suite *suites[] = {&qe_suite_kernels, &qe_suite_attention, &qe_suite_search, &qe_suite_corpus, &qe_suite_threads, &qe_suite_text, &qe_suite_adapt, &qe_suite_hnsw};
  int patterns = argc - 1;
  regex_t *filters = patterns > 0 ? calloc((size_t)patterns, sizeof(regex_t)) : NULL;
  for (int p = 0; p < patterns; p++) {
    int rc = regcomp(&filters[p], argv[p + 1], REG_EXTENDED | REG_ICASE | REG_NOSUB);
    if (rc != 0) {
      char why[128];
      regerror(rc, &filters[p], why, sizeof why);
      fprintf(stderr, "qe-ctests: bad pattern \"%s\": %s\n", argv[p + 1], why);
      while (p-- > 0) regfree(&filters[p]);
      free(filters);
      return 2;
    }
  }
  int passed = 0, failed = 0, skipped = 0;
  for (size_t s = 0; s < sizeof suites / sizeof suites[0]; s++) {
    const qe_test_suite *suite = suites[s];
    for (size_t i = 0; i < suite->count; i++) {
      char full[256];
      snprintf(full, sizeof full, "%s/%s", suite->name, suite->cases[i].name);
      int selected = patterns == 0;
      for (int p = 0; p < patterns && !selected; p++) selected = regexec(&filters[p], full, 0, NULL, 0) == 0;
      if (!selected) {
        skipped++;
        continue;
      }
      qe_test_failures = 0;
      suite->cases[i].fn();
      if (qe_test_failures == 0) {
        passed++;
        printf("  ok   %s\n", full);
      } else {
        failed++;
        printf("  FAIL %s (%d checks)\n", full, qe_test_failures);
      }
    }
  }
  for (int p = 0; p < patterns; p++) regfree(&filters[p]);
  free(filters);
  if (patterns > 0) printf("c-tests: %d cases not matching the pattern%s skipped\n", skipped, patterns > 1 ? "s" : "");
  printf("c-tests: %d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
