/**
 * No hang when a worker dies (issue 16). A worker that ends between calls is
 * no longer reported ready, the next call runs on the threads that remain
 * and its metrics say so, and the pool starts a replacement lazily. A worker
 * that dies in the middle of a job, after claiming a task (a test hook in
 * its control slot makes it die there, deterministically: its thread exits,
 * its code throws, or it stops answering), or that is terminated while the
 * call runs, has its share finished by the calling thread: the call returns
 * the right answer within a bounded time, and does not count the dead
 * worker in its threads. Answers are checked against the float64 reference.
 */
import { availableParallelism } from 'node:os';
import { createQEFlashAttention, type QEFlashAttention } from '../js/flash-attention';
import { loadQEModule } from '../js/module';
import { createHNSWIndex } from '../js/hnsw';
import { DIE_EXIT, DIE_HANG, DIE_THROW, TEST_DIE, slotView } from '../js/thread-protocol';
import { JOB_DEADLINE_FLOOR_MS, recordThreadJobStats, terminateThreadPools, type ThreadPool } from '../js/threads';
import { attentionShape, gaussianMixture, maxAbsDiff, referenceAttention, referenceCosine, referenceKnn, uniform } from './reference';

afterAll(() => terminateThreadPools());

interface PoolInside {
  workers: { slot: number; handle: { terminate(): Promise<void> } }[];
  memory: WebAssembly.Memory;
}
const inside = (pool: ThreadPool): PoolInside => pool as unknown as PoolInside;

const SEQ = 512;
const DIM = 128;
const HEADS = 4;
const Q = uniform(SEQ * DIM, 1);
const K = uniform(SEQ * DIM, 2);
const V = uniform(SEQ * DIM, 3);
const expected = referenceAttention(Q, K, V, attentionShape({ seqLen: SEQ, dim: DIM, heads: HEADS }));

/** One checked call: its answer against float64, and the threads its metrics claim. */
function call(fa: QEFlashAttention): number {
  const out = fa.computeFlashAttentionSync(Q, K, V, SEQ, DIM, { heads: HEADS });
  expect(maxAbsDiff(out, expected)).toBeLessThan(2e-6);
  const metrics = fa.getMetrics();
  return metrics[metrics.length - 1].threads;
}

async function untilReady(pool: ThreadPool, count: number): Promise<void> {
  const until = Date.now() + 30000;
  while (pool.readyWorkers < count && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 10));
  expect(pool.readyWorkers).toBe(count);
}

/** A QEFlashAttention on two threads and its pool, or null on one core (threads are clamped to 1 there). */
async function twoThreads(): Promise<{ fa: QEFlashAttention; pool: ThreadPool } | null> {
  const fa = await createQEFlashAttention('code-embedding', { dim: DIM, blocks: { headsPerBlock: HEADS } }, { threads: 2 });
  if (availableParallelism() < 2) {
    expect(fa.getThreads()).toBe(1);
    fa.dispose();
    return null;
  }
  const pool = (await loadQEModule({ threads: 2 })).pool;
  expect(pool).not.toBeNull();
  if (pool === null) return null;
  await untilReady(pool, 1);
  return { fa, pool };
}

test('a worker terminated between calls is dropped and replaced; the metrics count the threads that ran', async () => {
  const two = await twoThreads();
  if (two === null) return;
  const { fa, pool } = two;
  expect(call(fa)).toBeLessThanOrEqual(2);
  expect(pool.readyWorkers).toBe(1);

  // End the worker from outside the pool's own stop(), as a crash or a host would.
  await inside(pool).workers[0].handle.terminate();
  await new Promise((resolve) => setImmediate(resolve));
  expect(pool.readyWorkers).toBe(0);
  // The next call runs on the calling thread alone, and says so.
  expect(call(fa)).toBe(1);

  // A replacement was started by that call; once it is ready, calls use it again.
  await untilReady(pool, 1);
  expect(pool.size).toBe(1);
  expect(call(fa)).toBeLessThanOrEqual(2);
  fa.dispose();
});

describe.each([
  ['its thread exits (process.exit in the worker)', DIE_EXIT, 10000],
  ['its code throws (as a trap would)', DIE_THROW, 10000],
  ['it stops answering (the deadline)', DIE_HANG, JOB_DEADLINE_FLOOR_MS + 15000],
])('a worker that dies mid-job after claiming a task: %s', (_what, how, boundMs) => {
  test('the caller finishes its share: the right answer, in bounded time; the worker is dropped, not counted, and replaced', async () => {
    const two = await twoThreads();
    if (two === null) return;
    const { fa, pool } = two;
    const module = await loadQEModule({ threads: 2 });
    const baseline = module.liveBytes;
    const slot = slotView(inside(pool).memory, inside(pool).workers[0].slot);
    // The hook fires in the next job the worker takes (a job it was too late
    // for is withdrawn from it, and then the hook waits for the next call).
    Atomics.store(slot, TEST_DIE, how);
    recordThreadJobStats(true);
    let fired: { ms: number; threads: number } | null = null;
    for (let i = 0; i < 20 && fired === null; i++) {
      const t0 = performance.now();
      const threads = call(fa);
      if (Atomics.load(slot, TEST_DIE) === 0) fired = { ms: performance.now() - t0, threads };
    }
    const jobs = recordThreadJobStats(false);
    expect(fired).not.toBeNull();
    if (fired === null) return;
    expect(fired.ms).toBeLessThan(boundMs);
    // The dead worker is not counted in the call's threads, nor reported ready.
    expect(fired.threads).toBe(1);
    expect(jobs.at(-1)?.lost).toBe(1);
    expect(jobs.slice(0, -1).every((j) => j.lost === 0)).toBe(true);
    expect(pool.readyWorkers).toBe(0);
    // A worker seen to die writes nothing more: the call's buffers were freed.
    // One given up at the deadline may still be running, so the frees wait
    // until its thread has ended (else its last writes could land in a later
    // call's buffers).
    if (how === DIE_HANG) expect(module.liveBytes).toBeGreaterThan(baseline);
    else expect(module.liveBytes).toBe(baseline);
    // Calls meanwhile are right; a replacement starts, and calls use it.
    expect(call(fa)).toBeLessThanOrEqual(2);
    await untilReady(pool, 1);
    expect(pool.size).toBe(1);
    expect(call(fa)).toBeLessThanOrEqual(2);
    expect(pool.failure).toBeNull();
    // Every held free has gone through once the worker ended.
    const until = Date.now() + 10000;
    while (module.liveBytes !== baseline && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(module.liveBytes).toBe(baseline);
    fa.dispose();
  });
});

test('a worker terminated while a call runs: the right answer in bounded time, and it is replaced', async () => {
  const two = await twoThreads();
  if (two === null) return;
  const { fa, pool } = two;
  const record = inside(pool).workers[0];
  // Terminate it from the calling thread once the job is posted (the
  // moment the call's own work starts): it may have taken the job or not,
  // and may end before, while or after it runs its tasks.
  const attention = pool.attention.bind(pool);
  let ended: Promise<void> | null = null;
  pool.attention = (c, threads) =>
    attention({ ...c, meanwhile: () => {
      ended ??= record.handle.terminate();
      c.meanwhile?.();
    } }, threads);
  const t0 = performance.now();
  const threads = call(fa);
  expect(performance.now() - t0).toBeLessThan(JOB_DEADLINE_FLOOR_MS + 15000);
  expect(threads).toBeLessThanOrEqual(2);
  pool.attention = attention;
  expect(ended).not.toBeNull();
  await ended;
  await new Promise((resolve) => setImmediate(resolve));
  // Gone from the pool; the next call runs alone and starts a replacement.
  expect(pool.readyWorkers).toBe(0);
  expect(call(fa)).toBe(1);
  await untilReady(pool, 1);
  expect(inside(pool).workers[0]).not.toBe(record);
  expect(call(fa)).toBeLessThanOrEqual(2);
  fa.dispose();
});

test('a search whose worker dies mid-job still ranks as float64 does', async () => {
  const two = await twoThreads();
  if (two === null) return;
  const { fa, pool } = two;
  const n = 6000;
  const dim = 64;
  const rows = Array.from({ length: n }, (_, i) => uniform(dim, 100 + i));
  const queries = Array.from({ length: 16 }, (_, i) => uniform(dim, 90000 + i));
  const index = fa.createSimilarityIndex(dim);
  const ids = index.add(rows);
  // float64 top 10 of each query (random data: no ties in the first ten).
  const expectedTop = queries.map((q) =>
    rows.map((r, i) => ({ id: ids[i], s: referenceCosine(q, r) })).sort((a, b) => b.s - a.s).slice(0, 10));
  const slot = slotView(inside(pool).memory, inside(pool).workers[0].slot);
  Atomics.store(slot, TEST_DIE, DIE_THROW);
  recordThreadJobStats(true);
  let fired = false;
  for (let i = 0; i < 20 && !fired; i++) {
    const got = index.searchBatch(queries, 10);
    got.forEach((list, qi) => {
      expect(list.map((r) => r.id)).toEqual(expectedTop[qi].map((e) => e.id));
      list.forEach((r, j) => expect(Math.abs(r.similarity - expectedTop[qi][j].s)).toBeLessThan(1e-5));
    });
    fired = Atomics.load(slot, TEST_DIE) === 0;
  }
  const jobs = recordThreadJobStats(false);
  expect(fired).toBe(true);
  expect(jobs.at(-1)?.lost).toBe(1);
  expect(pool.readyWorkers).toBe(0);
  // The next search is right too, and starts a replacement.
  expect(index.searchBatch(queries, 10).map((l) => l.map((r) => r.id))).toEqual(expectedTop.map((l) => l.map((e) => e.id)));
  await untilReady(pool, 1);
  index.dispose();
  fa.dispose();
});

test('an HNSW index or corpus let go while a worker given up at the deadline may still read it: done with at once, its C memory freed once the worker has ended', async () => {
  const two = await twoThreads();
  if (two === null) return;
  const { fa, pool } = two;
  const module = await loadQEModule({ threads: 2 });
  const x = module.hnswEntries();
  const dim = 24;
  const data = gaussianMixture(3000, dim, 30, 0.4, 11);
  const queries = data.more(64);
  const options = { dimensions: dim, M: 8, efConstruction: 64, metric: 'l2' as const, seed: 5 };
  const a = await createHNSWIndex(options, { threads: 2 });
  const b = await createHNSWIndex(options, { threads: 2 });
  a.batchInsert(data.points.map((vector, key) => ({ key, vector })));
  b.batchInsert(data.points.slice(0, 50).map((vector, key) => ({ key, vector })));
  const corpus = fa.createSimilarityIndex(dim);
  corpus.add(data.points.slice(0, 100));
  const handleOf = (index: unknown): number => (index as { handle: number }).handle;
  const corpusHandle = (corpus as unknown as { corpus: { handle: number } }).corpus.handle;
  expect(corpusHandle).toBeGreaterThan(0);
  const [ha, hb] = [handleOf(a), handleOf(b)];
  const single = queries.map((q) => a.search(q, 10));
  // The batch answers are search()'s, which find most of the float64 exact neighbours.
  let found = 0;
  queries.forEach((q, i) => {
    const exact = new Set(referenceKnn('l2', q, data.points, 10).map((e) => e.index));
    found += single[i].filter((r) => exact.has(r.key as number)).length;
  });
  expect(found / (10 * queries.length)).toBeGreaterThan(0.9);

  // The worker stops answering in the next batch it takes: the caller gives it up at the deadline.
  const slot = slotView(inside(pool).memory, inside(pool).workers[0].slot);
  Atomics.store(slot, TEST_DIE, DIE_HANG);
  recordThreadJobStats(true);
  let fired = false;
  for (let i = 0; i < 20 && !fired; i++) {
    expect(a.searchBatch(queries, 10)).toEqual(single);
    fired = Atomics.load(slot, TEST_DIE) === 0;
  }
  const jobs = recordThreadJobStats(false);
  expect(fired).toBe(true);
  expect(jobs.at(-1)?.lost).toBe(1);

  // Let go while it may still run: the objects are done with at once...
  a.dispose();
  b.clear();
  corpus.dispose();
  expect(() => a.size()).toThrow(TypeError);
  expect(() => a.searchBatch(queries, 3)).toThrow(/disposed/);
  expect(b.size()).toBe(0);
  // ...but the graphs and the corpus it may be reading are not freed under it.
  expect(x.qe_hnsw_index_count(ha)).toBe(3000);
  expect(x.qe_hnsw_index_count(hb)).toBe(50);
  expect(module.exports.qe_corpus_size(corpusHandle)).toBe(100);
  // The emptied index works meanwhile, as search() and float64 say.
  b.batchInsert(data.points.slice(0, 200).map((vector, key) => ({ key, vector })));
  expect(b.searchBatch(queries.slice(0, 8), 1).map((r) => r[0].key)).toEqual(queries.slice(0, 8).map((q) => referenceKnn('l2', q, data.points.slice(0, 200), 1)[0].index));

  // Once its thread has ended they go, with the held frees.
  const until = Date.now() + 15000;
  while (x.qe_hnsw_index_count(ha) >= 0 && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 10));
  expect(x.qe_hnsw_index_count(ha)).toBeLessThan(0);
  expect(x.qe_hnsw_index_count(hb)).toBeLessThan(0);
  expect(module.exports.qe_corpus_size(corpusHandle)).toBeLessThan(0);
  expect(x.qe_hnsw_index_count(handleOf(b))).toBe(200);
  expect(pool.failure).toBeNull();
  // With no worker given up, dispose frees at once, as before.
  const hb2 = handleOf(b);
  b.dispose();
  expect(x.qe_hnsw_index_count(hb2)).toBeLessThan(0);
  fa.dispose();
});
