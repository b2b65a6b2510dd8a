/*
 * The exported entries of the HNSW index (implemented in
 * csrc/api_hnsw.c, the algorithm in csrc/search/hnsw.c). An index is an
 * opaque handle: create, use, destroy. Status codes are qe_api.h's plus
 * search/hnsw.h's QE_HNSW_ERR_* (-20 to -28). Pointers are byte offsets into
 * module memory; an index is used by one thread at a time (a second caller
 * gets QE_HNSW_ERR_BUSY). The index starts with a qe_handle header
 * (runtime/handle.h): every entry taking one returns QE_ERR_NULL for NULL
 * (destroy: QE_OK, a no-op)
 * and QE_ERR_HANDLE for a destroyed, foreign, corrupt or misaligned pointer
 * (the counts and top level return that status; memory_bytes returns 0;
 * search_job_create returns NULL).
 */
#ifndef QE_API_HNSW_H
#define QE_API_HNSW_H

#include <stdint.h>

#include "qe_api.h"
#include "search/hnsw.h"

/* A new index; *out receives the handle. metric: 0 cosine, 1 inner product,
 * 2 squared L2. seed = seed_hi * 2^32 + seed_lo. capacity: slots reserved
 * up front (0 for a small default; it grows either way). */
QE_EXPORT int qe_hnsw_index_create(int32_t dim, int32_t metric, int32_t M, int32_t ef_construction,
                                   int32_t ef_search, uint32_t seed_lo, uint32_t seed_hi, int32_t capacity,
                                   qe_hnsw **out);
/* Frees the index; QE_HNSW_ERR_BUSY while a call uses it. NULL is a no-op. */
QE_EXPORT int qe_hnsw_index_destroy(qe_hnsw *h);

/* Inserts count vectors [count x dim] in order; slots[i] is vector i's slot.
 * *added: how many went in before a failure (count on success). */
QE_EXPORT int qe_hnsw_index_add(qe_hnsw *h, const float *vectors, int32_t count, uint32_t *slots,
                                int32_t *added);
/* Removes the node in `slot` (QE_ERR_INDEX when it holds none). */
QE_EXPORT int qe_hnsw_index_remove(qe_hnsw *h, int32_t slot);

/*
 * For each of nq queries [nq x dim]: up to k nearest nodes best first, at
 * out_slots[i * k + j] and out_distances[i * k + j] for j < out_counts[i].
 * ef 0 takes the index's efSearch. allow: 0 or a bitset over slots
 * (qe_hnsw_index_slot_count bits). exact 1 scans instead of walking the graph.
 */
QE_EXPORT int qe_hnsw_index_search(qe_hnsw *h, const float *queries, int32_t nq, int32_t k, int32_t ef,
                                   const uint8_t *allow, int32_t exact, uint32_t *out_slots,
                                   float *out_distances, int32_t *out_counts);

/*
 * qe_hnsw_index_search's work as a job for the thread pool (qe_job_work on
 * `workers` participants; qe_api.h, "Jobs"): ranges of the queries, each
 * participant searching on its own working memory over the same graph, so
 * the results are those of qe_hnsw_index_search, bit for bit. A query's
 * failure is its out_counts[i] (a negative status). NULL for bad arguments
 * or memory (run qe_hnsw_index_search instead: it says why).
 */
QE_EXPORT qe_job *qe_hnsw_index_search_job_create(qe_hnsw *h, const float *queries, int32_t nq, int32_t k, int32_t ef,
                                            const uint8_t *allow, int32_t exact, uint32_t *out_slots,
                                            float *out_distances, int32_t *out_counts, int32_t workers);

QE_EXPORT int qe_hnsw_index_set_ef_search(qe_hnsw *h, int32_t ef);
/* 0: searches walk the graph on float32 vectors; 1: on int8 codes, re-ranked in float32. */
QE_EXPORT int qe_hnsw_index_set_traversal(qe_hnsw *h, int32_t traversal);
QE_EXPORT int32_t qe_hnsw_index_count(const qe_hnsw *h);
QE_EXPORT int32_t qe_hnsw_index_slot_count(const qe_hnsw *h);
QE_EXPORT int32_t qe_hnsw_index_max_level(const qe_hnsw *h);
QE_EXPORT uint32_t qe_hnsw_index_memory_bytes(const qe_hnsw *h);
/* The stored vector of slot (normalized for cosine) into out (dim floats). */
QE_EXPORT int qe_hnsw_index_vector(const qe_hnsw *h, int32_t slot, float *out);
/* Links of slot on level into out (room for 2M); the count or a negative status. */
QE_EXPORT int32_t qe_hnsw_index_links(const qe_hnsw *h, int32_t slot, int32_t level, uint32_t *out);

/* Bytes qe_hnsw_index_save writes with user_bytes of caller data, in *size. */
QE_EXPORT int qe_hnsw_index_save_size(const qe_hnsw *h, int32_t user_bytes, uint32_t *size);
QE_EXPORT int qe_hnsw_index_save(qe_hnsw *h, const uint8_t *user, int32_t user_bytes, uint8_t *out,
                                 uint32_t size);
/* A new index from saved bytes (see qe_hnsw_load); expect_dim / expect_metric
 * -1 accept any. The caller's data is at bytes + *user_offset, *user_bytes long. */
QE_EXPORT int qe_hnsw_index_load(const uint8_t *bytes, uint32_t n, int32_t expect_dim, int32_t expect_metric,
                                 qe_hnsw **out, uint32_t *user_offset, uint32_t *user_bytes);

#endif /* QE_API_HNSW_H */
