// Float64 references for the consumer checks (scripts/check-package.sh):
// multi-head attention with an optional causal mask, and cosine top-k.
// Written here, independently of the package, as a user's test would.
'use strict';

/** Seeded uniform floats in [-1, 1) (a 32-bit LCG), as a Float32Array. */
function uniform(n, seed) {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2147483648 - 1;
  }
  return out;
}

/** softmax(Q K^T * scale) V per head, in float64; rows are row-major seqLen x dim. */
function attention(Q, K, V, seqLen, kvSeqLen, dim, heads, causal) {
  const hd = dim / heads;
  const scale = 1 / Math.sqrt(hd);
  const out = new Float64Array(seqLen * dim);
  for (let i = 0; i < seqLen; i++) {
    for (let h = 0; h < heads; h++) {
      const logits = [];
      let max = -Infinity;
      for (let j = 0; j < kvSeqLen; j++) {
        if (causal && j > i) break;
        let dot = 0;
        for (let d = 0; d < hd; d++) dot += Q[i * dim + h * hd + d] * K[j * dim + h * hd + d];
        logits.push(dot * scale);
        max = Math.max(max, dot * scale);
      }
      let sum = 0;
      const w = logits.map((l) => {
        const e = Math.exp(l - max);
        sum += e;
        return e;
      });
      for (let d = 0; d < hd; d++) {
        let acc = 0;
        for (let j = 0; j < w.length; j++) acc += w[j] * V[j * dim + h * hd + d];
        out[i * dim + h * hd + d] = acc / sum;
      }
    }
  }
  return out;
}

/** Indices of the k rows of `corpus` (n x dim) most cosine-similar to `query`, best first. */
function cosineTopK(query, corpus, dim, k) {
  const n = corpus.length / dim;
  const norm = (a, off) => {
    let s = 0;
    for (let d = 0; d < dim; d++) s += a[off + d] * a[off + d];
    return Math.sqrt(s);
  };
  const qn = norm(query, 0);
  const scored = [];
  for (let r = 0; r < n; r++) {
    let dot = 0;
    for (let d = 0; d < dim; d++) dot += query[d] * corpus[r * dim + d];
    scored.push({ index: r, similarity: dot / (qn * norm(corpus, r * dim)) });
  }
  scored.sort((a, b) => b.similarity - a.similarity || a.index - b.index);
  return scored.slice(0, k);
}

function maxAbsDiff(a, b) {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/**
 * Runs the package `m` the way a user would: attention (small, and large
 * enough to use worker threads), a resident index search, a clear error on
 * a bad call. Returns what the caller checks; throws on a wrong value.
 */
async function exercise(m) {
  const results = {};
  const shapes = [
    { seqLen: 7, kvSeqLen: 7, dim: 12, heads: 3, causal: true },
    { seqLen: 5, kvSeqLen: 9, dim: 8, heads: 2, causal: false },
    { seqLen: 160, kvSeqLen: 160, dim: 64, heads: 4, causal: false },
  ];
  const fa = await m.createQEFlashAttention('test-similarity', { dim: 64 }, { threads: 2 });
  try {
    let worst = 0;
    for (const [i, s] of shapes.entries()) {
      const Q = uniform(s.seqLen * s.dim, 10 + i);
      const K = uniform(s.kvSeqLen * s.dim, 20 + i);
      const V = uniform(s.kvSeqLen * s.dim, 30 + i);
      const got = await fa.computeFlashAttention(Q, K, V, s.seqLen, s.dim, { heads: s.heads, causal: s.causal, kvSeqLen: s.kvSeqLen });
      const diff = maxAbsDiff(got, attention(Q, K, V, s.seqLen, s.kvSeqLen, s.dim, s.heads, s.causal));
      if (!(diff <= 1e-5)) throw new Error(`attention ${JSON.stringify(s)} is off by ${diff}`);
      worst = Math.max(worst, diff);
    }
    results.attentionMaxDiff = worst;
    const metrics = fa.getMetrics();
    results.module = metrics[0].module;
    results.threadsUsed = Math.max(...metrics.map((r) => r.threads ?? 1));

    const dim = 24;
    const corpus = uniform(50 * dim, 77);
    const query = uniform(dim, 78);
    const index = fa.createSimilarityIndex(dim);
    index.add(corpus);
    const hits = index.search(query, 5);
    const want = cosineTopK(query, corpus, dim, 5);
    for (let r = 0; r < 5; r++) {
      if (hits[r].id !== want[r].index || Math.abs(hits[r].similarity - want[r].similarity) > 1e-5) {
        throw new Error(`search rank ${r}: got ${JSON.stringify(hits[r])}, expected ${JSON.stringify(want[r])}`);
      }
    }
    index.dispose();
    results.search = 'ok';

    try {
      await fa.computeFlashAttention(new Float32Array(3), new Float32Array(3), new Float32Array(3), 1, 4, { heads: 1 });
      throw new Error('a wrong-length Q was accepted');
    } catch (error) {
      if (!(error instanceof RangeError) || !/\bQ\b/.test(error.message)) throw new Error(`a wrong-length Q gave ${error}`);
    }
    results.badCall = 'RangeError';
  } finally {
    fa.dispose();
  }
  return results;
}

module.exports = { uniform, attention, cosineTopK, maxAbsDiff, exercise };
