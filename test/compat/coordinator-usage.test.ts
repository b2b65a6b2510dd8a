/**
 * agentic-qe 3.14's domain coordinators call createQEFlashAttention with the
 * config shape of its attention wrapper ({ dim, strategy, blockSize?,
 * numHeads? }). Those calls run unchanged here: strategy 'flash' is this
 * package's exact FlashAttention, numHeads sets the heads and blockSize the
 * tiles; the wrapper's other strategies are refused by name. Imported by the
 * package's published name, like original-usage.test.ts, and type-checked
 * with it by types-check.test.ts.
 */
import {
  QEFlashAttention,
  createQEFlashAttention,
  terminateThreadPools,
  type QEWorkloadType,
} from '@agentic-qe/v3/flash-attention';
import { attentionShape, maxAbsDiff, referenceAttention, referenceCosineRanking, uniform } from '../reference';

afterAll(() => terminateThreadPools());

describe('agentic-qe 3.14 coordinator call shapes', () => {
  it("createQEFlashAttention(workload, { dim: 384, strategy: 'flash', blockSize: 64 })", async () => {
    const flash = await createQEFlashAttention('test-similarity', { dim: 384, strategy: 'flash', blockSize: 64 });
    const config = flash.getConfig();
    expect(config.dim).toBe(384);
    expect(config.blocks.queryChunkSize).toBe(64);
    expect(config.blocks.kvChunkSize).toBe(64);
    expect(config.strategy).toBe('latency-optimized'); // the preset's; 'flash' is what every preset computes
    // Heads stay the preset's (8); 130 rows: more than two 64-row tiles, not a multiple of them.
    const seqLen = 130;
    const dim = 384;
    const Q = uniform(seqLen * dim, 1);
    const K = uniform(seqLen * dim, 2);
    const V = uniform(seqLen * dim, 3);
    const out = await flash.computeFlashAttention(Q, K, V, seqLen, dim);
    expect(maxAbsDiff(out, referenceAttention(Q, K, V, attentionShape({ seqLen, dim, heads: 8 })))).toBeLessThan(1e-5);
    const metrics = flash.getMetrics();
    expect(metrics[0].tileQ).toBeLessThanOrEqual(64);
    expect(metrics[0].tileK).toBeLessThanOrEqual(64);
    // The coordinators' similarity call.
    const corpus = Array.from({ length: 9 }, (_, i) => uniform(dim, 10 + i));
    const top = await flash.computeTestSimilarity(Q.subarray(0, dim), corpus, 3);
    expect(top.map((t) => t.index)).toEqual(referenceCosineRanking(Q.subarray(0, dim), corpus).slice(0, 3).map((r) => r.index));
    flash.dispose();
  });

  it("createQEFlashAttention(workload, { dim: 384, strategy: 'flash', numHeads: 8 }) for every workload", async () => {
    const workloads: QEWorkloadType[] = ['test-similarity', 'code-embedding', 'defect-matching', 'coverage-analysis', 'pattern-adaptation'];
    const [seqLen, dim] = [17, 384];
    const Q = uniform(seqLen * dim, 4);
    const K = uniform(seqLen * dim, 5);
    const V = uniform(seqLen * dim, 6);
    const want = referenceAttention(Q, K, V, attentionShape({ seqLen, dim, heads: 8 }));
    for (const workload of workloads) {
      const flash = await createQEFlashAttention(workload, { dim: 384, strategy: 'flash', numHeads: 8 });
      expect(flash.getConfig().dim).toBe(384);
      expect(flash.getConfig().blocks.headsPerBlock).toBe(8);
      const out = await flash.computeFlashAttention(Q, K, V, seqLen, dim);
      expect(maxAbsDiff(out, want)).toBeLessThan(1e-5);
      flash.dispose();
    }
  });

  it('the 3.14 wrapper constructor, updateConfig and changeStrategy take the same shape', async () => {
    const fa = new QEFlashAttention('defect-matching', { dim: 384, strategy: 'flash', numHeads: 4, blockSize: 32 });
    await fa.initialize();
    expect(fa.getConfig().blocks).toMatchObject({ headsPerBlock: 4, queryChunkSize: 32, kvChunkSize: 32 });
    fa.updateConfig({ numHeads: 6 });
    expect(fa.getConfig().blocks.headsPerBlock).toBe(6);
    fa.changeStrategy('flash');
    expect(() => fa.changeStrategy('moe')).toThrow(RangeError);
    expect(fa.getConfig().blocks.headsPerBlock).toBe(6);
    fa.dispose();
  });

  it.each(['dot-product', 'multi-head', 'hyperbolic', 'linear', 'moe'] as const)(
    "strategy '%s' is a RangeError naming the supported strategies",
    async (strategy) => {
      const error = await createQEFlashAttention('test-similarity', { dim: 384, strategy }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(RangeError);
      expect((error as Error).message).toBe(
        `config.strategy "${strategy}" (agentic-qe 3.14) is not computed by this package; supported strategies: 'flash' ` +
          "(exact FlashAttention, multi-head through numHeads), or a preset strategy: 'latency-optimized', 'throughput-optimized', 'memory-efficient'",
      );
    },
  );

  it('bad numHeads and blockSize are RangeErrors naming them', async () => {
    await expect(createQEFlashAttention('test-similarity', { dim: 384, strategy: 'flash', numHeads: 0 })).rejects.toThrow(
      new RangeError('config.numHeads must be at least 1, got 0'),
    );
    await expect(createQEFlashAttention('test-similarity', { dim: 384, strategy: 'flash', blockSize: 2.5 })).rejects.toThrow(
      new RangeError('config.blockSize must be an integer, got 2.5'),
    );
  });
});
