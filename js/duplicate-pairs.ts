/**
 * The pair search of qe-flash similar: every test case goes into one code
 * index (js/code-index.ts), which learns how common each feature is in this
 * folder and weighs it by BM25's idf, so a template's scaffolding and the
 * test framework's words count for little and what two cases alone share
 * (literal values, helper names) counts most; every case is then searched
 * against the index. How cases are embedded and how pairs are ranked lives
 * here, apart from the command line's input and output.
 */
import { createCodeIndex } from './code-index';
import type { QEModule } from './module';
import { languageOf, type TestCase } from './test-cases';

export interface DuplicatePair {
  score: number;
  a: TestCase;
  b: TestCase;
  /** The most distinctive features both cases share (literal values, identifiers, words), most distinctive first. */
  evidence: string[];
  /** Shared features that are rare in this folder (in at most max(2, 1%) of the cases). */
  distinct: number;
}

export interface SimilarOptions {
  /** Report pairs with cosine at or above this; default 0.5. */
  threshold?: number;
  /** Report at most this many pairs; default 20. */
  top?: number;
  /** Nearest neighbours considered per case; default 10. */
  neighbors?: number;
  /** Keep only pairs sharing at least this many rare features (0 keeps all; 2 leaves out parametrised families); default 0. */
  minDistinct?: number;
  /**
   * Length of the weighted vectors; default 256: hashing noise between
   * unrelated cases is about 1/sqrt(256) = 0.06 in cosine, and 10,000 cases
   * search each other in a few seconds.
   */
  dim?: number;
  /** Called as work progresses: phase, done, total. */
  onProgress?: (phase: string, done: number, total: number) => void;
}

export const DEFAULT_THRESHOLD = 0.5;
export const DEFAULT_TOP = 20;
export const DEFAULT_NEIGHBORS = 10;
export const DEFAULT_MIN_DISTINCT = 0;
export const DEFAULT_CLI_DIM = 256;

/**
 * Near-duplicate pairs among the cases: each case's `neighbors` nearest by
 * cosine of their corpus-weighted vectors, kept when at or above the
 * threshold and sharing at least minDistinct rare features, best first
 * (ties by the earlier pair), at most `top`.
 */
export function findDuplicatePairs(module: QEModule, cases: readonly TestCase[], options: SimilarOptions = {}): DuplicatePair[] {
  const threshold = options.threshold ?? DEFAULT_THRESHOLD;
  const top = options.top ?? DEFAULT_TOP;
  const neighbors = options.neighbors ?? DEFAULT_NEIGHBORS;
  const dim = options.dim ?? DEFAULT_CLI_DIM;
  const minDistinct = options.minDistinct ?? DEFAULT_MIN_DISTINCT;
  const progress = options.onProgress ?? (() => undefined);
  const n = cases.length;
  if (n < 2) return [];
  const index = createCodeIndex(module, { kind: 'code', dim });
  try {
    cases.forEach((c, i) => {
      index.add(String(i), c.source, languageOf(c.file) ?? 'auto');
      if ((i & 63) === 63 || i === n - 1) progress('embedding', i + 1, n);
    });
    const pairs = index.pairs(threshold, { neighbours: neighbors, minDistinct, onProgress: (done, total) => progress('searching', done, total) });
    return pairs
      .map((p) => {
        const [i, j] = [Number(p.a), Number(p.b)].sort((x, y) => x - y);
        return { score: p.score, i, j, evidence: p.evidence, distinct: p.distinct };
      })
      .sort((x, y) => y.score - x.score || x.i - y.i || x.j - y.j)
      .slice(0, top)
      .map((p) => ({ score: p.score, a: cases[p.i], b: cases[p.j], evidence: p.evidence, distinct: p.distinct }));
  } finally {
    index.dispose();
  }
}
