/**
 * What the calling thread and its workers share: the threaded module's
 * shared memory, and each worker's control slot in it (the protocol both
 * js/thread-dispatch.ts and the worker program, js/thread-worker.ts, follow).
 *
 * Ground floor: imports nothing (the worker program is bundled from it).
 *
 * Control slot of one worker: 16 int32 (64 bytes, one cache line each).
 * The main thread posts a job by writing PART and JOB, then bumping JOBSEQ
 * (the commit) and SEQ (what a sleeping worker waits on), and notifying. A
 * worker has at most one job posted and not yet taken: the next can only be
 * posted once the job it is in has finished, which needs this worker. The
 * worker takes a job by swapping JOB for 0; a job not yet taken when the
 * main thread has run out of tasks is withdrawn the same way, so a worker
 * that is slow to start (descheduled on a busy machine) costs nothing. SEQ
 * alone, without JOBSEQ, is a nudge ("a job is coming: stop sleeping and
 * watch"), sent when a call starts, so waking overlaps the argument checks
 * and copies. CMD_EXIT ends the worker. A worker whose STATE leaves READY
 * while it is in a job has died (FAILED: its code threw; EXITED: its thread
 * is ending): the caller finishes its share (qe_job_rescue).
 */

/** Pages the module asks for at least (its link-time --initial-memory, 16 MiB). */
export const THREADED_INITIAL_PAGES = 256;
/** Largest memory the module links against (4 GiB). */
export const THREADED_MAXIMUM_PAGES = 65536;

/** Stack bytes given to each worker instance. */
export const WORKER_STACK_BYTES = 256 * 1024;

export const SLOT_INTS = 16;
export const SLOT_BYTES = SLOT_INTS * 4;
export const SEQ = 0; // bumped for every post, nudge or exit
export const JOB = 1; // job pointer
export const CMD = 2; // 0, or CMD_EXIT
export const STATE = 3; // written by the worker: STARTING, READY, FAILED, EXITED
export const PART = 4; // the worker's participant index in the job
export const SPIN_US = 5; // how long the worker watches for a job before it sleeps (microseconds)
export const JOBSEQ = 6; // bumped for every job posted
export const ASLEEP = 7; // 1 while the worker is (about to be) in Atomics.wait
export const RAN = 8; // written by the worker after each job it took: tasks it ran
export const TOOK_US = 9; // ... and how long it worked (microseconds)
/** Tests only: how the worker dies in its next job, after claiming a task (DIE_*). */
export const TEST_DIE = 10;

export const CMD_EXIT = 2;

export const STARTING = 0;
export const READY = 1;
export const FAILED = 2;
export const EXITED = 3;

/** TEST_DIE values: end the thread (process.exit in Node), throw, or stop forever without a word. */
export const DIE_EXIT = 1;
export const DIE_THROW = 2;
export const DIE_HANG = 3;

/** What a worker's start function is given. */
export interface WorkerStartData {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  /** Byte offset of its control slot. */
  slot: number;
  /** Top of the stack the main thread allocated for it. */
  stackTop: number;
}

/**
 * What the platform gives the worker program besides its data: a listener
 * for its thread's end (Node: process 'exit'; a browser has none), and a way
 * to end the thread (tests only).
 */
export interface WorkerHost {
  onExit(listener: () => void): void;
  exit(): void;
}

/** The control slot at byte offset `slot` of `memory`. */
export function slotView(memory: WebAssembly.Memory, slot: number): Int32Array {
  return new Int32Array(memory.buffer, slot, SLOT_INTS);
}

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
