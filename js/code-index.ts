/**
 * A text index that learns its corpus: createCodeIndex({ kind }) with
 * add(id, text), search(text, k) and pairs(threshold).
 *
 * Each text becomes hashed features (js/text-features.ts: tokens, whole
 * identifiers, literal values, title words and bigrams for code; exception,
 * message words and frames for failures). As texts are added the index
 * counts each feature's document frequency in a table in module memory
 * (qe_text_df_add). Vectors are made in C (qe_text_tfidf_embed): each
 * feature weighs its role's weight x BM25's saturated term frequency x
 * BM25's idf, is hashed with a sign to one of dim columns, and the vector is
 * divided by its L2 norm. So what every text shares (`describe`, `expect`,
 * a template's scaffolding, JUnit frames) weighs next to nothing, and what
 * two texts alone share (a literal, a helper's name, a frame) weighs most.
 *
 * Vectors depend on the whole corpus, so they are (re)made, all at once, by
 * the first search or pairs call after an add, and kept in a resident
 * similarity index (js/similarity.ts) for exact cosine top-k.
 */
import { DocumentFrequencies } from './document-frequencies';
import type { QEModule } from './module';
import { createSimilarityIndex, type SimilarityIndex } from './similarity';
import { EVIDENCE_DISTINCT, EVIDENCE_HIDDEN, textFeatures, type TextFeatures, type TextKind } from './text-features';
import { CODE_LANGUAGES, type CodeLanguage } from './tokenizer';
import { describe, validateFiniteNumber, validatePositiveInteger } from './validate';

export interface CodeIndexOptions {
  /** 'code' (default): source code and tests. 'failure': stack traces and failure messages. */
  kind?: TextKind;
  /** Length of the vectors; default 512 (a multiple of 4 keeps the search on its SIMD path). */
  dim?: number;
  /** Buckets of the document-frequency table, a power of two up to 2^26; default 2^18 (1 MiB). */
  buckets?: number;
  /** BM25's term-frequency saturation k1 (> 0); default 1.2. */
  k1?: number;
  /** Language of code texts; default 'auto' (detected per text). */
  language?: CodeLanguage | 'auto';
  /** Threads of the search (the module's pool); default 1. */
  threads?: number;
}

/** One result of search(): the text's id, its cosine similarity to the query, and the evidence. */
export interface CodeIndexMatch {
  id: string;
  /** Position of the text in order of adding. */
  index: number;
  score: number;
  /** The most distinctive features both texts share (highest idf x weight first, bigrams left out), at most 8. */
  evidence: string[];
}

/** One pair of pairs(). */
export interface CodeIndexPair {
  a: string;
  b: string;
  score: number;
  evidence: string[];
  /** Shared things written (literal values, whole names, exception types, frames) that are rare in the corpus: in at most max(2, 1%) of the texts. */
  distinct: number;
}

export interface CodePairsOptions {
  /** Keep only pairs sharing at least this many rare features (see CodeIndexPair.distinct); default 0. Pairs within one parametrised family share none. */
  minDistinct?: number;
  /** Neighbours searched per text; default 10. A text in more near-duplicate pairs than this keeps its best ones. */
  neighbours?: number;
  /** Called as the search progresses: texts searched so far, and all. */
  onProgress?: (done: number, total: number) => void;
}

export interface CodeIndex {
  readonly kind: TextKind;
  readonly dim: number;
  /** Texts held. */
  readonly size: number;
  /**
   * Adds a text under a new id (RangeError when the id is taken); its
   * features join the document frequencies. `language` (code only) overrides
   * the index's for this text.
   */
  add(id: string, text: string, language?: CodeLanguage | 'auto'): void;
  /** The k texts most similar to `text` (which is not added), best first, ties by order of adding. */
  search(text: string, k: number): CodeIndexMatch[];
  /** Pairs of held texts with similarity >= threshold, best first. */
  pairs(threshold: number, options?: CodePairsOptions): CodeIndexPair[];
  /** The corpus-weighted unit vector of a text (not added), as search() compares it. */
  embed(text: string): Float32Array;
  /** Inverse document frequency (BM25) of each feature of a text against the corpus; labels are the features' readable forms. */
  weigh(text: string): { labels: string[]; idf: Float32Array; weights: Float32Array };
  /** Frees the module memory; every later call throws. */
  dispose(): void;
}

export const DEFAULT_CODE_INDEX_DIM = 512;
export const DEFAULT_DF_BUCKETS = 1 << 18;
export const DEFAULT_BM25_K1 = 1.2;
const EVIDENCE_COUNT = 8;
/**
 * Documents the idf counts besides the texts held, none of which contains
 * any feature: a prior that keeps a handful of texts from giving extreme
 * weights (among 3 texts, a feature in 2 of them would weigh a third of one
 * in 1; with the prior, three quarters), and that vanishes in a real corpus.
 */
export const PRIOR_DOCUMENTS = 10;
/** Documents embedded per call into the module: bounds the scratch memory. */
const EMBED_BATCH = 1024;

/** BM25's idf (the formula of csrc/embed/text_weight.c), for thresholds stated in document counts. */
export function bm25Idf(df: number, docs: number): number {
  return Math.log(1 + (docs - Math.min(df, docs) + 0.5) / (Math.min(df, docs) + 0.5));
}

class ResidentCodeIndex implements CodeIndex {
  private module: QEModule | null;
  private readonly df: DocumentFrequencies;
  private readonly ids: string[] = [];
  private readonly idSet = new Set<string>();
  private readonly features: TextFeatures[] = [];
  /** Per text, idf of each feature; valid while !dirty. */
  private idfs: Float32Array[] = [];
  private vectors: SimilarityIndex | null = null;
  /** The held texts' vectors [size x dim], as stored in `vectors`. */
  private matrix: Float32Array = new Float32Array(0);
  private dirty = true;

  constructor(
    module: QEModule,
    readonly kind: TextKind,
    readonly dim: number,
    private readonly buckets: number,
    private readonly k1: number,
    private readonly language: CodeLanguage | 'auto',
    private readonly threads: number,
  ) {
    this.module = module;
    this.df = new DocumentFrequencies(module, buckets);
  }

  get size(): number {
    this.live();
    return this.ids.length;
  }

  /** N of the idf: the texts held plus PRIOR_DOCUMENTS that contain no feature. */
  private documents(): number {
    return this.ids.length + PRIOR_DOCUMENTS;
  }

  private live(): QEModule {
    if (this.module === null) throw new TypeError('this code index has been disposed');
    return this.module;
  }

  private featuresOf(text: string, what: string, language: CodeLanguage | 'auto' = this.language): TextFeatures {
    if (typeof text !== 'string') throw new TypeError(`${what} must be a string, got ${describe(text)}`);
    return textFeatures(text, this.kind, language);
  }

  add(id: string, text: string, language?: CodeLanguage | 'auto'): void {
    this.live();
    if (typeof id !== 'string') throw new TypeError(`id must be a string, got ${describe(id)}`);
    if (this.idSet.has(id)) throw new RangeError(`id ${JSON.stringify(id)} is already in this index`);
    if (language !== undefined) checkLanguage('language', language);
    const f = this.featuresOf(text, 'text', language);
    // Each bucket counts a document once, even when two of its features collide there.
    const mask = this.buckets - 1;
    const seen = new Set<number>();
    const distinct = f.hashes.filter((h) => (seen.has(h & mask) ? false : (seen.add(h & mask), true)));
    this.df.addDocument(new Int32Array(distinct.buffer, distinct.byteOffset, distinct.length));
    this.ids.push(id);
    this.idSet.add(id);
    this.features.push(f);
    this.dirty = true;
  }

  /** Vectors of the given feature sets [count x dim], weighted against the current document frequencies. */
  private embedFeatures(list: readonly TextFeatures[]): Float32Array {
    this.live();
    const out = new Float32Array(list.length * this.dim);
    for (let d0 = 0; d0 < list.length; d0 += EMBED_BATCH) {
      const part = list.slice(d0, d0 + EMBED_BATCH);
      const total = part.reduce((n, f) => n + f.hashes.length, 0);
      const offsets = new Int32Array(part.length + 1);
      const hashes = new Int32Array(Math.max(total, 1));
      const counts = new Float32Array(Math.max(total, 1));
      const weights = new Float32Array(Math.max(total, 1));
      let at = 0;
      part.forEach((f, i) => {
        hashes.set(new Int32Array(f.hashes.buffer, f.hashes.byteOffset, f.hashes.length), at);
        counts.set(f.counts, at);
        weights.set(f.weights, at);
        at += f.hashes.length;
        offsets[i + 1] = at;
      });
      out.set(this.df.embed({ offsets, hashes, counts, weights }, this.documents(), this.k1, this.dim), d0 * this.dim);
    }
    return out;
  }

  private idfOf(f: TextFeatures): Float32Array {
    this.live();
    return this.df.idf(new Int32Array(f.hashes.buffer, f.hashes.byteOffset, f.hashes.length), this.documents());
  }

  /** Makes every held text's vector and idf again when texts were added since the last time. */
  private refresh(): SimilarityIndex {
    const module = this.live();
    if (!this.dirty && this.vectors !== null) return this.vectors;
    this.vectors?.dispose();
    this.vectors = null;
    const index = createSimilarityIndex(module, this.dim, this.threads);
    try {
      this.matrix = this.embedFeatures(this.features);
      if (this.features.length > 0) index.add(this.matrix);
    } catch (error) {
      index.dispose();
      throw error;
    }
    this.vectors = index;
    this.idfs = this.features.map((f) => this.idfOf(f));
    this.dirty = false;
    return index;
  }

  embed(text: string): Float32Array {
    this.live();
    const f = this.featuresOf(text, 'text');
    return this.embedFeatures([f]);
  }

  weigh(text: string): { labels: string[]; idf: Float32Array; weights: Float32Array } {
    this.live();
    const f = this.featuresOf(text, 'text');
    return { labels: f.labels, idf: this.idfOf(f), weights: f.weights };
  }

  /** Shared features of two texts, most distinctive first, and how many of them are rare. */
  private shared(a: TextFeatures, aIdf: Float32Array, b: TextFeatures): { evidence: string[]; distinct: number } {
    const inB = new Set(b.hashes);
    const rareIdf = bm25Idf(Math.max(2, Math.floor(this.ids.length / 100)), this.documents());
    const common: { label: string; weight: number }[] = [];
    let distinct = 0;
    for (let i = 0; i < a.hashes.length; i++) {
      if (a.evidence[i] === EVIDENCE_HIDDEN || !inB.has(a.hashes[i])) continue;
      if (a.evidence[i] === EVIDENCE_DISTINCT && aIdf[i] >= rareIdf - 1e-6) distinct++;
      common.push({ label: a.labels[i], weight: aIdf[i] * a.weights[i] });
    }
    common.sort((x, y) => y.weight - x.weight);
    return { evidence: common.slice(0, EVIDENCE_COUNT).map((c) => c.label), distinct };
  }

  search(text: string, k: number): CodeIndexMatch[] {
    this.live();
    validatePositiveInteger('k', k);
    const f = this.featuresOf(text, 'text');
    const index = this.refresh();
    if (this.ids.length === 0) return [];
    const query = this.embedFeatures([f]);
    const idf = this.idfOf(f);
    return index.search(query, Math.min(k, this.ids.length)).map(({ id, similarity }) => ({
      id: this.ids[id],
      index: id,
      score: similarity,
      evidence: this.shared(f, idf, this.features[id]).evidence,
    }));
  }

  pairs(threshold: number, options: CodePairsOptions = {}): CodeIndexPair[] {
    this.live();
    validateFiniteNumber('threshold', threshold);
    if (threshold <= -1 || threshold > 1) throw new RangeError(`threshold must be in (-1, 1], got ${threshold}`);
    if (options === null || typeof options !== 'object') throw new TypeError(`options must be an object, got ${describe(options)}`);
    checkOptionKeys('options', options, PAIRS_OPTION_KEYS);
    const minDistinct = options.minDistinct ?? 0;
    if (typeof minDistinct !== 'number') throw new TypeError(`options.minDistinct must be a number, got ${describe(minDistinct)}`);
    if (!Number.isInteger(minDistinct) || minDistinct < 0) throw new RangeError(`options.minDistinct must be a non-negative integer, got ${minDistinct}`);
    const neighbours = options.neighbours ?? 10;
    validatePositiveInteger('options.neighbours', neighbours);
    if (options.onProgress !== undefined && typeof options.onProgress !== 'function') {
      throw new TypeError(`options.onProgress must be a function, got ${describe(options.onProgress)}`);
    }
    const index = this.refresh();
    const n = this.ids.length;
    if (n < 2) return [];
    const k = Math.min(neighbours + 1, n);
    const best = new Map<number, number>();
    const QUERY_BATCH = 256;
    for (let q0 = 0; q0 < n; q0 += QUERY_BATCH) {
      const q1 = Math.min(n, q0 + QUERY_BATCH);
      const queries = this.matrix.subarray(q0 * this.dim, q1 * this.dim);
      const results = index.searchBatch(queries, k);
      results.forEach((row, r) => {
        const i = q0 + r;
        for (const { id: j, similarity } of row) {
          if (j === i || similarity < threshold) continue;
          const key = i < j ? i * n + j : j * n + i;
          const seen = best.get(key);
          if (seen === undefined || similarity > seen) best.set(key, similarity);
        }
      });
      options.onProgress?.(q1, n);
    }
    const out: CodeIndexPair[] = [];
    for (const [key, score] of best) {
      const i = Math.floor(key / n);
      const j = key % n;
      const { evidence, distinct } = this.shared(this.features[i], this.idfs[i], this.features[j]);
      if (distinct < minDistinct) continue;
      out.push({ a: this.ids[i], b: this.ids[j], score, evidence, distinct });
    }
    out.sort((x, y) => y.score - x.score || (x.a < y.a ? -1 : x.a > y.a ? 1 : x.b < y.b ? -1 : x.b > y.b ? 1 : 0));
    return out;
  }

  dispose(): void {
    if (this.module === null) return;
    this.vectors?.dispose();
    this.vectors = null;
    this.matrix = new Float32Array(0);
    this.df.dispose();
    this.module = null;
  }
}

/** A new, empty code index in this module's memory (see the top of this file). Dispose it when done. */
const CODE_INDEX_OPTION_KEYS = ['kind', 'dim', 'buckets', 'k1', 'language', 'threads'];
const PAIRS_OPTION_KEYS = ['minDistinct', 'neighbours', 'onProgress'];

/** Unknown keys (a typo would be ignored) and null values (which `??` would take for the default) are errors naming the key. */
function checkOptionKeys(name: string, options: object, known: readonly string[]): void {
  for (const [key, value] of Object.entries(options)) {
    if (!known.includes(key)) throw new TypeError(`${name} has an unknown key '${key}'; known keys: ${known.join(', ')}`);
    if (value === null) throw new TypeError(`${name}.${key} must not be null (leave it out for the default)`);
  }
}

function checkLanguage(name: string, language: unknown): void {
  if (language !== 'auto' && !(CODE_LANGUAGES as readonly unknown[]).includes(language)) {
    throw new RangeError(`${name} must be 'auto' or one of ${CODE_LANGUAGES.join(', ')}, got ${describe(language)}`);
  }
}

export function createCodeIndex(module: QEModule, options: CodeIndexOptions = {}): CodeIndex {
  if (options === null || typeof options !== 'object') throw new TypeError(`options must be an object, got ${describe(options)}`);
  checkOptionKeys('options', options, CODE_INDEX_OPTION_KEYS);
  const kind = options.kind ?? 'code';
  if (kind !== 'code' && kind !== 'failure') throw new RangeError(`options.kind must be 'code' or 'failure', got ${JSON.stringify(kind)}`);
  const dim = options.dim ?? DEFAULT_CODE_INDEX_DIM;
  validatePositiveInteger('options.dim', dim);
  const buckets = options.buckets ?? DEFAULT_DF_BUCKETS;
  validatePositiveInteger('options.buckets', buckets);
  if (buckets > 1 << 26 || (buckets & (buckets - 1)) !== 0) throw new RangeError(`options.buckets must be a power of two up to 2^26, got ${buckets}`);
  const k1 = options.k1 ?? DEFAULT_BM25_K1;
  validateFiniteNumber('options.k1', k1);
  if (!(k1 > 0)) throw new RangeError(`options.k1 must be > 0, got ${k1}`);
  const language = options.language ?? 'auto';
  checkLanguage('options.language', language);
  const threads = options.threads ?? 1;
  validatePositiveInteger('options.threads', threads);
  return new ResidentCodeIndex(module, kind, dim, buckets, k1, language, threads);
}

/** One defect of matchText: the search result and its share of softmax(score / temperature) over the whole index. */
export interface TextMatch extends CodeIndexMatch {
  probability: number;
}

/**
 * Every text of the index scored against `text`, best first, with
 * probabilities softmax(score / temperature) (they sum to 1): the text form
 * of matchDefectPattern, a failure against a library of known defects.
 */
export function matchText(index: CodeIndex, text: string, temperature: number): TextMatch[] {
  validateFiniteNumber('temperature', temperature);
  if (!(temperature > 0)) throw new RangeError(`temperature must be > 0, got ${temperature}`);
  if (index.size === 0) return [];
  const results = index.search(text, index.size);
  const top = results[0].score;
  const e = results.map((r) => Math.exp((r.score - top) / temperature));
  const sum = e.reduce((a, b) => a + b, 0);
  return results.map((r, i) => ({ ...r, probability: e[i] / sum }));
}

/** True for objects made by createCodeIndex. */
export function isCodeIndex(x: unknown): x is CodeIndex {
  return x instanceof ResidentCodeIndex;
}
