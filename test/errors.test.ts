/**
 * Bad calls get clear errors of the right class, and never leak module memory.
 */
import type { ModuleKind } from '../types';
import { createQEFlashAttention, QEFlashAttention } from '../js/flash-attention';
import { getWASMSIMDBackend, WASMSIMDBackend } from '../js/backend';
import { FlashAttentionBenchmark } from '../js/benchmark';
import { referenceAttention, attentionShape } from './reference';
import { runAttention } from '../js/attention';
import { checkStatus, QE_STATUS, type QEModule } from '../js/module';
import { validateAttention } from '../js/validate';
import { createOn, expectReject, expectThrow, loadModule, MODULE_KINDS } from './helpers';
import { uniform } from './reference';

const n = 8;
const dim = 4;
const good = (): [Float32Array, Float32Array, Float32Array] => [uniform(n * dim, 1), uniform(n * dim, 2), uniform(n * dim, 3)];

describe.each(MODULE_KINDS)('%s build', (kind: ModuleKind) => {
  let fa: QEFlashAttention;
  let module: QEModule;
  let liveBefore: number;
  let bytesBefore: number;

  beforeAll(async () => {
    module = await loadModule(kind);
    fa = await createOn(kind, { headsPerBlock: 2 });
  });

  beforeEach(() => {
    liveBefore = module.liveAllocations;
    bytesBefore = module.liveBytes;
  });

  afterEach(() => {
    // Whatever failed, nothing stays allocated in the module.
    expect(module.liveAllocations).toBe(liveBefore);
    expect(module.liveBytes).toBe(bytesBefore);
  });

  const call = (
    Q: unknown,
    K: unknown,
    V: unknown,
    seqLen: unknown,
    d: unknown,
    options?: unknown,
  ) => () =>
    fa.computeFlashAttentionSync(
      Q as Float32Array,
      K as Float32Array,
      V as Float32Array,
      seqLen as number,
      d as number,
      options as never,
    );

  test('inputs of the wrong type are TypeErrors', () => {
    const [Q, K, V] = good();
    expectThrow(call(new Float64Array(n * dim), K, V, n, dim), TypeError, 'Q must be a Float32Array, got a Float64Array');
    expectThrow(call(Q, Array.from(K), V, n, dim), TypeError, 'K must be a Float32Array, got an array of length 32');
    expectThrow(call(Q, K, null, n, dim), TypeError, 'V must be a Float32Array, got null');
    expectThrow(call(Q, K, V, '8', dim), TypeError, 'seqLen must be a number, got the string "8"');
    expectThrow(call(Q, K, V, n, dim, 'causal'), TypeError, 'options must be an object');
    expectThrow(call(Q, K, V, n, dim, { causal: 1 }), TypeError, 'options.causal must be a boolean, got the number 1');
    expectThrow(call(Q, K, V, n, dim, { scale: '2' }), TypeError, 'options.scale must be a number');
    expectThrow(call(Q, K, V, n, dim, { casual: true }), TypeError, "unknown attention option 'casual'");
  });

  test('wrong lengths are RangeErrors that give the numbers', () => {
    const [Q, K, V] = good();
    expectThrow(call(Q.subarray(0, 30), K, V, n, dim), RangeError, 'Q has length 30 but seqLen x dim = 8 x 4 = 32');
    expectThrow(call(Q, K.subarray(1), V, n, dim), RangeError, 'K has length 31 but kvSeqLen x dim = 8 x 4 = 32');
    expectThrow(call(Q, K, V, n, dim, { kvSeqLen: 9 }), RangeError, 'K has length 32 but kvSeqLen x dim = 9 x 4 = 36');
    expectThrow(call(Q, K, new Float32Array(33), n, dim), RangeError, 'V has length 33 but kvSeqLen x dim = 8 x 4 = 32');
  });

  test('NaN and Infinity anywhere in the inputs are RangeErrors', () => {
    for (const [which, index, value] of [
      [0, 5, NaN],
      [1, 31, Infinity],
      [2, 0, -Infinity],
      [0, 31, Infinity],
    ] as const) {
      const inputs = good();
      inputs[which][index] = value;
      const name = 'QKV'[which];
      expectThrow(call(...inputs, n, dim), RangeError, `${name}[${index}] is ${value}; every element must be finite`);
    }
  });

  test('the first NaN or Infinity is the one named, in blocks of any length', () => {
    // 67 x 12 = 804 elements: full 64-element blocks, then a tail of 36.
    const rows = 67, width = 12;
    for (const [which, first, second] of [[0, 0, 1], [1, 63, 64], [2, 64, 803], [0, 700, 701], [1, 803, 803]] as const) {
      const inputs = [uniform(rows * width, 1), uniform(rows * width, 2), uniform(rows * width, 3)];
      inputs[which][second] = NaN;
      inputs[which][first] = Infinity;
      const name = 'QKV'[which];
      expectThrow(call(inputs[0], inputs[1], inputs[2], rows, width), RangeError, `${name}[${first}] is Infinity; every element must be finite`);
    }
  });

  test.each([
    [0, 'seqLen must be at least 1, got 0'],
    [-1, 'seqLen must be at least 1, got -1'],
    [1.5, 'seqLen must be an integer, got 1.5'],
    [NaN, 'seqLen must be an integer, got NaN'],
    [Infinity, 'seqLen must be an integer, got Infinity'],
    [2 ** 31, 'seqLen must be at most 2147483647'],
  ])('seqLen %p is a RangeError', (seqLen, message) => {
    const [Q, K, V] = good();
    expectThrow(call(Q, K, V, seqLen, dim), RangeError, message);
  });

  test('bad dim, heads, kvSeqLen, validKeyLength and scale are RangeErrors', () => {
    const [Q, K, V] = good();
    expectThrow(call(Q, K, V, n, 0), RangeError, 'dim must be at least 1, got 0');
    expectThrow(call(Q, K, V, n, dim, { heads: 3 }), RangeError, 'dim 4 is not a multiple of heads 3');
    expectThrow(call(Q, K, V, n, dim, { heads: 0 }), RangeError, 'options.heads must be at least 1, got 0');
    expectThrow(call(Q, K, V, n, dim, { kvSeqLen: -2 }), RangeError, 'options.kvSeqLen must be at least 1, got -2');
    expectThrow(call(Q, K, V, n, dim, { validKeyLength: 0 }), RangeError, 'validKeyLength must be an integer in [1, kvSeqLen = 8], got 0');
    expectThrow(call(Q, K, V, n, dim, { validKeyLength: 9 }), RangeError, 'validKeyLength must be an integer in [1, kvSeqLen = 8], got 9');
    expectThrow(call(Q, K, V, n, dim, { validKeyLength: 2.5 }), RangeError, 'got 2.5');
    expectThrow(call(Q, K, V, n, dim, { scale: NaN }), RangeError, 'options.scale must be finite, got NaN');
    expectThrow(call(Q, K, V, n, dim, { scale: -Infinity }), RangeError, 'options.scale must be finite, got -Infinity');
  });

  test('heads from the preset that do not divide dim are a RangeError', async () => {
    const preset = await createQEFlashAttention('defect-matching', undefined, { module: kind }); // 12 heads
    const [Q, K, V] = good();
    expectThrow(() => preset.computeFlashAttentionSync(Q, K, V, n, dim), RangeError, 'dim 4 is not a multiple of heads 12');
  });

  test('the async methods reject with the same errors', async () => {
    const [Q, K, V] = good();
    await expectReject(fa.computeFlashAttention(Q, K, V, 0, dim), RangeError, 'seqLen must be at least 1, got 0');
    await expectReject(fa.computeBaselineAttention(Q, K, V, n, dim, { heads: 3 }), RangeError, 'not a multiple of heads 3');
    await expectReject(fa.computeFlashAttention(Q, K, new Int8Array(32) as never, n, dim), TypeError, 'V must be a Float32Array');
  });

  test('an instance still works after failed calls', async () => {
    const [Q, K, V] = good();
    expect(() => fa.computeFlashAttentionSync(Q, K, V, n, 3)).toThrow(RangeError);
    const out = await fa.computeFlashAttention(Q, K, V, n, dim);
    expect(out.every(Number.isFinite)).toBe(true);
  });

  test('status codes from the module become errors, and the call frees what it allocated', () => {
    const [Q, K, V] = good();
    // Bypass the TypeScript checks to reach the C checks: heads that do not divide dim.
    const bad = { ...validateAttention(Q, K, V, n, dim, {}, { heads: 2, causal: false }), heads: 3 };
    expectThrow(() => runAttention(module, Q, K, V, bad, 64, 64), RangeError, 'QE_ERR_ARGUMENT');
    // An id outside the table reaches qe_embedding_lookup only this way.
    expectThrow(() => module.embeddingLookup(Int32Array.of(0, 5), new Float32Array(8), 2, 4), RangeError, 'QE_ERR_INDEX');
  });

  test('allocations that cannot succeed are RangeErrors and free the rest of the scope', () => {
    expectThrow(
      () =>
        module.scope((s) => {
          s.alloc(1024);
          s.alloc(2 ** 32);
        }),
      RangeError,
      'out of module memory',
    );
  });

  test('backend calls check their arguments', async () => {
    const backend = await getWASMSIMDBackend({ module: kind });
    const a = uniform(6, 1);
    expectThrow(() => backend.matmulSIMD(a, a, 2, 3, 4), RangeError, 'a has length 6 but m x k = 2 x 4 = 8');
    expectThrow(() => backend.matmulSIMD(a, a, 2, 0, 3), RangeError, 'n must be at least 1, got 0');
    expectThrow(() => backend.matmulSIMD([1] as never, a, 1, 1, 1), TypeError, 'a must be a Float32Array');
    expectThrow(() => backend.vecAddSIMD(a, uniform(5, 2)), RangeError, 'b has length 5 but a.length = 6');
    expectThrow(() => backend.vecAddSIMD(new Float32Array(0), new Float32Array(0)), RangeError, 'a is empty');
    const table = uniform(12, 3);
    expectThrow(() => backend.embeddingLookupSIMD([0, 3], table, 4), RangeError, 'ids[1] is 3, outside the table\'s rows [0, 3)');
    expectThrow(() => backend.embeddingLookupSIMD(Int32Array.of(-1), table, 4), RangeError, 'ids[0] is -1');
    expectThrow(() => backend.embeddingLookupSIMD([0.5], table, 4), RangeError, 'ids[0] must be an integer, got 0.5');
    expectThrow(() => backend.embeddingLookupSIMD(['0'] as never, table, 4), TypeError, 'ids[0] must be a number');
    expectThrow(() => backend.embeddingLookupSIMD(new Uint32Array(1) as never, table, 4), TypeError, 'ids must be an Int32Array');
    expectThrow(() => backend.embeddingLookupSIMD([0], table, 5), RangeError, 'table has length 12, which is not a positive multiple of dim 5');
    expectThrow(() => backend.softmaxSIMD(new Float32Array(0)), RangeError, 'x is empty');
    expectThrow(() => backend.softmaxSIMD(Float32Array.of(1, NaN)), RangeError, 'x[1] is NaN');
    expectThrow(() => backend.softmaxSIMD(a, 4), RangeError, 'x has length 6, which is not a multiple of the row length 4');
    expectThrow(() => backend.layerNormSIMD(a, uniform(3, 4), uniform(2, 5)), RangeError, 'beta has length 2 but gamma.length = 3');
    expectThrow(() => backend.layerNormSIMD(a, uniform(4, 4), uniform(4, 5)), RangeError, 'not a multiple of the row length 4');
    expectThrow(() => backend.layerNormSIMD(a, uniform(3, 4), uniform(3, 5), -1), RangeError, 'eps must be positive (with 0 a constant row divides by its zero variance), got -1');
    await expectReject(backend.benchmarkOperation('fft' as never, 3), RangeError, 'unknown operation "fft"');
    await expectReject(backend.benchmarkOperation('matmul', 0), RangeError, 'iterations must be at least 1, got 0');
  });
});

describe('disposed instances', () => {
  test('every method throws a clear TypeError after dispose, and dispose may be repeated', async () => {
    const fa = await createQEFlashAttention('pattern-adaptation');
    const [Q, K, V] = good();
    fa.dispose();
    fa.dispose();
    const message = /has been disposed; create a new one with createQEFlashAttention/;
    expectThrow(() => fa.computeFlashAttentionSync(Q, K, V, n, dim), TypeError, message);
    await expectReject(fa.computeFlashAttention(Q, K, V, n, dim), TypeError, message);
    await expectReject(fa.computeBaselineAttention(Q, K, V, n, dim), TypeError, message);
    expectThrow(() => fa.getMetrics(), TypeError, message);
    expectThrow(() => fa.getAverageSpeedup(), TypeError, message);
    expectThrow(() => fa.getConfig(), TypeError, message);
    expectThrow(() => fa.updateConfig({ useCausalMask: true }), TypeError, message);
    expectThrow(() => fa.resetMetrics(), TypeError, message);
    expectThrow(() => fa.getWorkload(), TypeError, message);
  });
});

describe('the constructors of the original module', () => {
  test('before initialize(): Sync methods say to initialize, async ones initialize themselves', async () => {
    const [Q, K, V] = good();
    const fa = new QEFlashAttention('test-similarity', { blocks: { headsPerBlock: 2 } }, { module: 'scalar' });
    expect(fa.getThreads()).toBe(1);
    expect(fa.getConfig().blocks.headsPerBlock).toBe(2);
    expectThrow(() => fa.computeFlashAttentionSync(Q, K, V, n, dim), Error, 'is not initialized; call await initialize() first');
    expectThrow(() => fa.createSimilarityIndex(), Error, 'is not initialized');
    const out = await fa.computeFlashAttention(Q, K, V, n, dim);
    const want = referenceAttention(Q, K, V, attentionShape({ seqLen: n, dim, heads: 2 }));
    expect(Math.max(...Array.from(out, (x, i) => Math.abs(x - want[i])))).toBeLessThan(1e-5);
    expect(fa.computeFlashAttentionSync(Q, K, V, n, dim)).toEqual(out);
    fa.dispose();
  });

  test('disposed while initializing: stays disposed', async () => {
    const fa = new QEFlashAttention('defect-matching', undefined, { module: 'scalar' });
    const loading = fa.initialize();
    fa.dispose();
    await expectReject(loading, TypeError, 'has been disposed');
    await expectReject(fa.initialize(), TypeError, 'has been disposed');
  });

  test('bad constructor arguments throw at once', () => {
    expectThrow(() => new QEFlashAttention('nope' as never), RangeError, 'unknown workload "nope"');
    expectThrow(() => new QEFlashAttention('test-similarity', { dim: 384, strategy: 'linear' }), RangeError, `config.strategy "linear" (agentic-qe 3.14) is not computed`);
    expectThrow(() => new QEFlashAttention('test-similarity', { dropoutRate: -0.5 }), RangeError, 'config.dropoutRate must be in [0, 1], got -0.5');
    expectThrow(() => new QEFlashAttention('test-similarity', { strategy: 'fast' as never }), RangeError, "(or agentic-qe 3.14's 'flash')");
  });

  test('a WASMSIMDBackend says to initialize, and after dispose that it is disposed', async () => {
    const backend = new WASMSIMDBackend({ module: 'scalar' });
    expect(backend.isInitialized()).toBe(false);
    expectThrow(() => backend.vecAddSIMD(new Float32Array(1), new Float32Array(1)), Error, 'not initialized; call await backend.initialize() first');
    await expectReject(backend.benchmarkOperation('vecadd', 1), Error, 'not initialized');
    await backend.initialize();
    expect(backend.getCapabilities()).toMatchObject({ module: 'scalar', vectorOps: [], expectedSpeedup: { min: 1, max: 1 } });
    backend.dispose();
    await expectReject(backend.initialize(), TypeError, 'has been disposed');
    expectThrow(() => backend.getCapabilities(), TypeError, 'has been disposed');
  });

  test('exportResultsToFile needs a path', () => {
    expectThrow(() => new FlashAttentionBenchmark().exportResultsToFile('' as string), TypeError, 'path must be a non-empty string, got an empty string');
    expectThrow(() => new FlashAttentionBenchmark().exportResultsToFile(7 as never), TypeError, 'path must be a non-empty string, got number');
  });
});

describe('workloads, configurations and module choices', () => {
  test('an unknown workload is a RangeError listing the valid ones', async () => {
    await expectReject(
      createQEFlashAttention('unit-testing' as never),
      RangeError,
      'unknown workload "unit-testing"; valid workloads are: test-similarity, code-embedding, defect-matching, coverage-analysis, pattern-adaptation',
    );
  });

  test('bad custom configurations are rejected', async () => {
    await expectReject(createQEFlashAttention('test-similarity', { dropoutRate: 1.5 }), RangeError, 'config.dropoutRate must be in [0, 1], got 1.5');
    await expectReject(
      createQEFlashAttention('test-similarity', { blocks: { queryChunkSize: 0 } }),
      RangeError,
      'config.blocks.queryChunkSize must be at least 1, got 0',
    );
    await expectReject(createQEFlashAttention('test-similarity', { dim: 1.5 }), RangeError, 'config.dim must be an integer, got 1.5');
    await expectReject(createQEFlashAttention('test-similarity', { useCausalMask: 'no' as never }), TypeError, 'config.useCausalMask must be a boolean');
    await expectReject(createQEFlashAttention('test-similarity', { backend: 'webgpu' as never }), RangeError, 'config.backend must be one of wasm-simd, native, gpu, hybrid, js-fallback; got the string "webgpu"');
  });

  test('a rejected updateConfig leaves the configuration as it was', async () => {
    const fa = await createQEFlashAttention('test-similarity');
    const before = fa.getConfig();
    expectThrow(() => fa.updateConfig({ blocks: { kvChunkSize: -4 } }), RangeError, 'config.blocks.kvChunkSize must be at least 1, got -4');
    expect(fa.getConfig()).toEqual(before);
  });

  test('an unknown module choice is a RangeError', async () => {
    await expectReject(createQEFlashAttention('test-similarity', {}, { module: 'gpu' as never }), RangeError, "module must be 'auto', 'simd', 'scalar' or 'relaxed'");
  });

  test('an unknown QE_FLASH_MODULE is a RangeError', async () => {
    const saved = process.env.QE_FLASH_MODULE;
    process.env.QE_FLASH_MODULE = 'avx';
    try {
      await expectReject(createQEFlashAttention('test-similarity'), RangeError, "QE_FLASH_MODULE must be 'simd', 'scalar' or 'relaxed', got \"avx\"");
    } finally {
      if (saved === undefined) delete process.env.QE_FLASH_MODULE;
      else process.env.QE_FLASH_MODULE = saved;
    }
  });

  test('threads above 1 with the scalar build forced by QE_FLASH_MODULE is a RangeError, not a silent single thread', async () => {
    const saved = process.env.QE_FLASH_MODULE;
    process.env.QE_FLASH_MODULE = 'scalar';
    try {
      await expectReject(createQEFlashAttention('test-similarity', {}, { threads: 2 }), RangeError, 'forced by QE_FLASH_MODULE');
      const one = await createQEFlashAttention('test-similarity', {}, { threads: 1 });
      expect(one.getThreads()).toBe(1);
      one.dispose();
    } finally {
      if (saved === undefined) delete process.env.QE_FLASH_MODULE;
      else process.env.QE_FLASH_MODULE = saved;
    }
  });

  test('a wasmUrl that does not exist is an Error naming it', async () => {
    await expectReject(
      createQEFlashAttention('test-similarity', {}, { module: 'scalar', wasmUrl: '/nonexistent/qe-flash.wasm' }),
      Error,
      /cannot read the module at \/nonexistent\/qe-flash.wasm \(wasmUrl\): ENOENT/,
    );
  });
});

describe('status codes', () => {
  test.each([
    [QE_STATUS.ERR_ARGUMENT, RangeError, 'QE_ERR_ARGUMENT'],
    [QE_STATUS.ERR_NO_MEMORY, RangeError, 'out of module memory (QE_ERR_NO_MEMORY)'],
    [QE_STATUS.ERR_INDEX, RangeError, 'QE_ERR_INDEX'],
    [QE_STATUS.ERR_NULL, Error, 'QE_ERR_NULL'],
    [-99, Error, 'unknown status -99'],
  ] as const)('status %p maps to %p', (status, errorClass, fragment) => {
    expectThrow(() => checkStatus(status, 'qe_test'), errorClass, `qe_test: `);
    expectThrow(() => checkStatus(status, 'qe_test'), errorClass, fragment);
  });

  test('QE_OK returns', () => {
    expect(() => checkStatus(QE_STATUS.OK, 'qe_test')).not.toThrow();
  });
});

describe('inputs whose scores overflow float32', () => {
  it('give a RangeError, never a silent NaN', async () => {
    const qe = await createQEFlashAttention('test-similarity', undefined, { threads: 1 });
    try {
      const opts = { heads: 1, kvSeqLen: 2 };
      // Finite inputs, but q.k = 2e40 and -2e40: beyond float32, so no float32 answer exists.
      expect(() => qe.computeFlashAttentionSync(Float32Array.of(1e20, 1e20), Float32Array.of(1e20, -1e20, 1, 1), Float32Array.of(1, 2, 3, 4), 1, 2, opts)).toThrow(RangeError);
      expect(() => qe.computeFlashAttentionSync(Float32Array.of(-1e20, -1e20), Float32Array.of(1e20, 1e20, 1e20, 1e20), Float32Array.of(1, 2, 3, 4), 1, 2, opts)).toThrow(/overflowed float32/);
      // Large but representable scores still work, against the float64 answer.
      const out = qe.computeFlashAttentionSync(Float32Array.of(1e10, 1e10), Float32Array.of(1e10, -1e10, 1e9, 1e9), Float32Array.of(1, 2, 3, 4), 1, 2, { ...opts, scale: 1e-12 });
      expect(Array.from(out)).toEqual([3, 4]);
    } finally {
      qe.dispose();
    }
  });
});
