/*
 * The ONNX Attention operator's entry: checks the call, writes the KV cache
 * concatenation straight into present_key/present_value, and runs the flash
 * kernel on strided views of the tensors (3D layouts are read in place, GQA
 * heads share their K/V head, masks are read through broadcast strides).
 */
#include <math.h>
#include <string.h>

#include "api_internal.h"
#include "arena.h"
#include "attention/flash_attention.h"
#include "qe_api.h"

int32_t qe_attention_args_bytes(void) { return (int32_t)sizeof(qe_attention_args); }

/* Strides (floats) of a [batch, heads, seq, size] view of a tensor in layout 3 or 4. */
static void view_strides(int32_t layout, size_t heads, size_t seq, size_t size, size_t *sb, size_t *sh,
                         size_t *sr) {
  if (layout == 3) {
    *sb = seq * heads * size, *sh = size, *sr = heads * size;
  } else {
    *sb = heads * seq * size, *sh = seq * size, *sr = size;
  }
}

/* present[b][h] = past[b][h] rows, then the new rows (from a strided view). */
static void write_cache(float *present, const float *past, const float *cur, size_t batch, size_t heads,
                        size_t past_len, size_t len, size_t size, size_t sb, size_t sh, size_t sr) {
  const size_t total = past_len + len;
  for (size_t b = 0; b < batch; b++)
    for (size_t h = 0; h < heads; h++) {
      float *dst = present + (b * heads + h) * total * size;
      if (past_len) memcpy(dst, past + (b * heads + h) * past_len * size, past_len * size * sizeof(float));
      for (size_t j = 0; j < len; j++)
        memcpy(dst + (past_len + j) * size, cur + b * sb + h * sh + j * sr, size * sizeof(float));
    }
}

int qe_attention_onnx(const qe_attention_args *a) {
  if (!a || !a->q || !a->k || !a->v || !a->y) return QE_ERR_NULL;
  if (a->layout != 3 && a->layout != 4) return QE_ERR_ARGUMENT;
  if (a->batch < 1 || a->q_heads < 1 || a->kv_heads < 1 || a->q_len < 1 || a->kv_len < 0 || a->past_len < 0 ||
      a->head_size < 1 || a->v_head_size < 1 || a->q_heads % a->kv_heads != 0)
    return QE_ERR_ARGUMENT;
  const int64_t total = (int64_t)a->past_len + a->kv_len;
  if (total < 1 || total > INT32_MAX) return QE_ERR_ARGUMENT;
  const int64_t bq = (int64_t)a->batch * a->q_heads * a->q_len, bk = (int64_t)a->batch * a->kv_heads * total;
  if (!qe_sizes_ok(bq * a->head_size, 4) || !qe_sizes_ok(bq * a->v_head_size, 4) ||
      !qe_sizes_ok(bk * a->head_size, 4) || !qe_sizes_ok(bk * a->v_head_size, 4))
    return QE_ERR_ARGUMENT;
  if (a->qk_out && (!qe_sizes_ok(bq * total, 4) || a->qk_mode < 0 || a->qk_mode > 3)) return QE_ERR_ARGUMENT;
  const int has_past = a->past_key || a->past_value || a->past_len > 0;
  if (has_past && (!a->past_key || !a->past_value || a->past_len < 1)) return QE_ERR_ARGUMENT;
  if ((a->present_key == NULL) != (a->present_value == NULL)) return QE_ERR_ARGUMENT;
  if (has_past && !a->present_key) return QE_ERR_ARGUMENT;
  if (a->kv_seqlen && has_past) return QE_ERR_ARGUMENT;
  if (a->kv_len < 1 && !has_past) return QE_ERR_ARGUMENT;
  if (!isfinite(a->scale) || !(a->scale != 0.0f) || !isfinite(a->softcap) || a->softcap < 0.0f) return QE_ERR_ARGUMENT;
  if (a->window_left < -1 || a->window_right < -1 || a->block_q < 0 || a->block_k < 0) return QE_ERR_ARGUMENT;
  if (a->kv_seqlen)
    for (int32_t b = 0; b < a->batch; b++)
      if (a->kv_seqlen[b] < 0) return QE_ERR_ARGUMENT;
  if (a->mask_kind < 0 || a->mask_kind > 2 || (a->mask_kind != 0) != (a->mask != NULL)) return QE_ERR_ARGUMENT;
  if (a->mask_kind) {
    const int32_t *md = a->mask_dims;
    if ((md[0] != 1 && md[0] != a->batch) || (md[1] != 1 && md[1] != a->q_heads) ||
        (md[2] != 1 && md[2] != a->q_len) || md[3] < 1 || md[3] > total)
      return QE_ERR_ARGUMENT;
  }

  const size_t batch = (size_t)a->batch, hq = (size_t)a->q_heads, hkv = (size_t)a->kv_heads;
  const size_t nq = (size_t)a->q_len, nkv = (size_t)a->kv_len, np = (size_t)a->past_len;
  const size_t dk = (size_t)a->head_size, dv = (size_t)a->v_head_size;
  qe_attention_problem p = {
      .batch = batch, .q_heads = hq, .kv_heads = hkv, .nq = nq, .nk = (size_t)total,
      .head_dim = dk, .v_head_dim = dv, .scale = a->scale, .softcap = a->softcap,
      .causal = a->causal != 0, .offset = (int64_t)np,
      .window_left = a->window_left, .window_right = a->window_right,
      .valid_k = (size_t)total, .kv_len = a->kv_seqlen, .zero_empty_rows = 1,
  };
  p.q = a->q;
  view_strides(a->layout, hq, nq, dk, &p.q_sb, &p.q_sh, &p.q_sr);
  p.o = a->y;
  view_strides(a->layout, hq, nq, dv, &p.o_sb, &p.o_sh, &p.o_sr);
  size_t ksb, ksh, ksr, vsb, vsh, vsr;
  view_strides(a->layout, hkv, nkv, dk, &ksb, &ksh, &ksr);
  view_strides(a->layout, hkv, nkv, dv, &vsb, &vsh, &vsr);
  if (a->present_key) {
    /* The cache and the new rows go straight into present_*, and attention reads them there. */
    write_cache(a->present_key, a->past_key, a->k, batch, hkv, np, nkv, dk, ksb, ksh, ksr);
    write_cache(a->present_value, a->past_value, a->v, batch, hkv, np, nkv, dv, vsb, vsh, vsr);
    p.k = a->present_key, p.v = a->present_value;
    view_strides(4, hkv, (size_t)total, dk, &p.k_sb, &p.k_sh, &p.k_sr);
    view_strides(4, hkv, (size_t)total, dv, &p.v_sb, &p.v_sh, &p.v_sr);
  } else {
    p.k = a->k, p.v = a->v;
    p.k_sb = ksb, p.k_sh = ksh, p.k_sr = ksr, p.v_sb = vsb, p.v_sh = vsh, p.v_sr = vsr;
  }
  if (a->mask_kind) {
    const size_t mb = (size_t)a->mask_dims[0], mh = (size_t)a->mask_dims[1], mq = (size_t)a->mask_dims[2];
    const size_t ml = (size_t)a->mask_dims[3];
    p.mask_kind = a->mask_kind == 1 ? QE_MASK_BOOL : QE_MASK_ADDITIVE;
    p.mask = a->mask;
    p.mask_len = ml;
    p.mask_sq = mq > 1 ? ml : 0;
    p.mask_sh = mh > 1 ? mq * ml : 0;
    p.mask_sb = mb > 1 ? mh * mq * ml : 0;
  }
  qe_attention_choose_tiles(&p, (size_t)a->block_q, (size_t)a->block_k);
  const size_t ws = qe_attention_workspace_bytes(&p);
  if (ws == SIZE_MAX) return QE_ERR_ARGUMENT;
  void *workspace = qe_arena_acquire(ws);
  if (!workspace) return QE_ERR_NO_MEMORY;
  qe_flash_attention_forward(&p, 0, qe_attention_task_count(&p), workspace);
  if (a->qk_out) qe_attention_scores(&p, a->qk_mode, a->qk_out);
  return QE_OK;
}
