// Not consumer code: the browser test of a worker dying mid-job (test/worker-exit.test.ts
// in Node). It reaches into the package's browser tree for the pool and the test hook in
// a worker's control slot, which the public API does not expose.
import { createQEFlashAttention } from '@agentic-qe/v3/flash-attention';
import { loadQEModule } from './node_modules/@agentic-qe/v3/dist/esm/browser/js/module.js';
import { recordThreadJobStats } from './node_modules/@agentic-qe/v3/dist/esm/browser/js/thread-dispatch.js';
import { TEST_DIE, slotView } from './node_modules/@agentic-qe/v3/dist/esm/browser/js/thread-protocol.js';
import { seededUniform as uniform } from './node_modules/@agentic-qe/v3/dist/esm/browser/js/benchmark-measure.js';

async function untilReady(pool) {
  const until = Date.now() + 30000;
  while (pool.readyWorkers < 1 && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 10));
  return pool.readyWorkers;
}

// Makes the pool's first worker die (`how`: a TEST_DIE value) in the next job it takes,
// calls until it has, and reports that call.
globalThis.qeDie = async ({ seqLen, kvSeqLen, dim, heads, seeds, how }) => {
  const Q = uniform(seqLen * dim, seeds[0]);
  const K = uniform(kvSeqLen * dim, seeds[1]);
  const V = uniform(kvSeqLen * dim, seeds[2]);
  const fa = await createQEFlashAttention('test-similarity', undefined, { threads: 2 });
  const pool = (await loadQEModule({ threads: 2 })).pool;
  if (pool === null) throw new Error('no pool: the page is not cross-origin isolated?');
  const readyBefore = await untilReady(pool);
  const slot = slotView(pool.memory, pool.workers[0].slot);
  Atomics.store(slot, TEST_DIE, how);
  recordThreadJobStats(true);
  let fired = null;
  for (let i = 0; i < 40 && fired === null; i++) {
    const t0 = performance.now();
    const out = await fa.computeFlashAttention(Q, K, V, seqLen, dim, { heads, kvSeqLen });
    const ms = performance.now() - t0;
    if (Atomics.load(slot, TEST_DIE) === 0) fired = { out: Array.from(out), ms, threads: fa.getMetrics().at(-1).threads };
  }
  const jobs = recordThreadJobStats(false);
  const readyAfter = pool.readyWorkers;
  // The next call is right too, and starts a replacement.
  const next = Array.from(await fa.computeFlashAttention(Q, K, V, seqLen, dim, { heads, kvSeqLen }));
  const replaced = await untilReady(pool);
  const last = Array.from(await fa.computeFlashAttention(Q, K, V, seqLen, dim, { heads, kvSeqLen }));
  fa.dispose();
  return { fired, lost: jobs.at(-1)?.lost, readyBefore, readyAfter, next, replaced, last, failure: String(pool.failure) };
};
document.body.dataset.ready = '1';
