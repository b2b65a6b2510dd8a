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

#include "simd.h"

/* The additive bias a mask tensor contributes, read tile by tile through its
 * strides (0 for a broadcast axis); never expanded to full size. */
enum { QE_MASK_NONE = 0, QE_MASK_BOOL = 1, QE_MASK_ADDITIVE = 2 };

typedef struct {
  /* Element (b, head h, row i, column c) of q is q[b*q_sb + h*q_sh + i*q_sr + c];
   * the same for k and v (kv heads) and o (q heads). Strides count floats. */
  const float *q, *k, *v;
  float *o;
  size_t q_sb, q_sh, q_sr, k_sb, k_sh, k_sr, v_sb, v_sh, v_sr, o_sb, o_sh, o_sr;
  size_t batch, q_heads, kv_heads; /* q_heads a multiple of kv_heads (GQA/MQA) */
  size_t nq, nk, head_dim, v_head_dim;
  float scale;           /* multiplies every q.k */
  float softcap;         /* > 0: scores become softcap * tanh(score / softcap) */
  int causal;            /* query i sees keys j <= i + offset */
  /* Query i sits at position i + offset (offset = keys cached before the
   * queries): it aligns the causal frontier and the window. With kv_len,
   * batch b's offset is kv_len[b] - nq instead. */
  int64_t offset;
  int64_t window_left, window_right; /* >= 0: keys j with pos - left <= j <= pos + right; -1: unbounded */
  size_t valid_k;        /* keys j >= valid_k are padding */
  const int32_t *kv_len; /* per batch: keys j >= kv_len[b] are padding (NULL: none) */
  int mask_kind;         /* QE_MASK_* */
  const void *mask;      /* bool (uint8, 0 hides) or additive float */
  size_t mask_sb, mask_sh, mask_sq; /* strides (elements) per batch, q head, query; keys are contiguous */
  size_t mask_len;       /* keys j >= mask_len are hidden (a mask shorter than the keys) */
  /* 1: a row whose every score is -inf (all keys hidden) is 0, ONNX's rule;
   * 0: it is 0/0 = NaN, which qe_attention's callers report as overflow
   * (without masks every row sees a key, so only overflow empties one). */
  int zero_empty_rows;
  size_t tile_q, tile_k; /* set by qe_attention_choose_tiles */
} qe_attention_problem;

/* The single-sequence, equal-heads problem qe_attention computes: q: [nq x
 * dim], k and v: [nk x dim], o: [nq x dim], dim = heads * head_dim. */
void qe_attention_problem_dense(qe_attention_problem *p, const float *q, const float *k, const float *v,
                                float *o, size_t nq, size_t nk, size_t dim, size_t heads, float scale,
                                int causal, size_t valid_k);

/* The additive bias query i of (batch b, q head h) gives key j: 0 for a
 * visible key, -inf for one hidden by padding, causality, the window or a
 * false boolean mask, else the additive mask's value. */
float qe_attention_bias(const qe_attention_problem *p, size_t b, size_t h, size_t i, size_t j);

/* c * tanh(x / c) for four lanes (c > 0). */
v128_t qe_softcap_f32x4(v128_t x, float c);

/*
 * The scores the ONNX Attention operator exposes as qk_matmul_output, one
 * [nq x nk] row block per (batch, q head), contiguous in that order:
 * mode 0 and 1 scale * q.k (softcapped when p->softcap > 0), 2 that plus the
 * bias, 3 the softmax of 2 (rows with every key hidden are 0). Computed
 * directly, so it costs O(nq * nk) per head by definition.
 */
void qe_attention_scores(const qe_attention_problem *p, int mode, float *out);

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

/* Number of independent tasks: batch * kv_heads * ceil(nq * q_heads / kv_heads / tile_q). */
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
