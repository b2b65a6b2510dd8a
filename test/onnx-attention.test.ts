/**
 * onnxAttention against ONNX's own Attention test cases (opsets 23-25):
 * test/fixtures/onnx-attention.json holds every case of
 * onnx/backend/test/case/node/attention.py with the outputs of ONNX's
 * reference implementation (scripts/gen-onnx-attention-fixtures.py wrote
 * it; the onnx commit is inside). Tolerance is ONNX's own: rtol 1e-3,
 * atol 1e-7. Then bad calls, and onnxAttention against computeFlashAttention.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ModuleKind } from '../types';
import {
  float16ToFloat32,
  float32ToFloat16,
  onnxAttention,
  onnxAttentionOn,
  type OnnxAttentionInputs,
  type OnnxAttentionOutputName,
  type OnnxTensorLike,
} from '../js/onnx-attention';
import type { QEModule } from '../js/module';
import { createOn, expectThrow, loadModule, MODULE_KINDS } from './helpers';
import { maxAbsDiff, referenceOnnxAttention, rng, uniform, type OnnxReferenceCase } from './reference';

interface FixtureTensor {
  type: 'float32' | 'float16' | 'float64' | 'int64' | 'int32' | 'bool';
  dims: number[];
  data: string;
}
interface FixtureCase {
  name: string;
  opset: number;
  attributes: Record<string, number>;
  inputs: Record<string, FixtureTensor>;
  outputs: Record<string, FixtureTensor>;
}
const FIXTURES = JSON.parse(readFileSync(join(__dirname, 'fixtures', 'onnx-attention.json'), 'utf8')) as {
  onnx_commit: string;
  cases: FixtureCase[];
};

const RTOL = 1e-3;
const ATOL = 1e-7;

function decode(t: FixtureTensor): OnnxTensorLike {
  const bytes = Buffer.from(t.data, 'base64');
  const buf = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  switch (t.type) {
    case 'float32':
      return { data: new Float32Array(buf), dims: t.dims, type: 'float32' };
    case 'float16':
      return { data: new Uint16Array(buf), dims: t.dims, type: 'float16' };
    case 'bool':
      return { data: new Uint8Array(buf), dims: t.dims, type: 'bool' };
    case 'int64':
      return { data: new BigInt64Array(buf), dims: t.dims, type: 'int64' };
    case 'int32':
      return { data: new Int32Array(buf), dims: t.dims, type: 'int32' };
    default:
      throw new Error(`fixture tensor of type ${t.type}`);
  }
}

function asFloats(t: { data: unknown; type?: string }): Float32Array {
  return t.type === 'float16' ? float16ToFloat32(t.data as Uint16Array) : (t.data as Float32Array);
}

/** The first element outside |got - want| <= atol + rtol |want| (NaN never passes), or null. */
function mismatch(got: Float32Array, want: Float32Array): string | null {
  if (got.length !== want.length) return `length ${got.length} vs ${want.length}`;
  for (let i = 0; i < want.length; i++) {
    const ok = got[i] === want[i] || Math.abs(got[i] - want[i]) <= ATOL + RTOL * Math.abs(want[i]);
    if (!ok) return `element ${i}: got ${got[i]}, want ${want[i]}`;
  }
  return null;
}

function runCase(module: QEModule, c: FixtureCase): string | null {
  const inputs = Object.fromEntries(Object.entries(c.inputs).map(([k, t]) => [k, decode(t)])) as unknown as OnnxAttentionInputs;
  const outputs = Object.keys(c.outputs) as OnnxAttentionOutputName[];
  const got = onnxAttentionOn(module, inputs, c.attributes, { outputs });
  for (const name of outputs) {
    const out = got[name];
    if (!out) return `${name} missing`;
    const want = c.outputs[name];
    if (out.dims.join() !== want.dims.join()) return `${name} dims [${out.dims}] vs [${want.dims}]`;
    const bad = mismatch(asFloats(out), asFloats(decode(want) as { data: unknown; type?: string }));
    if (bad) return `${name} ${bad}`;
  }
  return null;
}

const fp32 = FIXTURES.cases.filter((c) => c.inputs.Q.type === 'float32');
const fp16 = FIXTURES.cases.filter((c) => c.inputs.Q.type === 'float16');

describe('ONNX Attention conformance (onnx ' + FIXTURES.onnx_commit.slice(0, 12) + ')', () => {
  it('covers every case of the test file, opsets 23 to 25', () => {
    expect(FIXTURES.cases.length).toBe(87);
    expect(new Set(FIXTURES.cases.map((c) => c.opset))).toEqual(new Set([23, 24, 25]));
    expect(fp32.length).toBe(82);
    expect(fp16.length).toBe(5);
  });

  it.each(MODULE_KINDS as ModuleKind[])('every fp32 case passes on the %s build', async (kind) => {
    const module = await loadModule(kind);
    const failures: string[] = [];
    for (const c of fp32) {
      const why = runCase(module, c);
      if (why) failures.push(`${c.name}: ${why}`);
    }
    // eslint-disable-next-line no-console
    console.log(`ONNX Attention conformance (${kind}): ${fp32.length - failures.length}/${fp32.length}`);
    expect(failures).toEqual([]);
  });

  it.each(MODULE_KINDS as ModuleKind[])('every fp16 case passes on the %s build (computed in fp32)', async (kind) => {
    const module = await loadModule(kind);
    const failures: string[] = [];
    for (const c of fp16) {
      const why = runCase(module, c);
      if (why) failures.push(`${c.name}: ${why}`);
    }
    // eslint-disable-next-line no-console
    console.log(`ONNX Attention conformance, fp16 (${kind}): ${fp16.length - failures.length}/${fp16.length}`);
    expect(failures).toEqual([]);
  });
});

describe('the fixture check itself', () => {
  it('rejects an output off by more than the tolerance', async () => {
    const module = await loadModule('simd');
    const c = JSON.parse(JSON.stringify(fp32[0])) as FixtureCase;
    const y = decode(c.outputs.Y).data as Float32Array;
    y[3] *= 1.01;
    c.outputs.Y.data = Buffer.from(y.buffer).toString('base64');
    expect(runCase(module, c)).toMatch(/Y element 3/);
    expect(runCase(module, fp32[0])).toBeNull();
  });
});

/** [b][h][from..to) rows of a [batch, heads, len, size] tensor. */
function rows4(x: Float32Array, batch: number, heads: number, len: number, size: number, from: number, to: number): Float32Array {
  const out = new Float32Array(batch * heads * (to - from) * size);
  for (let bh = 0; bh < batch * heads; bh++) out.set(x.subarray((bh * len + from) * size, (bh * len + to) * size), bh * (to - from) * size);
  return out;
}

/** [batch, heads, len, size] to [batch, len, heads * size]. */
function to3d(x: Float32Array, batch: number, heads: number, len: number, size: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let b = 0; b < batch; b++)
    for (let h = 0; h < heads; h++)
      for (let i = 0; i < len; i++)
        for (let p = 0; p < size; p++) out[((b * len + i) * heads + h) * size + p] = x[((b * heads + h) * len + i) * size + p];
  return out;
}

interface RandomCase {
  batch: number; qHeads: number; kvHeads: number; qLen: number; past: number; kvLen: number;
  headSize: number; vHeadSize: number; causal?: boolean; windowLeft?: number; windowRight?: number;
  softcap?: number; scale?: number; layout?: 3 | 4;
  /** Mask dims (rank 1-4) and kind; its values are random. */
  mask?: { dims: number[]; kind: 'bool' | 'additive' };
  nonpad?: number[];
  blockQ?: number; blockK?: number;
}

/** onnxAttention's Y and the float64 reference's, for a random case. */
function compareRandom(module: QEModule, r: RandomCase, seed: number): { got: Float32Array; want: Float64Array } {
  const keys = r.past + r.kvLen;
  const Q = uniform(r.batch * r.qHeads * r.qLen * r.headSize, seed, -2, 2);
  const K = uniform(r.batch * r.kvHeads * keys * r.headSize, seed + 1, -2, 2);
  const V = uniform(r.batch * r.kvHeads * keys * r.vHeadSize, seed + 2, -1, 1);
  const layout = r.layout ?? 4;
  const inputs: Record<string, OnnxTensorLike> = {};
  const kNew = rows4(K, r.batch, r.kvHeads, keys, r.headSize, r.past, keys);
  const vNew = rows4(V, r.batch, r.kvHeads, keys, r.vHeadSize, r.past, keys);
  if (layout === 4) {
    inputs.Q = { data: Q, dims: [r.batch, r.qHeads, r.qLen, r.headSize] };
    inputs.K = { data: kNew, dims: [r.batch, r.kvHeads, r.kvLen, r.headSize] };
    inputs.V = { data: vNew, dims: [r.batch, r.kvHeads, r.kvLen, r.vHeadSize] };
  } else {
    inputs.Q = { data: to3d(Q, r.batch, r.qHeads, r.qLen, r.headSize), dims: [r.batch, r.qLen, r.qHeads * r.headSize] };
    inputs.K = { data: to3d(kNew, r.batch, r.kvHeads, r.kvLen, r.headSize), dims: [r.batch, r.kvLen, r.kvHeads * r.headSize] };
    inputs.V = { data: to3d(vNew, r.batch, r.kvHeads, r.kvLen, r.vHeadSize), dims: [r.batch, r.kvLen, r.kvHeads * r.vHeadSize] };
  }
  if (r.past > 0) {
    inputs.past_key = { data: rows4(K, r.batch, r.kvHeads, keys, r.headSize, 0, r.past), dims: [r.batch, r.kvHeads, r.past, r.headSize] };
    inputs.past_value = { data: rows4(V, r.batch, r.kvHeads, keys, r.vHeadSize, 0, r.past), dims: [r.batch, r.kvHeads, r.past, r.vHeadSize] };
  }
  let bias: OnnxReferenceCase['bias'] = () => 0;
  if (r.mask) {
    const dims = r.mask.dims;
    const count = dims.reduce((a, b) => a * b, 1);
    const next = rng(seed + 3);
    const full = [1, 1, 1, 1];
    dims.forEach((d, i) => (full[4 - dims.length + i] = d));
    let values: Float32Array | Uint8Array;
    if (r.mask.kind === 'bool') {
      values = Uint8Array.from({ length: count }, () => (next() < 0.8 ? 1 : 0));
      inputs.attn_mask = { data: values, dims, type: 'bool' };
    } else {
      values = Float32Array.from({ length: count }, () => (next() < 0.15 ? -Infinity : 4 * next() - 2));
      inputs.attn_mask = { data: values, dims };
    }
    const at = (b: number, h: number, i: number, j: number) =>
      ((((full[0] > 1 ? b : 0) * full[1] + (full[1] > 1 ? h : 0)) * full[2] + (full[2] > 1 ? i : 0)) * full[3]) + j;
    bias = (b, h, i, j) => {
      if (j >= full[3]) return -Infinity;
      const x = values[at(b, h, i, j)];
      return r.mask?.kind === 'bool' ? (x ? 0 : -Infinity) : x;
    };
  }
  if (r.nonpad) inputs.nonpad_kv_seqlen = { data: BigInt64Array.from(r.nonpad.map(BigInt)), dims: [r.batch], type: 'int64' };
  const attributes: Record<string, number> = {};
  if (layout === 3) Object.assign(attributes, { q_num_heads: r.qHeads, kv_num_heads: r.kvHeads });
  if (r.causal) attributes.is_causal = 1;
  if (r.windowLeft !== undefined) attributes.left_window_size = r.windowLeft;
  if (r.windowRight !== undefined) attributes.right_window_size = r.windowRight;
  if (r.softcap) attributes.softcap = r.softcap;
  if (r.scale) attributes.scale = r.scale;
  const out = onnxAttentionOn(module, inputs as unknown as OnnxAttentionInputs, attributes, { blockQ: r.blockQ, blockK: r.blockK });
  let got = out.Y.data as Float32Array;
  if (layout === 3) {
    // back to [batch, heads, len, size]
    const back = new Float32Array(got.length);
    for (let b = 0; b < r.batch; b++)
      for (let h = 0; h < r.qHeads; h++)
        for (let i = 0; i < r.qLen; i++)
          for (let p = 0; p < r.vHeadSize; p++) back[((b * r.qHeads + h) * r.qLen + i) * r.vHeadSize + p] = got[((b * r.qLen + i) * r.qHeads + h) * r.vHeadSize + p];
    got = back;
  }
  const want = referenceOnnxAttention({
    batch: r.batch, qHeads: r.qHeads, kvHeads: r.kvHeads, qLen: r.qLen, keys, headSize: r.headSize, vHeadSize: r.vHeadSize,
    Q, K, V, scale: r.scale ?? 1 / Math.sqrt(r.headSize), causal: !!r.causal,
    offset: (b) => (r.nonpad ? r.nonpad[b] - r.qLen : r.past), valid: (b) => (r.nonpad ? Math.min(r.nonpad[b], keys) : keys),
    windowLeft: r.windowLeft ?? -1, windowRight: r.windowRight ?? -1, softcap: r.softcap ?? 0, bias,
  });
  return { got, want };
}

const RANDOM_CASES: [string, RandomCase][] = [
  ['GQA prefill over a cache, causal, bool mask shorter than the keys, window, softcap, small tiles',
    { batch: 2, qHeads: 6, kvHeads: 2, qLen: 37, past: 113, kvLen: 37, headSize: 20, vHeadSize: 12, causal: true,
      windowLeft: 40, softcap: 5, mask: { dims: [2, 1, 37, 140], kind: 'bool' }, blockQ: 16, blockK: 12 }],
  ['MQA, 3D layout, additive rank-2 mask, per-batch padding (nonpad) with causal',
    { batch: 3, qHeads: 4, kvHeads: 1, qLen: 9, past: 0, kvLen: 150, headSize: 13, vHeadSize: 7, causal: true,
      mask: { dims: [9, 150], kind: 'additive' }, nonpad: [150, 61, 9], layout: 3 }],
  ['GQA decode, one query, 300-key cache, default tiles',
    { batch: 1, qHeads: 8, kvHeads: 2, qLen: 1, past: 299, kvLen: 1, headSize: 64, vHeadSize: 64, causal: true }],
  ['4D rank-3 mask per head, two-sided window, V head size of its own, scale',
    { batch: 2, qHeads: 3, kvHeads: 3, qLen: 70, past: 0, kvLen: 133, headSize: 9, vHeadSize: 17, windowLeft: 5, windowRight: 3,
      mask: { dims: [3, 70, 133], kind: 'additive' }, scale: 0.3 }],
  ['rows with no visible key are 0 (causal with nonpad shorter than the queries), rank-1 mask',
    { batch: 2, qHeads: 2, kvHeads: 1, qLen: 12, past: 0, kvLen: 12, headSize: 8, vHeadSize: 8, causal: true, nonpad: [12, 4],
      mask: { dims: [10], kind: 'bool' } }],
  ['softcap alone on large scores, long keys across many tiles',
    { batch: 1, qHeads: 2, kvHeads: 2, qLen: 40, past: 0, kvLen: 530, headSize: 32, vHeadSize: 32, softcap: 2, scale: 2 }],
];

describe('onnxAttention against a float64 reference of the operator', () => {
  it.each(RANDOM_CASES)('%s', async (_name, r) => {
    for (const kind of MODULE_KINDS) {
      const module = await loadModule(kind);
      const { got, want } = compareRandom(module, r, 7 + r.qLen);
      expect(got.every(Number.isFinite)).toBe(true);
      expect(maxAbsDiff(got, want)).toBeLessThan(2e-5);
    }
  });

  it('gives zeros for the fully masked rows (not NaN)', async () => {
    const module = await loadModule('simd');
    const { got } = compareRandom(module, RANDOM_CASES[4][1], 3);
    // batch 1's queries 0..7 sit before its first key (offset 4 - 12 = -8)
    const row = (h: number, i: number) => got.subarray(((1 * 2 + h) * 12 + i) * 8, ((1 * 2 + h) * 12 + i + 1) * 8);
    expect(Array.from(row(0, 0))).toEqual(new Array(8).fill(0));
    expect(Array.from(row(1, 7))).toEqual(new Array(8).fill(0));
    expect(row(0, 8).some((x) => x !== 0)).toBe(true);
  });

  it('takes working memory independent of the sequence length (with a mask, GQA and a cache)', async () => {
    const module = await loadModule('simd');
    const used = (len: number) => {
      const t = (n: number, dims: number[]): OnnxTensorLike => ({ data: uniform(n, len), dims });
      onnxAttentionOn(module, {
        Q: t(2 * 8 * len * 32, [2, 8, len, 32]), K: t(2 * 2 * len * 32, [2, 2, len, 32]), V: t(2 * 2 * len * 32, [2, 2, len, 32]),
        past_key: t(2 * 2 * 64 * 32, [2, 2, 64, 32]), past_value: t(2 * 2 * 64 * 32, [2, 2, 64, 32]),
        attn_mask: { data: new Uint8Array(len + 64).fill(1), dims: [len + 64], type: 'bool' },
      }, { is_causal: 1, left_window_size: 100 });
      return module.workspaceLastBytes();
    };
    const small = used(300);
    expect(small).toBeGreaterThan(0);
    expect(used(1500)).toBe(small);
  });

  it('writes past and new keys and values into present_key and present_value', async () => {
    const module = await loadModule('simd');
    const pk = uniform(2 * 1 * 3 * 4, 1), pv = uniform(2 * 1 * 3 * 2, 2);
    const K = uniform(2 * 5 * 4, 3), V = uniform(2 * 5 * 2, 4);
    const out = onnxAttentionOn(module, {
      Q: { data: uniform(2 * 5 * 8, 5), dims: [2, 5, 8] }, K: { data: K, dims: [2, 5, 4] }, V: { data: V, dims: [2, 5, 2] },
      past_key: { data: pk, dims: [2, 1, 3, 4] }, past_value: { data: pv, dims: [2, 1, 3, 2] },
    }, { q_num_heads: 2, kv_num_heads: 1 });
    expect(out.present_key?.dims).toEqual([2, 1, 8, 4]);
    expect(out.present_value?.dims).toEqual([2, 1, 8, 2]);
    const want = new Float32Array(2 * 8 * 4);
    for (let b = 0; b < 2; b++) {
      want.set(pk.subarray(b * 12, b * 12 + 12), b * 32);
      want.set(K.subarray(b * 20, b * 20 + 20), b * 32 + 12);
    }
    expect(Array.from(out.present_key?.data ?? [])).toEqual(Array.from(want));
    expect(out.qk_matmul_output).toBeUndefined();
  });

  it('takes float16 tensors as Uint16Array bits and answers in float16', async () => {
    const q = uniform(1 * 2 * 3 * 4, 11), k = uniform(1 * 2 * 5 * 4, 12), v = uniform(1 * 2 * 5 * 4, 13);
    const half = (x: Float32Array, dims: number[]): OnnxTensorLike => ({ data: float32ToFloat16(x), dims, type: 'float16' });
    const out = await onnxAttention({ Q: half(q, [1, 2, 3, 4]), K: half(k, [1, 2, 5, 4]), V: half(v, [1, 2, 5, 4]) }, {}, { module: { module: 'simd' } });
    expect(out.Y.type).toBe('float16');
    expect(out.Y.data).toBeInstanceOf(Uint16Array);
    const f32 = await onnxAttention({
      Q: { data: float16ToFloat32(float32ToFloat16(q)), dims: [1, 2, 3, 4] },
      K: { data: float16ToFloat32(float32ToFloat16(k)), dims: [1, 2, 5, 4] },
      V: { data: float16ToFloat32(float32ToFloat16(v)), dims: [1, 2, 5, 4] },
    });
    expect(Array.from(out.Y.data)).toEqual(Array.from(float32ToFloat16(f32.Y.data as Float32Array)));
  });

  it('float16 conversion is exact both ways on every float16 value', () => {
    const all = Uint16Array.from({ length: 65536 }, (_, i) => i).filter((h) => (h & 0x7c00) !== 0x7c00 || (h & 0x3ff) === 0);
    expect(Array.from(float32ToFloat16(float16ToFloat32(all)))).toEqual(Array.from(all));
    expect(Array.from(float32ToFloat16(Float32Array.of(1 + 2 ** -11, 1 + 3 * 2 ** -11, 65520, 2 ** -25, 2 ** -24 * 1.5)))).toEqual([
      0x3c00, 0x3c02, 0x7c00, 0x0000, 0x0002,
    ]);
  });
});

describe('onnxAttention rejects bad calls with errors that name the argument', () => {
  let module: QEModule;
  beforeAll(async () => {
    module = await loadModule('simd');
  });
  const t = (dims: number[], fill = 0.5): OnnxTensorLike => ({ data: new Float32Array(dims.reduce((a, b) => a * b, 1)).fill(fill), dims });
  const base = () => ({ Q: t([1, 4, 3, 8]), K: t([1, 2, 5, 8]), V: t([1, 2, 5, 8]) });
  const run = (inputs: Record<string, unknown>, attrs: Record<string, unknown> = {}) => () =>
    onnxAttentionOn(module, inputs as unknown as OnnxAttentionInputs, attrs);

  it('mismatched dims', () => {
    expectThrow(run({ ...base(), K: t([1, 2, 5, 6]) }), RangeError, /K's head size 6 differs from Q's 8/);
    expectThrow(run({ ...base(), V: t([1, 2, 4, 8]) }), RangeError, /V has 4 positions but K has 5/);
    expectThrow(run({ ...base(), K: t([2, 2, 5, 8]) }), RangeError, /share the batch size/);
    expectThrow(run({ ...base(), Q: t([1, 12, 8]) }), RangeError, /same rank/);
    expectThrow(run({ ...base(), Q: { data: new Float32Array(5), dims: [1, 4, 3, 8] } }), RangeError, /Q.data has 5 elements but dims \[1, 4, 3, 8\] hold 96/);
    expectThrow(run({ ...base(), past_key: t([1, 2, 3, 8]), past_value: t([1, 2, 2, 8]) }), RangeError, /past_value must be/);
  });

  it('heads that do not divide', () => {
    expectThrow(run({ Q: t([1, 3, 3, 8]), K: t([1, 2, 5, 8]), V: t([1, 2, 5, 8]) }), RangeError, /3 query heads are not a multiple of the 2/);
    expectThrow(run({ Q: t([1, 3, 10]), K: t([1, 5, 8]), V: t([1, 5, 8]) }, { q_num_heads: 3, kv_num_heads: 2 }), RangeError, /Q's hidden size 10 is not a multiple of q_num_heads 3/);
    expectThrow(run({ Q: t([1, 3, 12]), K: t([1, 5, 8]), V: t([1, 5, 8]) }), TypeError, /q_num_heads and kv_num_heads are required/);
  });

  it('a mask that cannot broadcast', () => {
    expectThrow(run({ ...base(), attn_mask: t([2, 1, 3, 5]) }), RangeError, /attn_mask with dims \[2,1,3,5\] cannot broadcast.*batch axis is 2/);
    expectThrow(run({ ...base(), attn_mask: t([3, 3, 5]) }), RangeError, /q_num_heads axis is 3/);
    expectThrow(run({ ...base(), attn_mask: t([3, 6]) }), RangeError, /last axis \(6\) must be between 1 and the 5 keys/);
    expectThrow(run({ ...base(), attn_mask: { data: Float32Array.of(0, NaN, 0, 0, 0), dims: [5] } }), RangeError, /attn_mask\[1\] is NaN/);
  });

  it('negative nonpad_kv_seqlen, and nonpad with a cache', () => {
    expectThrow(run({ ...base(), nonpad_kv_seqlen: { data: BigInt64Array.of(-1n), dims: [1], type: 'int64' } }), RangeError, /nonpad_kv_seqlen\[0\] must not be negative, got -1/);
    expectThrow(run({ ...base(), nonpad_kv_seqlen: { data: Int32Array.of(2, 2), dims: [2], type: 'int32' } }), RangeError, /must have 1 elements/);
    expectThrow(run({ ...base(), nonpad_kv_seqlen: { data: Int32Array.of(2), dims: [1] }, past_key: t([1, 2, 1, 8]), past_value: t([1, 2, 1, 8]) }), RangeError, /cannot be combined/);
  });

  it('unknown names, wrong types, bad attributes, non-finite inputs', () => {
    expectThrow(run({ ...base(), mask: t([5]) }), TypeError, /inputs.mask is not an input of Attention/);
    expectThrow(run(base(), { causal: 1 }), TypeError, /attributes.causal is not an attribute/);
    expectThrow(run({ ...base(), Q: { data: new Float64Array(96), dims: [1, 4, 3, 8] } }), TypeError, /inputs.Q must be float32/);
    expectThrow(run(base(), { qk_matmul_output_mode: 4 }), RangeError, /qk_matmul_output_mode must be in \[0, 3\]/);
    expectThrow(run(base(), { left_window_size: -2 }), RangeError, /left_window_size must be in \[-1/);
    expectThrow(run(base(), { softcap: -1 }), RangeError, /softcap must be finite and >= 0/);
    expectThrow(run(base(), { softmax_precision: 7 }), RangeError, /softmax_precision must be a float type/);
    expectThrow(run({ ...base(), K: t([1, 2, 5, 8], Infinity) }), RangeError, /inputs.K/);
    expectThrow(run({ Q: t([1, 4, 3, 8]) }), TypeError, /inputs.K is required/);
    expectThrow(run({ Q: t([1, 4, 3, 8], 1e20), K: t([1, 2, 5, 8], 1e20), V: t([1, 2, 5, 8]) }), RangeError, /overflowed float32/);
    expect(module.liveAllocations).toBe(0);
  });
});

describe('computeFlashAttention options kvHeads, mask, softcap, window', () => {
  /** [seqLen, heads * size] to [1, heads, seqLen, size]. */
  const heads4 = (x: Float32Array, len: number, heads: number, size: number) => {
    const out = new Float32Array(x.length);
    for (let i = 0; i < len; i++) for (let h = 0; h < heads; h++) for (let p = 0; p < size; p++) out[(h * len + i) * size + p] = x[(i * heads + h) * size + p];
    return out;
  };
  it.each(MODULE_KINDS as ModuleKind[])('match the float64 reference on the %s build', async (kind) => {
    const attention = await createOn(kind, { queryChunkSize: 16, kvChunkSize: 20 });
    const seqLen = 45, kvSeqLen = 77, heads = 6, kvHeads = 2, size = 12, dim = heads * size;
    const Q = uniform(seqLen * dim, 1, -2, 2), K = uniform(kvSeqLen * kvHeads * size, 2, -2, 2), V = uniform(kvSeqLen * kvHeads * size, 3);
    const maskData = Float32Array.from(uniform(seqLen * 70, 4), (x) => (x < -0.7 ? -Infinity : x));
    const got = await attention.computeFlashAttention(Q, K, V, seqLen, dim, {
      heads, kvHeads, kvSeqLen, causal: true, softcap: 3, window: { left: 20 }, mask: { data: maskData, dims: [seqLen, 70] },
    });
    const want = referenceOnnxAttention({
      batch: 1, qHeads: heads, kvHeads, qLen: seqLen, keys: kvSeqLen, headSize: size, vHeadSize: size,
      Q: heads4(Q, seqLen, heads, size), K: heads4(K, kvSeqLen, kvHeads, size), V: heads4(V, kvSeqLen, kvHeads, size),
      scale: 1 / Math.sqrt(size), causal: true, offset: () => 0, valid: () => kvSeqLen, windowLeft: 20, windowRight: -1, softcap: 3,
      bias: (_b, _h, i, j) => (j < 70 ? maskData[i * 70 + j] : -Infinity),
    });
    expect(maxAbsDiff(heads4(got, seqLen, heads, size), want)).toBeLessThan(2e-5);
    // GQA with key padding only, against the same call with K/V heads repeated per query head.
    const padded = attention.computeFlashAttentionSync(Q, K, V, seqLen, dim, { heads, kvHeads, kvSeqLen, validKeyLength: 50 });
    const rep = (x: Float32Array) => {
      const out = new Float32Array(kvSeqLen * dim);
      for (let j = 0; j < kvSeqLen; j++) for (let h = 0; h < heads; h++) out.set(x.subarray((j * kvHeads + Math.floor(h / 3)) * size, (j * kvHeads + Math.floor(h / 3) + 1) * size), (j * heads + h) * size);
      return out;
    };
    const plain = attention.computeFlashAttentionSync(Q, rep(K), rep(V), seqLen, dim, { heads, kvSeqLen, validKeyLength: 50 });
    expect(maxAbsDiff(padded, plain)).toBeLessThan(1e-6);
  });

  it('reject bad values by option name', async () => {
    const attention = await createOn('simd');
    const x = new Float32Array(4 * 8).fill(0.1);
    expectThrow(() => attention.computeFlashAttentionSync(x, x, x, 4, 8, { heads: 2, kvHeads: 3 }), RangeError, /options.kvHeads/);
    expectThrow(() => attention.computeFlashAttentionSync(x, x, x, 4, 8, { heads: 2, kvHeads: 1 }), RangeError, /K has length 32 but kvSeqLen x \(kvHeads x dim \/ heads\) = 4 x 4/);
    expectThrow(() => attention.computeFlashAttentionSync(x, x, x, 4, 8, { softcap: -1 }), RangeError, /options.softcap/);
    expectThrow(() => attention.computeFlashAttentionSync(x, x, x, 4, 8, { window: { left: 1.5 } }), RangeError, /options.window.left/);
    expectThrow(() => attention.computeFlashAttentionSync(x, x, x, 4, 8, { mask: { data: new Uint8Array(3), dims: [2, 4] } }), RangeError, /options.mask.data has 3 elements/);
    expectThrow(() => attention.computeFlashAttentionSync(x, x, x, 4, 8, { mask: { data: new Uint8Array(8), dims: [2, 4] } }), RangeError, /options.mask with dims \[2,4\] cannot broadcast/);
    expectThrow(() => attention.computeFlashAttentionSync(x, x, x, 4, 8, { mask: { data: new Uint8Array(4), dims: [4] }, validKeyLength: 2 }), RangeError, /put the padding in the mask/);
  });
});
