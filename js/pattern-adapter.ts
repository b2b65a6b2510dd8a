/**
 * Pattern adaptation: a Micro-LoRA adapter on query embeddings that learns
 * from feedback, and a cache of patterns searched through it. The state
 * lives in C behind two handles (csrc/adapt/, csrc/api_adapt.c); the
 * layers below check arguments, copy vectors through buffers that stay
 * resident in module memory, and keep the map from pattern ids to cache
 * rows (pattern-core.ts, pattern-store.ts, pattern-learning.ts).
 *
 * The adapter: y = x + (alpha / rank) B (A x); new, it is the identity.
 * Learning updates A and B by the exact gradient of InfoNCE on y / |y|
 * (positive, negatives, temperature), or of its reward-weighted form; see
 * csrc/adapt/micro_lora.h. Stored patterns are not adapted: the adapter maps
 * queries toward the space the patterns live in.
 *
 * This layer: export and import (one checksummed file of both), stats, and
 * the names agentic-qe's SONA wrapper (integrations/ruvector/sona-wrapper)
 * gives its calls: applyMicroLora, recallPattern, recordOutcome,
 * adaptPattern (storePattern, updatePattern, clear and getStats are shared).
 */
import type { QEWorkloadType } from '../types';
import { assertWorkloadType } from './config';
import { checkStatus, loadQEModule, type QEModule } from './module';
import { PatternLearner } from './pattern-learning';
import {
  contextVector,
  decoder,
  EXPORT_HEADER,
  EXPORT_MAGIC,
  EXPORT_VERSION,
  MAX_K,
  type PatternAdaptationResult,
  type PatternAdapterOptions,
  type PatternAdapterStats,
  type Vector,
} from './pattern-types';
import { readFileBytes, writeBytesAtomic } from './platform';
import { realArray } from './input';
import { describe } from './validate';

export type {
  AdaptExample,
  FoundPattern,
  PatternAdaptationResult,
  PatternAdapterOptions,
  PatternAdapterStats,
  PatternInput,
  StoredPattern,
  Vector,
} from './pattern-types';

export class PatternAdapter extends PatternLearner {
  /** SONA wrapper name: apply, with the wrapper's number[] result. */
  applyMicroLora(input: Vector): number[] {
    return Array.from(this.applyAs(input, undefined, 'input'));
  }

  /** The learning step of SONA's wrapper: the reward of the result the last look-up returned. */
  recordOutcome(reward: number, requestIndex?: number): number {
    this.live();
    if (requestIndex !== undefined && (typeof requestIndex !== 'number' || !Number.isInteger(requestIndex) || requestIndex < 0)) {
      throw new TypeError(`requestIndex must be a non-negative integer (it is accepted for SONA's signature and not used), got ${describe(requestIndex)}`);
    }
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
    if (patternType !== undefined && typeof patternType !== 'string') throw new TypeError(`patternType must be a string, got ${describe(patternType)}`);
    if (domain !== undefined && typeof domain !== 'string') throw new TypeError(`domain must be a string, got ${describe(domain)}`);
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
    bytes = realArray('bytes', bytes) as Uint8Array;
    if (!(bytes instanceof Uint8Array)) throw new TypeError(`bytes must be a Uint8Array, got ${describe(bytes)}`);
    if (bytes.length === 0) throw new RangeError('import(bytes): the bytes are empty');
    if (bytes.length < 8) throw new RangeError(`import(bytes): truncated: ${bytes.length} bytes, a pattern-adapter export has at least ${EXPORT_HEADER + 4}`);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const magic = view.getUint32(0, true);
    if (magic !== EXPORT_MAGIC) {
      throw new RangeError(`import(bytes): not a qe-flash pattern-adapter export (magic 0x${magic.toString(16).padStart(8, '0')}, expected 0x${EXPORT_MAGIC.toString(16)} "QEPA")`);
    }
    const version = view.getUint32(4, true);
    if (version !== EXPORT_VERSION) throw new RangeError(`import(bytes): format version ${version}; this library reads version ${EXPORT_VERSION}`);
    if (bytes.length < EXPORT_HEADER + 4) throw new RangeError(`import(bytes): truncated: ${bytes.length} bytes, a pattern-adapter export has at least ${EXPORT_HEADER + 4}`);
    const total = Number(view.getBigUint64(8, true));
    if (total > bytes.length) throw new RangeError(`import(bytes): truncated: ${bytes.length} bytes of the ${total} the export says it has`);
    const loraLen = view.getUint32(16, true);
    const cacheLen = view.getUint32(20, true);
    m.scope((s) => {
      const p = s.alloc(bytes.length);
      m.u8().set(bytes, p);
      const crc = this.x.qe_crc32c(p, bytes.length - 4) >>> 0;
      if (crc !== view.getUint32(bytes.length - 4, true)) throw new RangeError('import(bytes): checksum mismatch: the bytes are corrupt');
      if (total !== bytes.length || EXPORT_HEADER + loraLen + cacheLen + 4 !== total) {
        throw new RangeError(`import(bytes): inconsistent export: ${bytes.length} bytes, header says ${total} with sections of ${loraLen} and ${cacheLen}`);
      }
      const out = this.small;
      let status = this.x.qe_lora_import(p + EXPORT_HEADER, loraLen, out);
      if (status !== 0) throw this.formatError('import(bytes): the adapter section', status);
      const newLora = m.i32()[out >>> 2];
      status = this.x.qe_cache_import(p + EXPORT_HEADER + loraLen, cacheLen, out);
      if (status !== 0) {
        this.x.qe_lora_destroy(newLora);
        throw this.formatError('import(bytes): the cache section', status);
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
    try {
      this.import(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    } catch (error) {
      // Name the file the user gave, not the bytes they never saw.
      if (error instanceof RangeError) throw new RangeError(`${path}: ${error.message.replace(/^import\(bytes\): /, '')}`);
      throw error;
    }
  }

  // ------------------------------------------------------------------ stats

  getStats(): PatternAdapterStats {
    this.live();
    const steps = this.x.qe_lora_steps(this.lora);
    const t = this.adaptTimes;
    const patterns = this.rowIds.length;
    const weightBytes = 6 * this.rankValue * Math.ceil(this.dim / 4) * 4 * 4 + 2 * this.rankValue * Math.ceil(this.dim / 4) * 16;
    const cacheRows = patterns === 0 ? 0 : Math.min(Math.max(64, 2 ** Math.ceil(Math.log2(patterns))), Math.ceil(this.maxPatterns / 16) * 16);
    // Per row: the embedding, its int8 code (dim rounded up to 16), inverse norm, quality, hits, last use, label pointer and length, code scale, bound and sum.
    const rowBytes = this.dim * 4 + Math.ceil(this.dim / 16) * 16 + 4 + 4 + 4 + 8 + 8 + 4 + 4 + 4;
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
      memoryBytes: weightBytes + cacheRows * rowBytes,
      lastSearchExactRows: this.x.qe_cache_last_candidates(this.cache),
      totalPatterns: patterns,
      totalAdaptations: this.adaptations,
      avgAdaptationTimeMs: t.count === 0 ? 0 : t.sum / t.count,
      minAdaptationTimeMs: t.count === 0 ? 0 : t.min,
      maxAdaptationTimeMs: t.max,
    };
  }

  protected exportAdapterBytes(): Uint8Array {
    const m = this.module as QEModule;
    const n = this.x.qe_lora_export_bytes(this.lora);
    return m.scope((s) => {
      const p = s.alloc(n);
      checkStatus(this.x.qe_lora_export(this.lora, p, n), 'qe_lora_export');
      return m.u8().slice(p, p + n);
    });
  }

  /** Takes over an imported adapter and cache (already checked by C). */
  protected adopt(lora: number, cache: number): void {
    const m = this.module as QEModule;
    const x = this.x;
    checkStatus(x.qe_lora_shape(lora, this.small), 'qe_lora_shape');
    const probe = { dim: m.i32()[this.small >>> 2], rank: m.i32()[(this.small >>> 2) + 1] };
    if (probe.dim !== this.dim) throw new RangeError(`import(bytes): the export holds an adapter of dim ${probe.dim}; this one has dim ${this.dim}`);
    checkStatus(x.qe_cache_shape(cache, this.small), 'qe_cache_shape');
    const cacheDim = m.i32()[this.small >>> 2];
    const maxPatterns = m.i32()[(this.small >>> 2) + 2];
    if (cacheDim !== this.dim) throw new RangeError(`import(bytes): the export holds patterns of dim ${cacheDim}; this adapter has dim ${this.dim}`);
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
        throw new RangeError(`import(bytes): pattern ${r}'s id and metadata are not valid JSON`);
      }
      if (!Array.isArray(parsed) || typeof parsed[0] !== 'string' || parsed.length > 2) throw new RangeError(`import(bytes): pattern ${r} has no id`);
      if (ids.has(parsed[0])) throw new RangeError(`import(bytes): the id ${JSON.stringify(parsed[0])} appears twice`);
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

}

/**
 * A pattern adapter for a workload (default 'pattern-adaptation'): rank,
 * cache size and on/off from QE_SONA_CONFIG, dim from the workload's preset;
 * options override any of them.
 */
export async function createPatternAdapter(workload: QEWorkloadType = 'pattern-adaptation', options: PatternAdapterOptions = {}): Promise<PatternAdapter> {
  assertWorkloadType(workload);
  if (options === null || typeof options !== 'object') throw new TypeError(`options must be an object, got ${describe(options)}`);
  const module = await loadQEModule(options.module ?? {}, 'options.module');
  return new PatternAdapter(module, workload, options);
}
