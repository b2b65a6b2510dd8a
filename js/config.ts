/**
 * The workload presets and block-size helpers, with the exact numbers of the
 * QE workloads. Every constant is deeply frozen; the helpers return fresh
 * objects that callers may change.
 */
import type {
  AttentionStrategy,
  BlockConfig,
  CoordinatorAttentionStrategy,
  CustomFlashAttentionConfig,
  WorkloadFlashAttentionConfig,
  FlashAttentionConfigOverrides,
  PerformanceTarget,
  QEWorkloadType,
  SONAIntegration,
} from '../types';
import { validateFlashAttentionConfig, validatePositiveInteger } from './validate';

/**
 * The API level of agentic-qe's flash-attention module that this package is
 * a drop-in for (the package's own version is in package.json).
 */
export const FLASH_ATTENTION_VERSION = '1.0.0';
/** The speedup range over the naive baseline that the original module promised (ADR-040). */
export const MIN_SPEEDUP_TARGET = 2.49;
export const MAX_SPEEDUP_TARGET = 7.47;

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
): WorkloadFlashAttentionConfig {
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

export const QE_FLASH_ATTENTION_CONFIG: Readonly<Record<QEWorkloadType, Readonly<WorkloadFlashAttentionConfig>>> = deepFreeze({
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

/**
 * Block configurations by the longest sequence length they suit (128, 256,
 * ..., 4096). Typed as the original's Record<number, BlockConfig>: any other
 * key reads undefined.
 */
export const BLOCK_SIZE_PRESETS: Readonly<Record<number, Readonly<BlockConfig>>> = deepFreeze({
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
  if (typeof workload !== 'string') {
    throw new TypeError(`workload must be a string, one of ${WORKLOAD_TYPES.join(', ')}; got ${workload === null ? 'null' : typeof workload}`);
  }
  if (!isWorkloadType(workload)) {
    throw new RangeError(
      `unknown workload ${JSON.stringify(workload)}; valid workloads are: ${WORKLOAD_TYPES.join(', ')}`,
    );
  }
}

/** A fresh copy of a configuration, nested objects included. */
export function cloneConfig(config: Readonly<WorkloadFlashAttentionConfig>): WorkloadFlashAttentionConfig {
  return { ...config, blocks: { ...config.blocks }, targetSpeedup: { ...config.targetSpeedup } };
}

/**
 * Merges overrides into a configuration (blocks and targetSpeedup field by
 * field) and validates the result. Returns a new object; neither input changes.
 */
export function mergeConfig(
  base: Readonly<WorkloadFlashAttentionConfig>,
  custom?: CustomFlashAttentionConfig,
  name = 'customConfig',
): WorkloadFlashAttentionConfig {
  if (custom === undefined) return cloneConfig(base);
  if (custom === null || typeof custom !== 'object' || Array.isArray(custom)) {
    throw new TypeError(`${name} must be an object, got ${custom === null ? 'null' : Array.isArray(custom) ? 'an array' : typeof custom}`);
  }
  checkOverrideKeys(custom as Record<string, unknown>, name);
  const overrides = fromCoordinatorShape(custom);
  const merged: WorkloadFlashAttentionConfig = {
    ...base,
    ...(overrides as Partial<WorkloadFlashAttentionConfig>),
    blocks: { ...base.blocks, ...(overrides.blocks ?? {}) },
    targetSpeedup: { ...base.targetSpeedup, ...(overrides.targetSpeedup ?? {}) },
  };
  validateFlashAttentionConfig(merged);
  return merged;
}

const COORDINATOR_STRATEGIES: readonly CoordinatorAttentionStrategy[] = ['flash', 'dot-product', 'multi-head', 'hyperbolic', 'linear', 'moe'];
const PRESET_STRATEGIES: readonly AttentionStrategy[] = ['latency-optimized', 'throughput-optimized', 'memory-efficient'];
/** Keys of agentic-qe 3.14's coordinator config that are not fields of ours. */
const COORDINATOR_KEYS = ['blockSize', 'numHeads', 'curvature', 'features', 'moeConfig'] as const;

/**
 * Translates agentic-qe 3.14's coordinator shape ({ dim, strategy: 'flash',
 * blockSize?, numHeads? }) into overrides of ours: numHeads sets
 * blocks.headsPerBlock, blockSize both tiles, strategy 'flash' keeps the
 * preset's strategy. Strategies not computed here are refused by name.
 * Anything else passes through unchanged.
 */
function fromCoordinatorShape(custom: CustomFlashAttentionConfig): FlashAttentionConfigOverrides {
  const c = custom as Record<string, unknown>;
  const strategy = c.strategy;
  const coordinatorStrategy = typeof strategy === 'string' && (COORDINATOR_STRATEGIES as readonly string[]).includes(strategy);
  const hasCoordinatorKeys = COORDINATOR_KEYS.some((k) => c[k] !== undefined);
  if (!coordinatorStrategy && !hasCoordinatorKeys) return custom as FlashAttentionConfigOverrides;
  if (coordinatorStrategy && strategy !== 'flash') {
    throw new RangeError(
      `config.strategy ${JSON.stringify(strategy)} (agentic-qe 3.14) is not computed by this package; supported strategies: 'flash' ` +
        `(exact FlashAttention, multi-head through numHeads), or a preset strategy: ${PRESET_STRATEGIES.map((s) => `'${s}'`).join(', ')}`,
    );
  }
  const rest: Record<string, unknown> = { ...c };
  for (const k of COORDINATOR_KEYS) delete rest[k];
  if (coordinatorStrategy) delete rest.strategy;
  const blocks: Partial<BlockConfig> = { ...((rest.blocks as Partial<BlockConfig> | undefined) ?? {}) };
  if (c.numHeads !== undefined) {
    validatePositiveInteger('config.numHeads', c.numHeads);
    blocks.headsPerBlock = c.numHeads;
  }
  if (c.blockSize !== undefined) {
    validatePositiveInteger('config.blockSize', c.blockSize);
    blocks.queryChunkSize = c.blockSize;
    blocks.kvChunkSize = c.blockSize;
  }
  return { ...(rest as FlashAttentionConfigOverrides), blocks };
}

const CONFIG_KEYS = ['backend', 'strategy', 'dim', 'blocks', 'dropoutRate', 'useCausalMask', 'fusedSoftmax', 'enableCheckpointing', 'targetSpeedup'];
const BLOCK_KEYS = ['headsPerBlock', 'queryChunkSize', 'kvChunkSize', 'matmulBlockSize'];

/**
 * Unknown keys (a typo would otherwise be ignored) and a `blocks` or
 * `targetSpeedup` that is not an object (null would otherwise mean "the
 * preset's") are errors naming the key.
 */
function checkOverrideKeys(c: Record<string, unknown>, name: string): void {
  for (const key of Object.keys(c)) {
    if (!CONFIG_KEYS.includes(key) && !(COORDINATOR_KEYS as readonly string[]).includes(key)) {
      throw new TypeError(`${name} has an unknown key '${key}'; known keys: ${[...CONFIG_KEYS, ...COORDINATOR_KEYS].join(', ')}`);
    }
  }
  for (const key of ['blocks', 'targetSpeedup']) {
    const v = c[key];
    if (v !== undefined && (v === null || typeof v !== 'object' || Array.isArray(v))) {
      throw new TypeError(`${name}.${key} must be an object, got ${v === null ? 'null' : typeof v}`);
    }
  }
  const blocks = c.blocks as Record<string, unknown> | undefined;
  for (const key of Object.keys(blocks ?? {})) {
    if (!BLOCK_KEYS.includes(key)) throw new TypeError(`${name}.blocks has an unknown key '${key}'; known keys: ${BLOCK_KEYS.join(', ')}`);
  }
}

/** The workload's preset with `custom` merged in; always a fresh object. */
export function getQEFlashAttentionConfig(
  workload: QEWorkloadType,
  custom?: CustomFlashAttentionConfig,
): WorkloadFlashAttentionConfig {
  assertWorkloadType(workload);
  return mergeConfig(QE_FLASH_ATTENTION_CONFIG[workload], custom, 'custom');
}
