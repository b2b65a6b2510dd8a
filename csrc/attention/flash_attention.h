/*
 * Exact multi-head attention by the FlashAttention algorithm (Dao et al.,
 * 2022): queries in tiles of tile_q rows, keys and values streamed in tiles of
 * tile_k rows, softmax computed online (running max and sum per query, the
 * accumulator rescaled only when the max grows, one division at the end).
 * The nq x nk score matrix never exists; working memory depends only on the
 * tiles and the head size.
 *
 * The work is split into independent tasks, one per (query tile, head), so a
 * caller may hand disjoint task ranges to several workers, each with its own
 * workspace.
 */
#ifndef QE_FLASH_ATTENTION_H
#define QE_FLASH_ATTENTION_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  const float *q, *k, *v; /* q: [nq x dim], k and v: [nk x dim], row-major */
  float *o;               /* [nq x dim] */
  size_t nq, nk, dim, heads, head_dim;
  float scale;            /* multiplies every q.k */
  int causal;             /* mask keys j > i (top-left aligned) */
  size_t valid_k;         /* keys j >= valid_k are padding */
  size_t tile_q, tile_k;  /* set by qe_attention_choose_tiles */
} qe_attention_problem;

/* Largest tiles the kernel uses, whatever the preset asks, and the tiles it
 * picks when the preset asks for none. A key tile is packed once per (query
 * tile, head) and shared by all its queries, so query tiles are large; the
 * workspace is about (2 * tile_q + 2 * tile_k) * head_dim floats, under 1 MB
 * up to head_dim 384. Overridable at compile time for experiments. */
#ifndef QE_ATTENTION_MAX_TILE_Q
#define QE_ATTENTION_MAX_TILE_Q 128
#endif
#ifndef QE_ATTENTION_MAX_TILE_K
#define QE_ATTENTION_MAX_TILE_K 128
#endif
#ifndef QE_ATTENTION_DEFAULT_TILE_Q
#define QE_ATTENTION_DEFAULT_TILE_Q QE_ATTENTION_MAX_TILE_Q
#endif
#ifndef QE_ATTENTION_DEFAULT_TILE_K
#define QE_ATTENTION_DEFAULT_TILE_K QE_ATTENTION_MAX_TILE_K
#endif

/* Clamps the requested tiles (the preset's queryChunkSize and kvChunkSize) to
 * the kernel's limits and the problem size, and stores them in p. */
void qe_attention_choose_tiles(qe_attention_problem *p, size_t block_q, size_t block_k);

/* Number of independent tasks: heads * ceil(nq / tile_q). */
size_t qe_attention_task_count(const qe_attention_problem *p);

/* Most workspace one worker may ask for (1 GiB); beyond it the problem is refused. */
#define QE_ATTENTION_MAX_WORKSPACE ((uint64_t)1 << 30)

/* Bytes of workspace one worker needs (independent of nq and nk), or SIZE_MAX
 * when that exceeds QE_ATTENTION_MAX_WORKSPACE (the caller must refuse). */
size_t qe_attention_workspace_bytes(const qe_attention_problem *p);

/* Runs tasks [task_begin, task_end) with the given workspace. */
void qe_flash_attention_forward(const qe_attention_problem *p, size_t task_begin, size_t task_end,
                                void *workspace);

#endif /* QE_FLASH_ATTENTION_H */
