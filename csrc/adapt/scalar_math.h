/*
 * Double-precision exp and log for the adapters' loss, softmax and seeded
 * normal draws. Written here so that the threaded modules, which link no
 * libm, need none, and so that every build draws the same A from a seed. Accurate to a few
 * ulp over the ranges used (relative error below 1e-15).
 */
#ifndef QE_ADAPT_SCALAR_MATH_H
#define QE_ADAPT_SCALAR_MATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* e^x: x = k ln 2 + r with |r| <= ln 2 / 2, a degree-13 Taylor step for e^r,
 * and 2^k built in the exponent bits. */
static inline double qe_exp_f64(double x) {
  if (x != x) return x;
  if (x > 709.0) return INFINITY;
  if (x < -708.0) return 0.0;
  const double ln2 = 0.69314718055994530942;
  const double k = (double)(int64_t)(x / ln2 + (x >= 0 ? 0.5 : -0.5));
  const double r = (x - k * 0.6931471803691238164902) - k * 1.9082149292705877e-10;
  /* Horner with 1/n! as constants: no division on the path (each would
   * cost as much as the whole polynomial). */
  static const double inv_fact[14] = {1.0, 1.0, 1.0 / 2, 1.0 / 6, 1.0 / 24, 1.0 / 120, 1.0 / 720,
                                      1.0 / 5040, 1.0 / 40320, 1.0 / 362880, 1.0 / 3628800,
                                      1.0 / 39916800, 1.0 / 479001600, 1.0 / 6227020800.0};
  double p = inv_fact[13];
  for (int n = 12; n >= 0; n--) p = inv_fact[n] + p * r;
  const uint64_t bits = (uint64_t)((int64_t)k + 1023) << 52;
  double scale;
  memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

/* ln x for x > 0 (normal or subnormal): x = m 2^e with m in [sqrt(1/2),
 * sqrt(2)), ln m = 2 atanh((m - 1) / (m + 1)) by its series. */
static inline double qe_log_f64(double x) {
  if (!(x > 0)) return x == 0 ? -INFINITY : NAN;
  if (x == INFINITY) return x;
  int e = 0;
  while (x < 2.2250738585072014e-308) {
    x *= 4503599627370496.0; /* 2^52: subnormals first made normal */
    e -= 52;
  }
  uint64_t bits;
  memcpy(&bits, &x, sizeof bits);
  e += (int)((bits >> 52) & 0x7ff) - 1023;
  bits = (bits & 0x000fffffffffffffull) | 0x3ff0000000000000ull;
  double m;
  memcpy(&m, &bits, sizeof m);
  if (m > 1.4142135623730951) {
    m *= 0.5;
    e++;
  }
  const double s = (m - 1.0) / (m + 1.0), s2 = s * s;
  static const double inv_odd[12] = {1.0, 1.0 / 3, 1.0 / 5, 1.0 / 7, 1.0 / 9, 1.0 / 11,
                                     1.0 / 13, 1.0 / 15, 1.0 / 17, 1.0 / 19, 1.0 / 21, 1.0 / 23};
  double series = 0.0;
  for (int n = 11; n >= 0; n--) series = inv_odd[n] + s2 * series;
  return 2.0 * s * series + e * 0.69314718055994530942;
}

#endif /* QE_ADAPT_SCALAR_MATH_H */
