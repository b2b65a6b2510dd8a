/**
 * Both cores: a pool of workers running the multi-threaded module
 * (wasm/qe-flash-simd-mt.wasm, or its relaxed-SIMD twin
 * wasm/qe-flash-relaxed-mt.wasm, chosen in js/loader.ts) on one shared
 * WebAssembly.Memory. This file gathers the rooms' exports; the rooms are:
 *
 *   js/thread-support.ts   feature detection, thread counts (default, clamp)
 *   js/thread-protocol.ts  the shared memory and each worker's control slot
 *   js/thread-worker.ts    the worker program (bundled into js/worker-source.ts at build time)
 *   js/thread-pool.ts      the pool's lifecycle: start, ready, drop, replace, stop
 *   js/thread-dispatch.ts  one job: post, take part, wait (deadline), rescue a dead worker's share; spin tuning
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
 *   itself; every participant claims tasks from the job's atomic counter
 *   until none are left and counts itself finished (the C side notifies);
 *   the main thread spins briefly for the last tasks, then waits for the
 *   count (Atomics.wait where the thread may block; a browser's main thread
 *   keeps spinning).
 * - Waking a sleeping thread costs tens of microseconds, at times
 *   milliseconds on a busy virtual machine. So a call nudges sleeping workers
 *   as it starts (wake), before its arguments are checked and copied; a
 *   worker watches for the job briefly, then sleeps. A job a worker has not
 *   taken by the time the main thread has run every task is withdrawn, so a
 *   late worker never delays a call.
 * - No hang: a worker that dies in a job (its code throws, its thread ends,
 *   or it has not finished by a deadline derived from the job's size) has
 *   its share finished by the calling thread: the tasks it claimed and did
 *   not finish are redone (qe_job_rescue). It is dropped from the pool, its
 *   thread ended, and a replacement starts lazily; the call's `threads`
 *   metric does not count it.
 * - Workers are unref()'d: an idle pool never keeps Node alive, so Jest and
 *   scripts exit by themselves. terminateThreadPools() ends them explicitly.
 *
 * Ground floor: re-exports only.
 */
export {
  MAX_THREADS, MIN_PARALLEL_FLOPS, RELAXED_THREADED_MODULE_FILE, THREADED_MODULE_FILE, THREADS_PROBE, availableCores, clampThreadCount,
  defaultThreadCount, detectThreadSupport, estimateAttentionFlops, threadsAvailable, validateThreadCount,
} from './thread-support';
export {
  THREADED_INITIAL_PAGES, THREADED_MAXIMUM_PAGES, WORKER_STACK_BYTES, createThreadedMemory, threadedImports,
} from './thread-protocol';
export { JOB_DEADLINE_FLOOR_MS, recordThreadJobStats, setSpinTimes, type ThreadJobStats } from './thread-dispatch';
export {
  ThreadPool, terminateThreadPools, type ThreadedAttentionCall, type ThreadedAttentionResult, type ThreadedExports,
  type ThreadedSearchCall,
} from './thread-pool';
