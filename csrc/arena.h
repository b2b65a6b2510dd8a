/*
 * The kernels' working memory: one reusable block, grown on demand and kept
 * between calls, with a record of how much each call used. Entries size
 * their whole need up front, take it with qe_arena_acquire, and carve it up
 * with qe_arena_take; nothing in it outlives the call.
 */
#ifndef QE_ARENA_H
#define QE_ARENA_H

#include <stddef.h>

typedef struct {
  unsigned char *base;
  size_t used;
  size_t size;
} qe_arena_cursor;

/* Rounds a byte count up to the arena's alignment (64 bytes, one cache line). */
size_t qe_arena_round(size_t bytes);

/* A block of at least `bytes` for the current call, or NULL when memory runs
 * out. Records the call's use for the high-water mark. */
void *qe_arena_acquire(size_t bytes);

/* The next `bytes` of a block taken with qe_arena_acquire, 64-byte aligned. */
void *qe_arena_take(qe_arena_cursor *cursor, size_t bytes);

size_t qe_arena_last_bytes(void);
size_t qe_arena_high_water_bytes(void);
void qe_arena_reset_high_water(void);
size_t qe_arena_reserved_bytes(void);
void qe_arena_release(void);

#endif /* QE_ARENA_H */
