/**
 * Metrics are measured, per call: time, the kernel's working memory, module
 * memory, throughput, and a speedup only where a baseline ran on the shape.
 */
import type { ModuleKind } from '../types';
import { createOn, loadModule, MODULE_KINDS } from './helpers';
import { uniform } from './reference';

const MIB = 2 ** 20;

describe.each(MODULE_KINDS)('%s build', (kind: ModuleKind) => {
  const seqLen = 48;
  const dim = 32;
  const Q = uniform(seqLen * dim, 1);
  const K = uniform(seqLen * dim, 2);
  const V = uniform(seqLen * dim, 3);

  test('each call records measured numbers', async () => {
    const module = await loadModule(kind);
    const fa = await createOn(kind, { queryChunkSize: 16, kvChunkSize: 32 });
    const before = Date.now();
    await fa.computeFlashAttention(Q, K, V, seqLen, dim, { heads: 4 });
    const workspace = module.workspaceLastBytes();
    const [m] = fa.getMetrics();

    expect(m.workload).toBe('test-similarity');
    expect(m).toMatchObject({ seqLen, kvSeqLen: seqLen, dim, heads: 4, causal: false, module: kind });
    expect(m.timeMs).toBeGreaterThan(0);
    expect(m.throughput).toBeCloseTo(seqLen / (m.timeMs / 1000), 6);
    expect(workspace).toBeGreaterThan(0);
    expect(m.memoryMB).toBe(workspace / MIB);
    expect(m.peakMemoryMB).toBe(module.memoryBytes / MIB);
    expect(m.tileQ).toBeGreaterThanOrEqual(1);
    expect(m.tileQ).toBeLessThanOrEqual(16);
    expect(m.tileK).toBeGreaterThanOrEqual(1);
    expect(m.tileK).toBeLessThanOrEqual(32);
    expect(m.timestamp).toBeGreaterThanOrEqual(before);
    expect(m.timestamp).toBeLessThanOrEqual(Date.now());
  });

  test('speedup is null until a baseline ran on the same shape, then baseline time / time', async () => {
    const fa = await createOn(kind, { headsPerBlock: 4 });
    expect(fa.getAverageSpeedup()).toBeNull();
    await fa.computeFlashAttention(Q, K, V, seqLen, dim);
    expect(fa.getMetrics()[0].speedup).toBeNull();
    expect(fa.getMetrics()[0].baselineTimeMs).toBeNull();
    expect(fa.getAverageSpeedup()).toBeNull();

    await fa.computeBaselineAttention(Q, K, V, seqLen, dim);
    await fa.computeFlashAttention(Q, K, V, seqLen, dim);
    const m = fa.getMetrics()[1];
    expect(m.baselineTimeMs).toBeGreaterThan(0);
    expect(m.speedup).toBe((m.baselineTimeMs as number) / m.timeMs);

    // Another shape, or the same shape with a causal mask or other heads, has no baseline.
    await fa.computeFlashAttention(Q, K, V, seqLen, dim, { causal: true });
    await fa.computeFlashAttention(Q, K, V, seqLen, dim, { heads: 2 });
    await fa.computeFlashAttention(Q.subarray(0, 10 * dim), K, V, 10, dim, { kvSeqLen: seqLen });
    expect(fa.getMetrics().slice(2).map((x) => x.speedup)).toEqual([null, null, null]);

    await fa.computeFlashAttention(Q, K, V, seqLen, dim);
    const known = fa.getMetrics().filter((x) => x.speedup !== null).map((x) => x.speedup as number);
    expect(known).toHaveLength(2);
    expect(fa.getAverageSpeedup()).toBeCloseTo((known[0] + known[1]) / 2, 10);
  });

  test('getMetrics returns copies; resetMetrics forgets the calls but keeps baselines', async () => {
    const fa = await createOn(kind, { headsPerBlock: 4 });
    await fa.computeBaselineAttention(Q, K, V, seqLen, dim);
    fa.computeFlashAttentionSync(Q, K, V, seqLen, dim);
    const list = fa.getMetrics();
    list[0].timeMs = -1;
    list.pop();
    expect(fa.getMetrics()).toHaveLength(1);
    expect(fa.getMetrics()[0].timeMs).toBeGreaterThan(0);

    fa.resetMetrics();
    expect(fa.getMetrics()).toEqual([]);
    expect(fa.getAverageSpeedup()).toBeNull();
    fa.computeFlashAttentionSync(Q, K, V, seqLen, dim);
    expect(fa.getMetrics()[0].speedup).not.toBeNull();
  });

  test('tile sizes in the metrics are the ones the kernel reports', async () => {
    const module = await loadModule(kind);
    const fa = await createOn(kind, { headsPerBlock: 1, queryChunkSize: 4096, kvChunkSize: 4096 });
    const n = 300;
    const q = uniform(n * 8, 4);
    fa.computeFlashAttentionSync(q, q, q, n, 8);
    const [m] = fa.getMetrics();
    // The kernel clamps large requests to its cache budget and never exceeds the problem.
    expect(m.tileQ).toBeLessThanOrEqual(n);
    expect(m.tileK).toBeLessThanOrEqual(n);
    expect(m.tileQ).toBeLessThan(4096);
    expect(module.workspaceLastBytes() / MIB).toBe(m.memoryMB);
  });
});
