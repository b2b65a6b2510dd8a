/**
 * Both cores: a pool of workers running the multi-threaded module
 * (wasm/qe-flash-simd-mt.wasm, or its relaxed-SIMD twin
 * wasm/qe-flash-relaxed-mt.wasm, chosen in js/loader.ts) on one shared
 * WebAssembly.Memory.
 *
 * How it works
 * - The main thread instantiates the module on a shared memory it creates
 *   (createThreadedMemory) and allocates the pool's slots and stacks. The
 *   module's malloc is thread-safe (Emscripten's dlmalloc-mt), so C code a
 *   worker runs may allocate too.
 * - Each worker (worker_threads in Node; a Web Worker in a cross-origin
 *   isolated browser) instantiates the same compiled module on the same
 *   memory, points its __stack_pointer at a 256 KiB stack the main thread
 *   allocated for it, marks itself ready in its control slot and blocks in
 *   Atomics.wait on that slot.
 * - A job (csrc/api_threads.c) is dispatched by writing the job pointer and
 *   a participant index into each chosen worker's slot and bumping its
 *   sequence numbers (Atomics.notify if it sleeps): no postMessage per job,
 *   so dispatch costs microseconds. The main thread runs participant 0
 *   itself; every participant grabs (query tile, head) tasks from the job's
 *   atomic counter until none are left and counts itself finished (the C side
 *   notifies); the main thread spins briefly for the last tasks, then waits
 *   for the count (Atomics.wait where the thread may block; a browser's main
 *   thread keeps spinning).
 * - Waking a sleeping thread costs tens of microseconds, at times
 *   milliseconds on a busy virtual machine. So a call nudges sleeping workers
 *   as it starts (wake), before its arguments are checked and copied; a
 *   worker watches for the job briefly, then sleeps. A job a worker has not
 *   taken by the time the main thread has run every task is withdrawn, so a
 *   late worker never delays a call; the main thread spins only about two
 *   tasks' time for workers' last tasks before it sleeps, leaving the core
 *   to a worker that the scheduler held up.
 * - Workers are unref()'d: an idle pool never keeps Node alive, so Jest and
 *   scripts exit by themselves. terminateThreadPools() ends them explicitly.
 *
 * This file is on the ground floor: it imports only the generated js/c-api.ts
 * and js/platform.ts (which starts workers: worker_threads in Node, a
 * Blob-URL Web Worker in browsers).
 */
import { QE_EXPORT_NAMES, type QEExports } from './c-api';
import { availableCores as platformCores, startWorker, type WorkerHandle } from './platform';

/** The multi-threaded build's file name (in the package's wasm/ folder). */
export const THREADED_MODULE_FILE = 'qe-flash-simd-mt.wasm';

/** Pages the module asks for at least (its link-time --initial-memory, 16 MiB). */
export const THREADED_INITIAL_PAGES = 256;
/** Largest memory the module links against (4 GiB). */
export const THREADED_MAXIMUM_PAGES = 65536;

/** Stack bytes given to each worker instance. */
export const WORKER_STACK_BYTES = 256 * 1024;

/** Most threads (workers + the main thread) one call may use; the C side allows 64. */
export const MAX_THREADS = 64;

/**
 * Below this many floating-point operations (4 * seqLen * kvSeqLen * dim) a
 * call runs on the calling thread alone: waking workers would cost more than
 * it saves. About 0.1 ms of work on one core.
 */
export const MIN_PARALLEL_FLOPS = 4e6;

// A module importing a one-page shared memory, with one function doing an i32.atomic.load.
export const THREADS_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
  0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7f, // type: () -> i32
  0x02, 0x09, 0x01, 0x01, 0x6d, 0x01, 0x6d, 0x02, 0x03, 0x01, 0x01, // import "m" "m" (memory shared 1 1)
  0x03, 0x02, 0x01, 0x00, // one function of type 0
  0x0a, 0x0a, 0x01, 0x08, 0x00, 0x41, 0x00, 0xfe, 0x10, 0x02, 0x00, 0x0b, // i32.const 0; i32.atomic.load; end
]);

/** The exports the pool uses: every module exports every entry (js/c-api.ts). */
export type ThreadedExports = QEExports;

/* ------------------------------------------------------------------ detection */

function isNode(): boolean {
  return typeof process !== 'undefined' && typeof process.versions?.node === 'string';
}

let cachedSupport: boolean | undefined;

/**
 * True when this engine can run the threaded module: SharedArrayBuffer (in
 * a browser, only under cross-origin isolation), shared WebAssembly memory
 * with atomics (validated on a tiny module), and a way to start workers.
 */
export function detectThreadSupport(): boolean {
  if (cachedSupport === undefined) cachedSupport = probeThreads();
  return cachedSupport;
}

function probeThreads(): boolean {
  try {
    if (typeof WebAssembly !== 'object' || typeof SharedArrayBuffer !== 'function' || typeof Atomics !== 'object') return false;
    const g = globalThis as { crossOriginIsolated?: boolean; Worker?: unknown };
    if (!isNode()) {
      if (g.crossOriginIsolated === false) return false;
      if (typeof g.Worker !== 'function') return false;
    }
    if (!WebAssembly.validate(THREADS_PROBE)) return false;
    // Engines may validate the probe yet refuse to create shared memory.
    new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true } as WebAssembly.MemoryDescriptor);
    return true;
  } catch {
    return false;
  }
}

/**
 * Public name of detectThreadSupport: whether `threads` above 1 can take
 * effect here (the package's index re-exports it).
 */
export function threadsAvailable(): boolean {
  return detectThreadSupport();
}

/** Logical cores this process may use (1 when unknown). */
export const availableCores = platformCores;

/** The default thread count: min(2, available cores), and 1 where threads cannot run. */
export async function defaultThreadCount(): Promise<number> {
  if (!detectThreadSupport()) return 1;
  return Math.min(2, await availableCores());
}

/**
 * `threads` (already validated) clamped to the cores this process may use:
 * more threads than cores only take turns on them (64 asked for on 2 cores
 * started 63 workers, took 500 MB and ran a call 8x slower). `warning` says
 * what was done, for the metrics; null when nothing was clamped.
 */
export async function clampThreadCount(threads: number, what = 'threads'): Promise<{ threads: number; warning: string | null }> {
  const cores = await availableCores();
  if (threads <= cores) return { threads, warning: null };
  return {
    threads: cores,
    warning: `${what}: ${threads} asked for, clamped to ${cores}: this process may use ${cores} core${cores === 1 ? '' : 's'}, and more threads than cores only take turns on them`,
  };
}

/** Checks a requested thread count: an integer in [1, MAX_THREADS]. */
export function validateThreadCount(threads: unknown, what = 'threads'): number {
  if (typeof threads !== 'number' || !Number.isInteger(threads) || threads < 1 || threads > MAX_THREADS) {
    throw new RangeError(`${what} must be an integer from 1 to ${MAX_THREADS}, got ${String(threads)}`);
  }
  return threads;
}

/* ------------------------------------------------------------------ memory */

/**
 * The shared memory for the threaded module: at least `initialPages`, and the
 * largest maximum the engine agrees to reserve (4 GiB, else 2 GiB, else 1 GiB).
 */
export function createThreadedMemory(initialPages: number = THREADED_INITIAL_PAGES): WebAssembly.Memory {
  let lastError: unknown;
  for (const maximum of [THREADED_MAXIMUM_PAGES, 32768, 16384]) {
    try {
      return new WebAssembly.Memory({ initial: Math.max(initialPages, THREADED_INITIAL_PAGES), maximum, shared: true } as WebAssembly.MemoryDescriptor);
    } catch (error) {
      lastError = error;
    }
  }
  throw new Error(`cannot create a shared WebAssembly memory for the threaded module: ${(lastError as Error)?.message ?? lastError}`);
}

/**
 * Imports for an instance of the threaded module: its shared memory, and the
 * growth notice (the main thread passes the loader's; workers need none).
 */
export function threadedImports(memory: WebAssembly.Memory, onGrowth: () => void = () => {}): WebAssembly.Imports {
  return { env: { memory, emscripten_notify_memory_growth: onGrowth } };
}

/* ------------------------------------------------------------------ workers */

// Control slot of one worker: 16 int32 (64 bytes, one cache line each).
//
// The main thread posts a job by writing PART and JOB, then bumping JOBSEQ
// (the commit) and SEQ (what a sleeping worker waits on), and notifying. A
// worker has at most one job posted and not yet taken: the next can only be
// posted once the job it is in has finished, which needs this worker. The
// worker takes a job by swapping JOB for 0; a job not yet taken when the
// main thread has run out of tasks is withdrawn the same way, so a worker
// that is slow to start (descheduled on a busy machine) costs nothing. SEQ
// alone, without JOBSEQ, is a nudge ("a job is coming: stop sleeping and
// watch"), sent when a call starts, so waking overlaps the argument checks
// and copies. CMD_EXIT ends the worker.
const SLOT_INTS = 16;
const SLOT_BYTES = SLOT_INTS * 4;
const SEQ = 0; // bumped for every post, nudge or exit
const JOB = 1; // job pointer
const CMD = 2; // 0, or CMD_EXIT
const STATE = 3; // written by the worker: STARTING, READY, FAILED, EXITED
const PART = 4; // the worker's participant index in the job
const SPIN_US = 5; // how long the worker watches for a job before it sleeps (microseconds)
const JOBSEQ = 6; // bumped for every job posted
const ASLEEP = 7; // 1 while the worker is (about to be) in Atomics.wait
const RAN = 8; // written by the worker after each job it took: tasks it ran
const TOOK_US = 9; // ... and how long it worked (microseconds)
const CMD_EXIT = 2;
const STARTING = 0;
const READY = 1;
const FAILED = 2;
const EXITED = 3;

/**
 * The worker's whole program, as the text of an expression whose value is
 * its start function (js/platform.ts wraps it with the platform's way of
 * handing over the start data): started with `eval: true` in Node and from a
 * Blob URL in browsers, so it works the same from js/ under ts-jest, from
 * dist/ and from a bundle, with no file to locate. It never returns to
 * its event loop until told to exit, and needs none: it sleeps in Atomics.wait.
 */
export const WORKER_SOURCE = `(function () {
  'use strict';
  var SEQ = ${SEQ}, JOB = ${JOB}, CMD = ${CMD}, STATE = ${STATE}, PART = ${PART}, SPIN_US = ${SPIN_US};
  var RAN = ${RAN}, TOOK_US = ${TOOK_US};
  var JOBSEQ = ${JOBSEQ}, ASLEEP = ${ASLEEP}, CMD_EXIT = ${CMD_EXIT}, READY = ${READY}, FAILED = ${FAILED}, EXITED = ${EXITED};
  function start(d) {
    var ctrl = new Int32Array(d.memory.buffer, d.slot, ${SLOT_INTS});
    var x;
    try {
      x = new WebAssembly.Instance(d.module, { env: { memory: d.memory, emscripten_notify_memory_growth: function () {} } }).exports;
      x.__stack_pointer.value = d.stackTop;
    } catch (e) {
      Atomics.store(ctrl, STATE, FAILED);
      Atomics.notify(ctrl, STATE);
      throw e;
    }
    var lastJob = Atomics.load(ctrl, JOBSEQ);
    var watch = false;
    Atomics.store(ctrl, STATE, READY);
    Atomics.notify(ctrl, STATE);
    for (;;) {
      if (Atomics.load(ctrl, CMD) === CMD_EXIT) break;
      if (Atomics.load(ctrl, JOBSEQ) !== lastJob) {
        lastJob = Atomics.load(ctrl, JOBSEQ);
        // Take the job; 0 when the main thread withdrew it (it ran every task itself).
        var job = Atomics.exchange(ctrl, JOB, 0);
        if (job === 0) continue;
        try {
          var t0 = performance.now();
          var ran = x.qe_job_work(job, Atomics.load(ctrl, PART));
          var t1 = performance.now();
          // For diagnostics (recordThreadJobStats): tasks run and how long they took (us).
          Atomics.store(ctrl, RAN, ran);
          Atomics.store(ctrl, TOOK_US, (t1 - t0) * 1000);
        } catch (e) {
          // Count this participant in so the main thread stops waiting, and say so.
          Atomics.store(ctrl, STATE, FAILED);
          var i32 = new Int32Array(d.memory.buffer);
          var at = x.qe_job_finished_address(job) >>> 2;
          Atomics.add(i32, at, 1);
          Atomics.notify(i32, at);
          throw e;
        }
        watch = true;
        continue;
      }
      if (watch) {
        // After a job or a nudge another job is likely soon (a loop of
        // calls): watch for it a while, as waking from Atomics.wait costs
        // tens of microseconds, and at times milliseconds on a busy host.
        watch = false;
        var until = performance.now() + Atomics.load(ctrl, SPIN_US) / 1000;
        for (var n = 1; Atomics.load(ctrl, JOBSEQ) === lastJob && Atomics.load(ctrl, CMD) !== CMD_EXIT; n++) {
          if ((n & 1023) === 0 && performance.now() >= until) break;
        }
        continue;
      }
      var seq = Atomics.load(ctrl, SEQ);
      Atomics.store(ctrl, ASLEEP, 1);
      if (Atomics.load(ctrl, JOBSEQ) === lastJob && Atomics.load(ctrl, CMD) !== CMD_EXIT) Atomics.wait(ctrl, SEQ, seq);
      Atomics.store(ctrl, ASLEEP, 0);
      watch = true;
    }
    Atomics.store(ctrl, STATE, EXITED);
    Atomics.notify(ctrl, STATE);
  }
  return start;
})()`;


interface WorkerRecord {
  handle: WorkerHandle | null;
  slot: number; // byte offset of the control slot
  stack: number; // base of its stack allocation
  error: unknown;
  stopping: boolean; // told to exit: never given another job
  exited: boolean; // its thread has ended (its exit event, or terminate() from outside the pool)
}

interface StartData {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  slot: number;
  stackTop: number;
}

const spin = {
  /**
   * How long (microseconds) an idle worker watches for the next job before
   * it sleeps. None: the next call nudges it awake as it starts, and a
   * worker spinning through the caller's checks and copies only takes a core
   * from the caller when the machine is busy (2 ms here made N = 256 calls
   * about 1.4x slower with one other busy process on 2 cores).
   */
  workerUs: 0,
  /**
   * The same after a nudge: covers the checks and copies of small calls
   * (about 0.3 ms at N = 256, dim 384); a larger call's job finds the worker
   * asleep and wakes it, which costs little next to its work.
   */
  nudgeUs: 500,
  /**
   * At most how long (ms) the calling thread spins for the workers' last
   * tasks before it sleeps (where it may); it spins about two of its own
   * tasks' time when shorter.
   */
  mainMs: 20,
};

/** Tuning for measurements: how long workers (microseconds) and the caller (ms) spin before sleeping. */
export function setSpinTimes(workerUs: number, mainMs: number, nudgeUs = spin.nudgeUs): void {
  spin.workerUs = Math.max(0, Math.floor(workerUs));
  spin.mainMs = Math.max(0, mainMs);
  spin.nudgeUs = Math.max(0, Math.floor(nudgeUs));
}

/** 4 * seqLen * kvSeqLen * dim from unchecked attention arguments (0 when they make no sense). */
export function estimateAttentionFlops(Q: unknown, K: unknown, dim: unknown): number {
  if (!(Q instanceof Float32Array) || !(K instanceof Float32Array) || typeof dim !== 'number' || !(dim >= 1)) return 0;
  return (4 * Q.length * K.length) / dim;
}

function spawnWorker(data: StartData, record: WorkerRecord): Promise<WorkerHandle> {
  return startWorker(
    WORKER_SOURCE,
    data,
    (error) => {
      record.error = error;
    },
    // A worker ended by anyone (terminate(), an uncaught error) is no longer
    // counted as ready: its slot still says READY, and jobs posted to it
    // would only be withdrawn. The pool drops it and starts a replacement lazily.
    () => {
      record.exited = true;
    },
  );
}

let mainThreadCanBlock: boolean | undefined;

/** Whether Atomics.wait is allowed on this thread (not on a browser's main thread). */
function canBlock(): boolean {
  if (mainThreadCanBlock === undefined) {
    try {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 1, 0);
      mainThreadCanBlock = true;
    } catch {
      mainThreadCanBlock = false;
    }
  }
  return mainThreadCanBlock;
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

/** One threaded job as measured when stats are on: tasks in all, those the calling thread ran, its time working and waiting. */
export interface ThreadJobStats {
  tasks: number;
  main: number;
  workMs: number;
  waitMs: number;
  /** Workers the job was withdrawn from: they had not taken it when the calling thread ran out of tasks. */
  withdrawn: number;
}

let jobStats: ThreadJobStats[] | null = null;

/** Diagnostics: starts (true) or stops recording per-job task counts; returns what was recorded. */
export function recordThreadJobStats(on: boolean): ThreadJobStats[] {
  const out = jobStats ?? [];
  jobStats = on ? [] : null;
  return out;
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

  private constructor(
    private readonly module: WebAssembly.Module,
    private readonly memory: WebAssembly.Memory,
    private readonly x: ThreadedExports,
  ) {}

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
        record.handle = await spawnWorker(
          { module: this.module, memory: this.memory, slot, stackTop: stack + WORKER_STACK_BYTES },
          record,
        );
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
    for (const r of records) {
      this.x.qe_free(r.slot);
      this.x.qe_free(r.stack);
      this.workers.splice(this.workers.indexOf(r), 1);
    }
  }

  private slot(r: WorkerRecord): Int32Array {
    return new Int32Array(this.memory.buffer, r.slot, SLOT_INTS);
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
      this.x.qe_free(r.slot);
      this.x.qe_free(r.stack);
      this.workers.splice(this.workers.indexOf(r), 1);
    }
  }

  /**
   * Tells up to threads - 1 sleeping workers that a call of about `flops`
   * operations is on its way, so they are awake by the time its job is
   * posted. Does nothing for calls too small to split.
   */
  wake(threads: number, flops: number): void {
    if (!(flops >= MIN_PARALLEL_FLOPS) || threads < 2) return;
    for (const r of this.ready().slice(0, threads - 1)) {
      const s = this.slot(r);
      if (Atomics.load(s, ASLEEP) !== 1) continue;
      Atomics.store(s, SPIN_US, spin.nudgeUs);
      Atomics.add(s, SEQ, 1);
      Atomics.notify(s, SEQ, 1);
    }
  }

  /**
   * Attention on up to `threads` threads (the caller's plus workers that are
   * ready). Small problems run on the calling thread alone. A status other
   * than 0 comes from qe_attention on the same arguments: job creation only
   * fails where qe_attention would, or for memory, and then the single
   * thread call either reports why or does the work.
   */
  attention(c: ThreadedAttentionCall, threads: number): ThreadedAttentionResult {
    const helpers = this.helpersFor(threads, 4 * c.seqLen * c.kvSeqLen * c.dim);
    if (helpers.length === 0) return this.single(c);
    const x = this.x;
    const job = x.qe_attention_job_create(
      c.q, c.k, c.v, c.o, c.seqLen, c.kvSeqLen, c.dim, c.heads, c.scale,
      c.causal ? 1 : 0, c.validKeyLength, c.blockQ, c.blockK, helpers.length + 1,
    ) >>> 0;
    if (job === 0) return this.single(c);
    const tileQ = x.qe_attention_job_tile_q(job);
    const tileK = x.qe_attention_job_tile_k(job);
    const used = this.runJob(job, helpers, 'attention', c.meanwhile);
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
    const used = this.runJob(job, helpers, 'search', undefined, () => {
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

  /**
   * Runs a created job on this thread and `helpers`, then `finish` (before
   * the job is destroyed), then destroys it. Returns the threads it was
   * split across (1 when it has a single task). `meanwhile` runs on this
   * thread once the helpers have the job, before it takes tasks itself.
   */
  private runJob(job: number, helpers: WorkerRecord[], what: string, meanwhile?: () => void, finish?: () => void): number {
    const x = this.x;
    const participants = helpers.length + 1;
    let failed: WorkerRecord | undefined;
    let posted = false;
    let settled = false;
    let mainFinished = false;
    let meanwhileError: { error: unknown } | undefined;
    let taken: number | null = null;
    const withdraw = (): number => {
      // Helpers that have not taken the job yet are not waited for: it is
      // withdrawn from their slots (once). Returns how many took it.
      if (taken === null) {
        taken = 0;
        for (const r of helpers) {
          if (Atomics.compareExchange(this.slot(r), JOB, job, 0) !== job) taken++;
        }
      }
      return taken;
    };
    try {
      if (x.qe_job_task_count(job) < 2) {
        for (let i = 0; i < participants; i++) x.qe_job_work(job, i);
        settled = true;
        finish?.();
        return 1;
      }
      helpers.forEach((r, i) => {
        const s = this.slot(r);
        Atomics.store(s, SPIN_US, spin.workerUs);
        Atomics.store(s, PART, i + 1);
        Atomics.store(s, JOB, job);
        Atomics.add(s, JOBSEQ, 1);
        Atomics.add(s, SEQ, 1);
        if (Atomics.load(s, ASLEEP) === 1) Atomics.notify(s, SEQ, 1);
      });
      posted = true;
      // The job goes on whatever the caller's own work does; its error is
      // thrown once the job is over.
      try {
        meanwhile?.();
      } catch (error) {
        meanwhileError = { error };
      }
      const t0 = performance.now();
      const mine = x.qe_job_work(job, 0);
      mainFinished = true;
      const t1 = performance.now();
      this.waitFinished(job, 1 + withdraw(), mine > 0 ? (performance.now() - t0) / mine : 0);
      settled = true;
      if (jobStats !== null) {
        jobStats.push({
          tasks: x.qe_job_task_count(job), main: mine, workMs: t1 - t0, waitMs: performance.now() - t1,
          withdrawn: helpers.length - withdraw(),
        });
      }
      failed = helpers.find((r) => Atomics.load(this.slot(r), STATE) !== READY);
      if (failed === undefined && meanwhileError === undefined) finish?.();
    } finally {
      // Something threw after the job was posted (the calling thread's own
      // part trapped): helpers that took it still run; wait for them before
      // the job and the caller's buffers go.
      if (posted && !settled) this.waitFinished(job, withdraw() + (mainFinished ? 1 : 0), 0);
      // Every participant that joined has counted itself out (or a failure
      // did it for one), so nothing uses the job any more; a participant that
      // trapped mid-task never counts out, and destroy then keeps the job.
      if (x.qe_job_destroy(job) !== 0 && this.broken === null) {
        this.broken = new Error(`a ${what} job could not be released after a failure on the calling thread`);
      }
    }
    if (failed !== undefined) {
      this.broken = new Error(`a worker thread failed during ${what}: ${String((failed.error as Error)?.message ?? 'unknown error')}`);
      throw this.broken;
    }
    if (meanwhileError !== undefined) throw meanwhileError.error;
    // The threads the job was split across (recordThreadJobStats tells
    // which workers it was withdrawn from).
    return participants;
  }

  private single(c: ThreadedAttentionCall): ThreadedAttentionResult {
    const status = this.x.qe_attention(
      c.q, c.k, c.v, c.o, c.seqLen, c.kvSeqLen, c.dim, c.heads, c.scale,
      c.causal ? 1 : 0, c.validKeyLength, c.blockQ, c.blockK,
    );
    return { status, tileQ: this.x.qe_attention_tile_q(), tileK: this.x.qe_attention_tile_k(), threads: 1 };
  }

  /**
   * Waits until `participants` have counted themselves finished. What is
   * left is at most one task per worker, each about `taskMs` (the caller's
   * own time per task; 0 when it ran none): spin about twice that, then
   * sleep until the C side notifies, so a worker held up on a busy machine
   * gets the core instead of a spinning caller.
   */
  private waitFinished(job: number, participants: number, taskMs: number): void {
    const i32 = new Int32Array(this.memory.buffer);
    const at = this.x.qe_job_finished_address(job) >>> 2;
    if (Atomics.load(i32, at) >= participants) return;
    const block = canBlock();
    const until = performance.now() + Math.min(spin.mainMs, taskMs > 0 ? 0.05 + 2 * taskMs : 1);
    let spinning = true;
    for (let n = 1; ; n++) {
      const done = Atomics.load(i32, at);
      if (done >= participants) return;
      // What is left is about one task: spin for it, then (if a worker was
      // held up) sleep until the C side notifies.
      if (spinning && (n & 1023) === 0) spinning = performance.now() < until;
      if (!spinning && block) Atomics.wait(i32, at, done, 100);
    }
  }
}

/** Stops the workers of every pool in this process (they are unref()'d anyway; this ends them now). */
export async function terminateThreadPools(): Promise<void> {
  await Promise.all([...pools].map((p) => p.terminate()));
}
