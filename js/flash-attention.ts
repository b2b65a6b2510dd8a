/**
 * QEFlashAttention: exact multi-head attention computed in WebAssembly by the
 * FlashAttention algorithm, with a workload preset, per-call metrics, and the
 * naive JavaScript baseline that the speedups are measured against.
 */
import type {
  AttentionOptions,
  AttentionStrategy,
  CoordinatorAttentionStrategy,
  CustomFlashAttentionConfig,
  DefectMatch,
  FlashAttentionConfig,
  DefectMatchOptions,
  PatternLibrary,
  WorkloadFlashAttentionConfig,
  FlashAttentionMetrics,
  ModuleLoadOptions,
  QEWorkloadType,
} from '../types';
import { runAttention, runGeneralAttention, type AttentionRun } from './attention';
import { naiveAttention } from './baseline';
import { assertWorkloadType, cloneConfig, mergeConfig, QE_FLASH_ATTENTION_CONFIG } from './config';
import { resolveThreads } from './loader';
import { embedCode } from './code-embedding';
import { createCodeIndex, type CodeIndex, type CodeIndexOptions } from './code-index';
import { corpusRows, matchDefect, realCorpus } from './defect-matching';
import { MetricsRecorder, type MeasuredOperation } from './metrics';
import { HNSWIndex, type HNSWIndexOptions, type HNSWSearchOptions, type HNSWSearchResult } from './hnsw';
import { loadQEModule, type QEModule } from './module';
import { ResidentAttention } from './resident-attention';
import { estimateAttentionFlops } from './thread-support';
import { cosineTopK, cosineTopKBatch, createSimilarityIndex, type CorpusInput, type SimilarityIndex, type SimilarityResult } from './similarity';
import { realArray, realLength, realList, typedArrayKind } from './input';
import { describe, validateAttention, validatePositiveInteger, type ResolvedAttention } from './validate';

function isQEModule(x: unknown): x is QEModule {
  return typeof x === 'object' && x !== null && typeof (x as QEModule).scope === 'function' && typeof (x as QEModule).kind === 'string';
}

export class QEFlashAttention {
  private config: WorkloadFlashAttentionConfig;
  private module: QEModule | null = null;
  private disposed = false;
  private threads = 1;
  private loading: Promise<void> | null = null;
  private readonly loadOptions: ModuleLoadOptions | undefined;
  private readonly workload: QEWorkloadType;
  private readonly metrics = new MetricsRecorder();
  private readonly resident = new Set<ResidentAttention>();
  private coverageIndex: HNSWIndex | null = null;

  /**
   * As in the original module: the workload's preset merged with
   * customConfig (ours, the original's, or agentic-qe 3.14's coordinator
   * shape), then `await initialize()` loads the module; loadOptions choose
   * the build and threads as for createQEFlashAttention, which does both.
   * The async methods initialize on first use; the Sync ones need
   * initialize() first.
   */
  constructor(workload: QEWorkloadType, customConfig?: CustomFlashAttentionConfig, loadOptions?: ModuleLoadOptions);
  /**
   * On an already loaded module, with a complete config. threads: the most
   * threads a call may use (the module's worker pool permitting).
   */
  constructor(workload: QEWorkloadType, config: FlashAttentionConfig, module: QEModule, threads?: number);
  constructor(
    workload: QEWorkloadType,
    config?: CustomFlashAttentionConfig,
    moduleOrOptions?: QEModule | ModuleLoadOptions,
    threads = 1,
  ) {
    assertWorkloadType(workload);
    this.workload = workload;
    if (isQEModule(moduleOrOptions)) {
      this.config = mergeConfig(QE_FLASH_ATTENTION_CONFIG[workload], config, 'config');
      this.loadOptions = undefined;
      this.attach(moduleOrOptions, threads);
    } else {
      this.config = mergeConfig(QE_FLASH_ATTENTION_CONFIG[workload], config, 'customConfig');
      if (moduleOrOptions !== undefined && (moduleOrOptions === null || typeof moduleOrOptions !== 'object')) {
        throw new TypeError(`loadOptions must be an object, got ${describe(moduleOrOptions)}`);
      }
      this.loadOptions = moduleOrOptions;
    }
  }

  /** Loads the module and starts the worker threads (once; later calls return at once). */
  async initialize(): Promise<void> {
    this.notDisposed();
    if (this.module !== null) return;
    if (this.loading === null) {
      this.loading = (async () => {
        const { threads, warning } = await resolveThreads(this.loadOptions);
        if (warning !== null) this.metrics.setStandingWarning(warning);
        const module = await loadQEModule({ ...this.loadOptions, threads }, 'loadOptions');
        // Disposed while loading: stay disposed.
        if (!this.disposed) this.attach(module, threads);
      })().finally(() => {
        this.loading = null;
      });
    }
    await this.loading;
    this.notDisposed();
  }

  private attach(module: QEModule, threads: number): void {
    this.module = module;
    this.threads = threads;
    if (threads > 1) module.pool?.retain();
  }

  /**
   * Attention of Q [seqLen x dim] over K and V [kvSeqLen x dim]; returns the
   * seqLen x dim outputs. Rejects, as computeFlashAttentionSync throws, on bad arguments.
   */
  async computeFlashAttention(
    Q: Float32Array,
    K: Float32Array,
    V: Float32Array,
    seqLen: number,
    dim: number,
    options?: AttentionOptions,
  ): Promise<Float32Array> {
    await this.initialize();
    return this.computeFlashAttentionSync(Q, K, V, seqLen, dim, options);
  }

  /** The synchronous twin of computeFlashAttention, for hot loops. */
  computeFlashAttentionSync(
    Q: Float32Array,
    K: Float32Array,
    V: Float32Array,
    seqLen: number,
    dim: number,
    options?: AttentionOptions,
  ): Float32Array {
    const module = this.live();
    // Arrays as they really are (js/input.ts): a lying length, another realm or shared memory change nothing below.
    Q = realArray('Q', Q) as Float32Array;
    K = realArray('K', K) as Float32Array;
    V = realArray('V', V) as Float32Array;
    // Workers wake while the arguments are checked and copied.
    if (this.threads > 1) module.pool?.wake(this.threads, estimateAttentionFlops(Q, K, dim));
    const shape = this.resolve(Q, K, V, seqLen, dim, options, 'module');
    const start = performance.now();
    const blockQ = this.config.blocks.queryChunkSize, blockK = this.config.blocks.kvChunkSize;
    const run = shape.general
      ? runGeneralAttention(module, Q, K, V, shape, options ?? {}, blockQ, blockK)
      : runAttention(module, Q, K, V, shape, blockQ, blockK, this.threads);
    this.recordAttention(module, shape, { ...run, timeMs: performance.now() - start });
    return run.output;
  }

  /** One attention call's metrics, from the direct and the resident path alike. */
  private recordAttention(module: QEModule, shape: ResolvedAttention, run: Omit<AttentionRun, 'output'> & { timeMs: number }): void {
    this.metrics.record({
      workload: this.workload,
      shape,
      timeMs: run.timeMs,
      workspaceBytes: run.workspaceBytes,
      memoryBytes: module.memoryBytes,
      tileQ: run.tileQ,
      tileK: run.tileK,
      module: module.kind,
      threads: run.threads,
    });
  }

  /**
   * Buffers in module memory for repeated attention of one shape: write Q, K
   * and V into `.Q`, `.K`, `.V` (views, taken afresh on each access), call
   * `.run()` (or `.run(out)` to copy the output out), and `.dispose()` when
   * done. No copy of the inputs or the output is made per call; options are
   * those of computeFlashAttention and are fixed here.
   */
  prepareAttention(seqLen: number, dim: number, options?: AttentionOptions): ResidentAttention {
    const module = this.live();
    // The buffers are made to fit the shape; their elements are checked in module memory on each run.
    const shape = Object.freeze(this.resolve(null, null, null, seqLen, dim, options, 'shape'));
    if (shape.general) {
      throw new RangeError('prepareAttention takes the options heads, causal, validKeyLength, scale and kvSeqLen; kvHeads, mask, softcap and window need computeFlashAttention');
    }
    const buffers = new ResidentAttention(
      module,
      shape,
      { queryChunkSize: this.config.blocks.queryChunkSize, kvChunkSize: this.config.blocks.kvChunkSize },
      this.threads,
      (run) => this.recordAttention(module, shape, run),
      (self) => this.resident.delete(self),
    );
    this.resident.add(buffers);
    return buffers;
  }

  /**
   * The same attention by the deliberately naive JavaScript baseline (the
   * full score matrix in memory). Its time is remembered for the shape, so
   * later computeFlashAttention calls on that shape report a speedup.
   */
  async computeBaselineAttention(
    Q: Float32Array,
    K: Float32Array,
    V: Float32Array,
    seqLen: number,
    dim: number,
    options?: AttentionOptions,
  ): Promise<Float32Array> {
    this.notDisposed();
    Q = realArray('Q', Q) as Float32Array;
    K = realArray('K', K) as Float32Array;
    V = realArray('V', V) as Float32Array;
    const shape = this.resolve(Q, K, V, seqLen, dim, options);
    if (shape.general) throw new RangeError('computeBaselineAttention takes heads, causal, validKeyLength, scale and kvSeqLen only (not kvHeads, mask, softcap or window)');
    const start = performance.now();
    const output = naiveAttention(Q, K, V, shape);
    this.metrics.recordBaseline(shape, performance.now() - start);
    return output;
  }

  /**
   * The topK corpus vectors most like testEmbedding by cosine similarity,
   * exact, best first, ties broken by lower index. The corpus is a list of
   * vectors or one flat row-major Float32Array ({ data, count } when its
   * dimension is not testEmbedding's length). topK may exceed the corpus:
   * then every row is returned. For a corpus searched many times, keep it
   * resident with createSimilarityIndex().
   */
  async computeTestSimilarity(testEmbedding: Float32Array, corpusEmbeddings: CorpusInput, topK = 5): Promise<SimilarityResult[]> {
    await this.initialize();
    return this.computeTestSimilaritySync(testEmbedding, corpusEmbeddings, topK);
  }

  computeTestSimilaritySync(testEmbedding: Float32Array, corpusEmbeddings: CorpusInput, topK = 5): SimilarityResult[] {
    const module = this.live();
    testEmbedding = realArray('testEmbedding', testEmbedding) as Float32Array;
    corpusEmbeddings = realCorpus('corpusEmbeddings', corpusEmbeddings) as CorpusInput;
    return this.measured('test-similarity', corpusRows(corpusEmbeddings, testEmbedding), testEmbedding?.length ?? 0, 0, () =>
      cosineTopK(module, testEmbedding, corpusEmbeddings, topK),
    );
  }

  /** computeTestSimilarity for many queries (a list, or flat row-major) in one pass over the corpus. */
  computeTestSimilarityBatch(queries: readonly Float32Array[] | Float32Array, corpusEmbeddings: CorpusInput, topK = 5, dim?: number): SimilarityResult[][] {
    const module = this.live();
    queries = realList('queries', queries) as readonly Float32Array[] | Float32Array;
    corpusEmbeddings = realCorpus('corpusEmbeddings', corpusEmbeddings) as CorpusInput;
    if (dim !== undefined) validatePositiveInteger('dim', dim);
    if (queries === null || typeof queries !== 'object') {
      throw new TypeError(`queries must be an array of Float32Array or one flat Float32Array, got ${describe(queries)}`);
    }
    const d = dim ?? (queries instanceof Float32Array ? this.config.dim : Math.max(0, realLength(queries[0])));
    return this.measured('test-similarity', corpusRows(corpusEmbeddings, new Float32Array(d)), d, 0, () =>
      cosineTopKBatch(module, queries, corpusEmbeddings, topK, dim),
    );
  }

  /**
   * Scores defectEmbedding against every pattern: `score` is the cosine
   * similarity, `probability` the attention weight softmax(score /
   * temperature) over the library (they sum to 1), best first. The library is
   * a list of embeddings, a list of objects with an `embedding`, one flat
   * Float32Array, or a resident SimilarityIndex (the fast form for repeated
   * matching). `pattern` and `index` are the pattern's position in the
   * library (its id in an index), as in the original module; `entry` is the
   * library entry (a row view of a flat library; the id for an index).
   * Default temperature 0.1.
   */
  async matchDefectPattern<P = unknown>(defectEmbedding: Float32Array, patternLibrary: PatternLibrary<P>, options?: DefectMatchOptions): Promise<DefectMatch<P>[]>;
  /** The text form: a failure (stack trace, message) against a code index of known defects' failures; `entry` is the defect's id, `pattern` and `index` its position in order of adding. */
  async matchDefectPattern(failureText: string, patternLibrary: CodeIndex, options?: DefectMatchOptions): Promise<DefectMatch<string>[]>;
  async matchDefectPattern<P = unknown>(defect: Float32Array | string, patternLibrary: PatternLibrary<P> | CodeIndex, options: DefectMatchOptions = {}): Promise<DefectMatch<P>[] | DefectMatch<string>[]> {
    await this.initialize();
    return typeof defect === 'string'
      ? this.matchDefectPatternSync(defect, patternLibrary as CodeIndex, options)
      : this.matchDefectPatternSync(defect, patternLibrary as PatternLibrary<P>, options);
  }

  matchDefectPatternSync<P = unknown>(defectEmbedding: Float32Array, patternLibrary: PatternLibrary<P>, options?: DefectMatchOptions): DefectMatch<P>[];
  matchDefectPatternSync(failureText: string, patternLibrary: CodeIndex, options?: DefectMatchOptions): DefectMatch<string>[];
  matchDefectPatternSync<P = unknown>(defectEmbedding: Float32Array | string, patternLibrary: PatternLibrary<P> | CodeIndex, options: DefectMatchOptions = {}): DefectMatch<P>[] | DefectMatch<string>[] {
    return matchDefect(this.live(), defectEmbedding, patternLibrary, options, (op, rows, dim, heads, run) => this.measured(op, rows, dim, heads, run)) as DefectMatch<P>[] | DefectMatch<string>[];
  }

  /**
   * An L2-normalized embedding of a piece of code, of the workload's dim.
   * From token embeddings: codeTokens is seqLen x dim (and positionEmbeddings,
   * when given, too; sinusoidal positions otherwise); multi-head
   * self-attention over tokens + positions, a residual connection and layer
   * norm, mean pooling, L2 normalization. From source text: the built-in
   * tokenizer and signed feature hashing of tokens and their bigrams and
   * trigrams give the token embeddings, then the same. Deterministic; no
   * model download.
   */
  async generateCodeEmbedding(code: Float32Array | string, positionEmbeddings?: Float32Array): Promise<Float32Array> {
    await this.initialize();
    return this.generateCodeEmbeddingSync(code, positionEmbeddings);
  }

  generateCodeEmbeddingSync(code: Float32Array | string, positionEmbeddings?: Float32Array): Float32Array {
    const module = this.live();
    code = realArray('codeTokens', code) as Float32Array | string;
    positionEmbeddings = realArray('positionEmbeddings', positionEmbeddings) as Float32Array | undefined;
    if (typeof code !== 'string' && typedArrayKind(code) === undefined) {
      throw new TypeError(`code must be source text (a string) or token embeddings (codeTokens: a Float32Array, seqLen x dim), got ${describe(code)}`);
    }
    const { dim, blocks } = this.config;
    const rows = typeof code === 'string' ? code.length : code instanceof Float32Array && dim > 0 ? Math.floor(code.length / dim) : 0;
    return this.measured('code-embedding', rows, dim, blocks.headsPerBlock, () => embedCode(module, code, positionEmbeddings, dim, blocks));
  }

  /**
   * A resident corpus in this instance's module memory (default dim: the
   * workload's): add vectors once, search many times, on this instance's
   * threads. Dispose it when done.
   */
  createSimilarityIndex(dim: number = this.config.dim): SimilarityIndex {
    return createSimilarityIndex(this.live(), dim, this.threads);
  }

  /**
   * A text index that learns document frequencies from what it holds
   * (js/code-index.ts): kind 'code' for tests and source, 'failure' for
   * stack traces. add(id, text), search(text, k), pairs(threshold). Runs on
   * this instance's module and threads. Dispose it when done.
   */
  createCodeIndex(options: CodeIndexOptions = {}): CodeIndex {
    const module = this.live();
    if (options === null || typeof options !== 'object') throw new TypeError(`options must be an object, got ${describe(options)}`);
    return createCodeIndex(module, { threads: this.threads, ...options });
  }

  /**
   * A new HNSW index (approximate nearest neighbours) in this instance's
   * module memory; dimensions default to the workload's. Dispose it when done.
   */
  createHNSWIndex<M = unknown>(options: HNSWIndexOptions = {}): HNSWIndex<M> {
    const module = this.live();
    if (options === null || typeof options !== 'object') throw new TypeError(`options must be an object, got ${describe(options)}`);
    return new HNSWIndex<M>(module, { dimensions: this.config.dim, ...options });
  }

  /**
   * The instance's own HNSW index, the one searchCoverage searches (the
   * coverage-analysis workload's "which tests cover code like this"): made
   * on first use with the workload's dimension and the default parameters
   * (M 16, efConstruction 200, efSearch 100, cosine); fill it with insert or
   * batchInsert. Disposed with the instance.
   */
  getCoverageIndex(): HNSWIndex {
    this.live();
    this.coverageIndex ??= this.createHNSWIndex();
    return this.coverageIndex;
  }

  /** The k nearest entries of getCoverageIndex() to query, best first. */
  searchCoverage(query: Float32Array | readonly number[], k = 10, options?: HNSWSearchOptions): HNSWSearchResult[] {
    return this.getCoverageIndex().search(query, k, options);
  }

  /** Runs a QE method and records its metrics. */
  private measured<T>(operation: MeasuredOperation['operation'], rows: number, dim: number, heads: number, run: () => T): T {
    const module = this.live();
    module.resetWorkspaceHighWater();
    const start = performance.now();
    const result = run();
    const timeMs = performance.now() - start;
    this.metrics.recordOperation({
      operation,
      workload: this.workload,
      rows,
      dim,
      heads,
      timeMs,
      workspaceBytes: module.workspaceHighWaterBytes(),
      memoryBytes: module.memoryBytes,
      module: module.kind,
    });
    return result;
  }

  /** Copies of the metrics of every recorded call, oldest first. */
  getMetrics(): FlashAttentionMetrics[] {
    this.notDisposed();
    return this.metrics.list();
  }

  /** Mean speedup over the calls whose speedup is known; null when none is. */
  getAverageSpeedup(): number | null {
    this.notDisposed();
    return this.metrics.averageSpeedup();
  }

  getConfig(): WorkloadFlashAttentionConfig {
    this.notDisposed();
    return cloneConfig(this.config);
  }

  /**
   * Merges `partial` into the configuration (blocks field by field; the
   * 3.14 coordinator shape too). Returns nothing, as in the original; read
   * the result with getConfig(). A rejected update changes nothing.
   */
  updateConfig(partial: CustomFlashAttentionConfig): void {
    this.notDisposed();
    this.config = mergeConfig(this.config, partial, 'partial');
  }

  /**
   * agentic-qe 3.14's changeStrategy: 'flash' keeps this instance's exact
   * FlashAttention; a preset strategy is recorded; the 3.14 wrapper's other
   * strategies are refused with a RangeError naming the supported ones.
   */
  changeStrategy(strategy: CoordinatorAttentionStrategy | AttentionStrategy): void {
    this.updateConfig({ strategy } as CustomFlashAttentionConfig);
  }

  /** Forgets the recorded calls (baseline times are kept). */
  resetMetrics(): void {
    this.notDisposed();
    this.metrics.reset();
  }

  getWorkload(): QEWorkloadType {
    this.notDisposed();
    return this.workload;
  }

  /** The most threads a call may use: 1 on the single-thread builds (and before initialize()). */
  getThreads(): number {
    this.notDisposed();
    return this.module?.pool ? this.threads : 1;
  }

  /**
   * Releases this instance; every later call throws. Calling it again does
   * nothing. When it was the last instance using the worker threads, they
   * are stopped (they never keep the process alive in any case).
   */
  dispose(): void {
    for (const r of [...this.resident]) r.dispose();
    this.coverageIndex?.dispose();
    this.coverageIndex = null;
    if (this.module !== null && this.threads > 1) this.module.pool?.release();
    this.module = null;
    this.disposed = true;
    this.metrics.reset();
  }

  private notDisposed(): void {
    if (this.disposed) {
      throw new TypeError(`this QEFlashAttention (${this.workload}) has been disposed; create a new one with createQEFlashAttention()`);
    }
  }

  private live(): QEModule {
    this.notDisposed();
    if (this.module === null) {
      throw new Error(`this QEFlashAttention (${this.workload}) is not initialized; call await initialize() first (createQEFlashAttention() does)`);
    }
    return this.module;
  }

  private resolve(
    Q: Float32Array | null,
    K: Float32Array | null,
    V: Float32Array | null,
    seqLen: number,
    dim: number,
    options: AttentionOptions | undefined,
    elements: 'check' | 'module' | 'shape' = 'check',
  ): ResolvedAttention {
    return validateAttention(Q, K, V, seqLen, dim, options, {
      heads: this.config.blocks.headsPerBlock,
      causal: this.config.useCausalMask,
    }, elements);
  }
}

/**
 * A QEFlashAttention for `workload`, its preset merged with customConfig
 * (ours, the original module's, or agentic-qe 3.14's { dim, strategy:
 * 'flash', blockSize?, numHeads? }), initialized. loadOptions choose the
 * build ('auto', 'simd', 'scalar'), where its bytes come from, and the
 * threads (default min(2, cores) with 'auto').
 */
export async function createQEFlashAttention(
  workload: QEWorkloadType,
  customConfig?: CustomFlashAttentionConfig,
  loadOptions?: ModuleLoadOptions,
): Promise<QEFlashAttention> {
  const instance = new QEFlashAttention(workload, customConfig, loadOptions);
  await instance.initialize();
  return instance;
}
