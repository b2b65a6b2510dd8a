/**
 * Whether and on how many threads the threaded modules can run: feature
 * detection, the default and the clamp of `threads`, and the size below
 * which a call stays on the calling thread.
 *
 * Ground floor: imports only js/platform.ts.
 */
import { availableCores as platformCores } from './platform';

/** The multi-threaded build's file name (in the package's wasm/ folder). */
export const THREADED_MODULE_FILE = 'qe-flash-simd-mt.wasm';

/** The multi-threaded relaxed-SIMD build's file name. */
export const RELAXED_THREADED_MODULE_FILE = 'qe-flash-relaxed-mt.wasm';

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

/** 4 * seqLen * kvSeqLen * dim from unchecked attention arguments (0 when they make no sense). */
export function estimateAttentionFlops(Q: unknown, K: unknown, dim: unknown): number {
  if (!(Q instanceof Float32Array) || !(K instanceof Float32Array) || typeof dim !== 'number' || !(dim >= 1)) return 0;
  return (4 * Q.length * K.length) / dim;
}

/*
 * Frees held back while a worker that was given up may still be running.
 * A worker that stops answering is finished for by the caller and told to
 * end, but until its thread has really stopped it may still write its last
 * task's rows into the caller's buffers. Were those freed and handed to a
 * later call meanwhile, its write would land in that call's data. So
 * QEModule.free (js/module.ts) holds every free of that memory back until
 * the worker's end is confirmed.
 */
const heldFrees = new WeakMap<WebAssembly.Memory, Set<Promise<void>>>();

/** Frees of `memory` wait until `until` settles (fulfilled or not). */
export function holdFrees(memory: WebAssembly.Memory, until: Promise<unknown>): void {
  let holds = heldFrees.get(memory);
  if (holds === undefined) heldFrees.set(memory, (holds = new Set()));
  const hold: Promise<void> = until.then(() => undefined, () => undefined).then(() => void holds!.delete(hold));
  holds.add(hold);
}

/** A promise that settles once no hold on `memory` is left, or null when none is. */
export function freesHeld(memory: WebAssembly.Memory): Promise<void> | null {
  const holds = heldFrees.get(memory);
  if (holds === undefined || holds.size === 0) return null;
  return Promise.all(holds).then(() => undefined);
}
