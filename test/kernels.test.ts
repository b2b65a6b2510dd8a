/**
 * The backend's kernels against the float64 reference on awkward shapes, on
 * both builds, and the builds against each other; capabilities; benchmarks.
 */
import type { ModuleKind } from '../types';
import { getWASMSIMDBackend, type WASMSIMDBackend } from '../js/backend';
import { RELAXED_SIMD_PROBE } from '../js/loader';
import { loadModule, MODULE_KINDS } from './helpers';
import {
  maxAbsDiff,
  maxRelDiff,
  referenceEmbeddingLookup,
  referenceLayerNorm,
  referenceMatmul,
  referenceSoftmax,
  referenceVecAdd,
  uniform,
} from './reference';

const backends = {} as Record<ModuleKind, WASMSIMDBackend>;

beforeAll(async () => {
  for (const kind of MODULE_KINDS) backends[kind] = await getWASMSIMDBackend({ module: kind });
});

const MATMUL_SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [1, 7, 3],
  [5, 1, 9],
  [4, 8, 1],
  [3, 5, 2],
  [13, 17, 19],
  [33, 65, 31],
  [64, 64, 64],
  [100, 3, 250],
  [3, 129, 7],
  [127, 9, 300],
  [200, 200, 200],
];

describe.each(MATMUL_SHAPES)('matmul %i x %i x %i', (m, n, k) => {
  test('every build matches the reference and the others', () => {
    const a = uniform(m * k, m * 1000 + k);
    const b = uniform(k * n, n * 1000 + k + 1);
    const expected = referenceMatmul(a, b, m, n, k);
    // Float32 accumulation of k products of magnitude <= 1.
    const tolerance = 2 ** -24 * 4 * k + 1e-7;
    const outs = MODULE_KINDS.map((kind) => backends[kind].matmulSIMD(a, b, m, n, k));
    for (const out of outs) {
      expect(out).toHaveLength(m * n);
      expect(maxAbsDiff(out, expected)).toBeLessThanOrEqual(tolerance);
    }
    for (const out of outs.slice(1)) expect(maxAbsDiff(outs[0], out)).toBeLessThanOrEqual(2 * tolerance);
  });
});

describe.each(MODULE_KINDS)('%s build', (kind: ModuleKind) => {
  const backend = () => backends[kind];

  test.each([1, 2, 3, 4, 5, 7, 8, 15, 16, 17, 1000, 65537])('vecAdd of length %i is exact', (len) => {
    const a = uniform(len, len);
    const b = uniform(len, len + 1);
    const out = backend().vecAddSIMD(a, b);
    const expected = Float32Array.from(referenceVecAdd(a, b));
    expect(maxAbsDiff(out, expected)).toBe(0);
  });

  test.each([1, 3, 4, 7, 8, 384])('embeddingLookup of dim %i copies rows exactly', (dim) => {
    const rows = 11;
    const table = uniform(rows * dim, dim);
    const ids = [0, 10, 3, 3, 7, 1, 10, 0, 5];
    const fromArray = backend().embeddingLookupSIMD(ids, table, dim);
    const fromInt32 = backend().embeddingLookupSIMD(Int32Array.from(ids), table, dim);
    const expected = referenceEmbeddingLookup(ids, table, dim);
    expect(maxAbsDiff(fromArray, expected)).toBe(0);
    expect(maxAbsDiff(fromInt32, expected)).toBe(0);
    expect(backend().embeddingLookupSIMD([], table, dim)).toHaveLength(0);
  });

  test.each([
    [1, 1],
    [1, 2],
    [1, 3],
    [2, 5],
    [3, 17],
    [4, 64],
    [2, 1000],
    [1, 4099],
  ])('softmax of %i rows of %i', (rows, len) => {
    const x = uniform(rows * len, rows * 10 + len, -10, 10);
    const out = backend().softmaxSIMD(x, len);
    const expected = referenceSoftmax(x, len);
    expect(maxRelDiff(out, expected, 1e-30)).toBeLessThanOrEqual(1e-5);
    expect(maxAbsDiff(out, expected)).toBeLessThanOrEqual(1e-6);
  });

  test('softmax is stable for large magnitudes and defaults to one row', () => {
    const x = Float32Array.of(1000, 999, -1000, 1000, 0, 88.8, -88.8);
    const out = backend().softmaxSIMD(x);
    const expected = referenceSoftmax(x, x.length);
    expect(out.every(Number.isFinite)).toBe(true);
    expect(maxAbsDiff(out, expected)).toBeLessThanOrEqual(1e-6);
    const sum = out.reduce((s, v) => s + v, 0);
    expect(Math.abs(sum - 1)).toBeLessThanOrEqual(1e-6);
  });

  test.each([
    [1, 1],
    [1, 3],
    [2, 5],
    [3, 17],
    [4, 384],
    [2, 1001],
  ])('layerNorm of %i rows of %i', (rows, len) => {
    const x = uniform(rows * len, rows * 7 + len, -3, 5);
    const gamma = uniform(len, len + 1, 0.5, 1.5);
    const beta = uniform(len, len + 2);
    for (const eps of [1e-5, 1e-3]) {
      const out = eps === 1e-5 ? backend().layerNormSIMD(x, gamma, beta) : backend().layerNormSIMD(x, gamma, beta, eps);
      expect(maxAbsDiff(out, referenceLayerNorm(x, gamma, beta, eps))).toBeLessThanOrEqual(1e-5);
    }
  });

  test('capabilities say which build runs', async () => {
    const caps = backend().getCapabilities();
    expect(caps.supported).toBe(true);
    expect(caps.simd128).toBe(true); // Node 20 validates SIMD128
    expect(caps.relaxedSimd).toBe(WebAssembly.validate(RELAXED_SIMD_PROBE));
    expect(caps.module).toBe(kind);
    expect(backend().isSIMDAvailable()).toBe(kind !== 'scalar');
    if (kind !== 'scalar') expect(caps.vectorOps).toEqual(expect.arrayContaining(['attention', 'matmul', 'softmax', 'layerNorm']));
    else expect(caps.vectorOps).toEqual([]);
    const module = await loadModule(kind);
    expect(module.kind).toBe(kind);
  });

  test('benchmarkOperation times a built-in operation call by call', async () => {
    const result = await backend().benchmarkOperation('matmul', 15);
    expect(result.operation).toBe('matmul');
    expect(result.iterations).toBe(15);
    expect(result.warmupIterations).toBe(3);
    expect(result.module).toBe(kind);
    expect(result.minMs).toBeGreaterThan(0);
    expect(result.minMs).toBeLessThanOrEqual(result.medianMs);
    expect(result.medianMs).toBeLessThanOrEqual(result.maxMs);
    expect(result.meanMs).toBeGreaterThanOrEqual(result.minMs);
    expect(result.opsPerSecond).toBeCloseTo(1000 / result.medianMs, 6);
    for (const op of ['vecAdd', 'softmax', 'layerNorm', 'embeddingLookup'] as const) {
      expect((await backend().benchmarkOperation(op, 2, { warmup: 1 })).operation).toBe(op);
    }
  });

  test('benchmarkOperation runs a function warm-up + iterations times and awaits it', async () => {
    let calls = 0;
    const result = await backend().benchmarkOperation(
      async () => {
        calls++;
        await new Promise((resolve) => setTimeout(resolve, 2));
      },
      5,
      { warmup: 2, name: 'sleep' },
    );
    expect(calls).toBe(7);
    expect(result.operation).toBe('sleep');
    expect(result.minMs).toBeGreaterThanOrEqual(1);
  });
});

test('getWASMSIMDBackend returns one backend per build', async () => {
  expect(await getWASMSIMDBackend({ module: 'simd' })).toBe(backends.simd);
  expect(await getWASMSIMDBackend({ module: 'scalar' })).toBe(backends.scalar);
  expect(backends.simd).not.toBe(backends.scalar);
});
