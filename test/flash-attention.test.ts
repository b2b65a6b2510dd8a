/**
 * computeFlashAttention against the float64 reference on many shapes, masks
 * and tile sizes, on both builds; and the two builds against each other.
 */
import type { BlockConfig, ModuleKind } from '../types';
import type { QEFlashAttention } from '../js/flash-attention';
import { createOn, MODULE_KINDS } from './helpers';
import {
  attentionShape,
  maxAbsDiff,
  maxRelDiff,
  referenceAttention,
  uniform,
  uniformIntegers,
  type AttentionShape,
} from './reference';

const TOLERANCE = 1e-5;
const BUILD_AGREEMENT = 1e-6;

interface Shape {
  seqLen: number;
  kvSeqLen: number;
  dim: number;
  heads: number;
}

const SHAPES: Shape[] = [
  { seqLen: 1, kvSeqLen: 1, dim: 1, heads: 1 },
  { seqLen: 1, kvSeqLen: 1, dim: 64, heads: 8 },
  { seqLen: 1, kvSeqLen: 37, dim: 8, heads: 2 },
  { seqLen: 37, kvSeqLen: 1, dim: 8, heads: 2 },
  { seqLen: 2, kvSeqLen: 3, dim: 4, heads: 1 },
  { seqLen: 33, kvSeqLen: 33, dim: 6, heads: 2 },
  { seqLen: 20, kvSeqLen: 45, dim: 15, heads: 3 },
  { seqLen: 45, kvSeqLen: 20, dim: 7, heads: 1 },
  { seqLen: 31, kvSeqLen: 31, dim: 35, heads: 5 },
  { seqLen: 29, kvSeqLen: 40, dim: 70, heads: 7 },
  { seqLen: 64, kvSeqLen: 64, dim: 64, heads: 8 },
  { seqLen: 50, kvSeqLen: 70, dim: 96, heads: 12 },
  { seqLen: 65, kvSeqLen: 129, dim: 16, heads: 2 },
  { seqLen: 130, kvSeqLen: 130, dim: 64, heads: 4 },
  { seqLen: 200, kvSeqLen: 257, dim: 33, heads: 1 },
  { seqLen: 257, kvSeqLen: 100, dim: 12, heads: 3 },
  { seqLen: 9, kvSeqLen: 300, dim: 128, heads: 2 },
  { seqLen: 16, kvSeqLen: 16, dim: 384, heads: 12 },
  // Every head count from 1 to 12, head size 5 (dim never a multiple of 4 unless heads is).
  ...Array.from({ length: 12 }, (_, i) => ({ seqLen: 19, kvSeqLen: 23, dim: 5 * (i + 1), heads: i + 1 })),
];

interface Variant {
  name: string;
  causal?: boolean;
  valid?: (kvSeqLen: number) => number;
  scale?: number;
}

const VARIANTS: Variant[] = [
  { name: 'full' },
  { name: 'causal', causal: true },
  { name: 'valid keys', valid: (m) => Math.ceil(m / 2) },
  { name: 'causal + valid keys', causal: true, valid: (m) => Math.max(1, m - 3) },
  { name: 'one valid key', valid: () => 1 },
  { name: 'scale 0.37', scale: 0.37 },
];

const BLOCKS: { name: string; blocks: Partial<BlockConfig> }[] = [
  { name: 'preset 512/512', blocks: {} },
  { name: '8/4', blocks: { queryChunkSize: 8, kvChunkSize: 4 } },
  { name: '1/1', blocks: { queryChunkSize: 1, kvChunkSize: 1 } },
  { name: '3/5', blocks: { queryChunkSize: 3, kvChunkSize: 5 } },
  { name: '1024/1024', blocks: { queryChunkSize: 1024, kvChunkSize: 1024 } },
];

const instances = new Map<string, QEFlashAttention>();
const instance = (kind: ModuleKind, blocksName: string): QEFlashAttention => {
  const fa = instances.get(`${kind} ${blocksName}`);
  if (fa === undefined) throw new Error(`no instance ${kind} ${blocksName}`);
  return fa;
};

beforeAll(async () => {
  for (const kind of MODULE_KINDS) {
    for (const b of BLOCKS) instances.set(`${kind} ${b.name}`, await createOn(kind, b.blocks));
  }
});

function inputs(s: AttentionShape, seed: number): [Float32Array, Float32Array, Float32Array] {
  return [
    uniform(s.seqLen * s.dim, seed),
    uniform(s.kvSeqLen * s.dim, seed + 1),
    uniform(s.kvSeqLen * s.dim, seed + 2),
  ];
}

function run(fa: QEFlashAttention, Q: Float32Array, K: Float32Array, V: Float32Array, s: AttentionShape): Float32Array {
  return fa.computeFlashAttentionSync(Q, K, V, s.seqLen, s.dim, {
    heads: s.heads,
    kvSeqLen: s.kvSeqLen,
    causal: s.causal,
    validKeyLength: s.validKeyLength,
    scale: s.scale,
  });
}

describe.each(SHAPES)('attention $seqLen x $kvSeqLen, dim $dim, $heads heads', (shape) => {
  test.each(VARIANTS)('$name: both builds match the reference within 1e-5 and each other within 1e-6', (variant) => {
    const s = attentionShape({
      ...shape,
      causal: variant.causal,
      validKeyLength: variant.valid?.(shape.kvSeqLen),
      scale: variant.scale,
    });
    const [Q, K, V] = inputs(s, shape.seqLen * 7919 + shape.kvSeqLen * 31 + shape.dim);
    const expected = referenceAttention(Q, K, V, s);
    for (const b of BLOCKS) {
      const outputs: Float32Array[] = [];
      for (const kind of MODULE_KINDS) {
        const out = run(instance(kind, b.name), Q, K, V, s);
        expect(out).toHaveLength(s.seqLen * s.dim);
        const err = maxAbsDiff(out, expected);
        if (!(err <= TOLERANCE)) throw new Error(`${kind}, blocks ${b.name}: max abs error ${err} > ${TOLERANCE}`);
        outputs.push(out);
      }
      for (let i = 1; i < outputs.length; i++) {
        const agreement = maxAbsDiff(outputs[0], outputs[i]);
        if (!(agreement <= BUILD_AGREEMENT)) {
          throw new Error(`blocks ${b.name}: ${MODULE_KINDS[0]} and ${MODULE_KINDS[i]} differ by ${agreement} > ${BUILD_AGREEMENT}`);
        }
      }
    }
  });
});

describe('defaults', () => {
  test.each(MODULE_KINDS)('%s: heads from the preset, scale 1/sqrt(dim/heads), no mask', async (kind) => {
    const fa = await createOn(kind, {}, 'defect-matching'); // headsPerBlock 12
    const s = attentionShape({ seqLen: 21, dim: 36, heads: 12 });
    const [Q, K, V] = inputs(s, 5);
    const out = await fa.computeFlashAttention(Q, K, V, 21, 36);
    expect(maxAbsDiff(out, referenceAttention(Q, K, V, s))).toBeLessThanOrEqual(TOLERANCE);
    expect(fa.getMetrics()[0].heads).toBe(12);
  });

  test.each(MODULE_KINDS)('%s: useCausalMask in the config makes causal the default', async (kind) => {
    const fa = await createOn(kind, { headsPerBlock: 2 }, 'test-similarity', { useCausalMask: true });
    const s = attentionShape({ seqLen: 17, dim: 10, heads: 2, causal: true });
    const [Q, K, V] = inputs(s, 6);
    const out = await fa.computeFlashAttention(Q, K, V, 17, 10);
    expect(maxAbsDiff(out, referenceAttention(Q, K, V, s))).toBeLessThanOrEqual(TOLERANCE);
    const unmasked = await fa.computeFlashAttention(Q, K, V, 17, 10, { causal: false });
    expect(maxAbsDiff(unmasked, referenceAttention(Q, K, V, { ...s, causal: false }))).toBeLessThanOrEqual(TOLERANCE);
  });

  test.each(MODULE_KINDS)('%s: the sync and async methods give identical outputs', async (kind) => {
    const fa = instance(kind, 'preset 512/512');
    const s = attentionShape({ seqLen: 40, dim: 24, heads: 8 });
    const [Q, K, V] = inputs(s, 7);
    const a = await fa.computeFlashAttention(Q, K, V, 40, 24);
    const b = fa.computeFlashAttentionSync(Q, K, V, 40, 24);
    expect(Array.from(a)).toEqual(Array.from(b));
  });

  test.each(MODULE_KINDS)('%s: inputs are not modified', async (kind) => {
    const fa = instance(kind, '8/4');
    const s = attentionShape({ seqLen: 12, dim: 16, heads: 8 });
    const [Q, K, V] = inputs(s, 8);
    const copies = [Q.slice(), K.slice(), V.slice()];
    await fa.computeFlashAttention(Q, K, V, 12, 16, { causal: true });
    expect([Q, K, V]).toEqual(copies);
  });
});

describe('large magnitudes (naive exp overflows)', () => {
  // The kernel works in float32: a score s is rounded at least once (for instance when the
  // scale is folded into it), which changes its softmax weight by up to |s| x 2^-24 relative.
  // Tolerances below are that bound, with a margin, on top of the 1e-5 of ordinary inputs.
  const roundingBound = (maxScore: number): number => 1e-5 + 4 * maxScore * 2 ** -24;

  function maxAbsScore(Q: Float32Array, K: Float32Array, s: AttentionShape): number {
    const hd = s.dim / s.heads;
    let max = 0;
    for (let h = 0; h < s.heads; h++) {
      for (let i = 0; i < s.seqLen; i++) {
        for (let j = 0; j < s.kvSeqLen; j++) {
          let dot = 0;
          for (let d = 0; d < hd; d++) dot += Q[i * s.dim + h * hd + d] * K[j * s.dim + h * hd + d];
          max = Math.max(max, Math.abs(dot * s.scale));
        }
      }
    }
    return max;
  }

  test.each([
    { range: 10, note: 'scores up to 200: float32 exp overflows' },
    { range: 60, note: 'scores up to 7200: float64 exp overflows too' },
  ])('integer inputs in [-$range, $range], scale 1 ($note)', ({ range }) => {
    const s = attentionShape({ seqLen: 70, kvSeqLen: 90, dim: 4, heads: 2, scale: 1 });
    const Q = uniformIntegers(s.seqLen * s.dim, 11 + range, -range, range);
    const K = uniformIntegers(s.kvSeqLen * s.dim, 12 + range, -range, range);
    const V = uniform(s.kvSeqLen * s.dim, 13 + range, -range, range);
    const maxScore = maxAbsScore(Q, K, s);
    expect(Math.fround(Math.exp(maxScore))).toBe(Infinity);
    const tolerance = roundingBound(maxScore);
    for (const causal of [false, true]) {
      const expected = referenceAttention(Q, K, V, { ...s, causal });
      for (const b of BLOCKS) {
        const outputs = MODULE_KINDS.map((kind) => run(instance(kind, b.name), Q, K, V, { ...s, causal }));
        for (const [i, out] of outputs.entries()) {
          expect(out.every(Number.isFinite)).toBe(true);
          const err = maxRelDiff(out, expected, 1);
          if (!(err <= tolerance)) {
            throw new Error(`${MODULE_KINDS[i]}, blocks ${b.name}, causal ${causal}: relative error ${err} > ${tolerance}`);
          }
        }
      }
    }
  });

  test('real inputs in [-60, 60], scale 1, 4 heads of 4', () => {
    const s = attentionShape({ seqLen: 50, kvSeqLen: 61, dim: 16, heads: 4, scale: 1 });
    const Q = uniform(s.seqLen * s.dim, 21, -60, 60);
    const K = uniform(s.kvSeqLen * s.dim, 22, -60, 60);
    const V = uniform(s.kvSeqLen * s.dim, 23, -60, 60);
    const maxScore = maxAbsScore(Q, K, s);
    expect(Math.exp(maxScore)).toBe(Infinity);
    // The float32 dot product of 4 terms adds up to 4 more roundings of the score.
    const tolerance = roundingBound(2 * maxScore);
    const expected = referenceAttention(Q, K, V, s);
    for (const kind of MODULE_KINDS) {
      for (const b of BLOCKS) {
        const out = run(instance(kind, b.name), Q, K, V, s);
        expect(out.every(Number.isFinite)).toBe(true);
        const err = maxRelDiff(out, expected, 60);
        if (!(err <= tolerance)) throw new Error(`${kind}, blocks ${b.name}: error ${err} relative to max |V| > ${tolerance}`);
      }
    }
  });
});
