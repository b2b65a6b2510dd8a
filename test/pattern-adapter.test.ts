/**
 * The pattern adapter (js/pattern-adapter.ts over csrc/adapt/): the
 * Micro-LoRA forward pass and gradient against the float64 reference of
 * test/reference.ts (itself checked by central finite differences), the
 * pattern cache against a brute-force cosine ranking, eviction order,
 * export/import and corrupt bytes, the SONA wrapper names, and errors.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { createPatternAdapter, type PatternAdapter } from '../js/pattern-adapter';
import { loadQEModule } from '../js/module';
import {
  maxAbsDiff,
  referenceCosineRanking,
  referenceLoraForward,
  referenceLoraGradient,
  referenceLoraLoss,
  uniform,
  type ReferenceLora,
} from './reference';

const open: PatternAdapter[] = [];
async function adapter(...args: Parameters<typeof createPatternAdapter>): Promise<PatternAdapter> {
  const a = await createPatternAdapter(...args);
  open.push(a);
  return a;
}
afterAll(() => {
  for (const a of open) a.dispose();
});

/** The adapter's weights as a float64 reference model. */
function referenceOf(a: PatternAdapter, alpha: number): ReferenceLora {
  const { A, B } = a.getWeights();
  return { dim: a.dim, rank: a.rank, scale: alpha / a.rank, A, B };
}

/** Gives B (zero when new) random values so every term of the forward pass and gradient is exercised. */
function randomizeB(a: PatternAdapter, seed: number, amp = 0.3): void {
  const { A } = a.getWeights();
  a.setWeights({ A, B: uniform(a.rank * a.dim, seed, -amp, amp) });
}

describe('Micro-LoRA forward pass', () => {
  test('a new adapter is the identity; the same seed draws the same A, another seed another', async () => {
    const a = await adapter('pattern-adaptation', { dim: 37, rank: 3, seed: 5 });
    const b = await adapter('pattern-adaptation', { dim: 37, rank: 3, seed: 5 });
    const c = await adapter('pattern-adaptation', { dim: 37, rank: 3, seed: 6 });
    const x = uniform(37, 1);
    expect(Array.from(a.apply(x))).toEqual(Array.from(x));
    expect(Array.from(a.getWeights().A)).toEqual(Array.from(b.getWeights().A));
    expect(maxAbsDiff(a.getWeights().A, c.getWeights().A)).toBeGreaterThan(0.01);
    expect(a.getWeights().B.every((v) => v === 0)).toBe(true);
  });

  test.each([
    [1, 1], [2, 2], [3, 1], [5, 8], [7, 3], [17, 2], [64, 4], [255, 8], [256, 2], [384, 2], [384, 8],
  ])('dim %i, rank %i: apply matches the float64 reference', async (dim, rank) => {
    const alpha = 1.5 * rank;
    const a = await adapter('pattern-adaptation', { dim, rank, alpha, seed: dim * 10 + rank });
    randomizeB(a, dim + rank);
    const ref = referenceOf(a, alpha);
    for (let q = 0; q < 3; q++) {
      const x = uniform(dim, 100 + q);
      const { y } = referenceLoraForward(ref, x);
      expect(maxAbsDiff(a.apply(x), y)).toBeLessThan(1e-5 * (1 + Math.sqrt(dim)));
      // number[] input, an out array, and in place give the same bits.
      const viaArray = a.apply(Array.from(x));
      const out = new Float32Array(dim);
      expect(a.apply(x, out)).toBe(out);
      expect(Array.from(out)).toEqual(Array.from(viaArray));
      const inPlace = Float32Array.from(x);
      a.apply(inPlace, inPlace);
      expect(Array.from(inPlace)).toEqual(Array.from(out));
      expect(a.applyMicroLora(Array.from(x))).toEqual(Array.from(out));
    }
  });

  test('applyResident: the resident input and output give apply() to the bit, refuse NaN by element, and are the identity when disabled', async () => {
    for (const dim of [1, 5, 256, 300]) {
      const a = await adapter('pattern-adaptation', { dim, rank: 2 });
      randomizeB(a, dim);
      const x = uniform(dim, 11);
      const want = referenceLoraForward(referenceOf(a, 2), x).y;
      a.residentInput.set(x);
      const y = a.applyResident();
      expect(y).toHaveLength(dim);
      expect(Array.from(y)).toEqual(Array.from(a.apply(x)));
      expect(maxAbsDiff(y, want)).toBeLessThan(1e-5);
      expect(a.residentOutput).toEqual(y);
      // Other calls do not touch the resident buffers.
      a.storePattern({ id: 'p', embedding: uniform(dim, 12) });
      a.findPatterns(uniform(dim, 13), 1);
      expect(Array.from(a.residentInput)).toEqual(Array.from(x));
      a.residentInput[dim - 1] = NaN;
      expect(() => a.applyResident()).toThrow(new RangeError(`residentInput[${dim - 1}] must be a finite number, got NaN`));
    }
    const off = await adapter('pattern-adaptation', { dim: 8, enabled: false });
    const x = uniform(8, 3);
    off.residentInput.set(x);
    expect(Array.from(off.applyResident())).toEqual(Array.from(x));
    off.residentInput[2] = Infinity;
    expect(() => off.applyResident()).toThrow(RangeError);
    off.dispose();
    expect(() => off.applyResident()).toThrow(/disposed/);
    expect(() => off.residentInput).toThrow(/disposed/);
  });

  test('merge gives the adapter as one matrix: merge() x = apply(x); merge(base) adds to base', async () => {
    const a = await adapter('pattern-adaptation', { dim: 9, rank: 4, alpha: 3 });
    randomizeB(a, 3);
    const w = a.merge();
    const x = uniform(9, 4);
    const wx = Array.from({ length: 9 }, (_, i) => x.reduce((s, v, k) => s + w[i * 9 + k] * v, 0));
    expect(maxAbsDiff(a.apply(x), wx)).toBeLessThan(1e-5);
    const base = uniform(81, 5);
    const merged = a.merge(base);
    const identity = new Float32Array(81).map((_, i) => (i % 10 === 0 ? 1 : 0));
    expect(maxAbsDiff(merged, base.map((v, i) => v + w[i] - identity[i]))).toBeLessThan(1e-5);
  });

  test('QE_SONA_CONFIG: rank and cache size from the workload; enabled false is the identity and learns nothing', async () => {
    const p = await adapter();
    expect(p.getStats()).toMatchObject({ dim: 256, rank: 2, maxPatterns: 10000, enabled: true });
    const d = await adapter('defect-matching');
    expect(d.getStats()).toMatchObject({ dim: 384, rank: 8, maxPatterns: 2000 });
    const off = await adapter('coverage-analysis', { dim: 16 });
    expect(off.enabled).toBe(false);
    randomizeB(off, 9);
    const x = uniform(16, 2);
    expect(Array.from(off.apply(x))).toEqual(Array.from(x));
    const before = off.getWeights();
    const loss = off.adapt({ anchor: x, positive: uniform(16, 3), negatives: [uniform(16, 4)] });
    expect(Number.isFinite(loss)).toBe(true);
    expect(off.getWeights()).toEqual(before);
    expect(off.getStats().steps).toBe(0);
    expect(() => off.apply(new Float32Array(16).fill(NaN))).toThrow(RangeError);
  });
});

describe('Micro-LoRA gradient and learning', () => {
  test('the float64 reference gradient agrees with central finite differences of the float64 loss', () => {
    const dim = 6, rank = 2;
    const m: ReferenceLora = { dim, rank, scale: 1.5, A: uniform(rank * dim, 1, -0.5, 0.5), B: uniform(rank * dim, 2, -0.5, 0.5) };
    const x = uniform(dim, 3);
    for (const [nkeys, reward] of [[4, 1], [4, -0.7], [1, 1], [3, 0.3]]) {
      const keys = Array.from({ length: nkeys }, (_, i) => uniform(dim, 10 + i));
      const g = referenceLoraGradient(m, x, keys, 0.2, reward);
      const h = 1e-6;
      for (const [w, grad] of [[m.A, g.gradA], [m.B, g.gradB]] as const) {
        const p = w as Float32Array;
        const numeric = Array.from(p, (_, i) => {
          const keep = p[i];
          const f = (v: number) => {
            const w64 = Float64Array.from(p);
            w64[i] = v;
            return referenceLoraLoss({ ...m, [w === m.A ? 'A' : 'B']: w64 }, x, keys, 0.2, reward);
          };
          return (f(keep + h) - f(keep - h)) / (2 * h);
        });
        expect(maxAbsDiff(grad, numeric)).toBeLessThan(1e-6);
      }
    }
  });

  test.each([
    [5, 1, 3, 0.5, 1], [17, 2, 4, 0.2, 1], [33, 8, 9, 0.1, 0.7], [12, 3, 5, 0.2, -1], [12, 4, 1, 0.2, 1], [256, 2, 8, 0.3, 1], [384, 8, 8, 0.3, -0.5],
  ])('dim %i, rank %i, %i keys, temperature %f, reward %f: the C gradient (both A and B) matches the reference', async (dim, rank, nkeys, temperature, reward) => {
    const alpha = rank * 1.5;
    const a = await adapter('pattern-adaptation', { dim, rank, alpha, temperature, seed: dim + rank });
    randomizeB(a, dim * 3 + rank);
    const ref = referenceOf(a, alpha);
    const x = uniform(dim, 7);
    const keys = Array.from({ length: nkeys }, (_, i) => uniform(dim, 20 + i));
    keys[0] = keys[0].map((v, i) => 0.6 * v + x[i]); // a positive near the query
    const got = a.gradient({ anchor: x, positive: keys[0], negatives: keys.slice(1), reward });
    const want = referenceLoraGradient(ref, x, keys, temperature, reward);
    const scale = Math.max(...Array.from(want.gradA, Math.abs), ...Array.from(want.gradB, Math.abs));
    expect(scale).toBeGreaterThan(1e-4); // both gradients really are in play
    expect(Math.max(...Array.from(want.gradA, Math.abs))).toBeGreaterThan(1e-6);
    expect(Math.abs(got.loss - want.loss)).toBeLessThan(1e-4 * (1 + Math.abs(want.loss)));
    expect(maxAbsDiff(got.gradA, want.gradA)).toBeLessThan(2e-3 * scale + 1e-7);
    expect(maxAbsDiff(got.gradB, want.gradB)).toBeLessThan(2e-3 * scale + 1e-7);
  });

  test('an SGD step moves A and B by -rate x gradient, with decoupled weight decay', async () => {
    const dim = 11, rank = 3;
    const a = await adapter('pattern-adaptation', { dim, rank, optimizer: 'sgd', learningRate: 0.05, weightDecay: 0.2 });
    randomizeB(a, 8);
    const before = a.getWeights();
    const example = { anchor: uniform(dim, 1), positive: uniform(dim, 2), negatives: [uniform(dim, 3), uniform(dim, 4)] };
    const g = a.gradient(example);
    a.adapt(example);
    const after = a.getWeights();
    const decay = 1 - 0.05 * 0.2;
    expect(maxAbsDiff(after.A, before.A.map((v, i) => v * decay - 0.05 * g.gradA[i]))).toBeLessThan(1e-6);
    expect(maxAbsDiff(after.B, before.B.map((v, i) => v * decay - 0.05 * g.gradB[i]))).toBeLessThan(1e-6);
    expect(a.getStats().steps).toBe(1);
  });

  test('adapt lowers the loss of its example; reset returns to the identity', async () => {
    const dim = 24;
    const a = await adapter('pattern-adaptation', { dim, learningRate: 0.01 });
    const example = { anchor: uniform(dim, 1), positive: uniform(dim, 2), negatives: [uniform(dim, 3), uniform(dim, 4), uniform(dim, 5)] };
    const first = a.adapt(example);
    let last = first;
    for (let i = 0; i < 50; i++) last = a.adapt(example);
    expect(last).toBeLessThan(first * 0.5);
    // Both factors learned.
    expect(a.getWeights().B.some((v) => v !== 0)).toBe(true);
    a.reset();
    const x = uniform(dim, 9);
    expect(Array.from(a.apply(x))).toEqual(Array.from(x));
    expect(a.getStats()).toMatchObject({ steps: 0, adaptations: 0 });
  });

  test('reward form: a good result is pulled closer, a bad one pushed away', async () => {
    const dim = 16;
    const a = await adapter('pattern-adaptation', { dim, learningRate: 0.01, negatives: 3 });
    for (let i = 0; i < 6; i++) a.storePattern({ id: `p${i}`, embedding: uniform(dim, 50 + i) });
    const q = uniform(dim, 50).map((v, i) => v + 0.8 * uniform(dim, 99)[i]);
    // The margin of a pattern: its score minus the best other score (what InfoNCE moves).
    const margin = (id: string) => {
      const found = a.findPatterns(q, 6);
      return found.find((r) => r.id === id)!.score - Math.max(...found.filter((r) => r.id !== id).map((r) => r.score));
    };
    const good0 = margin('p0');
    for (let i = 0; i < 20; i++) a.adapt({ query: q, reward: 1, result: 'p0' });
    expect(margin('p0')).toBeGreaterThan(good0 + 0.05);
    const bad0 = margin('p1');
    for (let i = 0; i < 20; i++) a.adapt({ query: q, reward: -1, result: 'p1' });
    expect(margin('p1')).toBeLessThan(bad0 - 0.05);
    // Without a result, the reward judges the nearest pattern.
    expect(Number.isFinite(a.adapt({ query: q, reward: 0.5 }))).toBe(true);
  });

  test('adaptBatch takes one step on the mean gradient, with in-batch negatives', async () => {
    const dim = 10;
    const a = await adapter('pattern-adaptation', { dim, optimizer: 'sgd', learningRate: 0.1 });
    randomizeB(a, 4);
    const ref = referenceOf(a, 2);
    const ex = [0, 1, 2].map((i) => ({ anchor: uniform(dim, 10 + i), positive: uniform(dim, 20 + i) }));
    const before = a.getWeights();
    const loss = a.adaptBatch(ex);
    const grads = ex.map((e, i) => referenceLoraGradient(ref, e.anchor, [e.positive, ...ex.filter((_, j) => j !== i).map((o) => o.positive)], 0.1, 1));
    expect(Math.abs(loss - grads.reduce((s, g) => s + g.loss, 0) / 3)).toBeLessThan(1e-4);
    const meanA = before.A.map((v, i) => v - (0.1 * grads.reduce((s, g) => s + g.gradA[i], 0)) / 3);
    expect(maxAbsDiff(a.getWeights().A, meanA)).toBeLessThan(1e-5);
    expect(a.getStats().steps).toBe(1);
  });
});

describe('pattern cache', () => {
  test('findPatterns matches a brute-force cosine ranking through the adapter; hits are counted', async () => {
    for (const dim of [1, 3, 16, 37]) {
      const a = await adapter('pattern-adaptation', { dim, rank: 2 });
      randomizeB(a, dim);
      const rows = Array.from({ length: 120 }, (_, i) => uniform(dim, 1000 + i));
      rows.forEach((e, i) => a.storePattern({ id: `p${i}`, embedding: e, quality: i / 120, metadata: { n: i } }));
      const q = uniform(dim, 7);
      const truth = referenceCosineRanking(a.apply(q), rows);
      const found = a.findPatterns(q, 10);
      expect(found).toHaveLength(10);
      found.forEach((f, j) => {
        expect(Math.abs(f.score - truth[j].similarity)).toBeLessThan(1e-5);
        // Either the same row, or a tie within rounding.
        if (f.id !== `p${truth[j].index}`) expect(Math.abs(truth[j].similarity - rows.length)).toBeGreaterThan(0);
        expect(f.metadata).toEqual({ n: Number(f.id.slice(1)) });
        expect(f.hits).toBe(1);
      });
      expect(found.map((f) => truth.find((t) => `p${t.index}` === f.id)!.similarity)).toEqual(truth.slice(0, 10).map((t) => t.similarity));
      expect(a.findPatterns(q, 500)).toHaveLength(120);
    }
  });

  test('nearest-k through int8 codes equals the exact scan and a float64 ranking: random, clustered, near-duplicate caches, every build', async () => {
    // k <= 64 over >= 256 patterns scans codes first and scores the possible
    // rows exactly (csrc/adapt/pattern_cache.c); k 65 scans every row exactly.
    for (const kind of ['relaxed', 'simd', 'scalar'] as const) {
      for (const [dim, n, layout] of [[256, 1000, 'random'], [37, 700, 'clustered'], [256, 2000, 'near-duplicates'], [1, 300, 'random'], [300, 400, 'near-duplicates']] as const) {
        const a = await adapter('pattern-adaptation', { dim, rank: 2, maxPatterns: n, module: { module: kind } });
        randomizeB(a, dim + n, 0.1);
        const centers = Array.from({ length: 6 }, (_, c) => uniform(dim, 50 + c));
        const rows = Array.from({ length: n }, (_, i) => {
          if (layout === 'random') return uniform(dim, 3000 + i);
          const amp = layout === 'clustered' ? 0.2 : 2e-3;
          const noise = uniform(dim, 3000 + i, -amp, amp);
          const row = centers[i % 6].map((v, j) => v + noise[j]);
          if (layout === 'near-duplicates' && i % 40 === 9) return Float32Array.from(row.map((v) => v + 1e-6));
          if (layout === 'near-duplicates' && i % 40 === 17) return Float32Array.from(centers[i % 6]);
          return row;
        });
        rows.forEach((e, i) => a.storePattern({ id: `p${i}`, embedding: e }));
        for (let t = 0; t < 5; t++) {
          const q = t < 2 ? rows[(t * 131) % n] : uniform(dim, 90 + t);
          const truth = referenceCosineRanking(a.apply(q), rows);
          const full = a.findPatterns(q, 65);
          expect(a.getStats().lastSearchExactRows).toBe(0);
          for (const k of [1, 5, 10, 64]) {
            const found = a.findPatterns(q, k);
            expect(a.getStats().lastSearchExactRows).toBeGreaterThanOrEqual(k);
            // The same ids and scores, to the bit, as the exact scan.
            expect(found.map((f) => [f.id, f.score])).toEqual(full.slice(0, k).map((f) => [f.id, f.score]));
            // And the float64 ranking: the k-th best similarity agrees, and every
            // result is within rounding of a true top-k member.
            found.forEach((f, j) => expect(Math.abs(f.score - truth[j].similarity)).toBeLessThan(2e-6));
            const kth = truth[k - 1].similarity;
            const truthById = new Map(truth.map((r) => [`p${r.index}`, r.similarity]));
            for (const f of found) expect(truthById.get(f.id)!).toBeGreaterThanOrEqual(kth - 2e-6);
          }
        }
        a.dispose();
      }
    }
  });

  test('store replaces an id in place; remove keeps every other id findable', async () => {
    const dim = 8;
    const a = await adapter('pattern-adaptation', { dim });
    const rows = Array.from({ length: 40 }, (_, i) => uniform(dim, 300 + i));
    rows.forEach((e, i) => a.storePattern({ id: `p${i}`, embedding: e }));
    expect(a.storePattern({ id: 'p3', embedding: uniform(dim, 999), quality: 0.9 })).toEqual({ evicted: null });
    expect(a.size).toBe(40);
    expect(a.getPattern('p3')).toMatchObject({ quality: expect.closeTo(0.9, 6) });
    for (const id of ['p0', 'p39', 'p17']) expect(a.removePattern(id)).toBe(true);
    expect(a.removePattern('p17')).toBe(false);
    expect(a.size).toBe(37);
    for (let i = 0; i < 40; i++) {
      if ([0, 39, 17, 3].includes(i)) continue;
      expect(a.findPatterns(rows[i], 1)[0].id).toBe(`p${i}`);
      expect(Array.from(a.getPattern(`p${i}`)!.embedding)).toEqual(Array.from(rows[i]));
    }
  });

  test('eviction when full: lowest quality first, then least recently used', async () => {
    const dim = 4;
    const a = await adapter('pattern-adaptation', { dim, maxPatterns: 4 });
    const e = (i: number) => Float32Array.from({ length: dim }, (_, j) => (j === i % dim ? 1 : 0.1 * i));
    a.storePattern({ id: 'a', embedding: e(0), quality: 0.9 });
    a.storePattern({ id: 'b', embedding: e(1), quality: 0.2 });
    a.storePattern({ id: 'c', embedding: e(2), quality: 0.2 });
    a.storePattern({ id: 'd', embedding: e(3), quality: 0.5 });
    expect(a.nextEviction()).toBe('b'); // b and c tie; b is older
    expect(a.findPatterns(e(1), 1)[0].id).toBe('b'); // using b makes c the older
    const order: (string | null)[] = [];
    order.push(a.storePattern({ id: 'e', embedding: e(4), quality: 0.6 }).evicted);
    order.push(a.storePattern({ id: 'f', embedding: e(5), quality: 0.95 }).evicted);
    order.push(a.storePattern({ id: 'g', embedding: e(6), quality: 0.95 }).evicted);
    order.push(a.storePattern({ id: 'h', embedding: e(7), quality: 0.95 }).evicted);
    order.push(a.storePattern({ id: 'i', embedding: e(8), quality: 0.95 }).evicted);
    // c (0.2), b (0.2), d (0.5), e (0.6), a (0.9): then f, g, h, i tie at 0.95 and f is the oldest.
    expect(order).toEqual(['c', 'b', 'd', 'e', 'a']);
    expect(a.nextEviction()).toBe('f');
    expect(a.updatePattern('f', { quality: 0.95 })).toBe(true); // an update counts as a use
    expect(a.nextEviction()).toBe('g');
    expect(a.getStats().evictions).toBe(5);
    expect(a.patternIds().sort()).toEqual(['f', 'g', 'h', 'i']);
  });

  test('export then import gives the same look-ups, stats and eviction order; into another adapter too', async () => {
    const dim = 12;
    const a = await adapter('pattern-adaptation', { dim, maxPatterns: 50, seed: 3 });
    const rows = Array.from({ length: 45 }, (_, i) => uniform(dim, 500 + i));
    rows.forEach((e, i) => a.storePattern({ id: `id-${i}`, embedding: e, quality: (i * 7) % 10 / 10, metadata: i % 2 ? { i, tags: ['x', 'ünï'] } : undefined }));
    for (let s = 0; s < 30; s++) a.adapt({ anchor: uniform(dim, 900 + s), positive: `id-${s}` });
    a.findPatterns(rows[2], 5);
    const bytes = a.export();
    const b = await adapter('pattern-adaptation', { dim, maxPatterns: 7 });
    b.import(bytes);
    expect(b.size).toBe(45);
    expect(b.getStats().maxPatterns).toBe(50);
    for (let q = 0; q < 10; q++) {
      const x = uniform(dim, 700 + q);
      expect(b.apply(x)).toEqual(a.apply(x));
      expect(b.findPatterns(x, 5)).toEqual(a.findPatterns(x, 5));
    }
    expect(b.nextEviction()).toBe(a.nextEviction());
    expect(b.getPattern('id-3')).toEqual(a.getPattern('id-3'));
    expect(b.export()).toEqual(a.export());
    // Training continues identically (Adam's moments came along).
    const ex = { anchor: uniform(dim, 1), positive: 'id-4' };
    expect(b.adapt(ex)).toBe(a.adapt(ex));
    expect(b.getWeights()).toEqual(a.getWeights());
  });

  test('saveTo writes by temp file and rename; loadFrom reads it back', async () => {
    const dim = 5;
    const a = await adapter('pattern-adaptation', { dim });
    a.storePattern({ id: 'one', embedding: uniform(dim, 1), metadata: { note: 'kept' } });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qe-adapter-'));
    try {
      const file = path.join(dir, 'adapter.qepa');
      await a.saveTo(file);
      expect(fs.readdirSync(dir)).toEqual(['adapter.qepa']);
      const b = await adapter('pattern-adaptation', { dim });
      await b.loadFrom(file);
      expect(b.getPattern('one')!.metadata).toEqual({ note: 'kept' });
      await expect(b.loadFrom(path.join(dir, 'missing'))).rejects.toThrow(/ENOENT/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('corrupt exports get clear errors and change nothing: empty, truncated, bit flips, wrong magic or version, another dim', async () => {
    const dim = 6;
    const a = await adapter('pattern-adaptation', { dim });
    for (let i = 0; i < 5; i++) a.storePattern({ id: `p${i}`, embedding: uniform(dim, i), metadata: { i } });
    a.adapt({ anchor: uniform(dim, 9), positive: 'p1' });
    const good = a.export();
    const b = await adapter('pattern-adaptation', { dim });
    b.storePattern({ id: 'mine', embedding: uniform(dim, 77) });
    const state = b.export();
    const expectRefused = (bytes: Uint8Array, message: RegExp) => {
      expect(() => b.import(bytes)).toThrow(message);
      expect(b.export()).toEqual(state);
    };
    expectRefused(new Uint8Array(0), /empty/);
    for (const cut of [1, 7, 8, 20, 40, good.length - 100, good.length - 1]) expectRefused(good.slice(0, cut), /truncated/);
    const flipped = good.slice();
    flipped[0] ^= 1;
    expectRefused(flipped, /not a qe-flash pattern-adapter export/);
    const v2 = good.slice();
    v2[4] = 2;
    expectRefused(v2, /format version 2/);
    // Every byte past the version, one bit flipped: always refused.
    for (let i = 8; i < good.length; i += 1) {
      const bad = good.slice();
      bad[i] ^= 1 << (i % 8);
      expect(() => b.import(bad)).toThrow(RangeError);
    }
    expect(b.export()).toEqual(state);
    expect(() => b.import('bytes' as unknown as Uint8Array)).toThrow(TypeError);
    const other = await adapter('pattern-adaptation', { dim: 7 });
    expect(() => other.import(good)).toThrow(/dim 6; this one has dim 7/);
  });
});

describe('SONA wrapper names', () => {
  const sonaPattern = (id: string, embedding: number[], type: string, domain: string) => ({
    id, type, domain, stateEmbedding: embedding, action: { type: 'generate', value: id },
    outcome: { reward: 1, success: true, quality: 0.8 }, confidence: 0.7, usageCount: 0, createdAt: new Date(0).toISOString(),
  });

  test('storePattern and recallPattern with QESONAPattern objects, filtered by type and domain; recordOutcome; adaptPattern; getStats', async () => {
    const dim = 8;
    const a = await adapter('pattern-adaptation', { dim });
    const v = (s: number) => Array.from(uniform(dim, s));
    a.storePattern(sonaPattern('t1', v(1), 'test-generation', 'test-execution'));
    a.storePattern(sonaPattern('d1', v(2), 'defect-prediction', 'defect-intelligence'));
    a.storePattern(sonaPattern('d2', v(3), 'defect-prediction', 'test-execution'));
    const r = a.recallPattern(v(1)) as Record<string, unknown>;
    expect(r).toMatchObject({ id: 't1', type: 'test-generation', outcome: { quality: 0.8 }, usageCount: 1 });
    expect(r.stateEmbedding).toEqual(Array.from(new Float32Array(v(1))));
    expect((a.recallPattern({ features: v(1) }, 'defect-prediction') as { id: string }).id).toMatch(/^d/);
    expect((a.recallPattern(v(1), 'defect-prediction', 'test-execution') as { id: string }).id).toBe('d2');
    expect(a.recallPattern(v(1), 'coverage-optimization')).toBeNull();
    expect(Number.isFinite(a.recordOutcome(1))).toBe(true);
    const res = await a.adaptPattern({ embedding: v(2) }, 'defect-prediction', 'defect-intelligence');
    expect(res).toMatchObject({ success: true, pattern: { id: 'd1' } });
    expect(res.similarity).toBeGreaterThan(0.99);
    const none = await a.adaptPattern(v(2), 'resource-allocation', 'x');
    expect(none).toMatchObject({ success: false, pattern: null });
    const stats = a.getStats();
    expect(stats).toMatchObject({ totalPatterns: 3, patterns: 3, totalAdaptations: 1, adaptations: 1 });
    expect(stats.avgAdaptationTimeMs).toBeGreaterThan(0);
    expect(stats.cacheHitRate).toBeGreaterThan(0);
    a.clear();
    expect(a.size).toBe(0);
    expect(() => a.recordOutcome(1)).toThrow(/no look-up to judge/);
  });
});

describe('bad input', () => {
  test('clear TypeErrors and RangeErrors naming the argument; no module memory leaks', async () => {
    const module = await loadQEModule();
    const live = module.liveAllocations;
    const a = await createPatternAdapter('pattern-adaptation', { dim: 4 });
    expect(() => a.apply(new Float32Array(3))).toThrow(/x must have 4 elements/);
    expect(() => a.apply('abcd' as unknown as Float32Array)).toThrow(TypeError);
    expect(() => a.apply(new Float32Array([1, NaN, 0, 0]))).toThrow(/x\[1\] must be a finite number/);
    expect(() => a.apply([1, 2, Infinity, 0])).toThrow(/x\[2\]/);
    expect(() => a.apply(new Float32Array(4), new Float32Array(5))).toThrow(/out must have 4/);
    expect(() => a.adapt({ anchor: new Float32Array(4), positive: new Float32Array(4).fill(1) })).toThrow(/zero vector/);
    expect(() => a.adapt({ anchor: new Float32Array(4).fill(1), positive: 'nope' })).toThrow(/no stored pattern has the id "nope"/);
    expect(() => a.adapt({ query: new Float32Array(4).fill(1), reward: 1 })).toThrow(/needs the result/);
    expect(() => a.adapt({ query: new Float32Array(4).fill(1), reward: NaN })).toThrow(/reward must be a finite number/);
    expect(() => a.adapt({} as never)).toThrow(TypeError);
    expect(() => a.storePattern({ id: '', embedding: new Float32Array(4) })).toThrow(/pattern.id/);
    expect(() => a.storePattern({ id: 'x', embedding: new Float32Array([1, 2, NaN, 4]) })).toThrow(/pattern.embedding\[2\]/);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => a.storePattern({ id: 'x', embedding: new Float32Array(4), metadata: cyclic })).toThrow(/JSON/);
    expect(() => a.findPatterns(new Float32Array(4).fill(1), 0)).toThrow(/k must be in/);
    expect(a.findPatterns(new Float32Array(4).fill(1), 3)).toEqual([]);
    a.dispose();
    a.dispose();
    expect(() => a.apply(new Float32Array(4))).toThrow(/disposed/);
    expect(module.liveAllocations).toBe(live);
    await expect(createPatternAdapter('pattern-adaptation', { rank: 9 })).rejects.toThrow(/options.rank must be in \[1, 8\]/);
    await expect(createPatternAdapter('pattern-adaptation', { rank: 0 })).rejects.toThrow(RangeError);
    await expect(createPatternAdapter('nope' as never)).rejects.toThrow(/unknown workload/);
    await expect(createPatternAdapter('pattern-adaptation', { optimizer: 'rmsprop' as never })).rejects.toThrow(/optimizer/);
    await expect(createPatternAdapter('pattern-adaptation', { temperature: 0 })).rejects.toThrow(/temperature/);
    expect(module.liveAllocations).toBe(live);
  });
});
