/**
 * Code written for agentic-qe's original flash-attention module
 * (v3/src/integrations/flash-attention), as its README, types and index
 * documented it, run unchanged against this package: every exported name,
 * both constructors, every method with the original's argument lists, the
 * return shapes read with the original's field names. Numbers are checked
 * against the float64 reference (test/reference.ts).
 *
 * The package is imported by its published name and subpath, so this file
 * is compiled and run against the built package (dist/), as a user's code
 * is. types-check.test.ts type-checks this file with tsc under `strict` and
 * module/moduleResolution node16, and again under bundler.
 */
import {
  BLOCK_SIZE_PRESETS,
  FLASH_ATTENTION_VERSION,
  FlashAttentionBenchmark,
  MAX_SPEEDUP_TARGET,
  MIN_SPEEDUP_TARGET,
  QEFlashAttention,
  QE_FLASH_ATTENTION_CONFIG,
  QE_PERFORMANCE_TARGETS,
  QE_SONA_CONFIG,
  WASMSIMDBackend,
  benchmarkWorkload,
  createQEFlashAttention,
  getOptimalBlockConfig,
  getQEFlashAttentionConfig,
  getWASMSIMDBackend,
  runFlashAttentionBenchmarks,
  terminateThreadPools,
  type AttentionBackend,
  type AttentionStrategy,
  type BenchmarkResult,
  type BlockConfig,
  type FlashAttentionConfig,
  type FlashAttentionMetrics,
  type QEWorkloadType,
  type SIMDCapabilities,
  type SONAIntegration,
  type VectorOperation,
} from '@agentic-qe/v3/flash-attention';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import {
  attentionShape,
  maxAbsDiff,
  referenceAttention,
  referenceCosine,
  referenceCosineRanking,
  referenceLayerNorm,
  referenceMatmul,
  referenceSoftmax,
  referenceVecAdd,
  uniform,
} from '../reference';

// The benchmark's smoke run (one timed call per engine): the suite's full
// length is for `make bench`, not for a test.
process.env.QE_FLASH_BENCH_QUICK = '1';

afterAll(() => terminateThreadPools());

/** Float64 reference of generateCodeEmbedding(tokens, positions): LayerNorm(X + Attention(X)), mean, L2-normalize. */
function referenceCodeEmbedding(tokens: Float32Array, positions: Float32Array, seqLen: number, dim: number, heads: number): Float64Array {
  const x = Float64Array.from({ length: seqLen * dim }, (_, i) => tokens[i] + positions[i]);
  const a = referenceAttention(x, x, x, attentionShape({ seqLen, dim, heads }));
  const h = x.map((v, i) => v + a[i]);
  const ones = new Float64Array(dim).fill(1);
  const mean = new Float64Array(dim);
  for (let r = 0; r < seqLen; r++) {
    const y = referenceLayerNorm(h.subarray(r * dim, (r + 1) * dim), ones, new Float64Array(dim), 1e-5);
    for (let c = 0; c < dim; c++) mean[c] += y[c];
  }
  let n = 0;
  for (let c = 0; c < dim; c++) n += mean[c] * mean[c];
  return mean.map((v) => v / Math.sqrt(n));
}

describe('the original index: constants, presets and types', () => {
  it('exports the version and the speedup range', () => {
    const version: string = FLASH_ATTENTION_VERSION;
    expect(version).toBe('1.0.0');
    const range: [number, number] = [MIN_SPEEDUP_TARGET, MAX_SPEEDUP_TARGET];
    expect(range).toEqual([2.49, 7.47]);
  });

  it('has the ADR-040 presets, SONA and performance targets', () => {
    const workloads: QEWorkloadType[] = ['test-similarity', 'code-embedding', 'defect-matching', 'coverage-analysis', 'pattern-adaptation'];
    const heads: Record<string, number> = { 'test-similarity': 8, 'code-embedding': 4, 'defect-matching': 12 };
    const chunks: Record<string, number> = { 'test-similarity': 512, 'code-embedding': 1024, 'defect-matching': 256 };
    for (const w of workloads) {
      const config: FlashAttentionConfig = QE_FLASH_ATTENTION_CONFIG[w];
      const backend: AttentionBackend = config.backend;
      const strategy: AttentionStrategy = config.strategy;
      expect(backend).toBe('wasm-simd');
      expect(['memory-efficient', 'latency-optimized', 'throughput-optimized']).toContain(strategy);
      if (w in heads) {
        expect(config.blocks.headsPerBlock).toBe(heads[w]);
        expect(config.blocks.queryChunkSize).toBe(chunks[w]);
      }
      expect(config.dropoutRate).toBe(0);
      expect(typeof config.targetSpeedup.min).toBe('number');
      const sona: SONAIntegration = QE_SONA_CONFIG[w];
      expect(sona.microLoRARank).toBeGreaterThan(0);
      const target = QE_PERFORMANCE_TARGETS[w];
      expect(target.latency.after).toBeLessThan(target.latency.before);
      expect(target.memory.after).toBeLessThan(target.memory.before);
    }
    // The README's SONA example.
    const sonaConfig = QE_SONA_CONFIG['pattern-adaptation'];
    expect(sonaConfig.microLoRARank).toBe(2);
    expect(sonaConfig.targetAdaptationMs).toBe(0.05);
  });

  it('BLOCK_SIZE_PRESETS is indexable by any number, and getOptimalBlockConfig picks a preset', () => {
    const lengths: number[] = [128, 256, 512, 1024, 2048, 4096];
    for (const n of lengths) {
      const preset: BlockConfig = BLOCK_SIZE_PRESETS[n];
      expect(preset.queryChunkSize).toBeLessThanOrEqual(n);
      expect(getOptimalBlockConfig(n)).toEqual(preset);
    }
    const odd: number = 777;
    expect(BLOCK_SIZE_PRESETS[odd]).toBeUndefined();
    expect(getOptimalBlockConfig(odd)).toEqual(BLOCK_SIZE_PRESETS[1024]);
    expect(getOptimalBlockConfig(100000)).toEqual(BLOCK_SIZE_PRESETS[4096]);
  });
});

describe('the README quick start and workload sections', () => {
  it('Quick Start: computeFlashAttention and getMetrics', async () => {
    const seqLen = 37;
    const dim = 40; // 8 heads (the test-similarity preset) of 5
    const flashAttn = await createQEFlashAttention('test-similarity');
    const Q = uniform(seqLen * dim, 1);
    const K = uniform(seqLen * dim, 2);
    const V = uniform(seqLen * dim, 3);
    const output = await flashAttn.computeFlashAttention(Q, K, V, seqLen, dim);
    expect(output).toBeInstanceOf(Float32Array);
    expect(maxAbsDiff(output, referenceAttention(Q, K, V, attentionShape({ seqLen, dim, heads: 8 })))).toBeLessThan(1e-5);
    const metrics: FlashAttentionMetrics[] = flashAttn.getMetrics();
    expect(metrics).toHaveLength(1);
    const m = metrics[0];
    // `Speedup: ${metrics[0].speedup}x`: no baseline has run, so it is null, not a made-up 1.
    expect(`Speedup: ${m.speedup}x`).toBe('Speedup: nullx');
    expect(m.timeMs).toBeGreaterThan(0);
    expect(m.memoryMB).toBeGreaterThan(0);
    expect(m.peakMemoryMB).toBeGreaterThanOrEqual(m.memoryMB);
    expect(m.throughput).toBeCloseTo(seqLen / (m.timeMs / 1000), 6);
    expect(m.cacheHitRate).toBeUndefined();
    flashAttn.resetMetrics();
    expect(flashAttn.getMetrics()).toEqual([]);
    flashAttn.dispose();
  });

  it('Test Similarity Search: computeTestSimilarity(testEmbedding, corpusEmbeddings, 5)', async () => {
    const flashAttn = await createQEFlashAttention('test-similarity');
    const dim = 384;
    const corpusEmbeddings = Array.from({ length: 53 }, (_, i) => uniform(dim, 100 + i));
    const testEmbedding = uniform(dim, 99);
    const similarities = await flashAttn.computeTestSimilarity(testEmbedding, corpusEmbeddings, 5);
    const want = referenceCosineRanking(testEmbedding, corpusEmbeddings).slice(0, 5);
    expect(similarities.map((s) => s.index)).toEqual(want.map((w) => w.index));
    similarities.forEach((s, i) => expect(Math.abs(s.similarity - want[i].similarity)).toBeLessThan(1e-6));
    flashAttn.dispose();
  });

  it('Code Embedding: generateCodeEmbedding(codeTokens, positionEmbeddings)', async () => {
    const flashAttn = await createQEFlashAttention('code-embedding');
    const dim = 512; // the code-embedding preset: 4 heads
    const seqLen = 13;
    const codeTokens = uniform(seqLen * dim, 7);
    const positionEmbeddings = uniform(seqLen * dim, 8, -0.1, 0.1);
    const embedding = await flashAttn.generateCodeEmbedding(codeTokens, positionEmbeddings);
    expect(embedding).toHaveLength(dim);
    expect(maxAbsDiff(embedding, referenceCodeEmbedding(codeTokens, positionEmbeddings, seqLen, dim, 4))).toBeLessThan(1e-4);
    flashAttn.dispose();
  });

  it('Defect Matching: matchDefectPattern(defectEmbedding, patternLibrary); pattern is the index', async () => {
    const flashAttn = await createQEFlashAttention('defect-matching');
    const dim = 384;
    const patternLibrary = Array.from({ length: 21 }, (_, i) => uniform(dim, 300 + i));
    const defectEmbedding = uniform(dim, 299);
    const matches = await flashAttn.matchDefectPattern(defectEmbedding, patternLibrary);
    expect(matches).toHaveLength(patternLibrary.length);
    // agentic-qe's pattern learner: the index addresses its own arrays.
    const hits = new Array<number>(patternLibrary.length).fill(0);
    for (const match of matches) {
      if (match.pattern < patternLibrary.length) hits[match.pattern] += 1;
      const pattern: number = match.pattern;
      expect(Math.abs(match.score - referenceCosine(defectEmbedding, patternLibrary[pattern]))).toBeLessThan(1e-6);
    }
    expect(hits).toEqual(new Array(patternLibrary.length).fill(1));
    const best = referenceCosineRanking(defectEmbedding, patternLibrary)[0];
    expect(matches[0].pattern).toBe(best.index);
    flashAttn.dispose();
  });

  it('Coverage Analysis and Pattern Adaptation instances are created', async () => {
    for (const w of ['coverage-analysis', 'pattern-adaptation'] as const) {
      const flashAttn = await createQEFlashAttention(w);
      expect(flashAttn.getConfig().blocks).toEqual(QE_FLASH_ATTENTION_CONFIG[w].blocks);
      flashAttn.dispose();
    }
  });

  it('Custom Configuration: getQEFlashAttentionConfig(workload, overrides) into createQEFlashAttention', async () => {
    const customConfig = getQEFlashAttentionConfig('test-similarity', {
      backend: 'wasm-simd',
      strategy: 'latency-optimized',
      blocks: {
        headsPerBlock: 16,
        queryChunkSize: 1024,
        kvChunkSize: 1024,
        matmulBlockSize: 256,
      },
    });
    const flashAttn = await createQEFlashAttention('test-similarity', customConfig);
    expect(flashAttn.getConfig().blocks.headsPerBlock).toBe(16);
    const [seqLen, dim] = [19, 48]; // 16 heads of 3
    const Q = uniform(seqLen * dim, 11);
    const K = uniform(seqLen * dim, 12);
    const V = uniform(seqLen * dim, 13);
    const out = await flashAttn.computeFlashAttention(Q, K, V, seqLen, dim);
    expect(maxAbsDiff(out, referenceAttention(Q, K, V, attentionShape({ seqLen, dim, heads: 16 })))).toBeLessThan(1e-5);
    flashAttn.dispose();
  });
});

describe('QEFlashAttention: the constructor, initialize() and every method', () => {
  it('new QEFlashAttention(workload) + await initialize()', async () => {
    const fa = new QEFlashAttention('defect-matching');
    await fa.initialize();
    await fa.initialize(); // a second call does nothing
    const [seqLen, dim] = [5, 24]; // 12 heads of 2
    const Q = uniform(seqLen * dim, 21);
    const out = await fa.computeFlashAttention(Q, Q, Q, seqLen, dim);
    expect(maxAbsDiff(out, referenceAttention(Q, Q, Q, attentionShape({ seqLen, dim, heads: 12 })))).toBeLessThan(1e-5);
    expect(fa.getWorkload()).toBe('defect-matching');
    fa.dispose();
  });

  it('new QEFlashAttention(workload, customConfig): every config field the original had is accepted and recorded', async () => {
    const config: FlashAttentionConfig = {
      backend: 'native',
      strategy: 'throughput-optimized',
      blocks: { headsPerBlock: 2, queryChunkSize: 16, kvChunkSize: 8, matmulBlockSize: 32 },
      dropoutRate: 0.1,
      useCausalMask: true,
      fusedSoftmax: false,
      enableCheckpointing: true,
      targetSpeedup: { min: 2, max: 4 },
    };
    const fa = new QEFlashAttention('test-similarity', config);
    await fa.initialize();
    const got = fa.getConfig();
    expect(got).toEqual({ ...config, dim: QE_FLASH_ATTENTION_CONFIG['test-similarity'].dim });
    // What cannot be honoured changes nothing: exact, causal (as asked), no dropout.
    const [seqLen, dim] = [33, 10];
    const Q = uniform(seqLen * dim, 31);
    const K = uniform(seqLen * dim, 32);
    const V = uniform(seqLen * dim, 33);
    const out = await fa.computeFlashAttention(Q, K, V, seqLen, dim);
    expect(maxAbsDiff(out, referenceAttention(Q, K, V, attentionShape({ seqLen, dim, heads: 2, causal: true })))).toBeLessThan(1e-5);
    for (const backend of ['wasm-simd', 'native', 'gpu', 'hybrid', 'js-fallback'] as AttentionBackend[]) {
      fa.updateConfig({ backend });
      expect(fa.getConfig().backend).toBe(backend);
    }
    fa.dispose();
  });

  it('updateConfig returns void; getConfig, resetMetrics, dispose', async () => {
    const fa = await createQEFlashAttention('code-embedding');
    const result: void = fa.updateConfig({ useCausalMask: true, blocks: { kvChunkSize: 64 } });
    expect(result).toBeUndefined();
    const config: FlashAttentionConfig = fa.getConfig();
    expect(config.useCausalMask).toBe(true);
    expect(config.blocks).toEqual({ ...QE_FLASH_ATTENTION_CONFIG['code-embedding'].blocks, kvChunkSize: 64 });
    fa.resetMetrics();
    fa.dispose();
    await expect(fa.computeFlashAttention(new Float32Array(4), new Float32Array(4), new Float32Array(4), 1, 4)).rejects.toThrow('has been disposed');
  });
});

describe('the WASM-SIMD backend', () => {
  it("README: getWASMSIMDBackend(), getCapabilities(), benchmarkOperation('matmul')", async () => {
    const backend = await getWASMSIMDBackend();
    const caps: SIMDCapabilities = backend.getCapabilities();
    expect(caps.supported).toBe(true);
    expect(typeof caps.simd128).toBe('boolean');
    expect(typeof caps.relaxedSimd).toBe('boolean');
    const ops: VectorOperation[] = caps.vectorOps;
    const expected: VectorOperation[] = ['matmul', 'vecadd', 'embedding', 'softmax', 'layer-norm'];
    if (caps.simd128) {
      expect(ops).toEqual(expect.arrayContaining(expected));
      // The measured ratios over the scalar build (README, bench/simd-speedup.js).
      expect(caps.expectedSpeedup).toEqual(backend.getCapabilities().module === 'relaxed' ? { min: 1, max: 8.5 } : { min: 1, max: 6 });
    }
    const metrics = await backend.benchmarkOperation('matmul');
    expect(metrics.opsPerSecond).toBeGreaterThan(0);
    expect(metrics.avgTimeMs).toBeGreaterThan(0);
    expect(metrics.iterations).toBe(100);
  });

  it('new WASMSIMDBackend() + initialize(): the original operation names, kernels against float64, dispose()', async () => {
    const backend = new WASMSIMDBackend();
    expect(() => backend.getCapabilities()).toThrow('not initialized; call await backend.initialize() first');
    await backend.initialize();
    for (const op of ['matmul', 'vecadd', 'embedding', 'softmax', 'layer-norm'] as VectorOperation[]) {
      const r = await backend.benchmarkOperation(op, 3);
      expect(r.operation).toBe(op);
      expect(r.avgTimeMs).toBeGreaterThan(0);
      expect(r.avgTimeMs).toBeGreaterThanOrEqual(r.minMs);
      expect(r.avgTimeMs).toBeLessThanOrEqual(r.maxMs);
      expect(r.opsPerSecond).toBeCloseTo(1000 / r.medianMs, 6);
    }
    const [m, n, k] = [5, 7, 3];
    const a = uniform(m * k, 41);
    const b = uniform(k * n, 42);
    expect(maxAbsDiff(backend.matmulSIMD(a, b, m, n, k), referenceMatmul(a, b, m, n, k))).toBeLessThan(1e-5);
    expect(maxAbsDiff(backend.vecAddSIMD(a, a), referenceVecAdd(a, a))).toBeLessThan(1e-6);
    expect(maxAbsDiff(backend.softmaxSIMD(a), referenceSoftmax(a, a.length))).toBeLessThan(1e-6);
    backend.dispose();
    expect(() => backend.vecAddSIMD(a, a)).toThrow('has been disposed');
    // The shared backend is not the disposed one.
    expect((await getWASMSIMDBackend()).getCapabilities().supported).toBe(true);
  });
});

describe('benchmarking', () => {
  function checkResult(workload: QEWorkloadType, result: BenchmarkResult): void {
    expect(result.workload).toBe(workload);
    const line = `${workload}: ${result.speedup}x speedup`;
    const memory = `Memory reduction: ${(result.memoryReduction * 100).toFixed(1)}%`;
    const status = `Status: ${result.meetsTarget ? 'PASS' : 'FAIL'}`;
    expect(typeof result.meetsTarget).toBe('boolean');
    if (result.baseline.status === 'ok' && result.flash.status === 'ok') {
      // Speedup: the baseline's time over our best time, as the original defined it.
      const best = Math.min(result.flash.timeMs, result.flashThreads.status === 'ok' ? result.flashThreads.timeMs : Infinity);
      expect(result.speedup).toBeCloseTo(result.baseline.timeMs / best, 6);
      expect(result.flash.speedup).toBeCloseTo(result.baseline.timeMs / result.flash.timeMs, 6);
      expect(result.baseline.speedup).toBe(1);
      expect(result.memoryReduction).toBeGreaterThan(0);
      expect(result.memoryReduction).toBeLessThan(1);
      expect(result.flash.memoryMB).toBeCloseTo((result.flash.memoryBytes as number) / 2 ** 20, 9);
      expect(result.flash.peakMemoryMB).toBe(result.flash.memoryMB);
      expect(result.flash.throughput).toBeGreaterThan(0);
      expect(line).toMatch(/^[a-z-]+: \d+(\.\d+)?x speedup$/);
      expect(memory).toMatch(/^Memory reduction: \d+\.\d%$/);
      expect(result.crossCheckPassed).toBe(true);
    } else {
      // Not measured: NaN, never a made-up number.
      expect(result.speedup).toBeNaN();
      expect(result.memoryReduction).toBeNaN();
      expect(result.meetsTarget).toBe(false);
      expect(status).toBe('Status: FAIL');
    }
  }

  it('runFlashAttentionBenchmarks() returns a Map of workload to result', async () => {
    const results = await runFlashAttentionBenchmarks();
    expect(results).toBeInstanceOf(Map);
    expect([...results.keys()]).toEqual(['test-similarity', 'code-embedding', 'defect-matching', 'coverage-analysis', 'pattern-adaptation']);
    for (const [workload, result] of results) checkResult(workload, result);
    // The attention workloads ran against the baseline.
    for (const w of ['test-similarity', 'code-embedding', 'defect-matching'] as QEWorkloadType[]) {
      expect(results.get(w)?.speedup).toBeGreaterThan(1);
    }
  });

  it("benchmarkWorkload('defect-matching') returns one result", async () => {
    const result = await benchmarkWorkload('defect-matching');
    checkResult('defect-matching', result);
    expect(result.label).toBe('attention N=256 dim=384 heads=12');
    const line = `Speedup: ${result.speedup}x (target: ${MIN_SPEEDUP_TARGET}x-${MAX_SPEEDUP_TARGET}x)`;
    expect(line).toMatch(/^Speedup: \d+(\.\d+)?x \(target: 2\.49x-7\.47x\)$/);
  });

  it('FlashAttentionBenchmark: runFullSuite, getResults, benchmarkWorkload, printBenchmarkResult, reset, exportResultsToFile', async () => {
    const bench = new FlashAttentionBenchmark();
    const suite: Map<QEWorkloadType, BenchmarkResult> = await bench.runFullSuite();
    const results: Map<QEWorkloadType, BenchmarkResult> = bench.getResults();
    expect([...results.keys()]).toEqual([...suite.keys()]);
    expect(results.get('test-similarity')).toEqual(suite.get('test-similarity'));
    // The richer report: every row, here the attention rows plus the search rows.
    expect(bench.getRows().length).toBeGreaterThan(results.size);

    const one: BenchmarkResult = await bench.benchmarkWorkload('defect-matching');
    checkResult('defect-matching', one);
    expect(bench.getResults().get('defect-matching')).toEqual(one);

    const printed: string[] = [];
    const spy = jest.spyOn(console, 'log').mockImplementation((line: string) => void printed.push(line));
    try {
      bench.printBenchmarkResult(one);
    } finally {
      spy.mockRestore();
    }
    expect(printed.join('\n')).toContain(`speedup: ${one.speedup.toFixed(2)}x`);
    expect(printed.join('\n')).toContain('defect-matching: attention N=256 dim=384 heads=12');

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qe-flash-compat-'));
    try {
      const file = path.join(dir, 'results.json');
      bench.exportResultsToFile(file);
      const written = JSON.parse(fs.readFileSync(file, 'utf8')) as { results: { workload: string; speedup: number | null }[] };
      expect(written.results.map((r) => r.workload)).toEqual(bench.getRows().map((r) => r.workload));
      expect(written.results[0].speedup).toBeCloseTo(bench.getRows()[0].speedup, 9);
      expect(fs.readdirSync(dir)).toEqual(['results.json']); // no temporary file left
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }

    bench.reset();
    expect(bench.getResults().size).toBe(0);
    expect(bench.getRows()).toEqual([]);
  });
});
