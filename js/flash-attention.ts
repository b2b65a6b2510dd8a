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
import { MetricsRecorder } from './metrics';
import { loadQEModule, type QEModule } from './module';
import { validateAttention, type ResolvedAttention } from './validate';

export class QEFlashAttention {
  private config: FlashAttentionConfig;
  private module: QEModule | null;
  private readonly metrics = new MetricsRecorder();

  /** Use createQEFlashAttention(), which loads the module and builds the config. */
  constructor(
    private readonly workload: QEWorkloadType,
    config: FlashAttentionConfig,
    module: QEModule,
  ) {
    this.config = cloneConfig(config);
    this.module = module;
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
    const shape = this.resolve(Q, K, V, seqLen, dim, options);
    const start = performance.now();
    const run = module.attention(Q, K, V, shape, this.config.blocks.queryChunkSize, this.config.blocks.kvChunkSize);
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

  /** Releases this instance; every later call throws. Calling it again does nothing. */
  dispose(): void {
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
 * A QEFlashAttention for `workload`, its preset merged with customConfig.
 * loadOptions choose the build ('auto', 'simd', 'scalar') and where its bytes come from.
 */
export async function createQEFlashAttention(
  workload: QEWorkloadType,
  customConfig?: FlashAttentionConfigOverrides,
  loadOptions?: ModuleLoadOptions,
): Promise<QEFlashAttention> {
  assertWorkloadType(workload);
  const config = getQEFlashAttentionConfig(workload, customConfig);
  const module = await loadQEModule(loadOptions);
  return new QEFlashAttention(workload, config, module);
}
