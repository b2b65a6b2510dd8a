/**
 * Code embeddings, in the two forms of generateCodeEmbedding.
 *
 * 1. embedTokens(codeTokens [seqLen x dim], positions?): one self-attention
 *    layer with identity projections, the encoder block without learned
 *    weights:
 *        X = tokens + positions          (sinusoidal when none are given)
 *        H = X + MultiHeadAttention(X, X, X)   (heads split dim; scale 1/sqrt(dim/heads))
 *        Y = LayerNorm(H)                (per token; gamma 1, beta 0, eps 1e-5)
 *        e = mean over tokens of Y, then divided by its L2 norm
 *    Attention lets each token take in the tokens it resembles and, through
 *    the positions, its neighbours; the layer norm gives every token the same
 *    weight in the mean. The result has length dim and norm 1 (or is all zeros
 *    when the mean is). Attention and layer norm run in the module
 *    (qe_attention, qe_layer_norm).
 *
 * 2. embedSource(source): text to tokens (js/tokenizer.ts), tokens to vectors
 *    by signed feature hashing, then form 1.
 *    - The sequence: every token except punctuation (which still shows in
 *      the n-grams of the tokens after it), and of a token occurring c times
 *      only the first ceil(sqrt(c)) occurrences: a sublinear term frequency,
 *      so the boilerplate every test repeats does not outweigh what it tests.
 *    - Each position's vector: three features, the token itself and the
 *      bigram and trigram of the full token stream ending at it, each hashed
 *      (FNV-1a and a 32-bit finalizer) to a row of a fixed pseudo-random
 *      table and a sign; the vector is the signed, weighted sum of those
 *      rows (qe_feature_hash_embed). Identifiers weigh a little more than
 *      keywords and literals, and those more than operators.
 *    - The table is a pure function of (seed, rows, dim), filled in the
 *      module (qe_feature_table_fill) and kept resident: the embedding is
 *      deterministic and needs no model download.
 *    - Positions: sinusoidal, scaled by 0.1 against token vectors of
 *      variance about 1: enough for attention to favour neighbours, too
 *      little for the position pattern every file shares to dominate.
 *    - Pooling: the mean over positions is weighted (weighting 'builtin',
 *      the default) by 0.5 + 0.5 x the BM25 idf of built-in document
 *      frequencies of test-framework words over its largest value, computed
 *      in the module (qe_text_idf), so `describe`, `expect` and `self` weigh
 *      about half of a rare name; 'uniform' is the plain mean.
 *    Sources with no tokens embed to the zero vector; tokens past maxTokens
 *    are ignored. Where a corpus is at hand, js/code-index.ts weighs by it.
 *
 * What it is good for, and what the tests check: a test re-formatted or
 * re-commented embeds identically (cosine 1, since comments and whitespace
 * leave the tokens unchanged); with its local identifiers renamed it keeps a
 * cosine of 0.7 or more (keywords, operators, API names and the shape of the
 * code are unchanged); two unrelated tests score 0.5 or less.
 */
import { runAttention } from './attention';
import { QE_FLASH_ATTENTION_CONFIG } from './config';
import type { QEModule } from './module';
import { hashFeature, mix32 } from './text-features';
import { DocumentFrequencies } from './document-frequencies';
import { FeatureTable } from './feature-table';
import { tokenizeCode, type CodeLanguage, type CodeToken } from './tokenizer';
import { describe, validateAttention, validateFiniteElements, validateFiniteNumber, validateFloat32Array, validateMatrix, validatePositiveInteger } from './validate';

const PRESET = QE_FLASH_ATTENTION_CONFIG['code-embedding'];

/** Options of form 1. */
export interface TokenEmbeddingOptions {
  /** Attention heads; must divide dim. Default: the code-embedding preset's headsPerBlock (4). */
  heads?: number;
  /** seqLen x dim positions added to the tokens; default sinusoidal (sinusoidalPositions). */
  positionEmbeddings?: Float32Array;
  /** Query and key tile sizes asked of the kernel; default the preset's (1024, 1024). */
  blockQ?: number;
  blockK?: number;
}

/** Options of form 2. */
export interface CodeEmbeddingOptions {
  /** Length of the embedding; default the code-embedding preset's dim (512). */
  dim?: number;
  heads?: number;
  /** Rows of the feature-hashing table; default 4096. */
  tableRows?: number;
  /** Seed of the table; default DEFAULT_FEATURE_SEED. Embeddings made with different seeds do not compare. */
  seed?: number;
  /** Tokens past this many are ignored; default 4096. */
  maxTokens?: number;
  /** Default 'auto' (detected). */
  language?: CodeLanguage | 'auto';
  blockQ?: number;
  blockK?: number;
  /**
   * How tokens weigh in the mean: 'builtin' (default) by the BM25 idf of
   * built-in document frequencies of common test-framework and language
   * tokens (BUILTIN_DOCUMENT_FREQUENCIES), so `describe`, `expect`, `assert`
   * and `self` count for little; 'uniform': every position alike (the
   * embedding before corpus-aware weighting).
   */
  weighting?: 'builtin' | 'uniform';
}

export const DEFAULT_FEATURE_TABLE_ROWS = 4096;
export const DEFAULT_FEATURE_SEED = 0x51ed5eed;
export const DEFAULT_MAX_TOKENS = 4096;
const LAYER_NORM_EPS = 1e-5;

/**
 * Feature weights: [unigram, bigram, trigram] by token kind. The token's
 * vector has variance sum(w^2) * FEATURE_TABLE_SCALE^2 per element.
 */
const FEATURE_WEIGHTS: Readonly<Record<CodeToken['kind'], readonly [number, number, number]>> = {
  identifier: [1.0, 0.6, 0.4],
  keyword: [0.8, 0.6, 0.4],
  number: [0.6, 0.6, 0.4],
  string: [0.6, 0.6, 0.4],
  regex: [0.6, 0.6, 0.4],
  operator: [0.4, 0.6, 0.4],
  punctuation: [0.3, 0.6, 0.4],
};
/** Scale of the table's elements (variance 1 times this squared). */
export const FEATURE_TABLE_SCALE = 1.0;
/**
 * Weight of the sinusoidal positions against the token vectors (variance
 * about 1 per element) in form 2: enough for attention to favour
 * neighbours, too little for the position pattern every file shares to
 * dominate the mean.
 */
export const SOURCE_POSITION_SCALE = 0.1;

/** pos-th row of the sinusoidal positions of Vaswani et al.: sin at even columns, cos at odd, wavelengths 2 pi .. 10000 * 2 pi. */
export function sinusoidalPositions(seqLen: number, dim: number): Float32Array {
  validatePositiveInteger('seqLen', seqLen);
  validatePositiveInteger('dim', dim);
  const out = new Float32Array(seqLen * dim);
  for (let i = 0; i < dim; i += 2) {
    const freq = Math.pow(10000, -i / dim);
    for (let pos = 0; pos < seqLen; pos++) {
      const angle = pos * freq;
      out[pos * dim + i] = Math.sin(angle);
      if (i + 1 < dim) out[pos * dim + i + 1] = Math.cos(angle);
    }
  }
  return out;
}

/**
 * Form 1: codeTokens [seqLen x dim] (seqLen = codeTokens.length / dim) to one
 * unit vector of length dim, as described at the top of this file.
 */
export function embedTokens(module: QEModule, codeTokens: Float32Array, dim: number, options: TokenEmbeddingOptions = {}): Float32Array {
  const { y, seqLen } = encodeTokens(module, codeTokens, dim, options);
  return weightedPoolNormalized(y, null, seqLen, dim);
}

/** The layer of form 1 before pooling: Y [seqLen x dim]. */
function encodeTokens(module: QEModule, codeTokens: Float32Array, dim: number, options: TokenEmbeddingOptions): { y: Float32Array; seqLen: number } {
  validatePositiveInteger('dim', dim);
  validateFloat32Array('codeTokens', codeTokens);
  if (codeTokens.length === 0 || codeTokens.length % dim !== 0) {
    throw new RangeError(`codeTokens has length ${codeTokens.length}, which is not a positive multiple of dim ${dim} (it is seqLen x dim)`);
  }
  // Named as the caller wrote it (not as the attention inside calls it).
  validateFiniteElements('codeTokens', codeTokens);
  if (options === null || typeof options !== 'object') throw new TypeError(`options must be an object, got ${describe(options)}`);
  const seqLen = codeTokens.length / dim;
  const heads = options.heads ?? PRESET.blocks.headsPerBlock;
  const positions = options.positionEmbeddings ?? sinusoidalPositions(seqLen, dim);
  validateMatrix('positionEmbeddings', positions, seqLen * dim, `seqLen x dim = ${seqLen} x ${dim}`);
  const blockQ = options.blockQ ?? PRESET.blocks.queryChunkSize;
  const blockK = options.blockK ?? PRESET.blocks.kvChunkSize;
  validatePositiveInteger('blockQ', blockQ);
  validatePositiveInteger('blockK', blockK);

  const x = module.vecAdd(codeTokens, positions);
  // Checks codeTokens + positions (finite, sizes) and heads | dim, as computeFlashAttention does.
  const shape = validateAttention(x, x, x, seqLen, dim, { heads }, { heads, causal: false });
  const attended = runAttention(module, x, x, x, shape, blockQ, blockK).output;
  const h = module.vecAdd(x, attended);
  const y = module.layerNorm(h, new Float32Array(dim).fill(1), new Float32Array(dim), seqLen, dim, LAYER_NORM_EPS);
  return { y, seqLen };
}

/**
 * Sum of rows weighted by `weights` (null: every row weighs 1, so the
 * direction of the mean), divided by its L2 norm (all zeros stay zeros);
 * summed in float64.
 */
function weightedPoolNormalized(y: Float32Array, weights: Float32Array | null, rows: number, dim: number): Float32Array {
  const sum = new Float64Array(dim);
  for (let r = 0; r < rows; r++) {
    const base = r * dim;
    const w = weights === null ? 1 : weights[r];
    for (let c = 0; c < dim; c++) sum[c] += w * y[base + c];
  }
  let sq = 0;
  for (let c = 0; c < dim; c++) sq += sum[c] * sum[c];
  const out = new Float32Array(dim);
  if (sq === 0 || !Number.isFinite(sq)) return out;
  const inv = 1 / Math.sqrt(sq);
  for (let c = 0; c < dim; c++) out[c] = sum[c] * inv;
  return out;
}

// ---------------------------------------------------------------------------
// Built-in document frequencies

/**
 * The share of test files (out of BUILTIN_DOCUMENTS) assumed to contain each
 * token: test-framework vocabulary of Jest, Mocha, pytest, unittest, JUnit
 * and Go's testing, and the language words every file uses. Chosen by hand
 * as orders of magnitude, not measured; a token not listed counts as rare.
 * Keys are token texts as the tokenizer gives them (identifier parts lower-cased).
 */
export const BUILTIN_DOCUMENT_FREQUENCIES: Readonly<Record<string, number>> = {
  // punctuation-like operators every file has
  '=': 0.95, '.': 0.95, '(': 0.95, ')': 0.95, '=>': 0.8, '===': 0.3, '==': 0.5, '!=': 0.2, '+': 0.4, '-': 0.3, '*': 0.2, '/': 0.2,
  '<': 0.2, '>': 0.2, '<=': 0.1, '>=': 0.1, '!': 0.3, '&&': 0.2, '||': 0.2, ':=': 0.3, '->': 0.1, '@': 0.5, '?': 0.1, '...': 0.1,
  '<str>': 0.95, '<num>': 0.9, '<regex>': 0.05,
  // JavaScript / TypeScript
  const: 0.9, let: 0.5, var: 0.2, function: 0.4, return: 0.7, async: 0.5, await: 0.5, new: 0.6, this: 0.4, require: 0.5,
  import: 0.6, from: 0.6, export: 0.1, true: 0.6, false: 0.6, null: 0.4, undefined: 0.3, if: 0.5, for: 0.4, of: 0.3,
  // Jest / Mocha / Vitest / Jasmine
  describe: 0.9, it: 0.85, test: 0.7, expect: 0.9, to: 0.85, be: 0.8, equal: 0.6, toequal: 0.5, tobe: 0.6, have: 0.5,
  been: 0.4, called: 0.4, with: 0.5, times: 0.2, throw: 0.3, truthy: 0.2, falsy: 0.15, defined: 0.2, contain: 0.2,
  length: 0.3, match: 0.2, snapshot: 0.1, resolves: 0.1, rejects: 0.1, not: 0.4, before: 0.5, after: 0.4, each: 0.5,
  all: 0.3, jest: 0.5, fn: 0.5, mock: 0.5, spy: 0.3, on: 0.3, return_: 0.2, value: 0.5, resolved: 0.2, restore: 0.2,
  clear: 0.2, mocks: 0.2, done: 0.2, assert: 0.6, should: 0.2, strict: 0.2, deep: 0.3, sinon: 0.1, chai: 0.1,
  // Python / pytest / unittest
  def: 0.95, self: 0.8, none: 0.5, in: 0.5, is: 0.4, and: 0.3, or: 0.2, class: 0.6, pytest: 0.5, raises: 0.4,
  fixture: 0.3, mark: 0.3, parametrize: 0.3, unittest: 0.3, setup: 0.3, teardown: 0.2, equals: 0.5, almost: 0.2,
  np: 0.5, testing: 0.5, array: 0.4,
  // Java / JUnit / TestNG
  public: 0.9, void: 0.9, private: 0.5, static: 0.5, final: 0.4, package: 0.9, org: 0.8, junit: 0.8, jupiter: 0.5,
  api: 0.5, assertions: 0.6, assert_: 0.3, assert_equals: 0.5, that: 0.4, is_: 0.3, mockito: 0.3, when: 0.3, then: 0.3,
  verify: 0.3, string: 0.5, int: 0.5, throws: 0.4, exception: 0.4,
  // Go
  func: 0.95, t: 0.9, err: 0.7, nil: 0.7, range: 0.3, errorf: 0.5, fatalf: 0.4, run: 0.4,
};
/** The pseudo-corpus size the built-in frequencies are counted over. */
export const BUILTIN_DOCUMENTS = 1000;
const BUILTIN_DF_BUCKETS = 1 << 16;

/** The hashed key of a token for the built-in frequencies: its text, whatever its kind. */
function builtinKey(text: string): number {
  return hashFeature(`t:${text}`);
}

/** Resident built-in document-frequency tables per module. */
const builtinTables = new WeakMap<QEModule, DocumentFrequencies>();

function builtinFrequencies(module: QEModule): DocumentFrequencies {
  let table = builtinTables.get(module);
  if (table === undefined) {
    table = new DocumentFrequencies(module, BUILTIN_DF_BUCKETS);
    for (const [text, share] of Object.entries(BUILTIN_DOCUMENT_FREQUENCIES)) {
      table.raise(builtinKey(text), Math.round(share * BUILTIN_DOCUMENTS));
    }
    builtinTables.set(module, table);
  }
  return table;
}

/**
 * The least weight a token has in the built-in weighting. Without a corpus
 * the frequencies are a guess, and a renamed copy keeps mostly the common
 * words: weighted fully by idf (floor 0), the embedding found renamed copies
 * among real tests less often than the uniform mean (MRR 0.974 against
 * 0.994 on npm run eval:embedding); with half of each weight fixed, 0.984.
 */
export const BUILTIN_WEIGHT_FLOOR = 0.5;

/**
 * Weight of each token of the sequence under the built-in frequencies:
 * FLOOR + (1 - FLOOR) x its BM25 idf (computed in the module, qe_text_idf)
 * over the largest idf: a rare token weighs 1, `expect` about 0.5.
 */
export function builtinTokenWeights(module: QEModule, texts: readonly string[]): Float32Array {
  if (texts.length === 0) return new Float32Array(0);
  const table = builtinFrequencies(module);
  const keys = Int32Array.from(texts, (t) => builtinKey(t));
  const idf = table.idf(keys, BUILTIN_DOCUMENTS);
  const top = Math.log(1 + (BUILTIN_DOCUMENTS + 0.5) / 0.5);
  for (let i = 0; i < idf.length; i++) idf[i] = BUILTIN_WEIGHT_FLOOR + (1 - BUILTIN_WEIGHT_FLOOR) * (idf[i] / top);
  return idf;
}

// ---------------------------------------------------------------------------
// Feature hashing

/** 32-bit FNV-1a of the string's UTF-16 code units. */
function fnv1a(text: string, seed: number): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** The hashed features of a token sequence, in the compressed-row form qe_feature_hash_embed takes. */
export interface HashedFeatures {
  /** tokens + 1 entries: token t owns features offsets[t] .. offsets[t + 1]. */
  offsets: Int32Array;
  /** Table row of each feature. */
  rows: Int32Array;
  /** Sign times weight of each feature. */
  weights: Float32Array;
}

/**
 * The tokens that become positions of the sequence, as indices into
 * `tokens`. Punctuation is left out (it still shows in the n-grams of the
 * tokens after it), and a token that occurs c times (same kind and text)
 * keeps only its first ceil(sqrt(c)) occurrences: a sublinear term
 * frequency, so the boilerplate every test repeats (expect, to, be, const)
 * does not outweigh what the test is about. A sequence that would be empty
 * keeps every token.
 */
export function selectSequence(tokens: readonly CodeToken[]): number[] {
  const counts = new Map<string, number>();
  for (const t of tokens) {
    if (t.kind === 'punctuation') continue;
    const key = `${t.kind[0]}:${t.text}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const seen = new Map<string, number>();
  const kept: number[] = [];
  tokens.forEach((t, i) => {
    if (t.kind === 'punctuation') return;
    const key = `${t.kind[0]}:${t.text}`;
    const c = (seen.get(key) ?? 0) + 1;
    seen.set(key, c);
    if (c <= Math.ceil(Math.sqrt(counts.get(key) as number))) kept.push(i);
  });
  return kept.length > 0 ? kept : tokens.map((_, i) => i);
}

/**
 * Unigram, bigram and trigram features of the tokens at `positions` (default
 * all), hashed to a row in [0, tableRows) and a sign; the n-grams are those
 * ending at the token in the full stream. A token's key is its kind and
 * text, so the identifier part `return` and the keyword `return` differ.
 */
export function hashTokenFeatures(
  tokens: readonly CodeToken[],
  tableRows: number,
  seed = DEFAULT_FEATURE_SEED,
  positions: readonly number[] = tokens.map((_, i) => i),
): HashedFeatures {
  validatePositiveInteger('tableRows', tableRows);
  const unigrams = new Uint32Array(tokens.length);
  tokens.forEach((t, i) => (unigrams[i] = fnv1a(`${t.kind[0]}:${t.text}`, seed)));
  const count = positions.length;
  const offsets = new Int32Array(count + 1);
  const rows = new Int32Array(count * 3);
  const weights = new Float32Array(count * 3);
  let f = 0;
  const emit = (h: number, weight: number): void => {
    const m = mix32(h);
    rows[f] = m % tableRows;
    // The sign from a second, independent mix of the same hash.
    weights[f] = (mix32(m ^ 0x5bd1e995) & 1) !== 0 ? -weight : weight;
    f++;
  };
  positions.forEach((i, p) => {
    const w = FEATURE_WEIGHTS[tokens[i].kind];
    const u = unigrams[i];
    emit(u, w[0]);
    if (i >= 1) emit(mix32(Math.imul(unigrams[i - 1], 0x9e3779b1) ^ u) ^ 0x2b2b2b2b, w[1]);
    if (i >= 2) emit(mix32(Math.imul(mix32(Math.imul(unigrams[i - 2], 0x85ebca6b) ^ unigrams[i - 1]), 0xc2b2ae35) ^ u) ^ 0x3c3c3c3c, w[2]);
    offsets[p + 1] = f;
  });
  return { offsets, rows: rows.subarray(0, f), weights: weights.subarray(0, f) };
}

/**
 * Resident feature tables per module, by "rows x dim / seed", least recently
 * used first. A process embedding with many dims or seeds keeps only the
 * last few: at most FEATURE_TABLES_KEPT tables and FEATURE_TABLE_BYTES_KEPT
 * bytes of them (the one in use always), the older ones freed; one refilled
 * later is the same table (a pure function of its key).
 */
const featureTables = new WeakMap<QEModule, Map<string, FeatureTable>>();
export const FEATURE_TABLES_KEPT = 4;
export const FEATURE_TABLE_BYTES_KEPT = 64 << 20;

/** The resident table for (tableRows, dim, seed), filled on first use. */
function featureTable(module: QEModule, tableRows: number, dim: number, seed: number): FeatureTable {
  let tables = featureTables.get(module);
  if (tables === undefined) {
    tables = new Map();
    featureTables.set(module, tables);
  }
  const key = `${tableRows}x${dim}/${seed}`;
  let table = tables.get(key);
  if (table !== undefined) {
    // Most recently used last (a Map keeps insertion order).
    tables.delete(key);
    tables.set(key, table);
    return table;
  }
  table = new FeatureTable(module, tableRows, dim, seed, FEATURE_TABLE_SCALE);
  tables.set(key, table);
  let bytes = 0;
  for (const t of tables.values()) bytes += t.rows * t.dim * 4;
  for (const [k, t] of tables) {
    if (t === table || (tables.size <= FEATURE_TABLES_KEPT && bytes <= FEATURE_TABLE_BYTES_KEPT)) break;
    t.dispose();
    tables.delete(k);
    bytes -= t.rows * t.dim * 4;
  }
  return table;
}

/** Frees the resident feature tables of this module (they are refilled on next use). */
export function releaseFeatureTables(module: QEModule): void {
  const builtin = builtinTables.get(module);
  if (builtin !== undefined) {
    builtin.dispose();
    builtinTables.delete(module);
  }
  const tables = featureTables.get(module);
  if (tables === undefined) return;
  for (const table of tables.values()) table.dispose();
  featureTables.delete(module);
}

/** Token vectors [tokens x dim] of hashed features, summed in the module (qe_feature_hash_embed). */
export function hashedTokenVectors(module: QEModule, features: HashedFeatures, tableRows: number, dim: number, seed = DEFAULT_FEATURE_SEED): Float32Array {
  const tokens = features.offsets.length - 1;
  if (tokens < 1) throw new RangeError(`features.offsets must hold tokens + 1 >= 2 entries, got ${features.offsets.length}`);
  return featureTable(module, tableRows, dim, seed).embed(features);
}

/**
 * Scaled sinusoidal positions by dim, grown as needed: rows depend only on
 * (position, dim), so a prefix serves any length. The last
 * FEATURE_TABLES_KEPT dims used are kept, as the feature tables are.
 */
const positionCache = new Map<number, Float32Array>();

/** The first seqLen rows of SOURCE_POSITION_SCALE * sinusoidalPositions(., dim), as a view of a cached table. */
function sourcePositions(seqLen: number, dim: number): Float32Array {
  let table = positionCache.get(dim);
  if (table === undefined || table.length < seqLen * dim) {
    const rows = Math.max(seqLen, Math.min(2 * ((table?.length ?? 0) / dim), DEFAULT_MAX_TOKENS), 256);
    table = sinusoidalPositions(rows, dim);
    for (let i = 0; i < table.length; i++) table[i] *= SOURCE_POSITION_SCALE;
  }
  positionCache.delete(dim);
  positionCache.set(dim, table);
  if (positionCache.size > FEATURE_TABLES_KEPT) positionCache.delete(positionCache.keys().next().value as number);
  return table.subarray(0, seqLen * dim);
}

/**
 * Form 2: source text to one unit vector of length dim (default 512): the
 * tokenizer, signed feature hashing into the resident table, then
 * embedTokens with sinusoidal positions.
 */
export function embedSource(module: QEModule, source: string, options: CodeEmbeddingOptions = {}): Float32Array {
  if (typeof source !== 'string') throw new TypeError(`source must be a string, got ${describe(source)}`);
  if (options === null || typeof options !== 'object') throw new TypeError(`options must be an object, got ${describe(options)}`);
  const dim = options.dim ?? PRESET.dim;
  const tableRows = options.tableRows ?? DEFAULT_FEATURE_TABLE_ROWS;
  const seed = options.seed ?? DEFAULT_FEATURE_SEED;
  const maxTokens = options.maxTokens ?? DEFAULT_MAX_TOKENS;
  validatePositiveInteger('dim', dim);
  validatePositiveInteger('tableRows', tableRows);
  validateFiniteNumber('seed', seed);
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new RangeError(`seed must be an integer in [0, 2^32 - 1], got ${seed}`);
  validatePositiveInteger('maxTokens', maxTokens);
  const weighting = options.weighting ?? 'builtin';
  if (weighting !== 'builtin' && weighting !== 'uniform') throw new RangeError(`weighting must be 'builtin' or 'uniform', got ${JSON.stringify(weighting)}`);

  // Stops at the cap: a 10 MB source is not tokenized past its first maxTokens tokens.
  let tokens = tokenizeCode(source, { language: options.language, maxTokens });
  if (tokens.length === 0) return new Float32Array(dim);
  if (tokens.length > maxTokens) tokens = tokens.slice(0, maxTokens);
  const sequence = selectSequence(tokens);
  const features = hashTokenFeatures(tokens, tableRows, seed, sequence);
  const vectors = hashedTokenVectors(module, features, tableRows, dim, seed);
  const positions = sourcePositions(sequence.length, dim);
  const layer = { heads: options.heads, positionEmbeddings: positions, blockQ: options.blockQ, blockK: options.blockK };
  if (weighting === 'uniform') return embedTokens(module, vectors, dim, layer);
  const { y, seqLen } = encodeTokens(module, vectors, dim, layer);
  return weightedPoolNormalized(y, builtinTokenWeights(module, sequence.map((i) => tokens[i].text)), seqLen, dim);
}

/**
 * generateCodeEmbedding's two forms with a workload's preset: source text
 * (embedSource), or token embeddings [seqLen x dim] with optional position
 * embeddings (embedTokens).
 */
export function embedCode(
  module: QEModule, code: Float32Array | string, positionEmbeddings: Float32Array | undefined, dim: number,
  blocks: { headsPerBlock: number; queryChunkSize: number; kvChunkSize: number },
): Float32Array {
  const common = { heads: blocks.headsPerBlock, blockQ: blocks.queryChunkSize, blockK: blocks.kvChunkSize };
  if (typeof code === 'string') {
    if (positionEmbeddings !== undefined) throw new TypeError('positionEmbeddings applies to token embeddings, not to source text');
    return embedSource(module, code, { ...common, dim });
  }
  return embedTokens(module, code, dim, { ...common, positionEmbeddings });
}
