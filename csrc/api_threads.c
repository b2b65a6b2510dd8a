/*
 * Attention and similarity search split across threads that share one
 * linear memory (the multi-threaded modules; the declarations and the
 * protocol are in qe_api.h, "Jobs").
 *
 * A job holds one validated problem, a counter from which participants grab
 * tasks one at a time, and a counter of participants that are done. Every
 * task is computed whole by one participant with the same code, so the
 * output does not depend on who ran what:
 *   - attention: the kernel's (query tile, head) tasks, each writing its own
 *     part of the output;
 *   - search: ranges of corpus panels, each writing every query's top k of
 *     its range to its own part list; qe_search_job_merge then merges the
 *     lists in range order, exactly as one pass would have ranked them.
 * Workspaces come from the arena, one per participant that actually runs a
 * task, claimed on its first task.
 *
 * A participant can die mid-job (a worker thread terminated or crashed). So
 * that the caller can finish its share, every task has a state: unclaimed,
 * claimed by participant w, or done. A task is claimed by compare-exchange
 * after the counter hands it out, so a participant and the rescuer
 * (qe_job_rescue) never both run it; a task is marked done only once its
 * output is written. Each participant is "joined" once: not joined, working,
 * finished; whoever moves it to finished (itself, or the rescuer) counts it.
 *
 * The same C builds without the atomics feature for the two single-threaded
 * modules, where LLVM lowers the atomic builtins to plain loads and stores
 * and the participants simply run one after the other. The native tests
 * build it with the host's real atomics and run participants on POSIX
 * threads, under ThreadSanitizer too (make test-tsan).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"
#include "arena.h"
#include "attention/flash_attention.h"
#include "qe_api.h"
#include "search/similarity.h"

/* Publishes an initialized job before the caller hands its pointer to other
 * threads. ThreadSanitizer does not model standalone fences (gcc refuses
 * them); there the hand-off itself (pthread_create) orders it. */
#if defined(__SANITIZE_THREAD__)
#  define publish_job() ((void)0)
#else
#  define publish_job() __atomic_thread_fence(__ATOMIC_SEQ_CST)
#endif

/* Largest part list (indices or scores) a search job takes; a larger
 * search runs on one thread, where qe_cosine_topk needs no part lists. */
#define QE_SEARCH_JOB_MAX_LIST_BYTES ((uint64_t)256 << 20)

typedef struct {
  const float *queries, *corpus, *inv_norms;
  float *q_inv; /* the queries' inverse norms (arena) */
  size_t nq, n, dim, k;
  size_t panels_per_task;
  int32_t *part_idx; /* [task][nq][k] (arena) */
  float *part_score;
  int32_t *out_idx;
  float *out_score;
} search_problem;

/* Task states (job->task_state): unclaimed, claimed by participant w (w + 1),
 * claimed by the rescuer, done. */
#define TASK_UNCLAIMED 0
#define TASK_RESCUER (QE_JOB_MAX_WORKERS + 1)
#define TASK_DONE (-1)
/* Participant states (job->joined). */
#define PART_IDLE 0
#define PART_WORKING 1
#define PART_FINISHED 2

struct qe_job {
  /* Cache line 0: touched by every participant once per task. */
  int32_t next_task;
  int32_t pad0[15];
  /* Cache line 1: touched once per participant. */
  int32_t finished;   /* participants done (the address JavaScript waits on) */
  int32_t slots_used; /* workspaces claimed */
  int32_t pad1[14];
  /* Read-only once created. */
  enum { JOB_ATTENTION, JOB_SEARCH, JOB_TASKS } kind;
  qe_attention_problem p; /* JOB_ATTENTION */
  search_problem s;       /* JOB_SEARCH */
  qe_task_fn run;         /* JOB_TASKS: run(ctx, task, workspace) */
  const void *ctx;
  int32_t workers;
  int32_t task_count;
  int32_t slots;      /* min(workers, task_count) */
  size_t stride;      /* bytes between workspaces, a multiple of 64 */
  unsigned char *workspace;
  int32_t joined[QE_JOB_MAX_WORKERS]; /* PART_* */
  int32_t task_state[];               /* task_count entries, TASK_* (by claim order) */
};

int qe_thread_support(void) {
#if defined(__wasm_atomics__)
  return 1;
#else
  return 0;
#endif
}

/* A job of `tasks` tasks for `workers` participants, each that runs a task
 * with `workspace_bytes` of its own after `shared_bytes` of the arena; NULL
 * when that cannot be had. */
static qe_job *job_new(int32_t workers, size_t tasks, size_t shared_bytes, size_t workspace_bytes,
                       unsigned char **shared) {
  if (workers < 1 || workers > QE_JOB_MAX_WORKERS) return NULL;
  if (tasks == 0 || tasks > INT32_MAX) return NULL;
  int32_t slots = (size_t)workers < tasks ? workers : (int32_t)tasks;
  size_t stride = qe_arena_round(workspace_bytes);
  if (stride == 0) stride = 64;
  if (shared_bytes > SIZE_MAX - 64) return NULL;
  shared_bytes = qe_arena_round(shared_bytes);
  if (stride > (SIZE_MAX - shared_bytes) / (size_t)slots) return NULL;

  if (tasks > (SIZE_MAX - sizeof(qe_job) - 63) / sizeof(int32_t)) return NULL;
  const size_t job_bytes = sizeof(qe_job) + tasks * sizeof(int32_t);
  qe_job *job = aligned_alloc(64, (job_bytes + 63) & ~(size_t)63);
  if (!job) return NULL;
  /* Every participant's workspace in one arena block, so the arena's
   * accounting (qe_workspace_last_bytes) reports all of them. */
  unsigned char *block = qe_arena_acquire(shared_bytes + stride * (size_t)slots);
  if (!block) {
    free(job);
    return NULL;
  }
  *job = (qe_job){
      .workers = workers,
      .task_count = (int32_t)tasks,
      .slots = slots,
      .stride = stride,
      .workspace = block + shared_bytes,
  };
  memset(job->task_state, 0, tasks * sizeof(int32_t)); /* TASK_UNCLAIMED */
  *shared = block;
  return job;
}

qe_job *qe_attention_job_create(const float *q, const float *k, const float *v, float *o,
                                          int32_t nq, int32_t nk, int32_t dim, int32_t heads,
                                          float scale, int32_t causal, int32_t valid_k,
                                          int32_t block_q, int32_t block_k, int32_t workers) {
  /* The same checks as qe_attention, which reports the reason as a status. */
  qe_attention_problem p;
  if (qe_attention_problem_init(&p, q, k, v, o, nq, nk, dim, heads, scale, causal, valid_k, block_q,
                                block_k) != QE_OK)
    return NULL;
  unsigned char *shared;
  qe_job *job = job_new(workers, qe_attention_task_count(&p), 0, qe_attention_workspace_bytes(&p), &shared);
  if (!job) return NULL;
  job->kind = JOB_ATTENTION;
  job->p = p;
  /* Publish the initialized job before any participant can see it (the
   * caller hands the pointer to the workers after this returns). */
  publish_job();
  return job;
}

qe_job *qe_search_job_create(const float *queries, int32_t nq, const float *corpus,
                             const float *inv_norms, int32_t n, int32_t dim, int32_t k,
                             int32_t *out_idx, float *out_score, int32_t workers) {
  /* The same checks as qe_cosine_topk. */
  if (qe_cosine_topk_check(queries, nq, corpus, inv_norms, n, dim, k, out_idx, out_score) != QE_OK)
    return NULL;
  if (workers < 1 || workers > QE_JOB_MAX_WORKERS) return NULL;
  /* About four ranges per participant, so one held up costs little. */
  const size_t panels = ((size_t)n + QE_CORPUS_PANEL - 1) / QE_CORPUS_PANEL;
  size_t tasks = 4 * (size_t)workers;
  if (tasks > panels) tasks = panels;
  if (tasks > QE_SIMILARITY_MAX_PARTS) tasks = QE_SIMILARITY_MAX_PARTS;
  const size_t per_task = (panels + tasks - 1) / tasks;
  tasks = (panels + per_task - 1) / per_task;
  /* The part lists, sized in 64 bits: on wasm32 they could wrap size_t
   * (8 tasks x 8191 queries x k = 8192 is 2^31 bytes each). */
  const uint64_t list = (uint64_t)nq * (uint64_t)k;
  const uint64_t lists_bytes = (uint64_t)tasks * list * sizeof(int32_t);
  if (lists_bytes > QE_SEARCH_JOB_MAX_LIST_BYTES) return NULL;
  const size_t q_inv_bytes = qe_arena_round((size_t)nq * sizeof(float));
  const size_t idx_bytes = qe_arena_round((size_t)lists_bytes);
  const size_t score_bytes = idx_bytes;
  unsigned char *shared;
  qe_job *job = job_new(workers, tasks, q_inv_bytes + idx_bytes + score_bytes,
                        qe_f32_cosine_topk_workspace_bytes((size_t)nq, (size_t)dim), &shared);
  if (!job) return NULL;
  float *q_inv = (float *)shared;
  if (qe_f32_row_inv_norms((size_t)nq, (size_t)dim, queries, (size_t)dim, q_inv) != 0) {
    free(job); /* a query whose norm float cannot hold, as qe_cosine_topk rejects it */
    return NULL;
  }
  job->kind = JOB_SEARCH;
  job->s = (search_problem){
      .queries = queries, .corpus = corpus, .inv_norms = inv_norms, .q_inv = q_inv,
      .nq = (size_t)nq, .n = (size_t)n, .dim = (size_t)dim, .k = (size_t)k,
      .panels_per_task = per_task,
      .part_idx = (int32_t *)(shared + q_inv_bytes),
      .part_score = (float *)(shared + q_inv_bytes + idx_bytes),
      .out_idx = out_idx, .out_score = out_score,
  };
  publish_job();
  return job;
}

qe_job *qe_tasks_job_create(int32_t workers, size_t tasks, const void *ctx, size_t ctx_bytes,
                            size_t workspace_bytes, qe_task_fn run) {
  if (!run || (ctx_bytes && !ctx)) return NULL;
  unsigned char *shared;
  qe_job *job = job_new(workers, tasks, ctx_bytes, workspace_bytes, &shared);
  if (!job) return NULL;
  if (ctx_bytes) memcpy(shared, ctx, ctx_bytes);
  job->kind = JOB_TASKS;
  job->run = run;
  job->ctx = shared;
  publish_job();
  return job;
}

static void run_task(qe_job *job, size_t task, unsigned char *ws) {
  if (job->kind == JOB_TASKS) {
    job->run(job->ctx, task, ws);
    return;
  }
  if (job->kind == JOB_ATTENTION) {
    qe_flash_attention_forward(&job->p, task, task + 1, ws);
    return;
  }
  const search_problem *s = &job->s;
  const size_t panels = (s->n + QE_CORPUS_PANEL - 1) / QE_CORPUS_PANEL;
  const size_t p0 = task * s->panels_per_task;
  const size_t p1 = p0 + s->panels_per_task < panels ? p0 + s->panels_per_task : panels;
  const size_t list = s->nq * s->k; /* tasks x list fits: checked at create */
  qe_f32_cosine_topk_panels(s->nq, s->n, s->dim, s->k, s->queries, s->dim, s->q_inv, s->corpus,
                            s->inv_norms, p0, p1, s->part_idx + task * list,
                            s->part_score + task * list, s->k, ws);
}

/* Counts a participant finished (once, whoever gets there first: itself or
 * the rescuer) and wakes the threads waiting on the count. */
static void count_finished(qe_job *job) {
  /* Release: the participant's output is visible to whoever sees the count. */
  __atomic_fetch_add(&job->finished, 1, __ATOMIC_RELEASE);
#if defined(__wasm_atomics__)
  __builtin_wasm_memory_atomic_notify(&job->finished, UINT32_MAX);
#endif
}

/* True when every participant that joined has been counted finished. */
static int all_finished(const qe_job *job) {
  int32_t joined = 0;
  for (int32_t w = 0; w < job->workers; w++) joined += __atomic_load_n(&job->joined[w], __ATOMIC_ACQUIRE) != PART_IDLE;
  return __atomic_load_n(&job->finished, __ATOMIC_ACQUIRE) >= joined;
}

/* The next task for `claimant` (a TASK_* owner value): its index in claim
 * order, or -1 when none is left. A task the rescuer took first is skipped. */
static int32_t claim_task(qe_job *job, int32_t claimant) {
  for (;;) {
    int32_t t = __atomic_fetch_add(&job->next_task, 1, __ATOMIC_RELAXED);
    if (t >= job->task_count) return -1;
    int32_t unclaimed = TASK_UNCLAIMED;
    if (__atomic_compare_exchange_n(&job->task_state[t], &unclaimed, claimant, 0, __ATOMIC_ACQ_REL,
                                    __ATOMIC_RELAXED))
      return t;
  }
}

/* Runs task `t` (claim order) and marks it done. */
static void run_claimed(qe_job *job, int32_t t, unsigned char *ws) {
  /* Last task first: under a causal mask the last query tiles cost the
   * most, and starting with them balances the participants' finish. */
  run_task(job, (size_t)(job->task_count - 1 - t), ws);
  /* Release: the task's output is visible to whoever sees it done. */
  __atomic_store_n(&job->task_state[t], TASK_DONE, __ATOMIC_RELEASE);
}

/* Moves participant `worker` from idle to working; 0 when it had joined already (or was rescued). */
static int join(qe_job *job, int32_t worker) {
  int32_t idle = PART_IDLE;
  return __atomic_compare_exchange_n(&job->joined[worker], &idle, PART_WORKING, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE);
}

int32_t qe_job_work(qe_job *job, int32_t worker) {
  if (!job) return QE_ERR_NULL;
  if (worker < 0 || worker >= job->workers) return QE_ERR_ARGUMENT;
  if (!join(job, worker)) return QE_ERR_ARGUMENT;

  int32_t ran = 0;
  unsigned char *ws = NULL;
  for (;;) {
    int32_t t = claim_task(job, worker + 1);
    if (t < 0) break;
    if (!ws) {
      int32_t slot = __atomic_fetch_add(&job->slots_used, 1, __ATOMIC_RELAXED);
      /* At most `slots` participants can win a task, so slot < slots. */
      ws = job->workspace + (size_t)slot * job->stride;
    }
    run_claimed(job, t, ws);
    ran++;
  }
  /* Counted by whoever moves it from working to finished: itself, unless
   * the rescuer gave it up for dead first. */
  int32_t working = PART_WORKING;
  if (__atomic_compare_exchange_n(&job->joined[worker], &working, PART_FINISHED, 0, __ATOMIC_ACQ_REL,
                                  __ATOMIC_ACQUIRE))
    count_finished(job);
  return ran;
}

int32_t qe_job_claim_task(qe_job *job, int32_t worker) {
  if (!job) return QE_ERR_NULL;
  if (worker < 0 || worker >= job->workers) return QE_ERR_ARGUMENT;
  int32_t state = __atomic_load_n(&job->joined[worker], __ATOMIC_ACQUIRE);
  if (state == PART_FINISHED || (state == PART_IDLE && !join(job, worker))) return QE_ERR_ARGUMENT;
  return claim_task(job, worker + 1) >= 0 ? 1 : 0;
}

int32_t qe_job_rescue(qe_job *job, int32_t worker) {
  if (!job) return QE_ERR_NULL;
  if (worker < 0 || worker >= job->workers) return QE_ERR_ARGUMENT;
  if (__atomic_load_n(&job->joined[worker], __ATOMIC_ACQUIRE) == PART_FINISHED) return 0;
  /* A workspace of its own: the dead participant's may be mid-write, and
   * the arena's are spoken for. Rare, so from malloc. */
  unsigned char *ws = aligned_alloc(64, job->stride);
  if (!ws) return QE_ERR_NO_MEMORY;
  if (__atomic_exchange_n(&job->joined[worker], PART_FINISHED, __ATOMIC_ACQ_REL) == PART_FINISHED) {
    free(ws); /* it counted itself finished meanwhile */
    return 0;
  }
  int32_t redone = 0;
  for (int32_t t = 0; t < job->task_count; t++) {
    int32_t state = __atomic_load_n(&job->task_state[t], __ATOMIC_ACQUIRE);
    /* Its own unfinished tasks, and any handed out but never claimed (it may
     * have died between the counter and the claim). */
    if (state != worker + 1 && state != TASK_UNCLAIMED) continue;
    if (!__atomic_compare_exchange_n(&job->task_state[t], &state, TASK_RESCUER, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_RELAXED))
      continue; /* a live participant claimed it just now */
    run_claimed(job, t, ws);
    redone++;
  }
  free(ws);
  count_finished(job);
  return 1 + redone;
}

int qe_search_job_merge(qe_job *job) {
  if (!job) return QE_ERR_NULL;
  if (job->kind != JOB_SEARCH) return QE_ERR_ARGUMENT;
  for (int32_t t = 0; t < job->task_count; t++)
    if (__atomic_load_n(&job->task_state[t], __ATOMIC_ACQUIRE) != TASK_DONE) return QE_ERR_ARGUMENT;
  if (!all_finished(job)) return QE_ERR_ARGUMENT;
  const search_problem *s = &job->s;
  qe_f32_topk_merge(s->nq, s->k, (size_t)job->task_count, s->part_idx, s->part_score, s->out_idx,
                    s->out_score, s->k);
  return QE_OK;
}

int32_t qe_job_finished(const qe_job *job) {
  return job ? __atomic_load_n(&job->finished, __ATOMIC_ACQUIRE) : 0;
}

int32_t *qe_job_finished_address(qe_job *job) { return job ? &job->finished : NULL; }

int32_t qe_job_task_count(const qe_job *job) { return job ? job->task_count : 0; }

int32_t qe_attention_job_tile_q(const qe_job *job) {
  return job && job->kind == JOB_ATTENTION ? (int32_t)job->p.tile_q : 0;
}

int32_t qe_attention_job_tile_k(const qe_job *job) {
  return job && job->kind == JOB_ATTENTION ? (int32_t)job->p.tile_k : 0;
}

int qe_job_destroy(qe_job *job) {
  if (!job) return QE_OK;
  /* Refuse while a participant that joined is still running. */
  if (!all_finished(job)) return QE_ERR_ARGUMENT;
  free(job);
  return QE_OK;
}
