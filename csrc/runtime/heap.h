/*
 * A small general-purpose allocator for the multi-threaded module
 * (wasm/qe-flash-simd-mt.wasm), which links no libc and so has no malloc.
 *
 * Design: boundary tags (a 16-byte header on every block, a size footer on
 * free blocks), segregated explicit free lists by power of two, immediate
 * coalescing with both neighbours on free, splitting on allocation, and
 * growth of the region at its top end. Payloads are 16-byte aligned;
 * qe_heap_aligned_alloc gives any power-of-two alignment.
 *
 * Where the region comes from:
 *   - QE_OWN_HEAP on wasm: from __heap_base to the end of linear memory,
 *     grown with memory.grow. This build also defines malloc, free and
 *     aligned_alloc on top of it (they are what arena.c and api.c call).
 *   - a native build (the C tests): a static buffer, "grown" 64 KiB page by
 *     page so the growth path is exercised, and failing cleanly when full.
 *   - the two emcc builds: nothing (they keep emscripten's malloc).
 *
 * NOT THREAD-SAFE, by design: only the thread that owns the module (the
 * JavaScript main thread) ever allocates or frees. Workers run kernels over
 * memory the main thread allocated for them and never call into the heap.
 */
#ifndef QE_RUNTIME_HEAP_H
#define QE_RUNTIME_HEAP_H

#include <stddef.h>

#if defined(QE_OWN_HEAP) || !defined(__wasm__)
#  define QE_HEAP_AVAILABLE 1

/* Alignment of every payload and granularity of every block size. */
#  define QE_HEAP_ALIGN 16u
/* Region growth granularity (one WebAssembly page). */
#  define QE_HEAP_PAGE 65536u

/* At least `bytes` (0 is treated as 1), 16-byte aligned; NULL when memory
 * runs out or the request overflows. */
void *qe_heap_malloc(size_t bytes);

/* As qe_heap_malloc, aligned to `alignment` (a power of two; anything up to
 * 16 behaves as 16). NULL for an alignment that is not a power of two. */
void *qe_heap_aligned_alloc(size_t alignment, size_t bytes);

/* Returns a block from qe_heap_malloc / qe_heap_aligned_alloc. NULL is a no-op. */
void qe_heap_free(void *ptr);

/* Usable bytes of a live block (at least what was asked for). */
size_t qe_heap_usable_size(const void *ptr);

typedef struct {
  size_t region_bytes;  /* bytes the heap spans (grows, never shrinks) */
  size_t free_bytes;    /* total size of free blocks, headers included */
  size_t free_blocks;   /* number of free blocks */
  size_t largest_free;  /* largest free block, header included */
  size_t used_blocks;   /* blocks handed out and not yet freed */
} qe_heap_stats;

/* Walks the whole heap, checking every invariant (sizes, tags, footers, no
 * two free neighbours, free lists consistent with the blocks). Returns 1 when
 * all hold and fills *stats (may be NULL); 0 on the first violation. */
int qe_heap_check(qe_heap_stats *stats);

#  if !defined(__wasm__)
/* Native builds only: forgets every block and starts over on a region of at
 * most `limit_bytes` (0: the whole static buffer). For tests. */
void qe_heap_reset_for_tests(size_t limit_bytes);
#  endif
#endif

#endif /* QE_RUNTIME_HEAP_H */
