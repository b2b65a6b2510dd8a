/**
 * The package's default export: the core API as one object, for
 * `import qeFlash from '@agentic-qe/v3/flash-attention'`. The benchmark
 * suite is not in it, so a default import does not pull it into a bundle
 * (named imports tree-shake either way; the package has no side effects).
 */
import { getOptimalBlockConfig, getQEFlashAttentionConfig, getWorkloadTypes } from './config';
import { QEFlashAttention, createQEFlashAttention } from './flash-attention';
import { WASMSIMDBackend, getWASMSIMDBackend } from './backend';
import { tokenizeCode } from './tokenizer';
import { terminateThreadPools } from './thread-pool';
import { threadsAvailable } from './thread-support';

const qeFlash = {
  createQEFlashAttention,
  QEFlashAttention,
  getWASMSIMDBackend,
  WASMSIMDBackend,
  getQEFlashAttentionConfig,
  getOptimalBlockConfig,
  getWorkloadTypes,
  tokenizeCode,
  threadsAvailable,
  terminateThreadPools,
};

export default qeFlash;
