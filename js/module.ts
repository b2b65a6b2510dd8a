/**
 * Memory, views and status codes: the module's exports (typed by the
 * generated js/c-api.ts), allocation scopes, typed-array views of module
 * memory, status codes turned into errors, and typed helpers for the
 * one-call kernels (matmul, softmax, ...). Policy lives in the rooms above:
 * attention in js/attention.ts, the resident corpus in js/corpus.ts, feature
 * hashing in js/feature-table.ts. Those module-layer files are the only ones
 * that use `exports` and pointers (test/architecture.test.ts checks).
 *
 * Every qe_alloc goes through an AllocationScope that frees it in `finally`,
 * so no module memory leaks when a call fails. Typed-array views are taken
 * afresh after any allocation: growing the memory detaches the old buffer.
 */
import type { ModuleKind, ModuleLoadOptions } from '../types';
import { loadWasm, type LoadedWasm } from './loader';
import type { ThreadPool } from './thread-pool';
import { freesHeld } from './thread-support';
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
  | 'qe_cache_last_candidates'
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

/** The HNSW index entries (csrc/api_hnsw.h), pointer level. */
export type HNSWEntries = Pick<QEExports, Extract<keyof QEExports, `qe_hnsw_index_${string}`>>;

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
  private readonly heldFrees = new Set<number>();
  /** Handle destroys held back with the frees (releaseAfterWorkers). */
  private heldReleases: (() => void)[] = [];
  private awaitingHolds = false;

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
    if (bytes === undefined || this.heldFrees.has(ptr)) throw new Error(`qe_free of ${ptr}, which is not a live allocation`);
    // A worker given up while perhaps still running holds frees back (see
    // holdFrees in js/thread-support.ts); they go through once it has ended.
    const held = freesHeld(this.memory);
    if (held !== null) {
      this.heldFrees.add(ptr);
      this.awaitHolds(held);
      return;
    }
    this.live.delete(ptr);
    this.liveByteCount -= bytes;
    this.x.qe_free(ptr);
  }

  /**
   * Runs `release`, a C destroy entry of a handle its owner has given up
   * (an HNSW index, a corpus), now, or, while a worker given up at a job's
   * deadline may still be running, with the held frees once it has ended:
   * such a worker may still be reading the handle's memory. Errors of a
   * release that ran now are thrown; a held one's owner checked the handle
   * live when it let go, and nothing else can reach it since.
   */
  releaseAfterWorkers(release: () => void): void {
    const held = freesHeld(this.memory);
    if (held === null) {
      release();
      return;
    }
    this.heldReleases.push(release);
    this.awaitHolds(held);
  }

  private awaitHolds(held: Promise<void>): void {
    if (this.awaitingHolds) return;
    this.awaitingHolds = true;
    void held.then(() => this.releaseHeld());
  }

  private releaseHeld(): void {
    const held = freesHeld(this.memory);
    if (held !== null) {
      void held.then(() => this.releaseHeld());
      return;
    }
    this.awaitingHolds = false;
    const releases = this.heldReleases;
    this.heldReleases = [];
    for (const release of releases) {
      try {
        release();
      } catch {
        // See releaseAfterWorkers: the handle was live when given up.
      }
    }
    const pointers = [...this.heldFrees];
    this.heldFrees.clear();
    for (const ptr of pointers) this.free(ptr);
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

  /**
   * The entries themselves, for the module layer only (js/attention.ts,
   * js/corpus.ts, js/feature-table.ts, js/document-frequencies.ts): pointers are byte offsets of this
   * module's memory, and every status must go through checkStatus.
   */
  get exports(): QEExports {
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

  /** Bytes of working memory the last kernel call used. */
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

  /** Index of the first NaN or infinity of the `count` floats at ptr; count when there is none. */
  firstNonFinite(ptr: number, count: number): number {
    const at = this.x.qe_first_nonfinite(ptr, count);
    checkStatus(Math.min(at, 0), 'qe_first_nonfinite');
    return at;
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
export async function loadQEModule(options: ModuleLoadOptions = {}, name = 'options'): Promise<QEModule> {
  const loaded = await loadWasm(options, name);
  let module = wrapped.get(loaded);
  if (module === undefined) {
    module = new QEModule(loaded);
    wrapped.set(loaded, module);
  }
  return module;
}
