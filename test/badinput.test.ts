/**
 * Bad inputs the issue found accepted silently or reported unclearly (issue
 * 16): each is now a TypeError or RangeError naming the argument as the user
 * wrote it, and a good call on the same instance still gives the right answer.
 */
import { createQEFlashAttention, type QEFlashAttention } from '../js/flash-attention';
import { getWASMSIMDBackend } from '../js/backend';
import { runFlashAttentionBenchmarks } from '../js/benchmark';
import { terminateThreadPools } from '../js/threads';
import { tokenizeCode } from '../js/tokenizer';
import { expectReject, expectThrow } from './helpers';
import { referenceLayerNorm, maxAbsDiff, uniform } from './reference';

let fa: QEFlashAttention;
beforeAll(async () => {
  fa = await createQEFlashAttention('test-similarity', { dim: 8, blocks: { headsPerBlock: 2 } }, { threads: 1 });
});
afterAll(async () => {
  fa.dispose();
  await terminateThreadPools();
});

describe('index ids', () => {
  it.each([
    [-1, RangeError, /^id must be an integer in \[0, 2147483647\] \(an id from add\(\)\), got -1$/],
    [1.5, RangeError, /got 1\.5$/],
    [Number.NaN, RangeError, /got NaN$/],
    ['0', TypeError, /^id must be a number \(an id from add\(\)\), got the string "0"$/],
    [null, TypeError, /got null$/],
    [{}, TypeError, /got an object \(Object\)$/],
  ] as const)('remove(%p) and has(%p) are refused', (id, errorClass, message) => {
    const index = fa.createSimilarityIndex(8);
    const v = uniform(8, 1);
    const [kept] = index.add(v);
    expectThrow(() => index.remove(id as never), errorClass, message);
    expectThrow(() => index.has(id as never), errorClass, message);
    expect(index.size).toBe(1);
    expect(index.has(kept)).toBe(true);
    expect(index.search(v, 1)[0]).toEqual({ id: kept, similarity: expect.closeTo(1, 5) });
    index.dispose();
  });
});

describe('configuration errors come at creation, naming the key', () => {
  it('blocks: null, an unknown key, an unknown block key, dim 10 with 8 heads, loadOptions as a number', async () => {
    await expectReject(createQEFlashAttention('test-similarity', { blocks: null } as never), TypeError, /^customConfig\.blocks must be an object, got null$/);
    await expectReject(createQEFlashAttention('test-similarity', { dimension: 8 } as never), TypeError, /^customConfig has an unknown key 'dimension'/);
    await expectReject(createQEFlashAttention('test-similarity', { blocks: { heads: 2 } } as never), TypeError, /^customConfig\.blocks has an unknown key 'heads'/);
    await expectReject(createQEFlashAttention('test-similarity', { dim: 10, blocks: { headsPerBlock: 8 } }), RangeError, /^config\.dim 10 is not a multiple of config\.blocks\.headsPerBlock 8/);
    await expectReject(createQEFlashAttention('test-similarity', {}, 4 as never), TypeError, /^loadOptions must be an object, got the number 4$/);
    // The instance is unchanged and still right.
    const out = fa.computeFlashAttentionSync(uniform(8, 2), uniform(8, 3), uniform(8, 4), 1, 8);
    expect(maxAbsDiff(out, uniform(8, 4))).toBeLessThan(1e-6); // one key: the output is V
  });
});

describe('other silent acceptances', () => {
  it('runFlashAttentionBenchmarks(5) is a TypeError, not the full suite', async () => {
    await expectReject(runFlashAttentionBenchmarks(5 as never), TypeError, /^options must be an object, got the number 5$/);
  });

  it('layerNormSIMD with eps 0 is refused (a constant row would be NaN); eps > 0 still exact', async () => {
    const backend = await getWASMSIMDBackend();
    const constant = new Float32Array(6).fill(3);
    const gamma = uniform(6, 7);
    const beta = uniform(6, 8);
    expectThrow(() => backend.layerNormSIMD(constant, gamma, beta, 0), RangeError, /^eps must be positive/);
    const out = backend.layerNormSIMD(constant, gamma, beta, 1e-5);
    expect(out.every(Number.isFinite)).toBe(true);
    expect(maxAbsDiff(out, referenceLayerNorm(constant, gamma, beta, 1e-5))).toBeLessThan(1e-5);
  });

  it('tokenizeCode(x, null) names options', () => {
    expectThrow(() => tokenizeCode('x', null as never), TypeError, /^options must be an object, got null$/);
    expect(tokenizeCode('x').map((t) => t.text)).toEqual(['x']);
  });
});
