/* Corpus-aware weighting (csrc/embed/text_weight.c): BM25 idf against libm's
 * log, document-frequency counts, and the hashed tf-idf vectors against a
 * double reference, through the exported entries. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "embed/text_weight.h"
#include "qe_api.h"
#include "qe_test.h"

static double idf_ref(double df, double docs) {
  if (df > docs) df = docs;
  return log(1.0 + (docs - df + 0.5) / (df + 0.5));
}

QE_TEST(bm25_idf_matches_libm) {
  const float docs[] = {0, 1, 7, 1000, 123456};
  for (size_t d = 0; d < sizeof docs / sizeof docs[0]; d++)
    for (float df = 0; df <= docs[d] + 2; df += docs[d] > 100 ? docs[d] / 37 : 1) {
      const double want = idf_ref(df, docs[d]);
      QE_CHECK(fabs(qe_bm25_idf(df, docs[d]) - want) <= 1e-6 * (1 + want), "idf(%g, %g)", df, docs[d]);
    }
}

QE_TEST(tfidf_embed_matches_reference) {
  enum { DOCS = 5, BUCKETS = 16 };
  const int32_t dims[] = {1, 3, 4, 17};
  uint32_t df[BUCKETS];
  for (int b = 0; b < BUCKETS; b++) df[b] = (uint32_t)(b * 3 % 11);
  int32_t offsets[DOCS + 1] = {0, 0, 1, 4, 9, 20};
  uint32_t features[20];
  float tf[20], weight[20];
  for (int f = 0; f < 20; f++) {
    features[f] = (uint32_t)(f * 2654435761u);
    tf[f] = (float)(1 + f % 4);
    weight[f] = qe_rng_uniform(0.1f, 2.0f);
  }
  for (size_t di = 0; di < sizeof dims / sizeof dims[0]; di++) {
    const int32_t dim = dims[di];
    float *out = malloc(sizeof(float) * DOCS * (size_t)dim);
    double *want = malloc(sizeof(double) * (size_t)dim);
    QE_CHECK(qe_text_tfidf_embed(offsets, features, tf, weight, DOCS, 20, df, BUCKETS, 12, 1.5f, dim, out) == QE_OK, "status");
    for (int d = 0; d < DOCS; d++) {
      memset(want, 0, sizeof(double) * (size_t)dim);
      for (int f = offsets[d]; f < offsets[d + 1]; f++) {
        float sign;
        const uint32_t c = qe_feature_column(features[f], (size_t)dim, &sign);
        want[c] += sign * weight[f] * (2.5 * tf[f]) / (1.5 + tf[f]) * idf_ref(df[features[f] & (BUCKETS - 1)], 12);
      }
      double n = 0;
      for (int c = 0; c < dim; c++) n += want[c] * want[c];
      for (int c = 0; c < dim; c++) want[c] = n > 0 ? want[c] / sqrt(n) : 0;
      QE_CHECK_CLOSE("tf-idf row", out + (size_t)d * dim, want, (size_t)dim, 1e-5);
    }
    free(out), free(want);
  }
}

QE_TEST(text_entries_reject_bad_arguments) {
  uint32_t df[8] = {0}, features[2] = {1, 9};
  float tf[2] = {1, 1}, weight[2] = {1, 1}, out[8], idf[2];
  int32_t offsets[2] = {0, 2};
  QE_CHECK(qe_text_df_add(df, 8, features, 2) == QE_OK && df[1] == 2, "two features in bucket 1 count twice");
  QE_CHECK(qe_text_df_add(df, 6, features, 2) == QE_ERR_ARGUMENT, "buckets not a power of two");
  QE_CHECK(qe_text_df_add(NULL, 8, features, 2) == QE_ERR_NULL, "null table");
  QE_CHECK(qe_text_idf(features, 2, df, 8, -1, idf) == QE_ERR_ARGUMENT, "negative docs");
  QE_CHECK(qe_text_tfidf_embed(offsets, features, tf, weight, 1, 2, df, 8, 2, 0.0f, 8, out) == QE_ERR_ARGUMENT, "k1 0");
  QE_CHECK(qe_text_tfidf_embed(offsets, features, tf, weight, 1, 3, df, 8, 2, 1.2f, 8, out) == QE_ERR_ARGUMENT, "offsets end");
  tf[1] = NAN;
  QE_CHECK(qe_text_tfidf_embed(offsets, features, tf, weight, 1, 2, df, 8, 2, 1.2f, 8, out) == QE_ERR_ARGUMENT, "NaN tf");
  tf[1] = 1;
  QE_CHECK(qe_text_tfidf_embed(offsets, features, tf, weight, 1, 2, df, 8, 2, 1.2f, 8, out) == QE_OK, "good call");
}

QE_SUITE(qe_suite_text, "text", QE_CASE(bm25_idf_matches_libm), QE_CASE(tfidf_embed_matches_reference),
         QE_CASE(text_entries_reject_bad_arguments));
