/**
 * Argument checks for every public call. A bad call throws before it reaches
 * the module: TypeError for a value of the wrong type, RangeError for a value
 * of the right type that is out of range (a length, a size, a non-finite
 * number). Messages name the argument and give the numbers.
 */
import type { AttentionBackend, AttentionOptions, AttentionStrategy, WorkloadFlashAttentionConfig } from '../types';

import { realLength, typedArrayKind } from './input';

/** Largest size the module's int32 arguments take. */
export const MAX_INT32 = 0x7fffffff;

const ATTENTION_OPTION_KEYS: readonly string[] = ['heads', 'causal', 'validKeyLength', 'scale', 'kvSeqLen', 'kvHeads', 'mask', 'softcap', 'window'];
const STRATEGIES: readonly AttentionStrategy[] = ['latency-optimized', 'throughput-optimized', 'memory-efficient'];
const BACKENDS: readonly AttentionBackend[] = ['wasm-simd', 'native', 'gpu', 'hybrid', 'js-fallback'];

/** A short description of a value for error messages. */
export function describe(value: unknown): string {
  // Never trusts the value: a Proxy's traps or a getter may throw or lie.
  try {
    if (value === null) return 'null';
    const kind = typedArrayKind(value);
    if (kind !== undefined) return `a ${kind}`;
    if (Array.isArray(value)) return `an array of length ${value.length}`;
    if (typeof value === 'number') return `the number ${value}`;
    if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 40 ? value.slice(0, 40) + '...' : value)}`;
    if (typeof value === 'object') return `an object (${(value as object).constructor?.name ?? 'no prototype'})`;
    return `${typeof value} ${String(value)}`;
  } catch {
    return 'an object that throws when inspected';
  }
}

/**
 * A Float32Array of this realm whose `length` is its real length. Public
 * entries pass arrays through js/input.ts's realArray first, which makes
 * one of any Float32Array; this refuses whatever reaches a check without.
 */
export function validateFloat32Array(name: string, value: unknown): asserts value is Float32Array {
  if (!(value instanceof Float32Array) || typedArrayKind(value) !== 'Float32Array') {
    if (typedArrayKind(value) === 'Float32Array') throw new TypeError(`${name} is a Float32Array of another realm; pass it through the public API, which accepts those`);
    if (value instanceof Float32Array) throw new TypeError(`${name} must be a real Float32Array, got an object posing as one (a Proxy?)`);
    throw new TypeError(`${name} must be a Float32Array, got ${describe(value)}`);
  }
  const real = realLength(value);
  if (value.length !== real) {
    throw new TypeError(`${name}'s length property says ${String(value.length)} but it holds ${real} elements; pass a plain Float32Array`);
  }
}

function validateNumber(name: string, value: unknown): asserts value is number {
  if (typeof value !== 'number') throw new TypeError(`${name} must be a number, got ${describe(value)}`);
}

/** An integer in [1, 2^31 - 1]. */
export function validatePositiveInteger(name: string, value: unknown): asserts value is number {
  validateNumber(name, value);
  if (!Number.isInteger(value)) throw new RangeError(`${name} must be an integer, got ${value}`);
  if (value < 1) throw new RangeError(`${name} must be at least 1, got ${value}`);
  if (value > MAX_INT32) throw new RangeError(`${name} must be at most ${MAX_INT32}, got ${value}`);
}

export function validateFiniteNumber(name: string, value: unknown): asserts value is number {
  validateNumber(name, value);
  if (!Number.isFinite(value)) throw new RangeError(`${name} must be finite, got ${value}`);
}

export function validateBoolean(name: string, value: unknown): asserts value is boolean {
  if (typeof value !== 'boolean') throw new TypeError(`${name} must be a boolean, got ${describe(value)}`);
}

/** `array` has exactly `expected` elements; `formula` explains where the number comes from. */
export function validateLength(name: string, array: ArrayLike<unknown>, expected: number, formula: string): void {
  if (array.length !== expected) {
    throw new RangeError(`${name} has length ${array.length} but ${formula} = ${expected}`);
  }
}

/** Every element is finite (no NaN, no Infinity). */
export function validateFiniteElements(name: string, array: Float32Array): void {
  if (!anyNonFinite(array)) return;
  for (let i = 0; i < array.length; i++) {
    const x = array[i];
    // x - x is 0 for every finite x and NaN for NaN and +-Infinity.
    if (x - x !== 0) throw nonFiniteElementError(name, array, i);
  }
}

/** The error for array[index], a NaN or infinity. */
export function nonFiniteElementError(name: string, array: Float32Array, index: number): RangeError {
  return new RangeError(`${name}[${index}] is ${array[index]}; every element must be finite`);
}

/**
 * True when some element is NaN or infinite, by the bits: an all-ones
 * exponent plus one exponent step carries into the sign bit, which OR
 * accumulates. Four lanes per step, no branch per element: about twice as
 * fast as comparing floats, which matters on the 600k elements of one
 * N = 512 attention call.
 */
export function anyNonFinite(array: Float32Array): boolean {
  const bits = new Int32Array(array.buffer, array.byteOffset, array.length);
  const n = bits.length;
  const E = 0x7f800000;
  const STEP = 0x00800000;
  let acc = 0;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    acc |= ((bits[i] & E) + STEP) | ((bits[i + 1] & E) + STEP) | ((bits[i + 2] & E) + STEP) | ((bits[i + 3] & E) + STEP);
  }
  for (; i < n; i++) acc |= (bits[i] & E) + STEP;
  return acc < 0;
}

/** A Float32Array of `expected` elements. */
function validateSizedFloat32Array(name: string, value: unknown, expected: number, formula: string): asserts value is Float32Array {
  validateFloat32Array(name, value);
  validateLength(name, value, expected, formula);
}

/** A Float32Array of `expected` finite elements. */
export function validateMatrix(name: string, value: unknown, expected: number, formula: string): asserts value is Float32Array {
  validateSizedFloat32Array(name, value, expected, formula);
  validateFiniteElements(name, value);
}

/** Attention arguments with every default filled in. */
export interface ResolvedAttention {
  seqLen: number;
  kvSeqLen: number;
  dim: number;
  heads: number;
  headDim: number;
  scale: number;
  causal: boolean;
  validKeyLength: number;
  /** Heads of K and V (heads unless options.kvHeads). */
  kvHeads?: number;
  /** Whether the call needs the general kernel entry (kvHeads, mask, softcap or window given). */
  general?: boolean;
}

/**
 * Checks attention arguments and resolves the options against the defaults.
 * elements: 'check' also checks every element of Q, K and V is finite;
 * 'module' leaves that to QEModule.attention, which checks them in module
 * memory after the copy, far faster than JavaScript can; 'shape' checks no
 * arrays at all (Q, K and V are not given: resident buffers are made to fit).
 */
export function validateAttention(
  Q: unknown,
  K: unknown,
  V: unknown,
  seqLen: unknown,
  dim: unknown,
  options: AttentionOptions | undefined,
  defaults: { heads: number; causal: boolean },
  elements: 'check' | 'module' | 'shape' = 'check',
): ResolvedAttention {
  validatePositiveInteger('seqLen', seqLen);
  validatePositiveInteger('dim', dim);
  if (options !== undefined && (options === null || typeof options !== 'object')) {
    throw new TypeError(`options must be an object, got ${describe(options)}`);
  }
  const opts: AttentionOptions = options ?? {};
  for (const key of Object.keys(opts)) {
    if (!ATTENTION_OPTION_KEYS.includes(key)) {
      throw new TypeError(`options has an unknown attention option '${key}'; known options are: ${ATTENTION_OPTION_KEYS.join(', ')}`);
    }
    // `??` would take null for the default: refuse it, naming the key.
    if ((opts as Record<string, unknown>)[key] === null) throw new TypeError(`options.${key} must not be null (leave it out for the default)`);
  }

  const kvSeqLen = opts.kvSeqLen ?? seqLen;
  validatePositiveInteger('options.kvSeqLen', kvSeqLen);
  const heads = opts.heads ?? defaults.heads;
  validatePositiveInteger(opts.heads === undefined ? 'heads (config.blocks.headsPerBlock)' : 'options.heads', heads);
  if (dim % heads !== 0) {
    throw new RangeError(`heads must divide dim: dim ${dim} is not a multiple of heads ${heads} (dim % heads = ${dim % heads})`);
  }
  const headDim = dim / heads;
  const scale = opts.scale ?? 1 / Math.sqrt(headDim);
  validateFiniteNumber('options.scale', scale);
  const causal = opts.causal ?? defaults.causal;
  validateBoolean(opts.causal === undefined ? 'config.useCausalMask' : 'options.causal', causal);
  const validKeyLength = opts.validKeyLength ?? kvSeqLen;
  validateNumber('options.validKeyLength', validKeyLength);
  if (!Number.isInteger(validKeyLength) || validKeyLength < 1 || validKeyLength > kvSeqLen) {
    throw new RangeError(`options.validKeyLength must be an integer in [1, kvSeqLen = ${kvSeqLen}], got ${validKeyLength}`);
  }

  const kvHeads = opts.kvHeads ?? heads;
  validatePositiveInteger('options.kvHeads', kvHeads);
  if (heads % kvHeads !== 0) throw new RangeError(`options.kvHeads must divide heads: ${heads} query heads are not a multiple of ${kvHeads}`);
  const kvDim = kvHeads * headDim;
  if (opts.softcap !== undefined) {
    validateFiniteNumber('options.softcap', opts.softcap);
    if (opts.softcap < 0) throw new RangeError(`options.softcap must be >= 0, got ${opts.softcap}`);
  }
  if (opts.window !== undefined) {
    if (typeof opts.window !== 'object' || opts.window === null) throw new TypeError(`options.window must be an object { left?, right? }, got ${describe(opts.window)}`);
    for (const side of ['left', 'right'] as const) {
      const w = opts.window[side];
      if (w === undefined) continue;
      validateNumber(`options.window.${side}`, w);
      if (!Number.isInteger(w) || w < -1 || w > MAX_INT32) throw new RangeError(`options.window.${side} must be an integer >= -1, got ${w}`);
    }
  }
  if (opts.mask !== undefined) {
    if (typeof opts.mask !== 'object' || opts.mask === null || !(opts.mask.data instanceof Uint8Array || opts.mask.data instanceof Float32Array)) {
      throw new TypeError(`options.mask must be { data: Uint8Array (boolean) or Float32Array (additive), dims }, got ${describe(opts.mask)}`);
    }
    if (validKeyLength !== kvSeqLen) throw new RangeError('options.validKeyLength cannot be combined with options.mask: put the padding in the mask');
  }
  const general = opts.kvHeads !== undefined || opts.mask !== undefined || opts.softcap !== undefined || opts.window !== undefined;

  if (elements !== 'shape') {
    const check: typeof validateMatrix = elements === 'check' ? validateMatrix : validateSizedFloat32Array;
    check('Q', Q, seqLen * dim, `seqLen x dim = ${seqLen} x ${dim}`);
    const kvFormula = opts.kvHeads === undefined ? `kvSeqLen x dim = ${kvSeqLen} x ${dim}` : `kvSeqLen x (kvHeads x dim / heads) = ${kvSeqLen} x ${kvDim}`;
    check('K', K, kvSeqLen * kvDim, kvFormula);
    check('V', V, kvSeqLen * kvDim, kvFormula);
  }

  return { seqLen, kvSeqLen, dim, heads, headDim, scale, causal, validKeyLength, kvHeads, general };
}

/** A complete configuration with every field of the right type and in range. */
export function validateFlashAttentionConfig(config: WorkloadFlashAttentionConfig): void {
  if (!BACKENDS.includes(config.backend)) {
    throw new RangeError(`config.backend must be one of ${BACKENDS.join(', ')}; got ${describe(config.backend)}`);
  }
  if (!STRATEGIES.includes(config.strategy)) {
    throw new RangeError(`config.strategy must be one of ${STRATEGIES.join(', ')} (or agentic-qe 3.14's 'flash'); got ${describe(config.strategy)}`);
  }
  validatePositiveInteger('config.dim', config.dim);
  if (config.blocks === null || typeof config.blocks !== 'object') {
    throw new TypeError(`config.blocks must be an object, got ${describe(config.blocks)}`);
  }
  validatePositiveInteger('config.blocks.headsPerBlock', config.blocks.headsPerBlock);
  validatePositiveInteger('config.blocks.queryChunkSize', config.blocks.queryChunkSize);
  validatePositiveInteger('config.blocks.kvChunkSize', config.blocks.kvChunkSize);
  validatePositiveInteger('config.blocks.matmulBlockSize', config.blocks.matmulBlockSize);
  // Found now, not at the first call: every call's default heads split dim.
  if (config.dim % config.blocks.headsPerBlock !== 0) {
    throw new RangeError(
      `config.dim ${config.dim} is not a multiple of config.blocks.headsPerBlock ${config.blocks.headsPerBlock} (the heads split dim)`,
    );
  }
  // Recorded for code written against the original module; exact inference
  // applies no dropout, always fuses softmax, and has nothing to checkpoint.
  validateFiniteNumber('config.dropoutRate', config.dropoutRate);
  if (config.dropoutRate < 0 || config.dropoutRate > 1) {
    throw new RangeError(`config.dropoutRate must be in [0, 1], got ${config.dropoutRate}`);
  }
  validateBoolean('config.useCausalMask', config.useCausalMask);
  validateBoolean('config.fusedSoftmax', config.fusedSoftmax);
  validateBoolean('config.enableCheckpointing', config.enableCheckpointing);
  const speedup = config.targetSpeedup;
  if (speedup === null || typeof speedup !== 'object') {
    throw new TypeError(`config.targetSpeedup must be an object, got ${describe(speedup)}`);
  }
  validateFiniteNumber('config.targetSpeedup.min', speedup.min);
  validateFiniteNumber('config.targetSpeedup.max', speedup.max);
  if (speedup.min <= 0 || speedup.max < speedup.min) {
    throw new RangeError(`config.targetSpeedup must have 0 < min <= max, got min ${speedup.min}, max ${speedup.max}`);
  }
}

export function validateMatmul(a: unknown, b: unknown, m: unknown, n: unknown, k: unknown): void {
  validatePositiveInteger('m', m);
  validatePositiveInteger('n', n);
  validatePositiveInteger('k', k);
  validateMatrix('a', a, m * k, `m x k = ${m} x ${k}`);
  validateMatrix('b', b, k * n, `k x n = ${k} x ${n}`);
}

export function validateVecAdd(a: unknown, b: unknown): void {
  validateFloat32Array('a', a);
  validateFloat32Array('b', b);
  if (a.length === 0) throw new RangeError('a is empty; vecAdd needs at least one element');
  validateLength('b', b, a.length, 'a.length');
  validateFiniteElements('a', a);
  validateFiniteElements('b', b);
}

/** Returns the ids as an Int32Array (a copy only when given a plain array). */
export function validateEmbeddingLookup(ids: unknown, table: unknown, dim: unknown): { ids: Int32Array; rows: number } {
  validatePositiveInteger('dim', dim);
  validateFloat32Array('table', table);
  if (table.length === 0 || table.length % dim !== 0) {
    throw new RangeError(`table has length ${table.length}, which is not a positive multiple of dim ${dim}`);
  }
  const rows = table.length / dim;
  if (rows > MAX_INT32) throw new RangeError(`table has ${rows} rows; at most ${MAX_INT32} are supported`);
  validateFiniteElements('table', table);

  let idArray: Int32Array;
  if (ids instanceof Int32Array) {
    idArray = ids;
    for (let i = 0; i < idArray.length; i++) {
      const id = idArray[i];
      if (id < 0 || id >= rows) throw new RangeError(`ids[${i}] is ${id}, outside the table's rows [0, ${rows})`);
    }
  } else if (Array.isArray(ids)) {
    idArray = new Int32Array(ids.length);
    for (let i = 0; i < ids.length; i++) {
      const id: unknown = ids[i];
      if (typeof id !== 'number') throw new TypeError(`ids[${i}] must be a number, got ${describe(id)}`);
      if (!Number.isInteger(id)) throw new RangeError(`ids[${i}] must be an integer, got ${id}`);
      if (id < 0 || id >= rows) throw new RangeError(`ids[${i}] is ${id}, outside the table's rows [0, ${rows})`);
      idArray[i] = id;
    }
  } else {
    throw new TypeError(`ids must be an Int32Array or an array of numbers, got ${describe(ids)}`);
  }
  return { ids: idArray, rows };
}

/** Returns the number of rows of length rowLength in x. */
export function validateRows(name: string, x: unknown, rowLength: unknown): number {
  validateFloat32Array(name, x);
  if (x.length === 0) throw new RangeError(`${name} is empty`);
  validatePositiveInteger('rowLength', rowLength);
  if (x.length % rowLength !== 0) {
    throw new RangeError(`${name} has length ${x.length}, which is not a multiple of the row length ${rowLength}`);
  }
  validateFiniteElements(name, x);
  return x.length / rowLength;
}

export function validateLayerNorm(x: unknown, gamma: unknown, beta: unknown, eps: unknown): number {
  validateFloat32Array('gamma', gamma);
  validateFloat32Array('beta', beta);
  if (gamma.length === 0) throw new RangeError('gamma is empty');
  validateLength('beta', beta, gamma.length, 'gamma.length');
  validateFiniteNumber('eps', eps);
  // eps 0 divides a constant row by its zero variance: NaN.
  if (eps <= 0) throw new RangeError(`eps must be positive (with 0 a constant row divides by its zero variance), got ${eps}`);
  validateFiniteElements('gamma', gamma);
  validateFiniteElements('beta', beta);
  return validateRows('x', x, gamma.length);
}
