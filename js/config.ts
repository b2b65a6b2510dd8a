/**
 * The workload presets and block-size helpers, with the exact numbers of the
 * QE workloads. Every constant is deeply frozen; the helpers return fresh
 * objects that callers may change.
 */
import type {
  AttentionStrategy,
  BlockConfig,
  FlashAttentionConfig,
  FlashAttentionConfigOverrides,
  PerformanceTarget,
  QEWorkloadType,
  SONAIntegration,
} from '../types';
import { validateFlashAttentionConfig, validatePositiveInteger } from './validate';

const WORKLOAD_TYPES: readonly QEWorkloadType[] = Object.freeze([
  'test-similarity',
  'code-embedding',
  'defect-matching',
  'coverage-analysis',
  'pattern-adaptation',
]);

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key]);
    Object.freeze(value);
  }
  return value;
}

function blocks(headsPerBlock: number, queryChunkSize: number, kvChunkSize: number, matmulBlockSize: number): BlockConfig {
  return { headsPerBlock, queryChunkSize, kvChunkSize, matmulBlockSize };
}

function preset(
  strategy: AttentionStrategy,
  dim: number,
  blockConfig: BlockConfig,
  targetSpeedup: { min: number; max: number },
): FlashAttentionConfig {
  return {
    backend: 'wasm-simd',
    strategy,
    dim,
    blocks: blockConfig,
    dropoutRate: 0,
    useCausalMask: false,
    fusedSoftmax: true,
    enableCheckpointing: false,
    targetSpeedup,
  };
}

export const QE_FLASH_ATTENTION_CONFIG: Readonly<Record<QEWorkloadType, Readonly<FlashAttentionConfig>>> = deepFreeze({
  'test-similarity': preset('latency-optimized', 384, blocks(8, 512, 512, 128), { min: 2.49, max: 7.47 }),
  'code-embedding': preset('throughput-optimized', 512, blocks(4, 1024, 1024, 256), { min: 2.49, max: 7.47 }),
  'defect-matching': preset('latency-optimized', 384, blocks(12, 256, 256, 64), { min: 2.49, max: 7.47 }),
  'coverage-analysis': preset('memory-efficient', 384, blocks(8, 256, 512, 128), { min: 50, max: 100 }),
  'pattern-adaptation': preset('latency-optimized', 256, blocks(4, 128, 128, 32), { min: 10, max: 40 }),
});

function sona(enabled: boolean, microLoRARank: number, targetAdaptationMs: number, patternCacheSize: number): SONAIntegration {
  return { enabled, microLoRARank, targetAdaptationMs, patternCacheSize };
}

export const QE_SONA_CONFIG: Readonly<Record<QEWorkloadType, Readonly<SONAIntegration>>> = deepFreeze({
  'test-similarity': sona(true, 4, 0.05, 1000),
  'code-embedding': sona(true, 2, 0.03, 5000),
  'defect-matching': sona(true, 8, 0.05, 2000),
  'coverage-analysis': sona(false, 2, 0.01, 100),
  'pattern-adaptation': sona(true, 2, 0.05, 10000),
});

function target(latencyBefore: number, latencyAfter: number, memoryBefore: number, memoryAfter: number, throughputMin: number): PerformanceTarget {
  return {
    latency: { before: latencyBefore, after: latencyAfter },
    memory: { before: memoryBefore, after: memoryAfter },
    throughput: { min: throughputMin },
  };
}

export const QE_PERFORMANCE_TARGETS: Readonly<Record<QEWorkloadType, Readonly<PerformanceTarget>>> = deepFreeze({
  'test-similarity': target(50, 15, 200, 80, 1000),
  'code-embedding': target(50, 15, 200, 80, 2000),
  'defect-matching': target(20, 5, 150, 50, 500),
  'coverage-analysis': target(100, 1, 100, 30, 10000),
  'pattern-adaptation': target(2, 0.05, 50, 20, 20000),
});

/** Block configurations by the longest sequence length they suit. */
export const BLOCK_SIZE_PRESETS: Readonly<Record<128 | 256 | 512 | 1024 | 2048 | 4096, Readonly<BlockConfig>>> = deepFreeze({
  128: blocks(4, 128, 128, 32),
  256: blocks(8, 256, 256, 64),
  512: blocks(8, 512, 512, 128),
  1024: blocks(4, 1024, 1024, 256),
  2048: blocks(4, 1024, 2048, 256),
  4096: blocks(2, 1024, 4096, 512),
});

const PRESET_LENGTHS = [128, 256, 512, 1024, 2048, 4096] as const;

/** The first preset whose length is at least seqLen, else the 4096 preset; a fresh copy. */
export function getOptimalBlockConfig(seqLen: number): BlockConfig {
  validatePositiveInteger('seqLen', seqLen);
  const key = PRESET_LENGTHS.find((n) => seqLen <= n) ?? 4096;
  return { ...BLOCK_SIZE_PRESETS[key] };
}

/** The workload names, in the presets' order. */
export function getWorkloadTypes(): QEWorkloadType[] {
  return [...WORKLOAD_TYPES];
}

export function isWorkloadType(value: unknown): value is QEWorkloadType {
  return typeof value === 'string' && (WORKLOAD_TYPES as readonly string[]).includes(value);
}

/** Throws a RangeError naming the valid workloads unless `workload` is one. */
export function assertWorkloadType(workload: unknown): asserts workload is QEWorkloadType {
  if (!isWorkloadType(workload)) {
    throw new RangeError(
      `unknown workload ${JSON.stringify(workload)}; valid workloads are: ${WORKLOAD_TYPES.join(', ')}`,
    );
  }
}

/** A fresh copy of a configuration, nested objects included. */
export function cloneConfig(config: Readonly<FlashAttentionConfig>): FlashAttentionConfig {
  return { ...config, blocks: { ...config.blocks }, targetSpeedup: { ...config.targetSpeedup } };
}

/**
 * Merges overrides into a configuration (blocks and targetSpeedup field by
 * field) and validates the result. Returns a new object; neither input changes.
 */
export function mergeConfig(
  base: Readonly<FlashAttentionConfig>,
  overrides?: FlashAttentionConfigOverrides,
): FlashAttentionConfig {
  if (overrides === undefined) return cloneConfig(base);
  if (overrides === null || typeof overrides !== 'object') {
    throw new TypeError(`config overrides must be an object, got ${overrides === null ? 'null' : typeof overrides}`);
  }
  const merged: FlashAttentionConfig = {
    ...base,
    ...(overrides as Partial<FlashAttentionConfig>),
    blocks: { ...base.blocks, ...(overrides.blocks ?? {}) },
    targetSpeedup: { ...base.targetSpeedup, ...(overrides.targetSpeedup ?? {}) },
  };
  validateFlashAttentionConfig(merged);
  return merged;
}

/** The workload's preset with `custom` merged in; always a fresh object. */
export function getQEFlashAttentionConfig(
  workload: QEWorkloadType,
  custom?: FlashAttentionConfigOverrides,
): FlashAttentionConfig {
  assertWorkloadType(workload);
  return mergeConfig(QE_FLASH_ATTENTION_CONFIG[workload], custom);
}
