/**
 * Bad-input rows for the pattern adapter (createPatternAdapter,
 * PatternAdapter with its SONA-compatible names) and its export file
 * (adapter weights and pattern cache): empty, foreign, wrong magic, wrong
 * version, truncated at many offsets, bit flips at many offsets.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPatternAdapter, PatternAdapter } from '../../js/pattern-adapter';
import type { QEModule } from '../../js/module';
import { referenceCosine, referenceLoraForward, uniform, maxAbsDiff } from '../reference';
import { afterDispose, floatArrayRows, optionsRows, sizeRows, stringRows, type NoArgs, type Row, type Table } from './harness';

export const DIM = 12;
const RANK = 2;

export const ctx = {} as { a: PatternAdapter; module: QEModule; weights: { A: Float32Array; B: Float32Array }; saved: Uint8Array; dir: string };

const WEIGHTS = { A: uniform(RANK * DIM, 400, -0.3, 0.3), B: uniform(RANK * DIM, 401, -0.3, 0.3) };
const vecs = Array.from({ length: 6 }, (_, i) => uniform(DIM, 300 + i));
const x = uniform(DIM, 350);

/** The adapter's output against the float64 reference of x + (alpha / rank) B (A x). */
function goodApply(): void {
  const y = ctx.a.apply(x);
  const ref = referenceLoraForward({ A: ctx.weights.A, B: ctx.weights.B, rank: RANK, dim: DIM, scale: 1 } as never, x).y;
  expect(maxAbsDiff(y, ref)).toBeLessThan(1e-5);
}
/** The nearest stored pattern by the reference cosine through the adapter. */
function goodFind(): void {
  goodApply();
  const ax = ctx.a.apply(x);
  const ranked = vecs.map((v, i) => ({ i, s: referenceCosine(ax, v) })).sort((p, q) => q.s - p.s);
  expect(ctx.a.findPatterns(x, 2).map((p) => p.id)).toEqual(ranked.slice(0, 2).map((r) => `p${r.i}`));
}
async function disposedAdapter(): Promise<PatternAdapter> {
  const a = await createPatternAdapter('pattern-adaptation', { dim: DIM, rank: RANK, module: { threads: 1 } });
  a.dispose();
  return a;
}
const disposedA = (call: (a: PatternAdapter) => unknown) => afterDispose(async () => call(await disposedAdapter()));

/** A vector argument (Float32Array or number[]) of the adapter. */
function vectorRows(arg: string, call: (v: unknown) => unknown, good: Float32Array = x): Row[] {
  return [
    ...floatArrayRows(arg, good, call).filter((r) => !/Float64Array|forged/.test(r.bad)),
    { bad: `${arg} a number[] one short`, call: () => call(Array.from(good).slice(1)), error: RangeError, arg },
    { bad: `${arg} a number[] holding a string`, call: () => call(Object.assign(Array.from(good), { 1: 'x' })), error: RangeError, arg: `${arg}[1]` },
  ];
}

/** Every way the export bytes can be bad, each a RangeError naming what was given. */
function corruptRows(load: (bytes: Uint8Array) => unknown, arg: string | RegExp): Row[] {
  const rows: Row[] = [];
  const saved = () => ctx.saved;
  const bad = (what: string, make: () => Uint8Array) => rows.push({ bad: what, call: () => load(make()), error: RangeError, arg });
  bad('empty', () => new Uint8Array(0));
  bad('foreign bytes (a PNG header)', () => new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, ...new Array(64).fill(0)]));
  bad('foreign bytes (an HNSW magic)', () => new TextEncoder().encode('QEHNSW\0\0' + 'x'.repeat(64)));
  bad('wrong magic', () => { const b = saved().slice(); b[0] ^= 0xff; return b; });
  bad('wrong version', () => { const b = saved().slice(); b[4] = 99; return b; });
  const n = () => saved().length;
  for (const at of [1, 4, 7, 8, 20, 31, 32, 0.25, 0.5, 0.75, -1]) {
    bad(`truncated at ${at < 1 && at > 0 ? `${at * 100}%` : at < 0 ? 'length - 1' : `byte ${at}`}`, () => saved().slice(0, at < 0 ? n() - 1 : at < 1 ? Math.floor(n() * at) : at));
  }
  for (const frac of [0.05, 0.2, 0.4, 0.6, 0.8, 0.95]) {
    bad(`a bit flipped at ${frac * 100}%`, () => { const b = saved().slice(); b[Math.max(33, Math.floor(b.length * frac))] ^= 0x04; return b; });
  }
  bad('one byte appended', () => { const b = new Uint8Array(n() + 1); b.set(saved()); return b; });
  return rows;
}

export const ADAPTER_TABLE: Table = {
  createPatternAdapter: {
    rows: [
      { bad: 'workload unknown', call: () => createPatternAdapter('nope' as never), error: RangeError, arg: 'workload' },
      { bad: 'workload a number', call: () => createPatternAdapter(1 as never), error: TypeError, arg: 'workload' },
      ...optionsRows('options', (o) => createPatternAdapter('pattern-adaptation', o as never)),
      ...sizeRows('options.dim', (v) => createPatternAdapter('pattern-adaptation', { dim: v as number, module: { threads: 1 } })),
      ...sizeRows('options.rank', (v) => createPatternAdapter('pattern-adaptation', { dim: DIM, rank: v as number, module: { threads: 1 } })),
      ...sizeRows('options.maxPatterns', (v) => createPatternAdapter('pattern-adaptation', { dim: DIM, maxPatterns: v as number, module: { threads: 1 } })),
      { bad: 'options.learningRate NaN', call: () => createPatternAdapter('pattern-adaptation', { dim: DIM, learningRate: NaN }), error: RangeError, arg: 'options.learningRate' },
      { bad: 'options.learningRate negative', call: () => createPatternAdapter('pattern-adaptation', { dim: DIM, learningRate: -1 }), error: RangeError, arg: 'options.learningRate' },
      { bad: 'options.temperature 0', call: () => createPatternAdapter('pattern-adaptation', { dim: DIM, temperature: 0 }), error: RangeError, arg: 'options.temperature' },
      { bad: 'options.optimizer unknown', call: () => createPatternAdapter('pattern-adaptation', { dim: DIM, optimizer: 'lion' } as never), error: RangeError, arg: 'options.optimizer' },
      { bad: 'options.enabled a number', call: () => createPatternAdapter('pattern-adaptation', { dim: DIM, enabled: 1 } as never), error: TypeError, arg: 'options.enabled' },
      { bad: 'options.module a number', call: () => createPatternAdapter('pattern-adaptation', { dim: DIM, module: 3 } as never), error: TypeError, arg: 'options.module' },
    ],
    good: goodFind,
  },
  'new PatternAdapter': {
    rows: [
      { bad: 'module not a module', call: () => new PatternAdapter({} as never, 'pattern-adaptation', { dim: DIM }), error: TypeError, arg: 'module' },
      { bad: 'workload unknown', call: () => new PatternAdapter(ctx.module, 'nope' as never, { dim: DIM }), error: RangeError, arg: 'workload' },
      ...optionsRows('options', (o) => new PatternAdapter(ctx.module, 'pattern-adaptation', o as never)),
    ],
    good: goodFind,
  },
  'PatternAdapter#setEnabled': {
    rows: [{ bad: 'enabled a number', call: () => ctx.a.setEnabled(1 as never), error: TypeError, arg: 'enabled' }, { bad: 'enabled null', call: () => ctx.a.setEnabled(null as never), error: TypeError, arg: 'enabled' }, disposedA((a) => a.setEnabled(true))],
    good: () => { expect(ctx.a.isEnabled()).toBe(true); goodApply(); },
  },
  'PatternAdapter#isEnabled': { rows: [disposedA((a) => a.isEnabled())], good: () => expect(ctx.a.isEnabled()).toBe(true) },
  'PatternAdapter#apply': {
    rows: [
      ...vectorRows('x', (v) => ctx.a.apply(v as Float32Array)),
      ...floatArrayRows('out', new Float32Array(DIM), (o) => ctx.a.apply(x, o as Float32Array), { finite: false, nullable: true }).filter((r) => !/another realm|SharedArrayBuffer|Proxy|forged/.test(r.bad)),
      disposedA((a) => a.apply(x)),
    ],
    good: goodApply,
  },
  'PatternAdapter#applyResident': {
    rows: [
      { bad: 'residentInput holding NaN', call: () => { const r = ctx.a.residentInput; r.set(x); r[3] = NaN; return ctx.a.applyResident(); }, error: RangeError, arg: 'residentInput[3]' },
      { bad: 'residentInput holding -Infinity', call: () => { const r = ctx.a.residentInput; r.set(x); r[DIM - 1] = -Infinity; return ctx.a.applyResident(); }, error: RangeError, arg: `residentInput[${DIM - 1}]` },
      disposedA((a) => a.applyResident()),
      disposedA((a) => a.residentInput),
    ],
    good: () => {
      ctx.a.residentInput.set(x);
      expect(Array.from(ctx.a.applyResident())).toEqual(Array.from(ctx.a.apply(x)));
      goodApply();
    },
  },
  'PatternAdapter#applyMicroLora': { rows: [...vectorRows('input', (v) => ctx.a.applyMicroLora(v as Float32Array)).slice(0, 8), disposedA((a) => a.applyMicroLora(x))], good: () => expect(ctx.a.applyMicroLora(x)).toEqual(Array.from(ctx.a.apply(x))) },
  'PatternAdapter#adapt': {
    rows: [
      { bad: 'example null', call: () => ctx.a.adapt(null as never), error: TypeError, arg: 'example' },
      ...vectorRows('example.anchor', (v) => { const w = ctx.a.getWeights(); try { return ctx.a.adapt({ anchor: v as Float32Array, positive: vecs[0], negatives: [vecs[1]] }); } finally { ctx.a.setWeights(w); } }).filter((r) => r.error !== 'same-or-named'),
      { bad: 'example.positive an unknown id', call: () => ctx.a.adapt({ anchor: x, positive: 'nope' }), error: RangeError, arg: 'example.positive' },
      { bad: 'example.negatives a number', call: () => ctx.a.adapt({ anchor: x, positive: vecs[0], negatives: 3 } as never), error: TypeError, arg: 'example.negatives' },
      { bad: 'example.negatives[1] short', call: () => ctx.a.adapt({ anchor: x, positive: vecs[0], negatives: [vecs[1], vecs[2].slice(1)] }), error: RangeError, arg: 'example.negatives[1]' },
      { bad: 'example.reward NaN', call: () => ctx.a.adapt({ query: x, reward: NaN, result: 'p0' }), error: TypeError, arg: 'example.reward' },
      { bad: 'example.result a number', call: () => ctx.a.adapt({ query: x, reward: 1, result: 3 } as never), error: TypeError, arg: 'example.result' },
      disposedA((a) => a.adapt({ anchor: x, positive: vecs[0] })),
    ],
    good: goodFind,
  },
  'PatternAdapter#adaptBatch': {
    rows: [
      { bad: 'examples null', call: () => ctx.a.adaptBatch(null as never), error: TypeError, arg: 'examples' },
      { bad: 'examples empty', call: () => ctx.a.adaptBatch([]), error: TypeError, arg: 'examples' },
      { bad: 'examples[1] null', call: () => ctx.a.adaptBatch([{ anchor: x, positive: vecs[0], negatives: [vecs[1]] }, null] as never), error: TypeError, arg: 'examples[1]' },
      { bad: 'examples[1].anchor[2] NaN', call: () => ctx.a.adaptBatch([{ anchor: x, positive: vecs[0], negatives: [vecs[1]] }, { anchor: Object.assign(x.slice(), { 2: NaN }), positive: vecs[1], negatives: [vecs[2]] }]), error: RangeError, arg: 'examples[1].anchor[2]' },
      disposedA((a) => a.adaptBatch([{ anchor: x, positive: vecs[0] }])),
    ],
    good: goodFind,
  },
  'PatternAdapter#gradient': {
    rows: [
      { bad: 'example a number', call: () => ctx.a.gradient(3 as never), error: TypeError, arg: 'example' },
      { bad: 'example.anchor short', call: () => ctx.a.gradient({ anchor: x.slice(1), positive: vecs[0] }), error: RangeError, arg: 'example.anchor' },
      { bad: 'example.positive[0] Infinity', call: () => ctx.a.gradient({ anchor: x, positive: Object.assign(vecs[0].slice(), { 0: Infinity }) }), error: RangeError, arg: /example\.positive|example\b/ },
      { bad: 'example.reward a string', call: () => ctx.a.gradient({ anchor: x, positive: vecs[0], reward: '1' } as never), error: TypeError, arg: 'example.reward' },
      { bad: 'example.negatives a flat array not a multiple of dim', call: () => ctx.a.gradient({ anchor: x, positive: vecs[0], negatives: new Float32Array(DIM + 1) }), error: RangeError, arg: 'example.negatives' },
      disposedA((a) => a.gradient({ anchor: x, positive: vecs[0] })),
    ],
    good: () => { const g = ctx.a.gradient({ anchor: x, positive: vecs[0], negatives: [vecs[1]] }); expect(Number.isFinite(g.loss)).toBe(true); goodFind(); },
  },
  'PatternAdapter#recordOutcome': {
    rows: [
      { bad: 'reward NaN', call: () => ctx.a.recordOutcome(NaN), error: TypeError, arg: 'reward' },
      { bad: 'reward a string', call: () => ctx.a.recordOutcome('1' as never), error: TypeError, arg: 'reward' },
      { bad: 'requestIndex a string', call: () => ctx.a.recordOutcome(1, 'x' as never), error: TypeError, arg: 'requestIndex' },
      disposedA((a) => a.recordOutcome(1)),
    ],
    good: goodFind,
  },
  'PatternAdapter#storePattern': {
    rows: [
      { bad: 'pattern null', call: () => ctx.a.storePattern(null as never), error: TypeError, arg: 'pattern' },
      { bad: 'pattern.id empty', call: () => ctx.a.storePattern({ id: '', embedding: x }), error: TypeError, arg: 'pattern.id' },
      { bad: 'pattern.id a number', call: () => ctx.a.storePattern({ id: 3, embedding: x } as never), error: TypeError, arg: 'pattern.id' },
      ...vectorRows('pattern.embedding', (v) => { ctx.a.storePattern({ id: 'p3', embedding: v as Float32Array }); return ctx.a.getPattern('p3')?.embedding; }, vecs[3]),
      { bad: 'pattern.quality NaN', call: () => ctx.a.storePattern({ id: 'q', embedding: x, quality: NaN }), error: TypeError, arg: 'pattern.quality' },
      { bad: 'pattern.metadata cyclic', call: () => { const m: Record<string, unknown> = {}; m.self = m; return ctx.a.storePattern({ id: 'q', embedding: x, metadata: m }); }, error: TypeError, arg: 'pattern.metadata' },
      disposedA((a) => a.storePattern({ id: 'q', embedding: x })),
    ],
    good: goodFind,
  },
  'PatternAdapter#storePatternsBatch': {
    rows: [
      { bad: 'patterns null', call: () => ctx.a.storePatternsBatch(null as never), error: TypeError, arg: 'patterns' },
      { bad: 'patterns[0] a number', call: () => ctx.a.storePatternsBatch([3] as never), error: TypeError, arg: 'patterns[0]' },
      { bad: 'patterns[0].embedding short', call: () => ctx.a.storePatternsBatch([{ id: 'q', embedding: x.slice(1) }]), error: RangeError, arg: 'patterns[0].embedding' },
      disposedA((a) => a.storePatternsBatch([])),
    ],
    good: goodFind,
  },
  'PatternAdapter#updatePattern': {
    rows: [
      ...stringRows('id', (v) => ctx.a.updatePattern(v as string, { quality: 1 })),
      { bad: 'update null', call: () => ctx.a.updatePattern('p0', null as never), error: TypeError, arg: 'update' },
      { bad: 'update.quality NaN', call: () => ctx.a.updatePattern('p0', { quality: NaN }), error: TypeError, arg: 'update.quality' },
      { bad: 'update.embedding short', call: () => ctx.a.updatePattern('p0', { embedding: x.slice(1) }), error: RangeError, arg: 'update.embedding' },
      disposedA((a) => a.updatePattern('p0', { quality: 1 })),
    ],
    good: goodFind,
  },
  'PatternAdapter#findPatterns': {
    rows: [...vectorRows('x', (v) => ctx.a.findPatterns(v as Float32Array, 2).map((p) => p.id)), ...sizeRows('k', (v) => ctx.a.findPatterns(x, v as number)), disposedA((a) => a.findPatterns(x))],
    good: goodFind,
  },
  'PatternAdapter#recallPattern': {
    rows: [
      { bad: 'context a string', call: () => ctx.a.recallPattern('x'), error: TypeError, arg: 'context' },
      { bad: 'context short', call: () => ctx.a.recallPattern(x.slice(1)), error: RangeError, arg: 'context' },
      { bad: 'context.embedding[0] NaN', call: () => ctx.a.recallPattern({ embedding: Object.assign(x.slice(), { 0: NaN }) }), error: RangeError, arg: /context/ },
      { bad: 'patternType a number', call: () => ctx.a.recallPattern(x, 3 as never), error: TypeError, arg: 'patternType' },
      { bad: 'domain a number', call: () => ctx.a.recallPattern(x, undefined, 3 as never), error: TypeError, arg: 'domain' },
      disposedA((a) => a.recallPattern(x)),
    ],
    good: goodFind,
  },
  'PatternAdapter#adaptPattern': {
    rows: [
      { bad: 'state a number', call: () => ctx.a.adaptPattern(3), error: TypeError, arg: /state|context/ },
      { bad: 'patternType a number', call: () => ctx.a.adaptPattern(x, 3 as never), error: TypeError, arg: 'patternType' },
      disposedA((a) => a.adaptPattern(x)),
    ],
    good: goodFind,
  },
  'PatternAdapter#getPattern': { rows: [...stringRows('id', (v) => ctx.a.getPattern(v as string)), disposedA((a) => a.getPattern('p0'))], good: () => expect(maxAbsDiff(ctx.a.getPattern('p1')?.embedding ?? [], vecs[1])).toBe(0) },
  'PatternAdapter#removePattern': { rows: [...stringRows('id', (v) => ctx.a.removePattern(v as string)), disposedA((a) => a.removePattern('p0'))], good: goodFind },
  'PatternAdapter#patternIds': { rows: [disposedA((a) => a.patternIds())], good: () => expect(ctx.a.patternIds().sort()).toEqual(vecs.map((_, i) => `p${i}`).sort()) },
  'PatternAdapter#clear': { rows: [disposedA((a) => a.clear())], good: goodFind },
  'PatternAdapter#nextEviction': { rows: [disposedA((a) => a.nextEviction())], good: goodFind },
  'PatternAdapter#reset': { rows: [disposedA((a) => a.reset())], good: goodFind },
  'PatternAdapter#getWeights': { rows: [disposedA((a) => a.getWeights())], good: () => expect(ctx.a.getWeights()).toEqual(ctx.weights) },
  'PatternAdapter#getStats': { rows: [disposedA((a) => a.getStats())], good: () => expect(ctx.a.getStats().patterns).toBe(vecs.length) },
  'PatternAdapter#export': {
    rows: [disposedA((a) => a.export())],
    good: async () => {
      // The export, imported by a fresh adapter, carries the weights and the patterns.
      const b = await createPatternAdapter('pattern-adaptation', { dim: DIM, rank: RANK, module: { threads: 1 } });
      try {
        b.import(ctx.a.export());
        expect(b.getWeights()).toEqual(ctx.a.getWeights());
        expect(b.patternIds().sort()).toEqual(ctx.a.patternIds().sort());
      } finally {
        b.dispose();
      }
    },
  },
  'PatternAdapter#dispose': { rows: [disposedA((a) => { a.dispose(); return a.apply(x); })], good: goodFind },
  'PatternAdapter#setWeights': {
    rows: [
      { bad: 'weights null', call: () => ctx.a.setWeights(null as never), error: TypeError, arg: 'weights' },
      ...floatArrayRows('weights.A', ctx_weights('A'), (w) => { ctx.a.setWeights({ A: w as Float32Array, B: ctx.weights.B }); return ctx.a.getWeights(); }),
      ...floatArrayRows('weights.B', ctx_weights('B'), (w) => { ctx.a.setWeights({ A: ctx.weights.A, B: w as Float32Array }); return ctx.a.getWeights(); }).slice(0, 6),
      disposedA((a) => a.setWeights(ctx.weights)),
    ],
    good: () => { ctx.a.setWeights(ctx.weights); goodFind(); },
  },
  'PatternAdapter#merge': {
    rows: [...floatArrayRows('base', identity(), (b) => ctx.a.merge(b as Float32Array)), disposedA((a) => a.merge())],
    good: () => {
      // merge(I) = I + (alpha / rank) B A: applying it to x is apply(x).
      const W = ctx.a.merge();
      const y = new Float64Array(DIM);
      for (let i = 0; i < DIM; i++) for (let j = 0; j < DIM; j++) y[i] += W[i * DIM + j] * x[j];
      expect(maxAbsDiff(y, ctx.a.apply(x))).toBeLessThan(1e-5);
    },
  },
  'PatternAdapter#import': {
    rows: [
      { bad: 'bytes a string', call: () => ctx.a.import('QEPA' as never), error: TypeError, arg: 'bytes' },
      { bad: 'bytes a Float32Array', call: () => ctx.a.import(new Float32Array(8) as never), error: TypeError, arg: 'bytes' },
      { bad: 'bytes detached', call: () => { const b = ctx.saved.slice(); structuredClone(b.buffer, { transfer: [b.buffer] }); return ctx.a.import(b); }, error: TypeError, arg: 'bytes' },
      { bad: 'bytes with a lying length', call: () => ctx.a.import(Object.defineProperty(ctx.saved.slice(), 'length', { value: 8 })), error: 'same-or-named', arg: 'bytes', expected: () => undefined },
      { bad: 'bytes of another dim', call: async () => { const o = await createPatternAdapter('pattern-adaptation', { dim: DIM + 1, rank: RANK, module: { threads: 1 } }); const b = o.export(); o.dispose(); return ctx.a.import(b); }, error: RangeError, arg: 'bytes' },
      ...corruptRows((b) => ctx.a.import(b), 'bytes'),
      disposedA((a) => a.import(ctx.saved)),
    ],
    good: () => { ctx.a.import(ctx.saved); goodFind(); },
  },
  'PatternAdapter#saveTo': {
    rows: [
      ...stringRows('path', (p) => ctx.a.saveTo(p as string)),
      { bad: 'path empty', call: () => ctx.a.saveTo(''), error: TypeError, arg: 'path' },
      { bad: 'path in a folder that does not exist (no file or temp file left)', call: () => ctx.a.saveTo(join(ctx.dir, 'missing', 'a.qepa')), error: Error, arg: /ENOENT|missing/ },
      disposedA((a) => a.saveTo(join(ctx.dir, 'disposed.qepa'))),
    ],
    good: async () => {
      const file = join(ctx.dir, 'good.qepa');
      await ctx.a.saveTo(file);
      expect(new Uint8Array(readFileSync(file))).toEqual(ctx.a.export());
      expect(readdirSync(ctx.dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    },
  },
  'PatternAdapter#loadFrom': {
    rows: [
      ...stringRows('path', (p) => ctx.a.loadFrom(p as string)),
      { bad: 'path that does not exist', call: () => ctx.a.loadFrom(join(ctx.dir, 'nope.qepa')), error: Error, arg: /nope\.qepa/ },
      ...corruptRows((b) => { const file = join(ctx.dir, 'corrupt.qepa'); writeFileSync(file, b); return ctx.a.loadFrom(file); }, /corrupt\.qepa/),
      disposedA((a) => a.loadFrom(join(ctx.dir, 'good.qepa'))),
    ],
    good: async () => {
      const file = join(ctx.dir, 'roundtrip.qepa');
      writeFileSync(file, ctx.saved);
      await ctx.a.loadFrom(file);
      goodFind();
    },
  },
};

export const ADAPTER_NO_ARGS: NoArgs = {};

function ctx_weights(which: 'A' | 'B'): Float32Array {
  // The rows are built before the adapter exists: weights of the right size, filled when it does.
  return WEIGHTS[which];
}
function identity(): Float32Array {
  const w = new Float32Array(DIM * DIM);
  for (let i = 0; i < DIM; i++) w[i * DIM + i] = 1;
  return w;
}

export async function setUpAdapter(module: QEModule): Promise<void> {
  ctx.module = module;
  ctx.a = await createPatternAdapter('pattern-adaptation', { dim: DIM, rank: RANK, alpha: RANK, module: { threads: 1 } });
  ctx.a.setWeights(WEIGHTS);
  ctx.weights = { A: WEIGHTS.A.slice(), B: WEIGHTS.B.slice() };
  vecs.forEach((v, i) => ctx.a.storePattern({ id: `p${i}`, embedding: v, quality: 0.5 }));
  ctx.saved = ctx.a.export();
  // The resident pair is made on first use (two allocations that stay): made here, before the rows count allocations.
  void ctx.a.residentInput;
  ctx.dir = mkdtempSync(join(tmpdir(), 'qe-badinput-adapter-'));
}

export function tearDownAdapter(): void {
  ctx.a.dispose();
  rmSync(ctx.dir, { recursive: true, force: true });
}
