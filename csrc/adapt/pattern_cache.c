/*
 * The pattern cache (see pattern_cache.h). Search is the exact cosine top-K
 * of csrc/search/similarity.c on the cache's corpus: no score matrix, and
 * working memory that does not grow with the cache.
 *
 * Byte format, version 1, little-endian:
 *   0  u32 magic "QEPC"   4  u32 version   8  u64 total bytes
 *   16 u32 dim            20 u32 count     24 u32 max_patterns   28 u32 zero
 *   32 u64 clock
 *   40 per pattern, in row order: f32 quality, u32 hits, u64 last use,
 *      u32 label length, the label, zero bytes to a multiple of 4,
 *      dim f32 embedding
 *   end-4 u32 CRC32C of every byte before it
 */
#include "adapt/pattern_cache.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "adapt/bytes.h"
#include "adapt/crc32c.h"
#include "arena.h"
#include "qe_api.h"
#include "search/similarity.h"

#define CACHE_MAGIC 0x43504551u /* "QEPC" */
#define CACHE_VERSION 1u
#define CACHE_HEADER 40u

qe_pattern_cache *qe_pattern_cache_create(size_t dim, size_t max_patterns) {
  qe_pattern_cache *c = aligned_alloc(16, (sizeof *c + 15) / 16 * 16);
  if (!c) return NULL;
  memset(c, 0, sizeof *c);
  c->dim = dim;
  c->max_patterns = max_patterns;
  return c;
}

static void free_labels(qe_pattern_cache *c) {
  for (size_t i = 0; i < c->count; i++) {
    free(c->label[i]);
    c->label[i] = NULL;
    c->label_len[i] = 0;
  }
}

void qe_pattern_cache_clear(qe_pattern_cache *c) {
  free_labels(c);
  c->count = 0;
  c->clock = 0;
}

void qe_pattern_cache_destroy(qe_pattern_cache *c) {
  if (!c) return;
  free_labels(c);
  free(c->corpus);
  free(c->inv_norms);
  free(c->quality);
  free(c->hits);
  free(c->last_use);
  free(c->label);
  free(c->label_len);
  free(c);
}

/* A larger copy of a block; the old one is freed only once the copy exists. */
static void *grow_block(void *old, size_t old_bytes, size_t new_bytes) {
  void *p = malloc(new_bytes);
  if (!p) return NULL;
  if (old) memcpy(p, old, old_bytes);
  free(old);
  return p;
}

/* Room for at least `need` rows. Returns 0, or -1 when out of memory (the
 * cache is unchanged then: each array is grown into a fresh block). */
static int reserve(qe_pattern_cache *c, size_t need) {
  if (need <= c->capacity) return 0;
  const size_t limit = (c->max_patterns + QE_CORPUS_PANEL - 1) / QE_CORPUS_PANEL * QE_CORPUS_PANEL;
  size_t cap = c->capacity ? c->capacity * 2 : 4 * QE_CORPUS_PANEL;
  while (cap < need) cap *= 2;
  if (cap > limit) cap = limit;
  float *corpus = grow_block(c->corpus, c->capacity * c->dim * sizeof(float), cap * c->dim * sizeof(float));
  if (!corpus) return -1;
  c->corpus = corpus;
#define GROW(field, type)                                   \
  do {                                                      \
    type *p = grow_block(c->field, c->capacity * sizeof(type), cap * sizeof(type)); \
    if (!p) return -1;                                      \
    c->field = p;                                           \
  } while (0)
  GROW(inv_norms, float);
  GROW(quality, float);
  GROW(hits, uint32_t);
  GROW(last_use, uint64_t);
  GROW(label, unsigned char *);
  GROW(label_len, uint32_t);
#undef GROW
  for (size_t i = c->capacity; i < cap; i++) {
    c->label[i] = NULL;
    c->label_len[i] = 0;
  }
  /* The last panel's rows past count are read by the kernel (and ignored). */
  memset(c->corpus + c->capacity * c->dim, 0, (cap - c->capacity) * c->dim * sizeof(float));
  c->capacity = cap;
  return 0;
}

size_t qe_pattern_cache_victim(const qe_pattern_cache *c) {
  size_t v = 0;
  for (size_t i = 1; i < c->count; i++) {
    if (c->quality[i] < c->quality[v] ||
        (c->quality[i] == c->quality[v] && c->last_use[i] < c->last_use[v]))
      v = i;
  }
  return v;
}

static int set_label(qe_pattern_cache *c, size_t row, const unsigned char *label, size_t len) {
  unsigned char *copy = NULL;
  if (len > 0) {
    copy = malloc(len);
    if (!copy) return -1;
    memcpy(copy, label, len);
  }
  free(c->label[row]);
  c->label[row] = copy;
  c->label_len[row] = (uint32_t)len;
  return 0;
}

int qe_pattern_cache_store(qe_pattern_cache *c, int64_t row, const float *embedding,
                           float quality, const unsigned char *label, size_t label_len,
                           int32_t *out) {
  if (!isfinite(quality)) return QE_ERR_ARGUMENT;
  if (label_len != SIZE_MAX && label_len > QE_CACHE_MAX_LABEL) return QE_ERR_ARGUMENT;
  if (row >= (int64_t)c->count) return QE_ERR_INDEX;
  float inv_norm = 0.0f;
  if (embedding && qe_f32_row_inv_norms(1, c->dim, embedding, c->dim, &inv_norm) != 0)
    return QE_ERR_ARGUMENT;
  int evicted = 0;
  size_t r;
  if (row >= 0) {
    r = (size_t)row;
  } else if (c->count < c->max_patterns) {
    if (!embedding) return QE_ERR_NULL;
    if (reserve(c, c->count + 1) != 0) return QE_ERR_NO_MEMORY;
    r = c->count;
    c->label[r] = NULL;
    c->label_len[r] = 0;
  } else {
    if (!embedding) return QE_ERR_NULL;
    r = qe_pattern_cache_victim(c);
    evicted = 1;
  }
  /* The label first: the only step that can fail, so a failed store changes nothing. */
  if (label_len != SIZE_MAX && set_label(c, r, label, label_len) != 0) return QE_ERR_NO_MEMORY;
  if (row < 0 && !evicted) c->count++;
  if (embedding) {
    qe_f32_corpus_store_rows(c->dim, c->corpus, r, 1, embedding, c->dim);
    c->inv_norms[r] = inv_norm;
  }
  c->quality[r] = quality;
  if (row < 0) c->hits[r] = 0;
  c->last_use[r] = ++c->clock;
  out[0] = (int32_t)r;
  out[1] = evicted;
  return QE_OK;
}

void qe_pattern_cache_remove(qe_pattern_cache *c, size_t row, int32_t *moved_from) {
  const size_t last = c->count - 1;
  free(c->label[row]);
  if (row != last) {
    qe_f32_corpus_move_row(c->dim, c->corpus, last, row);
    c->inv_norms[row] = c->inv_norms[last];
    c->quality[row] = c->quality[last];
    c->hits[row] = c->hits[last];
    c->last_use[row] = c->last_use[last];
    c->label[row] = c->label[last];
    c->label_len[row] = c->label_len[last];
    *moved_from = (int32_t)last;
  } else {
    *moved_from = -1;
  }
  c->label[last] = NULL;
  c->label_len[last] = 0;
  c->count = last;
}

void qe_pattern_cache_row(const qe_pattern_cache *c, size_t row, float *out) {
  const float *src = c->corpus + (row / QE_CORPUS_PANEL) * c->dim * QE_CORPUS_PANEL + row % QE_CORPUS_PANEL;
  for (size_t d = 0; d < c->dim; d++) out[d] = src[d * QE_CORPUS_PANEL];
}

size_t qe_pattern_cache_search_workspace_bytes(size_t dim, size_t k) {
  (void)k;
  return qe_arena_round(dim * sizeof(float)) + qe_f32_cosine_topk_workspace_bytes(1, dim);
}

int qe_pattern_cache_search(qe_pattern_cache *c, const qe_micro_lora *lora, const float *x,
                            size_t k, int touch, int32_t *out_idx, float *out_score,
                            void *workspace) {
  qe_arena_cursor cur = {workspace, 0, qe_pattern_cache_search_workspace_bytes(c->dim, k)};
  float *q = qe_arena_take(&cur, c->dim * sizeof(float));
  void *topk_ws = qe_arena_take(&cur, qe_f32_cosine_topk_workspace_bytes(1, c->dim));
  if (lora) {
    if (qe_micro_lora_forward(lora, x, q) != 0) return QE_ERR_ARGUMENT;
  } else {
    memcpy(q, x, c->dim * sizeof(float));
  }
  float q_inv;
  if (qe_f32_row_inv_norms(1, c->dim, q, c->dim, &q_inv) != 0) return QE_ERR_ARGUMENT;
  if (c->count == 0) {
    for (size_t j = 0; j < k; j++) {
      out_idx[j] = -1;
      out_score[j] = 0.0f;
    }
    return QE_OK;
  }
  qe_f32_cosine_topk(1, c->count, c->dim, k, q, c->dim, &q_inv, c->corpus, c->inv_norms, out_idx,
                     out_score, k, topk_ws);
  if (touch) {
    const uint64_t now = ++c->clock;
    for (size_t j = 0; j < k && out_idx[j] >= 0; j++) {
      c->hits[out_idx[j]]++;
      c->last_use[out_idx[j]] = now;
    }
  }
  return QE_OK;
}

/* --------------------------------------------------------- byte format */

static size_t pad4(size_t n) { return (n + 3) & ~(size_t)3; }

size_t qe_pattern_cache_export_bytes(const qe_pattern_cache *c) {
  size_t total = CACHE_HEADER + 4;
  for (size_t i = 0; i < c->count; i++) total += 20 + pad4(c->label_len[i]) + c->dim * sizeof(float);
  return total;
}

void qe_pattern_cache_export(const qe_pattern_cache *c, unsigned char *out) {
  const size_t total = qe_pattern_cache_export_bytes(c);
  qe_byte_writer w = {out, total};
  qe_put_u32(&w, CACHE_MAGIC);
  qe_put_u32(&w, CACHE_VERSION);
  qe_put_u64(&w, total);
  qe_put_u32(&w, (uint32_t)c->dim);
  qe_put_u32(&w, (uint32_t)c->count);
  qe_put_u32(&w, (uint32_t)c->max_patterns);
  qe_put_u32(&w, 0);
  qe_put_u64(&w, c->clock);
  const unsigned char zeros[4] = {0, 0, 0, 0};
  for (size_t i = 0; i < c->count; i++) {
    qe_put_f32(&w, c->quality[i]);
    qe_put_u32(&w, c->hits[i]);
    qe_put_u64(&w, c->last_use[i]);
    qe_put_u32(&w, c->label_len[i]);
    if (c->label_len[i]) qe_put(&w, c->label[i], c->label_len[i]);
    qe_put(&w, zeros, pad4(c->label_len[i]) - c->label_len[i]);
    const float *src = c->corpus + (i / QE_CORPUS_PANEL) * c->dim * QE_CORPUS_PANEL + i % QE_CORPUS_PANEL;
    for (size_t d = 0; d < c->dim; d++) qe_put_f32(&w, src[d * QE_CORPUS_PANEL]);
  }
  qe_put_u32(&w, qe_crc32c_update(0, out, total - 4));
}

int qe_pattern_cache_import(const unsigned char *bytes, size_t n, qe_pattern_cache **out) {
  *out = NULL;
  const int env = qe_adapt_check_envelope(bytes, n, CACHE_MAGIC, CACHE_VERSION, CACHE_HEADER + 4);
  if (env != QE_OK) return env;
  qe_byte_reader r = {bytes + 16, n - 20, 0}; /* the header's rest and the patterns, not the CRC */
  const uint32_t dim = qe_get_u32(&r), count = qe_get_u32(&r), max_patterns = qe_get_u32(&r);
  qe_get_u32(&r);
  const uint64_t clock = qe_get_u64(&r);
  if (dim < 1 || dim > QE_LORA_MAX_DIM || max_patterns < 1 || max_patterns > QE_CACHE_MAX_PATTERNS ||
      count > max_patterns || (uint64_t)count * (20 + dim * sizeof(float)) > n)
    return QE_ERR_FORMAT;
  qe_pattern_cache *c = qe_pattern_cache_create(dim, max_patterns);
  if (!c) return QE_ERR_NO_MEMORY;
  float *row = malloc(dim * sizeof(float));
  int status = row && reserve(c, count > 0 ? count : 1) == 0 ? QE_OK : QE_ERR_NO_MEMORY;
  for (uint32_t i = 0; i < count && status == QE_OK; i++) {
    const float quality = qe_get_f32(&r);
    const uint32_t hits = qe_get_u32(&r);
    const uint64_t last_use = qe_get_u64(&r);
    const uint32_t len = qe_get_u32(&r);
    if (r.short_read || len > QE_CACHE_MAX_LABEL || pad4(len) > r.left || !isfinite(quality) ||
        last_use > clock) {
      status = QE_ERR_FORMAT;
      break;
    }
    if (set_label(c, i, r.at, len) != 0) {
      status = QE_ERR_NO_MEMORY;
      break;
    }
    c->count = i + 1; /* from here the row's label is the cache's to free */
    r.at += pad4(len);
    r.left -= pad4(len);
    qe_get(&r, row, dim * sizeof(float));
    float inv_norm;
    if (r.short_read || qe_f32_row_inv_norms(1, dim, row, dim, &inv_norm) != 0) {
      status = QE_ERR_FORMAT;
      break;
    }
    qe_f32_corpus_store_rows(dim, c->corpus, i, 1, row, dim);
    c->inv_norms[i] = inv_norm;
    c->quality[i] = quality;
    c->hits[i] = hits;
    c->last_use[i] = last_use;
  }
  if (status == QE_OK && r.left != 0) status = QE_ERR_FORMAT; /* bytes left over */
  free(row);
  if (status != QE_OK) {
    qe_pattern_cache_destroy(c);
    return status;
  }
  c->clock = clock;
  *out = c;
  return QE_OK;
}
