#include "arena.h"

#include <stdint.h>
#include <stdlib.h>

#define QE_ARENA_ALIGN 64u

static unsigned char *g_block;
static size_t g_reserved;
static size_t g_last;
static size_t g_high_water;

size_t qe_arena_round(size_t bytes) {
  return (bytes + (QE_ARENA_ALIGN - 1)) & ~(size_t)(QE_ARENA_ALIGN - 1);
}

void *qe_arena_acquire(size_t bytes) {
  bytes = qe_arena_round(bytes);
  if (bytes > g_reserved) {
    /* Grow to what this call needs; the old contents are dead, so no copy. */
    free(g_block);
    g_block = aligned_alloc(QE_ARENA_ALIGN, bytes);
    g_reserved = g_block ? bytes : 0;
    if (!g_block) return NULL;
  }
  g_last = bytes;
  if (bytes > g_high_water) g_high_water = bytes;
  return g_block;
}

void *qe_arena_take(qe_arena_cursor *cursor, size_t bytes) {
  size_t need = qe_arena_round(bytes);
  if (need > cursor->size - cursor->used) return NULL;
  void *p = cursor->base + cursor->used;
  cursor->used += need;
  return p;
}

size_t qe_arena_last_bytes(void) { return g_last; }
size_t qe_arena_high_water_bytes(void) { return g_high_water; }
void qe_arena_reset_high_water(void) { g_high_water = 0; }
size_t qe_arena_reserved_bytes(void) { return g_reserved; }

void qe_arena_release(void) {
  free(g_block);
  g_block = NULL;
  g_reserved = 0;
}
