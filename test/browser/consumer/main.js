// The consumer's whole use of the package: one import line, nothing else.
import { createQEFlashAttention, getWASMSIMDBackend } from '@agentic-qe/v3/flash-attention';

// mulberry32, the same generator the test runner uses in Node.
function uniform(n, seed) {
  const out = new Float32Array(n);
  let a = seed >>> 0;
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  }
  return out;
}

globalThis.qeRun = async ({ seqLen, kvSeqLen, dim, heads, threads, seeds }) => {
  const Q = uniform(seqLen * dim, seeds[0]);
  const K = uniform(kvSeqLen * dim, seeds[1]);
  const V = uniform(kvSeqLen * dim, seeds[2]);
  const fa = await createQEFlashAttention('test-similarity', undefined, { threads });
  const out = await fa.computeFlashAttention(Q, K, V, seqLen, dim, { heads, kvSeqLen });
  const metrics = fa.getMetrics();
  const backend = await getWASMSIMDBackend();
  return {
    out: Array.from(out),
    module: metrics[metrics.length - 1].module,
    threads: metrics[metrics.length - 1].threads,
    caps: backend.getCapabilities(),
    isolated: globalThis.crossOriginIsolated === true,
  };
};
document.title = 'qe-flash consumer ready';
document.body.dataset.ready = '1';
