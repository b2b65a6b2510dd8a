/**
 * The threaded modules allocate with Emscripten's thread-safe allocator
 * (libdlmalloc-mt.a, see csrc/runtime/malloc_shim.c): qe_alloc and qe_free may be called from any thread.
 * Here worker threads and the main thread allocate, stamp, check and free
 * blocks at the same time in one shared memory, growing it as they go. Two
 * threads handed overlapping blocks would overwrite each other's stamps.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import { RELAXED_THREADED_MODULE_FILE } from '../js/thread-support';
import { THREADED_MODULE_FILE, createThreadedMemory, threadedImports, type ThreadedExports } from '../js/threads';
import { RELAXED_UNAVAILABLE } from './helpers';

const ROOT = resolve(__dirname, '..');
const BUILDS: readonly string[] = [THREADED_MODULE_FILE, ...(RELAXED_UNAVAILABLE === null ? [RELAXED_THREADED_MODULE_FILE] : [])];

/**
 * One thread's loop, as source so workers run the same code: `rounds`
 * times, free a random one of LIVE blocks (checking its stamp) and allocate
 * a new one of a random size (mostly small, 1 in 8 up to 1 MiB), filled with
 * this thread's stamp. Returns [errors, blocks allocated, bytes at most live].
 */
const LOOP = `function allocLoop(x, memory, id, rounds) {
  var LIVE = 24, rng = (0x9e3779b9 * (id + 1)) >>> 0;
  function next() { rng ^= rng << 13; rng >>>= 0; rng ^= rng >>> 17; rng ^= rng << 5; rng >>>= 0; return rng; }
  var ptr = new Array(LIVE).fill(0), words = new Array(LIVE).fill(0), stamp = new Array(LIVE).fill(0);
  var errors = 0, allocated = 0, live = 0, peak = 0;
  function release(i) {
    var v = new Int32Array(memory.buffer, ptr[i], words[i]);
    for (var w = 0; w < v.length; w++) if (v[w] !== stamp[i]) { errors++; break; }
    x.qe_free(ptr[i]);
    live -= words[i] * 4;
    ptr[i] = 0;
  }
  for (var r = 0; r < rounds; r++) {
    var i = next() % LIVE;
    if (ptr[i] !== 0) release(i);
    var bytes = 4 + 4 * (next() % ((next() & 7) === 0 ? 262144 : 128));
    var p = x.qe_alloc(bytes) >>> 0;
    if (p === 0 || (p & 15) !== 0) { errors++; continue; }
    ptr[i] = p; words[i] = bytes / 4; stamp[i] = (id << 24) | r; allocated++;
    live += bytes; peak = Math.max(peak, live);
    new Int32Array(memory.buffer, p, words[i]).fill(stamp[i]);
  }
  for (var j = 0; j < LIVE; j++) if (ptr[j] !== 0) release(j);
  return [errors, allocated, peak];
}`;

const WORKER = `${LOOP}
const { parentPort, workerData: d } = require('node:worker_threads');
const x = new WebAssembly.Instance(d.module, { env: { memory: d.memory, emscripten_notify_memory_growth() {} } }).exports;
x.__stack_pointer.value = d.stackTop;
// Start together: wait for the main thread's go.
const gate = new Int32Array(d.memory.buffer, d.gate, 1);
while (Atomics.load(gate, 0) === 0) Atomics.wait(gate, 0, 0, 50);
parentPort.postMessage(allocLoop(x, d.memory, d.id, d.rounds));
`;

// eslint-disable-next-line @typescript-eslint/no-implied-eval
const allocLoop = new Function(`${LOOP}; return allocLoop;`)() as (
  x: ThreadedExports, memory: WebAssembly.Memory, id: number, rounds: number,
) => [number, number, number];

describe.each(BUILDS)('allocation from several threads (%s)', (file) => {
  test('workers and the main thread allocate and free at once, growing memory, without overlap', async () => {
    const module = new WebAssembly.Module(readFileSync(resolve(ROOT, 'wasm', file)));
    const memory = createThreadedMemory();
    const x = new WebAssembly.Instance(module, threadedImports(memory)).exports as unknown as ThreadedExports;
    const before = memory.buffer.byteLength;
    const WORKERS = 3;
    const ROUNDS = 2000;
    const STACK = 256 * 1024;
    const gate = x.qe_alloc(16) >>> 0;
    new Int32Array(memory.buffer, gate, 1)[0] = 0;
    const stacks = Array.from({ length: WORKERS }, () => x.qe_alloc(STACK) >>> 0);
    // Held through the run, so the heap must grow; allocated after the
    // stacks, so once it and the threads' blocks are freed the space is one.
    const HELD = 12 << 20;
    const held = x.qe_alloc(HELD) >>> 0;
    expect(held).not.toBe(0);
    const workers = stacks.map((stack, w) => new Worker(WORKER, {
      eval: true,
      workerData: { module, memory, stackTop: stack + STACK, gate, id: w + 1, rounds: ROUNDS },
    }));
    try {
      const results = workers.map((worker) => new Promise<[number, number, number]>((done, fail) => {
        worker.once('message', done);
        worker.once('error', fail);
      }));
      // Let the workers reach the gate, then go, and allocate here too.
      await new Promise((r) => setTimeout(r, 200));
      Atomics.store(new Int32Array(memory.buffer, gate, 1), 0, 1);
      Atomics.notify(new Int32Array(memory.buffer, gate, 1), 0);
      const mine = allocLoop(x, memory, 0, ROUNDS);
      const all = [mine, ...(await Promise.all(results))];
      for (const [errors, allocated] of all) {
        expect(errors).toBe(0);
        expect(allocated).toBe(ROUNDS);
      }
      // The heap grew (a block held through the run saw to it), and not by
      // much more than what was live at once: freed blocks were reused.
      const peaks = all.reduce((s, r) => s + r[2], 0);
      expect(memory.buffer.byteLength).toBeGreaterThan(before);
      expect(memory.buffer.byteLength).toBeLessThan(before + HELD + 2 * peaks);
      // Everything freed: one block as large as all the threads' peaks together fits without growth.
      const size = memory.buffer.byteLength;
      x.qe_free(held);
      const big = x.qe_alloc(peaks) >>> 0;
      expect(big).not.toBe(0);
      expect(memory.buffer.byteLength).toBe(size);
      x.qe_free(big);
    } finally {
      await Promise.all(workers.map((w) => w.terminate()));
    }
  });
});
