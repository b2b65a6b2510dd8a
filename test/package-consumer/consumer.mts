// Type-checked as an ES module (node16 resolution: the "import" condition).
import {
  createQEFlashAttention,
  getWorkloadTypes,
  type FlashAttentionMetrics,
  type QEWorkloadType,
} from '@agentic-qe/v3/flash-attention';

const workload: QEWorkloadType = getWorkloadTypes()[0];
const fa = await createQEFlashAttention(workload, { blocks: { kvChunkSize: 64 } }, { threads: 1 });
const out: Float32Array = await fa.computeFlashAttention(new Float32Array(8), new Float32Array(8), new Float32Array(8), 2, 4, { heads: 1, causal: true });
const sync: Float32Array = fa.computeFlashAttentionSync(new Float32Array(8), new Float32Array(8), new Float32Array(8), 2, 4);
const metrics: FlashAttentionMetrics[] = fa.getMetrics();
const index = fa.createSimilarityIndex(4);
const ids: number[] = index.add([new Float32Array(4)]);
const best: number = index.search(new Float32Array(4), 1)[0].id;
fa.dispose();
export const used = [out, sync, metrics, ids, best];
