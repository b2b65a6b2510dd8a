/**
 * Defect matching and the corpus arguments of QEFlashAttention's search
 * methods: the library shapes the original module accepted (a list of
 * embeddings, of objects with an `embedding`, a flat array, { data, count }),
 * read once as they really are (js/input.ts), and a defect matched against
 * them, against a resident index, or (as text) against a code index.
 */
import type { DefectMatch, DefectMatchOptions, PatternLibrary } from '../types';
import { isCodeIndex, matchText, type CodeIndex } from './code-index';
import { realArray, realList, snapshotList, typedArrayKind } from './input';
import type { MeasuredOperation } from './metrics';
import type { QEModule } from './module';
import { matchPatterns, matchPatternsInIndex, type CorpusInput, type SimilarityIndex } from './similarity';
import { describe } from './validate';

/** Default temperature of matchDefectPattern: probabilities are softmax(cosine / 0.1). */
export const DEFAULT_DEFECT_TEMPERATURE = 0.1;

export function isSimilarityIndex(x: unknown): x is SimilarityIndex {
  return typeof x === 'object' && x !== null && typeof (x as SimilarityIndex).search === 'function' && typeof (x as SimilarityIndex).add === 'function';
}

/** Rows of a corpus argument, for the metrics (0 when it is malformed: validation reports that). */
export function corpusRows(corpus: CorpusInput, query: Float32Array): number {
  if (Array.isArray(corpus)) return corpus.length;
  if (corpus instanceof Float32Array) return query?.length ? Math.floor(corpus.length / query.length) : 0;
  const sized = corpus as { count?: unknown };
  return typeof sized?.count === 'number' ? sized.count : 0;
}

/** The corpus of a pattern library, and how to name pattern i in the results. */
export function patternCorpus<P>(library: PatternLibrary<P>, dim: number): { corpus: CorpusInput; pattern: (i: number) => P; row?: (i: number) => string } {
  if (Array.isArray(library)) {
    const list = library as readonly unknown[];
    if (list.length > 0 && typedArrayKind(list[0]) === undefined) {
      const embeddings = list.map((entry, i) => {
        if (entry === null || typeof entry !== 'object') {
          throw new TypeError(`patternLibrary[${i}] must be a Float32Array or an object with a Float32Array embedding, got ${describe(entry)}`);
        }
        // Read once, and as it really is (js/input.ts).
        const e = realArray(`patternLibrary[${i}].embedding`, (entry as { embedding?: unknown }).embedding);
        if (!(e instanceof Float32Array)) throw new TypeError(`patternLibrary[${i}].embedding must be a Float32Array, got ${describe(e)}`);
        return e;
      });
      return { corpus: embeddings, pattern: (i) => list[i] as P, row: (i) => `patternLibrary[${i}].embedding` };
    }
    return { corpus: list.map((v, i) => realArray(`patternLibrary[${i}]`, v)) as Float32Array[], pattern: (i) => list[i] as P };
  }
  if (library instanceof Float32Array) {
    return { corpus: library, pattern: (i) => library.subarray(i * dim, (i + 1) * dim) as unknown as P };
  }
  const flat = library as { data: Float32Array; count: number };
  const rowLength = flat && flat.count > 0 && flat.data instanceof Float32Array ? flat.data.length / flat.count : dim;
  return { corpus: flat, pattern: (i) => flat.data.subarray(i * rowLength, (i + 1) * rowLength) as unknown as P };
}

/**
 * A corpus or pattern library argument as it really is (js/input.ts): a list
 * read once (its entries' identity kept), a typed array as a real view, a
 * { data, count } object read once; a resident index as it is.
 */
export function realCorpus(name: string, corpus: unknown): unknown {
  if (Array.isArray(corpus) || typeof corpus !== 'object' || corpus === null) return realList(name, corpus);
  if (isSimilarityIndex(corpus)) return corpus;
  const real = realArray(name, corpus);
  if (real !== corpus) return real;
  if (!('data' in corpus)) return corpus;
  const flat = corpus as { data?: unknown; count?: unknown };
  return { data: realArray(`${name}.data`, flat.data), count: flat.count };
}

/** Runs a QE method and records its metrics (QEFlashAttention's). */
export type Measured = <T>(operation: MeasuredOperation['operation'], rows: number, dim: number, heads: number, run: () => T) => T;

/** QEFlashAttention.matchDefectPatternSync's work, on a live module; see it for the forms. */
export function matchDefect<P>(
  module: QEModule,
  defectEmbedding: Float32Array | string,
  patternLibrary: PatternLibrary<P> | CodeIndex,
  options: DefectMatchOptions,
  measured: Measured,
): DefectMatch<P>[] | DefectMatch<string>[] {
  defectEmbedding = realArray('defectEmbedding', defectEmbedding) as Float32Array;
  // A list is read once; its entries (returned as `entry`) keep their identity.
  patternLibrary = (Array.isArray(patternLibrary) ? snapshotList('patternLibrary', patternLibrary) : realCorpus('patternLibrary', patternLibrary)) as PatternLibrary<P>;
  if (options === null || typeof options !== 'object') throw new TypeError(`options must be an object, got ${describe(options)}`);
  const temperature = options.temperature ?? DEFAULT_DEFECT_TEMPERATURE;
  if (typeof defectEmbedding === 'string' || isCodeIndex(patternLibrary)) {
    if (typeof defectEmbedding !== 'string') throw new TypeError('defectEmbedding: a code index of defects is matched by failure text: pass a string, not an embedding');
    if (!isCodeIndex(patternLibrary)) throw new TypeError(`patternLibrary: failure text is matched against a code index (createCodeIndex({ kind: 'failure' })), and defectEmbedding is a string; got ${describe(patternLibrary)}`);
    const library = patternLibrary;
    return measured('defect-matching', library.size, library.dim, 0, () =>
      matchText(library, defectEmbedding, temperature).map((m) => ({ pattern: m.index, index: m.index, entry: m.id, score: m.score, probability: m.probability })),
    );
  }
  const dim = defectEmbedding?.length ?? 0;
  if (isSimilarityIndex(patternLibrary)) {
    const library = patternLibrary;
    return measured('defect-matching', library.size, dim, 0, () =>
      matchPatternsInIndex(module, defectEmbedding, library, temperature, 'options.temperature').map((m) => ({
        pattern: m.index,
        index: m.index,
        entry: m.index as unknown as P,
        score: m.score,
        probability: m.probability,
      })),
    );
  }
  const { corpus, pattern, row } = patternCorpus(patternLibrary, dim);
  return measured('defect-matching', corpusRows(corpus, defectEmbedding), dim, 0, () =>
    matchPatterns(module, defectEmbedding, corpus, temperature, { patterns: 'patternLibrary', row, temperature: 'options.temperature' }).map((m) => ({
      pattern: m.index,
      index: m.index,
      entry: pattern(m.index),
      score: m.score,
      probability: m.probability,
    })),
  );
}
