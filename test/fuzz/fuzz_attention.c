/*
 * libFuzzer target: qe_attention with shapes, masks, tiles and inputs from
 * the fuzzer. A call either returns a status (and then must not have
 * crashed or touched memory outside its buffers: ASan and UBSan watch), or
 * succeeds, and then (for inputs whose scores cannot overflow) every
 * output must be finite and, being a convex
 * combination of V's rows that the mask lets through, lie within their
 * column's range. The job form with sequential participants must give the
 * same bits.
 */
#include <stdlib.h>

#include "fuzz_input.h"
#include "qe_api.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_input in = {data, size, 0};
  int32_t nq = (int32_t)fuzz_u32(&in, 70) - 2;
  int32_t nk = (int32_t)fuzz_u32(&in, 70) - 2;
  int32_t heads = (int32_t)fuzz_u32(&in, 14) - 1;
  int32_t head_dim = (int32_t)fuzz_u32(&in, 40);
  int32_t dim = heads > 0 ? heads * head_dim : (int32_t)fuzz_u32(&in, 64);
  if (fuzz_u8(&in) == 255) dim += 1; /* heads that do not divide dim */
  int32_t causal = (int32_t)fuzz_u32(&in, 3) - (fuzz_u8(&in) == 7);
  int32_t valid_k = (int32_t)fuzz_u32(&in, 72) - 1;
  int32_t block_q = (int32_t)fuzz_u32(&in, 300) - 1;
  int32_t block_k = (int32_t)fuzz_u32(&in, 300) - 1;
  float scale = fuzz_u8(&in) < 200 ? 0.25f : fuzz_float(&in);
  int32_t workers = (int32_t)fuzz_u32(&in, 5);

  size_t qn = nq > 0 && dim > 0 ? (size_t)nq * (size_t)dim : 1;
  size_t kn = nk > 0 && dim > 0 ? (size_t)nk * (size_t)dim : 1;
  float *q = malloc(qn * sizeof *q), *k = malloc(kn * sizeof *k), *v = malloc(kn * sizeof *v);
  float *o = malloc(qn * sizeof *o), *o2 = malloc(qn * sizeof *o2);
  if (!q || !k || !v || !o || !o2) FUZZ_ABORT();
  fuzz_floats(&in, q, qn);
  fuzz_floats(&in, k, kn);
  fuzz_floats(&in, v, kn);

  int status = qe_attention(q, k, v, o, nq, nk, dim, heads, scale, causal, valid_k, block_q, block_k);
  /* qe_attention leaves finiteness to its caller (the JS layer checks the
   * inputs before and the outputs after, for scores past float32's range),
   * so the output is judged only where no score can overflow. */
  if (status == QE_OK && fuzz_all_bounded(q, qn, 1e4f) && fuzz_all_bounded(k, kn, 1e4f) &&
      fuzz_all_bounded(v, kn, 1e4f) && fuzz_all_bounded(&scale, 1, 1e4f)) {
    if (!fuzz_all_finite(o, qn)) FUZZ_ABORT();
    for (int32_t i = 0; i < nq; i++) {
      int32_t last = nk;
      if (valid_k < last) last = valid_k;
      if (causal && i + 1 < last) last = i + 1;
      for (int32_t d = 0; d < dim; d++) {
        float lo = INFINITY, hi = -INFINITY;
        for (int32_t j = 0; j < last; j++) {
          float x = v[(size_t)j * dim + d];
          lo = x < lo ? x : lo;
          hi = x > hi ? x : hi;
        }
        float got = o[(size_t)i * dim + d];
        float slack = 1e-5f * (fabsf(lo) + fabsf(hi)) + 1e-6f;
        if (last > 0 && (got < lo - slack || got > hi + slack)) FUZZ_ABORT();
      }
    }
  }
  if (workers > 0) {
    qe_job *job = qe_attention_job_create(q, k, v, o2, nq, nk, dim, heads, scale, causal, valid_k, block_q, block_k, workers);
    if ((job != NULL) != (status == QE_OK) && status != QE_ERR_NO_MEMORY) FUZZ_ABORT();
    if (job) {
      for (int32_t w = 0; w < workers; w++)
        if (qe_job_work(job, w) < 0) FUZZ_ABORT();
      if (qe_job_finished(job) != workers) FUZZ_ABORT();
      if (qe_job_destroy(job) != QE_OK) FUZZ_ABORT();
      if (memcmp(o, o2, qn * sizeof *o) != 0) FUZZ_ABORT();
    }
  }
  qe_workspace_release();
  free(q), free(k), free(v), free(o), free(o2);
  return 0;
}
