/**
 * Hostile array arguments (issue 16): a Float32Array whose `length` lies
 * (an own property, or a subclass's getter), a Proxy posing as one, a
 * Float32Array from another realm (a `vm` context), a detached buffer, a
 * SharedArrayBuffer that another thread writes during the call, lists whose
 * index getters or Proxy traps change their answers, and a getter of one
 * argument that detaches another. Each either gives the same answer as the
 * plain array or is a TypeError/RangeError naming the argument; module
 * memory is left intact (no live allocation left behind), and a good call
 * on the same instance, and on a second one, still gives the right answer.
 */
import { runInNewContext } from 'node:vm';
import { Worker } from 'node:worker_threads';
import { createQEFlashAttention, type QEFlashAttention } from '../js/flash-attention';
import { getWASMSIMDBackend, type WASMSIMDBackend } from '../js/backend';
import { loadQEModule, type QEModule } from '../js/module';
import { terminateThreadPools } from '../js/threads';
import type { SimilarityIndex } from '../js/similarity';
import { attentionShape, maxAbsDiff, referenceAttention, referenceSoftmax, uniform } from './reference';

const DIM = 16;
const HEADS = 2;

let fa: QEFlashAttention;
let other: QEFlashAttention;
let backend: WASMSIMDBackend;
let qe: QEModule;
let index: SimilarityIndex;

beforeAll(async () => {
  fa = await createQEFlashAttention('test-similarity', { dim: DIM, blocks: { headsPerBlock: HEADS } }, { threads: 2 });
  other = await createQEFlashAttention('test-similarity', { dim: DIM, blocks: { headsPerBlock: HEADS } }, { threads: 2 });
  backend = await getWASMSIMDBackend();
  qe = await loadQEModule({ threads: 2 });
  index = fa.createSimilarityIndex(DIM);
  index.add(Array.from({ length: 20 }, (_, i) => uniform(DIM, 500 + i)));
});

afterAll(async () => {
  index.dispose();
  fa.dispose();
  other.dispose();
  await terminateThreadPools();
});

// ---------------------------------------------------------------- hostile forms of a Float32Array

/** `real` with an own `length` property saying `claimed`. */
function lyingLength(real: Float32Array, claimed: number): Float32Array {
  const a = real.slice();
  Object.defineProperty(a, 'length', { value: claimed });
  return a;
}

class ShortLiar extends Float32Array {
  override get length(): number {
    return 4;
  }
}

const HOSTILE: Record<string, (a: Float32Array) => unknown> = {
  'an own length of 4 over the data': (a) => lyingLength(a, 4),
  'an own length 64x the data': (a) => lyingLength(a, a.length * 64),
  "a subclass whose length getter says 4": (a) => ShortLiar.from(a),
  'a Proxy of it': (a) => new Proxy(a.slice(), {}),
  'a Proxy whose traps throw': (a) => new Proxy(a.slice(), { get: () => { throw new Error('trap'); }, getPrototypeOf: () => Float32Array.prototype }),
  'an object with its prototype': (a) => Object.setPrototypeOf({ length: a.length, 0: a[0] }, Float32Array.prototype),
  'a Float32Array of another realm (vm context)': (a) => runInNewContext('new Float32Array(src)', { src: Array.from(a) }),
  'a detached one': (a) => {
    const c = a.slice();
    structuredClone(c.buffer, { transfer: [c.buffer] });
    return c;
  },
  'one on a SharedArrayBuffer': (a) => {
    const v = new Float32Array(new SharedArrayBuffer(a.byteLength));
    v.set(a);
    return v;
  },
  'a view at an offset into a larger buffer': (a) => {
    const big = new Float32Array(a.length + 7).fill(Number.NaN);
    big.set(a, 3);
    return big.subarray(3, 3 + a.length);
  },
};

/** The hostile forms that carry the same data and must give the same answer. */
const SAME_DATA = new Set([
  'a Float32Array of another realm (vm context)',
  'one on a SharedArrayBuffer',
  'a view at an offset into a larger buffer',
]);

interface Entry {
  /** The argument's name as the user wrote it. */
  arg: string;
  /** The call with `x` in that argument's place. */
  call: (x: unknown) => unknown;
  /** The plain argument. */
  good: Float32Array;
}

const Q = uniform(3 * DIM, 1);
const K = uniform(5 * DIM, 2);
const V = uniform(5 * DIM, 3);
const shape = attentionShape({ seqLen: 3, kvSeqLen: 5, dim: DIM, heads: HEADS });
const attentionExpected = referenceAttention(Q, K, V, shape);
const attend = (q: unknown, k: unknown, v: unknown) =>
  fa.computeFlashAttentionSync(q as Float32Array, k as Float32Array, v as Float32Array, 3, DIM, { kvSeqLen: 5 });
const corpus = Array.from({ length: 6 }, (_, i) => uniform(DIM, 40 + i));
const query = uniform(DIM, 50);
const tokens = uniform(4 * DIM, 60);
const rowx = uniform(11, 70);
const ma = uniform(3 * 4, 71);
const mb = uniform(4 * 2, 72);

const ENTRIES: Entry[] = [
  { arg: 'Q', call: (x) => attend(x, K, V), good: Q },
  { arg: 'K', call: (x) => attend(Q, x, V), good: K },
  { arg: 'V', call: (x) => attend(Q, K, x), good: V },
  { arg: 'testEmbedding', call: (x) => fa.computeTestSimilaritySync(x as Float32Array, corpus, 3), good: query },
  { arg: 'corpusEmbeddings[2]', call: (x) => fa.computeTestSimilaritySync(query, [corpus[0], corpus[1], x as Float32Array], 3), good: corpus[2] },
  { arg: 'defectEmbedding', call: (x) => fa.matchDefectPatternSync(x as Float32Array, corpus), good: query },
  { arg: 'patternLibrary[1].embedding', call: (x) => fa.matchDefectPatternSync(query, [{ embedding: corpus[0] }, { embedding: x as Float32Array }]), good: corpus[1] },
  { arg: 'codeTokens', call: (x) => fa.generateCodeEmbeddingSync(x as Float32Array), good: tokens },
  { arg: 'query', call: (x) => index.search(x as Float32Array, 4), good: query },
  { arg: 'queries[1]', call: (x) => index.searchBatch([query, x as Float32Array], 2), good: corpus[3] },
  { arg: 'x', call: (x) => backend.softmaxSIMD(x as Float32Array), good: rowx },
  { arg: 'a', call: (x) => backend.matmulSIMD(x as Float32Array, mb, 3, 2, 4), good: ma },
  { arg: 'gamma', call: (x) => backend.layerNormSIMD(rowx, x as Float32Array, new Float32Array(11)), good: uniform(11, 73) },
];

/** The answer for a plain argument, then checks: same answer, or a clear error naming the argument. */
describe.each(ENTRIES.map((e) => [e.arg, e] as const))('%s', (_name, entry) => {
  let expected: unknown;
  beforeAll(() => {
    expected = entry.call(entry.good);
  });

  it.each(Object.keys(HOSTILE))('%s: the same answer or a clear error, then the module still works', (form) => {
    const live = qe.liveAllocations;
    let result: unknown;
    let error: unknown;
    try {
      result = entry.call(HOSTILE[form](entry.good));
    } catch (e) {
      error = e;
    }
    if (SAME_DATA.has(form)) {
      expect(error).toBeUndefined();
      expect(result).toEqual(expected);
    } else if (error === undefined) {
      // Handled rather than refused: then it must be the right answer.
      expect(result).toEqual(expected);
    } else {
      expect([TypeError, RangeError]).toContain((error as Error).constructor);
      // The argument as the user wrote it (a list entry by its index).
      expect((error as Error).message).toContain(entry.arg);
    }
    expect(qe.liveAllocations).toBe(live);
    // A good call, on this instance and on another, still gives the right answer.
    expect(entry.call(entry.good)).toEqual(expected);
    expect(maxAbsDiff(attend(Q, K, V), attentionExpected)).toBeLessThanOrEqual(1e-5);
    expect(maxAbsDiff(other.computeFlashAttentionSync(Q, K, V, 3, DIM, { kvSeqLen: 5 }), attentionExpected)).toBeLessThanOrEqual(1e-5);
  });
});

describe('the cases of the issue, by their numbers', () => {
  it('an own length of 4 over 65,536 floats is measured by its real length, not copied past its allocation', () => {
    const big = uniform(65536, 9);
    Object.defineProperty(big, 'length', { value: 4 });
    expect(() => fa.computeFlashAttentionSync(big, big, big, 1, 4, { heads: 1 })).toThrow(/^Q has length 65536 but seqLen x dim = 1 x 4 = 4$/);
    // Taken by its real length: 16,384 rows of 4.
    const rows = backend.softmaxSIMD(big, 4);
    expect(rows).toHaveLength(65536);
    expect(maxAbsDiff(rows.subarray(65532), referenceSoftmax(big.subarray(65532), 4))).toBeLessThan(1e-6);
    expect(maxAbsDiff(attend(Q, K, V), attentionExpected)).toBeLessThanOrEqual(1e-5);
  });

  it('a length larger than the data never computes on stale memory', () => {
    const first = attend(Q, K, V);
    const small = Q.slice(0, 16);
    Object.defineProperty(small, 'length', { value: 3 * DIM });
    expect(() => attend(small, K, V)).toThrow(/^Q has length 16 but seqLen x dim = 3 x 16 = 48$/);
    expect(attend(Q, K, V)).toEqual(first);
  });

  it('a Float32Array of another realm is accepted everywhere (not "must be a Float32Array, got a Float32Array")', () => {
    const foreign = (a: Float32Array) => runInNewContext('new Float32Array(src)', { src: Array.from(a) }) as Float32Array;
    expect(foreign(Q) instanceof Float32Array).toBe(false);
    expect(attend(foreign(Q), foreign(K), foreign(V))).toEqual(attend(Q, K, V));
    const ids = index.add(foreign(uniform(DIM, 77)));
    expect(index.has(ids[0])).toBe(true);
    expect(index.search(foreign(uniform(DIM, 77)), 1)[0].id).toBe(ids[0]);
    expect(index.remove(ids[0])).toBe(true);
  });

  it('a getter of one argument that detaches another is caught before the copy', () => {
    const k = K.slice();
    const options = {
      kvSeqLen: 5,
      get causal() {
        structuredClone(k.buffer, { transfer: [k.buffer] });
        return false;
      },
    };
    expect(() => fa.computeFlashAttentionSync(Q, k, V, 3, DIM, options)).toThrow(/^K has length 0 but kvSeqLen x dim = 5 x 16 = 80$/);
    expect(maxAbsDiff(attend(Q, K, V), attentionExpected)).toBeLessThanOrEqual(1e-5);
  });

  it('a list whose index getter changes between reads is read once', () => {
    let reads = 0;
    const list: Float32Array[] = [];
    Object.defineProperty(list, 0, { enumerable: true, get: () => (reads++ === 0 ? corpus[0] : uniform(DIM * 1000, 1)) });
    list.length = 1;
    const before = index.size;
    const ids = index.add(list);
    expect(reads).toBe(1);
    expect(index.size).toBe(before + 1);
    expect(index.search(corpus[0], 1)[0]).toEqual({ id: ids[0], similarity: expect.closeTo(1, 5) });
    index.remove(ids[0]);
  });

  it('a Proxy list whose length changes between reads is read once', () => {
    let lengthReads = 0;
    const proxy = new Proxy([corpus[0], corpus[1]], {
      get(target, key, receiver) {
        if (key === 'length') return lengthReads++ === 0 ? 2 : 1e9;
        return Reflect.get(target, key, receiver);
      },
    });
    const top = fa.computeTestSimilaritySync(query, proxy, 5);
    expect(top).toHaveLength(2);
    expect(lengthReads).toBe(1);
  });

  it('a SharedArrayBuffer written with NaN by another thread during calls: a RangeError naming x, or a right answer; never NaN out', async () => {
    const n = 64;
    const sab = new SharedArrayBuffer(n * 4);
    const x = new Float32Array(sab);
    x.set(uniform(n, 5));
    const stop = new Int32Array(new SharedArrayBuffer(4));
    const writer = new Worker(
      `const { workerData } = require('node:worker_threads');
       const x = new Float32Array(workerData.sab); const stop = new Int32Array(workerData.stop);
       for (let i = 0; Atomics.load(stop, 0) === 0; i++) { x[i % x.length] = (i & 1) ? NaN : 0.25; }`,
      { eval: true, workerData: { sab, stop: stop.buffer } },
    );
    await new Promise((resolve) => setTimeout(resolve, 50));
    let refused = 0;
    let answered = 0;
    for (let call = 0; call < 3000; call++) {
      try {
        const out = backend.softmaxSIMD(x);
        answered++;
        let sum = 0;
        for (const y of out) {
          expect(Number.isFinite(y)).toBe(true);
          sum += y;
        }
        expect(Math.abs(sum - 1)).toBeLessThan(1e-5);
      } catch (error) {
        refused++;
        expect(error).toBeInstanceOf(RangeError);
        expect((error as Error).message).toMatch(/^x\[\d+\] is NaN; every element must be finite$/);
      }
    }
    Atomics.store(stop, 0, 1);
    await writer.terminate();
    expect(refused + answered).toBe(3000);
    // A plain call afterwards is exact.
    const plain = uniform(n, 6);
    expect(maxAbsDiff(backend.softmaxSIMD(plain), referenceSoftmax(plain, n))).toBeLessThan(1e-6);
  });
});
