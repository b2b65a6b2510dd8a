/**
 * The pattern adapter's base layer: the adapter and cache handles in C
 * (csrc/adapt/, csrc/api_adapt.c), the resident buffers vectors go through,
 * the id <-> row map, and the helpers the other layers share. See
 * pattern-types.ts for the layers.
 */
import type { QEWorkloadType } from '../types';
import { QE_FLASH_ATTENTION_CONFIG, QE_SONA_CONFIG } from './config';
import { checkStatus, QE_STATUS, type AdaptEntries, type QEModule } from './module';
import {
  checkInteger,
  checkNumber,
  DEFAULT_NEGATIVES,
  DEFAULT_SEED,
  DEFAULT_TEMPERATURE,
  Resident,
  SONA_KEY,
  STATUS_WORDS,
  nonFiniteError,
  vectorError,
  type PatternAdapterOptions,
  type Vector,
} from './pattern-types';
import { realLength, realList, snapshotList } from './input';
import { assertWorkloadType } from './config';
import { anyNonFinite, describe } from './validate';

export class PatternAdapterCore {
  readonly dim: number;
  readonly workload: QEWorkloadType;
  protected rankValue: number;
  protected readonly alpha: number;
  protected readonly seed: number;
  protected enabledValue: boolean;
  protected maxPatterns: number;
  protected optimizerName: 'adam' | 'sgd';
  protected learningRate: number;
  protected readonly beta1: number;
  protected readonly beta2: number;
  protected readonly epsilon: number;
  protected readonly weightDecay: number;
  readonly temperature: number;
  readonly negatives: number;
  protected readonly defaultQuality: number;

  protected module: QEModule | null;
  protected readonly x: AdaptEntries;
  protected lora = 0;
  protected cache = 0;
  /** Resident buffers: query in, vector out, keys, small outputs (ints, floats, doubles). */
  protected readonly xBuf: Resident;
  protected readonly yBuf: Resident;
  protected keysBuf: Resident;
  /** Float32Arrays of the learning step under way whose finiteness C checks (see checkVector). */
  protected deferred: [string, Float32Array][] | null = null;
  protected readonly small: number;
  protected idxPtr = 0;
  protected scorePtr = 0;
  protected kCapacity = 0;
  protected readonly lastQuery: Resident;
  /** applyResident's buffers, allocated on first use. */
  protected residentPair: { input: Resident; output: Resident } | null = null;
  protected hasLastQuery = false;
  protected lastResultRow = -1;

  /** Row -> id and metadata; id -> row. */
  protected rowIds: string[] = [];
  protected rowMeta: unknown[] = [];
  protected readonly rows = new Map<string, number>();

  protected adaptations = 0;
  protected lastLoss: number | null = null;
  protected evictions = 0;
  protected lookups = 0;
  protected lookupsWithResult = 0;
  protected readonly adaptTimes = { count: 0, sum: 0, min: Infinity, max: 0 };

  constructor(module: QEModule, workload: QEWorkloadType, options: PatternAdapterOptions = {}) {
    if (module === null || typeof module !== 'object' || typeof (module as Partial<QEModule>).adaptEntries !== 'function') {
      throw new TypeError(`module must be a loaded qe-flash module (use createPatternAdapter), got ${describe(module)}`);
    }
    assertWorkloadType(workload);
    if (options === null || typeof options !== 'object') throw new TypeError(`options must be an object, got ${describe(options)}`);
    for (const [key, value] of Object.entries(options)) {
      // `??` would take null for the default: refuse it, naming the key.
      if (value === null) throw new TypeError(`options.${key} must not be null (leave it out for the default)`);
    }
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
    this.live();
    if (typeof enabled !== 'boolean') throw new TypeError(`enabled must be a boolean, got ${describe(enabled)}`);
    this.enabledValue = enabled;
  }

  isEnabled(): boolean {
    this.live();
    return this.enabledValue;
  }

  /** Patterns stored. */
  get size(): number {
    return this.rowIds.length;
  }

  /** Frees the module memory the adapter and its cache hold. Calls after this throw. */
  dispose(): void {
    const m = this.module;
    if (m === null) return;
    this.module = null;
    this.x.qe_lora_destroy(this.lora);
    this.x.qe_cache_destroy(this.cache);
    for (const p of [this.xBuf.ptr, this.yBuf.ptr, this.lastQuery.ptr, this.keysBuf.ptr, this.small, this.idxPtr, this.scorePtr]) m.free(p);
    if (this.residentPair !== null) {
      m.free(this.residentPair.input.ptr);
      m.free(this.residentPair.output.ptr);
      this.residentPair = null;
    }
  }

  // --------------------------------------------------------------- helpers

  protected live(): QEModule {
    if (this.module === null) throw new TypeError('this pattern adapter has been disposed; create a new one with createPatternAdapter()');
    return this.module;
  }

  /**
   * x as it really is (js/input.ts: a lying length, a Proxy, another realm or
   * a detached buffer change nothing below), checked to be dim finite numbers.
   * Callers copy the returned vector, never x itself.
   */
  protected checkVector(x: unknown, name: string, defer = false): Vector {
    // An honest Float32Array of this realm (its real length is dim) is taken
    // as it is: the copy reads its real elements, and C checks them again in
    // module memory after the copy (shared memory written meanwhile included).
    if (!(x instanceof Float32Array && realLength(x) === this.dim && x.length === this.dim)) x = realList(name, x);
    if (x === null || typeof x !== 'object' || !(x instanceof Float32Array || Array.isArray(x)) || (x as Vector).length !== this.dim) {
      throw vectorError(name, x, this.dim);
    }
    // A learning step's Float32Arrays are checked by C after the copy, in
    // module memory; only when it refuses them are they scanned here, to
    // name the culprit (argumentError). Elsewhere they are named up front.
    if (defer && x instanceof Float32Array) {
      (this.deferred ??= []).push([name, x]);
      return x;
    }
    // Named here, element by element: C's check after the copy only knows that some vector failed.
    if (x instanceof Float32Array ? anyNonFinite(x) : (x as unknown[]).some((v) => typeof v !== 'number' || !Number.isFinite(v))) throw nonFiniteError(name, x as Vector);
    return x as Vector;
  }

  protected loadQuery(x: unknown, name: string, defer = false): void {
    this.xBuf.get().set(this.checkVector(x, name, defer));
  }

  protected negativeList(negatives: unknown, name: string, defer = false): Vector[] {
    // A list is read once (snapshotList); each vector then goes through
    // checkVector, which reads it as it really is.
    negatives = Array.isArray(negatives) ? snapshotList(name, negatives) : realList(name, negatives);
    if (negatives instanceof Float32Array) {
      if (negatives.length % this.dim !== 0) throw new RangeError(`${name}: a flat Float32Array must hold whole vectors of ${this.dim}, got ${negatives.length} elements`);
      if (defer) (this.deferred ??= []).push([name, negatives]);
      else if (anyNonFinite(negatives)) throw nonFiniteError(name, negatives);
      const out: Vector[] = [];
      for (let i = 0; i < negatives.length; i += this.dim) out.push(negatives.subarray(i, i + this.dim));
      return out;
    }
    if (!Array.isArray(negatives)) throw new TypeError(`${name} must be an array of vectors or a flat Float32Array, got ${describe(negatives)}`);
    return negatives.map((v, i) => this.checkVector(v, `${name}[${i}]`, defer));
  }

  /** keys = [positive, ...negatives] into the resident keys buffer; returns their count. */
  protected loadKeys(positive: unknown, negatives: readonly Vector[], name: string, defer = false): number {
    const nkeys = negatives.length + 1;
    if (nkeys > 4096) throw new RangeError(`${name}: at most 4095 negatives, got ${negatives.length}`);
    this.ensureKeys(nkeys);
    const d = this.dim;
    const keys = this.keysBuf.get();
    if (typeof positive === 'string') {
      const row = this.rowOf(positive, `${name}.positive`);
      checkStatus(this.x.qe_cache_row_embedding(this.cache, row, this.keysBuf.ptr), 'qe_cache_row_embedding');
    } else {
      keys.set(this.checkVector(positive, `${name}.positive`, defer), 0);
    }
    for (let i = 0; i < negatives.length; i++) this.keysBuf.get().set(negatives[i], (i + 1) * d);
    return nkeys;
  }


  protected rowOf(id: string, name: string): number {
    const row = this.rows.get(id);
    if (row === undefined) throw new RangeError(`${name}: no stored pattern has the id ${JSON.stringify(id)}`);
    return row;
  }

  protected rowInfo(row: number): Float64Array {
    const m = this.module as QEModule;
    const p = this.small + 32;
    checkStatus(this.x.qe_cache_row_info(this.cache, row, p), 'qe_cache_row_info');
    return m.f64().subarray(p >>> 3, (p >>> 3) + 4);
  }

  protected patternOf(row: number): unknown {
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

  /** applyResident's input and output buffers (made on first use). */
  protected resident(): { input: Resident; output: Resident } {
    if (this.residentPair !== null) return this.residentPair;
    const m = this.module as QEModule;
    const pin = m.alloc(Math.max(this.dim, 4) * 4);
    let pout: number;
    try {
      pout = m.alloc(Math.max(this.dim, 4) * 4);
    } catch (error) {
      m.free(pin);
      throw error;
    }
    this.residentPair = { input: new Resident(m, pin, this.dim), output: new Resident(m, pout, this.dim) };
    this.residentPair.input.get().fill(0);
    return this.residentPair;
  }

  protected ensureKeys(nkeys: number): void {
    if (nkeys * this.dim <= this.keysBuf.floats) return;
    const m = this.module as QEModule;
    const p = m.alloc(nkeys * this.dim * 4);
    m.free(this.keysBuf.ptr);
    this.keysBuf = new Resident(m, p, nkeys * this.dim);
  }

  protected ensureK(k: number): void {
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

  protected createLora(): number {
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

  protected applyOptimizer(): void {
    checkStatus(
      this.x.qe_lora_set_optimizer(this.lora, this.optimizerName === 'adam' ? 1 : 0, this.learningRate, this.beta1, this.beta2, this.epsilon, this.weightDecay),
      'qe_lora_set_optimizer',
    );
  }

  protected createCache(maxPatterns: number): number {
    const m = this.module as QEModule;
    checkStatus(this.x.qe_cache_create(this.dim, maxPatterns, this.small), 'qe_cache_create');
    return m.i32()[this.small >>> 2];
  }


  protected argumentError(status: number, name: string, entry: string): Error {
    const deferred = this.deferred;
    this.deferred = null;
    if (status === QE_STATUS.ERR_ARGUMENT) {
      for (const [what, v] of deferred ?? []) if (anyNonFinite(v)) return nonFiniteError(what, v);
      return new RangeError(`${name}: a vector has NaN or infinity, the query is a zero vector, or the adapted query overflows float32`);
    }
    return this.fail(status, entry);
  }

  protected formatError(what: string, status: number): RangeError {
    const words = STATUS_WORDS[status];
    if (words !== undefined) return new RangeError(`${what} is ${words}`);
    try {
      checkStatus(status, what);
    } catch (error) {
      return error as RangeError;
    }
    return new RangeError(`${what}: status ${status}`);
  }

  protected fail(status: number, entry: string): Error {
    try {
      checkStatus(status, entry);
    } catch (error) {
      return error as Error;
    }
    return new Error(`${entry}: unexpected status ${status}`);
  }
}
