/*
 * libFuzzer target: signed feature hashing. Offsets, rows and weights come
 * from the fuzzer, valid or not; a rejected call is fine, an accepted one
 * must equal the sums recomputed here in double within 1e-4 relative.
 */
#include <stdlib.h>

#include "fuzz_input.h"
#include "qe_api.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_input in = {data, size, 0};
  int32_t tokens = (int32_t)fuzz_u32(&in, 40) - 1;
  int32_t features = (int32_t)fuzz_u32(&in, 120) - 1;
  int32_t table_rows = (int32_t)fuzz_u32(&in, 64) - 1;
  int32_t dim = (int32_t)fuzz_u32(&in, 48) - 1;
  uint32_t seed = fuzz_u32(&in, 0);
  size_t t_n = tokens > 0 ? (size_t)tokens : 1, f_n = features > 0 ? (size_t)features : 1;
  size_t r_n = table_rows > 0 ? (size_t)table_rows : 1, d_n = dim > 0 ? (size_t)dim : 1;

  int32_t *offsets = malloc((t_n + 1) * sizeof *offsets), *rows = malloc(f_n * sizeof *rows);
  float *weights = malloc(f_n * sizeof *weights), *table = malloc(r_n * d_n * sizeof *table);
  float *out = malloc(t_n * d_n * sizeof *out);
  if (!offsets || !rows || !weights || !table || !out) FUZZ_ABORT();
  /* Mostly ascending offsets ending at `features`; the fuzzer may break them. */
  offsets[0] = fuzz_u8(&in) == 9 ? 1 : 0;
  for (size_t t = 1; t <= t_n; t++) offsets[t] = offsets[t - 1] + (int32_t)fuzz_u32(&in, 5) - (fuzz_u8(&in) == 11);
  if (fuzz_u8(&in) < 250) offsets[t_n] = features;
  for (size_t f = 0; f < f_n; f++) rows[f] = (int32_t)fuzz_u32(&in, (uint32_t)r_n + 2) - (fuzz_u8(&in) == 13);
  fuzz_floats(&in, weights, f_n);
  if (qe_feature_table_fill(table, table_rows, dim, seed, 1.0f) != QE_OK) goto done;

  if (qe_feature_hash_embed(offsets, rows, weights, tokens, features, table, table_rows, dim, out) == QE_OK) {
    for (int32_t t = 0; t < tokens; t++) {
      for (int32_t d = 0; d < dim; d++) {
        double want = 0, mag = 0;
        for (int32_t f = offsets[t]; f < offsets[t + 1]; f++) {
          double term = (double)weights[f] * table[(size_t)rows[f] * dim + d];
          want += term, mag += fabs(term);
        }
        if (fabs(want - out[(size_t)t * dim + d]) > 1e-4 * mag + 1e-30) FUZZ_ABORT();
      }
    }
  }
done:
  free(offsets), free(rows), free(weights), free(table), free(out);
  return 0;
}
