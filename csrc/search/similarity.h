/*
 * Exact cosine top-K search: a fused kernel that computes the dot products
 * of a query with a panel of corpus rows in registers and feeds each score
 * straight into a bounded heap per query. The queries x corpus score matrix
 * never exists; working memory depends on the query group and the
 * dimension, never on the corpus size.
 *
 * The corpus is stored in panels of QE_CORPUS_PANEL rows, dimension-major
 * inside a panel: element (r, d) lives at
 *     ((r / QE_CORPUS_PANEL) * dim + d) * QE_CORPUS_PANEL + r % QE_CORPUS_PANEL
 * so a panel is one contiguous stream that a query reads front to back, one
 * broadcast query element against four vectors of rows per step. A corpus
 * of capacity rows (a multiple of QE_CORPUS_PANEL) takes capacity * dim
 * floats; rows past the corpus size in the last panel are computed and
 * ignored.
 *
 * Meaning of a result, for query q and corpus row x:
 *   similarity = dot(q / |q|, x) * (1 / |x|), clamped to [-1, 1];
 *   a zero vector (norm below FLT_MIN, the smallest normal float) has
 *   similarity 0 with everything, itself included;
 *   results are ordered by similarity descending, ties by lower row index.
 * Each dot product is summed in increasing d by one lane, whatever else is
 * computed alongside, so equal rows get equal scores to the bit and a query
 * scores the same alone as in a batch.
 */
#ifndef QE_SIMILARITY_H
#define QE_SIMILARITY_H

#include <stddef.h>
#include <stdint.h>

/* Rows per corpus panel: four vectors of four. */
#define QE_CORPUS_PANEL 16

/* Queries normalized and searched per pass over the corpus. */
#define QE_SIMILARITY_QUERY_GROUP 64

/*
 * inv_norms[i] = 1 / |row i| for `rows` rows of length dim (row stride ldx
 * floats). A row whose norm is below FLT_MIN gets 0 (a zero vector). A row
 * with a non-finite element or a norm above FLT_MAX also gets 0, and is
 * counted: the return value is the number of such rows (0 when all are fine).
 */
size_t qe_f32_row_inv_norms(size_t rows, size_t dim, const float *x, size_t ldx,
                            float *inv_norms);

/*
 * The one-pair distance kernels, shared by the HNSW index (csrc/search/hnsw.c)
 * and its exact scan: dot(a, b) and |a - b|^2 over dim floats, four
 * accumulators of four lanes (sixteen floats per step), then a tail. The
 * lanes are summed in a fixed order, so a pair scores the same every time.
 */
float qe_f32_dot(size_t dim, const float *a, const float *b);
float qe_f32_l2_squared(size_t dim, const float *a, const float *b);

/* sum a[i] * b[i] over n int8 x int16 elements (n a multiple of 16), in
 * int32: the quantized traversal of the HNSW index. |a|, |b| <= 127 keeps the
 * sum exact up to n = 2^17. */
int32_t qe_i8_i16_dot(size_t n, const int8_t *a, const int16_t *b);
/* The same for int8 a and b in [0, 127] (7 bits: what relaxed SIMD's
 * i8 x i7 dot product takes exactly, one instruction per 16 pairs); the
 * HNSW traversal's kernel. */
int32_t qe_i8_u7_dot(size_t n, const int8_t *a, const uint8_t *b);

/* out = q * inv (dim floats): the unit query qe_f32_cosine_topk scores with. */
void qe_f32_unit_query(size_t dim, const float *q, float inv, float *out);

/* The similarity qe_f32_cosine_topk gives corpus row `row` for the unit
 * query unit_q (from qe_f32_unit_query), to the bit: the same products
 * summed in the same order by the same lane. */
float qe_f32_corpus_cosine(size_t dim, const float *corpus, size_t row, const float *unit_q,
                           float inv_norm);

/* As qe_f32_corpus_cosine for four rows at once (four independent chains
 * of adds, so the latency of one does not hold up the others): out[i] for
 * rows[i], i < 4. */
void qe_f32_corpus_cosine4(size_t dim, const float *corpus, const int32_t *rows, const float *unit_q,
                           const float *inv_norms, float *out);

/* Writes count row-major rows (stride ldr) into the panel layout at rows
 * row0 .. row0 + count of the corpus. */
void qe_f32_corpus_store_rows(size_t dim, float *corpus, size_t row0, size_t count,
                              const float *rows, size_t ldr);

/* Copies corpus row `from` over row `to`. */
void qe_f32_corpus_move_row(size_t dim, float *corpus, size_t from, size_t to);

/* Sets corpus row r to the zero vector. */
void qe_f32_corpus_clear_row(size_t dim, float *corpus, size_t r);

/* Bytes of workspace qe_f32_cosine_topk needs (independent of n). */
size_t qe_f32_cosine_topk_workspace_bytes(size_t nq, size_t dim);

/*
 * For each of nq queries (row stride ldq, inverse norms q_inv_norms), the
 * min(k, n) corpus rows of highest cosine similarity, best first, written to
 * out_idx[i * ldo + j] and out_score[i * ldo + j] for j < min(k, n); entries
 * min(k, n) <= j < k get index -1 and score 0. The corpus holds n rows of
 * length dim in the panel layout, with their inverse norms (n entries).
 * nq, n, dim, k >= 1; ldo >= k. Outputs must not overlap the inputs.
 */
void qe_f32_cosine_topk(size_t nq, size_t n, size_t dim, size_t k, const float *queries,
                        size_t ldq, const float *q_inv_norms, const float *corpus,
                        const float *inv_norms, int32_t *out_idx, float *out_score, size_t ldo,
                        void *workspace);

/* As qe_f32_cosine_topk over the rows of panels [first_panel, end_panel)
 * only (indices stay the corpus's). */
void qe_f32_cosine_topk_panels(size_t nq, size_t n, size_t dim, size_t k, const float *queries,
                               size_t ldq, const float *q_inv_norms, const float *corpus,
                               const float *inv_norms, size_t first_panel, size_t end_panel,
                               int32_t *out_idx, float *out_score, size_t ldo, void *workspace);

/* Most parts qe_f32_topk_merge takes. */
#define QE_SIMILARITY_MAX_PARTS 64

/*
 * Merges `parts` (<= QE_SIMILARITY_MAX_PARTS) top-k lists per query, as
 * qe_f32_cosine_topk_panels writes them for consecutive panel ranges
 * (part p, query i at [(p * nq + i) * k]), into one per query: the k best
 * of all by score descending, index ascending; index -1 and score 0 past
 * the last result.
 */
void qe_f32_topk_merge(size_t nq, size_t k, size_t parts, const int32_t *part_idx,
                       const float *part_score, int32_t *out_idx, float *out_score, size_t ldo);

#endif /* QE_SIMILARITY_H */
