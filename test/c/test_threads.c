/*
 * Attention jobs (csrc/api_threads.c): a job's output must equal
 * qe_attention's bit for bit, whoever runs which task. Participants run one
 * after another, and also on real POSIX threads, the closest native stand-in
 * for workers sharing the module's memory.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "qe_api.h"
#include "qe_test.h"

typedef struct {
  int nq, nk, dim, heads, causal, valid_k, block_q, block_k;
} job_case;

static const job_case k_cases[] = {
    {1, 1, 4, 1, 0, 1, 0, 0},        {1, 37, 12, 3, 0, 37, 0, 0},   {37, 37, 12, 3, 1, 37, 0, 0},
    {130, 130, 64, 4, 0, 130, 0, 0}, {130, 130, 64, 4, 1, 100, 0, 0}, {200, 75, 24, 2, 0, 60, 16, 32},
    {257, 257, 48, 8, 1, 257, 32, 64}, {64, 300, 20, 5, 0, 299, 8, 8},
};

typedef struct {
  float *q, *k, *v, *want, *got;
  size_t qn, kn;
  float scale;
} job_data;

static void make_data(const job_case *c, job_data *d) {
  d->qn = (size_t)c->nq * c->dim;
  d->kn = (size_t)c->nk * c->dim;
  d->q = malloc(d->qn * 4), d->k = malloc(d->kn * 4), d->v = malloc(d->kn * 4);
  d->want = malloc(d->qn * 4), d->got = malloc(d->qn * 4);
  qe_rng_fill(d->q, d->qn, -2, 2);
  qe_rng_fill(d->k, d->kn, -2, 2);
  qe_rng_fill(d->v, d->kn, -1, 1);
  d->scale = 1.0f / sqrtf((float)(c->dim / c->heads));
  int st = qe_attention(d->q, d->k, d->v, d->want, c->nq, c->nk, c->dim, c->heads, d->scale, c->causal,
                        c->valid_k, c->block_q, c->block_k);
  QE_CHECK(st == QE_OK, "qe_attention status %d", st);
}

static void free_data(job_data *d) { free(d->q), free(d->k), free(d->v), free(d->want), free(d->got); }

static qe_job *create(const job_case *c, job_data *d, int workers) {
  for (size_t i = 0; i < d->qn; i++) d->got[i] = NAN;
  return qe_attention_job_create(d->q, d->k, d->v, d->got, c->nq, c->nk, c->dim, c->heads, d->scale, c->causal,
                                 c->valid_k, c->block_q, c->block_k, workers);
}

QE_TEST(job_sequential_participants_match_qe_attention) {
  qe_rng_seed(41);
  for (size_t i = 0; i < sizeof k_cases / sizeof k_cases[0]; i++) {
    const job_case *c = &k_cases[i];
    job_data d;
    make_data(c, &d);
    int32_t tile_q = qe_attention_tile_q(), tile_k = qe_attention_tile_k();
    for (int workers = 1; workers <= 4; workers++) {
      qe_job *job = create(c, &d, workers);
      QE_CHECK(job != NULL, "case %zu: create failed", i);
      if (!job) continue;
      QE_CHECK(qe_attention_job_tile_q(job) == tile_q && qe_attention_job_tile_k(job) == tile_k,
               "case %zu: tiles %d/%d vs %d/%d", i, qe_attention_job_tile_q(job), qe_attention_job_tile_k(job),
               tile_q, tile_k);
      int32_t tasks = qe_job_task_count(job), total = 0;
      /* Participants in reverse order: the last one runs everything. */
      for (int w = workers - 1; w >= 0; w--) {
        QE_CHECK(qe_job_finished(job) == workers - 1 - w, "finished count before %d", w);
        int32_t ran = qe_job_work(job, w);
        QE_CHECK(ran >= 0, "work status %d", ran);
        total += ran;
      }
      QE_CHECK(total == tasks, "case %zu: %d tasks run of %d", i, total, tasks);
      QE_CHECK(qe_job_finished(job) == workers, "finished %d of %d", qe_job_finished(job),
               workers);
      QE_CHECK(*qe_job_finished_address(job) == workers, "finished address disagrees");
      QE_CHECK(memcmp(d.got, d.want, d.qn * 4) == 0, "case %zu workers %d: output differs from qe_attention", i,
               workers);
      QE_CHECK(qe_job_destroy(job) == QE_OK, "destroy failed");
    }
    free_data(&d);
  }
}

QE_TEST(job_rejects_bad_arguments_and_misuse) {
  float x[64] = {0};
  float o[64];
  QE_CHECK(qe_thread_support() == 0, "the native build claims wasm atomics");
  /* Whatever qe_attention rejects, and worker counts out of range. */
  QE_CHECK(!qe_attention_job_create(NULL, x, x, o, 4, 4, 4, 1, 1, 0, 4, 0, 0, 2), "null q accepted");
  QE_CHECK(!qe_attention_job_create(x, x, x, o, 0, 4, 4, 1, 1, 0, 4, 0, 0, 2), "nq 0 accepted");
  QE_CHECK(!qe_attention_job_create(x, x, x, o, 4, 4, 4, 3, 1, 0, 4, 0, 0, 2), "heads not dividing dim");
  QE_CHECK(!qe_attention_job_create(x, x, x, o, 4, 4, 4, 1, 1, 0, 5, 0, 0, 2), "valid_k > nk accepted");
  QE_CHECK(!qe_attention_job_create(x, x, x, o, 4, 4, 4, 1, NAN, 0, 4, 0, 0, 2), "NaN scale accepted");
  QE_CHECK(!qe_attention_job_create(x, x, x, o, 4, 4, 4, 1, 1, 0, 4, -1, 0, 2), "negative block accepted");
  QE_CHECK(!qe_attention_job_create(x, x, x, o, 4, 4, 4, 1, 1, 0, 4, 0, 0, 0), "0 workers accepted");
  QE_CHECK(!qe_attention_job_create(x, x, x, o, 4, 4, 4, 1, 1, 0, 4, 0, 0, QE_JOB_MAX_WORKERS + 1),
           "too many workers accepted");
  QE_CHECK(qe_job_work(NULL, 0) == QE_ERR_NULL, "work on null job");
  QE_CHECK(qe_job_destroy(NULL) == QE_OK, "destroy(NULL)");
  QE_CHECK(qe_job_finished(NULL) == 0, "finished(NULL)");

  qe_job *job = qe_attention_job_create(x, x, x, o, 4, 4, 4, 1, 1, 0, 4, 0, 0, 2);
  QE_CHECK(job != NULL, "valid job refused");
  if (!job) return;
  QE_CHECK(qe_job_work(job, -1) == QE_ERR_ARGUMENT, "worker -1 accepted");
  QE_CHECK(qe_job_work(job, 2) == QE_ERR_ARGUMENT, "worker 2 of 2 accepted");
  QE_CHECK(qe_job_work(job, 0) == 1, "worker 0 should run the one task");
  QE_CHECK(qe_job_work(job, 0) == QE_ERR_ARGUMENT, "worker 0 joined twice");
  QE_CHECK(qe_job_finished(job) == 1, "a refused participant was counted");
  QE_CHECK(qe_job_work(job, 1) == 0, "worker 1 found work left");
  QE_CHECK(qe_job_destroy(job) == QE_OK, "destroy failed");
}

QE_TEST(job_workspaces_are_reported_by_the_arena) {
  enum { NQ = 256, DIM = 64, HEADS = 2 };
  static float q[NQ * DIM], o[NQ * DIM];
  qe_rng_fill(q, NQ * DIM, -1, 1);
  QE_CHECK(qe_attention(q, q, q, o, NQ, NQ, DIM, HEADS, 0.125f, 0, NQ, 0, 0) == QE_OK, "qe_attention");
  size_t one = qe_workspace_last_bytes();
  for (int workers = 1; workers <= 3; workers++) {
    qe_job *job = qe_attention_job_create(q, q, q, o, NQ, NQ, DIM, HEADS, 0.125f, 0, NQ, 0, 0, workers);
    QE_CHECK(job != NULL, "create");
    QE_CHECK(qe_workspace_last_bytes() == (size_t)workers * qe_arena_round(one),
             "%d workers: arena reports %zu, one workspace is %zu", workers, qe_workspace_last_bytes(), one);
    for (int w = 0; w < workers; w++) qe_job_work(job, w);
    qe_job_destroy(job);
  }
  /* More participants than tasks: only as many workspaces as tasks. */
  qe_job *job = qe_attention_job_create(q, q, q, o, 1, NQ, DIM, HEADS, 0.125f, 0, NQ, 0, 0, 8);
  QE_CHECK(job != NULL, "create");
  QE_CHECK(qe_job_task_count(job) == HEADS, "tasks %d", qe_job_task_count(job));
  QE_CHECK(qe_workspace_last_bytes() <= (size_t)HEADS * qe_arena_round(one), "arena %zu for %d tasks",
           qe_workspace_last_bytes(), HEADS);
  for (int w = 0; w < 8; w++) qe_job_work(job, w);
  QE_CHECK(qe_job_finished(job) == 8, "finished %d", qe_job_finished(job));
  qe_job_destroy(job);
}

/* ---------------------------------------------------------------- threads */

typedef struct {
  qe_job *job;
  int worker;
  int32_t ran;
} thread_arg;

static void *participant(void *arg) {
  thread_arg *a = arg;
  a->ran = qe_job_work(a->job, a->worker);
  return NULL;
}

QE_TEST(job_runs_on_concurrent_threads) {
  qe_rng_seed(97);
  enum { THREADS = 4 };
  for (size_t i = 0; i < sizeof k_cases / sizeof k_cases[0]; i++) {
    const job_case *c = &k_cases[i];
    job_data d;
    make_data(c, &d);
    for (int rep = 0; rep < 3; rep++) {
      qe_job *job = create(c, &d, THREADS);
      QE_CHECK(job != NULL, "create");
      if (!job) break;
      pthread_t t[THREADS];
      thread_arg args[THREADS];
      int started = 1;
      for (int w = 1; w < THREADS; w++) {
        args[w] = (thread_arg){job, w, -1};
        if (pthread_create(&t[w], NULL, participant, &args[w]) != 0) {
          started = w;
          break;
        }
        started = w + 1;
      }
      args[0] = (thread_arg){job, 0, -1};
      participant(&args[0]);
      for (int w = 1; w < started; w++) pthread_join(t[w], NULL);
      /* A participant that never started still has to be counted in. */
      for (int w = started; w < THREADS; w++) args[w].ran = qe_job_work(job, w);
      int32_t total = 0;
      for (int w = 0; w < THREADS; w++) total += args[w].ran;
      QE_CHECK(total == qe_job_task_count(job), "case %zu: %d tasks of %d", i, total,
               qe_job_task_count(job));
      QE_CHECK(qe_job_finished(job) == THREADS, "finished %d", qe_job_finished(job));
      QE_CHECK(memcmp(d.got, d.want, d.qn * 4) == 0, "case %zu: threaded output differs from qe_attention", i);
      QE_CHECK(qe_job_destroy(job) == QE_OK, "destroy");
    }
    free_data(&d);
  }
}

/* ---------------------------------------------------------------- rescue */

/* A participant dies (claims tasks, finishes none) at every point of the
 * job: the rescuer must redo exactly what is missing, and the output must
 * still equal qe_attention's. */
QE_TEST(job_rescue_redoes_what_a_dead_participant_left) {
  qe_rng_seed(53);
  for (size_t i = 0; i < sizeof k_cases / sizeof k_cases[0]; i++) {
    const job_case *c = &k_cases[i];
    job_data d;
    make_data(c, &d);
    for (int claimed = 0; claimed <= 3; claimed++) {
      qe_job *job = create(c, &d, 3);
      QE_CHECK(job != NULL, "create");
      if (!job) break;
      int32_t tasks = qe_job_task_count(job), got = 0;
      /* Participant 2 claims up to `claimed` tasks and dies. */
      for (int n = 0; n < claimed; n++) got += qe_job_claim_task(job, 2);
      QE_CHECK(got == (claimed < tasks ? claimed : tasks), "case %zu: claimed %d of %d", i, got, claimed);
      int32_t ran0 = qe_job_work(job, 0);
      if (claimed > 0) QE_CHECK(qe_job_destroy(job) == QE_ERR_ARGUMENT, "destroyed with a participant working");
      /* Participant 1 never took the job; participant 2 died. */
      int32_t redo1 = qe_job_rescue(job, 1), redo2 = qe_job_rescue(job, 2);
      QE_CHECK(redo1 == 1, "case %zu: participant 1 had nothing, %d redone", i, redo1 - 1);
      redo2 -= 1;
      QE_CHECK(ran0 + redo2 == tasks && redo2 == got, "case %zu: ran %d, redone %d, claimed %d of %d", i, ran0,
               redo2, got, tasks);
      QE_CHECK(qe_job_rescue(job, 2) == 0, "rescued twice");
      QE_CHECK(qe_job_work(job, 2) == QE_ERR_ARGUMENT, "a rescued participant joined again");
      QE_CHECK(qe_job_finished(job) == 3, "finished %d of 3", qe_job_finished(job));
      QE_CHECK(memcmp(d.got, d.want, d.qn * 4) == 0, "case %zu claimed %d: output differs after rescue", i,
               claimed);
      QE_CHECK(qe_job_destroy(job) == QE_OK, "destroy after rescue");
    }
    /* Rescued before anyone worked: the rescuer runs the whole job. */
    qe_job *job = create(c, &d, 2);
    QE_CHECK(job && qe_job_rescue(job, 1) == 1 + qe_job_task_count(job), "rescue of a whole job");
    QE_CHECK(job && qe_job_work(job, 0) == 0, "work left after a whole rescue");
    QE_CHECK(memcmp(d.got, d.want, d.qn * 4) == 0, "case %zu: whole-job rescue differs", i);
    QE_CHECK(qe_job_destroy(job) == QE_OK, "destroy");
    free_data(&d);
  }
  QE_CHECK(qe_job_rescue(NULL, 0) == QE_ERR_NULL, "rescue(NULL)");
  QE_CHECK(qe_job_claim_task(NULL, 0) == QE_ERR_NULL, "claim(NULL)");
}

typedef struct {
  qe_job *job;
  int worker;
  int claims;
} dying_arg;

/* Claims tasks, runs none, and ends: a worker killed mid-task. */
static void *dying_participant(void *arg) {
  dying_arg *a = arg;
  for (int n = 0; n < a->claims; n++) qe_job_claim_task(a->job, a->worker);
  return NULL;
}

/* On real threads: participants 1 and 2 work, 3 dies after claiming; the
 * caller works, then rescues 3 once its thread has ended, while 1 and 2 may
 * still be running (ThreadSanitizer checks the hand-offs). */
QE_TEST(job_rescue_beside_live_threads) {
  qe_rng_seed(71);
  for (size_t i = 0; i < sizeof k_cases / sizeof k_cases[0]; i++) {
    const job_case *c = &k_cases[i];
    job_data d;
    make_data(c, &d);
    for (int rep = 0; rep < 3; rep++) {
      qe_job *job = create(c, &d, 4);
      QE_CHECK(job != NULL, "create");
      if (!job) break;
      pthread_t t[3];
      thread_arg live[2] = {{job, 1, -1}, {job, 2, -1}};
      dying_arg dying = {job, 3, rep + 1};
      int ok = pthread_create(&t[2], NULL, dying_participant, &dying) == 0;
      ok &= pthread_create(&t[0], NULL, participant, &live[0]) == 0;
      ok &= pthread_create(&t[1], NULL, participant, &live[1]) == 0;
      QE_CHECK(ok, "pthread_create");
      if (!ok) abort();
      int32_t ran0 = qe_job_work(job, 0);
      pthread_join(t[2], NULL);
      int32_t redone = qe_job_rescue(job, 3) - 1;
      pthread_join(t[0], NULL);
      pthread_join(t[1], NULL);
      QE_CHECK(ran0 >= 0 && redone >= 0, "status %d / %d", ran0, redone + 1);
      QE_CHECK(ran0 + redone + live[0].ran + live[1].ran == qe_job_task_count(job), "case %zu: %d+%d+%d+%d of %d",
               i, ran0, redone, live[0].ran, live[1].ran, qe_job_task_count(job));
      QE_CHECK(qe_job_finished(job) == 4, "finished %d", qe_job_finished(job));
      QE_CHECK(memcmp(d.got, d.want, d.qn * 4) == 0, "case %zu: output differs after a rescue on threads", i);
      QE_CHECK(qe_job_destroy(job) == QE_OK, "destroy");
    }
    free_data(&d);
  }
}

/* ---------------------------------------------------------------- allocation */

/* Each thread keeps up to LIVE blocks of its own, every one filled with a
 * stamp (thread, serial), checks a block's stamp before freeing it, and
 * counts what went wrong; the main thread reports. Two threads given
 * overlapping blocks would overwrite each other's stamps. */
typedef struct {
  int id;
  int rounds;
  int errors;
  int32_t allocated;
} alloc_arg;

static uint32_t alloc_rng(uint32_t *s) {
  *s ^= *s << 13, *s ^= *s >> 17, *s ^= *s << 5;
  return *s;
}

static void *allocating_thread(void *arg) {
  enum { LIVE = 24 };
  alloc_arg *a = arg;
  uint32_t rng = 0x9E3779B9u * (uint32_t)(a->id + 1);
  uint32_t *block[LIVE] = {0};
  size_t words[LIVE] = {0};
  uint32_t stamp[LIVE] = {0};
  for (int r = 0; r < a->rounds; r++) {
    int i = (int)(alloc_rng(&rng) % LIVE);
    if (block[i]) {
      for (size_t w = 0; w < words[i]; w++) a->errors += block[i][w] != stamp[i];
      qe_free(block[i]);
      block[i] = NULL;
    }
    /* Mostly small blocks, now and then up to 256 KiB. */
    size_t bytes = 1 + alloc_rng(&rng) % ((alloc_rng(&rng) & 7) == 0 ? 262144u : 512u);
    block[i] = qe_alloc(bytes);
    if (!block[i] || ((uintptr_t)block[i] & 15) != 0) {
      a->errors++;
      block[i] = NULL;
      continue;
    }
    a->allocated++;
    words[i] = bytes / 4;
    stamp[i] = ((uint32_t)a->id << 24) | (uint32_t)r;
    for (size_t w = 0; w < words[i]; w++) block[i][w] = stamp[i];
  }
  for (int i = 0; i < LIVE; i++) {
    if (!block[i]) continue;
    for (size_t w = 0; w < words[i]; w++) a->errors += block[i][w] != stamp[i];
    qe_free(block[i]);
  }
  return NULL;
}

QE_TEST(alloc_and_free_from_several_threads_at_once) {
  enum { THREADS = 4 };
  pthread_t t[THREADS];
  alloc_arg args[THREADS];
  int started = 0;
  for (int w = 0; w < THREADS; w++) {
    args[w] = (alloc_arg){w, 4000, 0, 0};
    if (pthread_create(&t[w], NULL, allocating_thread, &args[w]) != 0) break;
    started++;
  }
  QE_CHECK(started >= 2, "only %d threads started", started);
  for (int w = 0; w < started; w++) pthread_join(t[w], NULL);
  for (int w = 0; w < started; w++) {
    QE_CHECK(args[w].errors == 0, "thread %d: %d failed allocations or overwritten words", w, args[w].errors);
    QE_CHECK(args[w].allocated > 3000, "thread %d allocated only %d blocks", w, args[w].allocated);
  }
}

QE_SUITE(qe_suite_threads, "threads", QE_CASE(job_sequential_participants_match_qe_attention),
         QE_CASE(job_rejects_bad_arguments_and_misuse), QE_CASE(job_workspaces_are_reported_by_the_arena),
         QE_CASE(job_runs_on_concurrent_threads),
         QE_CASE(job_rescue_redoes_what_a_dead_participant_left), QE_CASE(job_rescue_beside_live_threads), QE_CASE(alloc_and_free_from_several_threads_at_once));
