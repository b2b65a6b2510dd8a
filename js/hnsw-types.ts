/**
 * The HNSW index's vocabulary: option, result and statistics types, the
 * limits of csrc/search/hnsw.h, and the argument checks every method uses
 * (js/hnsw.ts is the index itself).
 */
import { checkStatus } from './module';
import type { HNSWFilter } from './hnsw-filter';
import { realList } from './input';
import { describe, validatePositiveInteger } from './validate';

export type HNSWMetric = 'cosine' | 'ip' | 'l2';
export type HNSWKey = string | number;

export interface HNSWIndexOptions {
  /** Vector length (default 384). */
  dimensions?: number;
  /** Links per node above level 0 (2M on level 0); default 16. */
  M?: number;
  /** Candidates while inserting; default 200. */
  efConstruction?: number;
  /** Candidates while searching (at least k is used); default 100. */
  efSearch?: number;
  /** 'cosine' (default), 'ip' (inner product), 'l2' ('euclidean' is taken as 'l2'). */
  metric?: HNSWMetric | 'euclidean';
  /** Most vectors the index accepts (a RangeError past it); default: no limit. Also reserves room up front. */
  maxElements?: number;
  /** Seed of the level generator: the same seed and the same calls build the same graph. Default 42. */
  seed?: number;
  /**
   * How searches walk the graph: 'int8' (default) on int8 codes of the
   * vectors, re-ranking the ef results in float32 (measured 1.6-1.8x faster at
   * equal recall on 30,000 x 384); 'float32' on the vectors themselves.
   */
  traversal?: HNSWTraversal;
}

export type HNSWTraversal = 'int8' | 'float32';

export interface HNSWSearchResult<M = unknown> {
  key: HNSWKey;
  /** The same as key (IHnswIndexProvider's name). */
  id: HNSWKey;
  score: number;
  distance: number;
  metadata?: M;
}

/** An allow-list: a filter made by createFilter, keys, or a predicate on (key, metadata). */
export type HNSWFilterInput<M = unknown> = HNSWFilter | Iterable<HNSWKey> | ((key: HNSWKey, metadata: M | undefined) => boolean);

export interface HNSWSearchOptions<M = unknown> {
  /** Candidate list size for this search (default: efSearch); at least k is used. */
  ef?: number;
  /** Only these may be returned. The check runs inside the C search on a bitset. */
  filter?: HNSWFilterInput<M>;
}

export interface HNSWInsertItem<M = unknown> {
  key: HNSWKey;
  vector: Float32Array | readonly number[];
  metadata?: M;
}

export interface HNSWIndexStats {
  /** True: the search is a real HNSW graph (in WebAssembly), not a scan. */
  nativeHNSW: boolean;
  backendType: 'qe-flash-wasm';
  vectorCount: number;
  /** Module memory the index holds: vectors, links and working lists. */
  indexSizeBytes: number;
  bytesPerVector: number;
  avgSearchLatencyMs: number;
  p95SearchLatencyMs: number;
  p99SearchLatencyMs: number;
  searchOperations: number;
  insertOperations: number;
  deleteOperations: number;
  dimensions: number;
  metric: HNSWMetric;
  M: number;
  efConstruction: number;
  efSearch: number;
  /** The top level of the graph (-1 when empty). */
  maxLevel: number;
  traversal: HNSWTraversal;
}

export const METRIC_CODE: Record<HNSWMetric, number> = { cosine: 0, ip: 1, l2: 2 };
export const METRIC_NAME: readonly HNSWMetric[] = ['cosine', 'ip', 'l2'];
const ERR_BUSY = -20;
/** Limits of csrc/search/hnsw.h. */
export const MAX_DIM = 65536;
export const MAX_M = 256;
export const MAX_EF = 65536;
export const MAX_SLOTS = 0x7ffffff0;

export function hnswStatus(status: number, entry: string): void {
  if (status === ERR_BUSY) {
    throw new Error(`${entry}: the index is in use by another call (one thread at a time; calls are never interleaved)`);
  }
  checkStatus(status, entry);
}

const INDEX_OPTION_KEYS = ['dimensions', 'M', 'efConstruction', 'efSearch', 'metric', 'maxElements', 'seed', 'traversal'];

/** Unknown keys (a typo would be ignored) and null values (which defaults would take for absent) are errors naming the key. */
export function checkKeys(name: string, options: object, known: readonly string[]): void {
  for (const [key, value] of Object.entries(options)) {
    if (!known.includes(key)) throw new TypeError(`${name} has an unknown key '${key}'; known keys: ${known.join(', ')}`);
    if (value === null) throw new TypeError(`${name}.${key} must not be null (leave it out for the default)`);
  }
}

/** The index options checked, with their defaults filled in ('euclidean' is 'l2'). */
export function checkIndexOptions(options: HNSWIndexOptions): Required<Omit<HNSWIndexOptions, 'maxElements' | 'metric'>> & { metric: HNSWMetric; maxElements?: number } {
  if (options === null || typeof options !== 'object') throw new TypeError(`options must be an object, got ${describe(options)}`);
  checkKeys('options', options, INDEX_OPTION_KEYS);
  const { dimensions = 384, M = 16, efConstruction = 200, efSearch = 100, metric = 'cosine', maxElements, seed = 42, traversal = 'int8' } = options;
  validateIntegerIn('options.dimensions', dimensions, 1, MAX_DIM);
  validateIntegerIn('options.M', M, 2, MAX_M);
  validateIntegerIn('options.efConstruction', efConstruction, 1, MAX_EF);
  validateIntegerIn('options.efSearch', efSearch, 1, MAX_EF);
  const m = metric === 'euclidean' ? 'l2' : metric;
  if (!(m in METRIC_CODE)) throw new RangeError(`options.metric must be 'cosine', 'ip' or 'l2' ('euclidean'), got ${describe(metric)}`);
  if (maxElements !== undefined) validateIntegerIn('options.maxElements', maxElements, 1, MAX_SLOTS);
  if (typeof seed !== 'number' || !Number.isInteger(seed) || seed < 0 || seed > Number.MAX_SAFE_INTEGER) {
    throw new RangeError(`options.seed must be a non-negative safe integer, got ${describe(seed)}`);
  }
  if (traversal !== 'int8' && traversal !== 'float32') throw new RangeError(`options.traversal must be 'int8' or 'float32', got ${describe(traversal)}`);
  return { dimensions, M, efConstruction, efSearch, metric: m as HNSWMetric, maxElements, seed, traversal };
}

/** search options: an object with only the known keys, ef (when given) an integer in range. */
export function checkSearchOptions(options: unknown, known: readonly string[]): asserts options is HNSWSearchOptions<unknown> {
  if (options === null || typeof options !== 'object') throw new TypeError(`options must be an object, got ${describe(options)}`);
  checkKeys('options', options, known);
  const ef = (options as HNSWSearchOptions).ef;
  if (ef !== undefined) validateIntegerIn('options.ef', ef, 1, MAX_EF);
}

export function validateKey(name: string, key: unknown): asserts key is HNSWKey {
  if (typeof key === 'string') return;
  if (typeof key === 'number' && Number.isFinite(key)) return;
  throw new TypeError(`${name} must be a string or a finite number, got ${describe(key)}`);
}

export function validateIntegerIn(name: string, value: unknown, lo: number, hi: number): asserts value is number {
  validatePositiveInteger(name, value);
  if (value < lo || value > hi) throw new RangeError(`${name} must be between ${lo} and ${hi}, got ${value}`);
}

/** A vector of length dim with finite elements, as a Float32Array. */
export function toVector(name: string, value: unknown, dim: number): Float32Array {
  // As it really is (js/input.ts): a lying length, a Proxy, another realm or shared memory change nothing below.
  value = realList(name, value);
  let v: Float32Array;
  if (value instanceof Float32Array) v = value;
  else if (Array.isArray(value)) {
    v = new Float32Array(value.length);
    for (let i = 0; i < value.length; i++) {
      if (typeof value[i] !== 'number') throw new TypeError(`${name}[${i}] must be a number, got ${describe(value[i])}`);
      v[i] = value[i];
    }
  } else throw new TypeError(`${name} must be a Float32Array or an array of numbers, got ${describe(value)}`);
  if (v.length !== dim) throw new RangeError(`${name} has length ${v.length} but the index has ${dim} dimensions`);
  for (let i = 0; i < v.length; i++) {
    if (!Number.isFinite(v[i])) throw new RangeError(`${name}[${i}] is ${v[i]}; vectors must be finite (as float32)`);
  }
  return v;
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/**
 * A result's score and distance from the C distance d, for query q and
 * stored x (results come best first, ties by the lower slot):
 *   cosine   distance = 1 - cos(q, x)   score = cos(q, x)
 *   ip       distance = 1 - dot(q, x)   score = dot(q, x)
 *   l2       distance = |q - x|         score = 1 / (1 + |q - x|)
 */
export function scoreOf(metric: HNSWMetric, d: number): { score: number; distance: number } {
  if (metric === 'l2') {
    const distance = Math.sqrt(Math.max(0, d));
    return { score: 1 / (1 + distance), distance };
  }
  if (metric === 'cosine') {
    const score = Math.min(1, Math.max(-1, 1 - d));
    return { score, distance: 1 - score };
  }
  return { score: 1 - d, distance: d };
}

/** Recall@k of `search` against `exact` over `samples`: a result counts when it is as close as the exact k-th (ties are equally right). */
export function sampledRecall(
  samples: readonly Float32Array[], k: number,
  search: (v: Float32Array, k: number) => { distance: number }[], exact: (v: Float32Array, k: number) => { distance: number }[],
): number {
  let hits = 0;
  let total = 0;
  for (const v of samples) {
    const want = exact(v, k);
    const worst = want[want.length - 1].distance;
    for (const r of search(v, k)) if (r.distance <= worst + 1e-6) hits++;
    total += want.length;
  }
  return Math.min(1, hits / total);
}
