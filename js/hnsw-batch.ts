/**
 * Many HNSW searches in one call: on the module's worker pool when it has
 * one and `threads` > 1 (csrc/api_hnsw.c's job: ranges of the queries, each
 * thread on its own working memory over the same graph), else on this
 * thread; the same results either way, bit for bit.
 */
import type { HNSWEntries, QEModule } from './module';
import { checkSearchOptions, toVector, type HNSWSearchOptions } from './hnsw-types';
import { describe, validatePositiveInteger } from './validate';

/** searchBatch's arguments checked: the queries as Float32Arrays. */
export function checkBatch<M>(queries: unknown, k: unknown, options: HNSWSearchOptions<M>, dim: number): Float32Array[] {
  if (!Array.isArray(queries)) throw new TypeError(`queries must be an array of vectors, got ${describe(queries)}`);
  const qs = queries.map((q, i) => toVector(`queries[${i}]`, q, dim));
  validatePositiveInteger('k', k);
  checkSearchOptions(options, ['ef', 'filter']);
  return qs;
}

export interface BatchRaw {
  /** Slots and distances, k per query; counts[i] of them are results (a negative count is a C status). */
  slots: Int32Array;
  distances: Float32Array;
  counts: Int32Array;
  /** Threads the batch ran on. */
  threads: number;
}

export function searchMany(
  module: QEModule, x: HNSWEntries, handle: number, queries: readonly Float32Array[], dim: number,
  k: number, ef: number, bits: Uint8Array | null, threads: number, efEffective: number, M: number,
): BatchRaw {
  const nq = queries.length;
  return module.scope((s) => {
    const pq = s.alloc(nq * dim * 4);
    const pSlots = s.alloc(nq * k * 4);
    const pDist = s.alloc(nq * k * 4);
    const pCount = s.alloc(nq * 4);
    const pBits = bits ? s.alloc(bits.length) : 0;
    const f32 = module.f32();
    queries.forEach((q, i) => f32.set(q, (pq >>> 2) + i * dim));
    if (bits) module.u8().set(bits, pBits);
    let used = 0;
    if (module.pool !== null && threads > 1) {
      // About the distances a search computes (ef candidates x 2M links x dim), for the split decision.
      const flops = nq * efEffective * 2 * M * dim * 2;
      used = module.pool.runTasks(threads, flops, 'HNSW search', (participants) =>
        x.qe_hnsw_index_search_job_create(handle, pq, nq, k, ef, pBits, 0, pSlots, pDist, pCount, participants));
    }
    if (used === 0) {
      const status = x.qe_hnsw_index_search(handle, pq, nq, k, ef, pBits, 0, pSlots, pDist, pCount);
      if (status < 0) module.i32().fill(status, pCount >>> 2, (pCount >>> 2) + nq);
      used = 1;
    }
    const i32 = module.i32();
    return {
      slots: i32.slice(pSlots >>> 2, (pSlots >>> 2) + nq * k),
      distances: module.f32().slice(pDist >>> 2, (pDist >>> 2) + nq * k),
      counts: i32.slice(pCount >>> 2, (pCount >>> 2) + nq),
      threads: used,
    };
  });
}
