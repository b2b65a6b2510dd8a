/**
 * onnxAttention: the ONNX Attention operator (opsets 23-25) on the flash
 * kernel, with the operator's own input, attribute and output names.
 * Tensors are { data, dims, type? }, the shape of an onnxruntime-web Tensor.
 * Semantics follow ONNX's reference implementation
 * (onnx/reference/ops/op_attention.py); csrc/api_onnx.c does the work.
 */
import type { ModuleLoadOptions } from '../types';
import { checkStatus, loadQEModule, type QEModule } from './module';
import { realArray } from './input';
import { describe, MAX_INT32, nonFiniteElementError } from './validate';

/** A tensor as onnxruntime-web's Tensor carries it. */
export interface OnnxTensorLike {
  readonly data: Float32Array | Uint16Array | Uint8Array | Int32Array | BigInt64Array | ArrayLike<unknown>;
  readonly dims: readonly number[];
  readonly type?: string;
}

/** The operator's inputs by their ONNX names (Q, K and V required). */
export interface OnnxAttentionInputs {
  Q: OnnxTensorLike;
  K: OnnxTensorLike;
  V: OnnxTensorLike;
  attn_mask?: OnnxTensorLike;
  past_key?: OnnxTensorLike;
  past_value?: OnnxTensorLike;
  nonpad_kv_seqlen?: OnnxTensorLike;
}

/** The operator's attributes by their ONNX names. */
export interface OnnxAttentionAttributes {
  scale?: number;
  is_causal?: number | boolean;
  q_num_heads?: number;
  kv_num_heads?: number;
  softcap?: number;
  qk_matmul_output_mode?: number;
  softmax_precision?: number;
  left_window_size?: number;
  right_window_size?: number;
}

export type OnnxAttentionOutputName = 'Y' | 'present_key' | 'present_value' | 'qk_matmul_output';

export interface OnnxAttentionOptions {
  /**
   * Outputs to compute, as a node lists them. Default: Y, plus present_key
   * and present_value when a past cache is given. qk_matmul_output (N x N per
   * head) is computed only when named here.
   */
  outputs?: readonly OnnxAttentionOutputName[];
  /** The module to load (see createQEFlashAttention); ignored by onnxAttentionOn. */
  module?: ModuleLoadOptions;
  /** Query and key tile sizes asked of the kernel (0: its defaults). */
  blockQ?: number;
  blockK?: number;
}

/** An output tensor: float32, or float16 bits (Uint16Array) when Q was float16. */
export interface OnnxOutputTensor {
  data: Float32Array | Uint16Array;
  dims: number[];
  type: 'float32' | 'float16';
}

export interface OnnxAttentionOutputs {
  Y: OnnxOutputTensor;
  present_key?: OnnxOutputTensor;
  present_value?: OnnxOutputTensor;
  qk_matmul_output?: OnnxOutputTensor;
}

const INPUT_NAMES = ['Q', 'K', 'V', 'attn_mask', 'past_key', 'past_value', 'nonpad_kv_seqlen'];
const ATTRIBUTE_NAMES = [
  'scale', 'is_causal', 'q_num_heads', 'kv_num_heads', 'softcap', 'qk_matmul_output_mode', 'softmax_precision',
  'left_window_size', 'right_window_size',
];
const OUTPUT_NAMES: readonly OnnxAttentionOutputName[] = ['Y', 'present_key', 'present_value', 'qk_matmul_output'];
/** TensorProto data types softmax_precision may name: FLOAT, FLOAT16, DOUBLE, BFLOAT16. */
const SOFTMAX_PRECISIONS = [1, 10, 11, 16];

/** Fields of qe_attention_args (csrc/qe_api.h), each 4 bytes, in order. */
const ARG = {
  q: 0, k: 1, v: 2, mask: 3, pastKey: 4, pastValue: 5, kvSeqlen: 6, y: 7, presentKey: 8, presentValue: 9, qkOut: 10,
  layout: 11, batch: 12, qHeads: 13, kvHeads: 14, qLen: 15, kvLen: 16, pastLen: 17, headSize: 18, vHeadSize: 19,
  maskKind: 20, maskDims: 21, causal: 25, windowLeft: 26, windowRight: 27, qkMode: 28, scale: 29, softcap: 30,
  blockQ: 31, blockK: 32,
} as const;
const ARG_FIELDS = 33;

/** float16 bits to float32 (exact). */
export function float16ToFloat32(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) {
    const h = bits[i];
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    out[i] = exp === 0 ? sign * frac * 2 ** -24 : exp === 31 ? (frac ? NaN : sign * Infinity) : sign * (1024 + frac) * 2 ** (exp - 25);
  }
  return out;
}

/** float32 to float16 bits, rounding to nearest even. */
export function float32ToFloat16(values: Float32Array): Uint16Array {
  const out = new Uint16Array(values.length);
  const u32 = new Uint32Array(values.buffer, values.byteOffset, values.length);
  for (let i = 0; i < values.length; i++) {
    const x = u32[i];
    const sign = (x >>> 16) & 0x8000;
    const exp = (x >>> 23) & 0xff;
    let mant = x & 0x7fffff;
    if (exp === 0xff) {
      out[i] = sign | 0x7c00 | (mant ? 0x200 : 0);
      continue;
    }
    const e = exp - 127 + 15;
    if (e >= 31) {
      out[i] = sign | 0x7c00;
      continue;
    }
    if (e <= 0) {
      if (e < -10) {
        out[i] = sign;
        continue;
      }
      mant |= 0x800000;
      const shift = 14 - e;
      let half = mant >>> shift;
      const rest = mant & ((1 << shift) - 1);
      const mid = 1 << (shift - 1);
      if (rest > mid || (rest === mid && half & 1)) half++;
      out[i] = sign | half;
      continue;
    }
    let half = (e << 10) | (mant >>> 13);
    const rest = mant & 0x1fff;
    if (rest > 0x1000 || (rest === 0x1000 && half & 1)) half++;
    out[i] = sign | half;
  }
  return out;
}

function tensorName(name: string): string {
  return `inputs.${name}`;
}

/** Checks a tensor's shape; returns its dims as numbers. */
function checkTensor(name: string, t: unknown, ranks: readonly number[]): number[] {
  if (typeof t !== 'object' || t === null) throw new TypeError(`${tensorName(name)} must be a tensor { data, dims, type? }, got ${describe(t)}`);
  const { data, dims } = t as OnnxTensorLike;
  if (!Array.isArray(dims) && !(ArrayBuffer.isView(dims) && !(dims instanceof DataView))) {
    throw new TypeError(`${tensorName(name)}.dims must be an array of integers, got ${describe(dims)}`);
  }
  const shape = Array.from(dims as ArrayLike<number | bigint>, (d, i) => {
    const n = typeof d === 'bigint' ? Number(d) : d;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > MAX_INT32) {
      throw new RangeError(`${tensorName(name)}.dims[${i}] must be a non-negative integer, got ${describe(d)}`);
    }
    return n;
  });
  if (!ranks.includes(shape.length)) {
    throw new RangeError(`${tensorName(name)} must have rank ${ranks.join(' or ')}, got dims [${shape.join(', ')}]`);
  }
  if (!ArrayBuffer.isView(data)) throw new TypeError(`${tensorName(name)}.data must be a typed array, got ${describe(data)}`);
  const count = shape.reduce((a, b) => a * b, 1);
  if ((data as ArrayLike<unknown>).length !== count) {
    throw new RangeError(`${tensorName(name)}.data has ${(data as ArrayLike<unknown>).length} elements but dims [${shape.join(', ')}] hold ${count}`);
  }
  return shape;
}

/** The float data of a float32 or float16 tensor, as float32. */
function floatData(name: string, t: OnnxTensorLike): { data: Float32Array; half: boolean } {
  const type = t.type ?? (t.data instanceof Float32Array ? 'float32' : undefined);
  if (type === 'float32' && t.data instanceof Float32Array) return { data: t.data, half: false };
  if (type === 'float16' && t.data instanceof Uint16Array) return { data: float16ToFloat32(t.data), half: true };
  const f16 = (globalThis as { Float16Array?: new (...a: never[]) => ArrayLike<number> }).Float16Array;
  if (type === 'float16' && f16 !== undefined && t.data instanceof f16) return { data: Float32Array.from(t.data as ArrayLike<number>), half: true };
  throw new TypeError(
    `${tensorName(name)} must be float32 (a Float32Array) or float16 (a Uint16Array of float16 bits with type 'float16'), got type ${JSON.stringify(t.type)} with ${describe(t.data)}`,
  );
}

function intAttribute(attrs: OnnxAttentionAttributes, name: keyof OnnxAttentionAttributes, fallback: number, min: number, max: number): number {
  const value = attrs[name];
  if (value === undefined) return fallback;
  const n = typeof value === 'boolean' ? Number(value) : value;
  if (typeof n !== 'number') throw new TypeError(`attributes.${name} must be an integer, got ${describe(value)}`);
  if (!Number.isInteger(n)) throw new RangeError(`attributes.${name} must be an integer, got ${n}`);
  if (n < min || n > max) throw new RangeError(`attributes.${name} must be in [${min}, ${max}], got ${n}`);
  return n;
}

/**
 * The ONNX Attention operator on an already loaded module (synchronous).
 * Throws TypeError or RangeError, naming the input or attribute, on a bad call.
 */
export function onnxAttentionOn(
  module: QEModule,
  inputs: OnnxAttentionInputs,
  attributes: OnnxAttentionAttributes = {},
  options: OnnxAttentionOptions = {},
): OnnxAttentionOutputs {
  if (module === null || typeof module !== 'object' || typeof (module as Partial<QEModule>).onnxAttentionEntries !== 'function') {
    throw new TypeError(`module must be a loaded qe-flash module (or call onnxAttention, which loads one), got ${describe(module)}`);
  }
  if (typeof inputs !== 'object' || inputs === null) throw new TypeError(`inputs must be an object of tensors named Q, K, V, ..., got ${describe(inputs)}`);
  if (typeof options !== 'object' || options === null) throw new TypeError(`options must be an object, got ${describe(options)}`);
  if (typeof attributes !== 'object' || attributes === null) throw new TypeError(`attributes must be an object, got ${describe(attributes)}`);
  for (const key of Object.keys(inputs)) {
    if (!INPUT_NAMES.includes(key)) throw new TypeError(`inputs.${key} is not an input of Attention (${INPUT_NAMES.join(', ')})`);
  }
  for (const key of Object.keys(attributes)) {
    if (!ATTRIBUTE_NAMES.includes(key)) throw new TypeError(`attributes.${key} is not an attribute of Attention (${ATTRIBUTE_NAMES.join(', ')})`);
  }
  // Each tensor read once, its data as it really is (js/input.ts): a getter, a lying length or a detached buffer change nothing below.
  const given = inputs;
  inputs = {} as OnnxAttentionInputs;
  for (const key of Object.keys(given) as (keyof OnnxAttentionInputs)[]) {
    const t = given[key] as unknown;
    (inputs as unknown as Record<string, unknown>)[key] =
      t === null || typeof t !== 'object' ? t : { data: realArray(`inputs.${key}.data`, (t as OnnxTensorLike).data), dims: (t as OnnxTensorLike).dims, type: (t as OnnxTensorLike).type };
  }
  const present = (name: keyof OnnxAttentionInputs) => inputs[name] !== undefined && inputs[name] !== null;
  for (const name of ['Q', 'K', 'V'] as const) if (!present(name)) throw new TypeError(`inputs.${name} is required`);

  const qDims = checkTensor('Q', inputs.Q, [3, 4]);
  const kDims = checkTensor('K', inputs.K, [3, 4]);
  const vDims = checkTensor('V', inputs.V, [3, 4]);
  if (kDims.length !== qDims.length || vDims.length !== qDims.length) {
    throw new RangeError(`inputs.Q, K and V must have the same rank, got dims [${qDims}], [${kDims}] and [${vDims}]`);
  }
  const layout = qDims.length;
  const q = floatData('Q', inputs.Q);
  const k = floatData('K', inputs.K);
  const v = floatData('V', inputs.V);

  let qHeads = intAttribute(attributes, 'q_num_heads', 0, 1, MAX_INT32);
  let kvHeads = intAttribute(attributes, 'kv_num_heads', 0, 1, MAX_INT32);
  const batch = qDims[0];
  let qLen: number, kvLen: number, headSize: number, vHeadSize: number;
  if (layout === 3) {
    if (!qHeads || !kvHeads) throw new TypeError('attributes.q_num_heads and kv_num_heads are required for 3D inputs');
    [, qLen] = qDims;
    kvLen = kDims[1];
    if (qDims[2] % qHeads !== 0) throw new RangeError(`inputs.Q's hidden size ${qDims[2]} is not a multiple of q_num_heads ${qHeads}`);
    if (kDims[2] % kvHeads !== 0) throw new RangeError(`inputs.K's hidden size ${kDims[2]} is not a multiple of kv_num_heads ${kvHeads}`);
    if (vDims[2] % kvHeads !== 0) throw new RangeError(`inputs.V's hidden size ${vDims[2]} is not a multiple of kv_num_heads ${kvHeads}`);
    headSize = qDims[2] / qHeads;
    vHeadSize = vDims[2] / kvHeads;
    if (kDims[2] / kvHeads !== headSize) {
      throw new RangeError(`inputs.K's head size ${kDims[2] / kvHeads} (hidden ${kDims[2]} / kv_num_heads ${kvHeads}) differs from Q's ${headSize}`);
    }
  } else {
    if (qHeads && qHeads !== qDims[1]) throw new RangeError(`attributes.q_num_heads ${qHeads} contradicts inputs.Q's dims[1] = ${qDims[1]}`);
    if (kvHeads && kvHeads !== kDims[1]) throw new RangeError(`attributes.kv_num_heads ${kvHeads} contradicts inputs.K's dims[1] = ${kDims[1]}`);
    qHeads = qDims[1];
    kvHeads = kDims[1];
    qLen = qDims[2];
    kvLen = kDims[2];
    headSize = qDims[3];
    vHeadSize = vDims[3];
    if (vDims[1] !== kvHeads) throw new RangeError(`inputs.V has ${vDims[1]} heads (dims[1]) but K has ${kvHeads}`);
    if (kDims[3] !== headSize) throw new RangeError(`inputs.K's head size ${kDims[3]} differs from Q's ${headSize}`);
  }
  if (kDims[0] !== batch || vDims[0] !== batch) throw new RangeError(`inputs.Q, K and V must share the batch size, got ${batch}, ${kDims[0]} and ${vDims[0]}`);
  if ((layout === 3 ? vDims[1] : vDims[2]) !== kvLen) throw new RangeError(`inputs.V has ${layout === 3 ? vDims[1] : vDims[2]} positions but K has ${kvLen}`);
  if (qHeads % kvHeads !== 0) throw new RangeError(`the ${qHeads} query heads are not a multiple of the ${kvHeads} key/value heads`);
  if (batch < 1 || qLen < 1 || headSize < 1 || vHeadSize < 1) throw new RangeError(`inputs.Q, K and V must not be empty, got dims [${qDims}], [${kDims}], [${vDims}]`);

  // The cache.
  if (present('past_key') !== present('past_value')) throw new TypeError('inputs.past_key and past_value must be given together');
  let pastLen = 0;
  let pastK: Float32Array | null = null;
  let pastV: Float32Array | null = null;
  if (present('past_key')) {
    const pk = checkTensor('past_key', inputs.past_key, [4]);
    const pv = checkTensor('past_value', inputs.past_value, [4]);
    pastLen = pk[2];
    const want = (d: number[], size: number) => d[0] === batch && d[1] === kvHeads && d[2] === pastLen && d[3] === size;
    if (!want(pk, headSize)) throw new RangeError(`inputs.past_key must be [${batch}, ${kvHeads}, past, ${headSize}], got [${pk}]`);
    if (!want(pv, vHeadSize)) throw new RangeError(`inputs.past_value must be [${batch}, ${kvHeads}, ${pastLen}, ${vHeadSize}], got [${pv}]`);
    pastK = floatData('past_key', inputs.past_key as OnnxTensorLike).data;
    pastV = floatData('past_value', inputs.past_value as OnnxTensorLike).data;
  }
  const total = pastLen + kvLen;
  if (total < 1) throw new RangeError('there are no keys: K and past_key are both empty');
  if (kvLen < 1 && pastLen < 1) throw new RangeError('inputs.K must hold at least one position');

  let kvSeqlen: Int32Array | null = null;
  if (present('nonpad_kv_seqlen')) {
    if (pastLen > 0 || present('past_key')) throw new RangeError('inputs.nonpad_kv_seqlen cannot be combined with past_key/past_value');
    const dims = checkTensor('nonpad_kv_seqlen', inputs.nonpad_kv_seqlen, [1]);
    if (dims[0] !== batch) throw new RangeError(`inputs.nonpad_kv_seqlen must have ${batch} elements (one per batch), got ${dims[0]}`);
    const raw = (inputs.nonpad_kv_seqlen as OnnxTensorLike).data;
    if (!(raw instanceof BigInt64Array) && !(raw instanceof Int32Array)) {
      throw new TypeError(`inputs.nonpad_kv_seqlen.data must be a BigInt64Array (int64) or an Int32Array, got ${describe(raw)}`);
    }
    kvSeqlen = new Int32Array(batch);
    for (let b = 0; b < batch; b++) {
      const n = Number(raw[b]);
      if (n < 0) throw new RangeError(`inputs.nonpad_kv_seqlen[${b}] must not be negative, got ${n}`);
      if (n > MAX_INT32) throw new RangeError(`inputs.nonpad_kv_seqlen[${b}] is too large: ${n}`);
      kvSeqlen[b] = n;
    }
  }

  // The mask: right-aligned to [batch, q heads, q_len, keys].
  let maskKind = 0;
  let maskBytes: Uint8Array | null = null;
  let maskFloats: Float32Array | null = null;
  const maskDims = [1, 1, 1, 1];
  if (present('attn_mask')) {
    const t = inputs.attn_mask as OnnxTensorLike;
    const dims = checkTensor('attn_mask', t, [1, 2, 3, 4]);
    for (let i = 0; i < dims.length; i++) maskDims[4 - dims.length + i] = dims[i];
    const target = [batch, qHeads, qLen];
    const axes = ['batch', 'q_num_heads', 'q sequence length'];
    for (let i = 0; i < 3; i++) {
      if (maskDims[i] !== 1 && maskDims[i] !== target[i]) {
        throw new RangeError(`inputs.attn_mask with dims [${dims}] cannot broadcast to [${batch}, ${qHeads}, ${qLen}, ${total}]: its ${axes[i]} axis is ${maskDims[i]}`);
      }
    }
    if (maskDims[3] < 1 || maskDims[3] > total) {
      throw new RangeError(`inputs.attn_mask's last axis (${maskDims[3]}) must be between 1 and the ${total} keys (past + new)`);
    }
    if (t.type === 'bool' || (t.type === undefined && t.data instanceof Uint8Array)) {
      if (!(t.data instanceof Uint8Array)) throw new TypeError(`inputs.attn_mask of type 'bool' must hold a Uint8Array, got ${describe(t.data)}`);
      maskKind = 1;
      maskBytes = t.data;
    } else {
      maskKind = 2;
      maskFloats = floatData('attn_mask', t).data;
      for (let i = 0; i < maskFloats.length; i++) {
        const x = maskFloats[i];
        if (Number.isNaN(x) || x === Infinity) throw new RangeError(`inputs.attn_mask[${i}] is ${x}; an additive mask may hold finite values and -Infinity only`);
      }
    }
  }

  const causal = intAttribute(attributes, 'is_causal', 0, 0, 1);
  const qkMode = intAttribute(attributes, 'qk_matmul_output_mode', 0, 0, 3);
  const windowLeft = intAttribute(attributes, 'left_window_size', -1, -1, MAX_INT32);
  const windowRight = intAttribute(attributes, 'right_window_size', -1, -1, MAX_INT32);
  const precision = intAttribute(attributes, 'softmax_precision', 1, 0, MAX_INT32);
  if (!SOFTMAX_PRECISIONS.includes(precision)) {
    throw new RangeError(`attributes.softmax_precision must be a float type (1 FLOAT, 10 FLOAT16, 11 DOUBLE, 16 BFLOAT16), got ${precision}`);
  }
  let scale = 1 / Math.sqrt(headSize);
  if (attributes.scale !== undefined) {
    if (typeof attributes.scale !== 'number') throw new TypeError(`attributes.scale must be a number, got ${describe(attributes.scale)}`);
    if (!Number.isFinite(attributes.scale) || attributes.scale === 0) throw new RangeError(`attributes.scale must be finite and non-zero, got ${attributes.scale}`);
    scale = attributes.scale;
  }
  let softcap = 0;
  if (attributes.softcap !== undefined) {
    if (typeof attributes.softcap !== 'number') throw new TypeError(`attributes.softcap must be a number, got ${describe(attributes.softcap)}`);
    if (!Number.isFinite(attributes.softcap) || attributes.softcap < 0) throw new RangeError(`attributes.softcap must be finite and >= 0, got ${attributes.softcap}`);
    softcap = attributes.softcap;
  }

  const wanted = options.outputs ?? (pastLen > 0 || present('past_key') ? ['Y', 'present_key', 'present_value'] : ['Y']);
  if (!Array.isArray(wanted)) throw new TypeError(`options.outputs must be an array of output names, got ${describe(wanted)}`);
  for (const name of wanted) {
    if (!OUTPUT_NAMES.includes(name)) throw new TypeError(`options.outputs: ${describe(name)} is not an output of Attention (${OUTPUT_NAMES.join(', ')})`);
  }
  const wantPresent = wanted.includes('present_key') || wanted.includes('present_value') || pastLen > 0;
  const wantQk = wanted.includes('qk_matmul_output');
  const blockQ = options.blockQ ?? 0;
  const blockK = options.blockK ?? 0;
  for (const [name, value] of [['blockQ', blockQ], ['blockK', blockK]] as const) {
    if (!Number.isInteger(value) || value < 0 || value > MAX_INT32) throw new RangeError(`options.${name} must be a non-negative integer, got ${describe(value)}`);
  }

  const entries = module.onnxAttentionEntries();
  if (entries.qe_attention_args_bytes() !== ARG_FIELDS * 4) throw new Error('qe_attention_args has an unexpected layout; rebuild the module');
  const half = q.half;
  const yCount = batch * qHeads * qLen * vHeadSize;
  const presentKCount = batch * kvHeads * total * headSize;
  const presentVCount = batch * kvHeads * total * vHeadSize;
  const qkCount = batch * qHeads * qLen * total;
  return module.scope((s) => {
    // K and V may hold no new position when a past is given.
    const copyIn = (x: Float32Array) => (x.length > 0 ? s.copyIn(x) : s.alloc(16));
    const pq = s.copyIn(q.data);
    const pk = copyIn(k.data);
    const pv = copyIn(v.data);
    const ppk = pastK && pastLen > 0 ? s.copyIn(pastK) : 0;
    const ppv = pastV && pastLen > 0 ? s.copyIn(pastV) : 0;
    for (const [name, data, ptr] of [['Q', q.data, pq], ['K', k.data, pk], ['V', v.data, pv], ['past_key', pastK, ppk], ['past_value', pastV, ppv]] as const) {
      if (data === null || ptr === 0 || data.length === 0) continue;
      const at = module.firstNonFinite(ptr, data.length);
      if (at < data.length) throw nonFiniteElementError(`inputs.${name}`, data, at);
    }
    let pmask = 0;
    if (maskBytes) {
      pmask = s.alloc(Math.max(maskBytes.length, 1));
      module.u8().set(maskBytes, pmask);
    } else if (maskFloats) {
      pmask = s.copyIn(maskFloats);
    }
    const pseq = kvSeqlen ? s.copyInInt32(kvSeqlen) : 0;
    const py = s.allocFloats(yCount);
    const ppresK = wantPresent ? s.allocFloats(presentKCount) : 0;
    const ppresV = wantPresent ? s.allocFloats(presentVCount) : 0;
    const pqk = wantQk ? s.allocFloats(qkCount) : 0;
    const pargs = s.alloc(ARG_FIELDS * 4);
    const i32 = module.i32();
    const f32 = module.f32();
    const at = pargs >>> 2;
    i32.fill(0, at, at + ARG_FIELDS);
    i32[at + ARG.q] = pq, i32[at + ARG.k] = pk, i32[at + ARG.v] = pv, i32[at + ARG.mask] = pmask;
    i32[at + ARG.pastKey] = ppk, i32[at + ARG.pastValue] = ppv, i32[at + ARG.kvSeqlen] = pseq;
    i32[at + ARG.y] = py, i32[at + ARG.presentKey] = ppresK, i32[at + ARG.presentValue] = ppresV, i32[at + ARG.qkOut] = pqk;
    i32[at + ARG.layout] = layout, i32[at + ARG.batch] = batch, i32[at + ARG.qHeads] = qHeads, i32[at + ARG.kvHeads] = kvHeads;
    i32[at + ARG.qLen] = qLen, i32[at + ARG.kvLen] = kvLen, i32[at + ARG.pastLen] = pastLen;
    i32[at + ARG.headSize] = headSize, i32[at + ARG.vHeadSize] = vHeadSize, i32[at + ARG.maskKind] = maskKind;
    for (let i = 0; i < 4; i++) i32[at + ARG.maskDims + i] = maskDims[i];
    i32[at + ARG.causal] = causal, i32[at + ARG.windowLeft] = windowLeft, i32[at + ARG.windowRight] = windowRight;
    i32[at + ARG.qkMode] = qkMode, i32[at + ARG.blockQ] = blockQ, i32[at + ARG.blockK] = blockK;
    f32[at + ARG.scale] = scale, f32[at + ARG.softcap] = softcap;
    checkStatus(entries.qe_attention_onnx(pargs), 'qe_attention_onnx');
    // Finite inputs whose scaled scores exceed float32's range have no float32 answer.
    if (module.firstNonFinite(py, yCount) < yCount) {
      throw new RangeError('attention overflowed float32: some scaled score |q.k * scale| exceeds ~3.4e38; scale Q or K down');
    }
    const read = (ptr: number, count: number, dims: number[]): OnnxOutputTensor => {
      const data = s.readFloats(ptr, count);
      return half ? { data: float32ToFloat16(data), dims, type: 'float16' } : { data, dims, type: 'float32' };
    };
    const yDims = layout === 3 ? [batch, qLen, qHeads * vHeadSize] : [batch, qHeads, qLen, vHeadSize];
    const out: OnnxAttentionOutputs = { Y: read(py, yCount, yDims) };
    if (wanted.includes('present_key')) out.present_key = read(ppresK, presentKCount, [batch, kvHeads, total, headSize]);
    if (wanted.includes('present_value')) out.present_value = read(ppresV, presentVCount, [batch, kvHeads, total, vHeadSize]);
    if (wantQk) out.qk_matmul_output = read(pqk, qkCount, [batch, qHeads, qLen, total]);
    return out;
  });
}

/**
 * The ONNX Attention operator (opsets 23-25): inputs and attributes by their
 * ONNX names, tensors as { data, dims, type? } (an onnxruntime-web Tensor
 * works as is). Loads the module on first use (options.module chooses it).
 */
export async function onnxAttention(
  inputs: OnnxAttentionInputs,
  attributes: OnnxAttentionAttributes = {},
  options: OnnxAttentionOptions = {},
): Promise<OnnxAttentionOutputs> {
  if (typeof options !== 'object' || options === null) throw new TypeError(`options must be an object, got ${describe(options)}`);
  const module = await loadQEModule(options.module ?? {}, 'options.module');
  return onnxAttentionOn(module, inputs, attributes, options);
}
