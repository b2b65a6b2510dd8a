/*
 * libFuzzer target: qe_attention_onnx (the ONNX Attention operator's entry)
 * with layouts, head counts (GQA, some that do not divide), a cache, masks
 * of any kind and broadcast shape (some that cannot broadcast), per-batch
 * key lengths (some negative), causal, windows, softcap, qk_matmul_output
 * modes and tiles from the fuzzer. A call either returns a status, having
 * touched nothing outside its buffers (ASan and UBSan watch), or succeeds;
 * then, for inputs whose scores cannot overflow, Y is finite and each
 * element lies within its V column's range over all keys (a convex
 * combination, or 0 for a row that sees no key), and present_* holds the
 * cache then the new rows.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz_input.h"
#include "qe_api.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_input in = {data, size, 0};
  qe_attention_args a;
  memset(&a, 0, sizeof a);
  a.layout = fuzz_u8(&in) == 9 ? 5 : 3 + (int32_t)fuzz_u32(&in, 2);
  a.batch = (int32_t)fuzz_u32(&in, 4);
  a.kv_heads = (int32_t)fuzz_u32(&in, 4);
  a.q_heads = a.kv_heads * (int32_t)fuzz_u32(&in, 4) + (fuzz_u8(&in) == 3); /* some that do not divide */
  a.q_len = (int32_t)fuzz_u32(&in, 40) - (fuzz_u8(&in) == 1);
  a.kv_len = (int32_t)fuzz_u32(&in, 45) - 1;
  a.past_len = fuzz_u8(&in) < 100 ? (int32_t)fuzz_u32(&in, 40) : 0;
  a.head_size = (int32_t)fuzz_u32(&in, 20);
  a.v_head_size = (int32_t)fuzz_u32(&in, 20);
  a.causal = fuzz_u8(&in) & 1;
  a.window_left = (int32_t)fuzz_u32(&in, 30) - 2;
  a.window_right = (int32_t)fuzz_u32(&in, 30) - 2;
  a.softcap = fuzz_u8(&in) < 80 ? (float)fuzz_u32(&in, 20) / 2.0f : 0.0f;
  a.scale = fuzz_u8(&in) < 200 ? 0.25f : fuzz_float(&in);
  a.qk_mode = (int32_t)fuzz_u32(&in, 5) - 1;
  a.block_q = (int32_t)fuzz_u32(&in, 200) - 1;
  a.block_k = (int32_t)fuzz_u32(&in, 200) - 1;
  a.mask_kind = (int32_t)fuzz_u32(&in, 3);
  for (int i = 0; i < 4; i++) a.mask_dims[i] = (int32_t)fuzz_u32(&in, 50);
  const int want_seqlen = a.past_len == 0 && fuzz_u8(&in) < 60;
  const int want_qk = fuzz_u8(&in) < 60;

  /* Buffers sized from the shape as asked (every count clamped at >= 1), so
   * a call the entry accepts finds them large enough. */
  const int64_t B = a.batch > 0 ? a.batch : 1, HQ = a.q_heads > 0 ? a.q_heads : 1, HK = a.kv_heads > 0 ? a.kv_heads : 1;
  const int64_t SQ = a.q_len > 0 ? a.q_len : 1, SK = a.kv_len > 0 ? a.kv_len : 1, P = a.past_len > 0 ? a.past_len : 1;
  const int64_t D = a.head_size > 0 ? a.head_size : 1, DV = a.v_head_size > 0 ? a.v_head_size : 1, T = P + SK;
  const size_t nq = (size_t)(B * HQ * SQ * D), nk = (size_t)(B * HK * SK * D), nv = (size_t)(B * HK * SK * DV);
  const size_t npk = (size_t)(B * HK * P * D), npv = (size_t)(B * HK * P * DV), ny = (size_t)(B * HQ * SQ * DV);
  const size_t nm = (size_t)(a.mask_dims[0] + 1) * (size_t)(a.mask_dims[1] + 1) * (size_t)(a.mask_dims[2] + 1) *
                    (size_t)(a.mask_dims[3] + 1);
  float *q = malloc(nq * 4), *k = malloc(nk * 4), *v = malloc(nv * 4), *pk = malloc(npk * 4), *pv = malloc(npv * 4);
  float *y = malloc(ny * 4), *prk = malloc((size_t)(B * HK * T * D) * 4), *prv = malloc((size_t)(B * HK * T * DV) * 4);
  float *qk = malloc((size_t)(B * HQ * SQ * T) * 4), *maskf = malloc(nm * 4);
  uint8_t *maskb = malloc(nm);
  int32_t *seqlen = malloc((size_t)B * 4);
  if (!q || !k || !v || !pk || !pv || !y || !prk || !prv || !qk || !maskf || !maskb || !seqlen) FUZZ_ABORT();
  fuzz_floats(&in, q, nq);
  fuzz_floats(&in, k, nk);
  fuzz_floats(&in, v, nv);
  fuzz_floats(&in, pk, npk);
  fuzz_floats(&in, pv, npv);
  for (size_t i = 0; i < nm; i++) {
    maskb[i] = fuzz_u8(&in) & 1;
    maskf[i] = (i & 3) == 3 ? -INFINITY : (float)fuzz_u32(&in, 9) - 4.0f;
  }
  for (int64_t b = 0; b < B; b++) seqlen[b] = (int32_t)fuzz_u32(&in, (uint32_t)T + 4) - (fuzz_u8(&in) == 5);

  a.q = q, a.k = k, a.v = v, a.y = y;
  if (a.past_len > 0) a.past_key = pk, a.past_value = pv;
  if (a.past_len > 0 || fuzz_u8(&in) < 50) a.present_key = prk, a.present_value = prv;
  if (a.mask_kind == 1) a.mask = maskb;
  if (a.mask_kind == 2) a.mask = maskf;
  if (want_seqlen) a.kv_seqlen = seqlen;
  if (want_qk) a.qk_out = qk;

  const int status = qe_attention_onnx(&a);
  const int bounded = fuzz_all_bounded(q, nq, 1e3f) && fuzz_all_bounded(k, nk, 1e3f) && fuzz_all_bounded(v, nv, 1e3f) &&
                      fuzz_all_bounded(pk, npk, 1e3f) && fuzz_all_bounded(pv, npv, 1e3f) &&
                      fuzz_all_bounded(&a.scale, 1, 1e3f);
  if (status == QE_OK && bounded) {
    if (!fuzz_all_finite(y, ny)) FUZZ_ABORT();
    /* Y within [min, max] of V's column over every key of its kv head (or 0). */
    const float *vv = a.present_value ? a.present_value : v;
    const int64_t keys = a.present_value ? (int64_t)a.past_len + a.kv_len : a.kv_len;
    for (int64_t b = 0; b < a.batch; b++)
      for (int64_t h = 0; h < a.q_heads; h++) {
        const int64_t kh = h / (a.q_heads / a.kv_heads);
        for (int64_t c = 0; c < a.v_head_size; c++) {
          float lo = 0.0f, hi = 0.0f; /* 0: a row with no visible key */
          for (int64_t j = 0; j < keys; j++) {
            float x = a.present_value || a.layout == 4 ? vv[((b * a.kv_heads + kh) * keys + j) * a.v_head_size + c]
                                                       : vv[(b * keys + j) * a.kv_heads * a.v_head_size + kh * a.v_head_size + c];
            lo = x < lo ? x : lo;
            hi = x > hi ? x : hi;
          }
          const float slack = 1e-5f * (fabsf(lo) + fabsf(hi)) + 1e-6f;
          for (int64_t i = 0; i < a.q_len; i++) {
            float got = a.layout == 4 ? y[((b * a.q_heads + h) * a.q_len + i) * a.v_head_size + c]
                                      : y[(b * a.q_len + i) * a.q_heads * a.v_head_size + h * a.v_head_size + c];
            if (got < lo - slack || got > hi + slack) FUZZ_ABORT();
          }
        }
      }
    if (a.present_key && a.kv_len > 0 && a.layout == 4) {
      /* The last new key of the last kv head sits at the end of present_key. */
      const size_t last = (size_t)(a.batch * a.kv_heads) * (size_t)keys * (size_t)a.head_size - 1;
      if (prk[last] != k[(size_t)(a.batch * a.kv_heads * a.kv_len * a.head_size) - 1]) FUZZ_ABORT();
    }
  }
  qe_workspace_release();
  free(q), free(k), free(v), free(pk), free(pv), free(y), free(prk), free(prv), free(qk), free(maskf), free(maskb), free(seqlen);
  return 0;
}
