// Type-checked as CommonJS (node16 resolution: the "require" condition).
import { createQEFlashAttention, type FlashAttentionMetrics, type QEWorkloadType } from '@agentic-qe/v3/flash-attention';

export async function embed(workload: QEWorkloadType): Promise<[Float32Array, FlashAttentionMetrics[]]> {
  const fa = await createQEFlashAttention(workload);
  const out = await fa.computeFlashAttention(new Float32Array(8), new Float32Array(8), new Float32Array(8), 2, 4, { heads: 2 });
  return [out, fa.getMetrics()];
}
