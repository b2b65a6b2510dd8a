/*
 * HNSW (Malkov & Yashunin 2016), in the paper's words: INSERT descends
 * greedily from the entry point through the levels above the new node's
 * level l, then on each level from min(l, L) down to 0 runs SEARCH-LAYER
 * with efConstruction candidates, keeps M of them by SELECT-NEIGHBORS-
 * HEURISTIC and links both ways, shrinking a neighbour's list by the same
 * heuristic when it overflows (Mmax = M above level 0, Mmax0 = 2M on it).
 * K-NN-SEARCH descends greedily to level 0 and runs SEARCH-LAYER there with
 * ef = max(efSearch, k) candidates. Levels are drawn with mL = 1 / ln(M).
 *
 * Layout of a node (slot s):
 *
 *   level0 + s * node_bytes        one block per slot, contiguous, so a
 *   +----------------------------+  level-0 step reads a node's links and
 *   | uint32 count0              |  its neighbours' vectors from blocks
 *   | uint32 links0[Mmax0]       |  that hold nothing else
 *   | (zero padding to 16 bytes) |
 *   | float  vector[dim_pad]     |  dim rounded up to 4, zero tail, so the
 *   +----------------------------+  distance kernels run whole SIMD vectors
 *
 *   levels[s]   int8: the node's top level, -1 for a free slot
 *   upper[s]    NULL, or levels[s] blocks of (1 + Mmax) uint32: for level
 *               l >= 1, block l - 1 is { count, links[Mmax] }
 *   visited[s]  uint16 epoch of the last search that reached s; a search
 *               takes the next epoch instead of clearing the array
 *
 * Removal is a true delete: every list that links to the node is repaired
 * (hnswlib's repairConnectionsForUpdate idea: the heuristic over the old
 * list without the node, plus the node's own links), so no link ever points
 * at a free slot and a freed slot can be reused at once. Finding the lists
 * that point to the node scans every list of the node's levels: O(n * M)
 * per removal, about a millisecond at 100,000 nodes, and no reverse-link
 * table (which would cost as much memory as the links themselves).
 */
#include "search/hnsw.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "adapt/crc32c.h"
#include "qe_api.h"
#include "runtime/handle.h"
#include "search/similarity.h"

#define NONE 0xFFFFFFFFu
#define HEADER_BYTES 80u
#define FORMAT_VERSION 1u
static const unsigned char MAGIC[8] = {'Q', 'E', 'H', 'N', 'S', 'W', '\r', '\n'};

typedef struct {
  float d;
  uint32_t id;
} pair;

/* Layout version of struct qe_hnsw (qe_handle_check compares it). */
#define QE_HNSW_LAYOUT 1u

struct qe_hnsw {
  qe_handle h; /* first: the handle header (runtime/handle.h) */
  qe_hnsw_params p;
  uint32_t M0;         /* Mmax0 = 2M */
  uint32_t dim_pad;    /* dim rounded up to 4 */
  size_t vec_offset;   /* bytes from a block's start to its vector */
  size_t node_bytes;   /* one level-0 block, a multiple of 16 */
  uint32_t capacity;   /* slots allocated */
  uint32_t slots;      /* slots ever used: live + free */
  uint32_t count;      /* live nodes */
  uint32_t entry;      /* entry point, NONE when empty */
  int32_t max_level;   /* the entry point's level, -1 when empty */
  uint64_t rng;        /* level generator state */
  unsigned char *level0;
  int8_t *levels;
  uint32_t **upper;
  size_t upper_bytes;
  uint16_t *visited;
  uint16_t epoch;
  uint32_t *free_slots; /* a stack: the last freed is reused first */
  uint32_t free_count;
  pair *cand;           /* SEARCH-LAYER's candidates C: a min-heap (capacity + 1) */
  uint32_t cand_size;
  pair *res;            /* its results W: a max-heap (capacity + 1) */
  uint32_t res_size;
  pair *sorted;         /* W in ascending order, and repair candidates */
  pair *selected;       /* SELECT-NEIGHBORS-HEURISTIC's output */
  uint32_t scratch_len; /* entries of sorted: max(efConstruction, capacity-independent 2 * Mmax0) + 2 */
  float *query;         /* the query, padded (and normalized for cosine) */
  /* Quantized traversal (QE_HNSW_TRAVERSAL_INT8): each vector also as int8
   * codes x ~ scale * code (per-vector scale max|x| / 127), code_stride bytes
   * (dim rounded up to 16) after a 16-byte code_head, one row of code_row
   * bytes a slot, so a distance reads one place. The query is coded in 7
   * bits, offset by 64 to [1, 127] (relaxed SIMD's i8 x i7 dot product);
   * the head's code sum takes the offset back out. Searches walk the graph
   * on these and re-rank their ef results exactly in float32. */
  int traversal;
  uint32_t code_stride;
  size_t code_row;
  unsigned char *codes;
  uint8_t *query_codes;
  float query_scale, query_sq_norm;
  int busy;
};

/* ------------------------------------------------------------ the handle */


static int claim(qe_hnsw *h) { return __atomic_exchange_n(&h->busy, 1, __ATOMIC_ACQUIRE) == 0; }
static void release(qe_hnsw *h) { __atomic_store_n(&h->busy, 0, __ATOMIC_RELEASE); }

static inline uint32_t *links0(const qe_hnsw *h, uint32_t s) {
  return (uint32_t *)(h->level0 + (size_t)s * h->node_bytes);
}
static inline float *vec_of(const qe_hnsw *h, uint32_t s) {
  return (float *)(h->level0 + (size_t)s * h->node_bytes + h->vec_offset);
}
/* { count, links[] } of slot s on level l (l <= levels[s]). */
static inline uint32_t *links_at(const qe_hnsw *h, uint32_t s, int l) {
  return l == 0 ? links0(h, s) : h->upper[s] + (size_t)(l - 1) * (1 + h->p.M);
}
static inline uint32_t mmax(const qe_hnsw *h, int l) { return l == 0 ? h->M0 : h->p.M; }

static inline float distance(const qe_hnsw *h, const float *a, const float *b) {
  if (h->p.metric == QE_HNSW_L2) return qe_f32_l2_squared(h->dim_pad, a, b);
  return 1.0f - qe_f32_dot(h->dim_pad, a, b);
}

typedef struct {
  float scale;   /* x ~ scale * code */
  int32_t sum;   /* sum of the codes */
  float sq_norm; /* |x|^2 (for L2 on codes) */
  int32_t pad;
} code_head;

static inline code_head *head_of(const qe_hnsw *h, uint32_t s) {
  return (code_head *)(h->codes + (size_t)s * h->code_row);
}

/* x ~ scale * code[i], code in [-top, top]; the tail up to code_stride is 0. Returns scale. */
static float quantize(const qe_hnsw *h, const float *x, float top, int8_t *code) {
  float m = 0.0f;
  for (uint32_t i = 0; i < h->p.dim; i++) {
    const float a = x[i] < 0 ? -x[i] : x[i];
    if (a > m) m = a;
  }
  float scale = m > 0.0f ? m / top : 1.0f;
  float inv = 1.0f / scale;
  /* Elements so tiny that 127 / max overflows: all codes 0 (distance 1 - 0). */
  const int tiny = !(inv <= FLT_MAX);
  if (tiny) scale = 1.0f, inv = 0.0f;
  for (uint32_t i = 0; i < h->code_stride; i++) {
    float c = i < h->p.dim && !tiny ? __builtin_rintf(x[i] * inv) : 0.0f;
    c = c > top ? top : c < -top ? -top : c;
    code[i] = (int8_t)c;
  }
  return scale;
}

static void store_codes(qe_hnsw *h, uint32_t s) {
  const float *v = vec_of(h, s);
  code_head *head = head_of(h, s);
  int8_t *code = (int8_t *)(head + 1);
  head->scale = quantize(h, v, 127.0f, code);
  int32_t sum = 0;
  for (uint32_t i = 0; i < h->code_stride; i++) sum += code[i];
  head->sum = sum;
  head->sq_norm = qe_f32_dot(h->dim_pad, v, v);
  head->pad = 0;
}

/* The traversal distance from the quantized query to slot s. */
static inline float code_distance(const qe_hnsw *h, uint32_t s) {
  const code_head *head = head_of(h, s);
  const int32_t raw = qe_i8_u7_dot(h->code_stride, (const int8_t *)(head + 1), h->query_codes) - 64 * head->sum;
  const float dot = (float)raw * (head->scale * h->query_scale);
  if (h->p.metric == QE_HNSW_L2) return h->query_sq_norm + head->sq_norm - 2.0f * dot;
  return 1.0f - dot;
}

static uint64_t next_random(qe_hnsw *h) {
  /* splitmix64: every seed, 0 included, gives a full-period sequence. */
  uint64_t z = (h->rng += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* floor(-ln(u) * mL) with mL = 1 / ln(M), u uniform in (0, 1]: the level is
 * >= l exactly when u <= M^-l, so count the powers of 1/M above u (no log
 * needed, and the same on every build). */
static int random_level(qe_hnsw *h) {
  const double u = (double)((next_random(h) >> 11) + 1) * 0x1p-53;
  const double p = 1.0 / (double)h->p.M;
  double threshold = p;
  int level = 0;
  while (u <= threshold && level < QE_HNSW_MAX_LEVEL) {
    level++;
    threshold *= p;
  }
  return level;
}

static int params_ok(const qe_hnsw_params *p) {
  return p->dim >= 1 && p->dim <= QE_HNSW_MAX_DIM && p->metric <= QE_HNSW_L2 && p->M >= QE_HNSW_MIN_M &&
         p->M <= QE_HNSW_MAX_M && p->ef_construction >= 1 && p->ef_construction <= QE_HNSW_MAX_EF &&
         p->ef_search >= 1 && p->ef_search <= QE_HNSW_MAX_EF;
}

/* Grows every per-slot array to `capacity` slots (copying); all or nothing. */
static int reserve(qe_hnsw *h, uint32_t capacity) {
  if (capacity <= h->capacity) return QE_OK;
  if (capacity > QE_HNSW_MAX_SLOTS) return QE_ERR_NO_MEMORY;
  if ((uint64_t)capacity * h->node_bytes > SIZE_MAX / 2) return QE_ERR_NO_MEMORY;
  unsigned char *level0 = aligned_alloc(16, (size_t)capacity * h->node_bytes);
  int8_t *levels = malloc(capacity);
  uint32_t **upper = malloc((size_t)capacity * sizeof *upper);
  uint16_t *visited = malloc((size_t)capacity * sizeof *visited);
  uint32_t *free_slots = malloc((size_t)capacity * sizeof *free_slots);
  pair *cand = malloc(((size_t)capacity + 1) * sizeof *cand);
  pair *res = malloc(((size_t)capacity + 1) * sizeof *res);
  unsigned char *codes = aligned_alloc(16, (size_t)capacity * h->code_row);
  if (!level0 || !levels || !upper || !visited || !free_slots || !cand || !res || !codes) {
    free(level0), free(levels), free(upper), free(visited), free(free_slots), free(cand), free(res);
    free(codes);
    return QE_ERR_NO_MEMORY;
  }
  if (h->capacity) {
    memcpy(level0, h->level0, (size_t)h->slots * h->node_bytes);
    memcpy(levels, h->levels, h->slots);
    memcpy(upper, h->upper, (size_t)h->slots * sizeof *upper);
    memcpy(free_slots, h->free_slots, (size_t)h->free_count * sizeof *free_slots);
    memcpy(codes, h->codes, (size_t)h->slots * h->code_row);
  }
  /* Fresh visited marks: epoch 0 is never current. */
  memset(visited, 0, (size_t)capacity * sizeof *visited);
  h->epoch = 0;
  free(h->level0), free(h->levels), free(h->upper), free(h->visited), free(h->free_slots), free(h->cand), free(h->res);
  free(h->codes);
  h->codes = codes;
  h->level0 = level0, h->levels = levels, h->upper = upper, h->visited = visited;
  h->free_slots = free_slots, h->cand = cand, h->res = res;
  h->capacity = capacity;
  return QE_OK;
}

int qe_hnsw_create(const qe_hnsw_params *params, uint32_t capacity, qe_hnsw **out) {
  if (!params || !out) return QE_ERR_NULL;
  *out = NULL;
  if (!params_ok(params) || capacity > QE_HNSW_MAX_SLOTS) return QE_ERR_ARGUMENT;
  qe_hnsw *h = qe_handle_new(QE_HANDLE_HNSW, QE_HNSW_LAYOUT, sizeof *h);
  if (!h) return QE_ERR_NO_MEMORY;
  h->p = *params;
  h->M0 = 2 * params->M;
  h->dim_pad = (params->dim + 3u) & ~3u;
  h->code_stride = (params->dim + 15u) & ~15u;
  h->code_row = sizeof(code_head) + h->code_stride;
  h->traversal = QE_HNSW_TRAVERSAL_INT8;
  h->vec_offset = ((size_t)(1 + h->M0) * 4 + 15) & ~(size_t)15;
  h->node_bytes = h->vec_offset + (size_t)h->dim_pad * 4;
  h->entry = NONE;
  h->max_level = -1;
  h->rng = params->seed;
  h->scratch_len = (params->ef_construction > 2 * h->M0 ? params->ef_construction : 2 * h->M0) + 2;
  h->sorted = malloc((size_t)h->scratch_len * sizeof *h->sorted);
  h->selected = malloc((size_t)h->scratch_len * sizeof *h->selected);
  h->query = aligned_alloc(16, (size_t)h->dim_pad * 4);
  h->query_codes = aligned_alloc(16, (size_t)h->code_stride);
  if (!h->sorted || !h->selected || !h->query || !h->query_codes || reserve(h, capacity ? capacity : 16) != QE_OK) {
    qe_hnsw_destroy(h);
    return QE_ERR_NO_MEMORY;
  }
  *out = h;
  return QE_OK;
}

void qe_hnsw_destroy(qe_hnsw *h) {
  if (!h) return;
  if (h->upper)
    for (uint32_t s = 0; s < h->slots; s++) free(h->upper[s]);
  free(h->level0), free(h->levels), free(h->upper), free(h->visited), free(h->free_slots);
  free(h->cand), free(h->res), free(h->sorted), free(h->selected), free(h->query);
  free(h->codes), free(h->query_codes);
  qe_handle_free(h);
}

int qe_hnsw_check(const qe_hnsw *h) { return qe_handle_check(h, QE_HANDLE_HNSW, QE_HNSW_LAYOUT, sizeof *h); }

int qe_hnsw_try_destroy(qe_hnsw *h) {
  if (!h) return QE_OK;
  if (!claim(h)) return QE_HNSW_ERR_BUSY;
  qe_hnsw_destroy(h);
  return QE_OK;
}

/* ------------------------------------------------------------ the heaps */

/* a before b: closer, or as close and a lower slot (deterministic ties). */
static inline int closer(pair a, pair b) { return a.d < b.d || (a.d == b.d && a.id < b.id); }

/* Min-heap (closest on top) when `max` is 0; max-heap (furthest on top) when 1. */
static inline void heap_push(pair *heap, uint32_t *size, pair x, int max) {
  uint32_t i = (*size)++;
  while (i > 0) {
    const uint32_t parent = (i - 1) / 2;
    if (max ? !closer(heap[parent], x) : !closer(x, heap[parent])) break;
    heap[i] = heap[parent];
    i = parent;
  }
  heap[i] = x;
}

static inline void heap_pop(pair *heap, uint32_t *size, int max) {
  const pair x = heap[--*size];
  const uint32_t n = *size;
  uint32_t i = 0;
  for (;;) {
    uint32_t c = 2 * i + 1;
    if (c >= n) break;
    if (c + 1 < n && (max ? closer(heap[c], heap[c + 1]) : closer(heap[c + 1], heap[c]))) c++;
    if (max ? !closer(x, heap[c]) : !closer(heap[c], x)) break;
    heap[i] = heap[c];
    i = c;
  }
  if (n) heap[i] = x;
}

/* Empties the results max-heap into out, closest first; returns the count. */
static uint32_t drain_sorted(qe_hnsw *h, pair *out) {
  const uint32_t n = h->res_size;
  for (uint32_t i = n; i-- > 0;) {
    out[i] = h->res[0];
    heap_pop(h->res, &h->res_size, 1);
  }
  return n;
}

static void sort_pairs(pair *a, uint32_t n) {
  for (uint32_t i = 1; i < n; i++) {
    const pair x = a[i];
    uint32_t j = i;
    while (j > 0 && closer(x, a[j - 1])) {
      a[j] = a[j - 1];
      j--;
    }
    a[j] = x;
  }
}

static uint16_t next_epoch(qe_hnsw *h) {
  if (++h->epoch == 0) {
    memset(h->visited, 0, (size_t)h->capacity * sizeof *h->visited);
    h->epoch = 1;
  }
  return h->epoch;
}

static inline int allowed(const uint8_t *allow, uint32_t s) { return (allow[s >> 3] >> (s & 7)) & 1; }

/* ------------------------------------------------------------ the algorithm */

/* Greedy walk on level l: moves to a closer neighbour until none is closer. */
static uint32_t search_greedy(const qe_hnsw *h, const float *q, uint32_t ep, float *ep_d, int l, int coded) {
  int changed = 1;
  while (changed) {
    changed = 0;
    const uint32_t *list = links_at(h, ep, l);
    for (uint32_t i = 1; i <= list[0]; i++) {
      const float d = coded ? code_distance(h, list[i]) : distance(h, q, vec_of(h, list[i]));
      if (d < *ep_d || (d == *ep_d && list[i] < ep)) {
        *ep_d = d;
        ep = list[i];
        changed = 1;
      }
    }
  }
  return ep;
}

/*
 * SEARCH-LAYER(q, ep, ef, l): the ef closest nodes to q on level l that
 * `allow` admits (all when NULL), left in the results heap. With a filter
 * the walk goes on through rejected nodes until ef admitted ones are found
 * (hnswlib's rule), since the rejected still lead somewhere.
 */
static void search_layer(qe_hnsw *h, const float *q, uint32_t ep, float ep_d, uint32_t ef, int l,
                         const uint8_t *allow, int coded) {
  const uint16_t epoch = next_epoch(h);
  h->cand_size = 0;
  h->res_size = 0;
  h->visited[ep] = epoch;
  heap_push(h->cand, &h->cand_size, (pair){ep_d, ep}, 0);
  if (!allow || allowed(allow, ep)) heap_push(h->res, &h->res_size, (pair){ep_d, ep}, 1);
  float bound = h->res_size ? h->res[0].d : INFINITY;
  while (h->cand_size) {
    const pair c = h->cand[0];
    if (c.d > bound && (h->res_size >= ef || !allow)) break;
    heap_pop(h->cand, &h->cand_size, 0);
    const uint32_t *list = links_at(h, c.id, l);
    const uint32_t n = list[0];
    for (uint32_t i = 1; i <= n; i++) {
      const uint32_t e = list[i];
      if (h->visited[e] == epoch) continue;
      h->visited[e] = epoch;
      const float d = coded ? code_distance(h, e) : distance(h, q, vec_of(h, e));
      if (h->res_size < ef || d < bound) {
        heap_push(h->cand, &h->cand_size, (pair){d, e}, 0);
        if (!allow || allowed(allow, e)) {
          heap_push(h->res, &h->res_size, (pair){d, e}, 1);
          if (h->res_size > ef) heap_pop(h->res, &h->res_size, 1);
        }
        if (h->res_size) bound = h->res[0].d;
      }
    }
  }
}

/*
 * SELECT-NEIGHBORS-HEURISTIC (hnswlib's getNeighborsByHeuristic2): from
 * candidates sorted closest first, keep e only when it is closer to the base
 * than to every neighbour kept so far, up to m. Fewer than m candidates are
 * all kept. Returns the count written to out.
 *
 * Candidates at exactly the same distance (in practice: identical vectors,
 * common in hashed code embeddings) are taken higher slot first, as hnswlib
 * does. The heuristic keeps one of such twins and drops the rest; taking the
 * lowest slot would send every link into a group of twins to its oldest
 * member, whose own list fills with its twins (distance 0 always passes),
 * so searches reach the group and its surroundings through few nodes.
 * Measured on 50,317 real functions (10% exact duplicates): recall@10 at
 * ef 256 0.973 lowest slot first, 0.9996 highest first (hnswlib: 0.9996).
 */
static uint32_t select_neighbors(const qe_hnsw *h, const pair *cand, uint32_t n, uint32_t m, pair *out) {
  if (n <= m) {
    memcpy(out, cand, (size_t)n * sizeof *cand);
    return n;
  }
  uint32_t kept = 0;
  for (uint32_t a = 0; a < n && kept < m;) {
    uint32_t b = a + 1;
    while (b < n && cand[b].d == cand[a].d) b++;
    for (uint32_t i = b; i-- > a && kept < m;) {
      const float *v = vec_of(h, cand[i].id);
      int good = 1;
      for (uint32_t j = 0; j < kept; j++) {
        if (distance(h, v, vec_of(h, out[j].id)) < cand[i].d) {
          good = 0;
          break;
        }
      }
      if (good) out[kept++] = cand[i];
    }
    a = b;
  }
  return kept;
}

static void set_links(uint32_t *list, const pair *chosen, uint32_t n) {
  list[0] = n;
  for (uint32_t i = 0; i < n; i++) list[1 + i] = chosen[i].id;
}

/* Adds the link node -> added (distance d) on level l; an overflowing list is
 * cut back to Mmax by the heuristic over its old links plus the new one. */
static void add_link(qe_hnsw *h, uint32_t node, uint32_t added, float d, int l) {
  uint32_t *list = links_at(h, node, l);
  const uint32_t cap = mmax(h, l);
  if (list[0] < cap) {
    list[1 + list[0]++] = added;
    return;
  }
  pair *cand = h->sorted;
  const float *v = vec_of(h, node);
  for (uint32_t i = 0; i < list[0]; i++) cand[i] = (pair){distance(h, v, vec_of(h, list[1 + i])), list[1 + i]};
  cand[list[0]] = (pair){d, added};
  sort_pairs(cand, list[0] + 1);
  set_links(list, h->selected, select_neighbors(h, cand, list[0] + 1, cap, h->selected));
}

/* The query in h->query: padded with zeros, normalized for cosine.
 * QE_ERR_ARGUMENT for a non-finite element or a norm beyond float range. */
static int prepare_vector(qe_hnsw *h, const float *x, float *out) {
  const uint32_t dim = h->p.dim;
  for (uint32_t i = 0; i < dim; i++)
    if (!isfinite(x[i])) return QE_ERR_ARGUMENT;
  memcpy(out, x, (size_t)dim * 4);
  for (uint32_t i = dim; i < h->dim_pad; i++) out[i] = 0.0f;
  if (h->p.metric == QE_HNSW_COSINE) {
    float inv = 0.0f;
    if (qe_f32_row_inv_norms(1, h->dim_pad, out, h->dim_pad, &inv) != 0) return QE_ERR_ARGUMENT;
    for (uint32_t i = 0; i < dim; i++) out[i] *= inv;
  } else if (!isfinite(qe_f32_dot(h->dim_pad, out, out))) {
    /* |x|^2 within float keeps every dot product finite (Cauchy-Schwarz),
     * so no distance is NaN (an L2 distance may still round to infinity). */
    return QE_ERR_ARGUMENT;
  }
  return QE_OK;
}

int qe_hnsw_add(qe_hnsw *h, const float *vector, uint32_t *slot_out) {
  if (!h || !vector || !slot_out) return QE_ERR_NULL;
  if (!claim(h)) return QE_HNSW_ERR_BUSY;
  int status = prepare_vector(h, vector, h->query);
  if (status == QE_OK && h->free_count == 0 && h->slots == h->capacity) {
    const uint64_t grown = (uint64_t)h->capacity * 2 > QE_HNSW_MAX_SLOTS ? QE_HNSW_MAX_SLOTS : (uint64_t)h->capacity * 2;
    status = h->slots >= QE_HNSW_MAX_SLOTS ? QE_ERR_NO_MEMORY : reserve(h, (uint32_t)grown);
  }
  const int level = status == QE_OK ? random_level(h) : 0;
  uint32_t *upper = NULL;
  if (status == QE_OK && level > 0) {
    upper = calloc((size_t)level * (1 + h->p.M), sizeof *upper);
    if (!upper) status = QE_ERR_NO_MEMORY;
  }
  if (status != QE_OK) {
    release(h);
    return status;
  }
  const uint32_t s = h->free_count ? h->free_slots[--h->free_count] : h->slots++;
  h->levels[s] = (int8_t)level;
  h->upper[s] = upper;
  h->upper_bytes += level > 0 ? (size_t)level * (1 + h->p.M) * 4 : 0;
  links0(h, s)[0] = 0;
  memcpy(vec_of(h, s), h->query, (size_t)h->dim_pad * 4);
  store_codes(h, s);
  const float *q = vec_of(h, s);

  if (h->entry == NONE) {
    h->entry = s;
    h->max_level = level;
  } else {
    uint32_t ep = h->entry;
    float ep_d = distance(h, q, vec_of(h, ep));
    for (int l = h->max_level; l > level; l--) ep = search_greedy(h, q, ep, &ep_d, l, 0);
    for (int l = level < h->max_level ? level : h->max_level; l >= 0; l--) {
      search_layer(h, q, ep, ep_d, h->p.ef_construction, l, NULL, 0);
      const uint32_t n = drain_sorted(h, h->sorted);
      const uint32_t m = select_neighbors(h, h->sorted, n, h->p.M, h->selected);
      set_links(links_at(h, s, l), h->selected, m);
      /* add_link reuses sorted and selected: keep this level's choice apart. */
      pair chosen[QE_HNSW_MAX_M];
      memcpy(chosen, h->selected, (size_t)m * sizeof *chosen);
      for (uint32_t i = 0; i < m; i++) add_link(h, chosen[i].id, s, chosen[i].d, l);
      ep = chosen[0].id; /* the closest: the heuristic always keeps the first */
      ep_d = chosen[0].d;
    }
    if (level > h->max_level) {
      h->entry = s;
      h->max_level = level;
    }
  }
  h->count++;
  *slot_out = s;
  release(h);
  return QE_OK;
}

/* Replaces the link node -> gone on level l by the heuristic's choice among
 * node's other links and gone's links. */
static void repair_links(qe_hnsw *h, uint32_t node, uint32_t gone, int l) {
  uint32_t *list = links_at(h, node, l);
  const uint32_t *theirs = links_at(h, gone, l);
  const uint16_t epoch = next_epoch(h);
  const float *v = vec_of(h, node);
  pair *cand = h->sorted;
  uint32_t n = 0;
  h->visited[node] = epoch;
  h->visited[gone] = epoch;
  for (int pass = 0; pass < 2; pass++) {
    const uint32_t *from = pass == 0 ? list : theirs;
    for (uint32_t i = 1; i <= from[0]; i++) {
      const uint32_t e = from[i];
      if (h->visited[e] == epoch || h->levels[e] < l) continue;
      h->visited[e] = epoch;
      cand[n++] = (pair){distance(h, v, vec_of(h, e)), e};
    }
  }
  sort_pairs(cand, n);
  set_links(list, h->selected, select_neighbors(h, cand, n, mmax(h, l), h->selected));
}

int qe_hnsw_remove(qe_hnsw *h, uint32_t x) {
  if (!h) return QE_ERR_NULL;
  if (!claim(h)) return QE_HNSW_ERR_BUSY;
  if (x >= h->slots || h->levels[x] < 0) {
    release(h);
    return QE_ERR_INDEX;
  }
  const int top = h->levels[x];
  for (int l = 0; l <= top; l++) {
    for (uint32_t s = 0; s < h->slots; s++) {
      if (s == x || h->levels[s] < l) continue;
      const uint32_t *list = links_at(h, s, l);
      for (uint32_t i = 1; i <= list[0]; i++) {
        if (list[i] == x) {
          repair_links(h, s, x, l);
          break;
        }
      }
    }
  }
  h->levels[x] = -1;
  free(h->upper[x]);
  h->upper[x] = NULL;
  h->upper_bytes -= top > 0 ? (size_t)top * (1 + h->p.M) * 4 : 0;
  links0(h, x)[0] = 0;
  h->free_slots[h->free_count++] = x;
  h->count--;
  if (h->entry == x) {
    /* The new entry point: a node of the highest level left, the lowest slot among them. */
    h->entry = NONE;
    h->max_level = -1;
    for (uint32_t s = 0; s < h->slots; s++) {
      if (h->levels[s] > h->max_level) {
        h->max_level = h->levels[s];
        h->entry = s;
      }
    }
  }
  release(h);
  return QE_OK;
}

static uint32_t write_results(const pair *sorted, uint32_t n, uint32_t k, uint32_t *slots, float *distances) {
  const uint32_t out = n < k ? n : k;
  for (uint32_t i = 0; i < out; i++) {
    slots[i] = sorted[i].id;
    distances[i] = sorted[i].d;
  }
  return out;
}

/* The exact k nearest allowed live nodes, into the results heap. */
static void scan_exact(qe_hnsw *h, const float *q, uint32_t k, const uint8_t *allow) {
  h->res_size = 0;
  for (uint32_t s = 0; s < h->slots; s++) {
    if (h->levels[s] < 0 || (allow && !allowed(allow, s))) continue;
    const pair x = {distance(h, q, vec_of(h, s)), s};
    if (h->res_size < k) {
      heap_push(h->res, &h->res_size, x, 1);
    } else if (closer(x, h->res[0])) {
      heap_pop(h->res, &h->res_size, 1);
      heap_push(h->res, &h->res_size, x, 1);
    }
  }
}

static int32_t search_entry(qe_hnsw *h, const float *query, uint32_t k, uint32_t ef, const uint8_t *allow,
                            uint32_t *slots, float *distances, int exact) {
  if (!h || !query || !slots || !distances) return QE_ERR_NULL;
  if (k == 0 || ef > QE_HNSW_MAX_EF) return QE_ERR_ARGUMENT;
  if (!claim(h)) return QE_HNSW_ERR_BUSY;
  int32_t status = prepare_vector(h, query, h->query);
  if (status != QE_OK || h->count == 0) {
    release(h);
    return status;
  }
  const float *q = h->query;
  uint32_t ef_eff = ef ? ef : h->p.ef_search;
  if (ef_eff < k) ef_eff = k;
  if (!exact && allow) {
    /* Few admitted nodes: scanning them costs less than walking the graph
     * past the many rejected ones, and is exact. Counted from the bitset
     * (bits of free slots too: a miscount only changes the speed). */
    uint64_t admitted = 0;
    const size_t bytes = ((size_t)h->slots + 7) / 8;
    size_t i = 0;
    for (; i + 4 <= bytes; i += 4) {
      uint32_t word;
      memcpy(&word, allow + i, 4);
      admitted += (uint64_t)__builtin_popcount(word);
    }
    for (; i < bytes; i++) admitted += (uint64_t)__builtin_popcount(allow[i] & (i + 1 == bytes && h->slots % 8 ? (1u << (h->slots % 8)) - 1 : 0xFFu));
    if (admitted <= (uint64_t)ef_eff * h->M0) exact = 1;
  }
  if (exact) {
    scan_exact(h, q, k < h->count ? k : h->count, allow);
  } else if (h->traversal == QE_HNSW_TRAVERSAL_INT8) {
    h->query_scale = quantize(h, q, 63.0f, (int8_t *)h->query_codes);
    for (uint32_t i = 0; i < h->code_stride; i++) h->query_codes[i] = (uint8_t)((int8_t)h->query_codes[i] + 64);
    h->query_sq_norm = qe_f32_dot(h->dim_pad, q, q);
    uint32_t ep = h->entry;
    float ep_d = code_distance(h, ep);
    for (int l = h->max_level; l > 0; l--) ep = search_greedy(h, q, ep, &ep_d, l, 1);
    search_layer(h, q, ep, ep_d, ef_eff, 0, allow, 1);
    /* Re-rank the ef found on codes by their float32 distances, keeping k. */
    const uint32_t n = drain_sorted(h, h->cand);
    for (uint32_t i = 0; i < n; i++) {
      const pair x = {distance(h, q, vec_of(h, h->cand[i].id)), h->cand[i].id};
      if (h->res_size < k) {
        heap_push(h->res, &h->res_size, x, 1);
      } else if (closer(x, h->res[0])) {
        heap_pop(h->res, &h->res_size, 1);
        heap_push(h->res, &h->res_size, x, 1);
      }
    }
  } else {
    uint32_t ep = h->entry;
    float ep_d = distance(h, q, vec_of(h, ep));
    for (int l = h->max_level; l > 0; l--) ep = search_greedy(h, q, ep, &ep_d, l, 0);
    search_layer(h, q, ep, ep_d, ef_eff, 0, allow, 0);
  }
  /* cand is free now and holds capacity + 1 pairs: room for every result. */
  const uint32_t n = drain_sorted(h, h->cand);
  status = (int32_t)write_results(h->cand, n, k, slots, distances);
  release(h);
  return status;
}

int32_t qe_hnsw_search(qe_hnsw *h, const float *query, uint32_t k, uint32_t ef, const uint8_t *allow,
                       uint32_t *slots, float *distances) {
  return search_entry(h, query, k, ef, allow, slots, distances, 0);
}

int32_t qe_hnsw_search_exact(qe_hnsw *h, const float *query, uint32_t k, const uint8_t *allow, uint32_t *slots,
                             float *distances) {
  return search_entry(h, query, k, 0, allow, slots, distances, 1);
}

/* Bytes a search needs of its own: the handle's fields, then the scratch a search writes. */
static size_t scratch_layout(const qe_hnsw *h, size_t *visited, size_t *heap, size_t *query, size_t *codes) {
  const size_t a = (sizeof(qe_hnsw) + 15) & ~(size_t)15;
  *visited = a;
  *heap = *visited + (((size_t)h->capacity * sizeof(uint16_t) + 15) & ~(size_t)15);
  *query = *heap + 2 * (((size_t)h->capacity + 1) * sizeof(pair));
  *codes = *query + (size_t)h->dim_pad * 4;
  return *codes + h->code_stride;
}

size_t qe_hnsw_search_scratch_bytes(const qe_hnsw *h) {
  size_t v, hp, q, c;
  return h ? scratch_layout(h, &v, &hp, &q, &c) : 0;
}

int32_t qe_hnsw_search_many(const qe_hnsw *h, void *scratch, const float *queries, uint32_t nq, uint32_t k,
                            uint32_t ef, const uint8_t *allow, int exact, uint32_t *slots, float *distances,
                            int32_t *counts) {
  if (!h || !scratch || !queries || !slots || !distances || !counts) return QE_ERR_NULL;
  if (__atomic_load_n(&h->busy, __ATOMIC_ACQUIRE)) return QE_HNSW_ERR_BUSY;
  /* A view of the index with its own working memory: searches only read the
   * graph, vectors and codes, which nothing writes while a batch runs. */
  size_t v, hp, q, c;
  scratch_layout(h, &v, &hp, &q, &c);
  unsigned char *base = scratch;
  qe_hnsw *view = (qe_hnsw *)base;
  *view = *h;
  view->busy = 0;
  view->h.magic = QE_HANDLE_DEAD; /* a working copy, never a handle */
  view->visited = (uint16_t *)(base + v);
  view->cand = (pair *)(base + hp);
  view->res = view->cand + h->capacity + 1;
  view->query = (float *)(base + q);
  view->query_codes = base + c;
  memset(view->visited, 0, (size_t)h->capacity * sizeof(uint16_t));
  view->epoch = 0;
  const size_t dim = h->p.dim;
  for (uint32_t i = 0; i < nq; i++) {
    counts[i] = search_entry(view, queries + i * dim, k, ef, allow, slots + (size_t)i * k, distances + (size_t)i * k,
                             exact);
  }
  return QE_OK;
}

int qe_hnsw_set_traversal(qe_hnsw *h, int traversal) {
  if (!h) return QE_ERR_NULL;
  if (traversal != QE_HNSW_TRAVERSAL_FLOAT32 && traversal != QE_HNSW_TRAVERSAL_INT8) return QE_ERR_ARGUMENT;
  if (!claim(h)) return QE_HNSW_ERR_BUSY;
  h->traversal = traversal;
  release(h);
  return QE_OK;
}

int qe_hnsw_set_ef_search(qe_hnsw *h, uint32_t ef) {
  if (!h) return QE_ERR_NULL;
  if (ef < 1 || ef > QE_HNSW_MAX_EF) return QE_ERR_ARGUMENT;
  if (!claim(h)) return QE_HNSW_ERR_BUSY;
  h->p.ef_search = ef;
  release(h);
  return QE_OK;
}

uint32_t qe_hnsw_dim(const qe_hnsw *h) { return h ? h->p.dim : 0; }
uint32_t qe_hnsw_count(const qe_hnsw *h) { return h ? h->count : 0; }
uint32_t qe_hnsw_slot_count(const qe_hnsw *h) { return h ? h->slots : 0; }
int32_t qe_hnsw_max_level(const qe_hnsw *h) { return h ? h->max_level : -1; }

size_t qe_hnsw_memory_bytes(const qe_hnsw *h) {
  if (!h) return 0;
  const size_t per_slot = h->node_bytes + 1 + sizeof(uint32_t *) + 2 + 4 + 2 * sizeof(pair) + h->code_row;
  return sizeof *h + (size_t)h->capacity * per_slot + h->upper_bytes + 2 * (size_t)h->scratch_len * sizeof(pair) +
         (size_t)h->dim_pad * 4 + (size_t)h->code_stride;
}

int qe_hnsw_vector(const qe_hnsw *h, uint32_t slot, float *out) {
  if (!h || !out) return QE_ERR_NULL;
  if (slot >= h->slots || h->levels[slot] < 0) return QE_ERR_INDEX;
  memcpy(out, vec_of(h, slot), (size_t)h->p.dim * 4);
  return QE_OK;
}

int32_t qe_hnsw_links(const qe_hnsw *h, uint32_t slot, int32_t level, uint32_t *out) {
  if (!h || !out) return QE_ERR_NULL;
  if (slot >= h->slots || h->levels[slot] < 0 || level < 0 || level > h->levels[slot]) return QE_ERR_INDEX;
  const uint32_t *list = links_at(h, slot, level);
  memcpy(out, list + 1, (size_t)list[0] * 4);
  return (int32_t)list[0];
}

/* ------------------------------------------------------------ persistence */

static void put32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get64(const uint8_t *p) { return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32; }

static uint64_t body_bytes(const qe_hnsw *h) {
  uint64_t b = 4 + 4 * (uint64_t)h->free_count;
  for (uint32_t s = 0; s < h->slots; s++) {
    b += 4;
    if (h->levels[s] < 0) continue;
    b += 4 * (uint64_t)h->p.dim;
    for (int l = 0; l <= h->levels[s]; l++) b += 4 + 4 * (uint64_t)links_at(h, s, l)[0];
  }
  return b;
}

int qe_hnsw_save_size(const qe_hnsw *h, size_t user_bytes, size_t *size) {
  if (!h || !size) return QE_ERR_NULL;
  const uint64_t total = HEADER_BYTES + body_bytes(h) + (uint64_t)user_bytes + 4;
  if (user_bytes > 0xFFFFFFFFu || total > SIZE_MAX) return QE_ERR_ARGUMENT;
  *size = (size_t)total;
  return QE_OK;
}

int qe_hnsw_save(qe_hnsw *h, const uint8_t *user, size_t user_bytes, uint8_t *out, size_t size) {
  if (!h || !out || (user_bytes && !user)) return QE_ERR_NULL;
  size_t want = 0;
  int status = qe_hnsw_save_size(h, user_bytes, &want);
  if (status != QE_OK) return status;
  if (size != want) return QE_ERR_ARGUMENT;
  if (!claim(h)) return QE_HNSW_ERR_BUSY;
  const uint64_t body = body_bytes(h);
  memcpy(out, MAGIC, 8);
  put32(out + 8, FORMAT_VERSION);
  put32(out + 12, h->p.dim);
  put32(out + 16, h->p.metric);
  put32(out + 20, h->p.M);
  put32(out + 24, h->p.ef_construction);
  put32(out + 28, h->p.ef_search);
  put64(out + 32, h->p.seed);
  put64(out + 40, h->rng);
  put32(out + 48, h->slots);
  put32(out + 52, h->count);
  put32(out + 56, h->entry);
  put32(out + 60, (uint32_t)h->max_level);
  put64(out + 64, body);
  put32(out + 72, (uint32_t)user_bytes);
  put32(out + 76, 0);
  uint8_t *p = out + HEADER_BYTES;
  for (uint32_t s = 0; s < h->slots; s++) {
    put32(p, (uint32_t)(int32_t)h->levels[s]);
    p += 4;
    if (h->levels[s] < 0) continue;
    const float *v = vec_of(h, s);
    for (uint32_t i = 0; i < h->p.dim; i++, p += 4) {
      uint32_t bits;
      memcpy(&bits, v + i, 4);
      put32(p, bits);
    }
    for (int l = 0; l <= h->levels[s]; l++) {
      const uint32_t *list = links_at(h, s, l);
      for (uint32_t i = 0; i <= list[0]; i++, p += 4) put32(p, list[i]);
    }
  }
  put32(p, h->free_count);
  p += 4;
  for (uint32_t i = 0; i < h->free_count; i++, p += 4) put32(p, h->free_slots[i]);
  if (user_bytes) memcpy(p, user, user_bytes);
  p += user_bytes;
  put32(p, qe_crc32c_update(0, out, (size_t)(p - out)));
  release(h);
  return QE_OK;
}

/* A bounds-checked reader over the body: a read past `end` sets `bad`. */
typedef struct {
  const uint8_t *p, *end;
  int bad;
} reader;

static uint32_t read32(reader *r) {
  if (r->bad || r->end - r->p < 4) {
    r->bad = 1;
    return 0;
  }
  const uint32_t v = get32(r->p);
  r->p += 4;
  return v;
}

/* Fills h from the body; QE_OK or QE_HNSW_ERR_CORRUPT. */
static int load_body(qe_hnsw *h, reader *r, uint32_t slots, uint32_t count, uint32_t entry, int32_t max_level) {
  h->slots = slots;
  for (uint32_t s = 0; s < slots; s++) h->upper[s] = NULL; /* so destroy frees only what was made */
  uint32_t live = 0;
  int32_t highest = -1;
  for (uint32_t s = 0; s < slots; s++) {
    const int32_t level = (int32_t)read32(r);
    if (r->bad || level < -1 || level > QE_HNSW_MAX_LEVEL) return QE_HNSW_ERR_CORRUPT;
    h->levels[s] = (int8_t)level;
    links0(h, s)[0] = 0;
    if (level < 0) continue;
    live++;
    if (level > highest) highest = level;
    if ((size_t)(r->end - r->p) < (size_t)h->p.dim * 4) return QE_HNSW_ERR_CORRUPT;
    float *v = vec_of(h, s);
    for (uint32_t i = 0; i < h->dim_pad; i++) v[i] = 0.0f;
    for (uint32_t i = 0; i < h->p.dim; i++) {
      const uint32_t bits = read32(r);
      memcpy(v + i, &bits, 4);
      if (!isfinite(v[i])) return QE_HNSW_ERR_CORRUPT;
    }
    /* As add() admits them: |x|^2 within float (so no distance is NaN). */
    if (!isfinite(qe_f32_dot(h->dim_pad, v, v))) return QE_HNSW_ERR_CORRUPT;
    if (level > 0) {
      h->upper[s] = calloc((size_t)level * (1 + h->p.M), sizeof(uint32_t));
      if (!h->upper[s]) return QE_ERR_NO_MEMORY;
      h->upper_bytes += (size_t)level * (1 + h->p.M) * 4;
    }
    for (int l = 0; l <= level; l++) {
      uint32_t *list = links_at(h, s, l);
      const uint32_t n = read32(r);
      if (r->bad || n > mmax(h, l)) return QE_HNSW_ERR_CORRUPT;
      for (uint32_t i = 1; i <= n; i++) {
        list[i] = read32(r);
        if (r->bad || list[i] >= slots || list[i] == s) return QE_HNSW_ERR_CORRUPT;
      }
      list[0] = n;
    }
  }
  /* Every link leads to a live node that has the link's level. */
  for (uint32_t s = 0; s < slots; s++) {
    for (int l = 0; l <= h->levels[s]; l++) {
      const uint32_t *list = links_at(h, s, l);
      for (uint32_t i = 1; i <= list[0]; i++)
        if (h->levels[list[i]] < l) return QE_HNSW_ERR_CORRUPT;
    }
  }
  if (live != count || highest != max_level) return QE_HNSW_ERR_CORRUPT;
  if (count == 0 ? entry != NONE : (entry >= slots || h->levels[entry] != max_level)) return QE_HNSW_ERR_CORRUPT;
  h->count = count;
  h->entry = entry;
  h->max_level = max_level;
  /* The free stack: exactly the free slots, each once. */
  const uint32_t free_count = read32(r);
  if (r->bad || free_count != slots - count) return QE_HNSW_ERR_CORRUPT;
  const uint16_t epoch = next_epoch(h);
  for (uint32_t i = 0; i < free_count; i++) {
    const uint32_t s = read32(r);
    if (r->bad || s >= slots || h->levels[s] >= 0 || h->visited[s] == epoch) return QE_HNSW_ERR_CORRUPT;
    h->visited[s] = epoch;
    h->free_slots[i] = s;
  }
  h->free_count = free_count;
  if (r->p != r->end) return QE_HNSW_ERR_CORRUPT;
  for (uint32_t s = 0; s < slots; s++)
    if (h->levels[s] >= 0) store_codes(h, s);
  return QE_OK;
}

int qe_hnsw_load(const uint8_t *bytes, size_t n, uint32_t expect_dim, uint32_t expect_metric, qe_hnsw **out,
                 const uint8_t **user, size_t *user_bytes) {
  if (!out || !user || !user_bytes || (n && !bytes)) return QE_ERR_NULL;
  *out = NULL;
  *user = NULL;
  *user_bytes = 0;
  if (n == 0) return QE_HNSW_ERR_EMPTY;
  if (n < 8 || memcmp(bytes, MAGIC, 8) != 0) return QE_HNSW_ERR_FOREIGN;
  if (n < 12) return QE_HNSW_ERR_TRUNCATED;
  if (get32(bytes + 8) != FORMAT_VERSION) return QE_HNSW_ERR_VERSION;
  if (n < HEADER_BYTES) return QE_HNSW_ERR_TRUNCATED;
  const uint64_t body = get64(bytes + 64);
  const uint64_t extra = get32(bytes + 72);
  if (body > (uint64_t)n || extra > (uint64_t)n) return QE_HNSW_ERR_TRUNCATED;
  const uint64_t total = HEADER_BYTES + body + extra + 4;
  if ((uint64_t)n < total) return QE_HNSW_ERR_TRUNCATED;
  if ((uint64_t)n > total) return QE_HNSW_ERR_CORRUPT;
  if (qe_crc32c_update(0, bytes, (size_t)total - 4) != get32(bytes + total - 4)) return QE_HNSW_ERR_CHECKSUM;

  qe_hnsw_params p = {get32(bytes + 12), get32(bytes + 16), get32(bytes + 20), get32(bytes + 24),
                      get32(bytes + 28), get64(bytes + 32)};
  if (expect_dim != 0xFFFFFFFFu && p.dim != expect_dim) return QE_HNSW_ERR_DIM;
  if (expect_metric != 0xFFFFFFFFu && p.metric != expect_metric) return QE_HNSW_ERR_METRIC;
  const uint32_t slots = get32(bytes + 48), count = get32(bytes + 52), entry = get32(bytes + 56);
  const int32_t max_level = (int32_t)get32(bytes + 60);
  /* Each slot takes at least 4 body bytes: a bound before anything is allocated. */
  if (!params_ok(&p) || slots > QE_HNSW_MAX_SLOTS || (uint64_t)slots * 4 > body || count > slots ||
      get32(bytes + 76) != 0)
    return QE_HNSW_ERR_CORRUPT;

  qe_hnsw *h = NULL;
  int status = qe_hnsw_create(&p, slots, &h);
  if (status != QE_OK) return status;
  h->rng = get64(bytes + 40);
  reader r = {bytes + HEADER_BYTES, bytes + HEADER_BYTES + body, 0};
  status = load_body(h, &r, slots, count, entry, max_level);
  if (status != QE_OK) {
    qe_hnsw_destroy(h);
    return status;
  }
  *out = h;
  *user = bytes + HEADER_BYTES + body;
  *user_bytes = (size_t)extra;
  return QE_OK;
}
