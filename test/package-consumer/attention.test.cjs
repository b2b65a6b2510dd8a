// A Jest test in a consumer project, as users write one.
'use strict';
const { createQEFlashAttention, terminateThreadPools } = require('@agentic-qe/v3/flash-attention');
const m = require('@agentic-qe/v3/flash-attention');
const { attention, exercise, maxAbsDiff, uniform } = require('./reference.cjs');

afterAll(() => terminateThreadPools());

test('attention, search and a bad call give the right answers', async () => {
  const r = await exercise(m);
  expect(r.attentionMaxDiff).toBeLessThanOrEqual(1e-5);
  expect(r.search).toBe('ok');
  expect(r.badCall).toBe('RangeError');
});

test('synchronous attention on a code-embedding preset (dim 512, 4 heads) matches float64', async () => {
  const fa = await createQEFlashAttention('code-embedding');
  const seqLen = 9;
  const dim = 512;
  const Q = uniform(seqLen * dim, 1);
  const K = uniform(seqLen * dim, 2);
  const V = uniform(seqLen * dim, 3);
  const out = fa.computeFlashAttentionSync(Q, K, V, seqLen, dim, { causal: true });
  expect(out).toBeInstanceOf(Float32Array);
  expect(maxAbsDiff(out, attention(Q, K, V, seqLen, seqLen, dim, 4, true))).toBeLessThanOrEqual(1e-5);
  fa.dispose();
});
