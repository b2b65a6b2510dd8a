/**
 * The resident corpus (csrc/search/corpus.h) as a typed object: the C side
 * owns the rows behind a handle; this class holds the handle, copies rows
 * in through a bounded staging buffer, and reads results out. The handle
 * pattern for C-owned objects, shown here first (docs/ARCHITECTURE.md):
 * create through an out-pointer with a status, check every status, drop the
 * handle on dispose so nothing can use it after the C side freed it.
 *
 * Module layer: the only file besides js/module.ts that calls the corpus
 * entries; callers above (js/similarity.ts) never see a pointer.
 */
import { checkStatus, QE_STATUS, type QEModule } from './module';

/** Rows copied through the staging buffer at a time (about 4 MB). */
function stagingRows(dim: number): number {
  return Math.max(1, Math.floor((4 << 20) / (dim * 4)));
}

/** Top-k lists of nq queries: row numbers and similarities, k per query. */
export interface CorpusHits {
  rows: Int32Array;
  scores: Float32Array;
}

export class Corpus {
  private handle: number;

  private constructor(private readonly module: QEModule, readonly dim: number, handle: number) {
    this.handle = handle;
  }

  /** An empty corpus of rows of length dim, with room for `capacity` rows. */
  static create(module: QEModule, dim: number, capacity = 0): Corpus {
    const x = module.exports;
    const handle = module.scope((s) => {
      const out = s.alloc(4);
      checkStatus(x.qe_corpus_create(dim, capacity, out), 'qe_corpus_create');
      return module.i32()[out >>> 2] >>> 0;
    });
    return new Corpus(module, dim, handle);
  }

  /** Rows held. */
  get size(): number {
    return this.count(this.module.exports.qe_corpus_size(this.live()), 'qe_corpus_size');
  }

  /** Rows there is room for before the corpus grows (it doubles). */
  get capacity(): number {
    return this.count(this.module.exports.qe_corpus_capacity(this.live()), 'qe_corpus_capacity');
  }

  /**
   * Appends `count` rows (flat row-major, or a list of vectors of length
   * dim, already checked finite) after the last row. A norm beyond float32's
   * range is a RangeError, and then no row is appended.
   */
  append(vectors: Float32Array | readonly Float32Array[], count: number): void {
    const handle = this.live();
    const chunk = Math.min(count, stagingRows(this.dim));
    const before = this.size;
    try {
      this.appendChunks(handle, vectors, count, chunk);
    } catch (error) {
      // Earlier chunks went in: take them out again (the last row goes without moving any).
      for (let n = this.size; n > before; n--) this.removeRow(n - 1);
      throw error;
    }
  }

  private appendChunks(handle: number, vectors: Float32Array | readonly Float32Array[], count: number, chunk: number): void {
    const { module, dim } = this;
    module.scope((s) => {
      const staging = s.allocFloats(chunk * dim);
      for (let first = 0; first < count; first += chunk) {
        const rows = Math.min(chunk, count - first);
        const f32 = module.f32();
        if (vectors instanceof Float32Array) {
          f32.set(vectors.subarray(first * dim, (first + rows) * dim), staging >>> 2);
        } else {
          for (let i = 0; i < rows; i++) f32.set(vectors[first + i], (staging >>> 2) + i * dim);
        }
        const status = module.exports.qe_corpus_append(handle, staging, rows);
        if (status === QE_STATUS.ERR_ARGUMENT) {
          // Sizes were checked and elements are finite: a norm beyond float range, or the corpus too large.
          throw new RangeError(
            (this.size + rows) * dim * 4 > 0xffffffff
              ? `the corpus would need more than 4 GiB of module memory`
              : `a vector's norm exceeds the float32 range (3.4e38); scale the vectors down`,
          );
        }
        checkStatus(status, 'qe_corpus_append');
      }
    });
  }

  /** Removes row `row`; the last row takes its number. */
  removeRow(row: number): void {
    checkStatus(this.module.exports.qe_corpus_remove_row(this.live(), row), 'qe_corpus_remove_row');
  }

  /**
   * The top k rows for each of nq queries (flat, nq x dim), best first, ties
   * by lower row; `threads` above 1 splits the corpus over the module's
   * worker pool (the threaded builds).
   */
  search(queries: Float32Array, nq: number, k: number, threads = 1): CorpusHits {
    const handle = this.live();
    const { module } = this;
    const x = module.exports;
    return module.scope((s) => {
      const q = s.copyIn(queries);
      const oi = s.alloc(nq * k * 4);
      const os = s.allocFloats(nq * k);
      const single = (): number => x.qe_corpus_search(handle, q, nq, k, oi, os);
      const status = module.pool !== null && threads > 1
        ? module.pool.searchWith({
          flops: 2 * nq * this.size * this.dim,
          create: (workers) => x.qe_corpus_search_job_create(handle, q, nq, k, oi, os, workers),
          single,
        }, threads).status
        : single();
      checkStatus(status, 'qe_corpus_search');
      return { rows: module.i32().slice(oi >>> 2, (oi >>> 2) + nq * k), scores: s.readFloats(os, nq * k) };
    });
  }

  /** Frees the corpus in module memory; later calls throw. Calling it again does nothing. */
  dispose(): void {
    if (this.handle === 0) return;
    const handle = this.handle;
    this.handle = 0;
    // A worker given up at a search's deadline may still read the corpus: its
    // destroy waits until that worker has ended (a handle it would refuse is refused now).
    checkStatus(Math.min(0, this.module.exports.qe_corpus_size(handle)), 'qe_corpus_destroy');
    this.module.releaseAfterWorkers(() => checkStatus(this.module.exports.qe_corpus_destroy(handle), 'qe_corpus_destroy'));
  }

  get disposed(): boolean {
    return this.handle === 0;
  }

  private live(): number {
    if (this.handle === 0) throw new TypeError('this corpus has been disposed');
    return this.handle;
  }

  private count(value: number, entry: string): number {
    checkStatus(Math.min(value, 0), entry);
    return value;
  }
}
