/**
 * The pattern adapter's cache layer: store, update, remove and find
 * patterns (ids and metadata in JS, embeddings and the search in C).
 */
import { checkStatus, QE_STATUS, type QEModule } from './module';
import { PatternAdapterCore } from './pattern-core';
import {
  checkInteger,
  encoder,
  MAX_K,
  nonFiniteOrHuge,
  SONA_KEY,
  type FoundPattern,
  type PatternInput,
  type StoredPattern,
  type Vector,
} from './pattern-types';
import { snapshotList } from './input';
import { describe } from './validate';

export class PatternStore extends PatternAdapterCore {
  // -------------------------------------------------------------- patterns

  /**
   * Stores a pattern, or replaces the one with the same id. When the cache
   * is full the pattern of lowest quality (then least recently used) makes
   * room; its id is returned as `evicted`.
   */
  storePattern(pattern: PatternInput | Record<string, unknown>): { evicted: string | null } {
    return this.storeOne(pattern, 'pattern');
  }

  /** storePattern, naming the argument as the caller wrote it (`pattern`, `patterns[3]`, `update`). */
  protected storeOne(pattern: unknown, name: string): { evicted: string | null } {
    const m = this.live();
    if (pattern === null || typeof pattern !== 'object') throw new TypeError(`${name} must be an object, got ${describe(pattern)}`);
    const p = pattern as Record<string, unknown>;
    const id = p.id;
    if (typeof id !== 'string' || id.length === 0) throw new TypeError(`${name}.id must be a non-empty string, got ${describe(id)}`);
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
    embedding = this.checkVector(embedding, `${name}.embedding`);
    const q = quality === undefined ? this.defaultQuality : quality;
    if (typeof q !== 'number' || !Number.isFinite(q)) throw new TypeError(`${name}.quality must be a finite number, got ${describe(q)}`);
    let json: string | undefined;
    try {
      json = JSON.stringify(metadata === undefined ? [id] : [id, metadata]);
    } catch (error) {
      throw new TypeError(`${name}.metadata must survive JSON.stringify (it is exported with the cache): ${(error as Error).message}`);
    }
    const label = encoder.encode(json);
    if (label.length > 1 << 24) throw new RangeError(`${name}.metadata is too large: ${label.length} bytes as JSON, at most 16 MiB`);
    const existing = this.rows.get(id);
    return m.scope((s) => {
      const lp = s.alloc(Math.max(label.length, 1));
      m.u8().set(label, lp);
      this.xBuf.get().set(embedding as Vector);
      const out = this.small;
      const status = this.x.qe_cache_store(this.cache, existing ?? -1, this.xBuf.ptr, q, lp, label.length, out);
      if (status !== 0) {
        if (status === QE_STATUS.ERR_ARGUMENT) throw nonFiniteOrHuge(`${name}.embedding`, embedding as Vector);
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
    this.live();
    if (!Array.isArray(patterns)) throw new TypeError(`patterns must be an array, got ${describe(patterns)}`);
    const evicted: string[] = [];
    for (const [i, p] of snapshotList('patterns', patterns).entries()) {
      const r = this.storeOne(p, `patterns[${i}]`);
      if (r.evicted !== null) evicted.push(r.evicted);
    }
    return evicted;
  }

  /** Sets a stored pattern's quality (and with it, its place in the eviction order). */
  updatePattern(id: string, update: { quality?: number; metadata?: unknown; embedding?: Vector }): boolean {
    this.live();
    if (typeof id !== 'string') throw new TypeError(`id must be a string, got ${describe(id)}`);
    if (update === null || typeof update !== 'object') throw new TypeError(`update must be an object, got ${describe(update)}`);
    const row = this.rows.get(id);
    if (row === undefined) return false;
    const current = this.getPattern(id) as StoredPattern;
    this.storeOne({
      id,
      embedding: update.embedding ?? current.embedding,
      quality: update.quality ?? current.quality,
      metadata: 'metadata' in update ? update.metadata : current.metadata,
    }, 'update');
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
  protected search(k: number, touch: boolean, name: string): number {
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


  /** A stored pattern by id, or null. */
  getPattern(id: string): StoredPattern | null {
    const m = this.live();
    if (typeof id !== 'string') throw new TypeError(`id must be a string, got ${describe(id)}`);
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
    if (typeof id !== 'string') throw new TypeError(`id must be a string, got ${describe(id)}`);
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
  protected embeddingOf(id: string, name: string): Float32Array {
    const p = this.getPattern(id);
    if (p === null) throw new RangeError(`${name}: no stored pattern has the id ${JSON.stringify(id)}`);
    return p.embedding;
  }
}
