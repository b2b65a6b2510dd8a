/**
 * Both cores: the threaded module and its worker pool. Outputs on
 * two threads must equal one thread's bit for bit and the float64
 * reference; bad input must still fail cleanly; and the process must exit by
 * itself with workers started (checked in a child process).
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  MIN_PARALLEL_FLOPS,
  THREADED_MODULE_FILE,
  ThreadPool,
  createThreadedMemory,
  recordThreadJobStats,
  detectThreadSupport,
  setSpinTimes,
  terminateThreadPools,
  threadedImports,
  validateThreadCount,
  type ThreadedExports,
} from '../js/threads';
import { createQEFlashAttention, type QEFlashAttention } from '../js/flash-attention';
import { RELAXED_THREADED_MODULE_FILE } from '../js/thread-support';
import { loadQEModule } from '../js/module';
import { expectReject, expectThrow, RELAXED_UNAVAILABLE } from './helpers';
import { attentionShape, maxAbsDiff, referenceAttention, uniform, type AttentionCase } from './reference';

const ROOT = resolve(__dirname, '..');
const MT_PATH = resolve(ROOT, 'wasm', THREADED_MODULE_FILE);
/** The threaded builds this engine runs: SIMD128, and relaxed SIMD where it validates (test/relaxed.test.ts says why not). */
const MT_BUILDS: readonly (readonly [string, string])[] = [
  ['simd-mt', MT_PATH],
  ...(RELAXED_UNAVAILABLE === null ? [['relaxed-mt', resolve(ROOT, 'wasm', RELAXED_THREADED_MODULE_FILE)] as const] : []),
];
/** What 'auto' loads here: the relaxed build where the engine runs it. */
const AUTO_KIND = RELAXED_UNAVAILABLE === null ? 'relaxed' : 'simd';
const AUTO_FILE = RELAXED_UNAVAILABLE === null ? RELAXED_THREADED_MODULE_FILE : THREADED_MODULE_FILE;

type Shape = AttentionCase;

const SHAPES: Shape[] = [
  { seqLen: 1, dim: 64, heads: 1 },
  { seqLen: 1, kvSeqLen: 300, dim: 384, heads: 8 },
  { seqLen: 64, dim: 32, heads: 2 },
  { seqLen: 200, dim: 96, heads: 3, causal: true },
  { seqLen: 256, dim: 384, heads: 12 },
  { seqLen: 333, kvSeqLen: 129, dim: 40, heads: 5, validKeyLength: 100 },
  { seqLen: 512, dim: 384, heads: 8 },
  { seqLen: 512, dim: 384, heads: 8, causal: true },
  { seqLen: 700, dim: 64, heads: 1, causal: true },
];

function label(s: Shape): string {
  return `${s.seqLen}x${s.kvSeqLen ?? s.seqLen} dim=${s.dim} heads=${s.heads}${s.causal ? ' causal' : ''}${s.validKeyLength ? ` valid=${s.validKeyLength}` : ''}`;
}

describe('thread support detection', () => {
  it('finds SharedArrayBuffer, shared wasm memory and workers in Node', () => {
    expect(detectThreadSupport()).toBe(true);
  });

  it('validates thread counts', () => {
    expect(validateThreadCount(1)).toBe(1);
    expect(validateThreadCount(2)).toBe(2);
    for (const bad of [0, -1, 1.5, NaN, Infinity, 65, '2', null]) {
      expect(() => validateThreadCount(bad)).toThrow(RangeError);
    }
  });
});

describe.each(MT_BUILDS)('the threaded module (%s) and its pool', (_build, path) => {
  let x: ThreadedExports;
  let memory: WebAssembly.Memory;
  let pool: ThreadPool;

  beforeAll(async () => {
    const module = new WebAssembly.Module(readFileSync(path));
    memory = createThreadedMemory();
    x = new WebAssembly.Instance(module, threadedImports(memory)).exports as unknown as ThreadedExports;
    pool = await ThreadPool.start(module, memory, x as unknown as WebAssembly.Exports, 1);
  });

  afterAll(async () => {
    await pool?.terminate();
  });

  function copyIn(data: Float32Array): number {
    const ptr = x.qe_alloc(data.length * 4) >>> 0;
    new Float32Array(memory.buffer).set(data, ptr >>> 2);
    return ptr;
  }

  function run(s: Shape, seed: number, threads: number, withReference = true): { out: Float32Array; threads: number; ref: Float64Array | null } {
    const shape = attentionShape(s);
    const Q = uniform(shape.seqLen * shape.dim, seed, -2, 2);
    const K = uniform(shape.kvSeqLen * shape.dim, seed + 1, -2, 2);
    const V = uniform(shape.kvSeqLen * shape.dim, seed + 2);
    const q = copyIn(Q), k = copyIn(K), v = copyIn(V);
    const o = x.qe_alloc(shape.seqLen * shape.dim * 4) >>> 0;
    try {
      const r = pool.attention({
        q, k, v, o, seqLen: shape.seqLen, kvSeqLen: shape.kvSeqLen, dim: shape.dim, heads: shape.heads,
        scale: shape.scale, causal: shape.causal, validKeyLength: shape.validKeyLength, blockQ: 0, blockK: 0,
      }, threads);
        expect(r.status).toBe(0);
      const out = new Float32Array(memory.buffer).slice(o >>> 2, (o >>> 2) + shape.seqLen * shape.dim);
      return { out, threads: r.threads, ref: withReference ? referenceAttention(Q, K, V, shape) : null };
    } finally {
      for (const p of [q, k, v, o]) x.qe_free(p);
    }
  }

  it('has its workers ready', () => {
    expect(pool.size).toBe(1);
    expect(pool.readyWorkers).toBe(1);
  });

  it.each(SHAPES.map((s) => [label(s), s] as const))('two threads equal one thread bit for bit: %s', (_name, s) => {
    const one = run(s, 11, 1, false);
    const two = run(s, 11, 2);
    expect(one.threads).toBe(1);
    const flops = 4 * s.seqLen * (s.kvSeqLen ?? s.seqLen) * s.dim;
    if (flops < MIN_PARALLEL_FLOPS) expect(two.threads).toBe(1);
    else expect([1, 2]).toContain(two.threads);
    expect(Buffer.from(two.out.buffer).equals(Buffer.from(one.out.buffer))).toBe(true);
    expect(maxAbsDiff(two.out, two.ref as Float64Array)).toBeLessThan(2e-6);
  });

  it('uses both threads on large shapes', () => {
    expect(run({ seqLen: 512, dim: 384, heads: 8 }, 5, 2, false).threads).toBe(2);
  });

  it('an error thrown by the caller\'s meanwhile work comes out after the job, whole, and the pool goes on', () => {
    const s = { seqLen: 512, dim: 384, heads: 8 };
    const shape = attentionShape(s);
    const Q = uniform(shape.seqLen * shape.dim, 3, -2, 2);
    const q = copyIn(Q), k = copyIn(Q), v = copyIn(Q);
    const o = x.qe_alloc(shape.seqLen * shape.dim * 4) >>> 0;
    try {
      new Float32Array(memory.buffer).fill(NaN, o >>> 2, (o >>> 2) + shape.seqLen * shape.dim);
      expect(() => pool.attention({
        q, k, v, o, seqLen: shape.seqLen, kvSeqLen: shape.kvSeqLen, dim: shape.dim, heads: shape.heads,
        scale: shape.scale, causal: false, validKeyLength: shape.validKeyLength, blockQ: 0, blockK: 0,
        meanwhile: () => {
          throw new RangeError('no room for the output');
        },
      }, 2)).toThrow('no room for the output');
      // The job ran to the end before the error came out: every output was written.
      const out = new Float32Array(memory.buffer).slice(o >>> 2, (o >>> 2) + shape.seqLen * shape.dim);
      expect(out.every((value) => Number.isFinite(value))).toBe(true);
      expect(pool.readyWorkers).toBe(1);
    } finally {
      for (const p of [q, k, v, o]) x.qe_free(p);
    }
    expect(run(s, 5, 2, false).threads).toBe(2);
  });

  it('reports a bad argument as the single-thread entry does', () => {
    const q = x.qe_alloc(64) >>> 0;
    try {
      const r = pool.attention({
        q, k: q, v: q, o: q, seqLen: 4, kvSeqLen: 4, dim: 4, heads: 3, scale: 0.5,
        causal: false, validKeyLength: 4, blockQ: 0, blockK: 0,
      }, 2);
      expect(r.status).toBe(-1);
    } finally {
      x.qe_free(q);
    }
  });

  it('a job a worker has not taken when the caller runs out of tasks is withdrawn, and the output is the same', () => {
    // Workers that sleep at once make late workers (and so withdrawals) likely; either way every job is whole.
    const s = { seqLen: 128, dim: 128, heads: 4 };
    const want = run(s, 7, 1, false).out;
    setSpinTimes(0, 0, 0);
    recordThreadJobStats(true);
    try {
      for (let i = 0; i < 60; i++) expect(Buffer.from(run(s, 7, 2, false).out.buffer).equals(Buffer.from(want.buffer))).toBe(true);
    } finally {
      setSpinTimes(0, 20, 500);
    }
    const stats = recordThreadJobStats(false);
    expect(stats.length).toBe(60);
    for (const j of stats) {
      expect(j.withdrawn === 0 || j.withdrawn === 1).toBe(true);
      if (j.withdrawn === 1) expect(j.main).toBe(j.tasks);
      expect(j.main).toBeLessThanOrEqual(j.tasks);
    }
    expect(recordThreadJobStats(false)).toEqual([]);
  });

  it('stays consistent over many back-to-back jobs', () => {
    const s = { seqLen: 256, dim: 128, heads: 4 };
    const first = run(s, 3, 2, false).out;
    for (let i = 0; i < 50; i++) expect(Buffer.from(run(s, 3, 2, false).out.buffer).equals(Buffer.from(first.buffer))).toBe(true);
  });
});


describe('createQEFlashAttention with threads', () => {
  let one: QEFlashAttention;
  let two: QEFlashAttention;

  beforeAll(async () => {
    one = await createQEFlashAttention('test-similarity', { blocks: { headsPerBlock: 1 } }, { threads: 1 });
    two = await createQEFlashAttention('test-similarity', { blocks: { headsPerBlock: 1 } }, { threads: 2 });
  });

  afterAll(() => {
    one?.dispose();
    two?.dispose();
  });

  function inputs(s: Shape, seed: number) {
    const shape = attentionShape(s);
    return {
      shape,
      Q: uniform(shape.seqLen * shape.dim, seed, -2, 2),
      K: uniform(shape.kvSeqLen * shape.dim, seed + 1, -2, 2),
      V: uniform(shape.kvSeqLen * shape.dim, seed + 2),
      options: { heads: s.heads, causal: s.causal ?? false, kvSeqLen: s.kvSeqLen, validKeyLength: s.validKeyLength },
    };
  }

  it('threads: 2 loads the threaded build with a worker; threads: 1 the SIMD build and no pool', async () => {
    expect(two.getThreads()).toBe(2);
    expect(one.getThreads()).toBe(1);
    const mt = await loadQEModule({ threads: 2 });
    expect(mt.source.endsWith(AUTO_FILE)).toBe(true);
    expect(mt.kind).toBe(AUTO_KIND);
    expect(mt.pool).not.toBeNull();
    expect(mt.pool?.readyWorkers).toBeGreaterThanOrEqual(1);
    const simdMt = await loadQEModule({ module: 'simd', threads: 2 });
    expect(simdMt.source.endsWith(THREADED_MODULE_FILE)).toBe(true);
    expect(simdMt.kind).toBe('simd');
    expect(simdMt.pool?.readyWorkers).toBeGreaterThanOrEqual(1);
    const st = await loadQEModule({ module: 'simd' });
    expect(st.pool).toBeNull();
    expect(st).not.toBe(simdMt);
  });

  it('the default is min(2, cores) threads with the automatic build', async () => {
    const fa = await createQEFlashAttention('test-similarity');
    try {
      expect(fa.getThreads()).toBe(Math.min(2, availableParallelism()));
    } finally {
      fa.dispose();
    }
  });

  it.each(SHAPES.map((s) => [label(s), s] as const))('threads 2 equal threads 1 bit for bit and match float64: %s', (_name, s) => {
    const { shape, Q, K, V, options } = inputs(s, 21);
    const a = one.computeFlashAttentionSync(Q, K, V, shape.seqLen, shape.dim, options);
    const b = two.computeFlashAttentionSync(Q, K, V, shape.seqLen, shape.dim, options);
    expect(maxAbsDiff(b, a)).toBeLessThanOrEqual(1e-6);
    expect(Buffer.from(b.buffer).equals(Buffer.from(a.buffer))).toBe(true);
    expect(maxAbsDiff(b, referenceAttention(Q, K, V, shape))).toBeLessThan(2e-6);
    const m = two.getMetrics().pop();
    expect(m?.threads).toBe(4 * shape.seqLen * shape.kvSeqLen * shape.dim < MIN_PARALLEL_FLOPS ? 1 : 2);
    expect(one.getMetrics().pop()?.threads).toBe(1);
  });

  it.each([
    // n, dim, queries, k: one query and batches, corpora not a multiple of the panel, k beyond n
    [7001, 384, 1, 10],
    [20011, 101, 1, 25],
    [1501, 64, 40, 7],
    [3000, 33, 21, 4000],
  ])('a similarity index searches on 2 threads exactly as on 1: n %i, dim %i, %i queries, top %i', (n, dim, nq, k) => {
    const corpus = uniform(n * dim, n);
    // Ties across the cut and across task ranges: copies of rows, scaled by powers of two, far apart.
    for (let r = 0; r < n; r += 97) corpus.copyWithin(((r * 31) % n) * dim, r * dim, (r + 1) * dim);
    for (let r = 5; r < n; r += 211) for (let c = 0; c < dim; c++) corpus[((n - 1 - r) * dim) + c] = corpus[r * dim + c] * 4;
    const queries = corpus.slice(0, nq * dim);
    const a = one.createSimilarityIndex(dim);
    const b = two.createSimilarityIndex(dim);
    try {
      a.add(corpus);
      b.add(corpus);
      // Removals move the last rows into the gaps: ids and rows part ways.
      for (const id of [3, 17, n - 5]) {
        a.remove(id);
        b.remove(id);
      }
      recordThreadJobStats(true);
      const got = nq === 1 ? [b.search(queries, k)] : b.searchBatch(queries, k);
      const jobs = recordThreadJobStats(false);
      const want = nq === 1 ? [a.search(queries, k)] : a.searchBatch(queries, k);
      expect(got).toEqual(want);
      expect(got[0].length).toBe(Math.min(k, n - 3));
      // The 2-thread search really was split (every call here is above MIN_PARALLEL_FLOPS).
      expect(2 * nq * (n - 3) * dim).toBeGreaterThanOrEqual(MIN_PARALLEL_FLOPS);
      expect(jobs.length).toBeGreaterThanOrEqual(1);
      expect(jobs[0].tasks).toBeGreaterThan(1);
    } finally {
      a.dispose();
      b.dispose();
    }
  });

  it('the async method gives the same output', async () => {
    const { shape, Q, K, V, options } = inputs({ seqLen: 300, dim: 128, heads: 4 }, 9);
    const a = await two.computeFlashAttention(Q, K, V, shape.seqLen, shape.dim, options);
    expect(Buffer.from(a.buffer).equals(Buffer.from(two.computeFlashAttentionSync(Q, K, V, shape.seqLen, shape.dim, options).buffer))).toBe(true);
    expect(two.getMetrics().pop()?.threads).toBe(2);
  });

  it('bad input is still a RangeError, and leaks nothing', async () => {
    const module = await loadQEModule({ threads: 2 });
    const Q = uniform(64 * 8, 1);
    expectThrow(() => two.computeFlashAttentionSync(Q, Q, Q, 64, 8, { heads: 3 }), RangeError, 'heads');
    expectThrow(() => two.computeFlashAttentionSync(Q, Q, Q, 65, 8), RangeError, '');
    expectThrow(() => two.computeFlashAttentionSync(Q, Q, Q, 64, 8, { validKeyLength: 0 }), RangeError, '');
    await expectReject(two.computeFlashAttention(Q, Q, Q, 64, 8, { heads: 0 }), RangeError, '');
    // Non-finite elements are found in module memory, before the workers run.
    const bad = Q.slice();
    bad[300] = -Infinity;
    expectThrow(() => two.computeFlashAttentionSync(Q, Q, bad, 64, 8), RangeError, 'V[300] is -Infinity; every element must be finite');
    // Finite inputs whose scores overflow, found after the workers ran.
    const huge = Q.map((x) => x * 1e20);
    expectThrow(() => two.computeFlashAttentionSync(huge, huge, Q, 64, 8), RangeError, 'overflowed float32');
    expect(module.liveAllocations).toBe(0);
    // And the pool still works afterwards.
    const { shape, Q: q, K, V, options } = inputs({ seqLen: 256, dim: 64, heads: 2 }, 4);
    expect(maxAbsDiff(two.computeFlashAttentionSync(q, K, V, 256, 64, options), referenceAttention(q, K, V, shape))).toBeLessThan(2e-6);
    expect(module.liveAllocations).toBe(0);
  });

  it('without the threaded build, threads: 2 falls back to the single-thread build', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'qe-flash-no-mt-'));
    try {
      for (const file of ['qe-flash-simd.wasm', 'qe-flash-scalar.wasm']) copyFileSync(resolve(ROOT, 'wasm', file), join(dir, file));
      const fa = await createQEFlashAttention('test-similarity', { blocks: { headsPerBlock: 4 } }, { threads: 2, wasmUrl: pathToFileURL(dir).href + '/' });
      expect(fa.getThreads()).toBe(1);
      const { shape, Q, K, V, options } = inputs({ seqLen: 512, dim: 128, heads: 4 }, 2);
      const out = fa.computeFlashAttentionSync(Q, K, V, shape.seqLen, shape.dim, options);
      expect(fa.getMetrics()[0]).toMatchObject({ threads: 1, module: 'simd' });
      expect(maxAbsDiff(out, referenceAttention(Q, K, V, shape))).toBeLessThan(2e-6);
      fa.dispose();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('threads above the core count are clamped to it, and every call\'s metrics say so', async () => {
    const cores = availableParallelism();
    const asked = Math.min(64, cores + 3);
    const fa = await createQEFlashAttention('test-similarity', { blocks: { headsPerBlock: 4 } }, { threads: asked });
    try {
      expect(fa.getThreads()).toBe(cores);
      const module = await loadQEModule({ threads: asked });
      // Workers for the cores, not for what was asked: the calling thread is one of them.
      expect(module.pool === null ? 0 : module.pool.size).toBeLessThanOrEqual(cores - 1);
      const { shape, Q, K, V, options } = inputs({ seqLen: 256, dim: 128, heads: 4 }, 5);
      const out = fa.computeFlashAttentionSync(Q, K, V, shape.seqLen, shape.dim, options);
      expect(maxAbsDiff(out, referenceAttention(Q, K, V, shape))).toBeLessThan(2e-6);
      fa.computeTestSimilaritySync(Q.subarray(0, 128), [K.subarray(0, 128), V.subarray(0, 128)], 1);
      const metrics = fa.getMetrics();
      expect(metrics).toHaveLength(2);
      for (const m of metrics) {
        expect(m.threads).toBeLessThanOrEqual(cores);
        expect(m.warnings).toEqual([`loadOptions.threads: ${asked} asked for, clamped to ${cores}: this process may use ${cores} core${cores === 1 ? '' : 's'}, and more threads than cores only take turns on them`]);
      }
    } finally {
      fa.dispose();
    }
    // Within the core count nothing is clamped and no warning is recorded.
    const fine = await createQEFlashAttention('test-similarity', { blocks: { headsPerBlock: 4 } }, { threads: Math.min(2, cores) });
    fine.computeFlashAttentionSync(new Float32Array(8), new Float32Array(8), new Float32Array(8), 2, 4, { heads: 1 });
    expect(fine.getThreads()).toBe(Math.min(2, cores));
    expect(fine.getMetrics()[0].warnings).toBeUndefined();
    fine.dispose();
  });

  it('bad thread counts are RangeErrors', async () => {
    for (const threads of [0, -2, 1.5, 65, NaN]) {
      await expectReject(createQEFlashAttention('test-similarity', {}, { threads }), RangeError, 'threads must be an integer from 1 to 64');
    }
    await expectReject(createQEFlashAttention('test-similarity', {}, { module: 'scalar', threads: 2 }), RangeError, 'scalar build runs on one thread');
  });

  it('results stay right after the shared memory grows', async () => {
    const module = await loadQEModule({ threads: 2 });
    const before = module.memoryBytes;
    module.scope((scope) => scope.alloc(before + 32 * 2 ** 20));
    expect(module.memoryBytes).toBeGreaterThan(before);
    const { shape, Q, K, V, options } = inputs({ seqLen: 512, dim: 96, heads: 2, causal: true }, 8);
    const out = two.computeFlashAttentionSync(Q, K, V, shape.seqLen, shape.dim, options);
    expect(two.getMetrics().pop()?.threads).toBe(2);
    expect(maxAbsDiff(out, referenceAttention(Q, K, V, shape))).toBeLessThan(2e-6);
    expect(module.liveAllocations).toBe(0);
  });

  it('dispatch survives nudges without jobs, and workers that sleep or spin', () => {
    const { shape, Q, K, V, options } = inputs({ seqLen: 256, dim: 128, heads: 4, causal: true }, 31);
    const want = one.computeFlashAttentionSync(Q, K, V, shape.seqLen, shape.dim, options);
    const tiny = inputs({ seqLen: 3, dim: 8, heads: 2 }, 5);
    const wantTiny = one.computeFlashAttentionSync(tiny.Q, tiny.K, tiny.V, 3, 8, tiny.options);
    const settings: [number, number, number][] = [[0, 0, 0], [2000, 20, 10000], [0, 20, 300], [50, 0, 0]];
    try {
      for (let i = 0; i < 120; i++) {
        const [w, m, n] = settings[i % settings.length];
        setSpinTimes(w, m, n);
        // A call that wakes the workers and then fails its checks: no job follows the nudge.
        if (i % 3 === 0) expect(() => two.computeFlashAttentionSync(Q, K, V, shape.seqLen, shape.dim, { ...options, heads: 3 })).toThrow(RangeError);
        if (i % 5 === 0) expect(Buffer.from(two.computeFlashAttentionSync(tiny.Q, tiny.K, tiny.V, 3, 8, tiny.options).buffer).equals(Buffer.from(wantTiny.buffer))).toBe(true);
        const got = two.computeFlashAttentionSync(Q, K, V, shape.seqLen, shape.dim, options);
        expect(Buffer.from(got.buffer).equals(Buffer.from(want.buffer))).toBe(true);
        expect(two.getMetrics().pop()?.threads).toBe(2);
      }
    } finally {
      setSpinTimes(0, 20, 500);
    }
  });

  it('workers stop when the last instance using them is disposed, and come back for a new one', async () => {
    const module = await loadQEModule({ threads: 2 });
    const pool = module.pool as ThreadPool;
    const extra = await createQEFlashAttention('test-similarity', {}, { threads: 2 });
    two.dispose();
    extra.dispose();
    await pool.ensureWorkers(0); // waits for the queued stop
    expect(pool.size).toBe(0);
    const again = await createQEFlashAttention('test-similarity', { blocks: { headsPerBlock: 4 } }, { threads: 2 });
    try {
      expect(pool.readyWorkers).toBe(1);
      const { shape, Q, K, V, options } = inputs({ seqLen: 512, dim: 128, heads: 4 }, 12);
      const out = again.computeFlashAttentionSync(Q, K, V, shape.seqLen, shape.dim, options);
      expect(again.getMetrics().pop()?.threads).toBe(2);
      expect(maxAbsDiff(out, referenceAttention(Q, K, V, shape))).toBeLessThan(2e-6);
    } finally {
      again.dispose();
    }
  });
});

describe('process lifetime', () => {
  it('a Node process with a live pool exits by itself', () => {
    // A child process that starts two workers, runs a job and then just ends
    // its script: it must exit on its own, promptly (dist/ is built by make dist).
    const child = `
      const { readFileSync } = require('node:fs');
      const t = require(${JSON.stringify(resolve(ROOT, 'dist/cjs/js/threads.js'))});
      const wasmModule = new WebAssembly.Module(readFileSync(${JSON.stringify(MT_PATH)}));
      const memory = t.createThreadedMemory();
      const x = new WebAssembly.Instance(wasmModule, t.threadedImports(memory)).exports;
      t.ThreadPool.start(wasmModule, memory, x, 2).then((pool) => {
        const n = 256 * 256;
        const q = x.qe_alloc(n * 4), o = x.qe_alloc(n * 4);
        new Float32Array(memory.buffer).fill(0.5, q >> 2, (q >> 2) + n);
        const r = pool.attention({ q, k: q, v: q, o, seqLen: 256, kvSeqLen: 256, dim: 256, heads: 4, scale: 0.125,
          causal: false, validKeyLength: 256, blockQ: 0, blockK: 0 }, 3);
        process.stdout.write('threads=' + r.threads + ' ready=' + pool.readyWorkers + '\\n');
      });
    `;
    const started = Date.now();
    const out = execFileSync(process.execPath, ['-e', child], { encoding: 'utf8', timeout: 20000 });
    expect(out.trim()).toBe('threads=3 ready=2');
    expect(Date.now() - started).toBeLessThan(10000);
  });

  it('the package entry on two threads: the process exits by itself without dispose', () => {
    const child = `
      const { createQEFlashAttention } = require(${JSON.stringify(resolve(ROOT, 'dist/cjs/js/index.js'))});
      createQEFlashAttention('test-similarity', { blocks: { headsPerBlock: 8 } }).then((fa) => {
        const n = 512 * 384, x = new Float32Array(n).map((_, i) => Math.sin(i));
        fa.computeFlashAttentionSync(x, x, x, 512, 384);
        const m = fa.getMetrics()[0];
        process.stdout.write(m.threads + ' ' + fa.getThreads() + '\\n');
      });
    `;
    const started = Date.now();
    const out = execFileSync(process.execPath, ['-e', child], { encoding: 'utf8', timeout: 20000 });
    expect(out.trim()).toBe('2 2');
    expect(Date.now() - started).toBeLessThan(10000);
  });
});

afterAll(async () => {
  await terminateThreadPools();
});
