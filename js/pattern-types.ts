/**
 * Pattern adaptation, the shared parts: the public types, argument checks
 * and the error messages every part of the adapter uses, and the resident
 * buffer (a module allocation with a cached view). The adapter itself is
 * built in layers, one job each: pattern-core.ts (handles, buffers,
 * helpers), pattern-store.ts (the cache), pattern-learning.ts (apply and
 * learning), pattern-adapter.ts (files, stats, the SONA wrapper's names).
 */
import type { ModuleLoadOptions } from '../types';
import { QE_STATUS, type QEModule } from './module';
import { describe } from './validate';

/** A vector argument: a Float32Array or an array of numbers, of the adapter's dimension. */
export type Vector = Float32Array | readonly number[];

export interface PatternAdapterOptions {
  /** Embedding dimension; default: the workload's attention dim (256 for pattern-adaptation). */
  dim?: number;
  /** Micro-LoRA rank, 1 to 8; default: QE_SONA_CONFIG[workload].microLoRARank. */
  rank?: number;
  /** Scale numerator: y = x + (alpha / rank) B A x. Default: rank (scale 1). */
  alpha?: number;
  /** Seed of A's draw (an unsigned 32-bit integer). Default 42. */
  seed?: number;
  /** false makes the adapter the identity (no learning); default: QE_SONA_CONFIG[workload].enabled. */
  enabled?: boolean;
  /** Most patterns kept; default: QE_SONA_CONFIG[workload].patternCacheSize. */
  maxPatterns?: number;
  /** 'adam' (default) or 'sgd'. */
  optimizer?: 'adam' | 'sgd';
  /** Step size; default 0.01 (Adam) or 0.1 (SGD). */
  learningRate?: number;
  beta1?: number;
  beta2?: number;
  epsilon?: number;
  /** Decoupled weight decay toward zero per step (weights *= 1 - rate * decay). Default 0. */
  weightDecay?: number;
  /** InfoNCE temperature; default 0.1. */
  temperature?: number;
  /** Hard negatives mined from the cache when an example gives none; default 7. */
  negatives?: number;
  /** Default quality of a stored pattern that gives none; default 0.5. */
  defaultQuality?: number;
  /** Which module to load (see loader.ts). */
  module?: ModuleLoadOptions;
}

/** A pattern to store. metadata must survive JSON.stringify. */
export interface PatternInput {
  id: string;
  embedding: Vector;
  quality?: number;
  metadata?: unknown;
}

/** One result of findPatterns, best first. */
export interface FoundPattern {
  id: string;
  /** Cosine similarity of the adapted query with the stored embedding. */
  score: number;
  quality: number;
  hits: number;
  metadata: unknown;
}

/** A stored pattern, as getPattern returns it. */
export interface StoredPattern {
  id: string;
  embedding: Float32Array;
  quality: number;
  hits: number;
  /** Clock ticks (stores and look-ups) at its last use. */
  lastUse: number;
  metadata: unknown;
}

/**
 * One learning example:
 *  - contrastive: anchor, its positive (a vector, or the id of a stored
 *    pattern), negatives (vectors; omitted: mined from the cache);
 *  - reward: a query, a reward (> 0 good, < 0 bad), and the id of the
 *    result judged (omitted: the query's nearest pattern through the adapter).
 */
export type AdaptExample =
  | { anchor: Vector; positive: Vector | string; negatives?: readonly Vector[] | Float32Array }
  | { query: Vector; reward: number; result?: string };

export interface PatternAdapterStats {
  dim: number;
  rank: number;
  alpha: number;
  enabled: boolean;
  optimizer: 'adam' | 'sgd';
  learningRate: number;
  temperature: number;
  /** Optimizer steps since creation, reset or import. */
  steps: number;
  /** Examples learned from (adapt calls, batch members). */
  adaptations: number;
  lastLoss: number | null;
  patterns: number;
  maxPatterns: number;
  evictions: number;
  lookups: number;
  /** Look-ups that returned at least one pattern, over all look-ups. */
  cacheHitRate: number;
  /** Bytes of module memory the adapter and cache hold (weights, optimizer state, embeddings and their int8 codes). */
  memoryBytes: number;
  /**
   * Patterns the last look-up scored exactly after its pass over int8 codes
   * (k <= 64 in a cache of >= 256 patterns); 0 when it scored every pattern
   * exactly.
   */
  lastSearchExactRows: number;
  /** The SONA wrapper's names for some of the above, and its timing of adaptPattern. */
  totalPatterns: number;
  totalAdaptations: number;
  avgAdaptationTimeMs: number;
  minAdaptationTimeMs: number;
  maxAdaptationTimeMs: number;
}

/** What adaptPattern returns (the SONA wrapper's QESONAAdaptationResult). */
export interface PatternAdaptationResult {
  success: boolean;
  pattern: unknown | null;
  adaptationTimeMs: number;
  similarity: number;
  reasoning: string;
}

export const EXPORT_MAGIC = 0x41504551; /* "QEPA" */
export const EXPORT_VERSION = 1;
export const EXPORT_HEADER = 32;
export const DEFAULT_SEED = 42;
export const DEFAULT_TEMPERATURE = 0.1;
export const DEFAULT_NEGATIVES = 7;
export const MAX_K = 4096;
/** A SONA-shaped pattern keeps its other fields here in metadata. */
export const SONA_KEY = '__sonaPattern';

export const STATUS_WORDS: Record<number, string> = {
  [QE_STATUS.ERR_FORMAT]: 'not this format (wrong magic) or inconsistent inside',
  [QE_STATUS.ERR_VERSION]: 'written by a format version this library does not read',
  [QE_STATUS.ERR_CHECKSUM]: 'checksum mismatch: the bytes are corrupt',
  [QE_STATUS.ERR_TRUNCATED]: 'truncated: fewer bytes than the format says',
};

export function vectorError(name: string, value: unknown, dim: number): TypeError | RangeError {
  if (value instanceof Float32Array || Array.isArray(value)) {
    return new RangeError(`${name} must have ${dim} elements (the adapter's dim), got ${value.length}`);
  }
  return new TypeError(`${name} must be a Float32Array or an array of numbers, got ${describe(value)}`);
}

/** The first element of x that is not a finite number, as a RangeError. */
export function nonFiniteError(name: string, x: Vector): RangeError {
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      return new RangeError(`${name}[${i}] must be a finite number, got ${typeof v === 'number' ? v : describe(v)}`);
    }
  }
  return new RangeError(`${name}: the adapted vector overflows float32 (elements as large as ${maxAbs(x).toExponential(2)})`);
}

export function maxAbs(x: Vector): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]));
  return m;
}

export function checkNumber(name: string, v: unknown, lo: number, hi: number, loOpen = false): number {
  if (typeof v !== 'number') throw new TypeError(`${name} must be a number, got ${describe(v)}`);
  if (Number.isNaN(v)) throw new RangeError(`${name} must be a number in range, got NaN`);
  if (!(loOpen ? v > lo : v >= lo) || !(v <= hi)) {
    throw new RangeError(`${name} must be in ${loOpen ? '(' : '['}${lo}, ${hi}], got ${v}`);
  }
  return v;
}

export function checkInteger(name: string, v: unknown, lo: number, hi: number): number {
  checkNumber(name, v, lo, hi);
  if (!Number.isInteger(v)) throw new RangeError(`${name} must be an integer, got ${v}`);
  return v as number;
}

// Typed by shape, so the published declarations name neither TextEncoder
// nor TextDecoder: a consumer needs no DOM lib and no @types/node for them.
export const encoder: { encode(text: string): Uint8Array } = new TextEncoder();
export const decoder: { decode(bytes: Uint8Array): string } = new TextDecoder();

/** A resident module buffer and its cached view (re-made after memory growth). */
export class Resident {
  view: Float32Array;
  constructor(private readonly module: QEModule, readonly ptr: number, readonly floats: number) {
    this.view = module.f32().subarray(ptr >>> 2, (ptr >>> 2) + floats);
  }
  /**
   * The view, current. Growing a non-shared memory detaches the old view
   * (length 0); over a shared memory (the threaded builds) the old view
   * stays valid for the range it covers, which is all this buffer needs.
   */
  get(): Float32Array {
    if (this.view.byteLength === 0) {
      this.view = this.module.f32().subarray(this.ptr >>> 2, (this.ptr >>> 2) + this.floats);
    }
    return this.view;
  }
}

export function nonFiniteOrHuge(name: string, x: Vector): RangeError {
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    if (typeof v !== 'number' || !Number.isFinite(v)) return new RangeError(`${name}[${i}] must be a finite number, got ${typeof v === 'number' ? v : describe(v)}`);
  }
  return new RangeError(`${name}: its norm overflows float32 (elements as large as ${maxAbs(x).toExponential(2)})`);
}

/** The vector of a SONA context: itself, or its embedding, stateEmbedding or features. */
export function contextVector(context: unknown): unknown {
  if (context instanceof Float32Array || Array.isArray(context)) return context;
  if (context !== null && typeof context === 'object') {
    const c = context as Record<string, unknown>;
    return c.embedding ?? c.stateEmbedding ?? c.features;
  }
  return context;
}
