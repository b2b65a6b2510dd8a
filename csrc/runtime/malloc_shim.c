/*
 * What Emscripten's thread-safe malloc (libdlmalloc-mt.a, its default
 * allocator, with its sbrk) needs from the runtime in the shared-memory
 * modules, which link no libc and no Emscripten JavaScript: the heap's size
 * and limit, growth, a mutex, errno, abort, memcpy/memset, and
 * aligned_alloc on top of its memalign. Any thread may then allocate and
 * free. The single-thread modules (emcc) and the native build have a libc
 * of their own and compile this file to nothing.
 *
 * Why dlmalloc and not emmalloc (libemmalloc-mt.a, the smaller one): on
 * attention-like traffic (four blocks of 64..1024 x 384 floats per call,
 * 3,000 calls, a few resident blocks) emmalloc grew memory from 16 to 230
 * MiB, as it looks at one region per size bucket before it asks sbrk for
 * more; dlmalloc stayed at 16 MiB, as did the allocator this replaced.
 */
#if defined(QE_MALLOC_SHIM)

#include <stddef.h>
#include <stdint.h>

#define PAGE ((size_t)65536)
/* One page below 4 GiB: the end of memory must fit a 32-bit pointer. */
#define MAX_PAGES ((size_t)65535)

/* Tells the JavaScript side to refresh its views of memory after growth
 * (the loader and every worker supply it). */
__attribute__((import_module("env"), import_name("emscripten_notify_memory_growth")))
void emscripten_notify_memory_growth(size_t memory_index);

size_t emscripten_get_heap_size(void) { return __builtin_wasm_memory_size(0) * PAGE; }

size_t emscripten_get_heap_max(void) { return MAX_PAGES * PAGE; }

/* Grows memory to hold at least `requested` bytes; 1 on success. Two threads
 * growing at once may both grow (memory.grow itself is atomic): a page or so
 * more than needed. */
int emscripten_resize_heap(size_t requested) {
  size_t pages = __builtin_wasm_memory_size(0);
  if (requested <= pages * PAGE) return 1;
  size_t want = requested / PAGE + (requested % PAGE != 0);
  if (want > MAX_PAGES) return 0;
  if (__builtin_wasm_memory_grow(0, want - pages) == (size_t)-1) {
    return __builtin_wasm_memory_size(0) >= want; /* another thread grew it meanwhile */
  }
  emscripten_notify_memory_growth(0);
  return 1;
}

/* The allocator's lock: a spin lock on the mutex's first word. It never
 * blocks in memory.atomic.wait, which a browser's main thread may not do;
 * what it guards is a few hundred instructions. */
int pthread_mutexattr_init(void *attr) { (void)attr; return 0; }
int pthread_mutexattr_destroy(void *attr) { (void)attr; return 0; }
int pthread_mutex_init(void *mutex, const void *attr) {
  (void)attr;
  __atomic_store_n((int *)mutex, 0, __ATOMIC_RELEASE);
  return 0;
}
int pthread_mutex_lock(void *mutex) {
  while (__atomic_exchange_n((int *)mutex, 1, __ATOMIC_ACQUIRE) != 0) {
    while (__atomic_load_n((int *)mutex, __ATOMIC_RELAXED) != 0) {
    }
  }
  return 0;
}
int pthread_mutex_unlock(void *mutex) {
  __atomic_store_n((int *)mutex, 0, __ATOMIC_RELEASE);
  return 0;
}

/* The allocator sets errno only on failure (ENOMEM), and no entry reads it:
 * one shared int rather than thread-local storage, which would need TLS set
 * up in every worker. */
int *__errno_location(void) {
  static int error_number;
  return &error_number;
}

_Noreturn void abort(void) { __builtin_trap(); }

/* With bulk memory these builtins compile to memory.copy and memory.fill. */
void *memcpy(void *restrict dst, const void *restrict src, size_t n) {
  __builtin_memcpy(dst, src, n);
  return dst;
}

void *memset(void *dst, int c, size_t n) {
  __builtin_memset(dst, c, n);
  return dst;
}

/* C11's aligned_alloc, which libc (not linked) would define over memalign. */
void *memalign(size_t alignment, size_t bytes);
void *aligned_alloc(size_t alignment, size_t bytes) { return memalign(alignment, bytes); }

#endif
