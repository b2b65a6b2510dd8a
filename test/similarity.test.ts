/**
 * Cosine top-K search (js/similarity.ts over csrc/search) against a float64
 * brute force: one-shot helpers, the batch form, pattern matching with
 * softmax probabilities, and the resident index (add, remove, search,
 * growth, stable ids), on both builds.
 */
import type { ModuleKind } from '../types';
import type { QEModule } from '../js/module';
import {
  cosineTopK,
  cosineTopKBatch,
  createSimilarityIndex,
  DEFAULT_PATTERN_TEMPERATURE,
  matchPatterns,
  type SimilarityIndex,
} from '../js/similarity';
import { expectThrow, loadModule, MODULE_KINDS } from './helpers';
import { referenceCosine as cosine, referenceCosineRanking as referenceRanking, referenceNorm as norm, rng } from './reference';

// ---------------------------------------------------------------- planted data

/** A random unit vector, orthogonal to u when given. */
function unitVector(dim: number, next: () => number, u?: Float64Array): Float64Array {
  for (;;) {
    const v = Float64Array.from({ length: dim }, () => next() * 2 - 1);
    if (u !== undefined) {
      let d = 0;
      for (let i = 0; i < dim; i++) d += v[i] * u[i];
      for (let i = 0; i < dim; i++) v[i] -= d * u[i];
    }
    const n = norm(v);
    if (n > 0.1) return v.map((x) => x / n);
  }
}

/**
 * Rows whose cosines with the direction u are distinct grid values at least
 * 0.9 / n apart (far beyond float rounding), mixed with exact copies,
 * power-of-two multiples (bit-identical scores) and zero rows (score
 * exactly 0; no grid value is near 0): the order is unambiguous except for
 * true ties, which must go to the lower index.
 */
function plantedCorpus(u: Float64Array, n: number, seed: number): Float32Array[] {
  const next = rng(seed);
  const dim = u.length;
  const grid = Array.from({ length: n }, (_, i) => i).sort(() => next() - 0.5);
  const rows: Float32Array[] = [];
  for (let r = 0; r < n; r++) {
    const pick = next();
    if (r > 0 && pick < 0.2) {
      const src = rows[Math.floor(next() * r)];
      const m = [1, 2, 0.25, 8][Math.floor(next() * 4)];
      rows.push(src.map((x) => x * m));
    } else if (pick < 0.26) {
      rows.push(new Float32Array(dim));
    } else {
      let c = 0.05 + (0.9 * grid[r]) / n;
      if (next() < 0.5) c = -c;
      const v = dim > 1 ? unitVector(dim, next, u) : new Float64Array(1);
      if (dim === 1) c = c > 0 ? 1 : -1;
      const s = Math.sqrt(1 - c * c);
      const scale = 0.5 + next() * 3;
      rows.push(Float32Array.from({ length: dim }, (_, i) => scale * (c * u[i] + s * v[i])));
    }
  }
  return rows;
}

function flatOf(rows: readonly Float32Array[], dim: number): Float32Array {
  const flat = new Float32Array(rows.length * dim);
  rows.forEach((r, i) => flat.set(r, i * dim));
  return flat;
}

function randomRows(count: number, dim: number, seed: number): Float32Array[] {
  const next = rng(seed);
  return Array.from({ length: count }, () => Float32Array.from({ length: dim }, () => next() * 2 - 1));
}

const modules = new Map<ModuleKind, QEModule>();
beforeAll(async () => {
  for (const kind of MODULE_KINDS) modules.set(kind, await loadModule(kind));
});
const moduleOf = (kind: ModuleKind): QEModule => modules.get(kind) as QEModule;

describe.each(MODULE_KINDS)('cosineTopK on the %s build', (kind) => {
  const SHAPES = [
    { n: 1, dim: 1, k: 1 },
    { n: 1, dim: 5, k: 3 },
    { n: 9, dim: 3, k: 9 },
    { n: 40, dim: 7, k: 5 },
    { n: 64, dim: 16, k: 10 },
    { n: 100, dim: 33, k: 100 },
    { n: 257, dim: 13, k: 300 },
    { n: 500, dim: 384, k: 10 },
    { n: 1000, dim: 2, k: 1000 },
  ];

  it.each(SHAPES)('equals the full float64 sort, ties included: n=$n dim=$dim k=$k', ({ n, dim, k }) => {
    const u = unitVector(dim, rng(n * 31 + dim));
    const rows = plantedCorpus(u, n, n + dim);
    const q = Float32Array.from(u, (x) => x * 3);
    const want = referenceRanking(q, rows).slice(0, Math.min(k, n));
    for (const corpus of [rows, flatOf(rows, dim), { data: flatOf(rows, dim), count: n }]) {
      const got = cosineTopK(moduleOf(kind), q, corpus, k);
      expect(got.map((r) => r.index)).toEqual(want.map((r) => r.index));
      got.forEach((r, j) => expect(Math.abs(r.similarity - want[j].similarity)).toBeLessThanOrEqual(2e-6));
    }
    // The reversed direction reverses the order of the planted rows (zero rows stay in the middle).
    const wantReversed = referenceRanking(q.map((x) => -x), rows).slice(0, Math.min(k, n));
    expect(cosineTopK(moduleOf(kind), q.map((x) => -x), rows, k).map((r) => r.index)).toEqual(wantReversed.map((r) => r.index));
  });

  it('keeps equal rows in index order and returns every row when topK exceeds the corpus', () => {
    const dim = 6;
    const base = Float32Array.from([1, -2, 3, 0.5, 0, 4]);
    const other = Float32Array.from([0, 1, 0, 0, 1, 0]);
    const rows = [other, base, new Float32Array(dim), base.map((x) => x * 2), base, other];
    const got = cosineTopK(moduleOf(kind), base, rows, 50);
    expect(got.map((r) => r.index)).toEqual(referenceRanking(base, rows).map((r) => r.index));
    expect(got.slice(0, 3).map((r) => r.index)).toEqual([1, 3, 4]);
    expect(got[1].similarity).toBe(got[0].similarity);
    expect(got[2].similarity).toBe(got[0].similarity);
    expect(got.find((r) => r.index === 2)?.similarity).toBe(0);
  });

  it('gives similarity 0 to and from zero vectors, without NaN', () => {
    const zero = new Float32Array(5);
    const rows = randomRows(7, 5, 3);
    const got = cosineTopK(moduleOf(kind), zero, rows, 7);
    expect(got).toEqual(rows.map((_, index) => ({ index, similarity: 0 })));
    expect(Object.is(got[0].similarity, 0)).toBe(true);
  });

  it('is a valid top-K on random data (where float and double may order near-ties differently)', () => {
    const dim = 37;
    const rows = randomRows(300, dim, 11);
    rows[250] = rows[17].slice();
    for (let t = 0; t < 5; t++) {
      const q = randomRows(1, dim, 100 + t)[0];
      const got = cosineTopK(moduleOf(kind), q, rows, 12);
      expect(got).toHaveLength(12);
      got.forEach((r) => expect(Math.abs(r.similarity - cosine(q, rows[r.index]))).toBeLessThanOrEqual(2e-6));
      for (let j = 1; j < got.length; j++) {
        const ordered = got[j - 1].similarity > got[j].similarity || (got[j - 1].similarity === got[j].similarity && got[j - 1].index < got[j].index);
        expect(ordered).toBe(true);
      }
      const kept = new Set(got.map((r) => r.index));
      const last = Math.min(...got.map((r) => cosine(q, rows[r.index])));
      rows.forEach((x, i) => {
        if (!kept.has(i)) expect(cosine(q, x)).toBeLessThanOrEqual(last + 2e-6);
      });
      if (kept.has(250)) expect(kept.has(17)).toBe(true);
    }
  });

  it('answers a batch exactly as it answers each query alone', () => {
    const dim = 24;
    const rows = randomRows(203, dim, 5);
    const queries = randomRows(70, dim, 6);
    const batch = cosineTopKBatch(moduleOf(kind), queries, rows, 9);
    const flatBatch = cosineTopKBatch(moduleOf(kind), flatOf(queries, dim), flatOf(rows, dim), 9, dim);
    expect(flatBatch).toEqual(batch);
    queries.forEach((q, i) => expect(batch[i]).toEqual(cosineTopK(moduleOf(kind), q, rows, 9)));
  });

  it('frees every allocation it makes', () => {
    const m = moduleOf(kind);
    const before = m.liveAllocations;
    cosineTopK(m, Float32Array.of(1, 2, 3), [Float32Array.of(1, 0, 0), Float32Array.of(0, 1, 0)], 1);
    expect(() => cosineTopK(m, Float32Array.of(1, 2, 3), [Float32Array.of(1, 0, 0), Float32Array.of(3e38, 3e38, 0)], 1)).toThrow(RangeError);
    expect(m.liveAllocations).toBe(before);
  });

  it('rejects bad arguments with precise errors', () => {
    const m = moduleOf(kind);
    const q = Float32Array.of(1, 2);
    expectThrow(() => cosineTopK(m, [1, 2] as unknown as Float32Array, [q]), TypeError, /testEmbedding must be a Float32Array/);
    // Every corpus vector agrees on 3: the query (length 2) is the one blamed (issue 16).
    expectThrow(() => cosineTopK(m, q, [Float32Array.of(1, 2, 3)]), RangeError, /^testEmbedding has length 2 but every vector of corpusEmbeddings has length 3$/);
    expectThrow(() => cosineTopK(m, q, [Float32Array.of(1, 2), Float32Array.of(1, 2, 3)]), RangeError, /corpusEmbeddings\[1\] has length 3 but the dimension is 2/);
    expectThrow(() => cosineTopK(m, q, []), RangeError, /corpusEmbeddings is empty/);
    expectThrow(() => cosineTopK(m, q, Float32Array.of(1, 2, 3)), RangeError, /not a positive multiple of the dimension 2/);
    expectThrow(() => cosineTopK(m, q, { data: Float32Array.of(1, 2, 3, 4), count: 3 }), RangeError, /count x dim = 3 x 2 = 6/);
    expectThrow(() => cosineTopK(m, Float32Array.of(1, NaN), [q]), RangeError, /testEmbedding\[1\] is NaN/);
    expectThrow(() => cosineTopK(m, q, [Float32Array.of(Infinity, 0)]), RangeError, /corpusEmbeddings\[0\]\[0\] is Infinity/);
    expectThrow(() => cosineTopK(m, q, [q], 0), RangeError, /topK must be at least 1/);
    expectThrow(() => cosineTopK(m, q, [q], 2.5), RangeError, /topK must be an integer/);
    expectThrow(() => cosineTopK(m, q, 'corpus' as unknown as Float32Array), TypeError, /corpusEmbeddings must be/);
  });
});

describe.each(MODULE_KINDS)('matchPatterns on the %s build', (kind) => {
  it('scores every pattern, best first, with softmax(score / temperature) probabilities summing to 1', () => {
    const dim = 19;
    const patterns = randomRows(40, dim, 21);
    patterns[33] = patterns[5].slice();
    const q = randomRows(1, dim, 22)[0];
    for (const temperature of [DEFAULT_PATTERN_TEMPERATURE, 1, 0.01]) {
      const got = matchPatterns(moduleOf(kind), q, patterns, temperature);
      expect(got).toHaveLength(40);
      const scores = patterns.map((p) => cosine(q, p));
      const max = Math.max(...scores);
      const exps = scores.map((s) => Math.exp((s - max) / temperature));
      const total = exps.reduce((a, b) => a + b, 0);
      let sum = 0;
      got.forEach((r, j) => {
        expect(Math.abs(r.score - scores[r.index])).toBeLessThanOrEqual(2e-6);
        expect(Math.abs(r.probability - exps[r.index] / total)).toBeLessThanOrEqual(1e-5 + 2e-5 / temperature * (exps[r.index] / total));
        if (j > 0) expect(got[j - 1].score > r.score || (got[j - 1].score === r.score && got[j - 1].index < r.index)).toBe(true);
        sum += r.probability;
      });
      expect(Math.abs(sum - 1)).toBeLessThanOrEqual(1e-6);
      expect(got.findIndex((r) => r.index === 5)).toBeLessThan(got.findIndex((r) => r.index === 33));
    }
  });

  it('rejects a temperature that is not positive', () => {
    const q = Float32Array.of(1, 0);
    expectThrow(() => matchPatterns(moduleOf(kind), q, [q], 0), RangeError, /temperature must be greater than 0/);
    expectThrow(() => matchPatterns(moduleOf(kind), q, [q], NaN), RangeError, /temperature must be finite/);
  });
});

describe.each(MODULE_KINDS)('the resident similarity index on the %s build', (kind) => {
  let index: SimilarityIndex;
  afterEach(() => index?.dispose());

  /** The float64 answer over what the index holds: results by id, ties by lower id. */
  function expected(held: Map<number, Float32Array>, q: Float32Array, k: number): number[] {
    return [...held.entries()]
      .map(([id, x]) => ({ id, s: cosine(q, x) }))
      .sort((a, b) => b.s - a.s || a.id - b.id)
      .slice(0, k)
      .map((r) => r.id);
  }

  it('adds, grows by doubling, removes by moving the last row, and keeps ids stable', () => {
    const dim = 10;
    const m = moduleOf(kind);
    const allocationsBefore = m.liveAllocations;
    index = createSimilarityIndex(m, dim);
    expect(index.size).toBe(0);
    expect(index.search(new Float32Array(dim).fill(1), 3)).toEqual([]);

    const u = unitVector(dim, rng(7));
    const planted = plantedCorpus(u, 150, 8);
    const held = new Map<number, Float32Array>();
    const first = index.add(planted[0]);
    expect(first).toEqual([0]);
    held.set(0, planted[0]);
    const ids = index.add(planted.slice(1, 100));
    expect(ids).toEqual(Array.from({ length: 99 }, (_, i) => i + 1));
    index.add(flatOf(planted.slice(100), dim)).forEach((id, i) => held.set(id, planted[100 + i]));
    ids.forEach((id, i) => held.set(id, planted[1 + i]));
    expect(index.size).toBe(150);
    expect(index.capacity).toBe(256);

    const q = Float32Array.from(u, (x) => x * 2);
    for (const k of [1, 7, 150, 400]) {
      expect(index.search(q, k).map((r) => r.id)).toEqual(expected(held, q, k));
    }

    // Remove a scattered third, including the last row and the first; ids survive the moves.
    for (let id = 0; id < 150; id += 3) {
      expect(index.remove(id)).toBe(true);
      held.delete(id);
    }
    expect(index.remove(0)).toBe(false);
    expect(index.remove(9999)).toBe(false);
    expect(index.has(1)).toBe(true);
    expect(index.has(3)).toBe(false);
    expect(index.size).toBe(100);
    for (const k of [1, 5, 40, 100, 101]) {
      const got = index.search(q, k);
      expect(got.map((r) => r.id)).toEqual(expected(held, q, k));
      got.forEach((r) => expect(Math.abs(r.similarity - cosine(q, held.get(r.id) as Float32Array))).toBeLessThanOrEqual(2e-6));
    }
    // New ids continue after the largest ever handed out.
    expect(index.add(planted[3])).toEqual([150]);
    held.set(150, planted[3]);
    const queries = [q, q.map((x) => -x), new Float32Array(dim), randomRows(1, dim, 9)[0]];
    const batch = index.searchBatch(queries, 6);
    queries.forEach((query, i) => expect(batch[i].map((r) => r.id)).toEqual(expected(held, query, 6)));
    expect(index.searchBatch(flatOf(queries, dim), 6)).toEqual(batch);

    index.dispose();
    index.dispose();
    expect(m.liveAllocations).toBe(allocationsBefore);
    expectThrow(() => index.search(q, 1), TypeError, /disposed/);
  });

  it('breaks ties by lower id even after removals have moved rows', () => {
    const dim = 4;
    const a = Float32Array.of(1, 2, 3, 4);
    index = createSimilarityIndex(moduleOf(kind), dim);
    // ids 0..9: ten copies of a; then removals move the last copies into low rows.
    index.add(Array.from({ length: 10 }, () => a));
    index.remove(0);
    index.remove(2);
    index.remove(4);
    // Rows now hold ids 9, 1, 8, 3, 7, 5, 6 (moved in from the end).
    expect(index.search(a, 3).map((r) => r.id)).toEqual([1, 3, 5]);
    expect(index.search(a, 1).map((r) => r.id)).toEqual([1]);
    expect(index.search(a, 7).map((r) => r.id)).toEqual([1, 3, 5, 6, 7, 8, 9]);
  });

  it('rejects bad vectors and leaves the index unchanged', () => {
    index = createSimilarityIndex(moduleOf(kind), 3);
    index.add(Float32Array.of(1, 0, 0));
    expectThrow(() => index.add(Float32Array.of(1, 0)), RangeError, /not a multiple of the dimension 3/);
    expectThrow(() => index.add([Float32Array.of(1, 0, 0), Float32Array.of(1, NaN, 0)]), RangeError, /vectors\[1\]\[1\] is NaN/);
    expectThrow(() => index.add(Float32Array.of(3e38, 3e38, 0)), RangeError, /norm exceeds the float32 range/);
    expect(index.size).toBe(1);
    expectThrow(() => index.search(Float32Array.of(1, 0), 1), RangeError, /query has length 2 but the dimension is 3/);
    expectThrow(() => index.search(Float32Array.of(1, 0, 0), 0), RangeError, /k must be at least 1/);
    expectThrow(() => createSimilarityIndex(moduleOf(kind), 0), RangeError, /dim must be at least 1/);
  });
});

describe('the two builds', () => {
  it('return the same results bit for bit', () => {
    const dim = 29;
    const rows = randomRows(400, dim, 41);
    const queries = randomRows(9, dim, 42);
    const simd = cosineTopKBatch(moduleOf('simd'), queries, rows, 20);
    const scalar = cosineTopKBatch(moduleOf('scalar'), queries, rows, 20);
    expect(scalar).toEqual(simd);
  });
});
