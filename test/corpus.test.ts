/**
 * The resident corpus behind a C handle (csrc/search/corpus.c, js/corpus.ts)
 * on every build: results equal a float64 cosine reference through growth
 * and removals, and a destroyed, foreign or wild handle is a status code
 * (QE_ERR_HANDLE), never a trap.
 */
import { Corpus } from '../js/corpus';
import { QE_STATUS } from '../js/c-api';
import type { QEModule } from '../js/module';
import { expectThrow, loadModule, MODULE_KINDS } from './helpers';
import { referenceCosine, uniform } from './reference';

describe.each(MODULE_KINDS)('Corpus on the %s build', (kind) => {
  let m: QEModule;
  beforeAll(async () => {
    m = await loadModule(kind);
  });

  function bestRows(rows: Float32Array[], q: Float32Array, k: number): number[] {
    return rows.map((r, i) => ({ i, s: referenceCosine(q, r) })).sort((a, b) => b.s - a.s || a.i - b.i).slice(0, k).map((x) => x.i);
  }

  test('append, grow, remove and search agree with a float64 reference', () => {
    const dim = 13;
    const c = Corpus.create(m, dim);
    const rows: Float32Array[] = [];
    for (let b = 0; b < 5; b++) {
      const batch = Array.from({ length: 1 + b * 23 }, (_, i) => uniform(dim, 100 * b + i + 1));
      c.append(batch, batch.length);
      rows.push(...batch);
    }
    expect(c.size).toBe(rows.length);
    expect(c.capacity).toBe(256); // 235 rows: 64, 128, 256
    for (const which of [4, 0, -1, 30]) {
      const r = which < 0 ? rows.length - 1 : which; // -1: the last row
      c.removeRow(r);
      const last = rows.pop() as Float32Array;
      if (r < rows.length) rows[r] = last;
    }
    expect(c.size).toBe(rows.length);
    const q = uniform(dim * 2, 999);
    const hits = c.search(q, 2, 5);
    for (let i = 0; i < 2; i++) {
      const query = q.subarray(i * dim, (i + 1) * dim);
      expect(Array.from(hits.rows.subarray(i * 5, i * 5 + 5))).toEqual(bestRows(rows, query, 5));
      for (let j = 0; j < 5; j++) expect(hits.scores[i * 5 + j]).toBeCloseTo(referenceCosine(query, rows[hits.rows[i * 5 + j]]), 5);
    }
    c.dispose();
  });

  test('a norm beyond float32 appends nothing, also from a later chunk', () => {
    const dim = 1024; // 4 MB of staging = 1024 rows per chunk
    const c = Corpus.create(m, dim);
    const data = uniform(1500 * dim, 5);
    data.fill(3e38, 1400 * dim, 1401 * dim);
    expectThrow(() => c.append(data, 1500), RangeError, 'norm exceeds the float32 range');
    expect(c.size).toBe(0);
    c.append(data.subarray(0, 10 * dim), 10);
    expect(c.size).toBe(10);
    c.dispose();
  });

  test('use after dispose throws; dispose twice does nothing; leaks nothing', () => {
    const live = m.liveAllocations;
    const c = Corpus.create(m, 4);
    c.append(new Float32Array([1, 2, 3, 4]), 1);
    c.dispose();
    c.dispose();
    expect(c.disposed).toBe(true);
    expectThrow(() => c.search(new Float32Array(4), 1, 1), TypeError, 'disposed');
    expectThrow(() => c.append(new Float32Array(4), 1), TypeError, 'disposed');
    expect(m.liveAllocations).toBe(live);
  });

  test('the C side refuses destroyed, foreign and wild handles with QE_ERR_HANDLE', () => {
    const x = m.exports;
    const handle = m.scope((s) => {
      const out = s.alloc(4);
      expect(x.qe_corpus_create(8, 16, out)).toBe(QE_STATUS.OK);
      return m.i32()[out >>> 2] >>> 0;
    });
    expect(x.qe_corpus_size(handle)).toBe(0);
    expect(x.qe_corpus_destroy(handle)).toBe(QE_STATUS.OK);
    // Destroyed: its header is marked dead before the memory goes back.
    expect(x.qe_corpus_destroy(handle)).toBe(QE_STATUS.ERR_HANDLE);
    expect(x.qe_corpus_size(handle)).toBe(QE_STATUS.ERR_HANDLE);
    // A buffer that is not a corpus, a misaligned pointer, one past the end of memory.
    const buffer = m.alloc(64);
    m.f32().fill(0, buffer >>> 2, (buffer >>> 2) + 16);
    expect(x.qe_corpus_size(buffer)).toBe(QE_STATUS.ERR_HANDLE);
    m.free(buffer);
    expect(x.qe_corpus_size(handle + 4)).toBe(QE_STATUS.ERR_HANDLE);
    expect(x.qe_corpus_size((m.memoryBytes - 16) >>> 0)).toBe(QE_STATUS.ERR_HANDLE);
    expect(x.qe_corpus_size(0xfffffff0 | 0)).toBe(QE_STATUS.ERR_HANDLE);
    expect(x.qe_corpus_size(0)).toBe(QE_STATUS.ERR_NULL);
  });
});
