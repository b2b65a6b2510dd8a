/**
 * The HNSW index (js/hnsw.ts over csrc/search/hnsw.c) against a float64
 * brute force (test/reference.ts): recall on clustered data, removal and
 * re-adding, persistence and a table of corrupt files, filters, every
 * metric and build, and bad arguments.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createQEFlashAttention } from '../js/flash-attention';
import { HNSWFileError, HNSWIndex, createHNSWIndex, type HNSWMetric } from '../js/hnsw';
import type { QEModule } from '../js/module';
import { loadModule, MODULE_KINDS } from './helpers';
import { recordThreadJobStats, terminateThreadPools } from '../js/threads';
import { gaussianMixture, referenceDistance, referenceKnn, rng } from './reference';

/** Recall@k counting a result right when it is as close as the exact k-th (ties are equally right). */
function recallAgainst(got: { distance: number }[][], want: { distance: number }[][], metric: HNSWMetric): number {
  let hits = 0;
  let total = 0;
  got.forEach((g, i) => {
    const w = want[i];
    const worst = w[w.length - 1].distance;
    const tol = metric === 'l2' ? 1e-4 * Math.max(1, worst) : 1e-5;
    hits += g.filter((r) => r.distance <= worst + tol).length;
    total += w.length;
  });
  return hits / total;
}

describe('HNSW index: recall on 20,000 clustered vectors (dim 64) at the default ef', () => {
  const dim = 64;
  const data = gaussianMixture(20000, dim, 200, 0.6, 11);
  const queries = data.more(100);
  let index: HNSWIndex;

  beforeAll(async () => {
    index = await createHNSWIndex({ dimensions: dim }, { module: 'simd' });
    index.batchInsert(data.points.map((vector, key) => ({ key, vector })));
  });
  afterAll(() => index.dispose());

  it('has recall@10 >= 0.95 on both traversals (int8 codes re-ranked, and float32), and prints the figure', () => {
    const want = queries.map((q) => referenceKnn('cosine', q, data.points, 10));
    const measured: string[] = [];
    for (const traversal of ['float32', 'int8'] as const) {
      index.setTraversal(traversal);
      const recall = recallAgainst(queries.map((q) => index.search(q, 10)), want, 'cosine');
      measured.push(`${traversal} ${recall.toFixed(4)}`);
      expect(recall).toBeGreaterThanOrEqual(0.95);
    }
    // The figure the test asserts, as measured (100 queries, 20,000 x 64, 200 clusters, ef 100).
    console.log(`HNSW recall@10 on 20,000 clustered vectors at the default ef (100): ${measured.join(', ')} (bar 0.95)`);
    expect(() => index.setTraversal('x' as 'int8')).toThrow(RangeError);
  });

  it('has recall@10 >= 0.95 against the float64 exact top-10, results best first', () => {
    expect(index.size()).toBe(20000);
    expect(index.getEfSearch()).toBe(100);
    const got = queries.map((q) => index.search(q, 10));
    const want = queries.map((q) => referenceKnn('cosine', q, data.points, 10));
    for (const g of got) {
      expect(g).toHaveLength(10);
      for (let j = 1; j < g.length; j++) expect(g[j].distance).toBeGreaterThanOrEqual(g[j - 1].distance);
      for (const r of g) {
        expect(r.score).toBeCloseTo(1 - referenceDistance('cosine', queries[got.indexOf(g)], data.points[r.key as number]), 5);
        expect(r.id).toBe(r.key);
      }
    }
    const recall = recallAgainst(got, want, 'cosine');
    expect(recall).toBeGreaterThanOrEqual(0.95);
    // The exact scan of the same index agrees with float64 to float32 rounding.
    const exact = queries.slice(0, 10).map((q) => index.searchExact(q, 10));
    expect(recallAgainst(exact, want.slice(0, 10), 'cosine')).toBe(1);
    // recall() measures the same thing on stored vectors.
    expect(index.recall()).toBeGreaterThanOrEqual(0.9);
  });

  it('filters at 1% selectivity exactly, and at 10% with recall >= 0.95, returning only admitted keys', () => {
    const r = rng(5);
    for (const fraction of [0.01, 0.1]) {
      const admitted = new Set<number>();
      for (let i = 0; i < data.points.length; i++) if (r() < fraction) admitted.add(i);
      const filter = index.createFilter(admitted);
      expect(filter.size).toBe(admitted.size);
      const got = queries.map((q) => index.search(q, 10, { filter }));
      const want = queries.map((q) => referenceKnn('cosine', q, data.points, 10, (i) => admitted.has(i)));
      for (const g of got) for (const x of g) expect(admitted.has(x.key as number)).toBe(true);
      const recall = recallAgainst(got, want, 'cosine');
      expect(recall).toBeGreaterThanOrEqual(fraction === 0.01 ? 0.999 : 0.95);
      // A predicate and a plain key list give the same answers as the filter object.
      const viaSet = index.search(queries[0], 10, { filter: admitted });
      const viaPredicate = index.search(queries[0], 10, { filter: (key) => admitted.has(key as number) });
      expect(viaSet.map((x) => x.key)).toEqual(got[0].map((x) => x.key));
      expect(viaPredicate.map((x) => x.key)).toEqual(got[0].map((x) => x.key));
    }
    expect(index.search(queries[0], 10, { filter: [] })).toEqual([]);
  });
});

describe('HNSW index: delete, re-add, persistence', () => {
  const dim = 24;
  const data = gaussianMixture(3000, dim, 30, 0.5, 21);
  const queries = data.more(40);
  let module: QEModule;

  beforeAll(async () => {
    module = await loadModule('simd');
  });

  it('deleted keys never come back, re-added keys return with their new vector, recall holds', () => {
    const index = new HNSWIndex<{ n: number }>(module, { dimensions: dim, metric: 'l2', seed: 3 });
    index.batchInsert(data.points.map((vector, key) => ({ key: `k${key}`, vector, metadata: { n: key } })));
    const live = new Map<string, Float32Array>(data.points.map((v, i) => [`k${i}`, v]));
    const r = rng(8);
    const deleted: string[] = [];
    for (let i = 0; i < 3000; i++) {
      if (r() < 0.3) {
        expect(index.delete(`k${i}`)).toBe(true);
        live.delete(`k${i}`);
        deleted.push(`k${i}`);
      }
    }
    expect(index.delete(deleted[0])).toBe(false);
    expect(index.remove('never-there')).toBe(false);
    expect(index.size()).toBe(live.size);
    // Every live key, and no deleted one, when k covers the whole index.
    const all = index.search(queries[0], 5000);
    expect(all).toHaveLength(live.size);
    expect(new Set(all.map((x) => x.key))).toEqual(new Set(live.keys()));
    // A deleted key's own vector finds other keys only.
    for (const key of deleted.slice(0, 50)) {
      const v = data.points[Number(key.slice(1))];
      for (const x of index.search(v, 10)) expect(x.key).not.toBe(key);
    }
    const check = (): void => {
      const keys = [...live.keys()];
      const rows = keys.map((k) => live.get(k) as Float32Array);
      const got = queries.map((q) => index.search(q, 10));
      const want = queries.map((q) => referenceKnn('l2', q, rows, 10));
      expect(recallAgainst(got, want, 'l2')).toBeGreaterThanOrEqual(0.95);
    };
    check();
    // Re-add half of the deleted keys with new vectors: memory is reused (no growth in slots).
    const memory = index.getStats().indexSizeBytes;
    const fresh = data.more(deleted.length);
    deleted.forEach((key, i) => {
      if (i % 2 === 0) {
        index.insert(key, fresh[i], { n: -i });
        live.set(key, fresh[i]);
      }
    });
    // Level-0 blocks are reused; only the upper-level lists (drawn afresh per node) may differ a little.
    expect(index.getStats().indexSizeBytes).toBeLessThan(memory * 1.01);
    check();
    const again = index.search(fresh[0], 1)[0];
    expect(again.key).toBe(deleted[0]);
    expect(again.distance).toBeLessThan(1e-3);
    expect(again.metadata).toEqual({ n: -0 });
    // Inserting an existing key replaces its vector.
    index.insert('k1', fresh[1]);
    live.set('k1', fresh[1]);
    expect(index.search(fresh[1], 1)[0].key).toBe('k1');
    expect(index.size()).toBe(live.size);
    index.dispose();
  });

  it('gives identical results after save and load, keys and metadata included; same seed and order give the same bytes', async () => {
    const make = (): HNSWIndex<{ file: string }> => {
      const index = new HNSWIndex<{ file: string }>(module, { dimensions: dim, M: 8, efConstruction: 64, seed: 77 });
      index.batchInsert(data.points.slice(0, 1500).map((vector, i) => ({ key: i % 3 ? `f${i}` : i, vector, metadata: { file: `src/${i}.ts` } })));
      for (let i = 0; i < 1500; i += 13) index.delete(i % 3 ? `f${i}` : i);
      return index;
    };
    const a = make();
    const bytes = a.save();
    expect(Buffer.from(make().save()).equals(Buffer.from(bytes))).toBe(true);
    const b = new HNSWIndex<{ file: string }>(module, { dimensions: dim, M: 8, efConstruction: 64, seed: 77 });
    b.load(bytes);
    expect(b.size()).toBe(a.size());
    for (const q of queries) expect(b.search(q, 15, { ef: 40 })).toEqual(a.search(q, 15, { ef: 40 }));
    // Both go on identically.
    a.insert('new', queries[0], { file: 'x' });
    b.insert('new', queries[0], { file: 'x' });
    expect(Buffer.from(b.save()).equals(Buffer.from(a.save()))).toBe(true);

    const dir = mkdtempSync(join(tmpdir(), 'qe-hnsw-'));
    try {
      const path = join(dir, 'coverage.hnsw');
      writeFileSync(path, 'an older file');
      await a.saveTo(path);
      expect(readdirSync(dir)).toEqual(['coverage.hnsw']);
      const c = await createHNSWIndex<{ file: string }>({ dimensions: dim }, { module: 'simd' });
      await c.loadFrom(path);
      expect(c.search(queries[1], 5)).toEqual(a.search(queries[1], 5));
      expect(c.search(queries[0], 1)[0]).toMatchObject({ key: 'new', metadata: { file: 'x' } });
      expect(Buffer.from(readFileSync(path)).equals(Buffer.from(a.save()))).toBe(true);
      await expect(c.loadFrom(join(dir, 'missing'))).rejects.toThrow(/ENOENT/);
      c.dispose();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    a.dispose();
    b.dispose();
  });

  it('refuses every corrupt file in the table with a clear HNSWFileError and stays as it was', () => {
    const source = new HNSWIndex(module, { dimensions: 8, M: 4, seed: 1 });
    source.batchInsert(gaussianMixture(150, 8, 5, 0.5, 2).points.map((vector, key) => ({ key, vector })));
    source.delete(7);
    const good = source.save();
    const target = new HNSWIndex(module, { dimensions: 8, M: 4, seed: 1 });
    target.insert('only', new Float32Array(8).fill(1));
    target.search(new Float32Array(8).fill(1), 1); // its resident search buffer, made once
    const liveBefore = module.liveAllocations;
    const expectRefused = (bytes: Uint8Array, code: string | RegExp, index: HNSWIndex = target): void => {
      let error: unknown;
      try {
        index.load(bytes);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(HNSWFileError);
      const e = error as HNSWFileError;
      if (typeof code === 'string') expect(e.code).toBe(code);
      else expect(e.code).toMatch(code);
      expect(e.message).toMatch(/^load: /);
      expect(index.size()).toBe(1);
      expect(index.search(new Float32Array(8).fill(1), 1)[0].key).toBe('only');
    };
    // Truncated at many lengths.
    for (let cut = 0; cut < good.length; cut += cut < 100 ? 1 : 37) {
      expectRefused(good.subarray(0, cut), cut === 0 ? 'EMPTY' : cut < 8 ? 'FOREIGN' : 'TRUNCATED');
    }
    // Single bit flips all over the file.
    const r = rng(3);
    for (let t = 0; t < 400; t++) {
      const bad = good.slice();
      const at = t < 100 ? t : Math.floor(r() * good.length);
      bad[at] ^= 1 << Math.floor(r() * 8);
      expectRefused(bad, /^(FOREIGN|VERSION|TRUNCATED|CHECKSUM|CORRUPT)$/);
    }
    expectRefused(good.slice().fill(0, good.length - 4), /^(CHECKSUM|CORRUPT)$/);
    // Another dimension, another metric.
    const wrongDim = new HNSWIndex(module, { dimensions: 9 });
    expect(() => wrongDim.load(good)).toThrow(/saved index has 8 dimensions but this index has 9/);
    const wrongMetric = new HNSWIndex(module, { dimensions: 8, metric: 'l2' });
    expect(() => wrongMetric.load(good)).toThrow(/uses the cosine metric but this index uses l2/);
    // Random bytes, text, an empty buffer, bytes with a trailing byte.
    for (let t = 0; t < 20; t++) expectRefused(Uint8Array.from({ length: 1 + Math.floor(r() * 3000) }, () => Math.floor(r() * 256)), 'FOREIGN');
    expectRefused(new TextEncoder().encode('{"not": "an index"}'), 'FOREIGN');
    expectRefused(new Uint8Array(0), 'EMPTY');
    const longer = new Uint8Array(good.length + 1);
    longer.set(good);
    expectRefused(longer, 'CORRUPT');
    expect(() => target.load('bytes' as unknown as Uint8Array)).toThrow(TypeError);
    expect(module.liveAllocations).toBe(liveBefore);
    // And the good file still loads.
    target.load(good);
    expect(target.size()).toBe(149);
    for (const x of [source, target, wrongDim, wrongMetric]) x.dispose();
  });
});

describe('HNSW index: every metric on every build agrees with float64', () => {
  const dim = 13;
  const data = gaussianMixture(400, dim, 8, 0.7, 31);
  const queries = data.more(12);
  for (const kind of MODULE_KINDS) {
    for (const [metric, traversal] of [['cosine', 'int8'], ['ip', 'int8'], ['l2', 'int8'], ['cosine', 'float32'], ['l2', 'float32']] as const) {
      it(`${kind} build, ${metric}, ${traversal} traversal: scores and distances within 1e-5, exact sets at ef = n`, async () => {
        const module = await loadModule(kind);
        const index = new HNSWIndex(module, { dimensions: dim, metric, M: 6, traversal });
        expect(index.getStats().traversal).toBe(traversal);
        index.batchInsert(data.points.map((vector, key) => ({ key, vector: Array.from(vector) })));
        for (const q of queries) {
          const got = index.search(q, 7, { ef: 400 });
          const want = referenceKnn(metric, q, data.points, 7);
          expect(got.map((x) => x.key)).toEqual(want.map((x) => x.index));
          got.forEach((x, j) => {
            const d = want[j].distance;
            expect(Math.abs(x.distance - d)).toBeLessThan(metric === 'l2' ? 1e-4 * Math.max(1, d) : 1e-5);
            const score = metric === 'l2' ? 1 / (1 + d) : 1 - d;
            expect(Math.abs(x.score - score)).toBeLessThan(1e-4);
          });
        }
        index.dispose();
      });
    }
  }
});

describe('HNSW index: searchBatch, on the worker pool and on one thread', () => {
  afterAll(() => terminateThreadPools());

  it('gives search()\'s results for every query, bit for bit, split across the pool (threads 2) and on one thread', async () => {
    const data = gaussianMixture(3000, 24, 30, 0.4, 5);
    const queries = data.more(37);
    const filter = (key: unknown) => (key as number) % 3 !== 1;
    for (const [load, pooled] of [[{ threads: 2 }, true], [{ module: 'simd' as const }, false]] as const) {
      const index = await createHNSWIndex({ dimensions: 24, M: 8, efConstruction: 64, seed: 3 }, load);
      index.batchInsert(data.points.map((vector, key) => ({ key, vector })));
      for (const options of [{}, { ef: 40 }, { ef: 12, filter }]) {
        const one = queries.map((q) => index.search(q, 9, options));
        recordThreadJobStats(true);
        const many = index.searchBatch(queries, 9, options);
        const jobs = recordThreadJobStats(false);
        expect(many).toEqual(one);
        // On the pool when the module has one (and workers are ready): one job, split in tasks.
        if (pooled && jobs.length > 0) expect(jobs[0].tasks).toBeGreaterThanOrEqual(2);
        if (!pooled) expect(jobs).toEqual([]);
      }
      expect(index.searchBatch([], 3)).toEqual([]);
      expect(index.searchBatch([queries[0]], 50000)[0]).toEqual(index.search(queries[0], 50000));
      expect(() => index.searchBatch(queries[0] as unknown as Float32Array[], 3)).toThrow(TypeError);
      expect(() => index.searchBatch([queries[0], new Float32Array(5)], 3)).toThrow(/queries\[1\] has length 5/);
      expect(() => index.searchBatch(queries, 0)).toThrow(/k/);
      expect(() => index.searchBatch(queries, 3, { ef: 0 })).toThrow(/options\.ef/);
      index.dispose();
      expect(() => index.searchBatch(queries, 3)).toThrow(/disposed/);
    }
  });
});

describe('HNSW index: arguments, stats and the coverage workload', () => {
  let module: QEModule;
  beforeAll(async () => {
    module = await loadModule('simd');
  });

  it('rejects bad options and inputs with a TypeError or RangeError naming the argument', () => {
    expect(() => new HNSWIndex(module, { dimensions: 0 })).toThrow(/dimensions/);
    expect(() => new HNSWIndex(module, { dimensions: 1.5 })).toThrow(/dimensions/);
    expect(() => new HNSWIndex(module, { M: 1 })).toThrow(/M must be between 2 and 256/);
    expect(() => new HNSWIndex(module, { efConstruction: 0 })).toThrow(/efConstruction/);
    expect(() => new HNSWIndex(module, { metric: 'dot' as HNSWMetric })).toThrow(/metric/);
    expect(() => new HNSWIndex(module, { seed: -1 })).toThrow(/seed/);
    expect(() => new HNSWIndex(module, { maxElements: 0 })).toThrow(/maxElements/);
    expect(() => new HNSWIndex(module, { traversal: 'int4' as 'int8' })).toThrow(/traversal must be 'int8' or 'float32'/);
    const index = new HNSWIndex(module, { dimensions: 4, maxElements: 3, metric: 'euclidean' });
    expect(index.metric).toBe('l2');
    expect(() => index.insert('a', new Float32Array(5))).toThrow(/vector has length 5 but the index has 4 dimensions/);
    expect(() => index.insert('a', [1, 2, NaN, 4])).toThrow(/vector\[2\] is NaN/);
    expect(() => index.insert('a', [1, 2, 3, 1e39])).toThrow(RangeError);
    expect(() => index.insert({} as unknown as string, [1, 2, 3, 4])).toThrow(TypeError);
    expect(() => index.insert('a', 'text' as unknown as number[])).toThrow(TypeError);
    expect(() => index.batchInsert([{ key: 'a', vector: [1, 2, 3, 4] }, { key: 'b', vector: [1, 2] }])).toThrow(/items\[1\]\.vector/);
    expect(index.size()).toBe(0);
    index.batchInsert([{ key: 'a', vector: [1, 2, 3, 4] }, { key: 'b', vector: [1, 2, 3, 5] }, { key: 'a', vector: [0, 0, 0, 1] }]);
    expect(index.size()).toBe(2);
    expect(index.search([0, 0, 0, 1], 1)[0]).toMatchObject({ key: 'a', distance: 0, score: 1 });
    index.add(3, new Float32Array([9, 9, 9, 9]));
    expect(() => index.add(4, new Float32Array(4))).toThrow(/maxElements = 3/);
    expect(() => index.search([1, 2, 3, 4], 0)).toThrow(/k/);
    expect(() => index.search([1, 2, 3, 4], 1, { ef: 0 })).toThrow(/options\.ef/);
    expect(() => index.search([1, 2, 3], 1)).toThrow(/query has length 3/);
    expect(() => index.setEfSearch(0)).toThrow(/ef/);
    index.setEfSearch(7);
    expect(index.getStats().efSearch).toBe(7);
    expect(index.search([1, 2, 3, 4], 10)).toHaveLength(3);
    index.clear();
    expect(index.size()).toBe(0);
    expect(index.search([1, 2, 3, 4], 3)).toEqual([]);
    index.dispose();
    expect(() => index.search([1, 2, 3, 4], 1)).toThrow(/disposed/);
    index.dispose();
  });

  it('reports stats that match what it holds', async () => {
    const index = await createHNSWIndex({ dimensions: 32 }, { module: 'simd' });
    const points = gaussianMixture(500, 32, 5, 0.5, 4).points;
    await index.batchInsert(points.map((vector, key) => ({ key, vector })));
    for (let i = 0; i < 20; i++) await index.search(points[i], 5);
    const stats = await index.getStats();
    expect(stats).toMatchObject({ nativeHNSW: true, vectorCount: 500, insertOperations: 500, searchOperations: 20, dimensions: 32, M: 16, efConstruction: 200, efSearch: 100, metric: 'cosine' });
    expect(stats.bytesPerVector).toBeGreaterThan(32 * 4);
    expect(stats.p99SearchLatencyMs).toBeGreaterThanOrEqual(stats.p95SearchLatencyMs);
    expect(stats.maxLevel).toBeGreaterThanOrEqual(0);
    expect(index.dimensions()).toBe(32);
    expect(index.isNativeAvailable()).toBe(true);
    index.dispose();
  });

  it('gives the coverage-analysis workload searchCoverage over its own index', async () => {
    const attention = await createQEFlashAttention('coverage-analysis', undefined, { module: 'simd' });
    const points = gaussianMixture(300, 384, 6, 0.5, 9).points;
    attention.getCoverageIndex().batchInsert(points.map((vector, i) => ({ key: `test/${i}.spec.ts`, vector, metadata: { line: i } })));
    const hits = attention.searchCoverage(points[42], 3);
    expect(hits[0]).toMatchObject({ key: 'test/42.spec.ts', metadata: { line: 42 } });
    expect(hits[0].score).toBeCloseTo(1, 5);
    const want = referenceKnn('cosine', points[42], points, 3);
    expect(hits.map((h) => h.key)).toEqual(want.map((w) => `test/${w.index}.spec.ts`));
    const own = attention.createHNSWIndex();
    expect(own.dimensions()).toBe(384);
    own.dispose();
    attention.dispose();
    expect(() => attention.searchCoverage(points[0], 1)).toThrow(/disposed/);
  });
});
