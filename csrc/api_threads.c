/*
 * Attention split across threads that share one linear memory (the
 * multi-threaded module, wasm/qe-flash-simd-mt.wasm; the declarations and
 * the protocol are in qe_api.h, "Attention jobs").
 *
 * A job holds one validated problem, a counter from which participants grab
 * tasks one at a time (the kernel's (query tile, head) tasks are
 * independent, and every task is computed whole by one participant with the
 * same code, so the output does not depend on who ran what), and a counter
 * of participants that are done. Workspaces come from the arena, one per
 * participant that actually runs a task, claimed on its first task.
 *
 * The same C builds without the atomics feature (the two single-threaded
 * modules, the native tests), where LLVM lowers the atomic builtins to plain
 * loads and stores and the participants simply run one after the other.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "api_internal.h"
#include "arena.h"
#include "attention/flash_attention.h"
#include "qe_api.h"

struct qe_attention_job {
  /* Cache line 0: touched by every participant once per task. */
  int32_t next_task;
  int32_t pad0[15];
  /* Cache line 1: touched once per participant. */
  int32_t finished;   /* participants done (the address JavaScript waits on) */
  int32_t slots_used; /* workspaces claimed */
  int32_t pad1[14];
  /* Read-only once created. */
  qe_attention_problem p;
  int32_t workers;
  int32_t task_count;
  int32_t slots;      /* min(workers, task_count) */
  size_t stride;      /* bytes between workspaces, a multiple of 64 */
  unsigned char *workspace;
  int32_t joined[QE_ATTENTION_JOB_MAX_WORKERS];
};

int qe_thread_support(void) {
#if defined(__wasm_atomics__)
  return 1;
#else
  return 0;
#endif
}

qe_attention_job *qe_attention_job_create(const float *q, const float *k, const float *v, float *o,
                                          int32_t nq, int32_t nk, int32_t dim, int32_t heads,
                                          float scale, int32_t causal, int32_t valid_k,
                                          int32_t block_q, int32_t block_k, int32_t workers) {
  /* The same checks as qe_attention, which reports the reason as a status. */
  qe_attention_problem p;
  if (qe_attention_problem_init(&p, q, k, v, o, nq, nk, dim, heads, scale, causal, valid_k, block_q,
                                block_k) != QE_OK)
    return NULL;
  if (workers < 1 || workers > QE_ATTENTION_JOB_MAX_WORKERS) return NULL;

  size_t tasks = qe_attention_task_count(&p);
  if (tasks == 0 || tasks > INT32_MAX) return NULL;
  int32_t slots = (size_t)workers < tasks ? workers : (int32_t)tasks;
  size_t stride = qe_arena_round(qe_attention_workspace_bytes(&p));
  if (stride == 0) stride = 64;
  if (stride > SIZE_MAX / (size_t)slots) return NULL;

  qe_attention_job *job = aligned_alloc(64, (sizeof(qe_attention_job) + 63) & ~(size_t)63);
  if (!job) return NULL;
  /* Every participant's workspace in one arena block, so the arena's
   * accounting (qe_workspace_last_bytes) reports all of them. */
  unsigned char *ws = qe_arena_acquire(stride * (size_t)slots);
  if (!ws) {
    free(job);
    return NULL;
  }
  *job = (qe_attention_job){
      .p = p,
      .workers = workers,
      .task_count = (int32_t)tasks,
      .slots = slots,
      .stride = stride,
      .workspace = ws,
  };
  /* Publish the initialized job before any participant can see it (the
   * caller hands the pointer to the workers after this returns). */
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  return job;
}

int32_t qe_attention_job_work(qe_attention_job *job, int32_t worker) {
  if (!job) return QE_ERR_NULL;
  if (worker < 0 || worker >= job->workers) return QE_ERR_ARGUMENT;
  if (__atomic_exchange_n(&job->joined[worker], 1, __ATOMIC_ACQ_REL) != 0) return QE_ERR_ARGUMENT;

  int32_t ran = 0;
  unsigned char *ws = NULL;
  for (;;) {
    int32_t t = __atomic_fetch_add(&job->next_task, 1, __ATOMIC_RELAXED);
    if (t >= job->task_count) break;
    if (!ws) {
      int32_t slot = __atomic_fetch_add(&job->slots_used, 1, __ATOMIC_RELAXED);
      /* At most `slots` participants can win a task, so slot < slots. */
      ws = job->workspace + (size_t)slot * job->stride;
    }
    /* Last task first: under a causal mask the last query tiles cost the
     * most, and starting with them balances the participants' finish. */
    size_t task = (size_t)(job->task_count - 1 - t);
    qe_flash_attention_forward(&job->p, task, task + 1, ws);
    ran++;
  }
  /* Release: this participant's output is visible to whoever sees the count. */
  __atomic_fetch_add(&job->finished, 1, __ATOMIC_RELEASE);
#if defined(__wasm_atomics__)
  __builtin_wasm_memory_atomic_notify(&job->finished, UINT32_MAX);
#endif
  return ran;
}

int32_t qe_attention_job_finished(const qe_attention_job *job) {
  return job ? __atomic_load_n(&job->finished, __ATOMIC_ACQUIRE) : 0;
}

int32_t *qe_attention_job_finished_address(qe_attention_job *job) { return job ? &job->finished : NULL; }

int32_t qe_attention_job_task_count(const qe_attention_job *job) { return job ? job->task_count : 0; }

int32_t qe_attention_job_tile_q(const qe_attention_job *job) { return job ? (int32_t)job->p.tile_q : 0; }

int32_t qe_attention_job_tile_k(const qe_attention_job *job) { return job ? (int32_t)job->p.tile_k : 0; }

int qe_attention_job_destroy(qe_attention_job *job) {
  if (!job) return QE_OK;
  /* Refuse while a participant that joined is still running. */
  int32_t joined = 0;
  for (int32_t w = 0; w < job->workers; w++) joined += __atomic_load_n(&job->joined[w], __ATOMIC_ACQUIRE);
  if (__atomic_load_n(&job->finished, __ATOMIC_ACQUIRE) < joined) return QE_ERR_ARGUMENT;
  free(job);
  return QE_OK;
}
