/**
 * A worker thread ended between calls (issue 16): it is no longer reported
 * ready, the next call runs on the threads that remain and its metrics say
 * so, and the pool starts a replacement lazily; every answer stays right.
 * (A worker that dies in the middle of a job is not handled yet: see the
 * README, "Where a goal is not met".)
 */
import { availableParallelism } from 'node:os';
import { createQEFlashAttention } from '../js/flash-attention';
import { loadQEModule } from '../js/module';
import { terminateThreadPools } from '../js/threads';
import { attentionShape, maxAbsDiff, referenceAttention, uniform } from './reference';

afterAll(() => terminateThreadPools());

test('a worker terminated between calls is dropped and replaced; the metrics count the threads that ran', async () => {
  const fa = await createQEFlashAttention('code-embedding', { dim: 128, blocks: { headsPerBlock: 4 } }, { threads: 2 });
  if (availableParallelism() < 2) {
    // One core: threads are clamped to 1 and no worker starts (test/threads.test.ts).
    expect(fa.getThreads()).toBe(1);
    fa.dispose();
    return;
  }
  const module = await loadQEModule({ threads: 2 });
  const pool = module.pool;
  expect(pool).not.toBeNull();
  if (pool === null) return;
  const s = attentionShape({ seqLen: 256, dim: 128, heads: 4 });
  const Q = uniform(256 * 128, 1);
  const K = uniform(256 * 128, 2);
  const V = uniform(256 * 128, 3);
  const expected = referenceAttention(Q, K, V, s);
  const call = () => {
    const out = fa.computeFlashAttentionSync(Q, K, V, 256, 128, { heads: 4 });
    expect(maxAbsDiff(out, expected)).toBeLessThan(2e-6);
    const metrics = fa.getMetrics();
    return metrics[metrics.length - 1].threads;
  };
  expect(call()).toBeLessThanOrEqual(2);
  expect(pool.readyWorkers).toBe(1);

  // End the worker from outside the pool's own stop(), as a crash or a host would.
  const record = (pool as unknown as { workers: { handle: { terminate(): Promise<void> } }[] }).workers[0];
  await record.handle.terminate();
  await new Promise((resolve) => setImmediate(resolve));
  expect(pool.readyWorkers).toBe(0);
  // The next call runs on the calling thread alone, and says so.
  expect(call()).toBe(1);

  // A replacement was started by that call; once it is ready, calls use it again.
  const until = Date.now() + 30000;
  while (pool.readyWorkers < 1 && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 10));
  expect(pool.readyWorkers).toBe(1);
  expect(pool.size).toBe(1);
  expect(call()).toBeLessThanOrEqual(2);
  fa.dispose();
});
