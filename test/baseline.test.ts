/**
 * The naive JavaScript baseline is slow on purpose, but correct: it matches
 * the float64 reference, and so the module's output.
 */
import { naiveAttention } from '../js/baseline';
import { validateAttention } from '../js/validate';
import { createOn } from './helpers';
import { attentionShape, maxAbsDiff, referenceAttention, uniform, type AttentionShape } from './reference';

const CASES: AttentionShape[] = [
  attentionShape({ seqLen: 1, dim: 1, heads: 1 }),
  attentionShape({ seqLen: 13, kvSeqLen: 29, dim: 6, heads: 2 }),
  attentionShape({ seqLen: 29, kvSeqLen: 13, dim: 15, heads: 3, causal: true }),
  attentionShape({ seqLen: 40, dim: 96, heads: 12, validKeyLength: 17 }),
  attentionShape({ seqLen: 25, kvSeqLen: 31, dim: 35, heads: 7, causal: true, validKeyLength: 9 }),
  attentionShape({ seqLen: 20, dim: 8, heads: 1, scale: 2.5 }),
];

test.each(CASES)('naive attention $seqLen x $kvSeqLen, dim $dim, $heads heads, causal $causal, valid $validKeyLength, scale $scale', (s) => {
  const Q = uniform(s.seqLen * s.dim, 1);
  const K = uniform(s.kvSeqLen * s.dim, 2);
  const V = uniform(s.kvSeqLen * s.dim, 3);
  const resolved = validateAttention(Q, K, V, s.seqLen, s.dim, {
    heads: s.heads,
    kvSeqLen: s.kvSeqLen,
    causal: s.causal,
    validKeyLength: s.validKeyLength,
    scale: s.scale,
  }, { heads: 1, causal: false });
  expect(maxAbsDiff(naiveAttention(Q, K, V, resolved), referenceAttention(Q, K, V, s))).toBeLessThanOrEqual(1e-5);
});

test('naive attention survives scores whose exp overflows', () => {
  const s = attentionShape({ seqLen: 9, dim: 2, heads: 1, scale: 1 });
  const Q = uniform(18, 4, -40, 40);
  const K = uniform(18, 5, -40, 40);
  const V = uniform(18, 6);
  const resolved = validateAttention(Q, K, V, 9, 2, { heads: 1, scale: 1 }, { heads: 1, causal: false });
  const out = naiveAttention(Q, K, V, resolved);
  expect(out.every(Number.isFinite)).toBe(true);
  expect(maxAbsDiff(out, referenceAttention(Q, K, V, s))).toBeLessThanOrEqual(1e-4);
});

test('computeBaselineAttention returns the baseline, agreeing with computeFlashAttention', async () => {
  const fa = await createOn('simd', { headsPerBlock: 4 });
  const s = attentionShape({ seqLen: 33, kvSeqLen: 21, dim: 20, heads: 4, causal: true });
  const Q = uniform(s.seqLen * s.dim, 7);
  const K = uniform(s.kvSeqLen * s.dim, 8);
  const V = uniform(s.kvSeqLen * s.dim, 9);
  const options = { kvSeqLen: 21, causal: true };
  const baseline = await fa.computeBaselineAttention(Q, K, V, 33, 20, options);
  const flash = await fa.computeFlashAttention(Q, K, V, 33, 20, options);
  expect(baseline).toBeInstanceOf(Float32Array);
  expect(maxAbsDiff(baseline, referenceAttention(Q, K, V, s))).toBeLessThanOrEqual(1e-5);
  expect(maxAbsDiff(baseline, flash)).toBeLessThanOrEqual(2e-5);
  // Baseline calls are not flash calls: only the flash call is in the metrics.
  expect(fa.getMetrics()).toHaveLength(1);
});
