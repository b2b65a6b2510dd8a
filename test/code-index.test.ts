/**
 * Corpus-aware weighting: the C entries against a float64
 * reference (test/reference.ts), the code and failure features, the stack
 * trace tokenizer, createCodeIndex, and text-based defect matching.
 */
import type { ModuleKind } from '../types';
import type { QEModule } from '../js/module';
import { createCodeIndex, PRIOR_DOCUMENTS, type CodeIndex } from '../js/code-index';
import { codeFeatures, failureFeatures, hashFeature } from '../js/text-features';
import { tokenizeTrace } from '../js/trace-tokenizer';
import { createQEFlashAttention } from '../js/flash-attention';
import { expectThrow, loadModule, MODULE_KINDS } from './helpers';
import { referenceBm25Idf, referenceCosine, referenceTfidfVector, rng } from './reference';

const modules = new Map<ModuleKind, QEModule>();
beforeAll(async () => {
  for (const kind of MODULE_KINDS) modules.set(kind, await loadModule(kind));
});
const moduleOf = (kind: ModuleKind): QEModule => modules.get(kind) as QEModule;

function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

/** The documented column and sign of a feature (csrc/embed/text_weight.c). */
function column(dim: number) {
  return (hash: number) => {
    const m = mix32((hash ^ 0x3c6ef372) >>> 0);
    return { column: m % dim, sign: (mix32((m ^ 0x5bd1e995) >>> 0) & 1) !== 0 ? -1 : 1 };
  };
}

/** Calls qe_text_tfidf_embed with JS arrays; returns [status, out]. */
function tfidfEmbed(m: QEModule, docs: { hash: number; count: number; weight: number }[][], df: Int32Array, corpusDocs: number, k1: number, dim: number): [number, Float32Array] {
  const offsets = new Int32Array(docs.length + 1);
  const flat = docs.flat();
  docs.forEach((d, i) => (offsets[i + 1] = offsets[i] + d.length));
  return m.scope((s) => {
    const out = s.allocFloats(Math.max(1, docs.length * dim));
    const status = m.exports.qe_text_tfidf_embed(
      s.copyInInt32(offsets),
      s.copyInInt32(Int32Array.from(flat, (f) => f.hash | 0)),
      s.copyIn(Float32Array.from(flat.length > 0 ? flat.map((f) => f.count) : [0])),
      s.copyIn(Float32Array.from(flat.length > 0 ? flat.map((f) => f.weight) : [0])),
      docs.length, flat.length, s.copyInInt32(df), df.length, corpusDocs, k1, dim, out,
    );
    return [status, s.readFloats(out, docs.length * dim)];
  });
}

describe.each(MODULE_KINDS)('corpus-aware weighting in C on the %s build', (kind) => {
  it('embeds documents as the float64 reference does, on awkward dims and feature counts', () => {
    const m = moduleOf(kind);
    const random = rng(13);
    for (const dim of [1, 3, 5, 16, 130]) {
      for (const buckets of [1, 8, 1024]) {
        const df = Int32Array.from({ length: buckets }, () => Math.floor(random() * 40));
        const docs = [0, 1, 2, 7, 33].map((n) =>
          Array.from({ length: n }, () => ({ hash: Math.floor(random() * 2 ** 32), count: 1 + Math.floor(random() * 5), weight: random() * 2 })),
        );
        const corpusDocs = 37;
        const [status, got] = tfidfEmbed(m, docs, df, corpusDocs, 1.2, dim);
        expect(status).toBe(0);
        docs.forEach((d, i) => {
          const want = referenceTfidfVector(d, (h) => df[(h >>> 0) & (buckets - 1)], corpusDocs, 1.2, dim, column(dim));
          for (let c = 0; c < dim; c++) expect(Math.abs(got[i * dim + c] - want[c])).toBeLessThanOrEqual(2e-6);
        });
      }
    }
  });

  it('counts document frequencies and gives BM25 idf', () => {
    const m = moduleOf(kind);
    const buckets = 64;
    const features = Int32Array.from([3, 67, 5, 3 + 64 * 9, 1000]); // 3, 67 and 3+576 share buckets with each other mod 64
    m.scope((s) => {
      const df = s.copyInInt32(new Int32Array(buckets));
      expect(m.exports.qe_text_df_add(df, buckets, s.copyInInt32(features), features.length)).toBe(0);
      expect(m.exports.qe_text_df_add(df, buckets, s.copyInInt32(features), 2)).toBe(0);
      expect(m.exports.qe_text_df_add(df, buckets, 0, 0)).toBe(0);
      const counts = m.i32().slice(df >>> 2, (df >>> 2) + buckets);
      const want = new Int32Array(buckets);
      for (const f of features) want[f & 63]++;
      for (const f of features.slice(0, 2)) want[f & 63]++;
      expect(Array.from(counts)).toEqual(Array.from(want));
      const out = s.allocFloats(features.length);
      expect(m.exports.qe_text_idf(s.copyInInt32(features), features.length, df, buckets, 4, out)).toBe(0);
      const idf = s.readFloats(out, features.length);
      features.forEach((f, i) => expect(Math.abs(idf[i] - referenceBm25Idf(want[f & 63], 4))).toBeLessThanOrEqual(1e-6));
    });
  });

  it('rejects bad arguments with status codes', () => {
    const m = moduleOf(kind);
    const ARG = -1; // QE_ERR_ARGUMENT
    const NULL = -4; // QE_ERR_NULL
    const doc = [[{ hash: 1, count: 1, weight: 1 }]];
    expect(tfidfEmbed(m, doc, new Int32Array(3), 1, 1.2, 4)[0]).toBe(ARG); // buckets not a power of two
    expect(tfidfEmbed(m, doc, new Int32Array(4), 1, 0, 4)[0]).toBe(ARG); // k1 must be > 0
    expect(tfidfEmbed(m, doc, new Int32Array(4), -1, 1.2, 4)[0]).toBe(ARG); // docs < 0
    expect(tfidfEmbed(m, [[{ hash: 1, count: NaN, weight: 1 }]], new Int32Array(4), 1, 1.2, 4)[0]).toBe(ARG);
    expect(tfidfEmbed(m, [[{ hash: 1, count: -1, weight: 1 }]], new Int32Array(4), 1, 1.2, 4)[0]).toBe(ARG);
    expect(tfidfEmbed(m, doc, new Int32Array(4), 1, 1.2, 0)[0]).toBe(ARG); // dim 0
    m.scope((s) => {
      expect(m.exports.qe_text_df_add(0, 4, 0, 0)).toBe(NULL);
      expect(m.exports.qe_text_df_add(s.alloc(16), 4, 0, -1)).toBe(ARG);
      expect(m.exports.qe_text_idf(s.copyInInt32(new Int32Array([1])), 1, s.alloc(16), 4, -1, s.alloc(4))).toBe(ARG);
      // Descending offsets.
      const status = m.exports.qe_text_tfidf_embed(s.copyInInt32(Int32Array.from([0, 1, 0])), s.alloc(4), s.alloc(4), s.alloc(4), 2, 0, s.alloc(16), 4, 1, 1.2, 4, s.alloc(32));
      expect(status).toBe(ARG);
    });
  });
});

// ------------------------------------------------------------------ features

describe('code features keep what marks a copy', () => {
  const labels = (src: string) => codeFeatures(src, 'javascript').labels;

  it('hashes literal values next to their kind, whole identifiers next to their parts, digits kept, and title words', () => {
    const l = labels("it('applies SPRING10 once', () => { const order = build4(1999, 'SPRING10'); expect(order.total).toBe(5828); });");
    expect(l).toEqual(expect.arrayContaining(['<str>', '"SPRING10"', '<num>', '1999', '5828', 'build', '4', 'build4', 'applies', 'once', 'spring', '10', 'order']));
    // A different literal value or called function changes the features.
    const a = new Set(codeFeatures('f(1999); build4();').hashes);
    const b = codeFeatures('f(2000); build7();').hashes;
    expect(b.filter((h) => a.has(h)).length).toBeLessThan(b.length);
    expect(new Set(codeFeatures('f(1999); build4();').hashes)).toEqual(a); // deterministic
  });

  it('counts repeated features and keeps each role distinct', () => {
    const f = codeFeatures('x; x; x', 'javascript');
    expect(f.counts[f.labels.indexOf('x')]).toBe(3);
    expect(hashFeature('i:return')).not.toBe(hashFeature('k:return'));
    expect(codeFeatures('').hashes).toHaveLength(0);
  });
});

const JAVA_TRACE = `java.lang.IllegalStateException: Cart total 5828 does not match line items @1a2b3c4d
\tat com.shop.cart.Cart.total(Cart.java:42)
\tat com.shop.cart.Cart$Discounts.apply(Cart.java:88)
\tat com.shop.cart.CartTest.appliesDiscount(CartTest.java:17)
\tat java.base/jdk.internal.reflect.NativeMethodAccessorImpl.invoke0(Native Method)
\tat org.junit.runners.ParentRunner.run(ParentRunner.java:413)
\t... 23 more
Caused by: java.lang.NullPointerException: discount is null
\tat com.shop.pricing.Discount.rate(Discount.java:12)`;

const NODE_TRACE = `TypeError: Cannot read properties of undefined (reading 'total')
    at Cart.total (/home/u/shop/src/cart.js:10:5)
    at Object.<anonymous> (/home/u/shop/test/cart.test.js:22:7)
    at Promise.then.completed (/home/u/shop/node_modules/jest-circus/build/utils.js:298:28)
    at new Promise (<anonymous>)
    at node:internal/process/task_queues:95:5`;

describe('the stack-trace tokenizer', () => {
  it('reads Java traces: exception, message words, frames and their parts, no line numbers, framework frames marked', () => {
    const t = tokenizeTrace(JAVA_TRACE);
    const of = (kind: string) => t.filter((x) => x.kind === kind).map((x) => x.text);
    expect(of('exception')).toEqual(['java.lang.IllegalStateException', 'java.lang.NullPointerException']);
    expect(of('word')).toEqual(['cart', 'total', 'does', 'not', 'match', 'line', 'items', 'discount', 'is', 'null']);
    expect(of('frame')).toEqual([
      'com.shop.cart.Cart.total', 'com.shop.cart.Cart$Discounts.apply', 'com.shop.cart.CartTest.appliesDiscount',
      'jdk.internal.reflect.NativeMethodAccessorImpl.invoke0', 'org.junit.runners.ParentRunner.run', 'com.shop.pricing.Discount.rate',
    ]);
    expect(of('frame-part')).toEqual(expect.arrayContaining(['com.shop.cart', 'Cart', 'Discounts', 'apply', 'appliesDiscount']));
    expect(t.filter((x) => x.framework).map((x) => x.text)).toEqual(expect.arrayContaining(['org.junit.runners.ParentRunner.run', 'jdk.internal.reflect.NativeMethodAccessorImpl.invoke0']));
    expect(t.filter((x) => x.framework && x.text.startsWith('com.shop'))).toEqual([]);
    expect(t.some((x) => /\d{2}/.test(x.text))).toBe(false); // 42, 413, 5828, the hash code: dropped
  });

  it('reads Node traces: call and bare frames, jest and node:internal frames marked', () => {
    const t = tokenizeTrace(NODE_TRACE);
    expect(t.filter((x) => x.kind === 'exception').map((x) => x.text)).toEqual(['TypeError']);
    const frames = t.filter((x) => x.kind === 'frame');
    expect(frames.map((x) => [x.text, x.framework])).toEqual([
      ['cart.js:Cart.total', false],
      ['cart.test.js:Object.<anonymous>', false],
      ['utils.js:Promise.then.completed', true],
      ['<anonymous>:Promise', true],
      ['task_queues', true],
    ]);
    expect(t.find((x) => x.text === 'cart.js' && x.kind === 'frame-part')).toBeDefined();
    expectThrow(() => tokenizeTrace(3 as unknown as string), TypeError, /text must be a string/);
  });

  it('gives the same features whatever the line numbers', () => {
    const moved = JAVA_TRACE.replace(/\.java:(\d+)/g, (_, n) => `.java:${Number(n) + 7}`);
    expect(failureFeatures(moved)).toEqual(failureFeatures(JAVA_TRACE));
  });
});

// ------------------------------------------------------------------ the index

describe.each(MODULE_KINDS)('createCodeIndex on the %s build', (kind) => {
  it('embeds each text as the float64 reference does, with frequencies learned from what it holds', () => {
    const m = moduleOf(kind);
    const texts = [
      "it('adds', () => { expect(add(1, 2)).toBe(3); });",
      "it('subtracts', () => { expect(sub(5, 2)).toBe(3); });",
      "it('multiplies', () => { const product = mul(4, 2); expect(product).toBe(8); });",
      'def test_div():\n    assert div(8, 2) == 4\n',
    ];
    const dim = 36;
    const buckets = 256;
    const index = createCodeIndex(m, { dim, buckets, k1: 0.9 });
    try {
      texts.forEach((t, i) => index.add(`t${i}`, t));
      // Frequencies counted here: one per text and bucket.
      const df = new Int32Array(buckets);
      for (const t of texts) for (const b of new Set(Array.from(codeFeatures(t).hashes, (h) => h & (buckets - 1)))) df[b]++;
      const query = "it('adds again', () => { expect(add(1, 2)).toBe(3); }); // copied";
      const f = codeFeatures(query);
      const want = referenceTfidfVector(
        Array.from(f.hashes, (hash, i) => ({ hash, count: f.counts[i], weight: f.weights[i] })),
        (h) => df[h & (buckets - 1)], texts.length + PRIOR_DOCUMENTS, 0.9, dim, column(dim),
      );
      const got = index.embed(query);
      for (let c = 0; c < dim; c++) expect(Math.abs(got[c] - want[c])).toBeLessThanOrEqual(2e-6);
      const results = index.search(query, 10);
      expect(results.map((r) => r.id)[0]).toBe('t0');
      expect(results).toHaveLength(4);
      // Scores are the cosines of the reference vectors.
      for (const r of results) {
        const g = codeFeatures(texts[r.index]);
        const v = referenceTfidfVector(Array.from(g.hashes, (hash, i) => ({ hash, count: g.counts[i], weight: g.weights[i] })), (h) => df[h & (buckets - 1)], texts.length + PRIOR_DOCUMENTS, 0.9, dim, column(dim));
        expect(Math.abs(r.score - referenceCosine(want, v))).toBeLessThanOrEqual(1e-5);
      }
      expect(results[0].evidence).toEqual(expect.arrayContaining(['add']));
    } finally {
      index.dispose();
    }
  });

  it('ranks a copied test with renamed locals above template siblings that call other functions with other values', () => {
    const m = moduleOf(kind);
    const index = createCodeIndex(m);
    try {
      const random = rng(400);
      for (let i = 0; i < 400; i++) {
        const fn = `build${i % 23}`;
        const a = Math.floor(random() * 9000) + 100;
        const b = Math.floor(random() * 9000) + 100;
        index.add(`sibling${i}`, `it('computes case ${i} for ${fn}', () => {\n  const order = ${fn}(${a}, 'CODE${i}');\n  expect(order.total).toBe(${b});\n  expect(order.code).toBe('CODE${i}');\n});\n`);
      }
      index.add('original', "it('applies the spring discount', () => {\n  const order = build4(1999, 'SPRING10');\n  expect(order.total).toBe(5828);\n  expect(order.code).toBe('SPRING10');\n});\n");
      index.add('copy', "it('applies the spring discount', () => {\n  // copied from the cart suite\n  const o = build4(1999, 'SPRING10');\n  expect(o.total).toBe(5828);\n  expect(o.code).toBe('SPRING10');\n});\n");
      const pairs = index.pairs(0.1);
      expect([pairs[0].a, pairs[0].b].sort()).toEqual(['copy', 'original']);
      expect(pairs[0].evidence).toEqual(expect.arrayContaining(['"SPRING10"', '1999', '5828']));
      expect(pairs[0].distinct).toBeGreaterThanOrEqual(3);
      // Siblings share rare features only by chance (a random value drawn twice): at least 2 leaves the real pair alone.
      const distinct = index.pairs(0.1, { minDistinct: 2 });
      expect(distinct.map((p) => [p.a, p.b].sort().join(' '))).toEqual(['copy original']);
    } finally {
      index.dispose();
    }
  });

  it('rejects bad input with clear errors and frees its memory', () => {
    const m = moduleOf(kind);
    const before = m.liveAllocations;
    const index = createCodeIndex(m, { dim: 8, buckets: 16 });
    index.add('a', 'x = 1');
    expectThrow(() => index.add('a', 'y'), RangeError, /id "a" is already in this index/);
    expectThrow(() => index.add(3 as unknown as string, 'y'), TypeError, /id must be a string/);
    expectThrow(() => index.add('b', null as unknown as string), TypeError, /text must be a string/);
    expectThrow(() => index.search('x', 0), RangeError, /k must be/);
    expectThrow(() => index.pairs(2), RangeError, /threshold must be in/);
    expectThrow(() => index.pairs(0.5, { minDistinct: -1 }), RangeError, /minDistinct/);
    expect(index.search('x = 1', 3).map((r) => r.id)).toEqual(['a']);
    expect(index.pairs(0.5)).toEqual([]);
    index.dispose();
    index.dispose();
    expect(m.liveAllocations).toBe(before);
    expectThrow(() => index.search('x', 1), TypeError, /disposed/);
    expectThrow(() => createCodeIndex(m, { kind: 'log' as 'code' }), RangeError, /kind must be 'code' or 'failure'/);
    expectThrow(() => createCodeIndex(m, { buckets: 100 }), RangeError, /buckets must be a power of two/);
    expectThrow(() => createCodeIndex(m, { k1: 0 }), RangeError, /k1 must be > 0/);
    expectThrow(() => createCodeIndex(m, { dim: 0 }), RangeError, /dim must be/);
    expect(m.liveAllocations).toBe(before);
  });
});

// ------------------------------------------------------------------ failure matching

/** Known defects: each a failure seen before, Java and Node, all run under the same frameworks. */
function defectLibrary(): Record<string, string> {
  const junit = `\tat java.base/jdk.internal.reflect.NativeMethodAccessorImpl.invoke0(Native Method)
\tat java.base/jdk.internal.reflect.NativeMethodAccessorImpl.invoke(NativeMethodAccessorImpl.java:77)
\tat java.base/java.lang.reflect.Method.invoke(Method.java:568)
\tat org.junit.platform.commons.util.ReflectionUtils.invokeMethod(ReflectionUtils.java:725)
\tat org.junit.jupiter.engine.execution.MethodInvocation.proceed(MethodInvocation.java:60)
\tat org.junit.jupiter.engine.descriptor.TestMethodTestDescriptor.invokeTestMethod(TestMethodTestDescriptor.java:214)
\tat org.junit.platform.engine.support.hierarchical.NodeTestTask.executeRecursively(NodeTestTask.java:151)`;
  const jest = `    at Promise.then.completed (/repo/node_modules/jest-circus/build/utils.js:298:28)
    at new Promise (<anonymous>)
    at callAsyncCircusFn (/repo/node_modules/jest-circus/build/utils.js:231:10)
    at _callCircusTest (/repo/node_modules/jest-circus/build/run.js:316:40)
    at processTicksAndRejections (node:internal/process/task_queues:95:5)
    at _runTest (/repo/node_modules/jest-circus/build/run.js:252:3)`;
  return {
    'JAVA-1 cart total overflow': `java.lang.ArithmeticException: integer overflow\n\tat java.base/java.lang.Math.addExact(Math.java:883)\n\tat com.shop.cart.Cart.total(Cart.java:42)\n\tat com.shop.cart.CartTest.totalOfManyItems(CartTest.java:31)\n${junit}`,
    'JAVA-2 discount null': `java.lang.NullPointerException: Cannot invoke "Discount.rate()" because "discount" is null\n\tat com.shop.pricing.PriceCalculator.apply(PriceCalculator.java:57)\n\tat com.shop.pricing.PriceCalculatorTest.appliesSeasonalDiscount(PriceCalculatorTest.java:22)\n${junit}`,
    'JAVA-3 stale session': `java.lang.IllegalStateException: session expired\n\tat com.shop.auth.SessionStore.get(SessionStore.java:88)\n\tat com.shop.auth.LoginService.resume(LoginService.java:40)\n\tat com.shop.auth.LoginServiceTest.resumesFreshSession(LoginServiceTest.java:19)\n${junit}`,
    'JAVA-4 parse date': `java.time.format.DateTimeParseException: Text '2024-13-01' could not be parsed: Invalid value for MonthOfYear\n\tat java.base/java.time.format.DateTimeFormatter.parseResolved0(DateTimeFormatter.java:2052)\n\tat com.shop.report.ReportDates.parse(ReportDates.java:15)\n\tat com.shop.report.ReportDatesTest.parsesMonthEnd(ReportDatesTest.java:12)\n${junit}`,
    'NODE-1 undefined total': `TypeError: Cannot read properties of undefined (reading 'total')\n    at Cart.total (/repo/src/cart.js:10:5)\n    at Object.<anonymous> (/repo/test/cart.test.js:22:7)\n${jest}`,
    'NODE-2 fetch retry': `Error: connect ECONNREFUSED 127.0.0.1:8080\n    at TCPConnectWrap.afterConnect [as oncomplete] (node:net:1555:16)\n    at fetchWithRetry (/repo/src/http/retry.js:31:11)\n    at Object.<anonymous> (/repo/test/http/retry.test.js:14:5)\n${jest}`,
    'NODE-3 slug unicode': `AssertionError [ERR_ASSERTION]: Expected values to be strictly equal: 'caf-' !== 'cafe'\n    at slugify (/repo/src/text/slug.js:8:9)\n    at Object.<anonymous> (/repo/test/text/slug.test.js:5:3)\n${jest}`,
    'NODE-4 invalid token': `JsonWebTokenError: invalid signature\n    at verifyToken (/repo/src/auth/jwt.js:44:13)\n    at authenticate (/repo/src/auth/middleware.js:19:20)\n    at Object.<anonymous> (/repo/test/auth/middleware.test.js:40:9)\n${jest}`,
  };
}

describe("text-based matchDefectPattern on the 'failure' index", () => {
  const library = defectLibrary();
  let qe: Awaited<ReturnType<typeof createQEFlashAttention>>;
  let index: CodeIndex;
  beforeAll(async () => {
    qe = await createQEFlashAttention('defect-matching');
    index = qe.createCodeIndex({ kind: 'failure' });
    for (const [id, trace] of Object.entries(library)) index.add(id, trace);
  });
  afterAll(() => {
    index.dispose();
    qe.dispose();
  });

  it('ranks the defect whose exception and frames match first, in Java and Node formats, above traces sharing only framework frames', async () => {
    // New occurrences: other line numbers, another test calling the same code, deeper framework stacks.
    const javaNew = `java.lang.NullPointerException: Cannot invoke "Discount.rate()" because "discount" is null
\tat com.shop.pricing.PriceCalculator.apply(PriceCalculator.java:61)
\tat com.shop.checkout.CheckoutTest.checksOutWithCoupon(CheckoutTest.java:48)
\tat java.base/jdk.internal.reflect.NativeMethodAccessorImpl.invoke0(Native Method)
\tat java.base/java.lang.reflect.Method.invoke(Method.java:568)
\tat org.junit.platform.commons.util.ReflectionUtils.invokeMethod(ReflectionUtils.java:725)
\tat org.junit.jupiter.engine.execution.MethodInvocation.proceed(MethodInvocation.java:60)
\tat org.junit.jupiter.engine.descriptor.TestMethodTestDescriptor.invokeTestMethod(TestMethodTestDescriptor.java:214)
\tat org.junit.platform.engine.support.hierarchical.NodeTestTask.executeRecursively(NodeTestTask.java:151)
\tat org.junit.platform.engine.support.hierarchical.NodeTestTask.execute(NodeTestTask.java:137)`;
    const nodeNew = `TypeError: Cannot read properties of undefined (reading 'total')
    at Cart.total (/repo/src/cart.js:12:5)
    at checkout (/repo/src/checkout.js:30:18)
    at Object.<anonymous> (/repo/test/checkout.test.js:9:7)
    at Promise.then.completed (/repo/node_modules/jest-circus/build/utils.js:298:28)
    at new Promise (<anonymous>)
    at callAsyncCircusFn (/repo/node_modules/jest-circus/build/utils.js:231:10)
    at _callCircusTest (/repo/node_modules/jest-circus/build/run.js:316:40)
    at processTicksAndRejections (node:internal/process/task_queues:95:5)`;
    const java = await qe.matchDefectPattern(javaNew, index);
    expect(java[0].entry).toBe('JAVA-2 discount null');
    expect(java[0].probability).toBeGreaterThan(java[1].probability);
    const node = await qe.matchDefectPattern(nodeNew, index, { temperature: 0.05 });
    expect(node[0].entry).toBe('NODE-1 undefined total');
    expect(node.reduce((s, x) => s + x.probability, 0)).toBeCloseTo(1, 6);
    // Defects that share only the framework frames score far below.
    const javaOthers = java.filter((x) => x.entry.startsWith('JAVA') && x.entry !== 'JAVA-2 discount null');
    for (const o of javaOthers) expect(o.score).toBeLessThan(java[0].score / 2);
    const nodeOthers = node.filter((x) => x.entry.startsWith('NODE') && x.entry !== 'NODE-1 undefined total');
    for (const o of nodeOthers) expect(o.score).toBeLessThan(node[0].score / 2);
  });

  it('with framework frames alone, matches nothing strongly', () => {
    const onlyFramework = `\tat org.junit.platform.commons.util.ReflectionUtils.invokeMethod(ReflectionUtils.java:725)\n\tat org.junit.jupiter.engine.execution.MethodInvocation.proceed(MethodInvocation.java:60)\n\tat java.base/java.lang.reflect.Method.invoke(Method.java:568)`;
    const best = qe.matchDefectPatternSync(onlyFramework, index)[0];
    const real = qe.matchDefectPatternSync(library['JAVA-3 stale session'], index)[0];
    expect(real.entry).toBe('JAVA-3 stale session');
    expect(best.score).toBeLessThan(real.score / 2);
  });

  it('rejects mixed forms', () => {
    expectThrow(() => qe.matchDefectPatternSync(new Float32Array(index.dim), index as never), TypeError, /pass a string/);
    expectThrow(() => qe.matchDefectPatternSync('trace' as never, [new Float32Array(4)]), TypeError, /failure text is matched against a code index/);
  });
});
