/**
 * prepareAttention: inputs written straight into module memory, run
 * repeatedly. Checked against the float64 reference and against
 * computeFlashAttentionSync (the same kernel, so the same bits), on every
 * build and on two threads, with the errors and the memory accounting.
 */
import type { ModuleKind } from '../types';
import { createQEFlashAttention, type QEFlashAttention } from '../js/flash-attention';
import { createOn, expectThrow, loadModule, MODULE_KINDS } from './helpers';
import { attentionShape, maxAbsDiff, referenceAttention, uniform, type AttentionCase } from './reference';

const CASES: AttentionCase[] = [
  { seqLen: 1, dim: 1, heads: 1 },
  { seqLen: 37, kvSeqLen: 5, dim: 15, heads: 3 },
  { seqLen: 33, dim: 70, heads: 7, causal: true },
  { seqLen: 130, kvSeqLen: 200, dim: 64, heads: 4, validKeyLength: 150 },
  { seqLen: 64, dim: 96, heads: 12, scale: 0.3 },
];

function optionsOf(c: AttentionCase) {
  const s = attentionShape(c);
  return { heads: s.heads, causal: s.causal, validKeyLength: s.validKeyLength, scale: s.scale, kvSeqLen: s.kvSeqLen };
}

describe.each(MODULE_KINDS.map((k) => [k]))('prepareAttention on the %s build', (kind: ModuleKind) => {
  let attention: QEFlashAttention;
  beforeAll(async () => {
    attention = await createOn(kind);
  });
  afterAll(() => attention.dispose());

  it.each(CASES.map((c, i) => [i, c]))('case %i matches the reference and computeFlashAttentionSync bit for bit, run after run', (_i, c) => {
    const s = attentionShape(c);
    const resident = attention.prepareAttention(s.seqLen, s.dim, optionsOf(c));
    try {
      for (let round = 0; round < 2; round++) {
        const Q = uniform(s.seqLen * s.dim, 10 * round + 1);
        const K = uniform(s.kvSeqLen * s.dim, 10 * round + 2);
        const V = uniform(s.kvSeqLen * s.dim, 10 * round + 3);
        resident.Q.set(Q);
        resident.K.set(K);
        resident.V.set(V);
        const view = resident.run();
        expect(view.length).toBe(s.seqLen * s.dim);
        expect(maxAbsDiff(view, referenceAttention(Q, K, V, s))).toBeLessThan(1e-5);
        const copied = attention.computeFlashAttentionSync(Q, K, V, s.seqLen, s.dim, optionsOf(c));
        const out = new Float32Array(s.seqLen * s.dim);
        expect(resident.run(out)).toBe(out);
        expect(Buffer.from(out.buffer).equals(Buffer.from(copied.buffer))).toBe(true);
      }
    } finally {
      resident.dispose();
    }
  });
});

describe('prepareAttention: errors, memory and lifetime', () => {
  it('names the first non-finite input element, and the buffers stay usable', async () => {
    const attention = await createOn('simd');
    const r = attention.prepareAttention(4, 8, { heads: 2 });
    r.Q.fill(0.5);
    r.K.fill(0.25);
    r.V.fill(1);
    r.K[13] = Number.NaN;
    expectThrow(() => r.run(), RangeError, /K\[13\]/);
    r.K[13] = 0;
    r.V[30] = Number.POSITIVE_INFINITY;
    expectThrow(() => r.run(), RangeError, /V\[30\]/);
    r.V[30] = 1;
    expect(Array.from(r.run()).every((x) => Math.abs(x - 1) < 1e-6)).toBe(true);
    attention.dispose();
  });

  it('refuses bad shapes, options and output arrays with the argument named', async () => {
    const attention = await createOn('simd');
    expectThrow(() => attention.prepareAttention(0, 8), RangeError, /seqLen/);
    expectThrow(() => attention.prepareAttention(4, 2.5), RangeError, /dim/);
    expectThrow(() => attention.prepareAttention(4, 10, { heads: 4 }), RangeError, /heads/);
    expectThrow(() => attention.prepareAttention(4, 8, { heads: 2, kvSeqLen: -1 }), RangeError, /kvSeqLen/);
    expectThrow(() => attention.prepareAttention(4, 8, { heads: 2, softcap: 5 }), RangeError, /need computeFlashAttention/);
    const r = attention.prepareAttention(3, 8, { heads: 2 });
    r.Q.fill(0.1);
    r.K.fill(0.2);
    r.V.fill(0.3);
    expectThrow(() => r.run(new Float32Array(23)), RangeError, /out must have seqLen \* dim = 24/);
    expectThrow(() => r.run([] as unknown as Float32Array), TypeError, /out must be a Float32Array/);
    r.dispose();
    attention.dispose();
  });

  it('frees its buffers on dispose, and its owner disposes what it prepared', async () => {
    const module = await loadModule('simd');
    const attention = await createQEFlashAttention('test-similarity', undefined, { module: 'simd' });
    const before = module.liveAllocations;
    const a = attention.prepareAttention(16, 32, { heads: 4 });
    const b = attention.prepareAttention(8, 32, { heads: 4 });
    expect(module.liveAllocations).toBe(before + 8);
    a.dispose();
    a.dispose();
    expect(module.liveAllocations).toBe(before + 4);
    expectThrow(() => a.run(), TypeError, /disposed/);
    expectThrow(() => a.Q, TypeError, /disposed/);
    attention.dispose();
    expect(module.liveAllocations).toBe(before);
    expectThrow(() => b.run(), TypeError, /disposed/);
  });

  it('gives fresh views after module memory grows', async () => {
    const attention = await createOn('simd');
    const r = attention.prepareAttention(8, 16, { heads: 2 });
    const Q = uniform(128, 5);
    const K = uniform(128, 6);
    const V = uniform(128, 7);
    r.Q.set(Q);
    r.K.set(K);
    r.V.set(V);
    const s = attentionShape({ seqLen: 8, dim: 16, heads: 2 });
    const want = referenceAttention(Q, K, V, s);
    // A large call in between (16 MiB of queries, one key) grows memory, detaching any earlier view.
    const module = await loadModule('simd');
    const bytesBefore = module.memoryBytes;
    const big = 1 << 22;
    attention.computeFlashAttentionSync(uniform(big, 1), uniform(64, 2), uniform(64, 3), big / 64, 64, { heads: 1, kvSeqLen: 1 });
    expect(module.memoryBytes).toBeGreaterThan(bytesBefore);
    expect(maxAbsDiff(r.run(), want)).toBeLessThan(1e-5);
    r.dispose();
    attention.dispose();
  });

  it('runs on two threads with the single-thread bits', async () => {
    const one = await createQEFlashAttention('code-embedding', undefined, { threads: 1, module: 'simd' });
    const two = await createQEFlashAttention('code-embedding', undefined, { threads: 2, module: 'simd' });
    const s = attentionShape({ seqLen: 300, dim: 128, heads: 4 });
    const Q = uniform(s.seqLen * s.dim, 1);
    const K = uniform(s.seqLen * s.dim, 2);
    const V = uniform(s.seqLen * s.dim, 3);
    const r = two.prepareAttention(s.seqLen, s.dim, { heads: 4 });
    r.Q.set(Q);
    r.K.set(K);
    r.V.set(V);
    const got = Float32Array.from(r.run());
    expect(two.getMetrics().at(-1)?.threads).toBe(2);
    const want = one.computeFlashAttentionSync(Q, K, V, s.seqLen, s.dim, { heads: 4 });
    expect(Buffer.from(got.buffer).equals(Buffer.from(want.buffer))).toBe(true);
    r.dispose();
    one.dispose();
    two.dispose();
  });
});
