/**
 * What the benchmark checks outputs against: float64 attention on sampled
 * rows, a naive cosine top-k, and the largest differences between outputs.
 */
import type { AttentionInputs, AttentionShape } from './benchmark-rows';

export function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Number.POSITIVE_INFINITY;
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= worst)) worst = Number.isNaN(d) ? Number.POSITIVE_INFINITY : d;
  }
  return worst;
}

/**
 * Float64 attention for a few query rows: an independent check that the
 * engines agree with the truth, not only with each other.
 */
export function referenceRows(inputs: AttentionInputs, shape: AttentionShape, rows: number[]): Map<number, Float64Array> {
  const { seqLen, dim, heads } = shape;
  const d = dim / heads;
  const scale = 1 / Math.sqrt(d);
  const out = new Map<number, Float64Array>();
  const s = new Float64Array(seqLen);
  for (const i of rows) {
    const row = new Float64Array(dim);
    for (let h = 0; h < heads; h++) {
      let max = -Infinity;
      for (let j = 0; j < seqLen; j++) {
        let dot = 0;
        for (let p = 0; p < d; p++) dot += inputs.Q[i * dim + h * d + p] * inputs.K[j * dim + h * d + p];
        s[j] = dot * scale;
        if (s[j] > max) max = s[j];
      }
      let sum = 0;
      for (let j = 0; j < seqLen; j++) {
        s[j] = Math.exp(s[j] - max);
        sum += s[j];
      }
      for (let p = 0; p < d; p++) {
        let acc = 0;
        for (let j = 0; j < seqLen; j++) acc += s[j] * inputs.V[j * dim + h * d + p];
        row[h * d + p] = acc / sum;
      }
    }
    out.set(i, row);
  }
  return out;
}

/**
 * The naive search the search rows compare against: every cosine in
 * JavaScript (float64 accumulation), then a full sort. Ties by lower index.
 */
export function naiveCosineTopK(queries: Float32Array, count: number, corpus: Float32Array, n: number, dim: number, k: number) {
  const norms = new Float64Array(n);
  for (let r = 0; r < n; r++) {
    let s = 0;
    for (let c = 0; c < dim; c++) s += corpus[r * dim + c] * corpus[r * dim + c];
    norms[r] = Math.sqrt(s);
  }
  const out: { index: number; similarity: number }[][] = [];
  for (let q = 0; q < count; q++) {
    let qn = 0;
    for (let c = 0; c < dim; c++) qn += queries[q * dim + c] * queries[q * dim + c];
    qn = Math.sqrt(qn);
    const scored: { index: number; similarity: number }[] = [];
    for (let r = 0; r < n; r++) {
      let dot = 0;
      for (let c = 0; c < dim; c++) dot += queries[q * dim + c] * corpus[r * dim + c];
      scored.push({ index: r, similarity: qn > 0 && norms[r] > 0 ? dot / (qn * norms[r]) : 0 });
    }
    scored.sort((a, b) => b.similarity - a.similarity || a.index - b.index);
    out.push(scored.slice(0, k));
  }
  return out;
}

/**
 * Largest difference between our top-k lists and the naive ones: position by
 * position (the sorted scores must agree), and each row we name against the
 * naive score of that same row (so a swap of two rows whose scores differ by
 * rounding is allowed, a wrong row is not).
 */
export function compareTopK(ours: { index: number; similarity: number }[][], truth: { index: number; similarity: number }[][]): number {
  if (ours.length !== truth.length) return Number.POSITIVE_INFINITY;
  let worst = 0;
  for (let q = 0; q < ours.length; q++) {
    if (ours[q].length !== truth[q].length) return Number.POSITIVE_INFINITY;
    const byIndex = new Map(truth[q].map((t) => [t.index, t.similarity]));
    for (let i = 0; i < ours[q].length; i++) {
      worst = Math.max(worst, Math.abs(ours[q][i].similarity - truth[q][i].similarity));
      const own = byIndex.get(ours[q][i].index);
      // A row outside the naive top-k must tie with its last entry.
      const reference = own ?? truth[q][truth[q].length - 1].similarity;
      worst = Math.max(worst, Math.abs(ours[q][i].similarity - reference));
    }
  }
  return worst;
}
