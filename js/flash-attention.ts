/**
 * QEFlashAttention: exact multi-head attention computed in WebAssembly by the
 * FlashAttention algorithm, with a workload preset, per-call metrics, and the
 * naive JavaScript baseline that the speedups are measured against.
 */
import type {
  AttentionOptions,
  FlashAttentionConfig,
  FlashAttentionConfigOverrides,
  FlashAttentionMetrics,
  ModuleLoadOptions,
  QEWorkloadType,
} from '../types';
import { naiveAttention } from './baseline';
import { assertWorkloadType, cloneConfig, getQEFlashAttentionConfig, mergeConfig } from './config';
import { MODULE_ENV_VAR } from './loader';
import { MetricsRecorder } from './metrics';
import { loadQEModule, type QEModule } from './module';
import { defaultThreadCount, estimateAttentionFlops, validateThreadCount } from './threads';
import { validateAttention, type ResolvedAttention } from './validate';

export class QEFlashAttention {
  private config: FlashAttentionConfig;
  private module: QEModule | null;
  private readonly metrics = new MetricsRecorder();

  /**
   * Use createQEFlashAttention(), which loads the module and builds the
   * config. threads: the most threads a call may use (the module's worker
   * pool permitting).
   */
  constructor(
    private readonly workload: QEWorkloadType,
    config: FlashAttentionConfig,
    module: QEModule,
    private readonly threads: number = 1,
  ) {
    this.config = cloneConfig(config);
    this.module = module;
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
    // Workers wake while the arguments are checked and copied.
    if (this.threads > 1) module.pool?.wake(this.threads, estimateAttentionFlops(Q, K, dim));
    const shape = this.resolve(Q, K, V, seqLen, dim, options);
    const start = performance.now();
    const run = module.attention(Q, K, V, shape, this.config.blocks.queryChunkSize, this.config.blocks.kvChunkSize, this.threads);
    const timeMs = performance.now() - start;
    this.metrics.record({
      workload: this.workload,
      shape,
      timeMs,
      workspaceBytes: run.workspaceBytes,
      memoryBytes: module.memoryBytes,
      tileQ: run.tileQ,
      tileK: run.tileK,
      module: module.kind,
      threads: run.threads,
    });
    return run.output;
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
    this.live();
    const shape = this.resolve(Q, K, V, seqLen, dim, options);
    const start = performance.now();
    const output = naiveAttention(Q, K, V, shape);
    this.metrics.recordBaseline(shape, performance.now() - start);
    return output;
  }

  /** Copies of the metrics of every recorded call, oldest first. */
  getMetrics(): FlashAttentionMetrics[] {
    this.live();
    return this.metrics.list();
  }

  /** Mean speedup over the calls whose speedup is known; null when none is. */
  getAverageSpeedup(): number | null {
    this.live();
    return this.metrics.averageSpeedup();
  }

  getConfig(): FlashAttentionConfig {
    this.live();
    return cloneConfig(this.config);
  }

  /** Merges `partial` into the configuration (blocks field by field); returns the new configuration. */
  updateConfig(partial: FlashAttentionConfigOverrides): FlashAttentionConfig {
    this.live();
    this.config = mergeConfig(this.config, partial);
    return cloneConfig(this.config);
  }

  /** Forgets the recorded calls (baseline times are kept). */
  resetMetrics(): void {
    this.live();
    this.metrics.reset();
  }

  getWorkload(): QEWorkloadType {
    this.live();
    return this.workload;
  }

  /** The most threads a call may use: 1 on the single-thread builds. */
  getThreads(): number {
    return this.live().pool !== null ? this.threads : 1;
  }

  /**
   * Releases this instance; every later call throws. Calling it again does
   * nothing. When it was the last instance using the worker threads, they
   * are stopped (they never keep the process alive in any case).
   */
  dispose(): void {
    if (this.module !== null && this.threads > 1) this.module.pool?.release();
    this.module = null;
    this.metrics.reset();
  }

  private live(): QEModule {
    if (this.module === null) {
      throw new Error(`this QEFlashAttention (${this.workload}) has been disposed; create a new one with createQEFlashAttention()`);
    }
    return this.module;
  }

  private resolve(
    Q: Float32Array,
    K: Float32Array,
    V: Float32Array,
    seqLen: number,
    dim: number,
    options: AttentionOptions | undefined,
  ): ResolvedAttention {
    return validateAttention(Q, K, V, seqLen, dim, options, {
      heads: this.config.blocks.headsPerBlock,
      causal: this.config.useCausalMask,
    });
  }
}

/**
 * Threads asked for: loadOptions.threads when given; else min(2, cores)
 * where threads can run and the build is left to 'auto' (no QE_FLASH_MODULE);
 * else 1.
 */
async function resolveThreads(loadOptions: ModuleLoadOptions | undefined): Promise<number> {
  if (loadOptions?.threads !== undefined) return validateThreadCount(loadOptions.threads, 'threads');
  const auto = loadOptions?.module === undefined || loadOptions.module === 'auto';
  const forced = typeof process !== 'undefined' && !!process.env?.[MODULE_ENV_VAR];
  return auto && !forced && loadOptions?.wasmBytes === undefined ? defaultThreadCount() : 1;
}

/**
 * A QEFlashAttention for `workload`, its preset merged with customConfig.
 * loadOptions choose the build ('auto', 'simd', 'scalar'), where its bytes
 * come from, and the threads (default min(2, cores) with 'auto').
 */
export async function createQEFlashAttention(
  workload: QEWorkloadType,
  customConfig?: FlashAttentionConfigOverrides,
  loadOptions?: ModuleLoadOptions,
): Promise<QEFlashAttention> {
  assertWorkloadType(workload);
  const config = getQEFlashAttentionConfig(workload, customConfig);
  const threads = await resolveThreads(loadOptions);
  const module = await loadQEModule({ ...loadOptions, threads });
  return new QEFlashAttention(workload, config, module, threads);
}
