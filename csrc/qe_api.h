/*
 * The module's exported entries: the only functions JavaScript calls.
 *
 * Every entry checks its sizes again (the TypeScript layer checks first) and
 * returns a status code; none of them traps on bad input or aborts. Pointers
 * are byte offsets into the module's memory, allocated with qe_alloc.
 * Matrices are row-major float32 with no padding between rows.
 */
#ifndef QE_API_H
#define QE_API_H

#include <stddef.h>
#include <stdint.h>

#if defined(__EMSCRIPTEN__)
#  include <emscripten.h>
#  define QE_EXPORT EMSCRIPTEN_KEEPALIVE
#else
#  define QE_EXPORT
#endif

/* Status codes crossing the C/JS boundary. */
enum {
  QE_OK = 0,
  QE_ERR_ARGUMENT = -1,     /* a size is zero, negative, inconsistent or too large */
  QE_ERR_NO_MEMORY = -2,    /* working memory could not be had */
  QE_ERR_INDEX = -3,        /* an id or index points outside its table */
  QE_ERR_NULL = -4          /* a required pointer is null */
};

/* Memory the caller owns (inputs, outputs, resident buffers). 16-byte aligned. */
QE_EXPORT void *qe_alloc(size_t bytes);
QE_EXPORT void qe_free(void *ptr);

/* 1 when this module was compiled with SIMD128, 0 for the scalar build. */
QE_EXPORT int qe_simd_level(void);

/* Working memory of the kernels (the arena): bytes the last call used, the
 * most any call used since the last reset, and the arena's reserved size. */
QE_EXPORT size_t qe_workspace_last_bytes(void);
QE_EXPORT size_t qe_workspace_high_water_bytes(void);
QE_EXPORT void qe_workspace_reset_high_water(void);
QE_EXPORT size_t qe_workspace_reserved_bytes(void);
/* Returns the arena's memory to the allocator. */
QE_EXPORT void qe_workspace_release(void);

/* out[i] = a[i] + b[i], n >= 1. */
QE_EXPORT int qe_vec_add(const float *a, const float *b, float *out, int32_t n);

/* c[m x n] = a[m x k] * b[k x n]. */
QE_EXPORT int qe_matmul(const float *a, const float *b, float *c, int32_t m, int32_t n, int32_t k);

/* out[i x dim] = table[ids[i] x dim] for i < count; every id in [0, rows). */
QE_EXPORT int qe_embedding_lookup(const int32_t *ids, int32_t count, const float *table,
                                  int32_t rows, int32_t dim, float *out);

/* y = softmax(x) over each of `rows` rows of length n (numerically stable). */
QE_EXPORT int qe_softmax(const float *x, float *y, int32_t rows, int32_t n);

/* y = (x - mean) / sqrt(var + eps) * gamma + beta over each row of length n. */
QE_EXPORT int qe_layer_norm(const float *x, const float *gamma, const float *beta, float *y,
                            int32_t rows, int32_t n, float eps);

/*
 * Exact multi-head attention by the FlashAttention algorithm.
 * q: [nq x dim], k and v: [nk x dim], o: [nq x dim]. dim = heads * head_dim.
 * scale: multiplies q.k (pass 1/sqrt(head_dim) for the usual attention).
 * causal: 1 masks keys j > i (top-left aligned, as PyTorch's is_causal).
 * valid_k: keys j >= valid_k are padding and masked; 1 <= valid_k <= nk.
 * block_q, block_k: the tile sizes asked for; the kernel clamps them to its
 * cache budget (qe_attention_tile reports what it used).
 */
QE_EXPORT int qe_attention(const float *q, const float *k, const float *v, float *o,
                           int32_t nq, int32_t nk, int32_t dim, int32_t heads, float scale,
                           int32_t causal, int32_t valid_k, int32_t block_q, int32_t block_k);

/* The query and key tile sizes the last qe_attention call used. */
QE_EXPORT int32_t qe_attention_tile_q(void);
QE_EXPORT int32_t qe_attention_tile_k(void);

#endif /* QE_API_H */
