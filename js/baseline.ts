/**
 * The deliberately naive attention that benchmarks compare against: plain
 * JavaScript, the whole seqLen x kvSeqLen score matrix materialized for each
 * head (O(N^2) memory), a three-pass softmax with max subtraction, then P.V.
 * It is correct (tests hold it to the float64 reference); it is only slow.
 */
import type { ResolvedAttention } from './validate';

/** Q: [seqLen x dim], K and V: [kvSeqLen x dim]; returns [seqLen x dim]. Arguments already validated. */
export function naiveAttention(Q: Float32Array, K: Float32Array, V: Float32Array, p: ResolvedAttention): Float32Array {
  const { seqLen, kvSeqLen, dim, heads, headDim, scale, causal, validKeyLength } = p;
  const out = new Float32Array(seqLen * dim);
  const scores = new Float32Array(seqLen * kvSeqLen);
  const acc = new Float64Array(headDim);

  for (let h = 0; h < heads; h++) {
    const col = h * headDim;

    // S = scale * Q_h K_h^T, masked entries -Infinity.
    for (let i = 0; i < seqLen; i++) {
      const qRow = i * dim + col;
      for (let j = 0; j < kvSeqLen; j++) {
        let s = -Infinity;
        if (j < validKeyLength && !(causal && j > i)) {
          const kRow = j * dim + col;
          let dot = 0;
          for (let d = 0; d < headDim; d++) dot += Q[qRow + d] * K[kRow + d];
          s = dot * scale;
        }
        scores[i * kvSeqLen + j] = s;
      }
    }

    // P = softmax(S) row by row, then O_h = P V_h.
    for (let i = 0; i < seqLen; i++) {
      const row = i * kvSeqLen;
      let max = -Infinity;
      for (let j = 0; j < kvSeqLen; j++) if (scores[row + j] > max) max = scores[row + j];
      let sum = 0;
      for (let j = 0; j < kvSeqLen; j++) {
        const e = Math.exp(scores[row + j] - max);
        scores[row + j] = e;
        sum += e;
      }
      acc.fill(0);
      for (let j = 0; j < kvSeqLen; j++) {
        const pij = scores[row + j];
        const vRow = j * dim + col;
        for (let d = 0; d < headDim; d++) acc[d] += pij * V[vRow + d];
      }
      const oRow = i * dim + col;
      for (let d = 0; d < headDim; d++) out[oRow + d] = acc[d] / sum;
    }
  }
  return out;
}
