/**
 * WASMSIMDBackend: the vector kernels of the module (matmul, vector add,
 * embedding lookup, softmax, layer norm), each computed in WebAssembly, and
 * a benchmark that times them, or any function, call by call.
 */
import type {
  BackendOperation,
  BenchmarkOptions,
  ModuleKind,
  ModuleLoadOptions,
  OperationBenchmark,
  SIMDCapabilities,
  VectorOperation,
} from '../types';
import { runAttention } from './attention';
import { detectEngineFeatures } from './loader';
import { describeMachine } from './platform';
import { detectThreadSupport } from './thread-support';
import { loadQEModule, type QEModule } from './module';
import {
  validateEmbeddingLookup,
  validateLayerNorm,
  validateMatmul,
  validatePositiveInteger,
  validateRows,
  validateVecAdd,
} from './validate';
import { realArray, realList } from './input';

/** Operations the SIMD build vectorizes with SIMD128, by this package's names and then the original module's. */
const VECTOR_OPS: readonly VectorOperation[] = [
  'attention', 'matmul', 'vecAdd', 'embeddingLookup', 'softmax', 'layerNorm',
  'vecadd', 'embedding', 'layer-norm',
];

const BACKEND_OPERATIONS: readonly BackendOperation[] = ['matmul', 'vecAdd', 'softmax', 'layerNorm', 'embeddingLookup'];

/** The original module's operation names, and ours they mean. */
const ORIGINAL_NAMES: Readonly<Record<string, BackendOperation>> = { vecadd: 'vecAdd', embedding: 'embeddingLookup', 'layer-norm': 'layerNorm' };

/** Every name benchmarkOperation times. */
const NAMED_OPERATIONS: readonly string[] = [...BACKEND_OPERATIONS, 'attention', ...Object.keys(ORIGINAL_NAMES)];

/**
 * Speedup of each build over the scalar build of the same C, per built-in
 * operation, as measured by bench/simd-speedup.js (README, "Coming from
 * agentic-qe"): max is attention's median ratio, rounded down; min is 1, where
 * the copy-bound operations' medians scatter (0.8x to 1.4x).
 */
const EXPECTED_SPEEDUP: Readonly<Record<ModuleKind, { min: number; max: number }>> = {
  simd: { min: 1, max: 6 },
  relaxed: { min: 1, max: 8.5 },
  scalar: { min: 1, max: 1 },
};

/** Deterministic values in [-1, 1) for benchmark inputs. */
function pseudoRandom(count: number, seed: number): Float32Array {
  const out = new Float32Array(count);
  let state = seed >>> 0;
  for (let i = 0; i < count; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[i] = state / 2147483648 - 1;
  }
  return out;
}

function median(sorted: number[]): number {
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function isQEModule(x: unknown): x is QEModule {
  return typeof x === 'object' && x !== null && typeof (x as QEModule).matmul === 'function' && typeof (x as QEModule).kind === 'string';
}

export class WASMSIMDBackend {
  private loaded: QEModule | null;
  private disposed = false;
  private readonly loadOptions: ModuleLoadOptions | undefined;

  /**
   * As in the original module: `new WASMSIMDBackend()` (optionally with load
   * options), then `await initialize()`. getWASMSIMDBackend() does both and
   * shares one backend per loaded module.
   */
  constructor(source?: QEModule | ModuleLoadOptions) {
    if (source !== undefined && (source === null || typeof source !== 'object')) {
      throw new TypeError(`source must be a loaded module or load options (an object), got ${source === null ? 'null' : typeof source}`);
    }
    this.loaded = isQEModule(source) ? source : null;
    this.loadOptions = isQEModule(source) ? undefined : source;
  }

  /** Loads the module (once; later calls return at once). */
  async initialize(): Promise<void> {
    if (this.disposed) throw new TypeError('this WASMSIMDBackend has been disposed; create a new one');
    if (this.loaded === null) this.loaded = await loadQEModule(this.loadOptions, 'source');
  }

  /** True once initialize() has loaded the module (and dispose() has not run). */
  isInitialized(): boolean {
    return this.loaded !== null && !this.disposed;
  }

  /**
   * Releases this backend; every later call throws. The module stays loaded
   * for other users of it (it is shared and freed with the process).
   */
  dispose(): void {
    this.disposed = true;
    this.loaded = null;
  }

  private get module(): QEModule {
    if (this.disposed) throw new TypeError('this WASMSIMDBackend has been disposed; create a new one');
    if (this.loaded === null) throw new Error('this WASMSIMDBackend is not initialized; call await backend.initialize() first');
    return this.loaded;
  }

  /** c [m x n] = a [m x k] * b [k x n], row-major. */
  matmulSIMD(a: Float32Array, b: Float32Array, m: number, n: number, k: number): Float32Array {
    a = realArray('a', a) as Float32Array;
    b = realArray('b', b) as Float32Array;
    validateMatmul(a, b, m, n, k);
    return this.module.matmul(a, b, m, n, k);
  }

  /** a + b, element by element. */
  vecAddSIMD(a: Float32Array, b: Float32Array): Float32Array {
    a = realArray('a', a) as Float32Array;
    b = realArray('b', b) as Float32Array;
    validateVecAdd(a, b);
    return this.module.vecAdd(a, b);
  }

  /** Rows ids[i] of table [rows x dim], stacked: [ids.length x dim]. */
  embeddingLookupSIMD(ids: Int32Array | number[], table: Float32Array, dim: number): Float32Array {
    ids = realList('ids', ids) as Int32Array | number[];
    table = realArray('table', table) as Float32Array;
    const checked = validateEmbeddingLookup(ids, table, dim);
    if (checked.ids.length === 0) return new Float32Array(0);
    return this.module.embeddingLookup(checked.ids, table, checked.rows, dim);
  }

  /** Numerically stable softmax of each row of length rowLength (default: x is one row). */
  softmaxSIMD(x: Float32Array, rowLength?: number): Float32Array {
    x = realArray('x', x) as Float32Array;
    if (rowLength === undefined) rowLength = x?.length;
    const rows = validateRows('x', x, rowLength);
    return this.module.softmax(x, rows, rowLength);
  }

  /** Layer norm of each row of x (row length gamma.length): (x - mean) / sqrt(var + eps) * gamma + beta. */
  layerNormSIMD(x: Float32Array, gamma: Float32Array, beta: Float32Array, eps = 1e-5): Float32Array {
    x = realArray('x', x) as Float32Array;
    gamma = realArray('gamma', gamma) as Float32Array;
    beta = realArray('beta', beta) as Float32Array;
    const rows = validateLayerNorm(x, gamma, beta, eps);
    return this.module.layerNorm(x, gamma, beta, rows, gamma.length, eps);
  }

  getCapabilities(): SIMDCapabilities {
    const features = detectEngineFeatures();
    const simd = this.module.kind !== 'scalar';
    return {
      supported: features.webAssembly,
      simd128: features.simd128,
      relaxedSimd: features.relaxedSimd,
      vectorOps: simd ? [...VECTOR_OPS] : [],
      expectedSpeedup: { ...EXPECTED_SPEEDUP[this.module.kind] },
      module: this.module.kind,
      threadsAvailable: detectThreadSupport(),
      threads: detectThreadSupport() ? Math.min(2, describeMachine().cores) : 1,
    };
  }

  /** True when the loaded module computes with SIMD128 (false for the scalar build). */
  isSIMDAvailable(): boolean {
    return this.module.kind !== 'scalar';
  }

  /**
   * Times `op` (a built-in operation on a fixed-size input, by this
   * package's name or the original module's, or any function) over
   * `iterations` calls (default 100, as in the original), each timed on its
   * own after untimed warm-up calls that let the engine's optimizing tier
   * take over. avgTimeMs and opsPerSecond are the original's fields.
   */
  async benchmarkOperation(
    op: VectorOperation | (() => unknown),
    iterations = 100,
    options: BenchmarkOptions = {},
  ): Promise<OperationBenchmark> {
    validatePositiveInteger('iterations', iterations);
    if (options === null || typeof options !== 'object') throw new TypeError(`options must be an object, got ${options === null ? 'null' : typeof options}`);
    let name: string;
    let run: () => unknown;
    if (typeof op === 'function') {
      name = options.name ?? 'custom';
      run = op;
    } else if (typeof op !== 'string') {
      throw new TypeError(`op must be the name of an operation or a function, got ${op === null ? 'null' : typeof op}`);
    } else if (NAMED_OPERATIONS.includes(op)) {
      name = op;
      run = this.builtinOperation(ORIGINAL_NAMES[op] ?? (op as BackendOperation | 'attention'));
    } else {
      throw new RangeError(`op: unknown operation ${JSON.stringify(op)}; built-in operations are: ${NAMED_OPERATIONS.join(', ')}`);
    }
    const warmup = options.warmup ?? Math.max(3, Math.ceil(iterations / 10));
    if (warmup !== 0) validatePositiveInteger('options.warmup', warmup);

    for (let i = 0; i < warmup; i++) await run();
    const times: number[] = [];
    for (let i = 0; i < iterations; i++) {
      const start = performance.now();
      await run();
      times.push(performance.now() - start);
    }
    times.sort((x, y) => x - y);
    const medianMs = median(times);
    const meanMs = times.reduce((s, t) => s + t, 0) / times.length;
    return {
      operation: name,
      avgTimeMs: meanMs,
      iterations,
      warmupIterations: warmup,
      medianMs,
      meanMs,
      minMs: times[0],
      maxMs: times[times.length - 1],
      opsPerSecond: medianMs > 0 ? 1000 / medianMs : Number.POSITIVE_INFINITY,
      module: this.module.kind,
    };
  }

  /** A call of a built-in operation on inputs prepared once, outside the timing. */
  private builtinOperation(op: BackendOperation | 'attention'): () => unknown {
    switch (op) {
      case 'attention': {
        // 256 x 384, 8 heads: the defect-matching workload's shape class.
        const [n, dim, heads] = [256, 384, 8];
        const q = pseudoRandom(n * dim, 10);
        const k = pseudoRandom(n * dim, 11);
        const v = pseudoRandom(n * dim, 12);
        const shape = { seqLen: n, kvSeqLen: n, dim, heads, headDim: dim / heads, scale: 1 / Math.sqrt(dim / heads), causal: false, validKeyLength: n };
        return () => runAttention(this.module, q, k, v, shape, 64, 64, 1).output;
      }
      case 'matmul': {
        const a = pseudoRandom(128 * 128, 1);
        const b = pseudoRandom(128 * 128, 2);
        return () => this.matmulSIMD(a, b, 128, 128, 128);
      }
      case 'vecAdd': {
        const a = pseudoRandom(65536, 3);
        const b = pseudoRandom(65536, 4);
        return () => this.vecAddSIMD(a, b);
      }
      case 'softmax': {
        const x = pseudoRandom(64 * 1024, 5);
        return () => this.softmaxSIMD(x, 1024);
      }
      case 'layerNorm': {
        const x = pseudoRandom(64 * 1024, 6);
        const gamma = pseudoRandom(1024, 7);
        const beta = pseudoRandom(1024, 8);
        return () => this.layerNormSIMD(x, gamma, beta);
      }
      case 'embeddingLookup': {
        const table = pseudoRandom(4096 * 384, 9);
        const ids = new Int32Array(1024);
        for (let i = 0; i < ids.length; i++) ids[i] = (i * 2654435761) % 4096;
        return () => this.embeddingLookupSIMD(ids, table, 384);
      }
    }
  }
}

const backends = new WeakMap<QEModule, WASMSIMDBackend>();

/** The backend over the module these options choose, initialized; one per loaded module (a disposed one is replaced). */
export async function getWASMSIMDBackend(options?: ModuleLoadOptions): Promise<WASMSIMDBackend> {
  const module = await loadQEModule(options, 'options');
  let backend = backends.get(module);
  if (backend === undefined || !backend.isInitialized()) {
    backend = new WASMSIMDBackend(module);
    backends.set(module, backend);
  }
  return backend;
}
