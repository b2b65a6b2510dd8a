/*
 * The module's exported entries: the only functions JavaScript calls.
 *
 * Every entry checks its sizes again (the TypeScript layer checks first) and
 * returns a status code; none of them traps on bad input or aborts. Pointers
 * are byte offsets into the module's memory, allocated with qe_alloc.
 * Matrices are row-major float32 with no padding between rows.
 *
 * These headers are the C API's one source of truth: every declaration that
 * starts its line with QE_EXPORT, here or in a header of a subfolder of
 * csrc/, is exported by every module, and scripts/gen-c-api.js writes the
 * JavaScript view (js/c-api.ts) from them, status codes included.
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
  QE_ERR_NULL = -4,         /* a required pointer is null */
  /* Reading bytes this library wrote (adapter weights, pattern caches): */
  QE_ERR_FORMAT = -5,       /* not this format (magic), or inconsistent inside */
  QE_ERR_VERSION = -6,      /* a format version this build does not read */
  QE_ERR_CHECKSUM = -7,     /* the CRC32C does not match: the bytes are corrupt */
  QE_ERR_TRUNCATED = -8,    /* fewer bytes than the format says (empty included) */
  QE_ERR_HANDLE = -9        /* a handle is not a live object of its kind (destroyed, foreign or corrupt) */
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

/* Index of the first NaN or infinity among x[0..n), n when every element is
 * finite; n >= 1. Returns a negative status on bad arguments. */
QE_EXPORT int32_t qe_first_nonfinite(const float *x, int32_t n);

/* out[i] = a[i] + b[i], n >= 1. */
QE_EXPORT int qe_vec_add(const float *a, const float *b, float *out, int32_t n);

/* c[m x n] = a[m x k] * b[k x n]; c must not overlap a or b. */
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

/* ------------------------------------------------------------------------
 * The ONNX Attention operator (opsets 23-25; implemented in
 * csrc/api_onnx.c on the flash kernel). Semantics are those of ONNX's
 * reference implementation (onnx/reference/ops/op_attention.py).
 * ------------------------------------------------------------------------ */

/*
 * One call's tensors and attributes. Every field is 4 bytes in wasm32, in
 * this order (JavaScript writes it as an Int32Array; qe_attention_args_bytes
 * reports its size). Tensors are float32, dense, row-major:
 *   layout 3: q [batch, q_len, q_heads * head_size], k [batch, kv_len,
 *             kv_heads * head_size], v [batch, kv_len, kv_heads * v_head_size],
 *             y [batch, q_len, q_heads * v_head_size];
 *   layout 4: q [batch, q_heads, q_len, head_size], k and v [batch, kv_heads,
 *             kv_len, size], y [batch, q_heads, q_len, v_head_size];
 *   past_key/past_value [batch, kv_heads, past_len, size] (both or neither);
 *   present_key/present_value [batch, kv_heads, past_len + kv_len, size]
 *             (both or neither; required with a past): the cache and the new
 *             keys and values are written there, and attention reads them there;
 *   mask      bool (uint8) or additive float, shape mask_dims, each of the
 *             first three 1 (broadcast) or batch, q_heads, q_len; the last at
 *             most past_len + kv_len (keys past it are hidden);
 *   kv_seqlen per batch: keys j >= kv_seqlen[b] are padding, and query i sits
 *             at kv_seqlen[b] - q_len + i (not with a past);
 *   qk_out    [batch, q_heads, q_len, past_len + kv_len] in mode qk_mode (0-3).
 * window_left/right: -1 unbounded, else keys pos - left .. pos + right.
 */
typedef struct {
  const float *q, *k, *v;
  const void *mask;
  const float *past_key, *past_value;
  const int32_t *kv_seqlen;
  float *y, *present_key, *present_value, *qk_out;
  int32_t layout, batch, q_heads, kv_heads, q_len, kv_len, past_len, head_size, v_head_size;
  int32_t mask_kind; /* 0 none, 1 bool, 2 additive */
  int32_t mask_dims[4];
  int32_t causal, window_left, window_right, qk_mode;
  float scale, softcap; /* softcap 0: none */
  int32_t block_q, block_k;
} qe_attention_args;

QE_EXPORT int32_t qe_attention_args_bytes(void);

/* The operator's outputs for args; QE_ERR_ARGUMENT for inconsistent sizes,
 * heads that do not divide, a mask that does not broadcast, a negative
 * kv_seqlen, or kv_seqlen with a past. */
QE_EXPORT int qe_attention_onnx(const qe_attention_args *args);

/* ------------------------------------------------------------------------
 * Similarity search and code-embedding features (implemented in
 * csrc/api_search.c, kernels in csrc/search/ and csrc/embed/).
 * ------------------------------------------------------------------------ */

/*
 * A corpus for qe_cosine_topk is stored in panels of P = qe_corpus_panel_rows()
 * (16) rows, dimension-major inside a panel: row r, element d is at float
 * ((r / P) * dim + d) * P + r % P. A corpus of `capacity` rows (a multiple
 * of P) takes capacity * dim floats, and its inverse norms `capacity`
 * floats. Write it only through qe_corpus_store_rows and qe_corpus_move_row.
 */
QE_EXPORT int32_t qe_corpus_panel_rows(void);

/*
 * Stores rows [count x dim] (row-major) as corpus rows row0 .. row0 + count,
 * and their inverse norms 1 / |row| in inv_norms[row0 ..]: 0 for a zero
 * vector (norm below FLT_MIN), whose similarity to anything is then 0.
 * QE_ERR_ARGUMENT when capacity is not a positive multiple of P, the rows
 * do not fit, or a row has a non-finite element or a norm above FLT_MAX
 * (the other rows are stored all the same; such a row is stored as the zero
 * vector, with inverse norm 0, so it scores 0 against any query).
 */
QE_EXPORT int qe_corpus_store_rows(float *corpus, float *inv_norms, int32_t capacity, int32_t dim, int32_t row0, const float *rows, int32_t count);

/* Copies corpus row `from` and its inverse norm over row `to` (compaction
 * after a removal). QE_ERR_INDEX when either is outside [0, capacity). */
QE_EXPORT int qe_corpus_move_row(float *corpus, float *inv_norms, int32_t capacity, int32_t dim, int32_t from, int32_t to);

/*
 * Exact cosine top-k of nq queries [nq x dim] (row-major) against the first
 * n rows of a stored corpus. For query i, row out_idx[i * k + j] and its
 * similarity out_score[i * k + j], j < min(k, n), best first: similarity
 * descending, ties by lower row index. k > n is allowed: entries j >= n get
 * index -1 and score 0. Similarity is dot(q, x) / (|q| |x|) clamped to
 * [-1, 1], and 0 when either is a zero vector. QE_ERR_ARGUMENT for a
 * non-finite query or one whose norm exceeds FLT_MAX. Working memory:
 * about 64 * dim * 4 + 4 * nq bytes, whatever n is.
 */
QE_EXPORT int qe_cosine_topk(const float *queries, int32_t nq, const float *corpus, const float *inv_norms, int32_t n, int32_t dim, int32_t k, int32_t *out_idx, float *out_score);

/*
 * Fills table [rows x dim] with the deterministic feature-hashing table:
 * element (r, c) is scale times a hash of (seed, r, c) mapped to
 * [-sqrt(3), sqrt(3)) (variance 1). The same seed gives the same table in
 * both builds. scale must be finite.
 */
QE_EXPORT int qe_feature_table_fill(float *table, int32_t rows, int32_t dim, uint32_t seed, float scale);

/*
 * Signed feature hashing, token by token: out[t] (dim floats) = sum over
 * features f in [offsets[t], offsets[t + 1]) of weights[f] * table[rows[f]].
 * offsets has tokens + 1 entries, ascending from 0 to features (a token may
 * have none: a zero vector); rows and weights have `features` entries (a
 * weight is the feature's sign times its weight; it must be finite).
 * QE_ERR_ARGUMENT for bad offsets or weights, or sums beyond float32's
 * range, QE_ERR_INDEX for a row outside [0, table_rows).
 */
QE_EXPORT int qe_feature_hash_embed(const int32_t *offsets, const int32_t *rows, const float *weights, int32_t tokens, int32_t features, const float *table, int32_t table_rows, int32_t dim, float *out);

/*
 * Corpus-aware weighting of hashed text features (kernels in
 * csrc/embed/text_weight.c). A document-frequency table is `buckets` uint32
 * counts (a power of two, at most 2^26) in module memory, owned by the
 * caller; feature f counts in bucket f & (buckets - 1).
 */

/* Counts one document: df[bucket of features[i]] += 1 for each of its count
 * distinct features (count may be 0). QE_ERR_ARGUMENT for a bad bucket
 * count, or when a count would pass 2^31. */
QE_EXPORT int qe_text_df_add(uint32_t *df, int32_t buckets, const uint32_t *features, int32_t count);

/* out[i] = ln(1 + (docs - df + 0.5) / (df + 0.5)), df the count of
 * features[i]'s bucket (BM25's idf, positive). docs >= 0. */
QE_EXPORT int qe_text_idf(const uint32_t *features, int32_t count, const uint32_t *df, int32_t buckets,
                          int32_t docs, float *out);

/*
 * Documents to unit vectors [documents x dim]: document d owns features
 * offsets[d] .. offsets[d + 1] (offsets ascending from 0 to `features`),
 * each with its count tf (finite, >= 0) and weight (finite). A feature adds
 * sign * weight * (k1 + 1) tf / (k1 + tf) * idf at its column (a hash of the
 * feature mod dim; sign from the same hash); each row is then divided by its
 * L2 norm (zero rows stay zero). k1 > 0 and finite.
 */
QE_EXPORT int qe_text_tfidf_embed(const int32_t *offsets, const uint32_t *features, const float *tf,
                                  const float *weight, int32_t documents, int32_t features_count,
                                  const uint32_t *df, int32_t buckets, int32_t docs, float k1,
                                  int32_t dim, float *out);

/* ------------------------------------------------------------------------
 * Jobs: one attention or search call shared by several threads (
 * implemented in csrc/api_threads.c). Used by the multi-threaded modules,
 * whose instances (the main thread's and one per worker) share one linear
 * memory; every module exports them, and without threads the participants
 * just run one after another.
 *
 * Protocol: the main thread creates a job (the only step that allocates),
 * hands the pointer to workers 1 .. workers-1 and calls qe_job_work(job, 0)
 * itself; each participant grabs tasks until none are left, then counts
 * itself finished (and, in the threaded build, wakes waiters on
 * qe_job_finished_address with memory.atomic.notify). When the count reaches
 * the number of participants that were started, the work is complete (a
 * search job then needs qe_search_job_merge) and the main thread destroys
 * the job. Between create and destroy no other entry may use the arena (it
 * holds the workspaces).
 *
 * A participant that dies mid-job (its thread ended) is finished by the
 * caller with qe_job_rescue: the tasks it claimed and did not finish, and any
 * not yet claimed, are run on the caller's thread, and it is counted finished.
 * ------------------------------------------------------------------------ */

/* Most participants one job accepts. */
#define QE_JOB_MAX_WORKERS 64

typedef struct qe_job qe_job;

/* 1 when this build has WebAssembly atomics (the shared-memory module). */
QE_EXPORT int qe_thread_support(void);

/*
 * A job computing exactly what qe_attention computes with the same arguments,
 * for 1 <= workers <= QE_JOB_MAX_WORKERS participants. NULL for any
 * argument qe_attention rejects, a bad worker count, or no memory. The
 * workspaces of min(workers, tasks) participants come from the arena, so
 * qe_workspace_last_bytes reports them all.
 */
QE_EXPORT qe_job *qe_attention_job_create(const float *q, const float *k, const float *v, float *o,
                                                    int32_t nq, int32_t nk, int32_t dim, int32_t heads, float scale,
                                                    int32_t causal, int32_t valid_k, int32_t block_q, int32_t block_k,
                                                    int32_t workers);

/*
 * A job computing exactly what qe_cosine_topk computes with the same
 * arguments, its corpus split into ranges of panels. NULL for any argument
 * qe_cosine_topk rejects, a bad worker count, part lists (tasks x nq x k
 * results) over 256 MiB, or no memory: the caller then runs qe_cosine_topk. After every
 * participant has finished, qe_search_job_merge writes out_idx and
 * out_score (QE_ERR_ARGUMENT before then, or for an attention job).
 */
QE_EXPORT qe_job *qe_search_job_create(const float *queries, int32_t nq, const float *corpus,
                                       const float *inv_norms, int32_t n, int32_t dim, int32_t k,
                                       int32_t *out_idx, float *out_score, int32_t workers);
QE_EXPORT int qe_search_job_merge(qe_job *job);

/* Participant `worker` (0 <= worker < workers, each at most once) runs tasks
 * until none are left. Returns how many it ran, or a negative status. */
QE_EXPORT int32_t qe_job_work(qe_job *job, int32_t worker);

/* For participant `worker` whose thread has ended (or never took the job):
 * runs, on the calling thread, every task it claimed and did not finish and
 * every task not claimed yet, then counts it finished. Returns 1 + the tasks
 * run, 0 when it had finished by itself (nothing done), or a negative
 * status. It must not run
 * again afterwards: whatever it still wrote would race with the redone tasks. */
QE_EXPORT int32_t qe_job_rescue(qe_job *job, int32_t worker);

/* Joins participant `worker` and claims one task without running it, as a
 * participant that dies mid-task leaves it: 1, or 0 when none was left, or a
 * negative status. For testing qe_job_rescue (and the pool's recovery). */
QE_EXPORT int32_t qe_job_claim_task(qe_job *job, int32_t worker);

/* Participants done so far, and the address of that count (an int32 for
 * Atomics.wait). */
QE_EXPORT int32_t qe_job_finished(const qe_job *job);
QE_EXPORT int32_t *qe_job_finished_address(qe_job *job);

/* The job's task count, and the tile sizes an attention job uses (0 for a search job). */
QE_EXPORT int32_t qe_job_task_count(const qe_job *job);
QE_EXPORT int32_t qe_attention_job_tile_q(const qe_job *job);
QE_EXPORT int32_t qe_attention_job_tile_k(const qe_job *job);

/* Frees the job (not the arena). QE_ERR_ARGUMENT, and nothing freed, while a
 * participant that joined has not finished. NULL is a no-op. */
QE_EXPORT int qe_job_destroy(qe_job *job);

/* ---------------------------------------------------------------- end of jobs */

/* ------------------------------------------------------------------------
 * Pattern adaptation (implemented in csrc/api_adapt.c, algorithms
 * in csrc/adapt/): a Micro-LoRA adapter and a pattern cache, each an opaque
 * handle made by a create entry (written to *out) and freed by destroy.
 * Vectors are dim floats. Byte formats carry magic, version, length and a
 * CRC32C; import reports QE_ERR_FORMAT / VERSION / CHECKSUM / TRUNCATED.
 * ------------------------------------------------------------------------ */

typedef struct qe_micro_lora qe_micro_lora;
typedef struct qe_pattern_cache qe_pattern_cache;

/* y = x + (alpha / rank) B (A x); A ~ N(0, 1/dim) from seed, B = 0.
 * 1 <= rank <= 8, dim >= 1, |alpha| <= 1e6. Optimizer: Adam, rate 0.01. */
QE_EXPORT int qe_lora_create(int32_t dim, int32_t rank, float alpha, uint32_t seed, qe_micro_lora **out);
QE_EXPORT void qe_lora_destroy(qe_micro_lora *lora);
/* Back to the new adapter of its seed (optimizer settings kept). */
QE_EXPORT int qe_lora_reset(qe_micro_lora *lora);
/* optimizer 0 SGD, 1 Adam; 0 <= rate <= 1e6, 0 <= beta < 1, epsilon > 0, decay >= 0
 * (decoupled: each step multiplies the weights by 1 - rate * decay). */
QE_EXPORT int qe_lora_set_optimizer(qe_micro_lora *lora, int32_t optimizer, float learning_rate,
                                    float beta1, float beta2, float epsilon, float weight_decay);
/* y = adapted x (y may be x). QE_ERR_ARGUMENT when x or y is not finite. */
QE_EXPORT int qe_lora_apply(const qe_micro_lora *lora, const float *x, float *y);
/* As qe_lora_apply for n vectors (row-major, n x dim). */
QE_EXPORT int qe_lora_apply_batch(const qe_micro_lora *lora, const float *x, float *y, int32_t n);
/*
 * The contrastive loss of query x against keys [nkeys x dim] (key 0 the
 * positive, the rest negatives), weighted by reward (negative: push key 0
 * away); see csrc/adapt/micro_lora.h. accumulate adds its gradient, step
 * applies the mean of what was added, adapt does both. *loss gets the loss.
 * temperature > 0, 1 <= nkeys <= 4096, reward finite. A step that would make
 * a weight infinite or NaN is QE_ERR_ARGUMENT and changes no weight.
 */
QE_EXPORT int qe_lora_accumulate(qe_micro_lora *lora, const float *x, const float *keys, int32_t nkeys,
                                 float temperature, float reward, float *loss);
QE_EXPORT int qe_lora_step(qe_micro_lora *lora);
/* Drops what was accumulated since the last step (a failed batch). */
QE_EXPORT int qe_lora_discard(qe_micro_lora *lora);
/* out[0] dim, out[1] rank. */
QE_EXPORT int qe_lora_shape(const qe_micro_lora *lora, int32_t *out);
QE_EXPORT int qe_lora_adapt(qe_micro_lora *lora, const float *x, const float *keys, int32_t nkeys,
                            float temperature, float reward, float *loss);
/* The gradient of that loss without learning: grad_a [rank x dim],
 * grad_b [dim x rank], both row-major. */
QE_EXPORT int qe_lora_gradient(const qe_micro_lora *lora, const float *x, const float *keys, int32_t nkeys,
                               float temperature, float reward, float *loss, float *grad_a, float *grad_b);
/* A [rank x dim] and B [dim x rank], row-major, out or in (finite). */
QE_EXPORT int qe_lora_get_weights(const qe_micro_lora *lora, float *a, float *b);
QE_EXPORT int qe_lora_set_weights(qe_micro_lora *lora, const float *a, const float *b);
/* w [dim x dim] += (alpha / rank) B A: merged into a base matrix. */
QE_EXPORT int qe_lora_merge(const qe_micro_lora *lora, float *w);
/* Optimizer steps taken since creation or reset. */
QE_EXPORT double qe_lora_steps(const qe_micro_lora *lora);
QE_EXPORT double qe_lora_export_bytes(const qe_micro_lora *lora);
/* Writes qe_lora_export_bytes bytes; capacity is out's size. */
QE_EXPORT int qe_lora_export(const qe_micro_lora *lora, unsigned char *out, double capacity);
QE_EXPORT int qe_lora_import(const unsigned char *bytes, double n, qe_micro_lora **out);

/* A cache of at most max_patterns (>= 1) embeddings of dim floats. */
QE_EXPORT int qe_cache_create(int32_t dim, int32_t max_patterns, qe_pattern_cache **out);
QE_EXPORT void qe_cache_destroy(qe_pattern_cache *cache);
QE_EXPORT int qe_cache_clear(qe_pattern_cache *cache);
QE_EXPORT int32_t qe_cache_count(const qe_pattern_cache *cache);
/* out[0] dim, out[1] count, out[2] max_patterns. */
QE_EXPORT int qe_cache_shape(const qe_pattern_cache *cache, int32_t *out);
/*
 * Stores a pattern: row -1 adds one (when full, evicting the lowest
 * quality, then the least recently used), row >= 0 updates it (embedding
 * may then be null: kept). label_len -1 keeps the label. out[0] = the row
 * used, out[1] = 1 when a pattern was evicted from it.
 */
QE_EXPORT int qe_cache_store(qe_pattern_cache *cache, int32_t row, const float *embedding, float quality,
                             const unsigned char *label, int32_t label_len, int32_t *out);
/* Removes row; the last row moves into it (*moved_from its old index, or -1). */
QE_EXPORT int qe_cache_remove(qe_pattern_cache *cache, int32_t row, int32_t *moved_from);
/* The row a new pattern would evict from a full cache. */
QE_EXPORT int32_t qe_cache_victim(const qe_pattern_cache *cache);
/*
 * Nearest k (1 <= k <= 4096) rows to lora(x) by cosine (x itself when lora is
 * null), best first, ties by lower row; rows past the count: -1 and 0.
 * touch 1 marks the returned rows used (hits, last use).
 */
QE_EXPORT int qe_cache_search(qe_pattern_cache *cache, const qe_micro_lora *lora, const float *x, int32_t k,
                              int32_t touch, int32_t *out_idx, float *out_score);
/* Rows the last search scored exactly after its int8-code pass (0 when it
 * scanned every row exactly: few rows or a large k). */
QE_EXPORT int32_t qe_cache_last_candidates(const qe_pattern_cache *cache);
/* out[0] quality, out[1] hits, out[2] last use (clock ticks), out[3] the clock. */
QE_EXPORT int qe_cache_row_info(const qe_pattern_cache *cache, int32_t row, double *out);
/* The row's embedding (dim floats) into out. */
QE_EXPORT int qe_cache_row_embedding(const qe_pattern_cache *cache, int32_t row, float *out);
/* The row's label: its address, and its length in *len (-1 for a bad row). */
QE_EXPORT const unsigned char *qe_cache_row_label(const qe_pattern_cache *cache, int32_t row, int32_t *len);
/*
 * One learning step of lora from the cache: query x, the positive either
 * row positive_row or the vector positive (positive_row -1), or when both
 * are absent the query's nearest row through the adapter (the result a
 * reward judges); negatives: up to `negatives` rows nearest to lora(x)
 * other than the positive (hard negatives mined from the cache). step 0
 * accumulates only. *loss gets the loss; *positive_used the positive's row
 * (-1 for a vector).
 */
QE_EXPORT int qe_cache_adapt(qe_pattern_cache *cache, qe_micro_lora *lora, const float *x, int32_t positive_row,
                             const float *positive, int32_t negatives, float temperature, float reward,
                             int32_t step, float *loss, int32_t *positive_used);
QE_EXPORT double qe_cache_export_bytes(const qe_pattern_cache *cache);
QE_EXPORT int qe_cache_export(const qe_pattern_cache *cache, unsigned char *out, double capacity);
QE_EXPORT int qe_cache_import(const unsigned char *bytes, double n, qe_pattern_cache **out);

/* CRC32C of n bytes (the checksum of every byte format here). */
QE_EXPORT uint32_t qe_crc32c(const unsigned char *bytes, double n);

#endif /* QE_API_H */
