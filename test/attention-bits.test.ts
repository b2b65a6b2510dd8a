/**
 * computeFlashAttention's default path keeps its results bit for bit across
 * the kernel's generalisation for the ONNX operator: hashes of its outputs on fixed
 * inputs, written by scripts/attention-default-bits.cjs from the builds
 * before the change, against this build's.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createOn } from './helpers';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const bits = require('../scripts/attention-default-bits.cjs') as {
  SHAPES: unknown[];
  hashes(createFor: (block: number) => Promise<unknown>): Promise<string[]>;
};
const BEFORE = JSON.parse(readFileSync(join(__dirname, 'fixtures', 'attention-default-bits.json'), 'utf8')) as Record<string, string[]>;

describe('computeFlashAttention default path, bit for bit', () => {
  it.each(['simd', 'scalar'] as const)('the %s build gives the same bits as before the change', async (kind) => {
    const now = await bits.hashes((block) => createOn(kind, block ? { queryChunkSize: block, kvChunkSize: block } : undefined));
    expect(now.length).toBe(bits.SHAPES.length);
    expect(now).toEqual(BEFORE[kind]);
  });
});
