/**
 * @agentic-qe/v3/flash-attention: the public face. Re-exports only.
 */
export type {
  AttentionBackend,
  AttentionOptions,
  CoordinatorAttentionStrategy,
  CustomFlashAttentionConfig,
  QEFlashAttentionConfig,
  WorkloadFlashAttentionConfig,
  VectorOperation,
  DefectMatch,
  DefectMatchOptions,
  PatternLibrary,
  QEOperation,
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
  FLASH_ATTENTION_VERSION,
  MAX_SPEEDUP_TARGET,
  MIN_SPEEDUP_TARGET,
  QE_FLASH_ATTENTION_CONFIG,
  QE_PERFORMANCE_TARGETS,
  QE_SONA_CONFIG,
  getOptimalBlockConfig,
  getQEFlashAttentionConfig,
  getWorkloadTypes,
} from './config';
export { QEFlashAttention, createQEFlashAttention } from './flash-attention';
export { DEFAULT_DEFECT_TEMPERATURE } from './defect-matching';
export type { ResidentAttention } from './resident-attention';
export { WASMSIMDBackend, getWASMSIMDBackend } from './backend';
export {
  onnxAttention,
  onnxAttentionOn,
  type OnnxAttentionAttributes,
  type OnnxAttentionInputs,
  type OnnxAttentionOptions,
  type OnnxAttentionOutputName,
  type OnnxAttentionOutputs,
  type OnnxOutputTensor,
  type OnnxTensorLike,
} from './onnx-attention';
export type { CorpusInput, IndexSearchResult, SimilarityIndex, SimilarityResult } from './similarity';
export type { CodeIndex, CodeIndexMatch, CodeIndexOptions, CodeIndexPair, CodePairsOptions } from './code-index';
export { tokenizeTrace, type TraceToken, type TraceTokenKind } from './trace-tokenizer';
export { codeFeatures, failureFeatures, type TextFeatures, type TextKind } from './text-features';
export {
  PatternAdapter,
  createPatternAdapter,
  type AdaptExample,
  type FoundPattern,
  type PatternAdapterOptions,
  type PatternAdapterStats,
  type PatternAdaptationResult,
  type PatternInput,
  type StoredPattern,
  type Vector,
} from './pattern-adapter';
export {
  HNSWFileError,
  HNSWFilter,
  HNSWIndex,
  createHNSWIndex,
  type HNSWFileErrorCode,
  type HNSWFilterInput,
  type HNSWIndexOptions,
  type HNSWIndexStats,
  type HNSWInsertItem,
  type HNSWKey,
  type HNSWMetric,
  type HNSWSearchOptions,
  type HNSWSearchResult,
  type HNSWTraversal,
} from './hnsw';
export { tokenizeCode, splitIdentifier, type CodeLanguage, type CodeToken, type CodeTokenKind } from './tokenizer';
export { threadsAvailable } from './thread-support';
export { terminateThreadPools } from './thread-pool';
export {
  CROSS_CHECK_TOLERANCE,
  FlashAttentionBenchmark,
  QUICK_BENCHMARK_OPTIONS,
  REFERENCE_SHAPES,
  benchmarkWorkload,
  formatMarkdown,
  runFlashAttentionBenchmarks,
  type BenchmarkMetrics,
  type AttentionPeer,
  type PeerSession,
  type TimedSession,
  type BenchmarkResult,
  type EngineResult,
  type FlashAttentionBenchmarkOptions,
  type TimingStats,
} from './benchmark';
export { default } from './default-export';
