/**
 * The presets carry the exact numbers of the QE workloads, and the helpers
 * never hand out the shared objects.
 */
import {
  BLOCK_SIZE_PRESETS,
  QE_FLASH_ATTENTION_CONFIG,
  QE_PERFORMANCE_TARGETS,
  QE_SONA_CONFIG,
  getOptimalBlockConfig,
  getQEFlashAttentionConfig,
  getWorkloadTypes,
} from '../js/index';
import type { QEWorkloadType } from '../types';
import { createOn, expectThrow } from './helpers';

const blocks = (headsPerBlock: number, queryChunkSize: number, kvChunkSize: number, matmulBlockSize: number) => ({
  headsPerBlock,
  queryChunkSize,
  kvChunkSize,
  matmulBlockSize,
});

const common = { backend: 'wasm-simd', dropoutRate: 0, useCausalMask: false, fusedSoftmax: true, enableCheckpointing: false };

test('QE_FLASH_ATTENTION_CONFIG has the exact preset numbers', () => {
  expect(QE_FLASH_ATTENTION_CONFIG).toEqual({
    'test-similarity': { ...common, strategy: 'latency-optimized', dim: 384, blocks: blocks(8, 512, 512, 128), targetSpeedup: { min: 2.49, max: 7.47 } },
    'code-embedding': { ...common, strategy: 'throughput-optimized', dim: 512, blocks: blocks(4, 1024, 1024, 256), targetSpeedup: { min: 2.49, max: 7.47 } },
    'defect-matching': { ...common, strategy: 'latency-optimized', dim: 384, blocks: blocks(12, 256, 256, 64), targetSpeedup: { min: 2.49, max: 7.47 } },
    'coverage-analysis': { ...common, strategy: 'memory-efficient', dim: 384, blocks: blocks(8, 256, 512, 128), targetSpeedup: { min: 50, max: 100 } },
    'pattern-adaptation': { ...common, strategy: 'latency-optimized', dim: 256, blocks: blocks(4, 128, 128, 32), targetSpeedup: { min: 10, max: 40 } },
  });
});

test('QE_SONA_CONFIG has the exact numbers', () => {
  const sona = (enabled: boolean, microLoRARank: number, targetAdaptationMs: number, patternCacheSize: number) => ({
    enabled,
    microLoRARank,
    targetAdaptationMs,
    patternCacheSize,
  });
  expect(QE_SONA_CONFIG).toEqual({
    'test-similarity': sona(true, 4, 0.05, 1000),
    'code-embedding': sona(true, 2, 0.03, 5000),
    'defect-matching': sona(true, 8, 0.05, 2000),
    'coverage-analysis': sona(false, 2, 0.01, 100),
    'pattern-adaptation': sona(true, 2, 0.05, 10000),
  });
});

test('QE_PERFORMANCE_TARGETS has the exact numbers', () => {
  const t = (lb: number, la: number, mb: number, ma: number, min: number) => ({
    latency: { before: lb, after: la },
    memory: { before: mb, after: ma },
    throughput: { min },
  });
  expect(QE_PERFORMANCE_TARGETS).toEqual({
    'test-similarity': t(50, 15, 200, 80, 1000),
    'code-embedding': t(50, 15, 200, 80, 2000),
    'defect-matching': t(20, 5, 150, 50, 500),
    'coverage-analysis': t(100, 1, 100, 30, 10000),
    'pattern-adaptation': t(2, 0.05, 50, 20, 20000),
  });
});

test('BLOCK_SIZE_PRESETS has the exact numbers', () => {
  expect(BLOCK_SIZE_PRESETS).toEqual({
    128: blocks(4, 128, 128, 32),
    256: blocks(8, 256, 256, 64),
    512: blocks(8, 512, 512, 128),
    1024: blocks(4, 1024, 1024, 256),
    2048: blocks(4, 1024, 2048, 256),
    4096: blocks(2, 1024, 4096, 512),
  });
});

test('the shared presets are frozen, nested objects included', () => {
  expect(Object.isFrozen(QE_FLASH_ATTENTION_CONFIG)).toBe(true);
  expect(Object.isFrozen(QE_FLASH_ATTENTION_CONFIG['test-similarity'].blocks)).toBe(true);
  expect(Object.isFrozen(QE_FLASH_ATTENTION_CONFIG['test-similarity'].targetSpeedup)).toBe(true);
  expect(Object.isFrozen(QE_SONA_CONFIG['code-embedding'])).toBe(true);
  expect(Object.isFrozen(QE_PERFORMANCE_TARGETS['code-embedding'].latency)).toBe(true);
  expect(Object.isFrozen(BLOCK_SIZE_PRESETS[4096])).toBe(true);
});

test.each([
  [1, 128],
  [127, 128],
  [128, 128],
  [129, 256],
  [256, 256],
  [300, 512],
  [512, 512],
  [1000, 1024],
  [1024, 1024],
  [2048, 2048],
  [2049, 4096],
  [4096, 4096],
  [100000, 4096],
] as const)('getOptimalBlockConfig(%i) is the %i preset, as a copy', (n, key) => {
  const config = getOptimalBlockConfig(n);
  expect(config).toEqual(BLOCK_SIZE_PRESETS[key]);
  expect(config).not.toBe(BLOCK_SIZE_PRESETS[key]);
  config.kvChunkSize = 1;
  expect(BLOCK_SIZE_PRESETS[key].kvChunkSize).not.toBe(1);
});

test('getOptimalBlockConfig rejects sizes that are not positive integers', () => {
  expectThrow(() => getOptimalBlockConfig(0), RangeError, 'seqLen must be at least 1, got 0');
  expectThrow(() => getOptimalBlockConfig(2.5), RangeError, 'seqLen must be an integer, got 2.5');
  expectThrow(() => getOptimalBlockConfig('128' as never), TypeError, 'seqLen must be a number');
});

test('getWorkloadTypes lists the five workloads and returns a fresh array', () => {
  const types = getWorkloadTypes();
  expect(types).toEqual(['test-similarity', 'code-embedding', 'defect-matching', 'coverage-analysis', 'pattern-adaptation']);
  types.pop();
  expect(getWorkloadTypes()).toHaveLength(5);
});

test.each(getWorkloadTypes())('getQEFlashAttentionConfig(%s) is a fresh deep copy of the preset', (workload: QEWorkloadType) => {
  const config = getQEFlashAttentionConfig(workload);
  expect(config).toEqual(QE_FLASH_ATTENTION_CONFIG[workload]);
  expect(config).not.toBe(QE_FLASH_ATTENTION_CONFIG[workload]);
  expect(config.blocks).not.toBe(QE_FLASH_ATTENTION_CONFIG[workload].blocks);
  expect(config.targetSpeedup).not.toBe(QE_FLASH_ATTENTION_CONFIG[workload].targetSpeedup);
  config.blocks.headsPerBlock = 99;
  config.targetSpeedup.min = 0.5;
  expect(getQEFlashAttentionConfig(workload)).toEqual(QE_FLASH_ATTENTION_CONFIG[workload]);
});

test('getQEFlashAttentionConfig merges blocks field by field', () => {
  const config = getQEFlashAttentionConfig('coverage-analysis', { useCausalMask: true, blocks: { kvChunkSize: 64 } });
  expect(config.useCausalMask).toBe(true);
  expect(config.blocks).toEqual(blocks(8, 256, 64, 128));
  expect(config.dim).toBe(384);
  expect(QE_FLASH_ATTENTION_CONFIG['coverage-analysis'].blocks.kvChunkSize).toBe(512);
});

test('getQEFlashAttentionConfig rejects an unknown workload', () => {
  expectThrow(() => getQEFlashAttentionConfig('nope' as never), RangeError, 'valid workloads are: test-similarity, code-embedding');
});

test('an instance hands out copies of its configuration, and updateConfig merges', async () => {
  const fa = await createOn('scalar', {}, 'code-embedding');
  const config = fa.getConfig();
  config.blocks.queryChunkSize = 1;
  expect(fa.getConfig().blocks.queryChunkSize).toBe(1024);
  expect(fa.updateConfig({ blocks: { queryChunkSize: 32 }, useCausalMask: true })).toBeUndefined();
  const updated = fa.getConfig();
  expect(updated.blocks).toEqual(blocks(4, 32, 1024, 256));
  expect(updated.useCausalMask).toBe(true);
  expect(fa.getConfig()).not.toBe(fa.getConfig());
  expect(fa.getWorkload()).toBe('code-embedding');
  expect(QE_FLASH_ATTENTION_CONFIG['code-embedding'].blocks.queryChunkSize).toBe(1024);
});
