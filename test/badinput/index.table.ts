/**
 * Bad-input rows for the indexes: the resident similarity index, the code
 * index, and the HNSW index (createHNSWIndex, HNSWIndex, HNSWFilter), with
 * corrupt index files: empty, foreign bytes, wrong magic, wrong version,
 * truncated at many offsets, bit flips at many offsets, another dimension.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHNSWIndex, HNSWFileError, HNSWFilter, HNSWIndex } from '../../js/hnsw';
import type { QEFlashAttention } from '../../js/flash-attention';
import type { QEModule } from '../../js/module';
import type { SimilarityIndex } from '../../js/similarity';
import type { CodeIndex } from '../../js/code-index';
import { referenceCosineRanking, referenceKnn, uniform } from '../reference';
import { afterDispose, floatArrayRows, optionsRows, sizeRows, stringRows, type NoArgs, type Row, type Table } from './harness';

export const DIM = 16;

export const ctx = {} as { fa: QEFlashAttention; module: QEModule; sim: SimilarityIndex; code: CodeIndex; hnsw: HNSWIndex<{ n: number }>; saved: Uint8Array; dir: string };

const corpus = Array.from({ length: 12 }, (_, i) => uniform(DIM, 100 + i));
const query = uniform(DIM, 150);

function topRef(q: Float32Array, rows: Float32Array[], k: number): number[] {
  return referenceCosineRanking(q, rows).slice(0, k).map((r) => r.index);
}

// ------------------------------------------------------------------ similarity index
const simIds = () => [...Array(corpus.length).keys()];
function goodSim(): void {
  const ids = simIds();
  expect(ctx.sim.size).toBe(corpus.length);
  expect(ctx.sim.search(query, 4).map((r) => r.id)).toEqual(topRef(query, corpus, 4).map((i) => ids[i]));
}
function disposedSim(): SimilarityIndex {
  const s = ctx.fa.createSimilarityIndex(DIM);
  s.add(corpus[0]);
  s.dispose();
  return s;
}
const idRows = (call: (x: unknown) => unknown): Row[] => [
  { bad: 'id -1', call: () => call(-1), error: RangeError, arg: 'id' },
  { bad: 'id 1.5', call: () => call(1.5), error: RangeError, arg: 'id' },
  { bad: 'id NaN', call: () => call(NaN), error: RangeError, arg: 'id' },
  { bad: 'id 2^31', call: () => call(2 ** 31), error: RangeError, arg: 'id' },
  { bad: "id '0'", call: () => call('0'), error: TypeError, arg: 'id' },
  { bad: 'id null', call: () => call(null), error: TypeError, arg: 'id' },
  { bad: 'id {}', call: () => call({}), error: TypeError, arg: 'id' },
];

// ------------------------------------------------------------------ code index
const texts: Record<string, string> = {
  add: 'function add(a, b) { return a + b; }',
  parse: 'class Parser { parse(text) { return text.split(","); } }',
  fetch: 'async function fetchUser(id) { const r = await http.get("/users/" + id); return r.json(); }',
};
function goodCode(): void {
  expect(ctx.code.size).toBe(3);
  expect(ctx.code.search('function add(x, y) { return x + y; }', 1)[0].id).toBe('add');
  const e = ctx.code.embed(texts.parse);
  expect(Math.hypot(...e)).toBeCloseTo(1, 5);
}
function disposedCode(): CodeIndex {
  const c = ctx.fa.createCodeIndex({ dim: 64 });
  c.dispose();
  return c;
}

// ------------------------------------------------------------------ HNSW
function goodHnsw(): void {
  expect(ctx.hnsw.size()).toBe(corpus.length);
  const exact = referenceKnn('cosine', query, corpus, 4).map((r) => r.index);
  expect(ctx.hnsw.searchExact(query, 4).map((r) => r.key)).toEqual(exact);
  expect(ctx.hnsw.search(query, 4, { ef: 64 }).map((r) => r.key)).toEqual(exact);
}
async function disposedHnsw(): Promise<HNSWIndex> {
  const h = await createHNSWIndex({ dimensions: DIM }, { threads: 1 });
  h.insert(1, corpus[0]);
  h.dispose();
  return h;
}
const disposedH = (call: (h: HNSWIndex) => unknown) => afterDispose(async () => call(await disposedHnsw()));
const keyRows = (call: (x: unknown) => unknown, arg = 'key'): Row[] => [
  { bad: `${arg} NaN`, call: () => call(NaN), error: TypeError, arg },
  { bad: `${arg} Infinity`, call: () => call(Infinity), error: TypeError, arg },
  { bad: `${arg} null`, call: () => call(null), error: TypeError, arg },
  { bad: `${arg} an object`, call: () => call({}), error: TypeError, arg },
  { bad: `${arg} a symbol`, call: () => call(Symbol('k')), error: TypeError, arg },
];
/** Rows of an HNSW vector argument (a Float32Array or an array of numbers). */
function hnswVectorRows(arg: string, call: (x: unknown) => unknown): Row[] {
  const good = corpus[3];
  return [
    ...floatArrayRows(arg, good, call).filter((r) => !/Float64Array|forged|an object/.test(r.bad)),
    { bad: `${arg} a number[] one short`, call: () => call(Array.from(good).slice(1)), error: RangeError, arg },
    { bad: `${arg} a number[] with a string`, call: () => call(Object.assign(Array.from(good), { 2: '1' })), error: TypeError, arg: `${arg}[2]` },
    { bad: `${arg} a number[] with NaN`, call: () => call(Object.assign(Array.from(good), { 2: NaN })), error: RangeError, arg: `${arg}[2]` },
    { bad: `${arg} a number[] beyond float32`, call: () => call(Object.assign(Array.from(good), { 2: 1e39 })), error: RangeError, arg: `${arg}[2]` },
    {
      bad: `${arg} a Proxy number[] whose length changes`,
      call: () => {
        let reads = 0;
        return call(new Proxy(Array.from(good), { get: (t, key, r) => (key === 'length' ? (reads++ === 0 ? DIM : 1 << 20) : Reflect.get(t, key, r)) }));
      },
      error: 'same-or-named',
      arg,
      expected: () => call(good),
    },
  ];
}

// ------------------------------------------------------------------ corrupt index files
/** Every way the saved bytes can be bad, each a RangeError (HNSWFileError) that names what was given. */
export function corruptHnswRows(load: (bytes: Uint8Array) => unknown, arg: string | RegExp): Row[] {
  const rows: Row[] = [];
  const saved = () => ctx.saved;
  const bad = (what: string, make: () => Uint8Array) => rows.push({ bad: what, call: () => load(make()), error: HNSWFileError, arg });
  bad('empty', () => new Uint8Array(0));
  bad('foreign bytes (a PNG header)', () => new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, ...new Array(64).fill(0)]));
  bad('foreign bytes (JSON)', () => new TextEncoder().encode(JSON.stringify({ keys: [1, 2], vectors: [[1, 2]] })));
  bad('wrong magic', () => { const b = saved().slice(); b[0] ^= 0xff; return b; });
  bad('wrong version', () => { const b = saved().slice(); b[8] = 99; return b; });
  // Truncated at many offsets: in the header, in the graph, in the keys block, one byte short.
  const n = () => saved().length;
  for (const at of [1, 4, 8, 12, 31, 64, 0.25, 0.5, 0.75, -1]) {
    bad(`truncated at ${at < 1 && at > 0 ? `${at * 100}%` : at < 0 ? 'length - 1' : `byte ${at}`}`, () => saved().slice(0, at < 0 ? n() - 1 : at < 1 ? Math.floor(n() * at) : at));
  }
  // One bit flipped at many offsets (the checksum catches each).
  for (const frac of [0.02, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99]) {
    bad(`a bit flipped at ${frac * 100}%`, () => { const b = saved().slice(); b[Math.max(40, Math.floor(b.length * frac))] ^= 0x10; return b; });
  }
  bad('one byte appended', () => { const b = new Uint8Array(n() + 1); b.set(saved()); return b; });
  return rows;
}

export const INDEX_TABLE: Table = {
  // ---------------------------------------------------------------- similarity index
  'SimilarityIndex#add': {
    rows: [
      ...floatArrayRows('vectors', corpus[0], (x) => { const s = ctx.fa.createSimilarityIndex(DIM); try { return s.add(x as Float32Array); } finally { s.dispose(); } }).filter((r) => r.error !== 'same-or-named' && !/empty/.test(r.bad)),
      ...floatArrayRows('vectors[1]', corpus[1], (x) => { const s = ctx.fa.createSimilarityIndex(DIM); try { return s.add([corpus[0], x as Float32Array]); } finally { s.dispose(); } }),
      { bad: 'vectors a flat array not a multiple of dim', call: () => ctx.sim.add(new Float32Array(DIM + 3)), error: RangeError, arg: 'vectors' },
      afterDispose(() => disposedSim().add(corpus[0])),
    ],
    good: goodSim,
  },
  'SimilarityIndex#remove': { rows: [...idRows((x) => ctx.sim.remove(x as number)), afterDispose(() => disposedSim().remove(0))], good: goodSim },
  'SimilarityIndex#has': { rows: [...idRows((x) => ctx.sim.has(x as number)), afterDispose(() => disposedSim().has(0))], good: goodSim },
  'SimilarityIndex#search': {
    rows: [
      ...floatArrayRows('query', query, (x) => ctx.sim.search(x as Float32Array, 4)),
      ...sizeRows('k', (x) => ctx.sim.search(query, x as number), { huge: false }),
      afterDispose(() => disposedSim().search(query, 1)),
    ],
    good: goodSim,
  },
  'SimilarityIndex#searchBatch': {
    rows: [
      ...floatArrayRows('queries[1]', corpus[2], (x) => ctx.sim.searchBatch([query, x as Float32Array], 3)),
      { bad: 'queries null', call: () => ctx.sim.searchBatch(null as never, 3), error: TypeError, arg: 'queries' },
      { bad: 'queries flat, not a multiple of dim', call: () => ctx.sim.searchBatch(new Float32Array(DIM + 1), 3), error: RangeError, arg: 'queries' },
      ...sizeRows('k', (x) => ctx.sim.searchBatch([query], x as number), { huge: false }),
      afterDispose(() => disposedSim().searchBatch([query], 1)),
    ],
    good: () => {
      goodSim();
      expect(ctx.sim.searchBatch([query, corpus[5]], 3).map((r) => r.map((x) => x.id))).toEqual([topRef(query, corpus, 3), topRef(corpus[5], corpus, 3)]);
    },
  },

  // ---------------------------------------------------------------- code index
  'CodeIndex#add': {
    rows: [
      ...stringRows('id', (x) => ctx.code.add(x as string, 'x')),
      ...stringRows('text', (x) => ctx.code.add('new-id', x as string)),
      { bad: 'id already held', call: () => ctx.code.add('add', 'function x() {}'), error: RangeError, arg: 'id' },
      { bad: 'language unknown', call: () => ctx.code.add('new-id', 'x', 'cobol' as never), error: RangeError, arg: 'language' },
      afterDispose(() => disposedCode().add('a', 'x')),
    ],
    good: goodCode,
  },
  'CodeIndex#search': {
    rows: [...stringRows('text', (x) => ctx.code.search(x as string, 2)), ...sizeRows('k', (x) => ctx.code.search('x', x as number), { huge: false }), afterDispose(() => disposedCode().search('x', 1))],
    good: goodCode,
  },
  'CodeIndex#pairs': {
    rows: [
      { bad: 'threshold a string', call: () => ctx.code.pairs('0.5' as never), error: TypeError, arg: 'threshold' },
      { bad: 'threshold NaN', call: () => ctx.code.pairs(NaN), error: RangeError, arg: 'threshold' },
      { bad: 'threshold 2', call: () => ctx.code.pairs(2), error: RangeError, arg: 'threshold' },
      ...optionsRows('options', (x) => ctx.code.pairs(0.5, x as never), true),
      { bad: 'options.minDistinct -1', call: () => ctx.code.pairs(0.5, { minDistinct: -1 }), error: RangeError, arg: 'options.minDistinct' },
      ...sizeRows('options.neighbours', (x) => ctx.code.pairs(0.5, { neighbours: x as number })),
      { bad: 'options.onProgress a number', call: () => ctx.code.pairs(0.5, { onProgress: 3 } as never), error: TypeError, arg: 'options.onProgress' },
      afterDispose(() => disposedCode().pairs(0.5)),
    ],
    good: () => {
      goodCode();
      const pairs = ctx.code.pairs(-0.99);
      expect(pairs).toHaveLength(3);
    },
  },
  'CodeIndex#embed': { rows: [...stringRows('text', (x) => ctx.code.embed(x as string)), afterDispose(() => disposedCode().embed('x'))], good: goodCode },
  'CodeIndex#weigh': { rows: [...stringRows('text', (x) => ctx.code.weigh(x as string)), afterDispose(() => disposedCode().weigh('x'))], good: goodCode },
  'CodeIndex#dispose': { rows: [afterDispose(() => { const c = disposedCode(); c.dispose(); return c.size; })], good: goodCode },

  // ---------------------------------------------------------------- HNSW
  createHNSWIndex: {
    rows: [
      ...optionsRows('options', (x) => createHNSWIndex(x as never, { threads: 1 }), true),
      ...sizeRows('options.dimensions', (x) => createHNSWIndex({ dimensions: x as number }, { threads: 1 })),
      ...sizeRows('options.M', (x) => createHNSWIndex({ M: x as number }, { threads: 1 })),
      ...sizeRows('options.efConstruction', (x) => createHNSWIndex({ efConstruction: x as number }, { threads: 1 })),
      ...sizeRows('options.efSearch', (x) => createHNSWIndex({ efSearch: x as number }, { threads: 1 })),
      ...sizeRows('options.maxElements', (x) => createHNSWIndex({ maxElements: x as number }, { threads: 1 })),
      { bad: 'options.metric unknown', call: () => createHNSWIndex({ metric: 'hamming' } as never, { threads: 1 }), error: RangeError, arg: 'options.metric' },
      { bad: 'options.seed -1', call: () => createHNSWIndex({ seed: -1 }, { threads: 1 }), error: RangeError, arg: 'options.seed' },
      { bad: 'options.traversal unknown', call: () => createHNSWIndex({ traversal: 'int4' } as never, { threads: 1 }), error: RangeError, arg: 'options.traversal' },
      ...optionsRows('loadOptions', (x) => createHNSWIndex({}, x as never)),
    ],
    good: goodHnsw,
  },
  'new HNSWIndex': {
    rows: [
      { bad: 'module not a module', call: () => new HNSWIndex({} as never, { dimensions: DIM }), error: TypeError, arg: 'module' },
      { bad: 'module null', call: () => new HNSWIndex(null as never, { dimensions: DIM }), error: TypeError, arg: 'module' },
      { bad: 'options.dimensions 0', call: () => new HNSWIndex(ctx.module, { dimensions: 0 }), error: RangeError, arg: 'options.dimensions' },
    ],
    good: goodHnsw,
  },
  'HNSWIndex#insert': {
    rows: [...keyRows((x) => ctx.hnsw.insert(x as number, corpus[0])), ...hnswVectorRows('vector', (x) => { ctx.hnsw.insert(3, x as Float32Array, { n: 3 }); return ctx.hnsw.searchExact(corpus[3], 1)[0].key; }), disposedH((h) => h.insert(1, corpus[0]))],
    good: goodHnsw,
  },
  'HNSWIndex#add': {
    rows: [
      { bad: "id '1'", call: () => ctx.hnsw.add('1' as never, corpus[0]), error: TypeError, arg: 'id' },
      { bad: 'id NaN', call: () => ctx.hnsw.add(NaN, corpus[0]), error: TypeError, arg: 'id' },
      ...hnswVectorRows('vector', (x) => { ctx.hnsw.add(3, x as Float32Array, { n: 3 }); return ctx.hnsw.searchExact(corpus[3], 1)[0].key; }).slice(0, 6),
      disposedH((h) => h.add(1, corpus[0])),
    ],
    good: goodHnsw,
  },
  'HNSWIndex#batchInsert': {
    rows: [
      { bad: 'items null', call: () => ctx.hnsw.batchInsert(null as never), error: TypeError, arg: 'items' },
      { bad: 'items a Float32Array', call: () => ctx.hnsw.batchInsert(corpus[0] as never), error: TypeError, arg: 'items' },
      { bad: 'items[1] a number', call: () => ctx.hnsw.batchInsert([{ key: 100, vector: corpus[0] }, 5] as never), error: TypeError, arg: 'items[1]' },
      { bad: 'items[0].key NaN', call: () => ctx.hnsw.batchInsert([{ key: NaN, vector: corpus[0] }]), error: TypeError, arg: 'items[0].key' },
      { bad: 'items[1].vector short', call: () => ctx.hnsw.batchInsert([{ key: 100, vector: corpus[0] }, { key: 101, vector: corpus[1].slice(1) }]), error: RangeError, arg: 'items[1].vector' },
      { bad: 'items[0].vector with a lying length', call: () => ctx.hnsw.batchInsert([{ key: 100, vector: Object.defineProperty(uniform(DIM * 64, 9), 'length', { value: DIM }) }]), error: 'same-or-named', arg: 'items[0].vector', expected: () => { throw new Error('accepted'); } },
      { bad: 'items[0].vector detached', call: () => { const v = corpus[0].slice(); structuredClone(v.buffer, { transfer: [v.buffer] }); return ctx.hnsw.batchInsert([{ key: 100, vector: v }]); }, error: TypeError, arg: 'items[0].vector' },
      { bad: 'items[0].vector[5] NaN', call: () => ctx.hnsw.batchInsert([{ key: 100, vector: Object.assign(corpus[0].slice(), { 5: NaN }) }]), error: RangeError, arg: 'items[0].vector[5]' },
      disposedH((h) => h.batchInsert([{ key: 1, vector: corpus[0] }])),
    ],
    good: goodHnsw,
  },
  'HNSWIndex#delete': { rows: [...keyRows((x) => ctx.hnsw.delete(x as number)), disposedH((h) => h.delete(1))], good: goodHnsw },
  'HNSWIndex#remove': { rows: [...keyRows((x) => ctx.hnsw.remove(x as number), 'id'), disposedH((h) => h.remove(1))], good: goodHnsw },
  'HNSWIndex#has': { rows: [...keyRows((x) => ctx.hnsw.has(x as number)), disposedH((h) => h.has(1))], good: goodHnsw },
  'HNSWIndex#clear': { rows: [disposedH((h) => h.clear())], good: goodHnsw },
  'HNSWIndex#size': { rows: [disposedH((h) => h.size())], good: goodHnsw },
  'HNSWIndex#dimensions': { rows: [disposedH((h) => h.dimensions())], good: goodHnsw },
  'HNSWIndex#getEfSearch': { rows: [disposedH((h) => h.getEfSearch())], good: goodHnsw },
  'HNSWIndex#recall': { rows: [disposedH((h) => h.recall())], good: () => expect(ctx.hnsw.recall()).toBe(1) },
  'HNSWIndex#getStats': { rows: [disposedH((h) => h.getStats())], good: () => expect(ctx.hnsw.getStats().vectorCount).toBe(corpus.length) },
  'HNSWIndex#initialize': { rows: [disposedH((h) => h.initialize())], good: goodHnsw },
  'HNSWIndex#isNativeAvailable': { rows: [disposedH((h) => h.isNativeAvailable())], good: () => expect(ctx.hnsw.isNativeAvailable()).toBe(true) },
  'HNSWIndex#save': {
    rows: [disposedH((h) => h.save())],
    good: async () => {
      // The bytes, loaded by a fresh index, give the same exact answers.
      const other = await createHNSWIndex({ dimensions: DIM }, { threads: 1 });
      try {
        other.load(ctx.hnsw.save());
        expect(other.searchExact(query, 4).map((r) => r.key)).toEqual(ctx.hnsw.searchExact(query, 4).map((r) => r.key));
        goodHnsw();
      } finally {
        other.dispose();
      }
    },
  },
  'HNSWIndex#dispose': { rows: [disposedH((h) => { h.dispose(); return h.searchExact(corpus[0], 1); })], good: goodHnsw },
  'HNSWIndex#setTraversal': {
    rows: [
      { bad: 'traversal unknown', call: () => ctx.hnsw.setTraversal('int4' as never), error: RangeError, arg: 'traversal' },
      { bad: 'traversal a number', call: () => ctx.hnsw.setTraversal(8 as never), error: RangeError, arg: 'traversal' },
      disposedH((h) => h.setTraversal('float32')),
    ],
    good: goodHnsw,
  },
  'HNSWIndex#setEfSearch': { rows: [...sizeRows('ef', (x) => ctx.hnsw.setEfSearch(x as number)), disposedH((h) => h.setEfSearch(10))], good: () => { ctx.hnsw.setEfSearch(100); goodHnsw(); } },
  'HNSWIndex#createFilter': {
    rows: [
      { bad: 'keys a number', call: () => ctx.hnsw.createFilter(3 as never), error: TypeError, arg: 'keys' },
      { bad: 'keys null', call: () => ctx.hnsw.createFilter(null as never), error: TypeError, arg: 'keys' },
      { bad: 'keys holding NaN', call: () => ctx.hnsw.createFilter([1, NaN]), error: TypeError, arg: 'keys[1]' },
      disposedH((h) => h.createFilter([1])),
    ],
    good: () => {
      const f = ctx.hnsw.createFilter([1, 2, 3, 999]);
      expect(f.size).toBe(3);
      expect(ctx.hnsw.searchExact(query, 5, { filter: f }).map((r) => r.key).sort()).toEqual([1, 2, 3]);
    },
  },
  'HNSWIndex#search': {
    rows: [
      ...hnswVectorRows('query', (x) => ctx.hnsw.searchExact(x as Float32Array, 4)).map((r) => ({ ...r, call: () => r.call() })),
      ...sizeRows('k', (x) => ctx.hnsw.search(query, x as number), { huge: false }),
      ...optionsRows('options', (x) => ctx.hnsw.search(query, 3, x as never), true),
      ...sizeRows('options.ef', (x) => ctx.hnsw.search(query, 3, { ef: x as number })),
      { bad: 'options.filter a number', call: () => ctx.hnsw.search(query, 3, { filter: 3 } as never), error: TypeError, arg: 'options.filter' },
      { bad: 'options.filter of another index', call: async () => { const other = await createHNSWIndex({ dimensions: DIM }, { threads: 1 }); try { return ctx.hnsw.search(query, 3, { filter: other.createFilter([1]) }); } finally { other.dispose(); } }, error: RangeError, arg: 'options.filter' },
      disposedH((h) => h.search(query, 1)),
    ],
    good: goodHnsw,
  },
  'HNSWIndex#searchBatch': {
    rows: [
      ...hnswVectorRows('queries[1]', (x) => ctx.hnsw.searchBatch([query, x as Float32Array], 4)),
      { bad: 'queries null', call: () => ctx.hnsw.searchBatch(null as never, 3), error: TypeError, arg: 'queries' },
      { bad: 'queries a number', call: () => ctx.hnsw.searchBatch(3 as never, 3), error: TypeError, arg: 'queries' },
      { bad: 'queries a flat Float32Array', call: () => ctx.hnsw.searchBatch(query as never, 3), error: TypeError, arg: 'queries' },
      { bad: 'queries holding null', call: () => ctx.hnsw.searchBatch([query, null] as never, 3), error: TypeError, arg: 'queries[1]' },
      ...sizeRows('k', (x) => ctx.hnsw.searchBatch([query], x as number)),
      ...optionsRows('options', (x) => ctx.hnsw.searchBatch([query], 3, x as never), true),
      ...sizeRows('options.ef', (x) => ctx.hnsw.searchBatch([query], 3, { ef: x as number })),
      { bad: 'options.filter a number', call: () => ctx.hnsw.searchBatch([query], 3, { filter: 3 } as never), error: TypeError, arg: 'options.filter' },
      disposedH((h) => h.searchBatch([query], 1)),
    ],
    good: () => {
      goodHnsw();
      const qs = [query, corpus[5], Array.from(corpus[7])];
      const got = ctx.hnsw.searchBatch(qs, 4, { ef: 64 });
      expect(got).toEqual(qs.map((q) => ctx.hnsw.search(q, 4, { ef: 64 })));
      expect(got[0].map((r) => r.key)).toEqual(referenceKnn('cosine', query, corpus, 4).map((r) => r.index));
      expect(ctx.hnsw.searchBatch([], 3)).toEqual([]);
      expect(ctx.hnsw.searchBatch([query], 1000).length && ctx.hnsw.searchBatch([query], 1000)[0].length).toBe(corpus.length);
    },
  },
  'HNSWIndex#searchExact': {
    rows: [
      { bad: 'query short', call: () => ctx.hnsw.searchExact(query.slice(1), 3), error: RangeError, arg: 'query' },
      ...sizeRows('k', (x) => ctx.hnsw.searchExact(query, x as number), { huge: false }),
      ...optionsRows('options', (x) => ctx.hnsw.searchExact(query, 3, x as never), true),
      disposedH((h) => h.searchExact(query, 1)),
    ],
    good: goodHnsw,
  },
  'HNSWIndex#load': {
    rows: [
      { bad: 'bytes a string', call: () => ctx.hnsw.load('QEHNSW' as never), error: TypeError, arg: 'bytes' },
      { bad: 'bytes a Float32Array', call: () => ctx.hnsw.load(new Float32Array(4) as never), error: TypeError, arg: 'bytes' },
      { bad: 'bytes detached', call: () => { const b = ctx.saved.slice(); structuredClone(b.buffer, { transfer: [b.buffer] }); return ctx.hnsw.load(b); }, error: TypeError, arg: 'bytes' },
      { bad: 'bytes with a lying length', call: () => ctx.hnsw.load(Object.defineProperty(ctx.saved.slice(), 'length', { value: 8 })), error: 'same-or-named', arg: 'bytes', expected: () => undefined },
      { bad: 'bytes of another dimension', call: async () => { const o = await createHNSWIndex({ dimensions: DIM + 1 }, { threads: 1 }); o.insert(1, uniform(DIM + 1, 1)); const b = o.save(); o.dispose(); return ctx.hnsw.load(b); }, error: HNSWFileError, arg: 'bytes' },
      ...corruptHnswRows((b) => ctx.hnsw.load(b), 'bytes'),
      disposedH((h) => h.load(ctx.saved)),
    ],
    good: goodHnsw,
  },
  'HNSWIndex#saveTo': {
    rows: [
      ...stringRows('path', (x) => ctx.hnsw.saveTo(x as string)),
      { bad: 'path empty', call: () => ctx.hnsw.saveTo(''), error: TypeError, arg: 'path' },
      { bad: 'path in a folder that does not exist (no file or temp file left)', call: () => ctx.hnsw.saveTo(join(ctx.dir, 'missing', 'x.hnsw')), error: Error, arg: /ENOENT|missing/ },
      disposedH((h) => h.saveTo(join(ctx.dir, 'disposed.hnsw'))),
    ],
    good: async () => {
      const file = join(ctx.dir, 'good.hnsw');
      await ctx.hnsw.saveTo(file);
      expect(new Uint8Array(readFileSync(file))).toEqual(ctx.saved);
      // No temporary file is left beside it, and none from the failed rows.
      expect(readdirSync(ctx.dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
      goodHnsw();
    },
  },
  'HNSWIndex#loadFrom': {
    rows: [
      ...stringRows('path', (x) => ctx.hnsw.loadFrom(x as string)),
      { bad: 'path empty', call: () => ctx.hnsw.loadFrom(''), error: TypeError, arg: 'path' },
      { bad: 'path that does not exist', call: () => ctx.hnsw.loadFrom(join(ctx.dir, 'nope.hnsw')), error: Error, arg: /nope\.hnsw/ },
      ...corruptHnswRows((b) => { const file = join(ctx.dir, 'corrupt.hnsw'); writeFileSync(file, b); return ctx.hnsw.loadFrom(file); }, /corrupt\.hnsw/),
      disposedH((h) => h.loadFrom(join(ctx.dir, 'good.hnsw'))),
    ],
    good: async () => {
      const file = join(ctx.dir, 'roundtrip.hnsw');
      writeFileSync(file, ctx.saved);
      await ctx.hnsw.loadFrom(file);
      goodHnsw();
    },
  },
  'new HNSWFileError': {
    rows: [
      { bad: 'code unknown', call: () => new HNSWFileError('NOPE' as never, 'x'), error: RangeError, arg: 'code' },
      { bad: 'message a number', call: () => new HNSWFileError('EMPTY', 3 as never), error: TypeError, arg: 'message' },
    ],
    good: () => expect(new HNSWFileError('EMPTY', 'empty')).toMatchObject({ code: 'EMPTY', message: 'empty', name: 'HNSWFileError' }),
  },
};

export const INDEX_NO_ARGS: NoArgs = {
  'SimilarityIndex#dispose': 'takes no arguments; a second dispose is a no-op (calls after it are rows of each method)',
};

/** Fills the context (called by the test file's beforeAll). */
export async function setUpIndexes(fa: QEFlashAttention, module: QEModule): Promise<void> {
  ctx.fa = fa;
  ctx.module = module;
  ctx.sim = fa.createSimilarityIndex(DIM);
  ctx.sim.add(corpus);
  ctx.code = fa.createCodeIndex({ dim: 64 });
  for (const [id, text] of Object.entries(texts)) ctx.code.add(id, text);
  ctx.hnsw = await createHNSWIndex<{ n: number }>({ dimensions: DIM, efSearch: 64 }, { threads: 1 });
  corpus.forEach((v, i) => ctx.hnsw.insert(i, v, { n: i }));
  ctx.saved = ctx.hnsw.save();
  ctx.dir = mkdtempSync(join(tmpdir(), 'qe-badinput-'));
}

export function tearDownIndexes(): void {
  ctx.sim.dispose();
  ctx.code.dispose();
  ctx.hnsw.dispose();
  rmSync(ctx.dir, { recursive: true, force: true });
}

void HNSWFilter;
