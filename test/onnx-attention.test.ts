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
  onnxAttentionOn,
  type OnnxAttentionInputs,
  type OnnxAttentionOutputName,
  type OnnxTensorLike,
} from '../js/onnx-attention';
import type { QEModule } from '../js/module';
import { loadModule, MODULE_KINDS } from './helpers';

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
