/**
 * Pattern adaptation: a Micro-LoRA adapter on query embeddings that learns
 * from feedback, and a cache of patterns searched through it. The state
 * lives in C behind two handles (csrc/adapt/, csrc/api_adapt.c); this file
 * checks arguments, copies vectors through buffers that stay resident in
 * module memory, and keeps the map from pattern ids to cache rows.
 *
 * The adapter: y = x + (alpha / rank) B (A x); new, it is the identity.
 * Learning updates A and B by the exact gradient of InfoNCE on y / |y|
 * (positive, negatives, temperature), or of its reward-weighted form; see
 * csrc/adapt/micro_lora.h. Stored patterns are not adapted: the adapter maps
 * queries toward the space the patterns live in.
 *
 * Per call at the microsecond scale, what costs is JavaScript, not C: so the
 * hot paths (apply, adapt with vectors) allocate nothing but their result
 * (apply(x, out) not even that), reuse typed-array views of the resident
 * buffers, and make one call into the module.
 *
 * Also here, under the names agentic-qe's SONA wrapper gives them
 * (integrations/ruvector/sona-wrapper): applyMicroLora, storePattern,
 * recallPattern, recordOutcome, adaptPattern, getStats.
 */
import type { ModuleLoadOptions, QEWorkloadType } from '../types';
import { QE_FLASH_ATTENTION_CONFIG, QE_SONA_CONFIG, assertWorkloadType } from './config';
import { checkStatus, loadQEModule, QE_STATUS, type AdaptEntries, type QEModule } from './module';
import { readFileBytes, writeBytesAtomic } from './platform';
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
  /** Bytes of module memory the adapter and cache hold (weights, optimizer state, embeddings). */
  memoryBytes: number;
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

const EXPORT_MAGIC = 0x41504551; /* "QEPA" */
const EXPORT_VERSION = 1;
const EXPORT_HEADER = 32;
const DEFAULT_SEED = 42;
const DEFAULT_TEMPERATURE = 0.1;
const DEFAULT_NEGATIVES = 7;
const MAX_K = 4096;
/** A SONA-shaped pattern keeps its other fields here in metadata. */
const SONA_KEY = '__sonaPattern';

const STATUS_WORDS: Record<number, string> = {
  [QE_STATUS.ERR_FORMAT]: 'not this format (wrong magic) or inconsistent inside',
  [QE_STATUS.ERR_VERSION]: 'written by a format version this library does not read',
  [QE_STATUS.ERR_CHECKSUM]: 'checksum mismatch: the bytes are corrupt',
  [QE_STATUS.ERR_TRUNCATED]: 'truncated: fewer bytes than the format says',
};

function vectorError(name: string, value: unknown, dim: number): TypeError | RangeError {
  if (value instanceof Float32Array || Array.isArray(value)) {
    return new RangeError(`${name} must have ${dim} elements (the adapter's dim), got ${value.length}`);
  }
  return new TypeError(`${name} must be a Float32Array or an array of numbers, got ${describe(value)}`);
}

/** The first element of x that is not a finite number, as a RangeError. */
function nonFiniteError(name: string, x: Vector): RangeError {
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      return new RangeError(`${name}[${i}] must be a finite number, got ${typeof v === 'number' ? v : describe(v)}`);
    }
  }
  return new RangeError(`${name}: the adapted vector overflows float32 (elements as large as ${maxAbs(x).toExponential(2)})`);
}

function maxAbs(x: Vector): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]));
  return m;
}

function checkNumber(name: string, v: unknown, lo: number, hi: number, loOpen = false): number {
  if (typeof v !== 'number' || Number.isNaN(v)) throw new TypeError(`${name} must be a number, got ${describe(v)}`);
  if (!(loOpen ? v > lo : v >= lo) || !(v <= hi)) {
    throw new RangeError(`${name} must be in ${loOpen ? '(' : '['}${lo}, ${hi}], got ${v}`);
  }
  return v;
}

function checkInteger(name: string, v: unknown, lo: number, hi: number): number {
  checkNumber(name, v, lo, hi);
  if (!Number.isInteger(v)) throw new RangeError(`${name} must be an integer, got ${v}`);
  return v as number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A resident module buffer and its cached view (re-made after memory growth). */
class Resident {
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

export class PatternAdapter {
  readonly dim: number;
  readonly workload: QEWorkloadType;
  private rankValue: number;
  private readonly alpha: number;
  private readonly seed: number;
  private enabledValue: boolean;
  private maxPatterns: number;
  private optimizerName: 'adam' | 'sgd';
  private learningRate: number;
  private readonly beta1: number;
  private readonly beta2: number;
  private readonly epsilon: number;
  private readonly weightDecay: number;
  readonly temperature: number;
  readonly negatives: number;
  private readonly defaultQuality: number;

  private module: QEModule | null;
  private readonly x: AdaptEntries;
  private lora = 0;
  private cache = 0;
  /** Resident buffers: query in, vector out, keys, small outputs (ints, floats, doubles). */
  private readonly xBuf: Resident;
  private readonly yBuf: Resident;
  private keysBuf: Resident;
  private readonly small: number;
  private idxPtr = 0;
  private scorePtr = 0;
  private kCapacity = 0;
  private readonly lastQuery: Resident;
  private hasLastQuery = false;
  private lastResultRow = -1;

  /** Row -> id and metadata; id -> row. */
  private rowIds: string[] = [];
  private rowMeta: unknown[] = [];
  private readonly rows = new Map<string, number>();

  private adaptations = 0;
  private lastLoss: number | null = null;
  private evictions = 0;
  private lookups = 0;
  private lookupsWithResult = 0;
  private readonly adaptTimes = { count: 0, sum: 0, min: Infinity, max: 0 };

  constructor(module: QEModule, workload: QEWorkloadType, options: PatternAdapterOptions = {}) {
    if (options === null || typeof options !== 'object') throw new TypeError(`options must be an object, got ${describe(options)}`);
    const sona = QE_SONA_CONFIG[workload];
    this.workload = workload;
    this.dim = checkInteger('options.dim', options.dim ?? QE_FLASH_ATTENTION_CONFIG[workload].dim, 1, 1 << 21);
    this.rankValue = checkInteger('options.rank', options.rank ?? sona.microLoRARank, 1, 8);
    this.alpha = checkNumber('options.alpha', options.alpha ?? this.rankValue, -1e6, 1e6);
    this.seed = checkInteger('options.seed', options.seed ?? DEFAULT_SEED, 0, 0xffffffff);
    const enabled = options.enabled ?? sona.enabled;
    if (typeof enabled !== 'boolean') throw new TypeError(`options.enabled must be a boolean, got ${describe(enabled)}`);
    this.enabledValue = enabled;
    this.maxPatterns = checkInteger('options.maxPatterns', options.maxPatterns ?? sona.patternCacheSize, 1, 1 << 24);
    const optimizer = options.optimizer ?? 'adam';
    if (optimizer !== 'adam' && optimizer !== 'sgd') throw new RangeError(`options.optimizer must be 'adam' or 'sgd', got ${describe(optimizer)}`);
    this.optimizerName = optimizer;
    this.learningRate = checkNumber('options.learningRate', options.learningRate ?? (optimizer === 'adam' ? 0.01 : 0.1), 0, 1e6);
    this.beta1 = checkNumber('options.beta1', options.beta1 ?? 0.9, 0, 0.999999);
    this.beta2 = checkNumber('options.beta2', options.beta2 ?? 0.999, 0, 0.9999999);
    this.epsilon = checkNumber('options.epsilon', options.epsilon ?? 1e-8, 0, 1, true);
    this.weightDecay = checkNumber('options.weightDecay', options.weightDecay ?? 0, 0, 1e6);
    if (this.learningRate * this.weightDecay >= 1) {
      throw new RangeError(`options.learningRate * options.weightDecay must be below 1 (each step multiplies the weights by 1 - their product), got ${this.learningRate * this.weightDecay}`);
    }
    this.temperature = checkNumber('options.temperature', options.temperature ?? DEFAULT_TEMPERATURE, 0, 1e6, true);
    this.negatives = checkInteger('options.negatives', options.negatives ?? DEFAULT_NEGATIVES, 0, 4094);
    this.defaultQuality = checkNumber('options.defaultQuality', options.defaultQuality ?? 0.5, -3.4e38, 3.4e38);

    this.module = module;
    this.x = module.adaptEntries();
    // Resident: x, y, the last query, keys for 1 + negatives, and 64 bytes of small outputs.
    const d = this.dim;
    const ptr = (floats: number) => module.alloc(Math.max(floats, 4) * 4);
    const allocated: number[] = [];
    try {
      const px = ptr(d); allocated.push(px);
      const py = ptr(d); allocated.push(py);
      const pl = ptr(d); allocated.push(pl);
      const keyCount = this.negatives + 1;
      const pk = ptr(keyCount * d); allocated.push(pk);
      this.small = ptr(16); allocated.push(this.small);
      this.xBuf = new Resident(module, px, d);
      this.yBuf = new Resident(module, py, d);
      this.lastQuery = new Resident(module, pl, d);
      this.keysBuf = new Resident(module, pk, keyCount * d);
      this.ensureK(16);
      this.lora = this.createLora();
      this.cache = this.createCache(this.maxPatterns);
    } catch (error) {
      if (this.lora) this.x.qe_lora_destroy(this.lora);
      if (this.idxPtr) module.free(this.idxPtr);
      if (this.scorePtr) module.free(this.scorePtr);
      for (const p of allocated) module.free(p);
      throw error;
    }
  }

  /** The adapter's rank (an import may change it). */
  get rank(): number {
    return this.rankValue;
  }

  /** false: the adapter is the identity and does not learn. */
  get enabled(): boolean {
    return this.enabledValue;
  }

  /** SONA wrapper name: turns learning and the adapter on or off. */
  setEnabled(enabled: boolean): void {
    if (typeof enabled !== 'boolean') throw new TypeError(`enabled must be a boolean, got ${describe(enabled)}`);
    this.enabledValue = enabled;
  }

  isEnabled(): boolean {
    return this.enabledValue;
  }

  /** Patterns stored. */
  get size(): number {
    return this.rowIds.length;
  }

  // ---------------------------------------------------------------- apply

  /**
   * The adapted vector x + (alpha / rank) B (A x), into `out` when given (a
   * Float32Array of dim elements; may be x itself), else a new Float32Array.
   */
  apply(x: Vector, out?: Float32Array): Float32Array {
    const m = this.live();
    const d = this.dim;
    if (x === null || typeof x !== 'object' || x.length !== d || !(x instanceof Float32Array || Array.isArray(x))) {
      throw vectorError('x', x, d);
    }
    if (out !== undefined && (!(out instanceof Float32Array) || out.length !== d)) {
      throw out instanceof Float32Array ? new RangeError(`out must have ${d} elements, got ${out.length}`) : new TypeError(`out must be a Float32Array, got ${describe(out)}`);
    }
    void m;
    const xb = this.xBuf;
    (xb.view.byteLength === 0 ? xb.get() : xb.view).set(x);
    if (!this.enabledValue) {
      if (this.identityCheck() !== 0) throw nonFiniteError('x', x);
      const copy = out ?? new Float32Array(d);
      copy.set(xb.get());
      return copy;
    }
    const status = this.x.qe_lora_apply(this.lora, xb.ptr, this.yBuf.ptr);
    if (status !== 0) throw status === QE_STATUS.ERR_ARGUMENT ? nonFiniteError('x', x) : this.fail(status, 'qe_lora_apply');
    const yb = this.yBuf;
    const y = yb.view.byteLength === 0 ? yb.get() : yb.view;
    if (out === undefined) return y.slice();
    out.set(y);
    return out;
  }

  /** The identity adapter still refuses NaN and infinity (in C, on the resident copy). */
  private identityCheck(): number {
    for (const v of this.xBuf.get()) if (!Number.isFinite(v)) return QE_STATUS.ERR_ARGUMENT;
    return 0;
  }

  /** SONA wrapper name: apply, with the wrapper's number[] result. */
  applyMicroLora(input: Vector): number[] {
    return Array.from(this.apply(input));
  }

  // ---------------------------------------------------------------- learn

  /**
   * One learning step; returns the example's loss (before the step). See
   * AdaptExample. With enabled false nothing is learned and the loss of the
   * identity adapter is returned.
   */
  adapt(example: AdaptExample): number {
    const loss = this.accumulate(example);
    if (this.enabledValue) this.step();
    return loss;
  }

  /**
   * One step on the mean gradient of several examples; each contrastive
   * example also takes the other examples' positives as negatives (in-batch
   * negatives). Returns the mean loss.
   */
  adaptBatch(examples: readonly AdaptExample[]): number {
    this.live();
    if (!Array.isArray(examples) || examples.length === 0) throw new TypeError(`examples must be a non-empty array, got ${describe(examples)}`);
    const positives: (Vector | string)[] = [];
    for (const e of examples) if (e && typeof e === 'object' && 'anchor' in e) positives.push(e.positive);
    let sum = 0;
    try {
      examples.forEach((e, i) => {
        if (e && typeof e === 'object' && 'anchor' in e && positives.length > 1) {
          const others = positives.filter((p) => p !== e.positive).map((p) => (typeof p === 'string' ? this.embeddingOf(p, `examples[${i}].positive`) : p));
          const given = e.negatives === undefined ? [] : this.negativeList(e.negatives, `examples[${i}].negatives`);
          sum += this.accumulate({ anchor: e.anchor, positive: e.positive, negatives: [...given, ...others] }, `examples[${i}]`);
        } else {
          sum += this.accumulate(e, `examples[${i}]`);
        }
      });
    } catch (error) {
      // A failed batch learns nothing: drop what was accumulated.
      this.discardAccumulated();
      throw error;
    }
    if (this.enabledValue) this.step();
    return sum / examples.length;
  }

  /** The gradient of an example's loss, without learning: dL/dA [rank x dim] and dL/dB [dim x rank], row-major. */
  gradient(example: { anchor: Vector; positive: Vector; negatives?: readonly Vector[] | Float32Array; reward?: number }): { loss: number; gradA: Float32Array; gradB: Float32Array } {
    const m = this.live();
    if (example === null || typeof example !== 'object') throw new TypeError(`example must be an object, got ${describe(example)}`);
    const reward = example.reward ?? 1;
    checkNumber('example.reward', reward, -3.4e38, 3.4e38);
    const nkeys = this.loadKeys(example.positive, example.negatives === undefined ? [] : this.negativeList(example.negatives, 'example.negatives'), 'example');
    this.loadQuery(example.anchor, 'example.anchor');
    const n = this.rankValue * this.dim;
    return m.scope((s) => {
      const ga = s.allocFloats(n);
      const gb = s.allocFloats(n);
      const status = this.x.qe_lora_gradient(this.lora, this.xBuf.ptr, this.keysBuf.ptr, nkeys, this.temperature, reward, this.small, ga, gb);
      if (status !== 0) throw this.argumentError(status, 'example', 'qe_lora_gradient');
      return { loss: m.f32()[this.small >>> 2], gradA: s.readFloats(ga, n), gradB: s.readFloats(gb, n) };
    });
  }

  private accumulate(example: AdaptExample, name = 'example'): number {
    this.live();
    if (example === null || typeof example !== 'object') throw new TypeError(`${name} must be an object, got ${describe(example)}`);
    let loss: number;
    if ('anchor' in example) {
      this.loadQuery(example.anchor, `${name}.anchor`);
      if (example.negatives === undefined && (typeof example.positive === 'string' || this.rowIds.length > 0)) {
        loss = this.cacheAdapt(name, example.positive, 1);
      } else {
        const negatives = example.negatives === undefined ? [] : this.negativeList(example.negatives, `${name}.negatives`);
        const nkeys = this.loadKeys(example.positive, negatives, name);
        loss = this.keysAdapt(nkeys, 1, name);
      }
    } else if ('query' in example) {
      const reward = example.reward;
      if (typeof reward !== 'number' || !Number.isFinite(reward)) throw new TypeError(`${name}.reward must be a finite number, got ${describe(reward)}`);
      this.loadQuery(example.query, `${name}.query`);
      if (example.result !== undefined && typeof example.result !== 'string') throw new TypeError(`${name}.result must be a pattern id (string), got ${describe(example.result)}`);
      if (example.result === undefined && this.rowIds.length === 0) {
        throw new RangeError(`${name}: a reward needs the result it judges: give result (a pattern id), or store patterns first`);
      }
      loss = this.cacheAdapt(name, example.result ?? null, reward);
    } else {
      throw new TypeError(`${name} must be { anchor, positive, negatives? } or { query, reward, result? }, got an object with keys ${Object.keys(example).join(', ') || '(none)'}`);
    }
    this.adaptations++;
    this.lastLoss = loss;
    return loss;
  }

  /** C entries take only the step: when disabled the loss is the identity's. */
  private keysAdapt(nkeys: number, reward: number, name: string): number {
    const m = this.module as QEModule;
    if (!this.enabledValue) return this.identityLoss(nkeys, reward, name);
    const status = this.x.qe_lora_accumulate(this.lora, this.xBuf.ptr, this.keysBuf.ptr, nkeys, this.temperature, reward, this.small);
    if (status !== 0) throw this.argumentError(status, name, 'qe_lora_accumulate');
    return m.f32()[this.small >>> 2];
  }

  private identityLoss(nkeys: number, reward: number, name: string): number {
    const m = this.module as QEModule;
    const n = this.rankValue * this.dim;
    return m.scope((s) => {
      // The adapter may have learned before it was disabled: use a fresh (identity) one.
      const out = s.alloc(4);
      checkStatus(this.x.qe_lora_create(this.dim, this.rankValue, this.alpha, this.seed, out), 'qe_lora_create');
      const fresh = m.i32()[out >>> 2];
      try {
        const ga = s.allocFloats(n);
        const gb = s.allocFloats(n);
        const status = this.x.qe_lora_gradient(fresh, this.xBuf.ptr, this.keysBuf.ptr, nkeys, this.temperature, reward, this.small, ga, gb);
        if (status !== 0) throw this.argumentError(status, name, 'qe_lora_gradient');
        return m.f32()[this.small >>> 2];
      } finally {
        this.x.qe_lora_destroy(fresh);
      }
    });
  }

  private cacheAdapt(name: string, positive: Vector | string | null, reward: number): number {
    const m = this.module as QEModule;
    let row = -1;
    let vecPtr = 0;
    if (typeof positive === 'string') {
      row = this.rowOf(positive, `${name}.positive`);
    } else if (positive !== null) {
      this.checkVector(positive, `${name}.positive`);
      this.keysBuf.get().set(positive);
      vecPtr = this.keysBuf.ptr;
    }
    if (!this.enabledValue) {
      // Build the same keys C would mine, through the identity, and score them.
      const nkeys = this.mineKeys(row, positive === null, name);
      return this.identityLoss(nkeys, reward, name);
    }
    const small = this.small;
    const status = this.x.qe_cache_adapt(this.cache, this.lora, this.xBuf.ptr, row, vecPtr, this.negatives, this.temperature, reward, 0, small, small + 4);
    if (status !== 0) throw this.argumentError(status, name, 'qe_cache_adapt');
    return m.f32()[small >>> 2];
  }

  /** Keys for the disabled adapter: positive (row, vector already in keys[0], or the nearest), then mined negatives. */
  private mineKeys(row: number, nearest: boolean, name: string): number {
    const m = this.module as QEModule;
    const k = this.negatives + 2;
    this.ensureK(k);
    const status = this.x.qe_cache_search(this.cache, 0, this.xBuf.ptr, k, 0, this.idxPtr, this.scorePtr);
    if (status !== 0) throw this.argumentError(status, name, 'qe_cache_search');
    const idx = m.i32().slice(this.idxPtr >>> 2, (this.idxPtr >>> 2) + k);
    if (nearest) row = idx[0];
    if (row >= 0) checkStatus(this.x.qe_cache_row_embedding(this.cache, row, this.keysBuf.ptr), 'qe_cache_row_embedding');
    let nkeys = 1;
    for (let j = 0; j < k && idx[j] >= 0 && nkeys <= this.negatives; j++) {
      if (idx[j] === row) continue;
      checkStatus(this.x.qe_cache_row_embedding(this.cache, idx[j], this.keysBuf.ptr + nkeys * this.dim * 4), 'qe_cache_row_embedding');
      nkeys++;
    }
    return nkeys;
  }

  /** The optimizer step of what was accumulated. */
  private step(): void {
    const status = this.x.qe_lora_step(this.lora);
    if (status === QE_STATUS.ERR_ARGUMENT) {
      throw new RangeError('the step would make a weight infinite or NaN (learning rate, alpha or the inputs too large); the weights were left as they were');
    }
    if (status !== 0) throw this.fail(status, 'qe_lora_step');
  }

  private discardAccumulated(): void {
    checkStatus(this.x.qe_lora_discard(this.lora), 'qe_lora_discard');
  }

  /** The learning step of SONA's wrapper: the reward of the result the last look-up returned. */
  recordOutcome(reward: number, requestIndex?: number): number {
    this.live();
    void requestIndex;
    if (typeof reward !== 'number' || !Number.isFinite(reward)) throw new TypeError(`reward must be a finite number, got ${describe(reward)}`);
    if (!this.hasLastQuery || this.lastResultRow < 0 || this.lastResultRow >= this.rowIds.length) {
      throw new Error('recordOutcome: no look-up to judge yet (call findPatterns, recallPattern or adaptPattern first)');
    }
    this.xBuf.get().set(this.lastQuery.get());
    const loss = this.cacheAdapt('recordOutcome', this.rowIds[this.lastResultRow], reward);
    if (this.enabledValue) this.step();
    this.adaptations++;
    this.lastLoss = loss;
    return loss;
  }

  // -------------------------------------------------------------- patterns

  /**
   * Stores a pattern, or replaces the one with the same id. When the cache
   * is full the pattern of lowest quality (then least recently used) makes
   * room; its id is returned as `evicted`.
   */
  storePattern(pattern: PatternInput | Record<string, unknown>): { evicted: string | null } {
    const m = this.live();
    if (pattern === null || typeof pattern !== 'object') throw new TypeError(`pattern must be an object, got ${describe(pattern)}`);
    const p = pattern as Record<string, unknown>;
    const id = p.id;
    if (typeof id !== 'string' || id.length === 0) throw new TypeError(`pattern.id must be a non-empty string, got ${describe(id)}`);
    let embedding: unknown = p.embedding;
    let quality: unknown = p.quality;
    let metadata: unknown = p.metadata;
    if (embedding === undefined && p.stateEmbedding !== undefined) {
      // The SONA wrapper's QESONAPattern: keep its other fields, to give them back on recall.
      embedding = p.stateEmbedding;
      const outcome = p.outcome as { quality?: unknown } | undefined;
      quality = quality ?? outcome?.quality ?? p.confidence;
      const { stateEmbedding: _e, ...rest } = p;
      void _e;
      metadata = { [SONA_KEY]: true, ...rest };
    }
    this.checkVector(embedding, 'pattern.embedding');
    const q = quality === undefined ? this.defaultQuality : quality;
    if (typeof q !== 'number' || !Number.isFinite(q)) throw new TypeError(`pattern.quality must be a finite number, got ${describe(q)}`);
    let json: string | undefined;
    try {
      json = JSON.stringify(metadata === undefined ? [id] : [id, metadata]);
    } catch (error) {
      throw new TypeError(`pattern.metadata must survive JSON.stringify (it is exported with the cache): ${(error as Error).message}`);
    }
    const label = encoder.encode(json);
    if (label.length > 1 << 24) throw new RangeError(`pattern.metadata is too large: ${label.length} bytes as JSON, at most 16 MiB`);
    const existing = this.rows.get(id);
    return m.scope((s) => {
      const lp = s.alloc(Math.max(label.length, 1));
      m.u8().set(label, lp);
      this.xBuf.get().set(embedding as Vector);
      const out = this.small;
      const status = this.x.qe_cache_store(this.cache, existing ?? -1, this.xBuf.ptr, q, lp, label.length, out);
      if (status !== 0) {
        if (status === QE_STATUS.ERR_ARGUMENT) throw nonFiniteOrHuge('pattern.embedding', embedding as Vector);
        throw this.fail(status, 'qe_cache_store');
      }
      const i32 = m.i32();
      const row = i32[out >>> 2];
      const evictedFlag = i32[(out >>> 2) + 1];
      let evicted: string | null = null;
      if (evictedFlag) {
        evicted = this.rowIds[row];
        this.rows.delete(evicted);
        this.evictions++;
      }
      this.rowIds[row] = id;
      this.rowMeta[row] = metadata;
      this.rows.set(id, row);
      return { evicted };
    });
  }

  /** Stores several patterns; returns the ids evicted to make room. */
  storePatternsBatch(patterns: readonly (PatternInput | Record<string, unknown>)[]): string[] {
    if (!Array.isArray(patterns)) throw new TypeError(`patterns must be an array, got ${describe(patterns)}`);
    const evicted: string[] = [];
    for (const p of patterns) {
      const r = this.storePattern(p);
      if (r.evicted !== null) evicted.push(r.evicted);
    }
    return evicted;
  }

  /** Sets a stored pattern's quality (and with it, its place in the eviction order). */
  updatePattern(id: string, update: { quality?: number; metadata?: unknown; embedding?: Vector }): boolean {
    const row = this.rows.get(id);
    if (row === undefined) return false;
    const current = this.getPattern(id) as StoredPattern;
    this.storePattern({
      id,
      embedding: update.embedding ?? current.embedding,
      quality: update.quality ?? current.quality,
      metadata: 'metadata' in update ? update.metadata : current.metadata,
    });
    return true;
  }

  /**
   * The k stored patterns nearest to x through the adapter (cosine), best
   * first. Each result counts as a use (hits, recency for eviction).
   */
  findPatterns(x: Vector, k = 5): FoundPattern[] {
    const m = this.live();
    checkInteger('k', k, 1, MAX_K);
    this.loadQuery(x, 'x');
    const n = this.search(k, true, 'x');
    const i32 = m.i32();
    const f32 = m.f32();
    const out: FoundPattern[] = [];
    for (let j = 0; j < n; j++) {
      const row = i32[(this.idxPtr >>> 2) + j];
      const info = this.rowInfo(row);
      out.push({ id: this.rowIds[row], score: f32[(this.scorePtr >>> 2) + j], quality: info[0], hits: info[1], metadata: this.rowMeta[row] });
    }
    return out;
  }

  /** Searches the query in xBuf; returns the number of results (rows in idxPtr, scores in scorePtr). */
  private search(k: number, touch: boolean, name: string): number {
    const m = this.module as QEModule;
    this.ensureK(k);
    const status = this.x.qe_cache_search(this.cache, this.enabledValue ? this.lora : 0, this.xBuf.ptr, k, touch ? 1 : 0, this.idxPtr, this.scorePtr);
    if (status !== 0) throw this.argumentError(status, name, 'qe_cache_search');
    const n = Math.min(k, this.rowIds.length);
    this.lookups++;
    if (n > 0) this.lookupsWithResult++;
    this.lastQuery.get().set(this.xBuf.get());
    this.hasLastQuery = true;
    this.lastResultRow = n > 0 ? m.i32()[this.idxPtr >>> 2] : -1;
    return n;
  }

  /**
   * SONA wrapper name: the best stored pattern for a context (a vector, or
   * an object with embedding, stateEmbedding or features), optionally of a
   * pattern type and domain; null when none. A pattern stored in the
   * wrapper's QESONAPattern shape comes back in that shape.
   */
  recallPattern(context: unknown, patternType?: string, domain?: string): unknown | null {
    const found = this.recall(context, patternType, domain);
    return found === null ? null : found.pattern;
  }

  private recall(context: unknown, patternType?: string, domain?: string): { pattern: unknown; score: number } | null {
    const m = this.live();
    const vector = contextVector(context);
    this.loadQuery(vector, 'context');
    const filtered = patternType !== undefined || domain !== undefined;
    let k = filtered ? 16 : 1;
    for (;;) {
      const n = this.search(Math.min(k, MAX_K), true, 'context');
      const i32 = m.i32();
      for (let j = 0; j < n; j++) {
        const row = i32[(this.idxPtr >>> 2) + j];
        const meta = this.rowMeta[row] as Record<string, unknown> | undefined;
        if (filtered && (meta === null || typeof meta !== 'object')) continue;
        if (patternType !== undefined && meta?.type !== patternType) continue;
        if (domain !== undefined && meta?.domain !== domain) continue;
        this.lastResultRow = row;
        return { pattern: this.patternOf(row), score: m.f32()[(this.scorePtr >>> 2) + j] };
      }
      if (n < k || k >= MAX_K || k >= this.rowIds.length) return null;
      k *= 4;
    }
  }

  /** SONA wrapper name: recall through the adapter, timed. */
  async adaptPattern(state: unknown, patternType?: string, domain?: string): Promise<PatternAdaptationResult> {
    const t0 = performance.now();
    const found = this.recall(state, patternType, domain);
    const ms = performance.now() - t0;
    const t = this.adaptTimes;
    t.count++;
    t.sum += ms;
    t.min = Math.min(t.min, ms);
    t.max = Math.max(t.max, ms);
    if (found === null) {
      return { success: false, pattern: null, adaptationTimeMs: ms, similarity: 0, reasoning: `no stored pattern${patternType ? ` of type ${patternType}` : ''}${domain ? ` in ${domain}` : ''} (${this.rowIds.length} stored)` };
    }
    return {
      success: true,
      pattern: found.pattern,
      adaptationTimeMs: ms,
      similarity: found.score,
      reasoning: `nearest of ${this.rowIds.length} stored patterns by cosine through the rank-${this.rankValue} adapter`,
    };
  }

  /** A stored pattern by id, or null. */
  getPattern(id: string): StoredPattern | null {
    const m = this.live();
    const row = this.rows.get(id);
    if (row === undefined) return null;
    const info = this.rowInfo(row);
    checkStatus(this.x.qe_cache_row_embedding(this.cache, row, this.yBuf.ptr), 'qe_cache_row_embedding');
    void m;
    return { id, embedding: this.yBuf.get().slice(), quality: info[0], hits: info[1], lastUse: info[2], metadata: this.rowMeta[row] };
  }

  /** Every stored pattern's id, in cache-row order. */
  patternIds(): string[] {
    this.live();
    return this.rowIds.slice();
  }

  /** Removes a pattern; false when there is none of that id. */
  removePattern(id: string): boolean {
    const m = this.live();
    const row = this.rows.get(id);
    if (row === undefined) return false;
    checkStatus(this.x.qe_cache_remove(this.cache, row, this.small), 'qe_cache_remove');
    const moved = m.i32()[this.small >>> 2];
    this.rows.delete(id);
    const last = this.rowIds.length - 1;
    if (moved >= 0) {
      this.rowIds[row] = this.rowIds[moved];
      this.rowMeta[row] = this.rowMeta[moved];
      this.rows.set(this.rowIds[row], row);
    }
    this.rowIds.length = last;
    this.rowMeta.length = last;
    if (this.lastResultRow === row) this.lastResultRow = -1;
    else if (this.lastResultRow === moved) this.lastResultRow = row;
    return true;
  }

  /** Removes every pattern (the SONA wrapper's clear()). */
  clear(): void {
    this.live();
    checkStatus(this.x.qe_cache_clear(this.cache), 'qe_cache_clear');
    this.rowIds = [];
    this.rowMeta = [];
    this.rows.clear();
    this.lastResultRow = -1;
  }

  /** The id a new pattern would evict now, or null when the cache is not full. */
  nextEviction(): string | null {
    this.live();
    if (this.rowIds.length < this.maxPatterns) return null;
    return this.rowIds[this.x.qe_cache_victim(this.cache)];
  }

  // ------------------------------------------------------ weights, reset

  /** Back to the identity adapter of its seed: weights, optimizer state and counters. Patterns stay. */
  reset(): void {
    this.live();
    checkStatus(this.x.qe_lora_reset(this.lora), 'qe_lora_reset');
    this.adaptations = 0;
    this.lastLoss = null;
  }

  /** A copy of the weights: A [rank x dim] and B [dim x rank], row-major. */
  getWeights(): { A: Float32Array; B: Float32Array } {
    const m = this.live();
    const n = this.rankValue * this.dim;
    return m.scope((s) => {
      const a = s.allocFloats(n);
      const b = s.allocFloats(n);
      checkStatus(this.x.qe_lora_get_weights(this.lora, a, b), 'qe_lora_get_weights');
      return { A: s.readFloats(a, n), B: s.readFloats(b, n) };
    });
  }

  /** Sets A [rank x dim] and B [dim x rank] (finite). Optimizer state is kept. */
  setWeights(weights: { A: Float32Array; B: Float32Array }): void {
    const m = this.live();
    const n = this.rankValue * this.dim;
    if (weights === null || typeof weights !== 'object') throw new TypeError(`weights must be { A, B }, got ${describe(weights)}`);
    for (const key of ['A', 'B'] as const) {
      const w = weights[key];
      if (!(w instanceof Float32Array)) throw new TypeError(`weights.${key} must be a Float32Array, got ${describe(w)}`);
      if (w.length !== n) throw new RangeError(`weights.${key} must have rank * dim = ${n} elements, got ${w.length}`);
      for (let i = 0; i < n; i++) if (!Number.isFinite(w[i])) throw new RangeError(`weights.${key}[${i}] must be finite, got ${w[i]}`);
    }
    m.scope((s) => {
      checkStatus(this.x.qe_lora_set_weights(this.lora, s.copyIn(weights.A), s.copyIn(weights.B)), 'qe_lora_set_weights');
    });
  }

  /** base [dim x dim] (default the identity) plus (alpha / rank) B A: the adapter as one matrix. */
  merge(base?: Float32Array): Float32Array {
    const m = this.live();
    const d = this.dim;
    let w: Float32Array;
    if (base === undefined) {
      w = new Float32Array(d * d);
      for (let i = 0; i < d; i++) w[i * d + i] = 1;
    } else {
      if (!(base instanceof Float32Array)) throw new TypeError(`base must be a Float32Array, got ${describe(base)}`);
      if (base.length !== d * d) throw new RangeError(`base must have dim * dim = ${d * d} elements, got ${base.length}`);
      w = base;
    }
    return m.scope((s) => {
      const p = s.copyIn(w);
      checkStatus(this.x.qe_lora_merge(this.lora, p), 'qe_lora_merge');
      return s.readFloats(p, d * d);
    });
  }

  // ------------------------------------------------------- export, import

  /**
   * The adapter (weights, optimizer state) and the cache (embeddings,
   * quality, hits, recency, ids and metadata) as bytes: "QEPA", version,
   * length, the two sections (each with its own magic, version and
   * CRC32C), and a CRC32C of the whole.
   */
  export(): Uint8Array {
    const m = this.live();
    const lora = this.exportAdapterBytes();
    const cacheBytes = this.x.qe_cache_export_bytes(this.cache);
    const total = EXPORT_HEADER + lora.length + cacheBytes + 4;
    return m.scope((s) => {
      const p = s.alloc(total);
      checkStatus(this.x.qe_cache_export(this.cache, p + EXPORT_HEADER + lora.length, cacheBytes), 'qe_cache_export');
      const u8 = m.u8();
      u8.set(lora, p + EXPORT_HEADER);
      const header = new DataView(u8.buffer, p, EXPORT_HEADER);
      header.setUint32(0, EXPORT_MAGIC, true);
      header.setUint32(4, EXPORT_VERSION, true);
      header.setBigUint64(8, BigInt(total), true);
      header.setUint32(16, lora.length, true);
      header.setUint32(20, cacheBytes, true);
      header.setUint32(24, 0, true); // flags: none yet
      header.setUint32(28, 0, true);
      const crc = this.x.qe_crc32c(p, total - 4) >>> 0;
      new DataView(m.u8().buffer, p + total - 4, 4).setUint32(0, crc, true);
      return m.u8().slice(p, p + total);
    });
  }

  /**
   * Replaces the adapter and the cache with an export's. Throws a
   * RangeError naming what is wrong (empty, truncated, wrong magic or
   * version, checksum mismatch, another dim) and changes nothing then.
   */
  import(bytes: Uint8Array): void {
    const m = this.live();
    if (!(bytes instanceof Uint8Array)) throw new TypeError(`bytes must be a Uint8Array, got ${describe(bytes)}`);
    if (bytes.length === 0) throw new RangeError('import: the bytes are empty');
    if (bytes.length < 8) throw new RangeError(`import: truncated: ${bytes.length} bytes, a pattern-adapter export has at least ${EXPORT_HEADER + 4}`);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const magic = view.getUint32(0, true);
    if (magic !== EXPORT_MAGIC) {
      throw new RangeError(`import: not a qe-flash pattern-adapter export (magic 0x${magic.toString(16).padStart(8, '0')}, expected 0x${EXPORT_MAGIC.toString(16)} "QEPA")`);
    }
    const version = view.getUint32(4, true);
    if (version !== EXPORT_VERSION) throw new RangeError(`import: format version ${version}; this library reads version ${EXPORT_VERSION}`);
    if (bytes.length < EXPORT_HEADER + 4) throw new RangeError(`import: truncated: ${bytes.length} bytes, a pattern-adapter export has at least ${EXPORT_HEADER + 4}`);
    const total = Number(view.getBigUint64(8, true));
    if (total > bytes.length) throw new RangeError(`import: truncated: ${bytes.length} bytes of the ${total} the export says it has`);
    const loraLen = view.getUint32(16, true);
    const cacheLen = view.getUint32(20, true);
    m.scope((s) => {
      const p = s.alloc(bytes.length);
      m.u8().set(bytes, p);
      const crc = this.x.qe_crc32c(p, bytes.length - 4) >>> 0;
      if (crc !== view.getUint32(bytes.length - 4, true)) throw new RangeError('import: checksum mismatch: the bytes are corrupt');
      if (total !== bytes.length || EXPORT_HEADER + loraLen + cacheLen + 4 !== total) {
        throw new RangeError(`import: inconsistent export: ${bytes.length} bytes, header says ${total} with sections of ${loraLen} and ${cacheLen}`);
      }
      const out = this.small;
      let status = this.x.qe_lora_import(p + EXPORT_HEADER, loraLen, out);
      if (status !== 0) throw this.formatError('import: the adapter section', status);
      const newLora = m.i32()[out >>> 2];
      status = this.x.qe_cache_import(p + EXPORT_HEADER + loraLen, cacheLen, out);
      if (status !== 0) {
        this.x.qe_lora_destroy(newLora);
        throw this.formatError('import: the cache section', status);
      }
      const newCache = m.i32()[out >>> 2];
      try {
        this.adopt(newLora, newCache);
      } catch (error) {
        this.x.qe_lora_destroy(newLora);
        this.x.qe_cache_destroy(newCache);
        throw error;
      }
    });
  }

  /** Writes export() to a file: a temporary file in the same folder, then a rename (Node only). */
  async saveTo(path: string): Promise<void> {
    if (typeof path !== 'string' || path.length === 0) throw new TypeError(`path must be a non-empty string, got ${describe(path)}`);
    await writeBytesAtomic(path, this.export());
  }

  /** Reads a file written by saveTo and imports it (Node only). */
  async loadFrom(path: string): Promise<void> {
    if (typeof path !== 'string' || path.length === 0) throw new TypeError(`path must be a non-empty string, got ${describe(path)}`);
    const data = await readFileBytes(path);
    this.import(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }

  // ------------------------------------------------------------------ stats

  getStats(): PatternAdapterStats {
    this.live();
    const steps = this.x.qe_lora_steps(this.lora);
    const t = this.adaptTimes;
    const patterns = this.rowIds.length;
    const weightBytes = 6 * this.rankValue * Math.ceil(this.dim / 4) * 4 * 4 + 2 * this.rankValue * Math.ceil(this.dim / 4) * 16;
    const cacheRows = patterns === 0 ? 0 : Math.min(Math.max(64, 2 ** Math.ceil(Math.log2(patterns))), Math.ceil(this.maxPatterns / 16) * 16);
    return {
      dim: this.dim,
      rank: this.rankValue,
      alpha: this.alpha,
      enabled: this.enabledValue,
      optimizer: this.optimizerName,
      learningRate: this.learningRate,
      temperature: this.temperature,
      steps,
      adaptations: this.adaptations,
      lastLoss: this.lastLoss,
      patterns,
      maxPatterns: this.maxPatterns,
      evictions: this.evictions,
      lookups: this.lookups,
      cacheHitRate: this.lookups === 0 ? 0 : this.lookupsWithResult / this.lookups,
      memoryBytes: weightBytes + cacheRows * (this.dim * 4 + 4 + 4 + 4 + 8 + 8),
      totalPatterns: patterns,
      totalAdaptations: this.adaptations,
      avgAdaptationTimeMs: t.count === 0 ? 0 : t.sum / t.count,
      minAdaptationTimeMs: t.count === 0 ? 0 : t.min,
      maxAdaptationTimeMs: t.max,
    };
  }

  /** Frees the module memory the adapter and its cache hold. Calls after this throw. */
  dispose(): void {
    const m = this.module;
    if (m === null) return;
    this.module = null;
    this.x.qe_lora_destroy(this.lora);
    this.x.qe_cache_destroy(this.cache);
    for (const p of [this.xBuf.ptr, this.yBuf.ptr, this.lastQuery.ptr, this.keysBuf.ptr, this.small, this.idxPtr, this.scorePtr]) m.free(p);
  }

  // --------------------------------------------------------------- helpers

  private live(): QEModule {
    if (this.module === null) throw new Error('this pattern adapter has been disposed; create a new one with createPatternAdapter()');
    return this.module;
  }

  private checkVector(x: unknown, name: string): asserts x is Vector {
    if (x === null || typeof x !== 'object' || !(x instanceof Float32Array || Array.isArray(x)) || (x as Vector).length !== this.dim) {
      throw vectorError(name, x, this.dim);
    }
  }

  private loadQuery(x: unknown, name: string): void {
    this.checkVector(x, name);
    this.xBuf.get().set(x);
  }

  private negativeList(negatives: unknown, name: string): Vector[] {
    if (negatives instanceof Float32Array) {
      if (negatives.length % this.dim !== 0) throw new RangeError(`${name}: a flat Float32Array must hold whole vectors of ${this.dim}, got ${negatives.length} elements`);
      const out: Vector[] = [];
      for (let i = 0; i < negatives.length; i += this.dim) out.push(negatives.subarray(i, i + this.dim));
      return out;
    }
    if (!Array.isArray(negatives)) throw new TypeError(`${name} must be an array of vectors or a flat Float32Array, got ${describe(negatives)}`);
    negatives.forEach((v, i) => this.checkVector(v, `${name}[${i}]`));
    return negatives as Vector[];
  }

  /** keys = [positive, ...negatives] into the resident keys buffer; returns their count. */
  private loadKeys(positive: unknown, negatives: readonly Vector[], name: string): number {
    const nkeys = negatives.length + 1;
    if (nkeys > 4096) throw new RangeError(`${name}: at most 4095 negatives, got ${negatives.length}`);
    this.ensureKeys(nkeys);
    const d = this.dim;
    const keys = this.keysBuf.get();
    if (typeof positive === 'string') {
      const row = this.rowOf(positive, `${name}.positive`);
      checkStatus(this.x.qe_cache_row_embedding(this.cache, row, this.keysBuf.ptr), 'qe_cache_row_embedding');
    } else {
      this.checkVector(positive, `${name}.positive`);
      keys.set(positive, 0);
    }
    for (let i = 0; i < negatives.length; i++) this.keysBuf.get().set(negatives[i], (i + 1) * d);
    return nkeys;
  }

  private embeddingOf(id: string, name: string): Float32Array {
    const p = this.getPattern(id);
    if (p === null) throw new RangeError(`${name}: no stored pattern has the id ${JSON.stringify(id)}`);
    return p.embedding;
  }

  private rowOf(id: string, name: string): number {
    const row = this.rows.get(id);
    if (row === undefined) throw new RangeError(`${name}: no stored pattern has the id ${JSON.stringify(id)}`);
    return row;
  }

  private rowInfo(row: number): Float64Array {
    const m = this.module as QEModule;
    const p = this.small + 32;
    checkStatus(this.x.qe_cache_row_info(this.cache, row, p), 'qe_cache_row_info');
    return m.f64().subarray(p >>> 3, (p >>> 3) + 4);
  }

  private patternOf(row: number): unknown {
    const meta = this.rowMeta[row];
    const info = this.rowInfo(row);
    const quality = info[0];
    const hits = info[1];
    checkStatus(this.x.qe_cache_row_embedding(this.cache, row, this.yBuf.ptr), 'qe_cache_row_embedding');
    const embedding = this.yBuf.get().slice();
    if (meta !== null && typeof meta === 'object' && (meta as Record<string, unknown>)[SONA_KEY] === true) {
      const { [SONA_KEY]: _flag, ...rest } = meta as Record<string, unknown>;
      void _flag;
      return { ...rest, stateEmbedding: Array.from(embedding), usageCount: hits };
    }
    return { id: this.rowIds[row], embedding, quality, hits, metadata: meta };
  }

  private ensureKeys(nkeys: number): void {
    if (nkeys * this.dim <= this.keysBuf.floats) return;
    const m = this.module as QEModule;
    const p = m.alloc(nkeys * this.dim * 4);
    m.free(this.keysBuf.ptr);
    this.keysBuf = new Resident(m, p, nkeys * this.dim);
  }

  private ensureK(k: number): void {
    if (k <= this.kCapacity) return;
    const m = this.module as QEModule;
    const cap = Math.max(k, 16);
    const idx = m.alloc(cap * 4);
    let score: number;
    try {
      score = m.alloc(cap * 4);
    } catch (error) {
      m.free(idx);
      throw error;
    }
    if (this.idxPtr) m.free(this.idxPtr);
    if (this.scorePtr) m.free(this.scorePtr);
    this.idxPtr = idx;
    this.scorePtr = score;
    this.kCapacity = cap;
  }

  private createLora(): number {
    const m = this.module as QEModule;
    checkStatus(this.x.qe_lora_create(this.dim, this.rankValue, this.alpha, this.seed, this.small), 'qe_lora_create');
    const lora = m.i32()[this.small >>> 2];
    const prev = this.lora;
    this.lora = lora;
    try {
      this.applyOptimizer();
    } catch (error) {
      this.x.qe_lora_destroy(lora);
      this.lora = prev;
      throw error;
    }
    this.lora = prev;
    return lora;
  }

  private applyOptimizer(): void {
    checkStatus(
      this.x.qe_lora_set_optimizer(this.lora, this.optimizerName === 'adam' ? 1 : 0, this.learningRate, this.beta1, this.beta2, this.epsilon, this.weightDecay),
      'qe_lora_set_optimizer',
    );
  }

  private createCache(maxPatterns: number): number {
    const m = this.module as QEModule;
    checkStatus(this.x.qe_cache_create(this.dim, maxPatterns, this.small), 'qe_cache_create');
    return m.i32()[this.small >>> 2];
  }

  private exportAdapterBytes(): Uint8Array {
    const m = this.module as QEModule;
    const n = this.x.qe_lora_export_bytes(this.lora);
    return m.scope((s) => {
      const p = s.alloc(n);
      checkStatus(this.x.qe_lora_export(this.lora, p, n), 'qe_lora_export');
      return m.u8().slice(p, p + n);
    });
  }

  /** Takes over an imported adapter and cache (already checked by C). */
  private adopt(lora: number, cache: number): void {
    const m = this.module as QEModule;
    const x = this.x;
    checkStatus(x.qe_lora_shape(lora, this.small), 'qe_lora_shape');
    const probe = { dim: m.i32()[this.small >>> 2], rank: m.i32()[(this.small >>> 2) + 1] };
    if (probe.dim !== this.dim) throw new RangeError(`import: the export holds an adapter of dim ${probe.dim}; this one has dim ${this.dim}`);
    checkStatus(x.qe_cache_shape(cache, this.small), 'qe_cache_shape');
    const cacheDim = m.i32()[this.small >>> 2];
    const maxPatterns = m.i32()[(this.small >>> 2) + 2];
    if (cacheDim !== this.dim) throw new RangeError(`import: the export holds patterns of dim ${cacheDim}; this adapter has dim ${this.dim}`);
    const rows: string[] = [];
    const meta: unknown[] = [];
    const count = x.qe_cache_count(cache);
    const ids = new Map<string, number>();
    for (let r = 0; r < count; r++) {
      const ptr = x.qe_cache_row_label(cache, r, this.small) >>> 0;
      const len = m.i32()[this.small >>> 2];
      let parsed: unknown;
      try {
        parsed = JSON.parse(decoder.decode(m.u8().subarray(ptr, ptr + len)));
      } catch {
        throw new RangeError(`import: pattern ${r}'s id and metadata are not valid JSON`);
      }
      if (!Array.isArray(parsed) || typeof parsed[0] !== 'string' || parsed.length > 2) throw new RangeError(`import: pattern ${r} has no id`);
      if (ids.has(parsed[0])) throw new RangeError(`import: the id ${JSON.stringify(parsed[0])} appears twice`);
      ids.set(parsed[0], r);
      rows.push(parsed[0]);
      meta.push(parsed[1]);
    }
    x.qe_lora_destroy(this.lora);
    x.qe_cache_destroy(this.cache);
    this.lora = lora;
    this.cache = cache;
    this.rankValue = probe.rank;
    this.maxPatterns = maxPatterns;
    // The weights and optimizer state are the export's; the settings stay this adapter's.
    this.applyOptimizer();
    this.rowIds = rows;
    this.rowMeta = meta;
    this.rows.clear();
    for (const [id, r] of ids) this.rows.set(id, r);
    this.lastResultRow = -1;
    this.hasLastQuery = false;
  }

  private argumentError(status: number, name: string, entry: string): Error {
    if (status === QE_STATUS.ERR_ARGUMENT) {
      return new RangeError(`${name}: a vector has NaN or infinity, the query is a zero vector, or the adapted query overflows float32`);
    }
    return this.fail(status, entry);
  }

  private formatError(what: string, status: number): RangeError {
    const words = STATUS_WORDS[status];
    if (words !== undefined) return new RangeError(`${what} is ${words}`);
    try {
      checkStatus(status, what);
    } catch (error) {
      return error as RangeError;
    }
    return new RangeError(`${what}: status ${status}`);
  }

  private fail(status: number, entry: string): Error {
    try {
      checkStatus(status, entry);
    } catch (error) {
      return error as Error;
    }
    return new Error(`${entry}: unexpected status ${status}`);
  }
}

function nonFiniteOrHuge(name: string, x: Vector): RangeError {
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    if (typeof v !== 'number' || !Number.isFinite(v)) return new RangeError(`${name}[${i}] must be a finite number, got ${typeof v === 'number' ? v : describe(v)}`);
  }
  return new RangeError(`${name}: its norm overflows float32 (elements as large as ${maxAbs(x).toExponential(2)})`);
}

/** The vector of a SONA context: itself, or its embedding, stateEmbedding or features. */
function contextVector(context: unknown): unknown {
  if (context instanceof Float32Array || Array.isArray(context)) return context;
  if (context !== null && typeof context === 'object') {
    const c = context as Record<string, unknown>;
    return c.embedding ?? c.stateEmbedding ?? c.features;
  }
  return context;
}

/**
 * A pattern adapter for a workload (default 'pattern-adaptation'): rank,
 * cache size and on/off from QE_SONA_CONFIG, dim from the workload's preset;
 * options override any of them.
 */
export async function createPatternAdapter(workload: QEWorkloadType = 'pattern-adaptation', options: PatternAdapterOptions = {}): Promise<PatternAdapter> {
  assertWorkloadType(workload);
  if (options === null || typeof options !== 'object') throw new TypeError(`options must be an object, got ${describe(options)}`);
  const module = await loadQEModule(options.module ?? {});
  return new PatternAdapter(module, workload, options);
}
