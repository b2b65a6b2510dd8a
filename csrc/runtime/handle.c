#include "runtime/handle.h"

#include <stdlib.h>
#include <string.h>

#include "qe_api.h"

void *qe_handle_new(uint32_t type, uint32_t version, size_t bytes) {
  if (bytes < sizeof(qe_handle) || bytes > UINT32_MAX - 15) return NULL;
  qe_handle *h = aligned_alloc(16, (bytes + 15) & ~(size_t)15);
  if (!h) return NULL;
  memset(h, 0, bytes);
  h->type = type;
  h->version = version;
  h->bytes = (uint32_t)bytes;
  h->magic = QE_HANDLE_LIVE;
  return h;
}

int qe_handle_check(const void *p, uint32_t type, uint32_t version, size_t bytes) {
  if (!p) return QE_ERR_NULL;
  if (((uintptr_t)p & 15) != 0) return QE_ERR_HANDLE;
#if defined(__wasm__)
  /* Reading past the end of memory would trap: refuse such a pointer first. */
  if ((uint64_t)(uintptr_t)p + bytes > (uint64_t)__builtin_wasm_memory_size(0) * 65536u) return QE_ERR_HANDLE;
#endif
  const qe_handle *h = p;
  if (h->magic != QE_HANDLE_LIVE || h->type != type || h->version != version || h->bytes != bytes) {
    return QE_ERR_HANDLE;
  }
  return QE_OK;
}

void qe_handle_free(void *p) {
  if (!p) return;
  /* volatile: a store just before free is otherwise a dead store the compiler drops. */
  *(volatile uint32_t *)&((qe_handle *)p)->magic = QE_HANDLE_DEAD;
  free(p);
}
