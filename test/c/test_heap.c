/*
 * The multi-threaded module's allocator (csrc/runtime/heap.c), natively: its
 * static-buffer backend stands in for linear memory and memory.grow. Every
 * test starts from an empty heap and ends with the full invariant walk.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "qe_test.h"
#include "runtime/heap.h"

static uint64_t g_state = 1;
static uint32_t next_u32(void) {
  g_state ^= g_state << 13;
  g_state ^= g_state >> 7;
  g_state ^= g_state << 17;
  return (uint32_t)(g_state >> 16);
}

static void check_heap(const char *when) {
  qe_heap_stats s;
  QE_CHECK(qe_heap_check(&s), "heap invariants broken %s", when);
}

static int is_aligned(const void *p, size_t a) { return ((uintptr_t)p & (a - 1)) == 0; }

QE_TEST(heap_malloc_aligns_and_fits) {
  qe_heap_reset_for_tests(0);
  static const size_t sizes[] = {0, 1, 7, 15, 16, 17, 31, 32, 33, 100, 4095, 4096, 65536, 70000, 1 << 20};
  void *p[sizeof sizes / sizeof sizes[0]];
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    p[i] = qe_heap_malloc(sizes[i]);
    QE_CHECK(p[i] != NULL, "malloc(%zu) failed", sizes[i]);
    if (!p[i]) continue;
    QE_CHECK(is_aligned(p[i], 16), "malloc(%zu) = %p not 16-aligned", sizes[i], p[i]);
    QE_CHECK(qe_heap_usable_size(p[i]) >= sizes[i], "usable %zu < %zu", qe_heap_usable_size(p[i]), sizes[i]);
    memset(p[i], 0xA5, sizes[i]);
  }
  check_heap("after mallocs");
  qe_heap_stats s;
  qe_heap_check(&s);
  QE_CHECK(s.used_blocks == sizeof sizes / sizeof sizes[0], "used_blocks %zu", s.used_blocks);
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) qe_heap_free(p[i]);
  qe_heap_free(NULL);
  check_heap("after frees");
  qe_heap_check(&s);
  QE_CHECK(s.used_blocks == 0 && s.free_blocks == 1, "used %zu free %zu after freeing all", s.used_blocks,
           s.free_blocks);
}

QE_TEST(heap_aligned_alloc_honours_alignment) {
  qe_heap_reset_for_tests(0);
  static const size_t aligns[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 4096, 65536};
  void *live[96];
  size_t n = 0;
  for (int round = 0; round < 4; round++) {
    for (size_t a = 0; a < sizeof aligns / sizeof aligns[0]; a++) {
      size_t bytes = 1 + (next_u32() % 3000);
      void *p = qe_heap_aligned_alloc(aligns[a], bytes);
      QE_CHECK(p != NULL, "aligned_alloc(%zu, %zu) failed", aligns[a], bytes);
      if (!p) continue;
      size_t want = aligns[a] < 16 ? 16 : aligns[a];
      QE_CHECK(is_aligned(p, want), "aligned_alloc(%zu) = %p", aligns[a], p);
      QE_CHECK(qe_heap_usable_size(p) >= bytes, "usable %zu < %zu", qe_heap_usable_size(p), bytes);
      memset(p, (int)a, bytes);
      live[n++] = p;
      /* Interleave small blocks so the gaps before aligned ones vary. */
      void *small = qe_heap_malloc(next_u32() % 40);
      QE_CHECK(small != NULL, "small malloc failed");
      live[n++] = small;
    }
    check_heap("after aligned round");
  }
  QE_CHECK(qe_heap_aligned_alloc(0, 16) == NULL, "alignment 0 accepted");
  QE_CHECK(qe_heap_aligned_alloc(48, 16) == NULL, "alignment 48 accepted");
  QE_CHECK(qe_heap_aligned_alloc(3, 16) == NULL, "alignment 3 accepted");
  for (size_t i = 0; i < n; i++) qe_heap_free(live[i]);
  check_heap("after freeing aligned blocks");
}

/* Random alloc/free sequences: alignment, no overlap (every block carries its
 * own fill pattern, verified before it is freed and at checkpoints), and the
 * invariant walk every so often. */
typedef struct {
  unsigned char *p;
  size_t bytes;
  unsigned char fill;
} live_block;

static int verify_block(const live_block *b) {
  for (size_t i = 0; i < b->bytes; i++)
    if (b->p[i] != (unsigned char)(b->fill + i * 7)) return 0;
  return 1;
}

static void fill_block(live_block *b) {
  for (size_t i = 0; i < b->bytes; i++) b->p[i] = (unsigned char)(b->fill + i * 7);
}

static int cmp_ptr(const void *x, const void *y) {
  const live_block *a = x, *b = y;
  return a->p < b->p ? -1 : a->p > b->p;
}

QE_TEST(heap_random_sequences_keep_blocks_disjoint) {
  enum { SLOTS = 300, OPS = 30000 };
  static live_block live[SLOTS];
  for (int seed = 1; seed <= 3; seed++) {
    qe_heap_reset_for_tests(0);
    g_state = 0x1234567ull * (uint64_t)seed;
    memset(live, 0, sizeof live);
    size_t failures = 0;
    for (int op = 0; op < OPS; op++) {
      live_block *b = &live[next_u32() % SLOTS];
      if (b->p) {
        if (!verify_block(b)) failures++;
        qe_heap_free(b->p);
        b->p = NULL;
        continue;
      }
      uint32_t r = next_u32();
      size_t bytes;
      switch (r % 10) {
        case 0: bytes = next_u32() % 200000; break;        /* large */
        case 1: case 2: bytes = next_u32() % 8192; break;  /* medium */
        default: bytes = next_u32() % 300; break;          /* small */
      }
      size_t align = (r >> 8) % 4 == 0 ? (size_t)1 << (4 + (next_u32() % 9)) : 16;
      void *p = align > 16 ? qe_heap_aligned_alloc(align, bytes) : qe_heap_malloc(bytes);
      if (!p) {
        failures++;
        continue;
      }
      if (!is_aligned(p, align)) failures++;
      b->p = p;
      b->bytes = bytes;
      b->fill = (unsigned char)(next_u32() & 0xff);
      fill_block(b);
      if (op % 2000 == 0) {
        check_heap("during random sequence");
        for (size_t i = 0; i < SLOTS; i++)
          if (live[i].p && !verify_block(&live[i])) failures++;
      }
    }
    QE_CHECK(failures == 0, "seed %d: %zu failed allocations or corrupted blocks", seed, failures);
    /* No two live blocks overlap. */
    static live_block sorted[SLOTS];
    size_t n = 0;
    for (size_t i = 0; i < SLOTS; i++)
      if (live[i].p) sorted[n++] = live[i];
    qsort(sorted, n, sizeof sorted[0], cmp_ptr);
    for (size_t i = 1; i < n; i++)
      QE_CHECK(sorted[i - 1].p + sorted[i - 1].bytes <= sorted[i].p, "blocks %p+%zu and %p overlap",
               (void *)sorted[i - 1].p, sorted[i - 1].bytes, (void *)sorted[i].p);
    for (size_t i = 0; i < SLOTS; i++)
      if (live[i].p) {
        QE_CHECK(verify_block(&live[i]), "block %zu corrupted at the end", i);
        qe_heap_free(live[i].p);
        live[i].p = NULL;
      }
    check_heap("after freeing everything");
    qe_heap_stats s;
    qe_heap_check(&s);
    QE_CHECK(s.free_blocks == 1 && s.used_blocks == 0, "seed %d: %zu free blocks, %zu used at the end", seed,
             s.free_blocks, s.used_blocks);
  }
}

QE_TEST(heap_coalesces_and_reuses_freed_space) {
  qe_heap_reset_for_tests(0);
  enum { N = 64 };
  void *p[N];
  for (int i = 0; i < N; i++) p[i] = qe_heap_malloc(1000);
  qe_heap_stats before;
  qe_heap_check(&before);
  /* Free in an order that exercises merging left, right and both. */
  for (int i = 0; i < N; i += 2) qe_heap_free(p[i]);
  check_heap("after freeing even blocks");
  qe_heap_stats s;
  qe_heap_check(&s);
  QE_CHECK(s.free_blocks >= N / 2, "%zu free blocks after freeing every other", s.free_blocks);
  for (int i = 1; i < N; i += 2) qe_heap_free(p[i]);
  check_heap("after freeing odd blocks");
  qe_heap_check(&s);
  QE_CHECK(s.free_blocks == 1, "%zu free blocks after freeing all (no coalescing?)", s.free_blocks);
  /* One allocation the size of all of them together now fits without growth. */
  void *big = qe_heap_malloc((size_t)N * 1000);
  QE_CHECK(big != NULL, "big malloc failed");
  qe_heap_stats after;
  qe_heap_check(&after);
  QE_CHECK(after.region_bytes == before.region_bytes, "region grew from %zu to %zu instead of reusing",
           before.region_bytes, after.region_bytes);
  QE_CHECK(big == p[0], "reuse expected at the start of the coalesced space (%p vs %p)", big, p[0]);
  qe_heap_free(big);
  /* Repeated alloc/free of the same sizes must not grow the region. */
  for (int round = 0; round < 100; round++) {
    void *a = qe_heap_aligned_alloc(64, 50000), *b = qe_heap_malloc(3000), *c = qe_heap_aligned_alloc(64, 7000);
    QE_CHECK(a && b && c, "round %d failed", round);
    qe_heap_free(b), qe_heap_free(a), qe_heap_free(c);
  }
  qe_heap_check(&s);
  QE_CHECK(s.region_bytes == after.region_bytes, "region grew under a steady pattern: %zu -> %zu",
           after.region_bytes, s.region_bytes);
  check_heap("at the end");
}

QE_TEST(heap_fails_cleanly_when_memory_runs_out) {
  qe_heap_reset_for_tests((size_t)1 << 20);
  QE_CHECK(qe_heap_malloc((size_t)2 << 20) == NULL, "2 MiB from a 1 MiB heap");
  QE_CHECK(qe_heap_malloc(SIZE_MAX) == NULL, "SIZE_MAX accepted");
  QE_CHECK(qe_heap_malloc(SIZE_MAX - 8) == NULL, "SIZE_MAX - 8 accepted");
  QE_CHECK(qe_heap_aligned_alloc(64, SIZE_MAX - 100) == NULL, "aligned SIZE_MAX accepted");
  QE_CHECK(qe_heap_aligned_alloc((size_t)1 << (sizeof(size_t) * 8 - 1), 16) == NULL, "huge alignment accepted");
  check_heap("after failed requests");
  /* Fill it up with 64 KiB blocks, then check it is whole and reusable. */
  void *p[32];
  int n = 0;
  while (n < 32 && (p[n] = qe_heap_malloc(60000)) != NULL) n++;
  QE_CHECK(n >= 10 && n < 32, "%d blocks of 60000 fit in 1 MiB", n);
  check_heap("when full");
  for (int i = 0; i < n; i++) qe_heap_free(p[i]);
  void *again = qe_heap_malloc(900000);
  QE_CHECK(again != NULL, "the whole heap is not reusable after freeing");
  qe_heap_free(again);
  check_heap("at the end");
  qe_heap_reset_for_tests(0);
}

QE_SUITE(qe_suite_heap, "heap", QE_CASE(heap_malloc_aligns_and_fits),
         QE_CASE(heap_aligned_alloc_honours_alignment),
         QE_CASE(heap_random_sequences_keep_blocks_disjoint),
         QE_CASE(heap_coalesces_and_reuses_freed_space),
         QE_CASE(heap_fails_cleanly_when_memory_runs_out));
