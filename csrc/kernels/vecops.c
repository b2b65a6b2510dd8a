/* Elementwise kernels: vector addition and embedding-table lookup. */
#include <string.h>

#include "kernels/kernels.h"
#include "simd.h"

void qe_f32_vadd(size_t n, const float *a, const float *b, float *out) {
  size_t i = 0;
  /* Each element is read before it is written, so out may alias a or b. */
  for (; i + 4 <= n; i += 4)
    wasm_v128_store(out + i, wasm_f32x4_add(wasm_v128_load(a + i), wasm_v128_load(b + i)));
  for (; i < n; i++) out[i] = a[i] + b[i];
}

void qe_f32_embedding_lookup(size_t count, const int32_t *ids, const float *table, size_t dim,
                             float *out) {
  for (size_t i = 0; i < count; i++)
    memcpy(out + i * dim, table + (size_t)ids[i] * dim, dim * sizeof(float));
}
