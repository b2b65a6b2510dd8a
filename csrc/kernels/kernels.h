/*
 * The arithmetic kernels: pure functions over pointers and strides. They do
 * not allocate, keep no state, and assume their arguments were checked by
 * the caller (csrc/api.c). Any working memory is passed in.
 */
#ifndef QE_KERNELS_H
#define QE_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* Floats of packing space qe_f32_gemm needs for these sizes. */
size_t qe_f32_gemm_workspace_floats(size_t m, size_t n, size_t k);

/*
 * c[m x n] = a[m x k] * b[k x n], row-major with leading dimensions lda, ldb,
 * ldc (in floats). Blocked over k and n, with panels of b packed into `pack`
 * and a 4x8 register tile. m, n, k >= 1; any sizes, no alignment needed.
 */
void qe_f32_gemm(size_t m, size_t n, size_t k, const float *a, size_t lda, const float *b,
                 size_t ldb, float *c, size_t ldc, float *pack);

/* out[i] = a[i] + b[i]; out may alias a or b. */
void qe_f32_vadd(size_t n, const float *a, const float *b, float *out);
/* Index of the first NaN or infinity among x[0..n), or n when all are finite. */
size_t qe_f32_first_nonfinite(size_t n, const float *x);

/* out row i = table row ids[i]; ids already checked to lie in the table. */
void qe_f32_embedding_lookup(size_t count, const int32_t *ids, const float *table, size_t dim,
                             float *out);

/* Numerically stable softmax of each of `rows` rows of length n; y may alias x. */
void qe_f32_softmax_rows(size_t rows, size_t n, const float *x, float *y);

/* Layer normalization of each row of length n; y may alias x. */
void qe_f32_layer_norm_rows(size_t rows, size_t n, const float *x, const float *gamma,
                            const float *beta, float eps, float *y);

#endif /* QE_KERNELS_H */
