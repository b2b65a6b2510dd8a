/*
 * Handles: objects C owns across calls (a resident corpus, an index, a
 * cache) and JavaScript holds as an opaque pointer. Every such object
 * starts with a qe_handle header, so an entry can tell a live object of its
 * kind from a null, stale, foreign or corrupt pointer and return
 * QE_ERR_HANDLE instead of reading garbage or trapping.
 *
 * The pattern, for an object kind "thing" (see csrc/search/corpus.c):
 *   - a type tag QE_HANDLE_THING below and a layout version in its .c file;
 *   - qe_thing_create(..., qe_thing **out): checks its arguments, allocates
 *     with qe_handle_new, returns a status and the handle through *out;
 *   - every entry using it starts with qe_handle_check (kind, version, size);
 *   - qe_thing_destroy: qe_handle_check, frees what the object owns, then
 *     qe_handle_free, which marks the header dead before freeing it, so a
 *     second destroy, or use after destroy while the memory is not yet
 *     reused, is QE_ERR_HANDLE. (Once reused by another object of the same
 *     kind, a stale handle cannot be told apart: JavaScript drops its
 *     handle on destroy, see js/corpus.ts.)
 *   - nothing else in the object is visible to JavaScript.
 */
#ifndef QE_RUNTIME_HANDLE_H
#define QE_RUNTIME_HANDLE_H

#include <stddef.h>
#include <stdint.h>

typedef struct qe_handle {
  uint32_t magic;   /* QE_HANDLE_LIVE while the object lives */
  uint32_t type;    /* the object's kind: one of the tags below */
  uint32_t version; /* layout version of that kind */
  uint32_t bytes;   /* size of the whole object struct */
} qe_handle;

#define QE_HANDLE_LIVE 0x51454831u /* "QEH1" */
#define QE_HANDLE_DEAD 0x51454830u /* "QEH0": destroyed */

/* One tag per object kind; new rooms add theirs here. */
enum {
  QE_HANDLE_CORPUS = 1,
  QE_HANDLE_HNSW = 2,
  QE_HANDLE_LORA = 3,
  QE_HANDLE_CACHE = 4
};

/* A zeroed object of `bytes` (>= sizeof(qe_handle)), 16-byte aligned, its
 * header filled in; NULL when memory runs out. */
void *qe_handle_new(uint32_t type, uint32_t version, size_t bytes);

/* QE_OK when h is a live object of this kind, version and size;
 * QE_ERR_NULL for NULL; QE_ERR_HANDLE otherwise (also, in wasm, for a
 * pointer that is misaligned or outside memory). */
int qe_handle_check(const void *h, uint32_t type, uint32_t version, size_t bytes);

/* Marks a checked object dead and frees it. */
void qe_handle_free(void *h);

#endif /* QE_RUNTIME_HANDLE_H */
