/**
 * An HNSW index (approximate nearest-neighbour search) in module memory:
 * createHNSWIndex and HNSWIndex, with the names agentic-qe's coverage code
 * uses (insert / batchInsert / search / delete / getStats / clear, and the
 * kernel's IHnswIndexProvider add / remove / size / dimensions / recall).
 * The graph lives in C (csrc/search/hnsw.c) behind an opaque handle; this
 * file keeps what JavaScript owns: the caller's keys and metadata, mapped to
 * the C slots, and the checks. Keys are strings or numbers; inserting a key
 * again replaces its vector (and metadata). Calls are synchronous (`await
 * index.insert(...)` works too); searchBatch may use the module's worker
 * pool. What a result's score and distance mean: scoreOf in hnsw-types.ts.
 */
import { loadQEModule, QE_STATUS, type HNSWEntries, type QEModule } from './module';
import type { ModuleLoadOptions } from '../types';
import { readFileBytes, writeBytesAtomic } from './platform';
import { realArray } from './input';
import { describe, validatePositiveInteger } from './validate';
import { filterBits, makeFilter, type HNSWFilter } from './hnsw-filter';
import { HNSWFileError, loadIndex, saveIndex } from './hnsw-file';
import { checkBatch, searchMany } from './hnsw-batch';
import {
  checkIndexOptions, checkSearchOptions, hnswStatus, sampledRecall, scoreOf, MAX_EF, MAX_SLOTS, METRIC_CODE, percentile, toVector, validateIntegerIn, validateKey,
  type HNSWIndexOptions, type HNSWIndexStats, type HNSWInsertItem, type HNSWKey, type HNSWMetric,
  type HNSWSearchOptions, type HNSWSearchResult, type HNSWTraversal,
} from './hnsw-types';

export type { HNSWFilterInput, HNSWIndexOptions, HNSWIndexStats, HNSWInsertItem, HNSWKey, HNSWMetric } from './hnsw-types';
export type { HNSWSearchOptions, HNSWSearchResult, HNSWTraversal } from './hnsw-types';
export { HNSWFilter } from './hnsw-filter';
export { HNSWFileError, type HNSWFileErrorCode } from './hnsw-file';

const LATENCY_WINDOW = 1000;

export class HNSWIndex<M = unknown> {
  readonly M: number;
  readonly efConstruction: number;
  readonly metric: HNSWMetric;
  readonly maxElements: number;
  readonly seed: number;
  private readonly dim: number;
  private efSearch: number;
  private traversalMode: HNSWTraversal;
  private readonly x: HNSWEntries;
  private handle = 0;
  private slotKey: (HNSWKey | undefined)[] = [];
  private slotMeta: (M | undefined)[] = [];
  private keySlot = new Map<HNSWKey, number>();
  /** Changes whenever slots change meaning: filters rebuild their bitsets. */
  private generation = 0;
  /** Resident buffers (module memory): the query, results, the filter bitset. */
  private buf = { ptr: 0, bytes: 0 };
  private latencies: number[] = [];
  private latencyCount = 0;
  private inserts = 0;
  private deletes = 0;
  private recallEstimate: { at: number; value: number } | null = null;

  /** Use createHNSWIndex. threads: how many searchBatch may use (of the module's pool). */
  constructor(private readonly module: QEModule, options: HNSWIndexOptions = {}, private readonly threads = 1) {
    if (module === null || typeof module !== 'object' || typeof (module as Partial<QEModule>).hnswEntries !== 'function') {
      throw new TypeError(`module must be a loaded qe-flash module (use createHNSWIndex, or QEFlashAttention.createHNSWIndex), got ${describe(module)}`);
    }
    const { dimensions, M, efConstruction, efSearch, metric, maxElements, seed, traversal } = checkIndexOptions(options);
    this.traversalMode = traversal;
    this.dim = dimensions;
    this.M = M;
    this.efConstruction = efConstruction;
    this.efSearch = efSearch;
    this.metric = metric;
    this.maxElements = maxElements ?? MAX_SLOTS;
    this.seed = seed;
    this.x = module.hnswEntries();
    this.handle = this.createHandle(Math.min(maxElements ?? 0, 1 << 20));
  }

  private createHandle(capacity: number): number {
    return this.module.scope((s) => {
      const out = s.alloc(4);
      const status = this.x.qe_hnsw_index_create(
        this.dim, METRIC_CODE[this.metric], this.M, this.efConstruction, this.efSearch,
        this.seed % 0x100000000, Math.floor(this.seed / 0x100000000), capacity, out,
      );
      hnswStatus(status, 'qe_hnsw_index_create');
      const handle = this.module.i32()[out >>> 2] >>> 0;
      hnswStatus(this.x.qe_hnsw_index_set_traversal(handle, this.traversalMode === 'int8' ? 1 : 0), 'qe_hnsw_index_set_traversal');
      return handle;
    });
  }

  private live(): number {
    if (this.handle === 0) throw new TypeError('this HNSW index has been disposed');
    return this.handle;
  }

  /** A resident scratch buffer of at least `bytes` (grown, never shrunk). */
  private scratch(bytes: number): number {
    if (this.buf.bytes < bytes) {
      if (this.buf.ptr) this.module.free(this.buf.ptr);
      this.buf = { ptr: 0, bytes: 0 };
      const size = Math.max(bytes, 4096);
      this.buf = { ptr: this.module.alloc(size), bytes: size };
    }
    return this.buf.ptr;
  }

  // ------------------------------------------------------------- writing

  /** Inserts (or replaces) key's vector; metadata comes back with search results. */
  insert(key: HNSWKey, vector: Float32Array | readonly number[], metadata?: M): void {
    validateKey('key', key);
    const v = toVector('vector', vector, this.dim);
    this.addMany([key], [v], [metadata]);
  }

  /** insert for many items: checked first (nothing is inserted when one is bad), then added in one call. */
  batchInsert(items: readonly HNSWInsertItem<M>[]): void {
    if (!Array.isArray(items)) throw new TypeError(`items must be an array, got ${describe(items)}`);
    const keys: HNSWKey[] = [];
    const vectors: Float32Array[] = [];
    const metas: (M | undefined)[] = [];
    items.forEach((item, i) => {
      if (item === null || typeof item !== 'object') throw new TypeError(`items[${i}] must be { key, vector, metadata? }, got ${describe(item)}`);
      validateKey(`items[${i}].key`, item.key);
      keys.push(item.key);
      vectors.push(toVector(`items[${i}].vector`, item.vector, this.dim));
      metas.push(item.metadata);
    });
    if (keys.length > 0) this.addMany(keys, vectors, metas);
  }

  /** IHnswIndexProvider.add: insert with a numeric id. */
  add(id: number, vector: Float32Array | readonly number[], metadata?: M): void {
    if (typeof id !== 'number' || !Number.isFinite(id)) throw new TypeError(`id must be a finite number, got ${describe(id)}`);
    this.insert(id, vector, metadata);
  }

  private addMany(keys: HNSWKey[], vectors: Float32Array[], metas: (M | undefined)[]): void {
    const h = this.live();
    // A key given twice in one batch: the last one wins, as sequential inserts would.
    const last = new Map<HNSWKey, number>();
    keys.forEach((k, i) => last.set(k, i));
    const order = keys.map((_, i) => i).filter((i) => last.get(keys[i]) === i);
    let fresh = 0;
    for (const i of order) if (!this.keySlot.has(keys[i])) fresh++;
    if (this.keySlot.size + fresh > this.maxElements) {
      throw new RangeError(`the index holds at most maxElements = ${this.maxElements} vectors; ${this.keySlot.size} are in and ${fresh} more were given`);
    }
    for (const i of order) {
      const old = this.keySlot.get(keys[i]);
      if (old !== undefined) this.removeSlot(old);
    }
    const count = order.length;
    const dim = this.dim;
    // Bounded staging: at most ~4 MB of vectors per C call.
    const chunk = Math.max(1, Math.min(count, Math.floor((4 << 20) / (dim * 4))));
    this.module.scope((s) => {
      const pv = s.alloc(chunk * dim * 4);
      const ps = s.alloc(chunk * 4);
      const pAdded = s.alloc(4);
      for (let first = 0; first < count; first += chunk) {
        const n = Math.min(chunk, count - first);
        const f32 = this.module.f32();
        for (let j = 0; j < n; j++) f32.set(vectors[order[first + j]], (pv >>> 2) + j * dim);
        const status = this.x.qe_hnsw_index_add(h, pv, n, ps, pAdded);
        const i32 = this.module.i32();
        const added = i32[pAdded >>> 2];
        for (let j = 0; j < added; j++) {
          const slot = i32[(ps >>> 2) + j];
          const i = order[first + j];
          this.slotKey[slot] = keys[i];
          this.slotMeta[slot] = metas[i];
          this.keySlot.set(keys[i], slot);
        }
        this.inserts += added;
        this.changed();
        if (status === QE_STATUS.ERR_ARGUMENT) {
          throw new RangeError(`vector of key ${JSON.stringify(keys[order[first + added]])} has a norm beyond the float32 range (${this.metric === 'cosine' ? '|x|' : '|x|^2'} above 3.4e38); ${first + added} of ${count} were inserted`);
        }
        hnswStatus(status, 'qe_hnsw_index_add');
      }
    });
  }

  private removeSlot(slot: number): void {
    hnswStatus(this.x.qe_hnsw_index_remove(this.live(), slot), 'qe_hnsw_index_remove');
    const key = this.slotKey[slot] as HNSWKey;
    this.keySlot.delete(key);
    this.slotKey[slot] = undefined;
    this.slotMeta[slot] = undefined;
    this.deletes++;
    this.changed();
  }

  /** Removes key for good (its links are repaired, its memory reused). True when it was there. */
  delete(key: HNSWKey): boolean {
    validateKey('key', key);
    this.live();
    const slot = this.keySlot.get(key);
    if (slot === undefined) return false;
    this.removeSlot(slot);
    return true;
  }

  /** IHnswIndexProvider.remove. */
  remove(id: HNSWKey): boolean {
    validateKey('id', id);
    return this.delete(id);
  }

  /** Empties the index (same parameters and seed, so it rebuilds the same graph from the same inserts). */
  clear(): void {
    const h = this.live();
    const fresh = this.createHandle(0);
    this.retire(h);
    this.handle = fresh;
    this.slotKey = [];
    this.slotMeta = [];
    this.keySlot.clear();
    this.changed();
  }

  private changed(): void {
    this.generation++;
    this.recallEstimate = null;
  }

  // ------------------------------------------------------------- reading

  has(key: HNSWKey): boolean {
    validateKey('key', key);
    this.live();
    return this.keySlot.has(key);
  }

  size(): number {
    this.live();
    return this.keySlot.size;
  }

  dimensions(): number {
    this.live();
    return this.dim;
  }

  /** Switches how searches walk the graph (see HNSWIndexOptions.traversal); the graph is the same. */
  setTraversal(traversal: HNSWTraversal): void {
    if (traversal !== 'int8' && traversal !== 'float32') throw new RangeError(`traversal must be 'int8' or 'float32', got ${describe(traversal)}`);
    hnswStatus(this.x.qe_hnsw_index_set_traversal(this.live(), traversal === 'int8' ? 1 : 0), 'qe_hnsw_index_set_traversal');
    this.traversalMode = traversal;
  }

  getEfSearch(): number {
    this.live();
    return this.efSearch;
  }

  setEfSearch(ef: number): void {
    validateIntegerIn('ef', ef, 1, MAX_EF);
    hnswStatus(this.x.qe_hnsw_index_set_ef_search(this.live(), ef), 'qe_hnsw_index_set_ef_search');
    this.efSearch = ef;
  }

  /** A reusable allow-list of keys (or of the keys whose (key, metadata) pass a predicate, evaluated now). */
  createFilter(keys: Iterable<HNSWKey> | ((key: HNSWKey, metadata: M | undefined) => boolean)): HNSWFilter {
    this.live();
    return makeFilter<M>(this, this.keySlot, this.slotMeta, keys);
  }

  /**
   * The k nearest stored vectors to query, best first: [{ key, id, score,
   * distance, metadata }]. min(k, size) results (fewer with a filter that
   * admits fewer). options.ef widens or narrows this search.
   */
  search(query: Float32Array | readonly number[], k: number, options: HNSWSearchOptions<M> = {}): HNSWSearchResult<M>[] {
    return this.run(query, k, options, false);
  }

  /** The same answer by scanning every stored vector (no graph): the exact top-k under the same float32 distances. */
  searchExact(query: Float32Array | readonly number[], k: number, options: Pick<HNSWSearchOptions<M>, 'filter'> = {}): HNSWSearchResult<M>[] {
    return this.run(query, k, options, true);
  }

  private run(query: Float32Array | readonly number[], k: number, options: HNSWSearchOptions<M>, exact: boolean): HNSWSearchResult<M>[] {
    const start = performance.now();
    const h = this.live();
    const q = toVector('query', query, this.dim);
    validatePositiveInteger('k', k);
    checkSearchOptions(options, exact ? ['filter'] : ['ef', 'filter']);
    const ef = options.ef ?? 0;
    const bits = options.filter !== undefined ? this.bitsFor(options.filter) : null;
    const size = this.keySlot.size;
    if (size === 0) return [];
    const kk = Math.min(k, size);
    const dim = this.dim;
    const qBytes = dim * 4;
    const outBytes = kk * 8 + 16;
    const bitBytes = bits ? (bits.length + 15) & ~15 : 0;
    const base = this.scratch(qBytes + outBytes + bitBytes);
    const pSlots = base + qBytes;
    const pDist = pSlots + kk * 4;
    const pCount = pDist + kk * 4;
    const pBits = bits ? base + qBytes + outBytes : 0;
    this.module.f32().set(q, base >>> 2);
    if (bits) this.module.u8().set(bits, pBits);
    const status = this.x.qe_hnsw_index_search(h, base, 1, kk, ef, pBits, exact ? 1 : 0, pSlots, pDist, pCount);
    // k and ef were checked above: what is left is a query whose norm float cannot hold.
    if (status === QE_STATUS.ERR_ARGUMENT) throw new RangeError(`query has a norm beyond the float32 range (${this.metric === 'cosine' ? '|query|' : '|query|^2'} above 3.4e38)`);
    hnswStatus(status, 'qe_hnsw_index_search');
    const out = this.results(this.module.i32(), this.module.f32(), pSlots >>> 2, pDist >>> 2, this.module.i32()[pCount >>> 2]);
    this.recordLatency(performance.now() - start);
    return out;
  }

  /**
   * search() for many queries in one call: [results of queries[0], ...]. In
   * a threaded module (loadOptions.threads > 1) the queries run on its
   * worker pool, each thread on its own working memory over the same graph;
   * the results are search()'s, bit for bit, either way.
   */
  searchBatch(queries: readonly (Float32Array | readonly number[])[], k: number, options: HNSWSearchOptions<M> = {}): HNSWSearchResult<M>[][] {
    const h = this.live();
    const qs = checkBatch(queries, k, options, this.dim);
    const bits = options.filter !== undefined ? this.bitsFor(options.filter) : null;
    if (this.keySlot.size === 0 || qs.length === 0) return qs.map(() => []);
    const kk = Math.min(k, this.keySlot.size);
    const ef = options.ef ?? 0;
    const raw = searchMany(this.module, this.x, h, qs, this.dim, kk, ef, bits, this.threads, Math.max(ef || this.efSearch, kk), this.M);
    return qs.map((_, i) => {
      const n = raw.counts[i];
      if (n === QE_STATUS.ERR_ARGUMENT) throw new RangeError(`queries[${i}] has a norm beyond the float32 range`);
      hnswStatus(Math.min(0, n), 'qe_hnsw_index_search');
      return this.results(raw.slots, raw.distances, i * kk, i * kk, n);
    });
  }

  private bitsFor(filter: NonNullable<HNSWSearchOptions<M>['filter']>): Uint8Array {
    return filterBits<M>({ index: this, slotKey: this.slotKey, slotMeta: this.slotMeta, keySlot: this.keySlot, generation: this.generation }, filter);
  }

  /** n results from slots[s..] and C distances dist[d..]. */
  private results(slots: ArrayLike<number>, dist: ArrayLike<number>, s: number, d: number, n: number): HNSWSearchResult<M>[] {
    const out: HNSWSearchResult<M>[] = new Array(n);
    for (let j = 0; j < n; j++) {
      const key = this.slotKey[slots[s + j]] as HNSWKey;
      const r: HNSWSearchResult<M> = { key, id: key, ...scoreOf(this.metric, dist[d + j]) };
      const meta = this.slotMeta[slots[s + j]];
      if (meta !== undefined) r.metadata = meta;
      out[j] = r;
    }
    return out;
  }

  private recordLatency(ms: number): void {
    if (this.latencies.length < LATENCY_WINDOW) this.latencies.push(ms);
    else this.latencies[this.latencyCount % LATENCY_WINDOW] = ms;
    this.latencyCount++;
  }

  /**
   * IHnswIndexProvider.recall: recall@10 measured now on up to 32 stored
   * vectors used as queries (the graph's answer against the exact scan),
   * kept until the index changes; 1 when empty.
   */
  recall(): number {
    this.live();
    const size = this.keySlot.size;
    if (size === 0) return 1;
    if (this.recallEstimate && this.recallEstimate.at === this.generation) return this.recallEstimate.value;
    const keys = [...this.keySlot.keys()];
    const samples = Array.from({ length: Math.min(32, size) }, (_, i) => this.vectorOf(this.keySlot.get(keys[Math.floor((i * size) / Math.min(32, size))]) as number));
    const saved = { latencies: this.latencies.slice(), count: this.latencyCount };
    const value = sampledRecall(samples, Math.min(10, size), (v, k) => this.search(v, k), (v, k) => this.searchExact(v, k));
    this.latencies = saved.latencies;
    this.latencyCount = saved.count;
    this.recallEstimate = { at: this.generation, value };
    return value;
  }

  /** The stored vector of a slot (normalized for cosine). */
  private vectorOf(slot: number): Float32Array {
    const p = this.scratch(this.dim * 4);
    hnswStatus(this.x.qe_hnsw_index_vector(this.live(), slot, p), 'qe_hnsw_index_vector');
    return this.module.f32().slice(p >>> 2, (p >>> 2) + this.dim);
  }

  getStats(): HNSWIndexStats {
    const h = this.live();
    const sorted = this.latencies.slice().sort((a, b) => a - b);
    const mem = this.x.qe_hnsw_index_memory_bytes(h) >>> 0;
    const count = this.keySlot.size;
    return {
      nativeHNSW: true,
      backendType: 'qe-flash-wasm',
      vectorCount: count,
      indexSizeBytes: mem,
      bytesPerVector: count ? mem / count : 0,
      avgSearchLatencyMs: sorted.length ? sorted.reduce((a, b) => a + b, 0) / sorted.length : 0,
      p95SearchLatencyMs: percentile(sorted, 95),
      p99SearchLatencyMs: percentile(sorted, 99),
      searchOperations: this.latencyCount,
      insertOperations: this.inserts,
      deleteOperations: this.deletes,
      dimensions: this.dim,
      metric: this.metric,
      M: this.M,
      efConstruction: this.efConstruction,
      efSearch: this.efSearch,
      maxLevel: this.x.qe_hnsw_index_max_level(h),
      traversal: this.traversalMode,
    };
  }

  /** Always true: the index is a real HNSW graph (compiled to WebAssembly). */
  isNativeAvailable(): boolean {
    this.live();
    return true;
  }

  /** Nothing to wait for (createHNSWIndex loaded the module); kept for IHNSWIndex callers. */
  async initialize(): Promise<void> {
    this.live();
  }

  // ------------------------------------------------------------- persistence

  /**
   * The whole index as bytes (js/hnsw-file.ts): the graph and vectors with
   * the keys and metadata as JSON inside, under a CRC32C. Metadata must
   * survive JSON.stringify.
   */
  save(): Uint8Array {
    return saveIndex(this.module, this.x, this.live(), this.slotKey, this.slotMeta);
  }

  /**
   * Replaces this index's content by saved bytes. The bytes must be an index
   * of the same dimension and metric; anything else is an HNSWFileError
   * (code EMPTY, FOREIGN, VERSION, TRUNCATED, CHECKSUM, DIMENSION, METRIC or
   * CORRUPT) and the index is left as it was. M, efConstruction, efSearch
   * and the generator state come from the bytes.
   */
  load(bytes: Uint8Array): void {
    bytes = realArray('bytes', bytes) as Uint8Array;
    if (!(bytes instanceof Uint8Array)) throw new TypeError(`bytes must be a Uint8Array (or Buffer), got ${describe(bytes)}`);
    const old = this.live();
    const loaded = loadIndex(this.module, this.x, bytes, this.dim, this.metric);
    hnswStatus(this.x.qe_hnsw_index_set_traversal(loaded.handle, this.traversalMode === 'int8' ? 1 : 0), 'qe_hnsw_index_set_traversal');
    this.retire(old);
    this.handle = loaded.handle;
    this.slotKey = loaded.keys;
    this.slotMeta = loaded.metadata as (M | undefined)[];
    this.keySlot = new Map();
    this.slotKey.forEach((k, s) => {
      if (k !== undefined) this.keySlot.set(k, s);
    });
    this.efSearch = loaded.efSearch;
    this.changed();
  }

  /** save() to a file, written to a temporary file beside it, fsynced and renamed over it (a crash never leaves a torn file). Node only. */
  async saveTo(path: string): Promise<void> {
    if (typeof path !== 'string' || path.length === 0) throw new TypeError(`path must be a non-empty string, got ${describe(path)}`);
    await writeBytesAtomic(path, this.save());
  }

  /** load() from a file written by saveTo. Node only. */
  async loadFrom(path: string): Promise<void> {
    if (typeof path !== 'string' || path.length === 0) throw new TypeError(`path must be a non-empty string, got ${describe(path)}`);
    const bytes = await readFileBytes(path);
    try {
      this.load(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    } catch (error) {
      // Name the file the user gave.
      if (error instanceof HNSWFileError) throw new HNSWFileError(error.code, `${path}: ${error.message.replace(/^load: /, '')}`);
      throw error;
    }
  }

  /**
   * Destroys a graph this index lets go of (dispose, clear, load). A worker
   * given up at a searchBatch's deadline may still be walking it, so the
   * destroy waits with the module's held frees until that worker has ended
   * (QEModule.releaseAfterWorkers); the index is done with it at once.
   */
  private retire(h: number): void {
    // A destroy that is held back can no longer report: a handle it would refuse is refused now.
    hnswStatus(Math.min(0, this.x.qe_hnsw_index_count(h)), 'qe_hnsw_index_destroy');
    this.module.releaseAfterWorkers(() => hnswStatus(this.x.qe_hnsw_index_destroy(h), 'qe_hnsw_index_destroy'));
  }

  /** Frees the module memory the index holds; it cannot be used afterwards (its graph goes once no given-up worker can read it). */
  dispose(): void {
    if (this.handle === 0) return;
    this.retire(this.handle);
    this.handle = 0;
    if (this.buf.ptr) this.module.free(this.buf.ptr);
    this.buf = { ptr: 0, bytes: 0 };
    this.keySlot.clear();
    this.slotKey = [];
    this.slotMeta = [];
  }
}

/**
 * A new, empty HNSW index in this module (the module is loaded once per
 * process and options; see ModuleLoadOptions).
 */
export async function createHNSWIndex<M = unknown>(options: HNSWIndexOptions = {}, loadOptions: ModuleLoadOptions = {}): Promise<HNSWIndex<M>> {
  const module = await loadQEModule(loadOptions, 'loadOptions');
  return new HNSWIndex<M>(module, options, loadOptions?.threads ?? 1);
}
