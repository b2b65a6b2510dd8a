/**
 * THE float64 reference every Jest test compares against: attention (heads,
 * causal mask, valid key length, scale, cross attention), matmul, softmax,
 * layer norm and embedding lookup, written for clarity in double precision,
 * independently of the module and of js/baseline.ts. Also the seeded random
 * inputs and the error measures the tests share.
 */

export interface AttentionShape {
  seqLen: number;
  kvSeqLen: number;
  dim: number;
  heads: number;
  causal: boolean;
  validKeyLength: number;
  scale: number;
}

/** A test case's shape: the sizes, and any of the options (the rest take their defaults). */
export type AttentionCase = Partial<AttentionShape> & { seqLen: number; dim: number; heads: number };

/** Fills in the usual defaults: kvSeqLen = seqLen, scale = 1 / sqrt(dim / heads), all keys valid. */
export function attentionShape(s: AttentionCase): AttentionShape {
  const kvSeqLen = s.kvSeqLen ?? s.seqLen;
  return {
    seqLen: s.seqLen,
    kvSeqLen,
    dim: s.dim,
    heads: s.heads,
    causal: s.causal ?? false,
    validKeyLength: s.validKeyLength ?? kvSeqLen,
    scale: s.scale ?? 1 / Math.sqrt(s.dim / s.heads),
  };
}

/** Output row `row` of attention (all heads), in float64; O(kvSeqLen x dim). */
export function referenceAttentionRow(
  Q: ArrayLike<number>,
  K: ArrayLike<number>,
  V: ArrayLike<number>,
  s: AttentionShape,
  row: number,
): Float64Array {
  const { kvSeqLen, dim, heads, causal, validKeyLength, scale } = s;
  const hd = dim / heads;
  const out = new Float64Array(dim);
  const logits = new Float64Array(kvSeqLen);
  for (let h = 0; h < heads; h++) {
    let max = -Infinity;
    for (let j = 0; j < kvSeqLen; j++) {
      const masked = j >= validKeyLength || (causal && j > row);
      if (masked) {
        logits[j] = -Infinity;
        continue;
      }
      let dot = 0;
      for (let d = 0; d < hd; d++) dot += Q[row * dim + h * hd + d] * K[j * dim + h * hd + d];
      logits[j] = dot * scale;
      if (logits[j] > max) max = logits[j];
    }
    let sum = 0;
    for (let j = 0; j < kvSeqLen; j++) {
      if (logits[j] === -Infinity) continue;
      const w = Math.exp(logits[j] - max);
      sum += w;
      for (let d = 0; d < hd; d++) out[h * hd + d] += w * V[j * dim + h * hd + d];
    }
    for (let d = 0; d < hd; d++) out[h * hd + d] /= sum;
  }
  return out;
}

/** All seqLen x dim outputs of attention, in float64. */
export function referenceAttention(Q: ArrayLike<number>, K: ArrayLike<number>, V: ArrayLike<number>, s: AttentionShape): Float64Array {
  const out = new Float64Array(s.seqLen * s.dim);
  for (let i = 0; i < s.seqLen; i++) out.set(referenceAttentionRow(Q, K, V, s, i), i * s.dim);
  return out;
}

/** c [m x n] = a [m x k] b [k x n]. */
export function referenceMatmul(a: ArrayLike<number>, b: ArrayLike<number>, m: number, n: number, k: number): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += a[i * k + p] * b[p * n + j];
      c[i * n + j] = s;
    }
  }
  return c;
}

export function referenceVecAdd(a: ArrayLike<number>, b: ArrayLike<number>): Float64Array {
  const out = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] + b[i];
  return out;
}

/** Softmax of each row of length n. */
export function referenceSoftmax(x: ArrayLike<number>, n: number): Float64Array {
  const y = new Float64Array(x.length);
  for (let r = 0; r < x.length / n; r++) {
    let max = -Infinity;
    for (let j = 0; j < n; j++) max = Math.max(max, x[r * n + j]);
    let sum = 0;
    for (let j = 0; j < n; j++) sum += Math.exp(x[r * n + j] - max);
    for (let j = 0; j < n; j++) y[r * n + j] = Math.exp(x[r * n + j] - max) / sum;
  }
  return y;
}

/** Layer norm of each row of length gamma.length (biased variance, as PyTorch). */
export function referenceLayerNorm(x: ArrayLike<number>, gamma: ArrayLike<number>, beta: ArrayLike<number>, eps: number): Float64Array {
  const n = gamma.length;
  const y = new Float64Array(x.length);
  for (let r = 0; r < x.length / n; r++) {
    let mean = 0;
    for (let j = 0; j < n; j++) mean += x[r * n + j];
    mean /= n;
    let variance = 0;
    for (let j = 0; j < n; j++) variance += (x[r * n + j] - mean) ** 2;
    variance /= n;
    const inv = 1 / Math.sqrt(variance + eps);
    for (let j = 0; j < n; j++) y[r * n + j] = (x[r * n + j] - mean) * inv * gamma[j] + beta[j];
  }
  return y;
}

export function referenceEmbeddingLookup(ids: ArrayLike<number>, table: ArrayLike<number>, dim: number): Float64Array {
  const out = new Float64Array(ids.length * dim);
  for (let i = 0; i < ids.length; i++) {
    for (let d = 0; d < dim; d++) out[i * dim + d] = table[ids[i] * dim + d];
  }
  return out;
}

/** A seeded generator of uniform numbers in [0, 1) (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** count float32 values uniform in [lo, hi). */
export function uniform(count: number, seed: number, lo = -1, hi = 1): Float32Array {
  const next = rng(seed);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = lo + (hi - lo) * next();
  return out;
}

/** count integers uniform in [lo, hi], as float32 (exact). */
export function uniformIntegers(count: number, seed: number, lo: number, hi: number): Float32Array {
  const next = rng(seed);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = lo + Math.floor((hi - lo + 1) * next());
  return out;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (Number.isNaN(d)) return NaN;
    if (d > m) m = d;
  }
  return m;
}

/** max |a - b| / max(floor, |b|): relative error with an absolute floor. */
export function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>, floor = 1): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]) / Math.max(floor, Math.abs(b[i]));
    if (Number.isNaN(d)) return NaN;
    if (d > m) m = d;
  }
  return m;
}

export function referenceNorm(x: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * x[i];
  return Math.sqrt(s);
}

/** Cosine similarity as the library documents it: 0 when either side is a zero vector (norm below FLT_MIN). */
export function referenceCosine(q: ArrayLike<number>, x: ArrayLike<number>): number {
  const nq = referenceNorm(q);
  const nx = referenceNorm(x);
  if (nq < 1.1754943508222875e-38 || nx < 1.1754943508222875e-38) return 0;
  let d = 0;
  for (let i = 0; i < q.length; i++) d += q[i] * x[i];
  return d / (nq * nx);
}

/** Every row ranked by cosine: similarity descending, ties by lower index. */
export function referenceCosineRanking(q: ArrayLike<number>, rows: readonly ArrayLike<number>[]): { index: number; similarity: number }[] {
  return rows
    .map((x, index) => ({ index, similarity: referenceCosine(q, x) }))
    .sort((a, b) => b.similarity - a.similarity || a.index - b.index);
}

/** An ONNX Attention problem in 4D layout for referenceOnnxAttention. */
export interface OnnxReferenceCase {
  batch: number;
  qHeads: number;
  kvHeads: number;
  qLen: number;
  /** Keys in all (past plus new). */
  keys: number;
  headSize: number;
  vHeadSize: number;
  /** [batch, qHeads, qLen, headSize] */
  Q: Float32Array;
  /** [batch, kvHeads, keys, headSize] and [.., vHeadSize]: the past and new keys together. */
  K: Float32Array;
  V: Float32Array;
  scale: number;
  causal: boolean;
  /** Query i sits at position i + offset(b). */
  offset: (b: number) => number;
  /** Keys j >= valid(b) are padding. */
  valid: (b: number) => number;
  windowLeft: number;
  windowRight: number;
  softcap: number;
  /** The mask tensor's additive bias (0, a number, or -Infinity). */
  bias: (b: number, h: number, i: number, j: number) => number;
}

/**
 * The ONNX Attention operator in float64, written from the operator's
 * definition: softcap, then bias (mask, causal, window, padding), softmax;
 * a row whose bias hides every key is 0. Returns Y [batch, qHeads, qLen, vHeadSize].
 */
export function referenceOnnxAttention(c: OnnxReferenceCase): Float64Array {
  const group = c.qHeads / c.kvHeads;
  const y = new Float64Array(c.batch * c.qHeads * c.qLen * c.vHeadSize);
  const s = new Float64Array(c.keys);
  for (let b = 0; b < c.batch; b++) {
    for (let h = 0; h < c.qHeads; h++) {
      const kh = Math.floor(h / group);
      for (let i = 0; i < c.qLen; i++) {
        const pos = i + c.offset(b);
        let max = -Infinity;
        let anyVisible = false;
        for (let j = 0; j < c.keys; j++) {
          let bias = c.bias(b, h, i, j);
          if (j >= c.valid(b) || (c.causal && j > pos)) bias = -Infinity;
          if (c.windowLeft >= 0 && j < pos - c.windowLeft) bias = -Infinity;
          if (c.windowRight >= 0 && j > pos + c.windowRight) bias = -Infinity;
          let dot = 0;
          for (let p = 0; p < c.headSize; p++) {
            dot += c.Q[((b * c.qHeads + h) * c.qLen + i) * c.headSize + p] * c.K[((b * c.kvHeads + kh) * c.keys + j) * c.headSize + p];
          }
          let score = dot * c.scale;
          if (c.softcap > 0) score = c.softcap * Math.tanh(score / c.softcap);
          if (bias !== -Infinity) anyVisible = true;
          s[j] = score + bias;
          if (s[j] > max) max = s[j];
        }
        if (!anyVisible) continue;
        let sum = 0;
        for (let j = 0; j < c.keys; j++) {
          s[j] = s[j] === -Infinity ? 0 : Math.exp(s[j] - max);
          sum += s[j];
        }
        for (let p = 0; p < c.vHeadSize; p++) {
          let acc = 0;
          for (let j = 0; j < c.keys; j++) acc += s[j] * c.V[((b * c.kvHeads + kh) * c.keys + j) * c.vHeadSize + p];
          y[((b * c.qHeads + h) * c.qLen + i) * c.vHeadSize + p] = acc / sum;
        }
      }
    }
  }
  return y;
}

/** HNSW distance in float64 (csrc/search/hnsw.h): cosine 1 - cos, ip 1 - dot, l2 |q - x| (not squared). */
export function referenceDistance(metric: 'cosine' | 'ip' | 'l2', q: ArrayLike<number>, x: ArrayLike<number>): number {
  let dot = 0;
  let nq = 0;
  let nx = 0;
  let l2 = 0;
  for (let i = 0; i < q.length; i++) {
    dot += q[i] * x[i];
    nq += q[i] * q[i];
    nx += x[i] * x[i];
    l2 += (q[i] - x[i]) * (q[i] - x[i]);
  }
  if (metric === 'l2') return Math.sqrt(l2);
  if (metric === 'ip') return 1 - dot;
  return nq === 0 || nx === 0 ? 1 : 1 - dot / Math.sqrt(nq * nx);
}

/** The exact k nearest rows (float64 brute force) among those `allow` admits: [{ index, distance }] closest first. */
export function referenceKnn(
  metric: 'cosine' | 'ip' | 'l2',
  q: ArrayLike<number>,
  rows: readonly ArrayLike<number>[],
  k: number,
  allow: (index: number) => boolean = () => true,
): { index: number; distance: number }[] {
  const all: { index: number; distance: number }[] = [];
  rows.forEach((x, index) => {
    if (allow(index)) all.push({ index, distance: referenceDistance(metric, q, x) });
  });
  all.sort((a, b) => a.distance - b.distance || a.index - b.index);
  return all.slice(0, k);
}

/** n points around `clusters` Gaussian centres (N(0, 1) per coordinate), spread sigma: [points, a generator of more]. */
export function gaussianMixture(n: number, dim: number, clusters: number, sigma: number, seed: number): { points: Float32Array[]; more: (count: number) => Float32Array[] } {
  const r = rng(seed);
  const gauss = (): number => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
  const centres = Array.from({ length: clusters }, () => Float64Array.from({ length: dim }, gauss));
  const more = (count: number): Float32Array[] =>
    Array.from({ length: count }, () => {
      const c = centres[Math.floor(r() * clusters) % clusters];
      return Float32Array.from({ length: dim }, (_, d) => c[d] + sigma * gauss());
    });
  return { points: more(n), more };
}

/* ------------------------------------------------------------------
 * Micro-LoRA (issue 12), in float64: y = x + s B (A x), s = alpha / rank,
 * A [rank x dim], B [dim x rank] row-major; the loss of
 * csrc/adapt/micro_lora.h and its gradient written out by hand.
 * ------------------------------------------------------------------ */

export interface ReferenceLora {
  dim: number;
  rank: number;
  scale: number;
  A: ArrayLike<number>;
  B: ArrayLike<number>;
}

export function referenceLoraForward(m: ReferenceLora, x: ArrayLike<number>): { y: Float64Array; h: Float64Array } {
  const h = new Float64Array(m.rank);
  for (let j = 0; j < m.rank; j++) for (let i = 0; i < m.dim; i++) h[j] += m.A[j * m.dim + i] * x[i];
  const y = Float64Array.from(x);
  for (let i = 0; i < m.dim; i++) for (let j = 0; j < m.rank; j++) y[i] += m.scale * m.B[i * m.rank + j] * h[j];
  return { y, h };
}

/** The loss: InfoNCE weighted by reward >= 0, -|reward| log(1 - p0) below 0, reward (1 - cos) for one key. */
export function referenceLoraLoss(m: ReferenceLora, x: ArrayLike<number>, keys: readonly ArrayLike<number>[], temperature: number, reward: number): number {
  const { y } = referenceLoraForward(m, x);
  const c = keys.map((k) => referenceCosine(y, k));
  if (keys.length === 1) return reward * (1 - c[0]);
  const z = c.map((v) => v / temperature);
  const lse = (v: number[]) => {
    const mx = Math.max(...v);
    return mx + Math.log(v.reduce((s, t) => s + Math.exp(t - mx), 0));
  };
  if (reward >= 0) return reward * (lse(z) - z[0]);
  return -reward * (lse(z) - lse(z.slice(1)));
}

/** The analytic gradient of referenceLoraLoss: dL/dA [rank x dim], dL/dB [dim x rank]. */
export function referenceLoraGradient(
  m: ReferenceLora, x: ArrayLike<number>, keys: readonly ArrayLike<number>[], temperature: number, reward: number,
): { loss: number; gradA: Float64Array; gradB: Float64Array } {
  const { y, h } = referenceLoraForward(m, x);
  const ny = referenceNorm(y);
  const yhat = y.map((v) => v / ny);
  const knorm = keys.map((k) => referenceNorm(k));
  const c = keys.map((k, i) => (knorm[i] === 0 ? 0 : yhat.reduce((s, v, d) => s + v * k[d], 0) / knorm[i]));
  // dL/dc_i
  let dc: number[];
  if (keys.length === 1) {
    dc = [-reward];
  } else {
    const z = c.map((v) => v / temperature);
    const mx = Math.max(...z);
    const e = z.map((v) => Math.exp(v - mx));
    const sum = e.reduce((a, b) => a + b, 0);
    const p = e.map((v) => v / sum);
    if (reward >= 0) {
      dc = p.map((pi, i) => (reward * (pi - (i === 0 ? 1 : 0))) / temperature);
    } else {
      const rest = e.slice(1).reduce((a, b) => a + b, 0);
      dc = p.map((_, i) => (i === 0 ? -reward * p[0] : reward * p[0] * (e[i] / rest)) / temperature);
    }
  }
  const g = new Float64Array(m.dim);
  keys.forEach((k, i) => {
    if (knorm[i] === 0) return;
    for (let d = 0; d < m.dim; d++) g[d] += (dc[i] * k[d]) / knorm[i];
  });
  const gy = g.reduce((s, v, d) => s + v * yhat[d], 0);
  const gu = g.map((v, d) => (v - gy * yhat[d]) / ny);
  const gradA = new Float64Array(m.rank * m.dim);
  const gradB = new Float64Array(m.dim * m.rank);
  for (let j = 0; j < m.rank; j++) {
    let t = 0;
    for (let d = 0; d < m.dim; d++) t += m.B[d * m.rank + j] * gu[d];
    t *= m.scale;
    for (let d = 0; d < m.dim; d++) {
      gradA[j * m.dim + d] = t * x[d];
      gradB[d * m.rank + j] = m.scale * h[j] * gu[d];
    }
  }
  return { loss: referenceLoraLoss(m, x, keys, temperature, reward), gradA, gradB };
}

/** BM25's inverse document frequency, ln(1 + (N - df + 0.5) / (df + 0.5)), df capped at N. */
export function referenceBm25Idf(df: number, docs: number): number {
  const d = Math.min(df, docs);
  return Math.log(1 + (docs - d + 0.5) / (d + 0.5));
}

/**
 * The corpus-weighted hashed vector of csrc/embed/text_weight.c in float64:
 * features (hash, count, weight) with document frequencies df(hash) over
 * `docs` texts; each adds sign * weight * (k1 + 1) tf / (k1 + tf) * idf at
 * column(hash), then the vector is divided by its L2 norm. column() gives the
 * column and sign by the documented hash.
 */
export function referenceTfidfVector(
  features: { hash: number; count: number; weight: number }[],
  df: (hash: number) => number,
  docs: number,
  k1: number,
  dim: number,
  column: (hash: number) => { column: number; sign: number },
): Float64Array {
  const out = new Float64Array(dim);
  for (const f of features) {
    const { column: c, sign } = column(f.hash);
    out[c] += sign * f.weight * ((k1 + 1) * f.count) / (k1 + f.count) * referenceBm25Idf(df(f.hash), docs);
  }
  const n = referenceNorm(out);
  return n > 0 ? out.map((v) => v / n) : out;
}
