/**
 * The QE methods of QEFlashAttention against the float64
 * reference: exact top-K by cosine (ties by lower index, topK beyond the
 * corpus, every corpus form), defect matching whose probabilities are a
 * softmax summing to 1, code embeddings of both forms, the resident index,
 * and the metrics each call records.
 */
import { createQEFlashAttention, type QEFlashAttention } from '../js/flash-attention';
import { expectThrow } from './helpers';
import { referenceCosine, referenceCosineRanking, referenceSoftmax, uniform } from './reference';

const DIM = 384;
let qe: QEFlashAttention;

beforeAll(async () => {
  qe = await createQEFlashAttention('test-similarity', undefined, { threads: 1 });
});
afterAll(() => qe.dispose());

function rows(count: number, dim: number, seed: number): Float32Array[] {
  return Array.from({ length: count }, (_, i) => uniform(dim, seed + i));
}

describe('computeTestSimilarity', () => {
  it('equals a brute-force float64 sort, ties by lower index, on every corpus form', async () => {
    const corpus = rows(300, DIM, 100);
    // Exact duplicates and a scaled copy tie with their originals.
    corpus[17] = Float32Array.from(corpus[250]);
    corpus[90] = corpus[250].map((x) => x * 2);
    const query = Float32Array.from(corpus[250]).map((x, i) => x + (i % 7) * 0.01);
    const want = referenceCosineRanking(query, corpus).slice(0, 10);
    const flat = new Float32Array(300 * DIM);
    corpus.forEach((r, i) => flat.set(r, i * DIM));
    for (const form of [corpus, flat, { data: flat, count: 300 }]) {
      const got = await qe.computeTestSimilarity(query, form, 10);
      expect(got.map((r) => r.index)).toEqual(want.map((r) => r.index));
      got.forEach((r, i) => expect(Math.abs(r.similarity - want[i].similarity)).toBeLessThan(1e-6));
    }
    const tied = (await qe.computeTestSimilarity(corpus[250], corpus, 3)).map((r) => r.index);
    expect(tied).toEqual([17, 90, 250]);
  });

  it('returns the whole corpus, ranked, when topK is larger', async () => {
    const corpus = rows(7, 5, 300);
    const query = uniform(5, 399);
    const got = qe.computeTestSimilaritySync(query, corpus, 50);
    expect(got.map((r) => r.index)).toEqual(referenceCosineRanking(query, corpus).map((r) => r.index));
  });

  it('the batch form equals one call per query', () => {
    const corpus = rows(120, 33, 500);
    const queries = rows(9, 33, 700);
    const batch = qe.computeTestSimilarityBatch(queries, corpus, 4);
    queries.forEach((q, i) => expect(batch[i]).toEqual(qe.computeTestSimilaritySync(q, corpus, 4)));
  });

  it('rejects bad input with a clear error', () => {
    expectThrow(() => qe.computeTestSimilaritySync(new Float32Array(3), rows(2, 4, 1), 1), RangeError, 'length');
    expectThrow(() => qe.computeTestSimilaritySync(Float32Array.of(1, NaN, 0), rows(2, 3, 1), 1), RangeError, 'NaN');
    expectThrow(() => qe.computeTestSimilaritySync(uniform(3, 1), rows(2, 3, 1), 0), RangeError, 'topK');
  });
});

describe('matchDefectPattern', () => {
  const patterns = rows(200, DIM, 900).map((embedding, i) => ({ id: `DEF-${i}`, embedding }));
  const defect = uniform(DIM, 1234);

  it('scores every pattern by cosine, best first, with softmax(score / temperature) probabilities summing to 1', async () => {
    for (const temperature of [0.1, 0.5, 2]) {
      const got = await qe.matchDefectPattern(defect, patterns, { temperature });
      expect(got).toHaveLength(200);
      const want = referenceCosineRanking(defect, patterns.map((p) => p.embedding));
      expect(got.map((m) => m.index)).toEqual(want.map((w) => w.index));
      const probs = referenceSoftmax(Float64Array.from(want, (w) => w.similarity / temperature), want.length);
      let sum = 0;
      got.forEach((m, i) => {
        expect(m.pattern).toBe(m.index);
        expect(m.entry).toBe(patterns[m.index]);
        expect(Math.abs(m.score - want[i].similarity)).toBeLessThan(1e-6);
        expect(Math.abs(m.probability - probs[i])).toBeLessThan(1e-6);
        sum += m.probability;
      });
      expect(Math.abs(sum - 1)).toBeLessThan(1e-6);
    }
  });

  it('a resident library gives the same matches, with ids as patterns', () => {
    const library = qe.createSimilarityIndex();
    try {
      const ids = library.add(patterns.map((p) => p.embedding));
      const got = qe.matchDefectPatternSync(defect, library);
      const plain = qe.matchDefectPatternSync(defect, patterns);
      expect(got.map((m) => m.pattern)).toEqual(plain.map((m) => ids[m.index]));
      expect(got.map((m) => m.entry)).toEqual(plain.map((m) => ids[m.index]));
      got.forEach((m, i) => expect(Math.abs(m.probability - plain[i].probability)).toBeLessThan(1e-7));
    } finally {
      library.dispose();
    }
  });

  it('rejects a non-positive temperature and malformed libraries', () => {
    expectThrow(() => qe.matchDefectPatternSync(defect, patterns, { temperature: 0 }), RangeError, 'temperature');
    expectThrow(() => qe.matchDefectPatternSync(defect, [{ embedding: [1, 2] } as never]), TypeError, 'patternLibrary[0]');
  });
});

describe('generateCodeEmbedding', () => {
  it('from source text: a unit vector of the workload dim, deterministic, robust to formatting', async () => {
    const source = `it('adds numbers', () => {\n  const total = add(2, 3);\n  expect(total).toBe(5);\n});\n`;
    const reformatted = `it('adds numbers', () => { // sum\n    const total = add(2, 3); expect(total).toBe(5);\n});`;
    const a = await qe.generateCodeEmbedding(source);
    expect(a).toHaveLength(DIM);
    expect(Math.abs(Math.hypot(...a) - 1)).toBeLessThan(1e-5);
    expect(qe.generateCodeEmbeddingSync(source)).toEqual(a);
    expect(referenceCosine(a, qe.generateCodeEmbeddingSync(reformatted))).toBeGreaterThanOrEqual(0.95);
  });

  it('from token embeddings, with and without positions', () => {
    const tokens = uniform(10 * DIM, 77);
    const out = qe.generateCodeEmbeddingSync(tokens);
    expect(out).toHaveLength(DIM);
    expect(Math.abs(Math.hypot(...out) - 1)).toBeLessThan(1e-5);
    const zeros = qe.generateCodeEmbeddingSync(tokens, new Float32Array(10 * DIM));
    expect(referenceCosine(out, zeros)).toBeLessThan(0.999999);
    expectThrow(() => qe.generateCodeEmbeddingSync(uniform(DIM + 1, 1)), RangeError, 'multiple of dim');
    expectThrow(() => qe.generateCodeEmbeddingSync('x', new Float32Array(DIM)), TypeError, 'positionEmbeddings');
  });
});

describe('metrics of the QE methods', () => {
  it('records one measured entry per call, with its operation', async () => {
    const own = await createQEFlashAttention('defect-matching', undefined, { threads: 1 });
    try {
      own.computeTestSimilaritySync(uniform(DIM, 5), rows(50, DIM, 6), 3);
      own.matchDefectPatternSync(uniform(DIM, 7), rows(20, DIM, 8));
      own.generateCodeEmbeddingSync('func TestAdd(t *testing.T) { if add(1, 2) != 3 { t.Fail() } }');
      const m = own.getMetrics();
      expect(m.map((e) => e.operation)).toEqual(['test-similarity', 'defect-matching', 'code-embedding']);
      expect(m[0].seqLen).toBe(50);
      expect(m[1].seqLen).toBe(20);
      for (const e of m) {
        expect(e.timeMs).toBeGreaterThan(0);
        expect(e.throughput).toBeGreaterThan(0);
        expect(e.speedup).toBeNull();
        expect(e.workload).toBe('defect-matching');
      }
      expect(m[2].memoryMB).toBeGreaterThan(0);
    } finally {
      own.dispose();
    }
  });
});
