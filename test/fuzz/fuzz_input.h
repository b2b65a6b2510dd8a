/*
 * Reading a fuzzer's bytes as the arguments of one call: sizes, flags and
 * floats taken in order, zero once the bytes run out, so every input is a
 * valid (if often rejected) call.
 */
#ifndef QE_FUZZ_INPUT_H
#define QE_FUZZ_INPUT_H

#include <math.h>
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* A failed check: says where, then stops the fuzzer with a crash it records. */
#define FUZZ_ABORT() (fprintf(stderr, "fuzz check failed at %s:%d\n", __FILE__, __LINE__), __builtin_trap())

typedef struct {
  const uint8_t *data;
  size_t size;
  size_t at;
} fuzz_input;

static inline uint32_t fuzz_u32(fuzz_input *in, uint32_t below) {
  uint32_t v = 0;
  for (int i = 0; i < 4 && in->at < in->size; i++) v |= (uint32_t)in->data[in->at++] << (8 * i);
  return below ? v % below : v;
}

static inline uint8_t fuzz_u8(fuzz_input *in) { return in->at < in->size ? in->data[in->at++] : 0; }

/*
 * A float: mostly a small value in [-4, 4) from one byte, sometimes the raw
 * bits of four bytes (NaN, infinity, huge and subnormal values included),
 * as the first byte decides.
 */
static inline float fuzz_float(fuzz_input *in) {
  uint8_t kind = fuzz_u8(in);
  if (kind < 248) return ((float)fuzz_u8(in) - 128.0f) / 32.0f;
  uint32_t bits = fuzz_u32(in, 0);
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

static inline void fuzz_floats(fuzz_input *in, float *x, size_t n) {
  for (size_t i = 0; i < n; i++) x[i] = fuzz_float(in);
}

static inline int fuzz_all_finite(const float *x, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!isfinite(x[i])) return 0;
  return 1;
}

/* Every |x[i]| <= bound (so finite). */
static inline int fuzz_all_bounded(const float *x, size_t n, float bound) {
  for (size_t i = 0; i < n; i++)
    if (!(fabsf(x[i]) <= bound)) return 0;
  return 1;
}

#endif
