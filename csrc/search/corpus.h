/*
 * A resident corpus for exact cosine search, owned by C behind a handle
 * (see runtime/handle.h for the pattern): rows are appended, removed by
 * moving the last row into the gap, and searched many times, and the
 * corpus grows by doubling. Rows are numbered 0 .. size - 1; the caller
 * maps its ids to rows. Results mean what qe_cosine_topk's mean.
 */
#ifndef QE_SEARCH_CORPUS_H
#define QE_SEARCH_CORPUS_H

#include <stdint.h>

#include "qe_api.h"

typedef struct qe_corpus qe_corpus;

/* A corpus of rows of length dim (>= 1) with room for `capacity` (>= 0)
 * rows; *out gets the handle. QE_ERR_ARGUMENT for bad sizes, QE_ERR_NULL
 * without out, QE_ERR_NO_MEMORY. */
QE_EXPORT int qe_corpus_create(int32_t dim, int32_t capacity, qe_corpus **out);

/* Frees the corpus and its rows. NULL is a no-op (QE_OK); a handle that is
 * not a live corpus (destroyed already, say) is QE_ERR_HANDLE. */
QE_EXPORT int qe_corpus_destroy(qe_corpus *corpus);

/* Rows held, and rows there is room for; a negative status for a bad handle. */
QE_EXPORT int32_t qe_corpus_size(const qe_corpus *corpus);
QE_EXPORT int32_t qe_corpus_capacity(const qe_corpus *corpus);

/*
 * Appends `count` rows [count x dim] (row-major) as rows size .. size +
 * count - 1, growing the corpus when needed. QE_ERR_ARGUMENT, and nothing
 * appended, when a row has a non-finite element or a norm above FLT_MAX,
 * or the corpus would pass INT32_MAX rows or 4 GiB; QE_ERR_NO_MEMORY.
 */
QE_EXPORT int qe_corpus_append(qe_corpus *corpus, const float *rows, int32_t count);

/* Removes row `row`: the last row moves into its place (its number becomes
 * `row`), and the size drops by one. QE_ERR_INDEX outside [0, size). */
QE_EXPORT int qe_corpus_remove_row(qe_corpus *corpus, int32_t row);

/* qe_cosine_topk of nq queries against the corpus's rows (size >= 1). */
QE_EXPORT int qe_corpus_search(const qe_corpus *corpus, const float *queries, int32_t nq, int32_t k,
                               int32_t *out_idx, float *out_score);

/* qe_search_job_create against the corpus's rows: NULL where that is, or
 * for a bad handle or an empty corpus. */
QE_EXPORT qe_job *qe_corpus_search_job_create(const qe_corpus *corpus, const float *queries, int32_t nq,
                                              int32_t k, int32_t *out_idx, float *out_score, int32_t workers);

#endif /* QE_SEARCH_CORPUS_H */
