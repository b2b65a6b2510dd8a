/*
 * Little-endian reading and writing of the adapter and cache byte formats,
 * through a cursor. Readers never step past the end: a short read sets
 * `short_read` and yields zeros, so a truncated input is reported, not read
 * out of bounds.
 */
#ifndef QE_ADAPT_BYTES_H
#define QE_ADAPT_BYTES_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct {
  unsigned char *at;
  size_t left;
} qe_byte_writer;

typedef struct {
  const unsigned char *at;
  size_t left;
  int short_read;
} qe_byte_reader;

/* wasm32 and every machine the native tests run on are little-endian, so a
 * memcpy is the encoding. */
static inline void qe_put(qe_byte_writer *w, const void *src, size_t n) {
  if (n > w->left) n = w->left; /* callers size the buffer exactly; never overrun */
  memcpy(w->at, src, n);
  w->at += n;
  w->left -= n;
}
static inline void qe_put_u32(qe_byte_writer *w, uint32_t v) { qe_put(w, &v, 4); }
static inline void qe_put_u64(qe_byte_writer *w, uint64_t v) { qe_put(w, &v, 8); }
static inline void qe_put_f32(qe_byte_writer *w, float v) { qe_put(w, &v, 4); }

static inline void qe_get(qe_byte_reader *r, void *dst, size_t n) {
  if (n > r->left) {
    memset(dst, 0, n);
    r->short_read = 1;
    r->left = 0;
    return;
  }
  memcpy(dst, r->at, n);
  r->at += n;
  r->left -= n;
}
static inline uint32_t qe_get_u32(qe_byte_reader *r) { uint32_t v; qe_get(r, &v, 4); return v; }
static inline uint64_t qe_get_u64(qe_byte_reader *r) { uint64_t v; qe_get(r, &v, 8); return v; }
static inline float qe_get_f32(qe_byte_reader *r) { float v; qe_get(r, &v, 4); return v; }

#endif /* QE_ADAPT_BYTES_H */
