/**
 * The N x N score matrix never exists: N = 16384, dim 64, one head. The score
 * matrix alone would be 1 GiB; module memory may grow by less than 8 MB
 * beyond the inputs and outputs. Runs in its own test file so the module
 * starts fresh.
 */
import type { ModuleKind } from '../types';
import { createOn, loadModule } from './helpers';
import { attentionShape, maxAbsDiff, referenceAttentionRow, uniform } from './reference';

const N = 16384;
const DIM = 64;
const MB = 1e6;

test.each<[ModuleKind, boolean]>([
  ['simd', false],
  ['scalar', true], // causal halves the work of the slower build
])('%s build, causal %s: N = 16384 attention grows module memory by < 8 MB beyond inputs and outputs', async (kind, causal) => {
  const module = await loadModule(kind);
  const fa = await createOn(kind, { headsPerBlock: 1 });
  const Q = uniform(N * DIM, 101);
  const K = uniform(N * DIM, 102);
  const V = uniform(N * DIM, 103);
  const ioBytes = 4 * Q.byteLength; // Q, K, V and O

  const before = module.memoryBytes;
  const out = fa.computeFlashAttentionSync(Q, K, V, N, DIM, { causal });
  const after = module.memoryBytes;

  const growthBeyondIo = after - before - ioBytes;
  expect(growthBeyondIo).toBeLessThan(8 * MB);
  // Everything stays within the inputs and outputs plus the small arena, never anything like N x N.
  expect(after - before).toBeLessThan(ioBytes + 8 * MB);
  expect(module.workspaceLastBytes()).toBeLessThan(1 * MB);
  expect(fa.getMetrics()[0].memoryMB).toBe(module.workspaceLastBytes() / 2 ** 20);
  expect(module.liveAllocations).toBe(0);

  const s = attentionShape({ seqLen: N, dim: DIM, heads: 1, causal });
  for (const row of [0, 1, 63, 64, 8191, 12345, N - 1]) {
    const expected = referenceAttentionRow(Q, K, V, s, row);
    expect(maxAbsDiff(out.subarray(row * DIM, (row + 1) * DIM), expected)).toBeLessThanOrEqual(1e-5);
  }
});
