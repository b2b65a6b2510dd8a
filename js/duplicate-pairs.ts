/**
 * The pair search of qe-flash similar: every test case is embedded
 * (js/code-embedding.ts, form 2), all of them go into one resident
 * similarity index (js/similarity.ts), and every case is searched against
 * it. How cases are embedded and how pairs are ranked lives here, apart
 * from the command line's input and output.
 */
import { embedSource } from './code-embedding';
import type { QEModule } from './module';
import { createSimilarityIndex } from './similarity';
import { languageOf, type TestCase } from './test-cases';

export interface DuplicatePair {
  score: number;
  a: TestCase;
  b: TestCase;
}

export interface SimilarOptions {
  /** Report pairs with cosine at or above this; default 0.9. */
  threshold?: number;
  /** Report at most this many pairs; default 20. */
  top?: number;
  /** Nearest neighbours considered per case; default 10. */
  neighbors?: number;
  /**
   * Embedding length; default 128, a quarter of the code-embedding preset:
   * enough to tell near-duplicates from the rest, and 10,000 cases embed in
   * about 10 s on one core (256 takes about twice as long).
   */
  dim?: number;
  /** Called as work progresses: phase, done, total. */
  onProgress?: (phase: string, done: number, total: number) => void;
}

export const DEFAULT_THRESHOLD = 0.9;
export const DEFAULT_TOP = 20;
export const DEFAULT_NEIGHBORS = 10;
export const DEFAULT_CLI_DIM = 128;

/** The cases' embeddings, one row of `dim` each, in order. */
export function embedCases(
  module: QEModule,
  cases: readonly TestCase[],
  dim: number,
  progress: (phase: string, done: number, total: number) => void = () => undefined,
): Float32Array {
  const n = cases.length;
  const embeddings = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    embeddings.set(embedSource(module, cases[i].source, { dim, language: languageOf(cases[i].file) ?? 'auto' }), i * dim);
    if ((i & 63) === 63 || i === n - 1) progress('embedding', i + 1, n);
  }
  return embeddings;
}

/**
 * Near-duplicate pairs among the cases: each case's `neighbors` nearest by
 * cosine of their embeddings, kept when at or above the threshold, best
 * first (ties by the earlier pair), at most `top`.
 */
export function findDuplicatePairs(module: QEModule, cases: readonly TestCase[], options: SimilarOptions = {}): DuplicatePair[] {
  const threshold = options.threshold ?? DEFAULT_THRESHOLD;
  const top = options.top ?? DEFAULT_TOP;
  const neighbors = options.neighbors ?? DEFAULT_NEIGHBORS;
  const dim = options.dim ?? DEFAULT_CLI_DIM;
  const progress = options.onProgress ?? (() => undefined);
  const n = cases.length;
  if (n < 2) return [];
  const embeddings = embedCases(module, cases, dim, progress);
  const index = createSimilarityIndex(module, dim);
  try {
    index.add(embeddings);
    const best = new Map<number, number>(); // a * n + b (a < b) -> score
    const k = Math.min(n, neighbors + 1);
    const chunk = 256;
    for (let q0 = 0; q0 < n; q0 += chunk) {
      const q1 = Math.min(n, q0 + chunk);
      const results = index.searchBatch(embeddings.subarray(q0 * dim, q1 * dim), k);
      results.forEach((row, r) => {
        const i = q0 + r;
        for (const { id: j, similarity } of row) {
          if (j === i || similarity < threshold) continue;
          const key = Math.min(i, j) * n + Math.max(i, j);
          const seen = best.get(key);
          if (seen === undefined || similarity > seen) best.set(key, similarity);
        }
      });
      progress('searching', q1, n);
    }
    return [...best.entries()]
      .sort((x, y) => y[1] - x[1] || x[0] - y[0])
      .slice(0, top)
      .map(([key, score]) => ({ score, a: cases[Math.floor(key / n)], b: cases[key % n] }));
  } finally {
    index.dispose();
  }
}
