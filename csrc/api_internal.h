/*
 * Checks shared by the exported entries (api.c, api_threads.c); not exported.
 */
#ifndef QE_API_INTERNAL_H
#define QE_API_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "attention/flash_attention.h"

/* True when count elements of elem_bytes each are a positive buffer that fits module memory. */
int qe_sizes_ok(int64_t count, uint64_t elem_bytes);

/*
 * Checks an attention call's arguments and fills *p, tiles chosen; returns
 * QE_OK, or the status qe_attention reports (a head too large for any
 * workspace is QE_ERR_ARGUMENT).
 */
int qe_attention_problem_init(qe_attention_problem *p, const float *q, const float *k, const float *v,
                              float *o, int32_t nq, int32_t nk, int32_t dim, int32_t heads, float scale,
                              int32_t causal, int32_t valid_k, int32_t block_q, int32_t block_k);

/* The argument checks of qe_cosine_topk (QE_OK or the status it returns),
 * shared with qe_search_job_create. */
int qe_cosine_topk_check(const float *queries, int32_t nq, const float *corpus,
                         const float *inv_norms, int32_t n, int32_t dim, int32_t k,
                         const int32_t *out_idx, const float *out_score);

/*
 * A job of `tasks` independent tasks run by run(ctx, task, workspace), for
 * work defined outside api_threads.c (the HNSW batch search): ctx_bytes of
 * ctx are copied into the job (so they live as long as it), and each
 * participant that runs a task gets workspace_bytes of its own (16-aligned,
 * not cleared). NULL when that cannot be had.
 */
typedef struct qe_job qe_job;
typedef void (*qe_task_fn)(const void *ctx, size_t task, unsigned char *workspace);
qe_job *qe_tasks_job_create(int32_t workers, size_t tasks, const void *ctx, size_t ctx_bytes,
                            size_t workspace_bytes, qe_task_fn run);

#endif /* QE_API_INTERNAL_H */
