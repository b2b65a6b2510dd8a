/*
 * A small test harness for the native (SIMDe) build of the C sources.
 * Each test file defines functions with QE_TEST(name) and lists them in its
 * suite table; test_main.c runs every suite (or, given patterns, the cases
 * whose "suite/case" name matches one) and prints the closing line
 * "c-tests: N passed, N failed" that scripts/run-tests.sh adds up.
 *
 * References are computed in double precision (long double where it helps),
 * independently of the kernels under test.
 */
#ifndef QE_TEST_H
#define QE_TEST_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct {
  const char *name;
  void (*fn)(void);
} qe_test_case;

typedef struct {
  const char *name;
  const qe_test_case *cases;
  size_t count;
} qe_test_suite;

/* Failures recorded by the running test; reset before each test. */
extern int qe_test_failures;

#define QE_TEST(name) static void name(void)

#define QE_CHECK(cond, ...)                                              \
  do {                                                                   \
    if (!(cond)) {                                                       \
      qe_test_failures++;                                                \
      fprintf(stderr, "    %s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                      \
      fprintf(stderr, "\n");                                             \
    }                                                                    \
  } while (0)

/* Fails when any |got[i] - want[i]| exceeds tol; reports the worst index. */
void qe_check_close(const char *file, int line, const char *what, const float *got,
                    const double *want, size_t n, double tol);
#define QE_CHECK_CLOSE(what, got, want, n, tol) \
  qe_check_close(__FILE__, __LINE__, (what), (got), (want), (n), (tol))

/* Deterministic pseudo-random numbers (xorshift), uniform in [lo, hi). */
void qe_rng_seed(uint64_t seed);
float qe_rng_uniform(float lo, float hi);
void qe_rng_fill(float *x, size_t n, float lo, float hi);

/* Suites, defined in the test files. */
extern const qe_test_suite qe_suite_kernels;
extern const qe_test_suite qe_suite_attention;
extern const qe_test_suite qe_suite_search;
extern const qe_test_suite qe_suite_corpus; /* csrc/search/corpus.c, csrc/runtime/handle.c */
extern const qe_test_suite qe_suite_threads; /* csrc/api_threads.c, allocation from several threads */
extern const qe_test_suite qe_suite_text; /* csrc/embed/text_weight.c */
extern const qe_test_suite qe_suite_adapt; /* csrc/adapt/, csrc/api_adapt.c */
extern const qe_test_suite qe_suite_hnsw; /* csrc/search/hnsw.c */

#define QE_SUITE(var, label, ...)                              \
  static const qe_test_case var##_cases[] = {__VA_ARGS__};     \
  const qe_test_suite var = {label, var##_cases, sizeof(var##_cases) / sizeof(var##_cases[0])}
#define QE_CASE(fn) {#fn, fn}

#endif /* QE_TEST_H */
