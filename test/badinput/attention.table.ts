/**
 * Bad-input rows for the attention surface: QEFlashAttention and its
 * resident attention, the config functions, WASMSIMDBackend, the ONNX
 * operator, the tokenizers and text features, the thread functions and the
 * benchmark runners.
 */
import { createQEFlashAttention, QEFlashAttention } from '../../js/flash-attention';
import { getOptimalBlockConfig, getQEFlashAttentionConfig } from '../../js/config';
import { getWASMSIMDBackend, WASMSIMDBackend } from '../../js/backend';
import { onnxAttention, onnxAttentionOn } from '../../js/onnx-attention';
import { tokenizeCode, splitIdentifier } from '../../js/tokenizer';
import { tokenizeTrace } from '../../js/trace-tokenizer';
import { codeFeatures, failureFeatures } from '../../js/text-features';
import { FlashAttentionBenchmark, QUICK_BENCHMARK_OPTIONS, benchmarkWorkload, formatMarkdown, runFlashAttentionBenchmarks } from '../../js/benchmark';

/** Quick options, so a row the library wrongly accepted finishes fast (and fails). */
const QUICK = { ...QUICK_BENCHMARK_OPTIONS, log: () => {} };
import type { QEModule } from '../../js/module';
import type { ResidentAttention } from '../../js/resident-attention';
import {
  attentionShape,
  maxAbsDiff,
  referenceAttention,
  referenceCosineRanking,
  referenceEmbeddingLookup,
  referenceLayerNorm,
  referenceMatmul,
  referenceSoftmax,
  referenceVecAdd,
  uniform,
} from '../reference';
import { afterDispose, floatArrayRows, optionsRows, sizeRows, stringRows, type NoArgs, type Row, type Table } from './harness';

export const DIM = 16;
export const HEADS = 2;

/** Filled by the test file's beforeAll. */
export const ctx = {} as { fa: QEFlashAttention; backend: WASMSIMDBackend; module: QEModule; resident: ResidentAttention };

// ------------------------------------------------------------------ data and references
const Q = uniform(3 * DIM, 1);
const K = uniform(5 * DIM, 2);
const V = uniform(5 * DIM, 3);
const shape = attentionShape({ seqLen: 3, kvSeqLen: 5, dim: DIM, heads: HEADS });
const attnRef = referenceAttention(Q, K, V, shape);
const corpus = Array.from({ length: 6 }, (_, i) => uniform(DIM, 40 + i));
const query = uniform(DIM, 50);
const tokens = uniform(4 * DIM, 60);

const attend = (q: unknown, k: unknown, v: unknown, seqLen: unknown = 3, dim: unknown = DIM, options: unknown = { kvSeqLen: 5 }) =>
  ctx.fa.computeFlashAttentionSync(q as Float32Array, k as Float32Array, v as Float32Array, seqLen as number, dim as number, options as never);
const attendAsync = (q: unknown, k: unknown, v: unknown, seqLen: unknown = 3, dim: unknown = DIM, options: unknown = { kvSeqLen: 5 }) =>
  ctx.fa.computeFlashAttention(q as Float32Array, k as Float32Array, v as Float32Array, seqLen as number, dim as number, options as never);
const baseline = (q: unknown, k: unknown, v: unknown, seqLen: unknown = 3, dim: unknown = DIM, options: unknown = { kvSeqLen: 5 }) =>
  ctx.fa.computeBaselineAttention(q as Float32Array, k as Float32Array, v as Float32Array, seqLen as number, dim as number, options as never);

function goodAttention(): void {
  expect(maxAbsDiff(attend(Q, K, V), attnRef)).toBeLessThanOrEqual(1e-5);
}

/** The exact top-k of query over corpus, by the float64 reference. */
function topRef(q: Float32Array, rows: Float32Array[], k: number): number[] {
  return referenceCosineRanking(q, rows).slice(0, k).map((r) => r.index);
}
function goodSimilarity(): void {
  expect(ctx.fa.computeTestSimilaritySync(query, corpus, 3).map((r) => r.index)).toEqual(topRef(query, corpus, 3));
}

/** Attention-argument rows shared by the sync, async and baseline forms. */
function attentionRows(run: (q: unknown, k: unknown, v: unknown, seqLen?: unknown, dim?: unknown, options?: unknown) => unknown): Row[] {
  return [
    ...floatArrayRows('Q', Q, (x) => run(x, K, V)),
    ...floatArrayRows('K', K, (x) => run(Q, x, V)),
    ...floatArrayRows('V', V, (x) => run(Q, K, x)),
    ...sizeRows('seqLen', (x) => run(Q, K, V, x)),
    ...sizeRows('dim', (x) => run(Q, K, V, 3, x)),
    ...optionsRows('options', (x) => run(Q, K, V, 3, DIM, x), true),
    ...sizeRows('options.kvSeqLen', (x) => run(Q, K, V, 3, DIM, { kvSeqLen: x })),
    ...sizeRows('options.heads', (x) => run(Q, K, V, 3, DIM, { kvSeqLen: 5, heads: x })),
    { bad: 'options.heads not dividing dim', call: () => run(Q, K, V, 3, DIM, { kvSeqLen: 5, heads: 3 }), error: RangeError, arg: 'heads' },
    { bad: 'options.scale NaN', call: () => run(Q, K, V, 3, DIM, { kvSeqLen: 5, scale: NaN }), error: RangeError, arg: 'options.scale' },
    { bad: 'options.scale a string', call: () => run(Q, K, V, 3, DIM, { kvSeqLen: 5, scale: '1' }), error: TypeError, arg: 'options.scale' },
    { bad: 'options.causal a number', call: () => run(Q, K, V, 3, DIM, { kvSeqLen: 5, causal: 1 }), error: TypeError, arg: 'options.causal' },
    { bad: 'options.validKeyLength 0', call: () => run(Q, K, V, 3, DIM, { kvSeqLen: 5, validKeyLength: 0 }), error: RangeError, arg: 'options.validKeyLength' },
    { bad: 'options.validKeyLength above kvSeqLen', call: () => run(Q, K, V, 3, DIM, { kvSeqLen: 5, validKeyLength: 6 }), error: RangeError, arg: 'options.validKeyLength' },
    { bad: 'options.validKeyLength fractional', call: () => run(Q, K, V, 3, DIM, { kvSeqLen: 5, validKeyLength: 2.5 }), error: RangeError, arg: 'options.validKeyLength' },
  ];
}

/** The general-kernel options (computeFlashAttention only). */
function generalRows(run: typeof attend): Row[] {
  return [
    ...sizeRows('options.kvHeads', (x) => run(Q, K, V, 3, DIM, { kvSeqLen: 5, kvHeads: x })),
    { bad: 'options.softcap negative', call: () => run(Q, K, V, 3, DIM, { kvSeqLen: 5, softcap: -1 }), error: RangeError, arg: 'options.softcap' },
    { bad: 'options.softcap Infinity', call: () => run(Q, K, V, 3, DIM, { kvSeqLen: 5, softcap: Infinity }), error: RangeError, arg: 'options.softcap' },
    { bad: 'options.window a number', call: () => run(Q, K, V, 3, DIM, { kvSeqLen: 5, window: 3 }), error: TypeError, arg: 'options.window' },
    { bad: 'options.window.left -2', call: () => run(Q, K, V, 3, DIM, { kvSeqLen: 5, window: { left: -2 } }), error: RangeError, arg: 'options.window.left' },
    { bad: 'options.window.right 1.5', call: () => run(Q, K, V, 3, DIM, { kvSeqLen: 5, window: { right: 1.5 } }), error: RangeError, arg: 'options.window.right' },
    { bad: 'options.mask a Float64Array', call: () => run(Q, K, V, 3, DIM, { kvSeqLen: 5, mask: { data: new Float64Array(15), dims: [3, 5] } }), error: TypeError, arg: 'options.mask' },
    { bad: 'options.mask.data detached', call: () => { const d = new Uint8Array(15).fill(1); structuredClone(d.buffer, { transfer: [d.buffer] }); return run(Q, K, V, 3, DIM, { kvSeqLen: 5, mask: { data: d, dims: [3, 5] } }); }, error: TypeError, arg: /options\.mask/ },
    { bad: 'options.mask.data with a lying length', call: () => { const d = new Uint8Array(15 * 64).fill(1); Object.defineProperty(d, 'length', { value: 15 }); return run(Q, K, V, 3, DIM, { kvSeqLen: 5, mask: { data: d, dims: [3, 5] } }); }, error: RangeError, arg: /options\.mask/ },
    { bad: 'options.mask.data one short', call: () => run(Q, K, V, 3, DIM, { kvSeqLen: 5, mask: { data: new Uint8Array(14).fill(1), dims: [3, 5] } }), error: RangeError, arg: /options\.mask/ },
  ];
}

async function disposedInstance(): Promise<QEFlashAttention> {
  const fa = await createQEFlashAttention('test-similarity', { dim: DIM, blocks: { headsPerBlock: HEADS } }, { threads: 1 });
  fa.dispose();
  return fa;
}
const disposedFa = (call: (fa: QEFlashAttention) => unknown) => afterDispose(async () => call(await disposedInstance()));

// ------------------------------------------------------------------ resident attention
const residentRun = (out?: unknown) => ctx.resident.run(out as Float32Array);
function goodResident(): void {
  ctx.resident.Q.set(Q);
  ctx.resident.K.set(K);
  ctx.resident.V.set(V);
  expect(maxAbsDiff(ctx.resident.run(), attnRef)).toBeLessThanOrEqual(1e-5);
}

// ------------------------------------------------------------------ backend
const ma = uniform(3 * 4, 71);
const mb = uniform(4 * 2, 72);
const rowx = uniform(2 * 11, 70);
const gamma = uniform(11, 73);
const beta = uniform(11, 74);
const table = uniform(7 * 5, 75);
const matmul = (a: unknown, b: unknown, m: unknown = 3, n: unknown = 2, k: unknown = 4) => ctx.backend.matmulSIMD(a as Float32Array, b as Float32Array, m as number, n as number, k as number);
const goodMatmul = () => expect(maxAbsDiff(matmul(ma, mb), referenceMatmul(ma, mb, 3, 2, 4))).toBeLessThan(1e-5);
async function disposedBackend(): Promise<WASMSIMDBackend> {
  const b = new WASMSIMDBackend({ threads: 1 });
  await b.initialize();
  b.dispose();
  return b;
}

// ------------------------------------------------------------------ ONNX
const onnxInputs = (q: unknown = Q, k: unknown = K, v: unknown = V) => ({
  Q: { data: q, dims: [1, HEADS, 3, DIM / HEADS] },
  K: { data: k, dims: [1, HEADS, 5, DIM / HEADS] },
  V: { data: v, dims: [1, HEADS, 5, DIM / HEADS] },
});
/** Q, K, V in ONNX's 4-D layout [batch, heads, seq, headSize], from the row-major [seq, heads * headSize] of the reference. */
function toHeads(x: Float32Array, seq: number): Float32Array {
  const hd = DIM / HEADS;
  const out = new Float32Array(x.length);
  for (let s = 0; s < seq; s++) for (let h = 0; h < HEADS; h++) for (let d = 0; d < hd; d++) out[(h * seq + s) * hd + d] = x[s * DIM + h * hd + d];
  return out;
}
const Q4 = toHeads(Q, 3);
const K4 = toHeads(K, 5);
const V4 = toHeads(V, 5);
const onnxRef = toHeads(Float32Array.from(attnRef), 3);
const onnxOn = (inputs: unknown, attributes: unknown = {}, options: unknown = {}) => onnxAttentionOn(ctx.module, inputs as never, attributes as never, options as never);
function goodOnnx(): void {
  const y = onnxOn(onnxInputs(Q4, K4, V4)).Y.data as Float32Array;
  expect(maxAbsDiff(y, onnxRef)).toBeLessThanOrEqual(1e-5);
}
function onnxRows(run: (inputs: unknown, attributes?: unknown, options?: unknown) => unknown): Row[] {
  return [
    { bad: 'inputs null', call: () => run(null), error: TypeError, arg: 'inputs' },
    { bad: 'inputs.Q missing', call: () => run({ K: onnxInputs().K, V: onnxInputs().V }), error: TypeError, arg: 'inputs.Q' },
    { bad: 'an unknown input', call: () => run({ ...onnxInputs(Q4, K4, V4), bias: onnxInputs().Q }), error: TypeError, arg: 'inputs.bias' },
    { bad: 'inputs.K.dims of rank 2', call: () => run({ ...onnxInputs(Q4, K4, V4), K: { data: K4, dims: [5, DIM] } }), error: RangeError, arg: 'inputs.K' },
    { bad: 'inputs.V.data one element short', call: () => run(onnxInputs(Q4, K4, V4.slice(1))), error: RangeError, arg: 'inputs.V.data' },
    { bad: 'inputs.Q.data NaN', call: () => run(onnxInputs(Object.assign(Q4.slice(), { 0: NaN }), K4, V4)), error: RangeError, arg: /inputs\.Q/ },
    { bad: 'inputs.K.data detached', call: () => { const d = K4.slice(); structuredClone(d.buffer, { transfer: [d.buffer] }); return run(onnxInputs(Q4, d, V4)); }, error: TypeError, arg: /inputs\.K/ },
    { bad: 'inputs.Q.data with a lying length', call: () => { const d = Q4.slice(); Object.defineProperty(d, 'length', { value: 1 }); return run(onnxInputs(d, K4, V4)); }, error: 'same-or-named', arg: /inputs\.Q/, expected: () => run(onnxInputs(Q4, K4, V4)) },
    { bad: 'inputs.Q.dims with a fractional size', call: () => run({ ...onnxInputs(Q4, K4, V4), Q: { data: Q4, dims: [1, HEADS, 1.5, DIM / HEADS] } }), error: RangeError, arg: /inputs\.Q/ },
    { bad: 'attributes a number', call: () => run(onnxInputs(Q4, K4, V4), 3), error: TypeError, arg: 'attributes' },
    { bad: 'an unknown attribute', call: () => run(onnxInputs(Q4, K4, V4), { heads: 2 }), error: TypeError, arg: 'attributes.heads' },
    { bad: 'attributes.scale NaN', call: () => run(onnxInputs(Q4, K4, V4), { scale: NaN }), error: RangeError, arg: 'attributes.scale' },
    { bad: 'attributes.softcap negative', call: () => run(onnxInputs(Q4, K4, V4), { softcap: -1 }), error: RangeError, arg: 'attributes.softcap' },
    { bad: 'attributes.q_num_heads fractional', call: () => run(onnxInputs(Q4, K4, V4), { q_num_heads: 1.5 }), error: RangeError, arg: 'attributes.q_num_heads' },
    { bad: 'options a number', call: () => run(onnxInputs(Q4, K4, V4), {}, 4), error: TypeError, arg: 'options' },
    { bad: 'options.outputs names an unknown output', call: () => run(onnxInputs(Q4, K4, V4), {}, { outputs: ['Z'] }), error: TypeError, arg: /options\.outputs/ },
  ];
}

// ------------------------------------------------------------------ the table
export const ATTENTION_TABLE: Table = {
  'new QEFlashAttention': {
    rows: [
      { bad: 'workload unknown', call: () => new QEFlashAttention('nope' as never), error: RangeError, arg: 'workload' },
      { bad: 'workload a number', call: () => new QEFlashAttention(3 as never), error: TypeError, arg: 'workload' },
      ...optionsRows('customConfig', (x) => new QEFlashAttention('test-similarity', x as never), true),
      { bad: 'customConfig.dim 0', call: () => new QEFlashAttention('test-similarity', { dim: 0 }), error: RangeError, arg: 'config.dim' },
      { bad: 'loadOptions a number', call: () => new QEFlashAttention('test-similarity', {}, 4 as never), error: TypeError, arg: 'loadOptions' },
    ],
    good: goodAttention,
  },
  createQEFlashAttention: {
    rows: [
      { bad: 'workload unknown', call: () => createQEFlashAttention('nope' as never), error: RangeError, arg: 'workload' },
      { bad: 'workload null', call: () => createQEFlashAttention(null as never), error: TypeError, arg: 'workload' },
      ...optionsRows('customConfig', (x) => createQEFlashAttention('test-similarity', x as never), true),
      { bad: 'customConfig.blocks null', call: () => createQEFlashAttention('test-similarity', { blocks: null } as never), error: TypeError, arg: 'customConfig.blocks' },
      { bad: 'customConfig.blocks.kvChunkSize 0', call: () => createQEFlashAttention('test-similarity', { blocks: { kvChunkSize: 0 } }), error: RangeError, arg: 'config.blocks.kvChunkSize' },
      { bad: 'customConfig.strategy unknown', call: () => createQEFlashAttention('test-similarity', { strategy: 'warp' } as never), error: RangeError, arg: 'config.strategy' },
      ...optionsRows('loadOptions', (x) => createQEFlashAttention('test-similarity', {}, x as never)),
      { bad: 'loadOptions.threads 0', call: () => createQEFlashAttention('test-similarity', {}, { threads: 0 }), error: RangeError, arg: 'loadOptions.threads' },
      { bad: 'loadOptions.threads 1.5', call: () => createQEFlashAttention('test-similarity', {}, { threads: 1.5 }), error: RangeError, arg: 'loadOptions.threads' },
      { bad: 'loadOptions.module unknown', call: () => createQEFlashAttention('test-similarity', {}, { module: 'gpu' } as never), error: RangeError, arg: 'loadOptions.module' },
      { bad: 'loadOptions.wasmBytes garbage', call: () => createQEFlashAttention('test-similarity', {}, { wasmBytes: new Uint8Array([1, 2, 3, 4]) } as never), error: TypeError, arg: 'loadOptions.wasmBytes' },
    ],
    good: goodAttention,
  },
  'QEFlashAttention#initialize': { rows: [disposedFa((fa) => fa.initialize())], good: goodAttention },
  'QEFlashAttention#computeFlashAttentionSync': {
    rows: [...attentionRows(attend), ...generalRows(attend), disposedFa((fa) => fa.computeFlashAttentionSync(Q, K, V, 3, DIM, { kvSeqLen: 5 }))],
    good: goodAttention,
  },
  'QEFlashAttention#computeFlashAttention': {
    rows: [...attentionRows(attendAsync), disposedFa((fa) => fa.computeFlashAttention(Q, K, V, 3, DIM, { kvSeqLen: 5 }))],
    good: async () => expect(maxAbsDiff(await attendAsync(Q, K, V), attnRef)).toBeLessThanOrEqual(1e-5),
  },
  'QEFlashAttention#computeBaselineAttention': {
    rows: [
      ...attentionRows(baseline),
      { bad: 'a general-kernel option', call: () => baseline(Q, K, V, 3, DIM, { kvSeqLen: 5, softcap: 1 }), error: RangeError, arg: /computeBaselineAttention.*softcap/ },
      disposedFa((fa) => fa.computeBaselineAttention(Q, K, V, 3, DIM, { kvSeqLen: 5 })),
    ],
    good: async () => expect(maxAbsDiff(await baseline(Q, K, V), attnRef)).toBeLessThanOrEqual(1e-5),
  },
  'QEFlashAttention#prepareAttention': {
    rows: [
      ...sizeRows('seqLen', (x) => ctx.fa.prepareAttention(x as number, DIM)),
      ...sizeRows('dim', (x) => ctx.fa.prepareAttention(3, x as number)),
      ...optionsRows('options', (x) => ctx.fa.prepareAttention(3, DIM, x as never), true),
      { bad: 'options.softcap (general kernel)', call: () => ctx.fa.prepareAttention(3, DIM, { softcap: 1 }), error: RangeError, arg: /prepareAttention.*softcap/ },
      disposedFa((fa) => fa.prepareAttention(3, DIM)),
    ],
    good: goodResident,
  },
  'ResidentAttention#run': {
    rows: [
      { bad: 'out a plain array', call: () => residentRun(new Array(3 * DIM).fill(0)), error: TypeError, arg: 'out' },
      { bad: 'out one element short', call: () => residentRun(new Float32Array(3 * DIM - 1)), error: RangeError, arg: 'out' },
      { bad: 'out with a lying length', call: () => residentRun(lying(new Float32Array(4), 3 * DIM)), error: RangeError, arg: 'out' },
      { bad: 'out detached', call: () => { const o = new Float32Array(3 * DIM); structuredClone(o.buffer, { transfer: [o.buffer] }); return residentRun(o); }, error: TypeError, arg: 'out' },
      { bad: 'Q holding NaN', call: () => { ctx.resident.Q.set(Q); ctx.resident.K.set(K); ctx.resident.V.set(V); ctx.resident.Q[5] = NaN; return residentRun(); }, error: RangeError, arg: 'Q[5]' },
      { bad: 'V holding Infinity', call: () => { ctx.resident.Q.set(Q); ctx.resident.K.set(K); ctx.resident.V.set(V); ctx.resident.V[79] = Infinity; return residentRun(); }, error: RangeError, arg: 'V[79]' },
      afterDispose(() => { const r = ctx.fa.prepareAttention(3, DIM, { kvSeqLen: 5 }); r.dispose(); return r.run(); }),
      afterDispose(async () => { const fa = await createQEFlashAttention('test-similarity', { dim: DIM, blocks: { headsPerBlock: HEADS } }, { threads: 1 }); const r = fa.prepareAttention(3, DIM); fa.dispose(); return r.Q; }),
    ],
    good: goodResident,
  },
  'QEFlashAttention#computeTestSimilaritySync': {
    rows: [
      ...floatArrayRows('testEmbedding', query, (x) => ctx.fa.computeTestSimilaritySync(x as Float32Array, corpus, 3)),
      ...floatArrayRows('corpusEmbeddings[2]', corpus[2], (x) => ctx.fa.computeTestSimilaritySync(query, [corpus[0], corpus[1], x as Float32Array], 3)),
      { bad: 'corpusEmbeddings null', call: () => ctx.fa.computeTestSimilaritySync(query, null as never, 3), error: TypeError, arg: 'corpusEmbeddings' },
      { bad: 'corpusEmbeddings a flat array not a multiple of the dim', call: () => ctx.fa.computeTestSimilaritySync(query, new Float32Array(DIM * 2 + 1), 3), error: RangeError, arg: 'corpusEmbeddings' },
      { bad: 'corpusEmbeddings { data, count } with count too large', call: () => ctx.fa.computeTestSimilaritySync(query, { data: new Float32Array(DIM * 2), count: 3 }, 3), error: RangeError, arg: /corpusEmbeddings/ },
      ...sizeRows('topK', (x) => ctx.fa.computeTestSimilaritySync(query, corpus, x as number), { huge: false }),
      disposedFa((fa) => fa.computeTestSimilaritySync(query, corpus, 3)),
    ],
    good: goodSimilarity,
  },
  'QEFlashAttention#computeTestSimilarity': {
    rows: [
      ...floatArrayRows('testEmbedding', query, (x) => ctx.fa.computeTestSimilarity(x as Float32Array, corpus, 3)).filter((r) => r.error !== 'same-or-named'),
      ...sizeRows('topK', (x) => ctx.fa.computeTestSimilarity(query, corpus, x as number), { huge: false }),
      disposedFa((fa) => fa.computeTestSimilarity(query, corpus, 3)),
    ],
    good: async () => expect((await ctx.fa.computeTestSimilarity(query, corpus, 3)).map((r) => r.index)).toEqual(topRef(query, corpus, 3)),
  },
  'QEFlashAttention#computeTestSimilarityBatch': {
    rows: [
      ...floatArrayRows('queries[1]', corpus[3], (x) => ctx.fa.computeTestSimilarityBatch([query, x as Float32Array], corpus, 2)),
      { bad: 'queries null', call: () => ctx.fa.computeTestSimilarityBatch(null as never, corpus, 2), error: TypeError, arg: 'queries' },
      { bad: 'queries empty', call: () => ctx.fa.computeTestSimilarityBatch([], corpus, 2), error: RangeError, arg: 'queries' },
      { bad: 'corpusEmbeddings[0] a string', call: () => ctx.fa.computeTestSimilarityBatch([query], ['x'] as never, 2), error: TypeError, arg: 'corpusEmbeddings[0]' },
      ...sizeRows('topK', (x) => ctx.fa.computeTestSimilarityBatch([query], corpus, x as number), { huge: false }),
      ...sizeRows('dim', (x) => ctx.fa.computeTestSimilarityBatch(new Float32Array(DIM * 2), corpus, 2, x as number)),
      disposedFa((fa) => fa.computeTestSimilarityBatch([query], corpus, 3)),
    ],
    good: () => expect(ctx.fa.computeTestSimilarityBatch([query, corpus[3]], corpus, 3).map((r) => r.map((x) => x.index))).toEqual([topRef(query, corpus, 3), topRef(corpus[3], corpus, 3)]),
  },
  'QEFlashAttention#matchDefectPatternSync': {
    rows: [
      ...floatArrayRows('defectEmbedding', query, (x) => ctx.fa.matchDefectPatternSync(x as Float32Array, corpus)),
      ...floatArrayRows('patternLibrary[1].embedding', corpus[1], (x) => ctx.fa.matchDefectPatternSync(query, [{ embedding: corpus[0] }, { embedding: x as Float32Array }])),
      { bad: 'patternLibrary null', call: () => ctx.fa.matchDefectPatternSync(query, null as never), error: TypeError, arg: 'patternLibrary' },
      { bad: 'patternLibrary[0] a number', call: () => ctx.fa.matchDefectPatternSync(query, [3] as never), error: TypeError, arg: 'patternLibrary[0]' },
      { bad: 'patternLibrary[1] of another length', call: () => ctx.fa.matchDefectPatternSync(query, [corpus[0], new Float32Array(DIM + 1)]), error: RangeError, arg: 'patternLibrary[1]' },
      ...optionsRows('options', (x) => ctx.fa.matchDefectPatternSync(query, corpus, x as never)),
      { bad: 'options.temperature 0', call: () => ctx.fa.matchDefectPatternSync(query, corpus, { temperature: 0 }), error: RangeError, arg: 'options.temperature' },
      { bad: 'options.temperature NaN', call: () => ctx.fa.matchDefectPatternSync(query, corpus, { temperature: NaN }), error: RangeError, arg: 'options.temperature' },
      { bad: 'options.temperature a string', call: () => ctx.fa.matchDefectPatternSync(query, corpus, { temperature: '1' } as never), error: TypeError, arg: 'options.temperature' },
      { bad: 'failure text against a list of embeddings', call: () => ctx.fa.matchDefectPatternSync('TypeError: x', corpus as never), error: TypeError, arg: 'patternLibrary' },
      disposedFa((fa) => fa.matchDefectPatternSync(query, corpus)),
    ],
    good: () => {
      const out = ctx.fa.matchDefectPatternSync(query, corpus);
      expect(out.map((m) => m.index)).toEqual(topRef(query, corpus, corpus.length));
      expect(out.reduce((s, m) => s + m.probability, 0)).toBeCloseTo(1, 5);
    },
  },
  'QEFlashAttention#matchDefectPattern': {
    rows: [
      { bad: 'defectEmbedding NaN', call: () => ctx.fa.matchDefectPattern(Object.assign(query.slice(), { 2: NaN }), corpus), error: RangeError, arg: 'defectEmbedding[2]' },
      { bad: 'patternLibrary a number', call: () => ctx.fa.matchDefectPattern(query, 7 as never), error: TypeError, arg: 'patternLibrary' },
      ...optionsRows('options', (x) => ctx.fa.matchDefectPattern(query, corpus, x as never)),
      disposedFa((fa) => fa.matchDefectPattern(query, corpus)),
    ],
    good: async () => expect((await ctx.fa.matchDefectPattern(query, corpus)).map((m) => m.index)).toEqual(topRef(query, corpus, corpus.length)),
  },
  'QEFlashAttention#generateCodeEmbeddingSync': {
    rows: [
      ...floatArrayRows('codeTokens', tokens, (x) => ctx.fa.generateCodeEmbeddingSync(x as Float32Array)).filter((r) => !/string|one element short/.test(r.bad)),
      { bad: 'codeTokens not a multiple of dim', call: () => ctx.fa.generateCodeEmbeddingSync(tokens.slice(1)), error: RangeError, arg: 'codeTokens' },
      { bad: 'codeTokens a number', call: () => ctx.fa.generateCodeEmbeddingSync(5 as never), error: TypeError, arg: 'code' },
      ...floatArrayRows('positionEmbeddings', uniform(4 * DIM, 61), (x) => ctx.fa.generateCodeEmbeddingSync(tokens, x as Float32Array), { nullable: true }).filter((r) => !/string/.test(r.bad)),
      { bad: 'positionEmbeddings with source text', call: () => ctx.fa.generateCodeEmbeddingSync('const x = 1;', uniform(4 * DIM, 61)), error: TypeError, arg: 'positionEmbeddings' },
      disposedFa((fa) => fa.generateCodeEmbeddingSync(tokens)),
    ],
    good: () => {
      const e = ctx.fa.generateCodeEmbeddingSync(tokens);
      expect(e).toHaveLength(DIM);
      expect(Math.hypot(...e)).toBeCloseTo(1, 5);
      expect(ctx.fa.generateCodeEmbeddingSync(tokens)).toEqual(e);
      expect(ctx.fa.generateCodeEmbeddingSync('const x = 1;')).toEqual(ctx.fa.generateCodeEmbeddingSync('const x = 1;'));
    },
  },
  'QEFlashAttention#generateCodeEmbedding': {
    rows: [
      { bad: 'codeTokens holding NaN', call: () => ctx.fa.generateCodeEmbedding(Object.assign(tokens.slice(), { 3: NaN })), error: RangeError, arg: 'codeTokens[3]' },
      { bad: 'code null', call: () => ctx.fa.generateCodeEmbedding(null as never), error: TypeError, arg: /code/ },
      disposedFa((fa) => fa.generateCodeEmbedding('x')),
    ],
    good: async () => expect(await ctx.fa.generateCodeEmbedding(tokens)).toEqual(ctx.fa.generateCodeEmbeddingSync(tokens)),
  },
  'QEFlashAttention#createSimilarityIndex': {
    rows: [...sizeRows('dim', (x) => ctx.fa.createSimilarityIndex(x as number)), disposedFa((fa) => fa.createSimilarityIndex(DIM))],
    good: () => {
      const index = ctx.fa.createSimilarityIndex(DIM);
      const ids = index.add(corpus);
      expect(index.search(query, 3).map((r) => r.id)).toEqual(topRef(query, corpus, 3).map((i) => ids[i]));
      index.dispose();
    },
  },
  'QEFlashAttention#createCodeIndex': {
    rows: [
      ...optionsRows('options', (x) => ctx.fa.createCodeIndex(x as never), true),
      { bad: 'options.kind unknown', call: () => ctx.fa.createCodeIndex({ kind: 'prose' } as never), error: RangeError, arg: 'options.kind' },
      ...sizeRows('options.dim', (x) => ctx.fa.createCodeIndex({ dim: x as number })),
      disposedFa((fa) => fa.createCodeIndex()),
    ],
    good: () => {
      const index = ctx.fa.createCodeIndex({ dim: 64 });
      index.add('a', 'function add(a, b) { return a + b; }');
      index.add('b', 'class Parser { parse(text) { return text.split(","); } }');
      expect(index.search('function add(x, y) { return x + y; }', 1)[0].id).toBe('a');
      index.dispose();
    },
  },
  'QEFlashAttention#createHNSWIndex': {
    rows: [
      ...optionsRows('options', (x) => ctx.fa.createHNSWIndex(x as never), true),
      ...sizeRows('options.dimensions', (x) => ctx.fa.createHNSWIndex({ dimensions: x as number })),
      ...sizeRows('options.M', (x) => ctx.fa.createHNSWIndex({ M: x as number })),
      disposedFa((fa) => fa.createHNSWIndex()),
    ],
    good: () => {
      const h = ctx.fa.createHNSWIndex({ dimensions: DIM });
      corpus.forEach((v, i) => h.insert(i, v));
      expect(h.search(query, 3).map((r) => r.key)).toEqual(topRef(query, corpus, 3));
      h.dispose();
    },
  },
  'QEFlashAttention#getCoverageIndex': { rows: [disposedFa((fa) => fa.getCoverageIndex())], good: () => expect(ctx.fa.getCoverageIndex().dimensions()).toBe(DIM) },
  'QEFlashAttention#searchCoverage': {
    rows: [
      { bad: 'query a string', call: () => ctx.fa.searchCoverage('q' as never, 2), error: TypeError, arg: 'query' },
      { bad: 'query one element short', call: () => ctx.fa.searchCoverage(query.slice(1), 2), error: RangeError, arg: 'query' },
      { bad: 'query[4] NaN', call: () => ctx.fa.searchCoverage(Object.assign(query.slice(), { 4: NaN }), 2), error: RangeError, arg: 'query[4]' },
      ...sizeRows('k', (x) => ctx.fa.searchCoverage(query, x as number), { huge: false }),
      ...optionsRows('options', (x) => ctx.fa.searchCoverage(query, 2, x as never), true),
      disposedFa((fa) => fa.searchCoverage(query, 2)),
    ],
    good: () => {
      const index = ctx.fa.getCoverageIndex();
      if (index.size() === 0) corpus.forEach((v, i) => index.insert(i, v));
      expect(ctx.fa.searchCoverage(query, 3).map((r) => r.key)).toEqual(topRef(query, corpus, 3));
    },
  },
  'QEFlashAttention#getMetrics': { rows: [disposedFa((fa) => fa.getMetrics())], good: () => expect(Array.isArray(ctx.fa.getMetrics())).toBe(true) },
  'QEFlashAttention#getAverageSpeedup': { rows: [disposedFa((fa) => fa.getAverageSpeedup())], good: goodAttention },
  'QEFlashAttention#getConfig': { rows: [disposedFa((fa) => fa.getConfig())], good: () => expect(ctx.fa.getConfig().dim).toBe(DIM) },
  'QEFlashAttention#updateConfig': {
    rows: [
      ...optionsRows('partial', (x) => ctx.fa.updateConfig(x as never), true),
      { bad: 'partial.dim 0', call: () => ctx.fa.updateConfig({ dim: 0 }), error: RangeError, arg: 'config.dim' },
      { bad: 'partial.blocks.headsPerBlock not dividing dim', call: () => ctx.fa.updateConfig({ blocks: { headsPerBlock: 3 } }), error: RangeError, arg: 'config.blocks.headsPerBlock' },
      { bad: 'partial.dropoutRate 2', call: () => ctx.fa.updateConfig({ dropoutRate: 2 }), error: RangeError, arg: 'config.dropoutRate' },
      disposedFa((fa) => fa.updateConfig({ dim: DIM })),
    ],
    good: () => {
      expect(ctx.fa.getConfig().dim).toBe(DIM);
      goodAttention();
    },
  },
  'QEFlashAttention#changeStrategy': {
    rows: [
      { bad: 'strategy unknown', call: () => ctx.fa.changeStrategy('warp' as never), error: RangeError, arg: /strategy/ },
      { bad: 'strategy a number', call: () => ctx.fa.changeStrategy(1 as never), error: RangeError, arg: /strategy/ },
      disposedFa((fa) => fa.changeStrategy('flash' as never)),
    ],
    good: goodAttention,
  },
  'QEFlashAttention#resetMetrics': { rows: [disposedFa((fa) => fa.resetMetrics())], good: goodAttention },
  'QEFlashAttention#getWorkload': { rows: [disposedFa((fa) => fa.getWorkload())], good: () => expect(ctx.fa.getWorkload()).toBe('test-similarity') },
  'QEFlashAttention#getThreads': { rows: [disposedFa((fa) => fa.getThreads())], good: () => expect(ctx.fa.getThreads()).toBe(1) },
  'QEFlashAttention#dispose': {
    rows: [disposedFa(async (fa) => { fa.dispose(); return fa.computeFlashAttentionSync(Q, K, V, 3, DIM, { kvSeqLen: 5 }); })],
    good: goodAttention,
  },

  // ---------------------------------------------------------------- config functions
  getQEFlashAttentionConfig: {
    rows: [
      { bad: 'workload unknown', call: () => getQEFlashAttentionConfig('nope' as never), error: RangeError, arg: 'workload' },
      { bad: 'workload a number', call: () => getQEFlashAttentionConfig(1 as never), error: TypeError, arg: 'workload' },
      ...optionsRows('custom', (x) => getQEFlashAttentionConfig('test-similarity', x as never), true),
    ],
    good: () => expect(getQEFlashAttentionConfig('test-similarity', { dim: 32 }).dim).toBe(32),
  },
  getOptimalBlockConfig: {
    rows: sizeRows('seqLen', (x) => getOptimalBlockConfig(x as number)),
    good: () => expect(getOptimalBlockConfig(100)).toEqual(getOptimalBlockConfig(128)),
  },

  // ---------------------------------------------------------------- backend
  'new WASMSIMDBackend': {
    rows: [
      { bad: 'source a number', call: () => new WASMSIMDBackend(3 as never), error: TypeError, arg: /source|options/ },
      { bad: 'source.module unknown', call: async () => { const b = new WASMSIMDBackend({ module: 'gpu' } as never); await b.initialize(); }, error: RangeError, arg: /module/ },
    ],
    good: goodMatmul,
  },
  getWASMSIMDBackend: {
    rows: [
      { bad: 'options a number', call: () => getWASMSIMDBackend(3 as never), error: TypeError, arg: 'options' },
      { bad: 'options.threads -1', call: () => getWASMSIMDBackend({ threads: -1 }), error: RangeError, arg: 'options.threads' },
    ],
    good: goodMatmul,
  },
  'WASMSIMDBackend#initialize': { rows: [afterDispose(async () => (await disposedBackend()).initialize())], good: goodMatmul },
  'WASMSIMDBackend#dispose': { rows: [afterDispose(async () => { const b = await disposedBackend(); b.dispose(); return b.matmulSIMD(ma, mb, 3, 2, 4); })], good: goodMatmul },
  'WASMSIMDBackend#getCapabilities': { rows: [afterDispose(async () => (await disposedBackend()).getCapabilities())], good: () => expect(ctx.backend.getCapabilities().vectorOps.length > 0).toBe(ctx.backend.isSIMDAvailable()) },
  'WASMSIMDBackend#isSIMDAvailable': { rows: [afterDispose(async () => (await disposedBackend()).isSIMDAvailable())], good: goodMatmul },
  'WASMSIMDBackend#matmulSIMD': {
    rows: [
      ...floatArrayRows('a', ma, (x) => matmul(x, mb)),
      ...floatArrayRows('b', mb, (x) => matmul(ma, x)),
      ...sizeRows('m', (x) => matmul(ma, mb, x)),
      ...sizeRows('n', (x) => matmul(ma, mb, 3, x)),
      ...sizeRows('k', (x) => matmul(ma, mb, 3, 2, x)),
      afterDispose(async () => (await disposedBackend()).matmulSIMD(ma, mb, 3, 2, 4)),
    ],
    good: goodMatmul,
  },
  'WASMSIMDBackend#vecAddSIMD': {
    rows: [
      ...floatArrayRows('a', ma, (x) => ctx.backend.vecAddSIMD(x as Float32Array, ma)).filter((r) => !/short/.test(r.bad)),
      ...floatArrayRows('b', ma, (x) => ctx.backend.vecAddSIMD(ma, x as Float32Array)),
      afterDispose(async () => (await disposedBackend()).vecAddSIMD(ma, ma)),
    ],
    good: () => expect(maxAbsDiff(ctx.backend.vecAddSIMD(ma, ma.slice().reverse()), referenceVecAdd(ma, ma.slice().reverse()))).toBeLessThan(1e-6),
  },
  'WASMSIMDBackend#embeddingLookupSIMD': {
    rows: [
      { bad: 'ids a string', call: () => ctx.backend.embeddingLookupSIMD('1' as never, table, 5), error: TypeError, arg: 'ids' },
      { bad: 'ids[1] out of the table', call: () => ctx.backend.embeddingLookupSIMD([0, 7], table, 5), error: RangeError, arg: 'ids[1]' },
      { bad: 'ids[0] negative', call: () => ctx.backend.embeddingLookupSIMD(new Int32Array([-1]), table, 5), error: RangeError, arg: 'ids[0]' },
      { bad: 'ids[0] fractional', call: () => ctx.backend.embeddingLookupSIMD([0.5], table, 5), error: RangeError, arg: 'ids[0]' },
      { bad: 'ids[0] NaN', call: () => ctx.backend.embeddingLookupSIMD([NaN], table, 5), error: RangeError, arg: 'ids[0]' },
      { bad: 'ids[0] a string', call: () => ctx.backend.embeddingLookupSIMD(['0'] as never, table, 5), error: TypeError, arg: 'ids[0]' },
      { bad: 'ids an Int32Array detached', call: () => { const ids = new Int32Array([1, 2]); structuredClone(ids.buffer, { transfer: [ids.buffer] }); return ctx.backend.embeddingLookupSIMD(ids, table, 5); }, error: TypeError, arg: 'ids' },
      { bad: 'ids an Int32Array with a lying length', call: () => { const ids = new Int32Array([1, 2, 7000]); Object.defineProperty(ids, 'length', { value: 2 }); return ctx.backend.embeddingLookupSIMD(ids, table, 5); }, error: RangeError, arg: 'ids[2]' },
      ...floatArrayRows('table', table, (x) => ctx.backend.embeddingLookupSIMD([1, 6], x as Float32Array, 5)).filter((r) => !/short/.test(r.bad)),
      { bad: 'table not a multiple of dim', call: () => ctx.backend.embeddingLookupSIMD([1], table.slice(1), 5), error: RangeError, arg: 'table' },
      ...sizeRows('dim', (x) => ctx.backend.embeddingLookupSIMD([1], table, x as number)),
      afterDispose(async () => (await disposedBackend()).embeddingLookupSIMD([1], table, 5)),
    ],
    good: () => expect(maxAbsDiff(ctx.backend.embeddingLookupSIMD([1, 6, 1], table, 5), referenceEmbeddingLookup([1, 6, 1], table, 5))).toBe(0),
  },
  'WASMSIMDBackend#softmaxSIMD': {
    rows: [
      ...floatArrayRows('x', rowx, (x) => ctx.backend.softmaxSIMD(x as Float32Array, 11)).filter((r) => !/short/.test(r.bad)),
      { bad: 'x not a multiple of rowLength', call: () => ctx.backend.softmaxSIMD(rowx.slice(1), 11), error: RangeError, arg: 'x' },
      ...sizeRows('rowLength', (x) => ctx.backend.softmaxSIMD(rowx, x as number)),
      afterDispose(async () => (await disposedBackend()).softmaxSIMD(rowx)),
    ],
    good: () => expect(maxAbsDiff(ctx.backend.softmaxSIMD(rowx, 11), referenceSoftmax(rowx, 11))).toBeLessThan(1e-6),
  },
  'WASMSIMDBackend#layerNormSIMD': {
    rows: [
      ...floatArrayRows('x', rowx, (x) => ctx.backend.layerNormSIMD(x as Float32Array, gamma, beta)).filter((r) => !/short/.test(r.bad)),
      { bad: 'x not a multiple of gamma.length', call: () => ctx.backend.layerNormSIMD(rowx.slice(1), gamma, beta), error: RangeError, arg: 'x' },
      ...floatArrayRows('gamma', gamma, (x) => ctx.backend.layerNormSIMD(rowx, x as Float32Array, beta)).filter((r) => !/short/.test(r.bad)),
      ...floatArrayRows('beta', beta, (x) => ctx.backend.layerNormSIMD(rowx, gamma, x as Float32Array)),
      { bad: 'eps 0', call: () => ctx.backend.layerNormSIMD(rowx, gamma, beta, 0), error: RangeError, arg: 'eps' },
      { bad: 'eps negative', call: () => ctx.backend.layerNormSIMD(rowx, gamma, beta, -1e-5), error: RangeError, arg: 'eps' },
      { bad: 'eps NaN', call: () => ctx.backend.layerNormSIMD(rowx, gamma, beta, NaN), error: RangeError, arg: 'eps' },
      { bad: 'eps a string', call: () => ctx.backend.layerNormSIMD(rowx, gamma, beta, '1e-5' as never), error: TypeError, arg: 'eps' },
      afterDispose(async () => (await disposedBackend()).layerNormSIMD(rowx, gamma, beta)),
    ],
    good: () => expect(maxAbsDiff(ctx.backend.layerNormSIMD(rowx, gamma, beta, 1e-5), referenceLayerNorm(rowx, gamma, beta, 1e-5))).toBeLessThan(1e-5),
  },
  'WASMSIMDBackend#benchmarkOperation': {
    rows: [
      { bad: 'op unknown', call: () => ctx.backend.benchmarkOperation('fft' as never, 1), error: RangeError, arg: 'op' },
      { bad: 'op a number', call: () => ctx.backend.benchmarkOperation(3 as never, 1), error: TypeError, arg: 'op' },
      ...sizeRows('iterations', (x) => ctx.backend.benchmarkOperation(() => 1, x as number)),
      ...optionsRows('options', (x) => ctx.backend.benchmarkOperation(() => 1, 1, x as never)),
      { bad: 'options.warmup -1', call: () => ctx.backend.benchmarkOperation(() => 1, 1, { warmup: -1 }), error: RangeError, arg: 'options.warmup' },
      afterDispose(async () => (await disposedBackend()).benchmarkOperation(() => 1, 1)),
    ],
    good: async () => {
      let calls = 0;
      const r = await ctx.backend.benchmarkOperation(() => calls++, 4, { warmup: 2 });
      expect([r.iterations, r.warmupIterations, calls]).toEqual([4, 2, 6]);
    },
  },

  // ---------------------------------------------------------------- ONNX
  onnxAttentionOn: {
    rows: [
      { bad: 'module not a module', call: () => onnxAttentionOn({} as never, onnxInputs(Q4, K4, V4) as never), error: TypeError, arg: 'module' },
      ...onnxRows(onnxOn),
    ],
    good: goodOnnx,
  },
  onnxAttention: {
    rows: [
      ...onnxRows((i, a, o) => onnxAttention(i as never, a as never, { ...(typeof o === 'object' && o !== null ? o : {}), module: { threads: 1 } } as never)).filter((r) => !/^options/.test(r.bad)),
      ...optionsRows('options', (x) => onnxAttention(onnxInputs(Q4, K4, V4) as never, {}, x as never)),
      { bad: 'options.module a number', call: () => onnxAttention(onnxInputs(Q4, K4, V4) as never, {}, { module: 3 } as never), error: TypeError, arg: 'options.module' },
    ],
    good: async () => expect(maxAbsDiff((await onnxAttention(onnxInputs(Q4, K4, V4) as never, {}, { module: { threads: 1 } })).Y.data as Float32Array, onnxRef)).toBeLessThanOrEqual(1e-5),
  },

  // ---------------------------------------------------------------- text
  tokenizeCode: {
    rows: [
      ...stringRows('source', (x) => tokenizeCode(x as string)),
      ...optionsRows('options', (x) => tokenizeCode('x', x as never), true),
      { bad: 'options null', call: () => tokenizeCode('x', null as never), error: TypeError, arg: 'options' },
      { bad: 'options.language unknown', call: () => tokenizeCode('x', { language: 'cobol' } as never), error: RangeError, arg: 'options.language' },
      ...sizeRows('options.maxTokens', (x) => tokenizeCode('x', { maxTokens: x } as never), { huge: false }),
    ],
    good: () => expect(tokenizeCode('const x = 1;', { language: 'javascript' }).map((t) => t.text)).toEqual(['const', 'x', '=', '<num>', ';']),
  },
  splitIdentifier: {
    rows: stringRows('name', (x) => splitIdentifier(x as string)),
    good: () => expect(splitIdentifier('parseHTTPResponse_v2')).toEqual(['parse', 'http', 'response', 'v', '2']),
  },
  tokenizeTrace: {
    rows: stringRows('text', (x) => tokenizeTrace(x as string)),
    good: () => expect(tokenizeTrace('TypeError: x is undefined').length).toBeGreaterThan(0),
  },
  codeFeatures: {
    rows: [
      ...stringRows('source', (x) => codeFeatures(x as string)),
      { bad: 'language unknown', call: () => codeFeatures('x', 'cobol' as never), error: RangeError, arg: 'language' },
    ],
    good: () => expect(codeFeatures('function f(a) { return a; }', 'javascript')).toEqual(codeFeatures('function f(a) { return a; }', 'javascript')),
  },
  failureFeatures: {
    rows: stringRows('text', (x) => failureFeatures(x as string)),
    good: () => expect(failureFeatures('TypeError: x').hashes.length).toBeGreaterThan(0),
  },

  // ---------------------------------------------------------------- benchmark
  'new FlashAttentionBenchmark': {
    rows: [
      ...optionsRows('options', (x) => new FlashAttentionBenchmark(x as never), true),
      { bad: 'options.threadCounts [0]', call: () => new FlashAttentionBenchmark({ threadCounts: [0] }), error: RangeError, arg: 'options.threadCounts[0]' },
      { bad: 'options.peers a number', call: () => new FlashAttentionBenchmark({ peers: 3 } as never), error: TypeError, arg: 'options.peers' },
      { bad: 'options.measure.maxRuns 0', call: () => new FlashAttentionBenchmark({ measure: { maxRuns: 0 } }), error: RangeError, arg: 'options.measure.maxRuns' },
    ],
    good: () => expect(new FlashAttentionBenchmark({ threadCounts: [1] }).getRows()).toEqual([]),
  },
  'FlashAttentionBenchmark#benchmarkWorkload': {
    rows: [
      { bad: 'workload unknown', call: () => new FlashAttentionBenchmark(QUICK).benchmarkWorkload('nope' as never), error: RangeError, arg: 'workload' },
      { bad: 'workload a number', call: () => new FlashAttentionBenchmark(QUICK).benchmarkWorkload(3 as never), error: TypeError, arg: 'workload' },
    ],
    good: () => expect(new FlashAttentionBenchmark().getResults().size).toBe(0),
  },
  'FlashAttentionBenchmark#benchmarkWorkloadRows': {
    rows: [{ bad: 'workload unknown', call: () => new FlashAttentionBenchmark(QUICK).benchmarkWorkloadRows('nope' as never), error: RangeError, arg: 'workload' }],
    good: () => expect(new FlashAttentionBenchmark().getRows()).toEqual([]),
  },
  'FlashAttentionBenchmark#printBenchmarkResult': {
    rows: [
      { bad: 'result null', call: () => new FlashAttentionBenchmark({ log: () => {} }).printBenchmarkResult(null as never), error: TypeError, arg: 'result' },
      { bad: 'result a string', call: () => new FlashAttentionBenchmark({ log: () => {} }).printBenchmarkResult('x' as never), error: TypeError, arg: 'result' },
    ],
    good: () => expect(new FlashAttentionBenchmark().getRows()).toEqual([]),
  },
  'FlashAttentionBenchmark#exportResultsToFile': {
    rows: [
      ...stringRows('path', (x) => new FlashAttentionBenchmark().exportResultsToFile(x as string)),
      { bad: 'path empty', call: () => new FlashAttentionBenchmark().exportResultsToFile(''), error: TypeError, arg: 'path' },
    ],
    good: () => expect(JSON.parse(new FlashAttentionBenchmark().exportResultsJSON())).toBeTruthy(),
  },
  'FlashAttentionBenchmark#exportResultsMarkdown': {
    rows: [{ bad: 'path a number', call: () => new FlashAttentionBenchmark().exportResultsMarkdown(3 as never), error: TypeError, arg: 'path' }],
    good: async () => expect(typeof (await new FlashAttentionBenchmark().exportResultsMarkdown())).toBe('string'),
  },
  benchmarkWorkload: {
    rows: [
      { bad: 'workload unknown', call: () => benchmarkWorkload('nope' as never, QUICK), error: RangeError, arg: 'workload' },
      ...optionsRows('options', (x) => benchmarkWorkload('test-similarity', (typeof x === 'object' ? { ...QUICK, ...x } : x) as never), true),
    ],
    good: () => expect(new FlashAttentionBenchmark().getRows()).toEqual([]),
  },
  runFlashAttentionBenchmarks: {
    rows: optionsRows('options', (x) => runFlashAttentionBenchmarks((typeof x === 'object' ? { ...QUICK, ...x } : x) as never), true),
    good: () => expect(new FlashAttentionBenchmark().getRows()).toEqual([]),
  },
  formatMarkdown: {
    rows: [
      { bad: 'results a string', call: () => formatMarkdown('x' as never, {} as never), error: TypeError, arg: 'results' },
      { bad: 'results[0] null', call: () => formatMarkdown([null] as never, {} as never), error: TypeError, arg: 'results[0]' },
      { bad: 'machine null', call: () => formatMarkdown([], null as never), error: TypeError, arg: 'machine' },
    ],
    good: () => expect(formatMarkdown([], new FlashAttentionBenchmark().getMachine())).toMatch(/^Machine: /),
  },
};

/** Entries with no argument, and why they need no bad-input row beyond a call after dispose (given in the table where it exists). */
export const ATTENTION_NO_ARGS: NoArgs = {
  getWorkloadTypes: 'takes no arguments and touches no module; returns a fresh list',
  threadsAvailable: 'takes no arguments; a pure probe of the engine',
  terminateThreadPools: 'takes no arguments; stops every pool (test/threads.test.ts calls instances after it)',
  'WASMSIMDBackend#isInitialized': 'takes no arguments; true/false before and after dispose by design (it is how getWASMSIMDBackend replaces a disposed backend)',
  'ResidentAttention#dispose': 'takes no arguments; disposing twice is a no-op (a call after it is the run row)',
  'FlashAttentionBenchmark#runFullSuite': 'takes no arguments; its options are the constructor\'s, which have rows',
  'FlashAttentionBenchmark#benchmarkLongSequence': 'takes no arguments; its options are the constructor\'s',
  'FlashAttentionBenchmark#getResults': 'takes no arguments; returns a copy',
  'FlashAttentionBenchmark#getRows': 'takes no arguments; returns a copy',
  'FlashAttentionBenchmark#reset': 'takes no arguments',
  'FlashAttentionBenchmark#getMachine': 'takes no arguments',
  'FlashAttentionBenchmark#exportResultsJSON': 'takes no arguments',
  'FlashAttentionBenchmark#crossChecksPassed': 'takes no arguments',
};

function lying(a: Float32Array, claimed: number): Float32Array {
  Object.defineProperty(a, 'length', { value: claimed });
  return a;
}
