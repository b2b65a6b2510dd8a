/**
 * Exact cosine top-K search in module memory: a resident, growable corpus
 * (createSimilarityIndex) and one-shot helpers (cosineTopK, the core of
 * computeTestSimilarity; matchPatterns, the core of matchDefectPattern).
 *
 * What a result means, everywhere in this file:
 *   similarity = dot(q, x) / (|q| |x|), computed in float32 and clamped to
 *   [-1, 1]; 0 when either vector is all zeros (norm below 1.18e-38);
 *   results are best first, ties broken by the lower index (or, in an index,
 *   the lower id); asking for more results than there are rows returns all.
 *
 * The kernel is csrc/search/similarity.c: dot products of queries with
 * panels of corpus rows feeding a bounded heap per query, so the queries x
 * corpus score matrix is never built and working memory does not grow with
 * the corpus. The corpus lives in module memory in the kernel's panel layout
 * (rows of 16 interleaved by dimension, written by qe_corpus_store_rows), so
 * a query streams it front to back; the one-shot helpers store the corpus
 * for the call, the index keeps it. Both hold it as a Corpus (js/corpus.ts),
 * the C-owned object behind a handle; no pointer reaches this file.
 */
import { Corpus } from './corpus';
import type { QEModule } from './module';
import { describe, MAX_INT32, validateFiniteElements, validateFiniteNumber, validateFloat32Array, validatePositiveInteger } from './validate';
import { realArray, realLength, realList } from './input';

/** One result of the one-shot helpers: a row of the corpus given. */
export interface SimilarityResult {
  index: number;
  similarity: number;
}

/** One result of a resident index: the id add() returned. */
export interface IndexSearchResult {
  id: number;
  similarity: number;
}

/** A corpus as separate vectors, or as one flat row-major array (with its row count when the dimension is not known). */
export type CorpusInput = readonly Float32Array[] | Float32Array | { data: Float32Array; count: number };

/** A pattern match: cosine score and its softmax(score / temperature) probability. */
export interface PatternMatch {
  index: number;
  score: number;
  probability: number;
}

/** Default temperature of matchPatterns: probabilities are softmax(cosine / 0.1). */
export const DEFAULT_PATTERN_TEMPERATURE = 0.1;

// ---------------------------------------------------------------------------
// Argument checks

/** Checks a vector of length dim with finite elements. */
function validateVector(name: string, value: unknown, dim: number): asserts value is Float32Array {
  validateFloat32Array(name, value);
  if (value.length !== dim) throw new RangeError(`${name} has length ${value.length} but the dimension is ${dim}`);
  validateFiniteElements(name, value);
}

/** An id as add() hands them out: an integer in [0, 2^31 - 1]. */
function validateId(name: string, id: unknown): asserts id is number {
  if (typeof id !== 'number') throw new TypeError(`${name} must be a number (an id from add()), got ${describe(id)}`);
  if (!Number.isInteger(id) || id < 0 || id > MAX_INT32) throw new RangeError(`${name} must be an integer in [0, ${MAX_INT32}] (an id from add()), got ${id}`);
}

function validateK(name: string, k: unknown): asserts k is number {
  validatePositiveInteger(name, k);
}

/** A batch of vectors of length dim: an array of them, or one flat array of a multiple of dim. Returns the row count. */
function validateBatch(name: string, value: unknown, dim: number): number {
  if (Array.isArray(value)) {
    value.forEach((v, i) => validateVector(`${name}[${i}]`, v, dim));
    return value.length;
  }
  validateFloat32Array(name, value);
  if (value.length % dim !== 0) {
    throw new RangeError(`${name} has length ${value.length}, which is not a multiple of the dimension ${dim}`);
  }
  validateFiniteElements(name, value);
  return value.length / dim;
}

/** Resolves a corpus (argument `name`) against the query's dimension: its rows, as a flat array or a list. */
function validateCorpus(
  value: unknown,
  dim: number,
  name = 'corpusEmbeddings',
  queryName = 'the query',
  rowName: (i: number) => string = (i) => `${name}[${i}]`,
): { count: number; rows: readonly Float32Array[] | null; flat: Float32Array | null } {
  if (Array.isArray(value)) {
    if (value.length === 0) throw new RangeError(`${name} is empty; it needs at least one vector`);
    // Every row agrees on a length the query does not have: the query is the odd one out.
    const first = realLength(value[0]);
    if (first > 0 && first !== dim && value.every((v) => realLength(v) === first)) {
      throw new RangeError(`${queryName} has length ${dim} but every vector of ${name} has length ${first}`);
    }
    value.forEach((v, i) => validateVector(rowName(i), v, dim));
    return { count: value.length, rows: value as Float32Array[], flat: null };
  }
  if (value instanceof Float32Array) {
    if (value.length === 0 || value.length % dim !== 0) {
      throw new RangeError(`${name} has length ${value.length}, which is not a positive multiple of the dimension ${dim}`);
    }
    validateFiniteElements(name, value);
    return { count: value.length / dim, rows: null, flat: value };
  }
  if (value !== null && typeof value === 'object' && 'data' in value && 'count' in value) {
    const { data, count } = value as { data: unknown; count: unknown };
    validateFloat32Array(`${name}.data`, data);
    validatePositiveInteger(`${name}.count`, count);
    if (data.length !== count * dim) {
      throw new RangeError(`${name}.data has length ${data.length} but count x dim = ${count} x ${dim} = ${count * dim}`);
    }
    validateFiniteElements(`${name}.data`, data);
    return { count, rows: null, flat: data };
  }
  throw new TypeError(`${name} must be an array of Float32Array, a Float32Array, or { data, count }, got ${describe(value)}`);
}

function checkBytes(what: string, count: number): void {
  if (count * 4 > 0xffffffff) throw new RangeError(`${what} needs ${count * 4} bytes, more than module memory can hold (4 GiB)`);
}

// ---------------------------------------------------------------------------
// One-shot search

/**
 * Exact top-k of each query against a corpus given as a flat array or rows,
 * all copied into module memory for the call. Results per query, best first.
 */
function topKOnce(module: QEModule, queries: Float32Array, nq: number, dim: number, corpus: ReturnType<typeof validateCorpus>, k: number): SimilarityResult[][] {
  const n = corpus.count;
  const kk = Math.min(k, n);
  checkBytes('the corpus', Math.ceil(n / 16) * 16 * dim);
  checkBytes('the results', nq * kk);
  const stored = Corpus.create(module, dim, n);
  try {
    stored.append(corpus.flat ?? (corpus.rows as Float32Array[]), n);
    const { rows: idx, scores: score } = stored.search(queries, nq, kk);
    const out: SimilarityResult[][] = [];
    for (let i = 0; i < nq; i++) {
      const row: SimilarityResult[] = new Array(kk);
      for (let j = 0; j < kk; j++) row[j] = { index: idx[i * kk + j], similarity: score[i * kk + j] };
      out.push(row);
    }
    return out;
  } finally {
    stored.dispose();
  }
}

/**
 * The exact top-K rows of `corpus` by cosine similarity to `query`, best
 * first, ties by lower index; min(topK, corpus size) results. The corpus is
 * Float32Array[] (each of query.length), one flat Float32Array whose length
 * is a multiple of query.length, or { data, count }.
 */
export function cosineTopK(module: QEModule, query: Float32Array, corpus: CorpusInput, topK = 5): SimilarityResult[] {
  validateFloat32Array('testEmbedding', query);
  if (query.length === 0) throw new RangeError('testEmbedding is empty');
  if (query.length > MAX_INT32) throw new RangeError(`testEmbedding has length ${query.length}, more than ${MAX_INT32}`);
  validateFiniteElements('testEmbedding', query);
  validateK('topK', topK);
  const resolved = validateCorpus(corpus, query.length, 'corpusEmbeddings', 'testEmbedding');
  return topKOnce(module, query, 1, query.length, resolved, topK)[0];
}

/** cosineTopK for many queries at once (one pass over the corpus per 64 queries). */
export function cosineTopKBatch(module: QEModule, queries: readonly Float32Array[] | Float32Array, corpus: CorpusInput, topK: number, dim?: number): SimilarityResult[][] {
  let d: number;
  if (dim !== undefined) {
    validatePositiveInteger('dim', dim);
    d = dim;
  } else if (Array.isArray(queries) && queries.length > 0 && queries[0] instanceof Float32Array) {
    d = (queries[0] as Float32Array).length;
  } else if (Array.isArray(queries)) {
    if (queries.length === 0) throw new RangeError('queries is empty; it needs at least one vector');
    throw new TypeError(`queries[0] must be a Float32Array, got ${describe(queries[0])}`);
  } else if (queries instanceof Float32Array) {
    throw new TypeError('queries is one flat Float32Array: pass dim too (the length of each query)');
  } else {
    throw new TypeError(`queries must be an array of Float32Array or one flat Float32Array, got ${describe(queries)}`);
  }
  if (d < 1) throw new RangeError('the query dimension must be at least 1');
  const nq = validateBatch('queries', queries, d);
  validateK('topK', topK);
  const resolved = validateCorpus(corpus, d);
  if (nq === 0) return [];
  return topKOnce(module, flatten(queries, nq, d), nq, d, resolved, topK);
}

/**
 * Every pattern scored against the query, best first (ties by lower index):
 * score is the cosine similarity, probability the softmax of score /
 * temperature over all patterns (computed by the module's qe_softmax), so
 * the probabilities sum to 1. temperature > 0; default 0.1.
 */
export function matchPatterns(
  module: QEModule,
  query: Float32Array,
  patterns: CorpusInput,
  temperature = DEFAULT_PATTERN_TEMPERATURE,
  names: { patterns: string; row?: (i: number) => string; temperature: string } = { patterns: 'patterns', temperature: 'temperature' },
): PatternMatch[] {
  validateFiniteNumber(names.temperature, temperature);
  if (!(temperature > 0)) throw new RangeError(`${names.temperature} must be greater than 0, got ${temperature}`);
  validateFloat32Array('defectEmbedding', query);
  if (query.length === 0) throw new RangeError('defectEmbedding is empty');
  validateFiniteElements('defectEmbedding', query);
  const resolved = validateCorpus(patterns, query.length, names.patterns, 'defectEmbedding', names.row);
  const ranked = topKOnce(module, query, 1, query.length, resolved, resolved.count)[0];
  const logits = new Float32Array(ranked.length);
  ranked.forEach((r, i) => (logits[i] = r.similarity / temperature));
  // Cosines lie in [-1, 1], so the logits stay finite for any temperature above ~3e-38.
  validateFiniteElements('similarity / temperature', logits);
  const p = module.softmax(logits, 1, logits.length);
  return ranked.map((r, i) => ({ index: r.index, score: r.similarity, probability: p[i] }));
}

/**
 * matchPatterns against a resident library: the patterns stay in module
 * memory between calls, so a match costs one pass over them. Results carry
 * the index's ids in `index`.
 */
export function matchPatternsInIndex(module: QEModule, query: Float32Array, library: SimilarityIndex, temperature = DEFAULT_PATTERN_TEMPERATURE, temperatureName = 'temperature'): PatternMatch[] {
  validateFiniteNumber(temperatureName, temperature);
  if (!(temperature > 0)) throw new RangeError(`${temperatureName} must be greater than 0, got ${temperature}`);
  if (library.size === 0) throw new RangeError('the pattern library is empty');
  const ranked = library.search(query, library.size);
  const logits = new Float32Array(ranked.length);
  ranked.forEach((r, i) => (logits[i] = r.similarity / temperature));
  validateFiniteElements('similarity / temperature', logits);
  const p = module.softmax(logits, 1, logits.length);
  return ranked.map((r, i) => ({ index: r.id, score: r.similarity, probability: p[i] }));
}

function flatten(vectors: readonly Float32Array[] | Float32Array, count: number, dim: number): Float32Array {
  if (vectors instanceof Float32Array) return vectors;
  const flat = new Float32Array(count * dim);
  vectors.forEach((v, i) => flat.set(v, i * dim));
  return flat;
}

// ---------------------------------------------------------------------------
// The resident index

/** A corpus kept in module memory; see createSimilarityIndex. */
export interface SimilarityIndex {
  /** Length of every vector. */
  readonly dim: number;
  /** Vectors currently held. */
  readonly size: number;
  /** Rows the module memory reserved for the corpus holds (it doubles when full). */
  readonly capacity: number;
  /**
   * Adds one vector (length dim), or a batch: an array of vectors, or one
   * flat array of a multiple of dim. Returns their ids, in order. Ids are
   * never reused, and stay valid until removed.
   */
  add(vectors: Float32Array | readonly Float32Array[]): number[];
  /** Removes the vector with this id; false when no such id is held. */
  remove(id: number): boolean;
  has(id: number): boolean;
  /** The exact top-k vectors by cosine similarity, best first, ties by lower id; min(k, size) results. */
  search(query: Float32Array, k: number): IndexSearchResult[];
  /** search() for many queries (array, or flat with a multiple of dim) in one pass over the corpus per 64 queries. */
  searchBatch(queries: Float32Array | readonly Float32Array[], k: number): IndexSearchResult[][];
  /** Frees the module memory; every later call throws. Calling it again does nothing. */
  dispose(): void;
}

const INITIAL_CAPACITY = 64;

class ResidentSimilarityIndex implements SimilarityIndex {
  private corpus: Corpus | null;
  private count = 0;
  private nextId = 0;
  /** idOfRow[r]: the id stored at row r (r < count). */
  private idOfRow = new Int32Array(INITIAL_CAPACITY);
  private readonly rowOfId = new Map<number, number>();

  constructor(module: QEModule, readonly dim: number, private readonly threads: number) {
    this.corpus = Corpus.create(module, dim);
  }

  get size(): number {
    this.live();
    return this.count;
  }

  get capacity(): number {
    return this.live().capacity;
  }

  add(vectors: Float32Array | readonly Float32Array[]): number[] {
    const corpus = this.live();
    vectors = realList('vectors', vectors) as Float32Array | readonly Float32Array[];
    const m = validateBatch('vectors', vectors, this.dim);
    if (m === 0) return [];
    if (this.nextId + m > MAX_INT32) throw new RangeError('this index has handed out 2^31 - 1 ids; create a new one');
    checkBytes('the corpus', (this.count + m) * this.dim);
    corpus.append(vectors, m);
    if (this.idOfRow.length < this.count + m) {
      const ids = new Int32Array(Math.max(corpus.capacity, this.count + m));
      ids.set(this.idOfRow.subarray(0, this.count));
      this.idOfRow = ids;
    }
    const ids: number[] = new Array(m);
    for (let i = 0; i < m; i++) {
      const id = this.nextId++;
      this.idOfRow[this.count + i] = id;
      this.rowOfId.set(id, this.count + i);
      ids[i] = id;
    }
    this.count += m;
    return ids;
  }

  remove(id: number): boolean {
    const corpus = this.live();
    validateId('id', id);
    const row = this.rowOfId.get(id);
    if (row === undefined) return false;
    const last = this.count - 1;
    // Compact: the last row moves into the gap; its id keeps pointing at it.
    corpus.removeRow(row);
    if (row !== last) {
      const moved = this.idOfRow[last];
      this.idOfRow[row] = moved;
      this.rowOfId.set(moved, row);
    }
    this.rowOfId.delete(id);
    this.count = last;
    return true;
  }

  has(id: number): boolean {
    this.live();
    validateId('id', id);
    return this.rowOfId.has(id);
  }

  search(query: Float32Array, k: number): IndexSearchResult[] {
    this.live();
    query = realArray('query', query) as Float32Array;
    validateVector('query', query, this.dim);
    validateK('k', k);
    return this.run(query, 1, k)[0];
  }

  searchBatch(queries: Float32Array | readonly Float32Array[], k: number): IndexSearchResult[][] {
    this.live();
    queries = realList('queries', queries) as Float32Array | readonly Float32Array[];
    const nq = validateBatch('queries', queries, this.dim);
    validateK('k', k);
    if (nq === 0) return [];
    return this.run(flatten(queries, nq, this.dim), nq, k);
  }

  dispose(): void {
    const corpus = this.corpus;
    if (corpus === null) return;
    this.corpus = null;
    this.rowOfId.clear();
    this.count = 0;
    corpus.dispose();
  }

  /**
   * Top-k by (similarity desc, id asc). The kernel breaks ties by row, and
   * rows stop following ids once a removal moves a row; so each query asks
   * for one result more than it needs, and when the last two tie, asks again
   * with twice as many until the tie group is whole, then re-sorts by id.
   */
  private run(queries: Float32Array, nq: number, k: number): IndexSearchResult[][] {
    const corpus = this.live();
    if (this.count === 0) return Array.from({ length: nq }, () => []);
    const n = this.count;
    const want = Math.min(k, n);
    const ask = Math.min(want + 1, n);
    checkBytes('the results', nq * ask);
    const first = corpus.search(queries, nq, ask, this.threads);
    const results: IndexSearchResult[][] = [];
    for (let i = 0; i < nq; i++) {
      let idx = first.rows.subarray(i * ask, (i + 1) * ask);
      let score = first.scores.subarray(i * ask, (i + 1) * ask);
      let got = ask;
      // A tie across the cut: widen this query's search until the tie group is whole.
      while (got > want && got < n && score[got - 1] === score[want - 1]) {
        got = Math.min(got * 2, n);
        ({ rows: idx, scores: score } = corpus.search(queries.subarray(i * this.dim, (i + 1) * this.dim), 1, got, this.threads));
      }
      const all: IndexSearchResult[] = new Array(got);
      for (let j = 0; j < got; j++) all[j] = { id: this.idOfRow[idx[j]], similarity: score[j] };
      all.sort((a, b) => b.similarity - a.similarity || a.id - b.id);
      all.length = want;
      results.push(all);
    }
    return results;
  }

  private live(): Corpus {
    if (this.corpus === null) throw new TypeError('this similarity index has been disposed; create a new one with createSimilarityIndex()');
    return this.corpus;
  }
}

/**
 * A resident corpus of `dim`-length vectors in module memory: vectors are
 * copied in once (add), searched many times (search, searchBatch), and
 * removed in O(dim) by moving the last row into the gap; ids stay stable.
 * threads above 1 splits each search over the module's worker pool (the
 * threaded builds), the corpus in ranges whose results merge exactly.
 */
export function createSimilarityIndex(module: QEModule, dim: number, threads = 1): SimilarityIndex {
  validatePositiveInteger('dim', dim);
  return new ResidentSimilarityIndex(module, dim, threads);
}
