/**
 * A typed view of the module's exports (csrc/qe_api.h), copying in and out
 * of module memory, and status codes turned into errors.
 *
 * Every qe_alloc goes through an AllocationScope that frees it in `finally`,
 * so no module memory leaks when a call fails. Typed-array views are taken
 * afresh after any allocation: growing the memory detaches the old buffer.
 */
import type { ModuleKind, ModuleLoadOptions } from '../types';
import { loadWasm, type LoadedWasm } from './loader';
import type { ThreadPool } from './threads';
import { nonFiniteElementError, type ResolvedAttention } from './validate';
import { QE_EXPORT_NAMES, QE_STATUS, QE_STATUS_TEXT, type QEExports } from './c-api';

export { QE_STATUS, type QEExports };

/** The ONNX Attention entry (csrc/api_onnx.c), pointer level. */
export type OnnxAttentionEntries = Pick<QEExports, 'qe_attention_args_bytes' | 'qe_attention_onnx'>;
/** The pattern-adaptation entries (csrc/api_adapt.c), pointer level: handles and pointers are numbers. */
export type AdaptEntries = Pick<
  QEExports,
  'qe_lora_create'
  | 'qe_lora_destroy'
  | 'qe_lora_reset'
  | 'qe_lora_set_optimizer'
  | 'qe_lora_apply'
  | 'qe_lora_apply_batch'
  | 'qe_lora_accumulate'
  | 'qe_lora_step'
  | 'qe_lora_discard'
  | 'qe_lora_shape'
  | 'qe_lora_adapt'
  | 'qe_lora_gradient'
  | 'qe_lora_get_weights'
  | 'qe_lora_set_weights'
  | 'qe_lora_merge'
  | 'qe_lora_steps'
  | 'qe_lora_export_bytes'
  | 'qe_lora_export'
  | 'qe_lora_import'
  | 'qe_cache_create'
  | 'qe_cache_destroy'
  | 'qe_cache_clear'
  | 'qe_cache_count'
  | 'qe_cache_shape'
  | 'qe_cache_store'
  | 'qe_cache_remove'
  | 'qe_cache_victim'
  | 'qe_cache_search'
  | 'qe_cache_row_info'
  | 'qe_cache_row_embedding'
  | 'qe_cache_row_label'
  | 'qe_cache_adapt'
  | 'qe_cache_export_bytes'
  | 'qe_cache_export'
  | 'qe_cache_import'
  | 'qe_crc32c'
>;

/** The search and feature-hashing entries (csrc/api_search.c), pointer level. */
/** The HNSW index entries (csrc/api_hnsw.h), pointer level. */
export type HNSWEntries = Pick<QEExports, Extract<keyof QEExports, `qe_hnsw_index_${string}`>>;

export type SearchEntries = Pick<
  QEExports,
  'qe_corpus_panel_rows' | 'qe_corpus_store_rows' | 'qe_corpus_move_row' | 'qe_cosine_topk' | 'qe_feature_table_fill' | 'qe_feature_hash_embed'
  | 'qe_text_df_add' | 'qe_text_idf' | 'qe_text_tfidf_embed'
>;

const MAX_ALLOCATION_BYTES = 0xffffffff;

/** Turns a status code from `entry` into an error; QE_OK returns. */
export function checkStatus(status: number, entry: string): void {
  switch (status) {
    case QE_STATUS.OK:
      return;
    case QE_STATUS.ERR_ARGUMENT:
      throw new RangeError(`${entry}: the module rejected a size as zero, inconsistent or too large (QE_ERR_ARGUMENT)`);
    case QE_STATUS.ERR_NO_MEMORY:
      throw new RangeError(`${entry}: out of module memory (QE_ERR_NO_MEMORY)`);
    case QE_STATUS.ERR_INDEX:
      throw new RangeError(`${entry}: an id or index is outside its table (QE_ERR_INDEX)`);
    case QE_STATUS.ERR_NULL:
      throw new Error(`${entry}: a required pointer was null (QE_ERR_NULL); this is a bug in qe-flash`);
    default: {
      // A status a header declares but this switch does not name yet.
      const known = QE_STATUS_TEXT[status];
      if (known !== undefined && status < 0) throw new RangeError(`${entry}: ${known.text} (${known.name})`);
      throw new Error(`${entry}: unknown status ${status}`);
    }
  }
}

/** What the attention entry reports besides its output. */
export interface AttentionRun {
  output: Float32Array;
  tileQ: number;
  tileK: number;
  /** Bytes of working memory (arena) the kernel used. */
  workspaceBytes: number;
  /** Threads the call ran on. */
  threads: number;
}

export class QEModule {
  readonly kind: ModuleKind;
  readonly source: string;
  /** The worker pool of the threaded build; null for the single-thread builds. */
  readonly pool: ThreadPool | null;
  private readonly x: QEExports;
  private readonly memory: WebAssembly.Memory;
  private f32View: Float32Array | null = null;
  private i32View: Int32Array | null = null;
  private f64View: Float64Array | null = null;
  private readonly live = new Map<number, number>();
  private liveByteCount = 0;

  constructor(loaded: LoadedWasm) {
    for (const name of QE_EXPORT_NAMES) {
      if (typeof loaded.exports[name] !== 'function') {
        throw new Error(`${loaded.source} lacks the export ${name}; rebuild it with 'make wasm'`);
      }
    }
    this.x = loaded.exports as unknown as QEExports;
    this.memory = loaded.memory;
    this.source = loaded.source;
    const level = this.x.qe_simd_level();
    const built: ModuleKind = level === 2 ? 'relaxed' : level === 1 ? 'simd' : 'scalar';
    if (loaded.source !== 'wasmBytes' && built !== loaded.kind) {
      throw new Error(`${loaded.source} was loaded as the ${loaded.kind} build but reports itself as ${built}`);
    }
    this.kind = built;
    this.pool = loaded.pool;
    loaded.onMemoryGrowth.add(() => {
      this.f32View = null;
      this.i32View = null;
      this.f64View = null;
    });
  }

  /** Bytes of module memory (the whole linear memory). */
  get memoryBytes(): number {
    return this.memory.buffer.byteLength;
  }

  /** Allocations made through this object and not yet freed. */
  get liveAllocations(): number {
    return this.live.size;
  }

  get liveBytes(): number {
    return this.liveByteCount;
  }

  /** A Float32Array over the whole memory, current even after growth. */
  f32(): Float32Array {
    if (this.f32View === null || this.f32View.buffer !== this.memory.buffer) {
      this.f32View = new Float32Array(this.memory.buffer);
    }
    return this.f32View;
  }

  f64(): Float64Array {
    if (this.f64View === null || this.f64View.buffer !== this.memory.buffer) {
      this.f64View = new Float64Array(this.memory.buffer);
    }
    return this.f64View;
  }

  /** The module's memory, for views that callers cache themselves (js/pattern-adapter.ts). */
  get wasmMemory(): WebAssembly.Memory {
    return this.memory;
  }

  i32(): Int32Array {
    if (this.i32View === null || this.i32View.buffer !== this.memory.buffer) {
      this.i32View = new Int32Array(this.memory.buffer);
    }
    return this.i32View;
  }

  /** qe_alloc, with failure as a RangeError. Prefer scope(), which frees for you. */
  alloc(bytes: number): number {
    if (!Number.isInteger(bytes) || bytes < 1) throw new RangeError(`cannot allocate ${bytes} bytes`);
    if (bytes > MAX_ALLOCATION_BYTES) {
      throw new RangeError(`out of module memory: ${bytes} bytes is more than the module can address (4 GiB)`);
    }
    const ptr = this.x.qe_alloc(bytes) >>> 0;
    if (ptr === 0) {
      throw new RangeError(`out of module memory: qe_alloc(${bytes}) failed with ${this.memoryBytes} bytes of memory in use`);
    }
    this.live.set(ptr, bytes);
    this.liveByteCount += bytes;
    return ptr;
  }

  free(ptr: number): void {
    const bytes = this.live.get(ptr);
    if (bytes === undefined) throw new Error(`qe_free of ${ptr}, which is not a live allocation`);
    this.live.delete(ptr);
    this.liveByteCount -= bytes;
    this.x.qe_free(ptr);
  }

  /** Runs fn with a scope whose allocations are all freed when fn returns or throws. */
  scope<T>(fn: (scope: AllocationScope) => T): T {
    const scope = new AllocationScope(this);
    try {
      return fn(scope);
    } finally {
      scope.release();
    }
  }

  /** The HNSW index entries at pointer level, for js/hnsw.ts. */
  hnswEntries(): HNSWEntries {
    return this.x;
  }

  /** The search entries at pointer level, for js/similarity.ts and js/code-embedding.ts. */
  searchEntries(): SearchEntries {
    return this.x;
  }

  /** The ONNX Attention entry at pointer level, for js/onnx-attention.ts. */
  onnxAttentionEntries(): OnnxAttentionEntries {
    return this.x;
  }

  /** A Uint8Array over the whole memory (a fresh view: cheap, and never stale). */
  u8(): Uint8Array {
    return new Uint8Array(this.memory.buffer);
  }

  /** The pattern-adaptation entries at pointer level, for js/pattern-adapter.ts. */
  adaptEntries(): AdaptEntries {
    return this.x;
  }

  workspaceLastBytes(): number {
    return this.x.qe_workspace_last_bytes() >>> 0;
  }

  workspaceHighWaterBytes(): number {
    return this.x.qe_workspace_high_water_bytes() >>> 0;
  }

  resetWorkspaceHighWater(): void {
    this.x.qe_workspace_reset_high_water();
  }

  workspaceReservedBytes(): number {
    return this.x.qe_workspace_reserved_bytes() >>> 0;
  }

  /** Returns the arena to the allocator (module memory itself never shrinks). */
  releaseWorkspace(): void {
    this.x.qe_workspace_release();
  }

  /**
   * Attention of arguments whose shapes are validated; the elements are
   * checked here, in module memory, after the copy (a RangeError names the
   * first NaN or infinity). blockQ and blockK are the tile sizes asked for.
   * threads above 1 splits the work with the pool's workers (the threaded
   * build only; elsewhere it runs on this thread). Finite inputs whose scores
   * overflow float32 are a RangeError too.
   */
  attention(Q: Float32Array, K: Float32Array, V: Float32Array, p: ResolvedAttention, blockQ: number, blockK: number, threads = 1): AttentionRun {
    return this.scope((s) => {
      // Sized from the validated shape, not from the arrays (js/input.ts).
      const q = s.copyIn(Q, p.seqLen * p.dim, 'Q');
      const k = s.copyIn(K, p.kvSeqLen * p.dim, 'K');
      const v = s.copyIn(V, p.kvSeqLen * p.dim, 'V');
      const count = p.seqLen * p.dim;
      const o = s.allocFloats(count);
      // Where workers share the call, the output array is allocated and its
      // pages touched while they compute, instead of after (first writes to
      // fresh pages cost about 0.5 ms per MiB here).
      let output: Float32Array | null = null;
      const ran = this.attentionAt({ Q: [Q, q], K: [K, k], V: [V, v], o }, p, blockQ, blockK, threads, () => {
        output = new Float32Array(count);
        for (let i = 0; i < count; i += 1024) output[i] = 0;
      });
      const out: Float32Array = output ?? new Float32Array(count);
      out.set(this.f32().subarray(o >>> 2, (o >>> 2) + count));
      return { ...ran, output: out };
    });
  }

  /**
   * Attention on buffers already in module memory (each input with the
   * array the caller knows it by, for error messages): checks the inputs'
   * elements, runs the kernel on this thread or the pool's, and checks the
   * output for float32 overflow. `meanwhile` runs while workers compute.
   */
  attentionAt(
    b: { Q: [Float32Array, number]; K: [Float32Array, number]; V: [Float32Array, number]; o: number },
    p: ResolvedAttention,
    blockQ: number,
    blockK: number,
    threads = 1,
    meanwhile?: () => void,
  ): Omit<AttentionRun, 'output'> {
    this.checkFinite('Q', b.Q[0], b.Q[1]);
    this.checkFinite('K', b.K[0], b.K[1]);
    this.checkFinite('V', b.V[0], b.V[1]);
    const [q, k, v, o] = [b.Q[1], b.K[1], b.V[1], b.o];
    const count = p.seqLen * p.dim;
    let ran: Omit<AttentionRun, 'output' | 'workspaceBytes'>;
    if (this.pool !== null && threads > 1) {
      const run = this.pool.attention({
        q, k, v, o, seqLen: p.seqLen, kvSeqLen: p.kvSeqLen, dim: p.dim, heads: p.heads, scale: p.scale,
        causal: p.causal, validKeyLength: p.validKeyLength, blockQ, blockK,
        meanwhile: meanwhile ?? (() => undefined),
      }, threads);
      checkStatus(run.status, 'qe_attention');
      ran = { tileQ: run.tileQ, tileK: run.tileK, threads: run.threads };
    } else {
      const status = this.x.qe_attention(
        q, k, v, o, p.seqLen, p.kvSeqLen, p.dim, p.heads, p.scale,
        p.causal ? 1 : 0, p.validKeyLength, blockQ, blockK,
      );
      checkStatus(status, 'qe_attention');
      ran = { tileQ: this.x.qe_attention_tile_q(), tileK: this.x.qe_attention_tile_k(), threads: 1 };
    }
    if (this.firstNonFinite(o, count) < count) {
      // Finite inputs whose scaled scores q.k exceed float32's range (~3.4e38) have no float32 answer.
      throw new RangeError(
        `attention overflowed float32: some scaled score |q.k * scale| exceeds ~3.4e38 (inputs as large as ${maxAbs(b.Q[0]).toExponential(2)} and ${maxAbs(b.K[0]).toExponential(2)}); scale Q or K down`,
      );
    }
    return { ...ran, workspaceBytes: this.workspaceLastBytes() };
  }

  /** Index of the first NaN or infinity of the `count` floats at ptr; count when there is none. */
  firstNonFinite(ptr: number, count: number): number {
    const at = this.x.qe_first_nonfinite(ptr, count);
    checkStatus(Math.min(at, 0), 'qe_first_nonfinite');
    return at;
  }

  /** Throws the RangeError of validateFiniteElements for `data`, already copied to ptr. */
  private checkFinite(name: string, data: Float32Array, ptr: number): void {
    const at = this.firstNonFinite(ptr, data.length);
    if (at < data.length) throw nonFiniteElementError(name, data, at);
  }

  matmul(a: Float32Array, b: Float32Array, m: number, n: number, k: number): Float32Array {
    return this.scope((s) => {
      const pa = s.copyIn(a, m * k, 'a');
      const pb = s.copyIn(b, k * n, 'b');
      const pc = s.allocFloats(m * n);
      checkStatus(this.x.qe_matmul(pa, pb, pc, m, n, k), 'qe_matmul');
      return s.readFloats(pc, m * n);
    });
  }

  vecAdd(a: Float32Array, b: Float32Array): Float32Array {
    return this.scope((s) => {
      const pa = s.copyIn(a);
      const pb = s.copyIn(b);
      const out = s.allocFloats(a.length);
      checkStatus(this.x.qe_vec_add(pa, pb, out, a.length), 'qe_vec_add');
      return s.readFloats(out, a.length);
    });
  }

  embeddingLookup(ids: Int32Array, table: Float32Array, rows: number, dim: number): Float32Array {
    return this.scope((s) => {
      const pIds = s.copyInInt32(ids);
      const pTable = s.copyIn(table);
      const out = s.allocFloats(ids.length * dim);
      checkStatus(this.x.qe_embedding_lookup(pIds, ids.length, pTable, rows, dim, out), 'qe_embedding_lookup');
      return s.readFloats(out, ids.length * dim);
    });
  }

  softmax(x: Float32Array, rows: number, n: number): Float32Array {
    return this.scope((s) => {
      const px = s.copyIn(x);
      const py = s.allocFloats(x.length);
      checkStatus(this.x.qe_softmax(px, py, rows, n), 'qe_softmax');
      return s.readFloats(py, x.length);
    });
  }

  layerNorm(x: Float32Array, gamma: Float32Array, beta: Float32Array, rows: number, n: number, eps: number): Float32Array {
    return this.scope((s) => {
      const px = s.copyIn(x);
      const pg = s.copyIn(gamma);
      const pb = s.copyIn(beta);
      const py = s.allocFloats(x.length);
      checkStatus(this.x.qe_layer_norm(px, pg, pb, py, rows, n, eps), 'qe_layer_norm');
      return s.readFloats(py, x.length);
    });
  }
}

/** Allocations that live until release(); QEModule.scope releases them in `finally`. */
export class AllocationScope {
  private readonly pointers: number[] = [];

  constructor(private readonly module: QEModule) {}

  alloc(bytes: number): number {
    const ptr = this.module.alloc(bytes);
    this.pointers.push(ptr);
    return ptr;
  }

  allocFloats(count: number): number {
    return this.alloc(count * 4);
  }

  /**
   * Allocates `count` floats (default: data's length) and copies exactly
   * that many of `data` in; returns the pointer. A `data` that no longer has
   * `count` elements (its buffer detached or resized since it was checked,
   * e.g. by a getter of another argument) is a TypeError naming it.
   */
  copyIn(data: Float32Array, count: number = data.length, name = 'an array argument'): number {
    if (data.length !== count) {
      throw new TypeError(`${name} changed size during the call: ${count} elements were checked, it now has ${data.length} (its buffer was detached or resized)`);
    }
    const ptr = this.alloc(Math.max(count, 1) * 4);
    this.module.f32().set(data.length === count ? data : data.subarray(0, count), ptr >>> 2);
    return ptr;
  }

  copyInInt32(data: Int32Array): number {
    const ptr = this.alloc(Math.max(data.length, 1) * 4);
    this.module.i32().set(data, ptr >>> 2);
    return ptr;
  }

  /** A copy of `count` floats at ptr. */
  readFloats(ptr: number, count: number): Float32Array {
    const start = ptr >>> 2;
    return this.module.f32().slice(start, start + count);
  }

  release(): void {
    let first: unknown;
    while (this.pointers.length > 0) {
      const ptr = this.pointers.pop() as number;
      try {
        this.module.free(ptr);
      } catch (error) {
        first ??= error;
      }
    }
    if (first !== undefined) throw first;
  }
}

const wrapped = new WeakMap<LoadedWasm, QEModule>();

/** The module for these options (see loader.ts), wrapped once. */
export async function loadQEModule(options: ModuleLoadOptions = {}): Promise<QEModule> {
  const loaded = await loadWasm(options);
  let module = wrapped.get(loaded);
  if (module === undefined) {
    module = new QEModule(loaded);
    wrapped.set(loaded, module);
  }
  return module;
}

function maxAbs(x: Float32Array): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]));
  return m;
}
