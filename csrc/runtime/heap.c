/*
 * The allocator of the multi-threaded module; see heap.h for the design and
 * the one-allocating-thread rule.
 *
 * Block layout (addresses 16-aligned, sizes multiples of 16):
 *
 *   in use:  [ tag | pad .. 16 ][ payload ............................ ]
 *   free:    [ tag | pad .. 16 ][ next | prev | ......... | size footer ]
 *
 * tag = size | FLAG_INUSE | FLAG_PREV_INUSE (| FLAG_HOLE). The footer lets a
 * block being freed find its free left neighbour; FLAG_PREV_INUSE says
 * whether there is one. The region ends with an epilogue: a size-0 block
 * marked in use, so coalescing to the right stops there. Two free blocks are
 * never adjacent (free coalesces at once).
 */
#include "runtime/heap.h"

#if defined(QE_HEAP_AVAILABLE)

#include <stdint.h>
#include <string.h>

#define HDR ((uintptr_t)16)
#define FLAG_INUSE ((size_t)1)
#define FLAG_PREV_INUSE ((size_t)2)
#define FLAG_HOLE ((size_t)4) /* memory between two non-contiguous growths */
#define FLAG_MASK ((size_t)15)
#define NBINS (sizeof(size_t) * 8)

typedef struct free_links {
  struct free_links *next, *prev; /* at the payload of a free block */
} free_links;

/* Smallest block: header, the two links, and the footer. */
#define MIN_BLOCK (((HDR + 2 * sizeof(void *) + sizeof(size_t)) + 15) & ~(uintptr_t)15)

static uintptr_t g_first;   /* first block's address; 0 until initialized */
static uintptr_t g_top;     /* end of the region (just past the epilogue) */
static size_t g_region;     /* bytes spanned from g_first to g_top */
static uint64_t g_owned_top; /* memory end when the heap last grew it */
static free_links *g_bins[NBINS];
static size_t g_bin_map;    /* bit i set when g_bins[i] is non-empty */

/* ------------------------------------------------------------ backends */

#if defined(__wasm__)

extern unsigned char __heap_base;

/* Lets the JavaScript side refresh its views of memory after growth (the
 * single-thread modules' loader supplies the same import). */
__attribute__((import_module("env"), import_name("emscripten_notify_memory_growth")))
void emscripten_notify_memory_growth(size_t memory_index);

/* Pages the heap may use: one below 4 GiB, so every address fits in 32 bits. */
#define MAX_PAGES ((uint64_t)65535)

static uintptr_t backend_start(void) { return (uintptr_t)&__heap_base; }

static uint64_t backend_top(void) {
  uint64_t pages = (uint64_t)__builtin_wasm_memory_size(0);
  if (pages > MAX_PAGES) pages = MAX_PAGES;
  return pages * QE_HEAP_PAGE;
}

/* Grows memory by `pages`; 1 on success. */
static int backend_grow(size_t pages) {
  uint64_t now = (uint64_t)__builtin_wasm_memory_size(0);
  if (now + pages > MAX_PAGES) return 0;
  if (__builtin_wasm_memory_grow(0, pages) == (size_t)-1) return 0;
  emscripten_notify_memory_growth(0);
  return 1;
}

#else /* native: a static buffer standing in for linear memory */

#ifndef QE_HEAP_NATIVE_BYTES
#define QE_HEAP_NATIVE_BYTES ((size_t)32 << 20)
#endif

static _Alignas(64) unsigned char g_native[QE_HEAP_NATIVE_BYTES];
static size_t g_native_committed = QE_HEAP_PAGE; /* "memory size" */
static size_t g_native_limit = QE_HEAP_NATIVE_BYTES;

/* Starts 8 bytes in, so the start is not already aligned (as __heap_base may not be). */
static uintptr_t backend_start(void) { return (uintptr_t)g_native + 8; }

static uint64_t backend_top(void) { return (uint64_t)((uintptr_t)g_native + g_native_committed); }

static int backend_grow(size_t pages) {
  if (pages > (g_native_limit - g_native_committed) / QE_HEAP_PAGE) return 0;
  g_native_committed += pages * QE_HEAP_PAGE;
  return 1;
}

void qe_heap_reset_for_tests(size_t limit_bytes) {
  g_first = g_top = 0;
  g_region = 0;
  g_owned_top = 0;
  memset(g_bins, 0, sizeof g_bins);
  g_bin_map = 0;
  g_native_limit = limit_bytes && limit_bytes < QE_HEAP_NATIVE_BYTES ? limit_bytes : QE_HEAP_NATIVE_BYTES;
  g_native_limit -= g_native_limit % QE_HEAP_PAGE;
  g_native_committed = QE_HEAP_PAGE;
}

#endif

/* ------------------------------------------------------------ tags */

static inline size_t tag_of(uintptr_t b) { return *(size_t *)b; }
static inline void set_tag(uintptr_t b, size_t tag) { *(size_t *)b = tag; }
static inline size_t size_of(uintptr_t b) { return tag_of(b) & ~FLAG_MASK; }
static inline int in_use(uintptr_t b) { return (tag_of(b) & FLAG_INUSE) != 0; }
static inline int prev_in_use(uintptr_t b) { return (tag_of(b) & FLAG_PREV_INUSE) != 0; }
static inline free_links *links_of(uintptr_t b) { return (free_links *)(b + HDR); }
static inline uintptr_t block_of_links(const free_links *l) { return (uintptr_t)l - HDR; }
static inline void set_footer(uintptr_t b, size_t size) { *(size_t *)(b + size - sizeof(size_t)) = size; }

static inline void set_prev_in_use(uintptr_t b, int yes) {
  size_t t = tag_of(b);
  set_tag(b, yes ? (t | FLAG_PREV_INUSE) : (t & ~FLAG_PREV_INUSE));
}

static inline unsigned bin_index(size_t size) {
  /* floor(log2(size)); sizes are at least MIN_BLOCK, so never 0. */
  unsigned lz = sizeof(size_t) == 8 ? (unsigned)__builtin_clzll((unsigned long long)size)
                                    : (unsigned)__builtin_clz((unsigned)size);
  return (unsigned)(NBINS - 1) - lz;
}

static void list_insert(uintptr_t b) {
  unsigned i = bin_index(size_of(b));
  free_links *l = links_of(b);
  l->prev = NULL;
  l->next = g_bins[i];
  if (l->next) l->next->prev = l;
  g_bins[i] = l;
  g_bin_map |= (size_t)1 << i;
}

static void list_remove(uintptr_t b) {
  unsigned i = bin_index(size_of(b));
  free_links *l = links_of(b);
  if (l->prev) l->prev->next = l->next;
  else g_bins[i] = l->next;
  if (l->next) l->next->prev = l->prev;
  if (!g_bins[i]) g_bin_map &= ~((size_t)1 << i);
}

/*
 * Makes block b (currently tagged in use, any size >= MIN_BLOCK) free,
 * merging it with free neighbours, and files the result.
 */
static void release_block(uintptr_t b) {
  size_t size = size_of(b);
  uintptr_t next = b + size;
  if (!in_use(next)) {
    list_remove(next);
    size += size_of(next);
  }
  size_t prev_flag = tag_of(b) & FLAG_PREV_INUSE;
  if (!prev_flag) {
    size_t psize = *(size_t *)(b - sizeof(size_t));
    uintptr_t prev = b - psize;
    list_remove(prev);
    size += psize;
    b = prev;
    prev_flag = tag_of(b) & FLAG_PREV_INUSE; /* set: prev's left neighbour is in use */
  }
  set_tag(b, size | prev_flag);
  set_footer(b, size);
  set_prev_in_use(b + size, 0);
  list_insert(b);
}

/* Marks free block b in use (already out of its list). */
static void take_block(uintptr_t b) {
  set_tag(b, tag_of(b) | FLAG_INUSE);
  set_prev_in_use(b + size_of(b), 1);
}

/* Shrinks in-use block b to `keep` bytes when the rest can stand as a block. */
static void split_tail(uintptr_t b, size_t keep) {
  size_t size = size_of(b);
  if (size - keep < MIN_BLOCK) return;
  set_tag(b, keep | (tag_of(b) & FLAG_MASK));
  uintptr_t t = b + keep;
  set_tag(t, (size - keep) | FLAG_INUSE | FLAG_PREV_INUSE);
  release_block(t);
}

/* ------------------------------------------------------------ region */

/*
 * Adds [start, end) (16-aligned, start >= g_top) to the heap. The old
 * epilogue becomes a block: the new free space when contiguous, or an
 * in-use hole spanning [epilogue, start) otherwise (memory someone else
 * grew; never touched past its header).
 */
static int add_region(uintptr_t start, uintptr_t end) {
  uintptr_t epi = g_top - HDR;
  if (end < start + MIN_BLOCK + HDR) return 0;
  size_t prev_flag = tag_of(epi) & FLAG_PREV_INUSE;
  uintptr_t b = epi;
  if (start != g_top) {
    set_tag(epi, (size_t)(start - epi) | FLAG_INUSE | FLAG_HOLE | prev_flag);
    b = start;
    prev_flag = FLAG_PREV_INUSE;
  }
  uintptr_t new_epi = end - HDR;
  set_tag(b, (size_t)(new_epi - b) | FLAG_INUSE | prev_flag);
  set_tag(new_epi, 0 | FLAG_INUSE | FLAG_PREV_INUSE);
  g_top = end;
  g_region = (size_t)(g_top - g_first);
  release_block(b);
  return 1;
}

static int heap_init(void) {
  if (g_first) return 1;
  uintptr_t lo = (backend_start() + 15) & ~(uintptr_t)15;
  if (backend_top() < (uint64_t)lo + HDR) {
    size_t need = (size_t)((uint64_t)lo + HDR - backend_top());
    if (!backend_grow((need + QE_HEAP_PAGE - 1) / QE_HEAP_PAGE)) return 0;
  }
  g_first = lo;
  g_top = lo + HDR;
  set_tag(lo, 0 | FLAG_INUSE | FLAG_PREV_INUSE); /* the epilogue, alone */
  g_region = HDR;
  g_owned_top = backend_top();
  uintptr_t top = (uintptr_t)(g_owned_top & ~(uint64_t)15);
  if ((uint64_t)top >= (uint64_t)g_top + MIN_BLOCK + HDR) add_region(g_top, top);
  return 1;
}

/* Grows the region so a block of `size` bytes fits at its end. */
static int heap_grow(size_t size) {
  uintptr_t epi = g_top - HDR;
  size_t have = 0;
  if (!prev_in_use(epi)) have = *(size_t *)(epi - sizeof(size_t)); /* last block is free */
  size_t extra = size - (have < size ? have : size) + MIN_BLOCK + HDR;
  uint64_t before = backend_top();
  /* Memory past g_top is ours unless someone else grew it since we looked. */
  uint64_t start = before == g_owned_top ? (uint64_t)g_top : (before + 15) & ~(uint64_t)15;
  /* A new region not adjacent to the old top cannot extend its free tail. */
  if (start != (uint64_t)g_top) extra = size + MIN_BLOCK + HDR;
  size_t pages = (extra + QE_HEAP_PAGE - 1) / QE_HEAP_PAGE;
  size_t generous = pages < 16 ? 16 : pages; /* at least 1 MiB at a time */
  if (!backend_grow(generous) && !backend_grow(pages)) return 0;
  g_owned_top = backend_top();
  return add_region((uintptr_t)start, (uintptr_t)(g_owned_top & ~(uint64_t)15));
}

/* A free block of at least `size` bytes, removed from its list, or 0. */
static uintptr_t find_fit(size_t size) {
  unsigned i = bin_index(size);
  /* Blocks in the request's own bin may be smaller: first fit there. */
  for (free_links *l = g_bins[i]; l; l = l->next)
    if (size_of(block_of_links(l)) >= size) {
      uintptr_t b = block_of_links(l);
      list_remove(b);
      return b;
    }
  /* Any block of a higher bin fits: take the smallest non-empty bin's first. */
  size_t higher = i + 1 < NBINS ? g_bin_map & ~(((size_t)2 << i) - 1) : 0;
  if (!higher) return 0;
  unsigned j = sizeof(size_t) == 8 ? (unsigned)__builtin_ctzll((unsigned long long)higher)
                                   : (unsigned)__builtin_ctz((unsigned)higher);
  uintptr_t b = block_of_links(g_bins[j]);
  list_remove(b);
  return b;
}

/* An in-use block of at least `size` bytes (a multiple of 16, >= MIN_BLOCK), or 0. */
static uintptr_t alloc_block(size_t size) {
  if (!heap_init()) return 0;
  uintptr_t b = find_fit(size);
  if (!b) {
    if (!heap_grow(size)) return 0;
    b = find_fit(size);
    if (!b) return 0;
  }
  take_block(b);
  return b;
}

/* Block size for a payload of `bytes`, or 0 when it cannot exist. */
static size_t block_size_for(size_t bytes) {
  if (bytes > SIZE_MAX / 2) return 0; /* no address space holds it; avoids overflow below */
  size_t size = (bytes + HDR + 15) & ~(size_t)15;
  return size < MIN_BLOCK ? MIN_BLOCK : size;
}

/* ------------------------------------------------------------ public */

void *qe_heap_malloc(size_t bytes) {
  size_t size = block_size_for(bytes ? bytes : 1);
  if (!size) return NULL;
  uintptr_t b = alloc_block(size);
  if (!b) return NULL;
  split_tail(b, size);
  return (void *)(b + HDR);
}

void *qe_heap_aligned_alloc(size_t alignment, size_t bytes) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0) return NULL;
  if (alignment <= QE_HEAP_ALIGN) return qe_heap_malloc(bytes);
  if (alignment > SIZE_MAX / 4) return NULL;
  size_t size = block_size_for(bytes ? bytes : 1);
  if (!size || size > SIZE_MAX / 2 - alignment - MIN_BLOCK) return NULL;
  /* Room for the worst front gap: up to alignment - 16 to reach an aligned
   * payload, plus up to MIN_BLOCK more when a small gap must grow into a
   * block of its own. */
  uintptr_t b = alloc_block(size + alignment + MIN_BLOCK);
  if (!b) return NULL;
  uintptr_t p = b + HDR;
  uintptr_t a = (p + alignment - 1) & ~(uintptr_t)(alignment - 1);
  while (a != p && a - p < MIN_BLOCK) a += alignment;
  if (a != p) {
    /* The front gap becomes a free block of its own. */
    uintptr_t ab = a - HDR;
    size_t gap = (size_t)(ab - b), total = size_of(b);
    set_tag(ab, (total - gap) | FLAG_INUSE); /* its left neighbour is about to be free */
    set_tag(b, gap | (tag_of(b) & FLAG_PREV_INUSE) | FLAG_INUSE);
    release_block(b);
    b = ab;
  }
  split_tail(b, size);
  return (void *)(b + HDR);
}

void qe_heap_free(void *ptr) {
  if (!ptr) return;
  release_block((uintptr_t)ptr - HDR);
}

size_t qe_heap_usable_size(const void *ptr) {
  return ptr ? size_of((uintptr_t)ptr - HDR) - HDR : 0;
}

int qe_heap_check(qe_heap_stats *stats) {
  qe_heap_stats s = {0, 0, 0, 0, 0};
  if (!g_first) {
    if (stats) *stats = s;
    return g_bin_map == 0;
  }
  int prev_used = 1;
  uintptr_t b = g_first;
  for (;;) {
    if (b & 15) return 0;
    if (b + HDR > g_top) return 0;
    size_t t = tag_of(b), size = t & ~FLAG_MASK;
    if (((t & FLAG_PREV_INUSE) != 0) != prev_used) return 0;
    if (size == 0) { /* the epilogue */
      if (!(t & FLAG_INUSE) || b + HDR != g_top) return 0;
      break;
    }
    if (t & FLAG_HOLE) {
      if (!(t & FLAG_INUSE) || size < HDR) return 0;
    } else if (size < MIN_BLOCK) {
      return 0;
    }
    if (b + size > g_top - HDR) return 0;
    if (t & FLAG_INUSE) {
      if (!(t & FLAG_HOLE)) s.used_blocks++;
      prev_used = 1;
    } else {
      if (!prev_used) return 0; /* two free neighbours */
      if (*(size_t *)(b + size - sizeof(size_t)) != size) return 0;
      s.free_blocks++;
      s.free_bytes += size;
      if (size > s.largest_free) s.largest_free = size;
      prev_used = 0;
    }
    b += size;
  }
  /* Every listed block is free, in the right bin, linked both ways; the
   * lists hold exactly the free blocks the walk found. */
  size_t listed = 0;
  for (unsigned i = 0; i < NBINS; i++) {
    if (((g_bin_map >> i) & 1) != (g_bins[i] != NULL)) return 0;
    const free_links *prev = NULL;
    for (const free_links *l = g_bins[i]; l; l = l->next) {
      uintptr_t fb = block_of_links(l);
      if (fb < g_first || fb >= g_top || in_use(fb) || bin_index(size_of(fb)) != i) return 0;
      if (l->prev != prev) return 0;
      prev = l;
      if (++listed > s.free_blocks) return 0;
    }
  }
  if (listed != s.free_blocks) return 0;
  s.region_bytes = g_region;
  if (stats) *stats = s;
  return 1;
}

/* ------------------------------------------------------------ libc names */

#if defined(QE_OWN_HEAP) && defined(__wasm__)
void *malloc(size_t bytes) { return qe_heap_malloc(bytes); }
void *aligned_alloc(size_t alignment, size_t bytes) { return qe_heap_aligned_alloc(alignment, bytes); }
void free(void *ptr) { qe_heap_free(ptr); }
#endif

#else
/* The emcc builds use emscripten's malloc; nothing to compile here. */
typedef int qe_heap_unused;
#endif
