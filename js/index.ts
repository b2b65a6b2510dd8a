/**
 * @agentic-qe/v3/flash-attention: the public face. Re-exports only.
 */
export type {
  AttentionOptions,
  AttentionStrategy,
  BackendOperation,
  BenchmarkOptions,
  BlockConfig,
  FlashAttentionConfig,
  FlashAttentionConfigOverrides,
  FlashAttentionMetrics,
  ModuleChoice,
  ModuleKind,
  ModuleLoadOptions,
  OperationBenchmark,
  PerformanceTarget,
  QEWorkloadType,
  SIMDCapabilities,
  SONAIntegration,
} from '../types';
export {
  BLOCK_SIZE_PRESETS,
  QE_FLASH_ATTENTION_CONFIG,
  QE_PERFORMANCE_TARGETS,
  QE_SONA_CONFIG,
  getOptimalBlockConfig,
  getQEFlashAttentionConfig,
  getWorkloadTypes,
} from './config';
export { QEFlashAttention, createQEFlashAttention } from './flash-attention';
export { WASMSIMDBackend, getWASMSIMDBackend } from './backend';
