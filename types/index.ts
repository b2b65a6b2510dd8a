/**
 * Public types shared by every layer of qe-flash. Types only: this file
 * compiles to an empty module.
 */

/** The QE workloads that have a tuned preset. */
export type QEWorkloadType =
  | 'test-similarity'
  | 'code-embedding'
  | 'defect-matching'
  | 'coverage-analysis'
  | 'pattern-adaptation';

/** What a preset optimizes for. */
export type AttentionStrategy = 'latency-optimized' | 'throughput-optimized' | 'memory-efficient';

/**
 * The backend a configuration names. Every value is accepted and recorded
 * (getConfig() returns it); attention always runs in the WebAssembly module,
 * whichever is named (see README, "Coming from agentic-qe").
 */
export type AttentionBackend = 'wasm-simd' | 'native' | 'gpu' | 'hybrid' | 'js-fallback';

/**
 * The attention strategies of agentic-qe 3.14's attention wrapper. Only
 * 'flash' (this package's exact FlashAttention) is computed here; the others
 * are refused with a RangeError naming the supported one.
 */
export type CoordinatorAttentionStrategy = 'flash' | 'dot-product' | 'multi-head' | 'hyperbolic' | 'linear' | 'moe';

/**
 * The configuration shape agentic-qe 3.14's domain coordinators pass to
 * createQEFlashAttention, e.g. { dim: 384, strategy: 'flash', blockSize: 64 }.
 * dim sets the model width, numHeads the heads, blockSize both tiles
 * (queryChunkSize and kvChunkSize). curvature, features and moeConfig belong
 * to strategies not computed here.
 */
export interface QEFlashAttentionConfig {
  dim: number;
  strategy: CoordinatorAttentionStrategy;
  blockSize?: number;
  numHeads?: number;
  curvature?: number;
  features?: number;
  moeConfig?: { numExperts: number; topK: number; expertDim?: number; noiseStd?: number };
}

/**
 * Which WebAssembly build is loaded: 'simd' (SIMD128), 'scalar', or
 * 'relaxed' (SIMD128 plus relaxed SIMD's fused multiply-add). 'simd' and
 * 'relaxed' each have a single-thread build and a threaded one (on a shared
 * memory) for several threads.
 */
export type ModuleKind = 'simd' | 'scalar' | 'relaxed';

/**
 * Which build to load: 'auto' picks 'relaxed' where the engine validates
 * relaxed SIMD, else 'simd' where it validates SIMD128, else 'scalar'.
 * Asking for a build the engine cannot run is an error.
 */
export type ModuleChoice = 'auto' | ModuleKind;

/** Blocking of the attention loop nest and of matrix products. */
export interface BlockConfig {
  /** Default number of attention heads (dim is split into this many). */
  headsPerBlock: number;
  /** Query rows per tile asked of the kernel (it clamps to its cache budget). */
  queryChunkSize: number;
  /** Key/value rows per tile asked of the kernel (it clamps to its cache budget). */
  kvChunkSize: number;
  /** Block size for matrix products. */
  matmulBlockSize: number;
}

export interface FlashAttentionConfig {
  /** Recorded; computation always runs in the WebAssembly module. */
  backend: AttentionBackend;
  strategy: AttentionStrategy;
  /**
   * The workload's model width (embedding dimension). Optional in what you
   * pass, as the original had no such field (the preset's is kept); always
   * present in what you get back (WorkloadFlashAttentionConfig).
   */
  dim?: number;
  blocks: BlockConfig;
  /** Recorded, in [0, 1]; attention here is exact inference and applies no dropout. */
  dropoutRate: number;
  /** Default for AttentionOptions.causal. */
  useCausalMask: boolean;
  /** Recorded; softmax is always fused into the attention loop (online softmax), so false changes nothing. */
  fusedSoftmax: boolean;
  /** Recorded; forward only, so there is nothing to checkpoint. */
  enableCheckpointing: boolean;
  /** The speedup over the naive baseline that the workload aims for. */
  targetSpeedup: { min: number; max: number };
}

/** A configuration as an instance or a preset holds it: dim always set. */
export interface WorkloadFlashAttentionConfig extends FlashAttentionConfig {
  dim: number;
}

/** A custom configuration: any field may be left out; blocks merge field by field. */
export type FlashAttentionConfigOverrides = Partial<Omit<FlashAttentionConfig, 'blocks' | 'targetSpeedup'>> & {
  blocks?: Partial<BlockConfig>;
  targetSpeedup?: Partial<FlashAttentionConfig['targetSpeedup']>;
};

/**
 * What createQEFlashAttention, the QEFlashAttention constructor and
 * updateConfig accept: overrides of this package's (and the original
 * module's) configuration, or agentic-qe 3.14's coordinator shape.
 */
export type CustomFlashAttentionConfig = FlashAttentionConfigOverrides | Partial<QEFlashAttentionConfig>;

export interface SONAIntegration {
  enabled: boolean;
  microLoRARank: number;
  targetAdaptationMs: number;
  patternCacheSize: number;
}

export interface PerformanceTarget {
  /** Milliseconds per call. */
  latency: { before: number; after: number };
  /** Megabytes of working memory. */
  memory: { before: number; after: number };
  /** Tokens per second. */
  throughput: { min: number };
}

/** Per-call options of the attention methods. */
export interface AttentionOptions {
  /** Number of heads dim is split into; default config.blocks.headsPerBlock. */
  heads?: number;
  /** Mask keys j > i (top-left aligned); default config.useCausalMask. */
  causal?: boolean;
  /** Keys j >= validKeyLength are padding; default kvSeqLen. */
  validKeyLength?: number;
  /** Multiplies every q.k; default 1 / sqrt(dim / heads). */
  scale?: number;
  /** Rows of K and V; default seqLen. A different value is cross attention. */
  kvSeqLen?: number;
  /**
   * Heads of K and V (grouped-query attention: each K/V head serves
   * heads / kvHeads query heads, read in place, never copied). K and V are
   * then kvSeqLen x (kvHeads * dim / heads). Default heads.
   */
  kvHeads?: number;
  /**
   * A mask, broadcast (right-aligned, as NumPy) to [heads, seqLen, kvSeqLen]:
   * a Uint8Array is boolean (0 hides the key), a Float32Array is added to the
   * scaled scores (-Infinity hides). Keys past its last axis are hidden.
   * Read tile by tile in place. With a mask, padding goes in the mask
   * (validKeyLength must be left at kvSeqLen).
   */
  mask?: { data: Uint8Array | Float32Array; dims: readonly number[] };
  /** > 0: each scaled score s becomes softcap * tanh(s / softcap) before the mask. */
  softcap?: number;
  /** Query i sees keys i - left .. i + right (each side unbounded when absent or -1). */
  window?: { left?: number; right?: number };
}

/** Which method a metrics record is about. */
export type QEOperation = 'attention' | 'test-similarity' | 'defect-matching' | 'code-embedding';

/**
 * What one call measured. For attention, seqLen and kvSeqLen are the query
 * and key rows and throughput is query tokens per second; for the QE
 * methods, seqLen is the rows processed (corpus vectors, patterns, or code
 * tokens), throughput is those rows per second, and heads/tiles are 0 where
 * no attention ran.
 */
export interface FlashAttentionMetrics {
  operation: QEOperation;
  workload: QEWorkloadType;
  seqLen: number;
  kvSeqLen: number;
  dim: number;
  heads: number;
  causal: boolean;
  /** Wall time of the call, copies in and out included. */
  timeMs: number;
  /** The kernel's working memory in module memory (MiB). */
  memoryMB: number;
  /** The module's whole memory after the call (MiB). */
  peakMemoryMB: number;
  /** Query tokens per second. */
  throughput: number;
  /**
   * Baseline time on the same shape divided by timeMs; null when no baseline
   * ran (the original module typed this number and filled in 1).
   */
  speedup: number | null;
  baselineTimeMs: number | null;
  /** Tiles the kernel actually used. */
  tileQ: number;
  tileK: number;
  module: ModuleKind;
  /** Threads the call ran on (1 when threads were not asked for, unavailable, or the shape was too small to split). */
  threads: number;
  /** Date.now() at the end of the call. */
  timestamp: number;
  /** The original module's field; no cache sits in front of these calls, so it is left out. */
  cacheHitRate?: number;
  /**
   * Present when the call ran differently from what was asked: threads
   * clamped to the cores available, a worker thread that died and was
   * replaced. Absent otherwise.
   */
  warnings?: string[];
}

export interface SIMDCapabilities {
  /** WebAssembly itself is available. */
  supported: boolean;
  /** The engine validates SIMD128 instructions. */
  simd128: boolean;
  /** The engine validates relaxed-SIMD instructions (f32x4.relaxed_madd): 'auto' then loads a relaxed build. */
  relaxedSimd: boolean;
  /**
   * Operations the loaded module computes with SIMD128 (empty for the scalar
   * build), under both this package's names and the original module's.
   */
  vectorOps: VectorOperation[];
  /**
   * Speedup of the loaded build over the scalar build of the same C, across
   * the built-in operations, as measured by bench/simd-speedup.js (README):
   * simd { 1, 6 }, relaxed { 1, 8.5 }, scalar { 1, 1 }. Copy-bound
   * operations gain about nothing; attention gains the most.
   */
  expectedSpeedup: { min: number; max: number };
  module: ModuleKind;
  /**
   * Whether attention can run on several threads here: shared memory and
   * workers (in a browser, only when the page is cross-origin isolated).
   */
  threadsAvailable: boolean;
  /** Threads createQEFlashAttention uses by default here: min(2, cores) where threads are available, else 1. */
  threads: number;
}

/** Where the module comes from and which build to use. */
export interface ModuleLoadOptions {
  /** Default 'auto'; the environment variable QE_FLASH_MODULE forces a build when this is 'auto'. */
  module?: ModuleChoice;
  /** Browser: URL of the .wasm file (streamed), or of the folder holding the builds (ending in '/'); a string or a URL. Node: a file path or file: URL also works. Not needed: the package finds its own .wasm files in Node and through bundlers. */
  wasmUrl?: string | { readonly href: string };
  /** The module's bytes, when the caller already has them. */
  wasmBytes?: ArrayBuffer | ArrayBufferView;
  /**
   * Threads for attention, the calling thread included (an integer, 1 to 64).
   * Above 1, the threaded form of the chosen build
   * (wasm/qe-flash-relaxed-mt.wasm or wasm/qe-flash-simd-mt.wasm) is loaded
   * with threads - 1 workers sharing its memory, where SharedArrayBuffer and
   * WebAssembly threads are available (in browsers: cross-origin isolation);
   * elsewhere the single-thread build runs. 1: the single-thread build
   * (its memory not shared, so copies into it are faster), no workers.
   * Default for createQEFlashAttention: min(2,
   * available cores) when the build is 'auto' and QE_FLASH_MODULE is unset,
   * else 1; default for everything else: 1.
   */
  threads?: number;
}

/** Built-in operations that benchmarkOperation can time by name. */
export type BackendOperation = 'matmul' | 'vecAdd' | 'softmax' | 'layerNorm' | 'embeddingLookup';

/**
 * Vector operations by name: the original module's names ('vecadd',
 * 'embedding', 'layer-norm' for vecAdd, embeddingLookup, layerNorm), this
 * package's, and 'attention'. benchmarkOperation times any of them.
 */
export type VectorOperation = 'matmul' | 'vecadd' | 'embedding' | 'softmax' | 'layer-norm' | BackendOperation | 'attention';

export interface OperationBenchmark {
  operation: string;
  /** The original module's field: the mean time per call in ms (meanMs). */
  avgTimeMs: number;
  iterations: number;
  warmupIterations: number;
  medianMs: number;
  meanMs: number;
  minMs: number;
  maxMs: number;
  /** 1000 / medianMs. */
  opsPerSecond: number;
  module: ModuleKind;
}

export interface BenchmarkOptions {
  /** Untimed calls before timing starts (default max(3, iterations / 10)). */
  warmup?: number;
  /** Label for a function operation (default 'custom'). */
  name?: string;
}

/** Options of matchDefectPattern. */
export interface DefectMatchOptions {
  /** Softmax temperature applied to the cosine scores; default 0.1. Must be > 0. */
  temperature?: number;
}

/**
 * One pattern's match. pattern and index: its position in the library (its
 * id for a SimilarityIndex), as in the original module; entry: the library
 * entry itself; score: cosine; probability: softmax weight.
 */
export interface DefectMatch<P = unknown> {
  pattern: number;
  index: number;
  entry: P;
  score: number;
  probability: number;
}

/**
 * A defect-pattern library: embeddings, objects carrying an `embedding`, one
 * flat row-major array (with its count), or a resident similarity index.
 */
export type PatternLibrary<P = unknown> =
  | readonly Float32Array[]
  | readonly (P & { embedding: Float32Array })[]
  | Float32Array
  | { data: Float32Array; count: number }
  | { search: (...args: never[]) => unknown; add: (...args: never[]) => unknown; size: number };
