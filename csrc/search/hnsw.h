/*
 * Approximate nearest-neighbour search: a Hierarchical Navigable Small World
 * graph (Malkov & Yashunin, "Efficient and robust approximate nearest
 * neighbor search using Hierarchical Navigable Small World graphs", 2016),
 * behind an opaque handle. The algorithm is in hnsw.c, with the paper's
 * names; its node layout is spelled out at the top of that file.
 *
 * Distances (smaller is closer):
 *   QE_HNSW_COSINE  1 - cos(q, x); vectors are stored normalized, so this is
 *                   1 - dot(q/|q|, x/|x|). A zero vector is stored as zeros
 *                   and is at distance 1 from everything.
 *   QE_HNSW_IP      1 - dot(q, x) (inner product; vectors stored as given).
 *   QE_HNSW_L2      |q - x|^2 (squared Euclidean).
 *
 * A node is known by its slot, 0 <= slot < qe_hnsw_slot_count(). A removed
 * node's slot is free and is the next one add() takes (last freed, first
 * reused), so memory follows the live count, not the history of churn.
 * Everything is deterministic for a given seed and sequence of calls.
 *
 * Not thread-safe for writers: an index is used by one thread at a time.
 * Every entry that reads or writes the graph claims the handle first and
 * returns QE_HNSW_ERR_BUSY, touching nothing, when another call holds it
 * (possible only when several threads share module memory).
 */
#ifndef QE_HNSW_H
#define QE_HNSW_H

#include <stddef.h>
#include <stdint.h>

typedef struct qe_hnsw qe_hnsw;

enum { QE_HNSW_COSINE = 0, QE_HNSW_IP = 1, QE_HNSW_L2 = 2 };

/* Status codes beyond qe_api.h's (which are 0 to -4). */
enum {
  QE_HNSW_ERR_BUSY = -20,      /* another call is using this index */
  QE_HNSW_ERR_EMPTY = -21,     /* load: no bytes at all */
  QE_HNSW_ERR_FOREIGN = -22,   /* load: not an index file (magic number differs) */
  QE_HNSW_ERR_VERSION = -23,   /* load: a format version this build does not read */
  QE_HNSW_ERR_TRUNCATED = -24, /* load: fewer bytes than the header announces */
  QE_HNSW_ERR_CHECKSUM = -25,  /* load: CRC32C of header + body does not match */
  QE_HNSW_ERR_DIM = -26,       /* load: the file's dimension is not the one expected */
  QE_HNSW_ERR_METRIC = -27,    /* load: the file's metric is not the one expected */
  QE_HNSW_ERR_CORRUPT = -28    /* load: checksum fine but the content is inconsistent, or bytes trail */
};

/* Limits, checked by qe_hnsw_create and qe_hnsw_load. */
#define QE_HNSW_MAX_DIM 65536u
#define QE_HNSW_MIN_M 2u
#define QE_HNSW_MAX_M 256u
#define QE_HNSW_MAX_EF 65536u
/* Levels above this are clamped at insertion (probability M^-32 per node). */
#define QE_HNSW_MAX_LEVEL 31
/* Most slots one index holds. */
#define QE_HNSW_MAX_SLOTS 0x7FFFFFF0u

typedef struct {
  uint32_t dim;
  uint32_t metric;          /* QE_HNSW_COSINE, QE_HNSW_IP or QE_HNSW_L2 */
  uint32_t M;               /* links per node on levels >= 1; 2M on level 0 */
  uint32_t ef_construction; /* candidate list size while inserting */
  uint32_t ef_search;       /* default candidate list size of a search */
  uint64_t seed;            /* of the level generator */
} qe_hnsw_params;

/* A new empty index with room for `capacity` nodes (it grows past that).
 * QE_ERR_ARGUMENT for parameters outside the limits; QE_ERR_NO_MEMORY. */
int qe_hnsw_create(const qe_hnsw_params *params, uint32_t capacity, qe_hnsw **out);
void qe_hnsw_destroy(qe_hnsw *h);
/* As qe_hnsw_destroy, unless a call is using the index: QE_HNSW_ERR_BUSY. */
int qe_hnsw_try_destroy(qe_hnsw *h);
/* QE_OK for a live index (the qe_handle header: kind, layout version,
 * size); QE_ERR_NULL or QE_ERR_HANDLE (destroyed, foreign, corrupt or
 * misaligned) otherwise. The exported entries (csrc/api_hnsw.c) call it. */
int qe_hnsw_check(const qe_hnsw *h);

/* Inserts a vector of dim floats (finite; checked); its slot goes to *slot.
 * QE_ERR_ARGUMENT for a non-finite element, or a norm beyond float range
 * (cosine: |x|; ip and l2: |x|^2, which keeps every distance a number). */
int qe_hnsw_add(qe_hnsw *h, const float *vector, uint32_t *slot);

/* Removes the node in `slot` for good: every link to it is replaced by a
 * repaired one (the heuristic over its neighbours' and its own links), the
 * entry point moves if it was the entry, and the slot becomes free.
 * QE_ERR_INDEX when the slot holds no node. */
int qe_hnsw_remove(qe_hnsw *h, uint32_t slot);

/*
 * The k nearest nodes to `query`, best first (distance ascending, ties by
 * lower slot): slots[i], distances[i] for i < the returned count (at most
 * k and the number of allowed live nodes), or a negative status. ef = 0
 * means the index's ef_search; the search uses max(ef, k).
 * allow: NULL, or a bitset over slots (bit s of byte s / 8, least
 * significant bit first, qe_hnsw_slot_count() bits) of the nodes that may
 * be returned. Filtered searches walk the whole graph but return only
 * allowed nodes; when few nodes are allowed (at most ef * 2M), the allowed
 * nodes are scanned exactly instead, which is faster there and exact.
 */
int32_t qe_hnsw_search(qe_hnsw *h, const float *query, uint32_t k, uint32_t ef, const uint8_t *allow,
                       uint32_t *slots, float *distances);

/* As qe_hnsw_search, by scanning every (allowed) live node: the exact answer
 * under the same float32 distances. */
int32_t qe_hnsw_search_exact(qe_hnsw *h, const float *query, uint32_t k, const uint8_t *allow,
                             uint32_t *slots, float *distances);

/*
 * Searches from several threads at once: qe_hnsw_search_many runs nq
 * searches (queries dim apart; results k apart; counts[i] is search i's
 * count or status) as qe_hnsw_search / qe_hnsw_search_exact would, on its
 * own working memory `scratch` (qe_hnsw_search_scratch_bytes, 16-aligned),
 * reading the index only. So any number of threads may run it on one index
 * at once, each with its own scratch, as long as nothing writes the index
 * meanwhile (QE_HNSW_ERR_BUSY when a writer holds it as it starts).
 */
size_t qe_hnsw_search_scratch_bytes(const qe_hnsw *h);
int32_t qe_hnsw_search_many(const qe_hnsw *h, void *scratch, const float *queries, uint32_t nq, uint32_t k,
                            uint32_t ef, const uint8_t *allow, int exact, uint32_t *slots, float *distances,
                            int32_t *counts);

int qe_hnsw_set_ef_search(qe_hnsw *h, uint32_t ef);

/* How searches walk the graph: on the float32 vectors, or on int8 codes of
 * them (per-vector scale) with the ef results re-ranked in float32, which
 * reads a quarter of the bytes per distance. Inserts always use float32. */
enum { QE_HNSW_TRAVERSAL_FLOAT32 = 0, QE_HNSW_TRAVERSAL_INT8 = 1 };
int qe_hnsw_set_traversal(qe_hnsw *h, int traversal);
uint32_t qe_hnsw_dim(const qe_hnsw *h);
uint32_t qe_hnsw_count(const qe_hnsw *h);       /* live nodes */
uint32_t qe_hnsw_slot_count(const qe_hnsw *h);  /* slots ever used (live + free) */
int32_t qe_hnsw_max_level(const qe_hnsw *h);    /* -1 when empty */
size_t qe_hnsw_memory_bytes(const qe_hnsw *h);  /* everything the index holds */
/* The stored vector of `slot` (normalized for cosine) into out (dim floats). */
int qe_hnsw_vector(const qe_hnsw *h, uint32_t slot, float *out);
/* Links of `slot` on `level` copied to out (room for 2M); the count, or a negative status. */
int32_t qe_hnsw_links(const qe_hnsw *h, uint32_t slot, int32_t level, uint32_t *out);

/*
 * Persistence. The bytes are: a 64-byte header (magic "QEHNSW\r\n", format
 * version, dim, metric, M, ef_construction, ef_search, seed, generator
 * state, slot count, live count, entry point, top level, body and user
 * sizes), the body (per slot: its level, -1 for a free slot, then the vector
 * and the links of each level; then the free-slot stack; then `user_bytes`
 * opaque bytes the caller keeps with the index, e.g. its keys), and a
 * CRC32C of all of it. Little-endian throughout.
 */
int qe_hnsw_save_size(const qe_hnsw *h, size_t user_bytes, size_t *size);
/* Writes exactly qe_hnsw_save_size bytes to out. */
int qe_hnsw_save(qe_hnsw *h, const uint8_t *user, size_t user_bytes, uint8_t *out, size_t size);

/*
 * Reads bytes written by qe_hnsw_save into a new index. expect_dim and
 * expect_metric: what the caller's index has (0xFFFFFFFF accepts any).
 * Checks, in order: empty, magic, version, length, checksum, dim, metric,
 * then every count, level, link and float of the content; any failure is a
 * status code and nothing is allocated. On success *user and *user_bytes
 * point into `bytes` at the caller's block.
 */
int qe_hnsw_load(const uint8_t *bytes, size_t n, uint32_t expect_dim, uint32_t expect_metric,
                 qe_hnsw **out, const uint8_t **user, size_t *user_bytes);

#endif /* QE_HNSW_H */
