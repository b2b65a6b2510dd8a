/**
 * The pool of workers running the multi-threaded module on one shared
 * WebAssembly.Memory: starting them (each on its own stack in module
 * memory), knowing which are ready, dropping those that ended and starting
 * replacements lazily, stopping them; and the two threaded entries
 * (attention, search), which create a job and hand it to js/thread-dispatch.ts.
 *
 * Ground floor: imports js/c-api.ts, js/platform.ts, js/worker-source.ts (the
 * worker program, generated from js/thread-worker.ts) and the ground-floor
 * thread-* files.
 */
import { QE_EXPORT_NAMES, type QEExports } from './c-api';
import { startWorker, type WorkerHandle } from './platform';
import { nudge, runJob, type JobHelper, type JobHost } from './thread-dispatch';
import {
  CMD, CMD_EXIT, FAILED, READY, SEQ, SLOT_BYTES, SLOT_INTS, STARTING, STATE, WORKER_STACK_BYTES, slotView,
  type WorkerStartData,
} from './thread-protocol';
import { holdFrees, MAX_THREADS, MIN_PARALLEL_FLOPS } from './thread-support';
import { WORKER_SOURCE } from './worker-source';

/** The exports the pool uses: every module exports every entry (js/c-api.ts). */
export type ThreadedExports = QEExports;

interface WorkerRecord extends JobHelper {
  handle: WorkerHandle | null;
  slot: number; // byte offset of the control slot
  stack: number; // base of its stack allocation
  error: unknown;
  stopping: boolean; // told to exit, or given up: never given another job
  exited: boolean; // its thread has ended (its exit event, or terminate() from outside the pool)
}

/** Arguments of one attention call, pointers already in module memory. */
export interface ThreadedAttentionCall {
  q: number;
  k: number;
  v: number;
  o: number;
  seqLen: number;
  kvSeqLen: number;
  dim: number;
  heads: number;
  scale: number;
  causal: boolean;
  validKeyLength: number;
  blockQ: number;
  blockK: number;
  /**
   * Run by the calling thread once the workers have the job, before it takes
   * tasks itself: caller work that overlaps theirs (module.ts prepares the
   * output array there). Not run when the call stays on one thread.
   */
  meanwhile?: () => void;
}

/** A qe_cosine_topk call (csrc/qe_api.h), pointers into module memory. */
export interface ThreadedSearchCall {
  queries: number;
  nq: number;
  corpus: number;
  invNorms: number;
  n: number;
  dim: number;
  k: number;
  outIdx: number;
  outScore: number;
}

/** What a threaded attention call reports: the status and tiles of the C side, and the threads it used. */
export interface ThreadedAttentionResult {
  status: number;
  tileQ: number;
  tileK: number;
  threads: number;
}

const pools = new Set<ThreadPool>();

/**
 * Node's terminate() settles once the thread has stopped; a browser's
 * returns at once, while the worker's engine may still be stopping it. A
 * short grace covers that before held frees go through.
 */
function afterEnd(): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, 50) as unknown as { unref?: () => void };
    t.unref?.();
  });
}

/**
 * Workers sharing one instance's memory. Create with ThreadPool.start; grow
 * with ensureWorkers. Jobs are synchronous on the calling thread, so only one
 * runs at a time and nothing else touches the module meanwhile. Starting and
 * stopping workers are queued, one after another.
 */
export class ThreadPool {
  private readonly workers: WorkerRecord[] = [];
  private queue: Promise<void> = Promise.resolve();
  private broken: Error | null = null;
  private users = 0;
  private readonly host: JobHost;

  private constructor(
    private readonly module: WebAssembly.Module,
    private readonly memory: WebAssembly.Memory,
    private readonly x: ThreadedExports,
  ) {
    this.host = {
      x,
      memory,
      lose: (helper, mayRun) => this.lose(helper as WorkerRecord, mayRun),
      fail: (error) => {
        this.broken ??= error;
      },
    };
  }

  /**
   * A pool for the instance `x` of `module` on `memory` (the main thread's
   * instance), with `workers` workers ready (or failed to start: the pool
   * then runs with those that did).
   */
  static async start(module: WebAssembly.Module, memory: WebAssembly.Memory, x: WebAssembly.Exports, workers: number): Promise<ThreadPool> {
    for (const name of QE_EXPORT_NAMES) {
      if (typeof x[name] !== 'function') throw new Error(`the threaded module lacks the export ${name}; rebuild it with 'make wasm'`);
    }
    const exports = x as unknown as ThreadedExports;
    if (exports.qe_thread_support() !== 1) throw new Error('this module was not built with WebAssembly atomics');
    const pool = new ThreadPool(module, memory, exports);
    pools.add(pool);
    await pool.ensureWorkers(workers);
    return pool;
  }

  /** Workers started and not stopped (ready or not). */
  get size(): number {
    return this.workers.filter((r) => !r.stopping).length;
  }

  /** Workers ready to take a job now. */
  get readyWorkers(): number {
    return this.ready().length;
  }

  /** The error that disabled the pool, if one did (calls then run on one thread). */
  get failure(): Error | null {
    return this.broken;
  }

  /** Counts a user (a QEFlashAttention); see release. */
  retain(): void {
    this.users++;
  }

  /**
   * Uncounts a user; when none is left (still none when the queue gets to
   * it) the workers are stopped. They start again on demand.
   */
  release(): void {
    if (this.users > 0 && --this.users === 0) {
      void this.enqueue(() => (this.users === 0 ? this.stop() : undefined)).catch(() => undefined);
    }
  }

  /** Starts workers until there are `count`, and waits for them to be ready. */
  ensureWorkers(count: number): Promise<void> {
    return this.enqueue(() => this.grow(count));
  }

  /** Stops every worker and frees their stacks; ensureWorkers starts new ones. */
  terminate(): Promise<void> {
    return this.enqueue(() => this.stop());
  }

  private enqueue(op: () => Promise<void> | undefined): Promise<void> {
    const run = this.queue.then(op);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async grow(count: number): Promise<void> {
    const fresh: WorkerRecord[] = [];
    while (this.size < Math.min(count, MAX_THREADS - 1)) {
      const slot = this.x.qe_alloc(SLOT_BYTES) >>> 0;
      const stack = this.x.qe_alloc(WORKER_STACK_BYTES) >>> 0;
      if (slot === 0 || stack === 0) {
        if (slot) this.x.qe_free(slot);
        if (stack) this.x.qe_free(stack);
        throw new RangeError('out of module memory while starting worker threads');
      }
      new Int32Array(this.memory.buffer, slot, SLOT_INTS).fill(0);
      const record: WorkerRecord = { handle: null, slot, stack, error: undefined, stopping: false, exited: false };
      this.workers.push(record);
      fresh.push(record);
      try {
        record.handle = await spawnWorker({ module: this.module, memory: this.memory, slot, stackTop: stack + WORKER_STACK_BYTES }, record);
      } catch (error) {
        record.error = error;
        Atomics.store(this.slot(record), STATE, FAILED);
      }
    }
    // Ready when each has marked its slot (or failed). Polled: no message
    // channel is kept open, and the caller awaits this once.
    const deadline = Date.now() + 30000;
    for (;;) {
      const pending = fresh.filter((r) => Atomics.load(this.slot(r), STATE) === STARTING && r.error === undefined);
      if (pending.length === 0) break;
      if (Date.now() > deadline) {
        for (const r of pending) {
          r.error = new Error('worker did not start within 30 s');
          Atomics.store(this.slot(r), STATE, FAILED);
        }
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  }

  private async stop(): Promise<void> {
    // Marked and told to exit in one synchronous step: jobs run synchronously
    // on this thread, so none can reach a worker in between.
    const records = this.workers.filter((r) => !r.stopping);
    for (const r of records) {
      r.stopping = true;
      const s = this.slot(r);
      Atomics.store(s, CMD, CMD_EXIT);
      Atomics.add(s, SEQ, 1);
      Atomics.notify(s, SEQ);
    }
    await Promise.all(records.map((r) => r.handle?.terminate().catch(() => undefined)));
    for (const r of records) this.forget(r);
  }

  private slot(r: WorkerRecord): Int32Array {
    return slotView(this.memory, r.slot);
  }

  /** Takes `r` out of the pool and gives its slot and stack back to the module (its thread has ended). */
  private forget(r: WorkerRecord): void {
    const at = this.workers.indexOf(r);
    if (at < 0) return;
    this.workers.splice(at, 1);
    this.x.qe_free(r.slot);
    this.x.qe_free(r.stack);
  }

  private ready(): WorkerRecord[] {
    if (this.broken !== null) return [];
    this.dropExited();
    return this.workers.filter((r) => !r.stopping && !r.exited && r.error === undefined && Atomics.load(this.slot(r), STATE) === READY);
  }

  /**
   * Removes workers whose thread has ended: their slot and stack go back to
   * the module (no job can hold them: jobs run synchronously on this thread),
   * and helpersFor starts replacements.
   */
  private dropExited(): void {
    for (const r of this.workers.filter((w) => w.exited && !w.stopping)) {
      r.stopping = true;
      this.forget(r);
    }
  }

  /**
   * A worker that died during a job (its share was finished by the caller),
   * or stopped answering: never given another job, its thread ended, and its
   * slot and stack freed once it has (helpersFor starts a replacement). One
   * that `mayRun` holds back every free of the module's memory until then
   * (see holdFrees), so its late writes cannot land in a later call's data.
   */
  private lose(r: WorkerRecord, mayRun = false): void {
    if (r.stopping) return;
    r.stopping = true;
    const ended = r.handle?.terminate() ?? Promise.resolve();
    if (mayRun) holdFrees(this.memory, ended.then(afterEnd, afterEnd));
    void ended.catch(() => undefined).then(() => this.forget(r));
  }

  /**
   * Tells up to threads - 1 sleeping workers that a call of about `flops`
   * operations is on its way, so they are awake by the time its job is
   * posted. Does nothing for calls too small to split.
   */
  wake(threads: number, flops: number): void {
    if (!(flops >= MIN_PARALLEL_FLOPS) || threads < 2) return;
    nudge(this.memory, this.ready().slice(0, threads - 1));
  }

  /**
   * Attention on up to `threads` threads (the caller's plus workers that are
   * ready). Small problems run on the calling thread alone. A status other
   * than 0 comes from qe_attention on the same arguments: job creation only
   * fails where qe_attention would, or for memory, and then the single
   * thread call either reports why or does the work.
   */
  attention(c: ThreadedAttentionCall, threads: number): ThreadedAttentionResult {
    const flops = 4 * c.seqLen * c.kvSeqLen * c.dim;
    const helpers = this.helpersFor(threads, flops);
    if (helpers.length === 0) return this.single(c);
    const x = this.x;
    const job = x.qe_attention_job_create(
      c.q, c.k, c.v, c.o, c.seqLen, c.kvSeqLen, c.dim, c.heads, c.scale,
      c.causal ? 1 : 0, c.validKeyLength, c.blockQ, c.blockK, helpers.length + 1,
    ) >>> 0;
    if (job === 0) return this.single(c);
    const tileQ = x.qe_attention_job_tile_q(job);
    const tileK = x.qe_attention_job_tile_k(job);
    const used = runJob(this.host, job, helpers, 'attention', flops, c.meanwhile);
    return { status: 0, tileQ, tileK, threads: used };
  }

  /**
   * qe_cosine_topk on up to `threads` threads, the corpus split into ranges
   * whose top-k lists are merged in order (the same output bit for bit).
   * Small searches run on the calling thread alone; a status other than 0
   * comes from qe_cosine_topk on the same arguments.
   */
  search(c: ThreadedSearchCall, threads: number): { status: number; threads: number } {
    const x = this.x;
    return this.searchWith({
      flops: 2 * c.nq * c.n * c.dim,
      create: (workers) => x.qe_search_job_create(c.queries, c.nq, c.corpus, c.invNorms, c.n, c.dim, c.k, c.outIdx, c.outScore, workers),
      single: () => x.qe_cosine_topk(c.queries, c.nq, c.corpus, c.invNorms, c.n, c.dim, c.k, c.outIdx, c.outScore),
    }, threads);
  }

  /**
   * A job made by `create(participants)` (a qe_*_job_create entry; 0 when it
   * cannot be made) run on up to `threads` threads. Returns the threads it
   * ran on, or 0 when it did not run (too small to split, no worker ready,
   * or no job), and the caller then does the work on its own thread. Used
   * by js/hnsw-batch.ts (searchBatch).
   */
  runTasks(threads: number, flops: number, what: string, create: (participants: number) => number): number {
    const helpers = this.helpersFor(threads, flops);
    if (helpers.length === 0) return 0;
    const job = create(helpers.length + 1) >>> 0;
    if (job === 0) return 0;
    return runJob(this.host, job, helpers, what, flops);
  }

  /**
   * A search job of about `flops` operations on up to `threads` threads:
   * `create(workers)` makes the job (0 when it cannot: `single` then runs
   * the same search on this thread), and qe_search_job_merge writes the
   * results. Used by search() and by js/corpus.ts, whose jobs come from a
   * corpus handle.
   */
  searchWith(s: { flops: number; create: (workers: number) => number; single: () => number }, threads: number): { status: number; threads: number } {
    const x = this.x;
    const helpers = this.helpersFor(threads, s.flops);
    if (helpers.length === 0) return { status: s.single(), threads: 1 };
    const job = s.create(helpers.length + 1) >>> 0;
    if (job === 0) return { status: s.single(), threads: 1 };
    let status = 0;
    const used = runJob(this.host, job, helpers, 'search', s.flops, undefined, () => {
      status = x.qe_search_job_merge(job);
    });
    return { status, threads: used };
  }

  /** The ready workers a call of about `flops` operations on `threads` threads gets (none when too small to split). */
  private helpersFor(threads: number, flops: number): WorkerRecord[] {
    this.dropExited();
    // Workers stopped (or ended from outside) while this pool still has users come back for later calls.
    if (this.users > 0 && this.broken === null && this.size < Math.min(threads, MAX_THREADS) - 1) {
      void this.ensureWorkers(threads - 1).catch(() => undefined);
    }
    return flops < MIN_PARALLEL_FLOPS ? [] : this.ready().slice(0, Math.max(0, threads - 1));
  }

  private single(c: ThreadedAttentionCall): ThreadedAttentionResult {
    const status = this.x.qe_attention(
      c.q, c.k, c.v, c.o, c.seqLen, c.kvSeqLen, c.dim, c.heads, c.scale,
      c.causal ? 1 : 0, c.validKeyLength, c.blockQ, c.blockK,
    );
    return { status, tileQ: this.x.qe_attention_tile_q(), tileK: this.x.qe_attention_tile_k(), threads: 1 };
  }
}

function spawnWorker(data: WorkerStartData, record: WorkerRecord): Promise<WorkerHandle> {
  return startWorker(
    WORKER_SOURCE,
    data,
    (error) => {
      record.error = error;
    },
    // A worker ended by anyone (terminate(), an uncaught error) is no longer
    // counted as ready: its slot may still say READY, and jobs posted to it
    // would only be withdrawn. The pool drops it and starts a replacement lazily.
    () => {
      record.exited = true;
    },
  );
}

/** Stops the workers of every pool in this process (they are unref()'d anyway; this ends them now). */
export async function terminateThreadPools(): Promise<void> {
  await Promise.all([...pools].map((p) => p.terminate()));
}
