/**
 * The SIMD probe, the choice of build, where the bytes come from, caching,
 * and typed views that survive memory growth.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createQEFlashAttention } from '../js/flash-attention';
import {
  chooseModuleKind,
  detectEngineFeatures,
  MODULE_FILES,
  RELAXED_SIMD_PROBE,
  SIMD128_PROBE,
  type EngineFeatures,
} from '../js/loader';
import { loadQEModule } from '../js/module';
import { expectThrow, loadModule } from './helpers';
import { attentionShape, maxAbsDiff, referenceAttention, uniform } from './reference';

const ROOT = resolve(__dirname, '..');

describe('feature probes', () => {
  test('the SIMD128 probe validates on this engine and holds a SIMD instruction', () => {
    expect(WebAssembly.validate(SIMD128_PROBE)).toBe(true);
    expect(Array.from(SIMD128_PROBE)).toEqual(expect.arrayContaining([0xfd]));
    // It compiles and instantiates: a real module, not just bytes the validator skims.
    expect(() => new WebAssembly.Instance(new WebAssembly.Module(SIMD128_PROBE))).not.toThrow();
  });

  test('the validator reads the probe instruction by instruction', () => {
    // i8x16.extract_lane_u of lane 16 (an i8x16 has lanes 0 to 15): rejected.
    const badLane = SIMD128_PROBE.slice();
    const lane = badLane.length - 2;
    expect(Array.from(badLane.subarray(lane - 2, lane + 1))).toEqual([0xfd, 0x16, 0x00]);
    badLane[lane] = 16;
    expect(WebAssembly.validate(badLane)).toBe(false);
    // The probe without its SIMD lane instruction leaves a v128 where an i32 is due: rejected.
    const wrongType = Uint8Array.from([...SIMD128_PROBE.subarray(0, 19), 0x0a, 0x08, 0x01, 0x06, 0x00, 0x41, 0x00, 0xfd, 0x0f, 0x0b]);
    expect(WebAssembly.validate(wrongType)).toBe(false);
  });

  test('the relaxed-SIMD probe follows the engine flag', () => {
    const script = `process.stdout.write(String(WebAssembly.validate(new Uint8Array(${JSON.stringify(Array.from(RELAXED_SIMD_PROBE))}))))`;
    const withFlag = execFileSync(process.execPath, ['--experimental-wasm-relaxed-simd', '-e', script]).toString();
    expect(withFlag).toBe('true');
    const majorVersion = Number(process.versions.node.split('.')[0]);
    const plain = execFileSync(process.execPath, ['-e', script]).toString();
    // Node 20 runs relaxed SIMD only behind the flag; later versions by default.
    if (majorVersion <= 20) expect(plain).toBe('false');
    expect(detectEngineFeatures().relaxedSimd).toBe(WebAssembly.validate(RELAXED_SIMD_PROBE));
  });

  test('detectEngineFeatures reports WebAssembly and SIMD128 on Node 20', () => {
    expect(detectEngineFeatures()).toMatchObject({ webAssembly: true, simd128: true });
  });
});

describe('choosing the build', () => {
  const simd: EngineFeatures = { webAssembly: true, simd128: true, relaxedSimd: false };
  const noSimd: EngineFeatures = { webAssembly: true, simd128: false, relaxedSimd: false };

  test.each([
    [undefined, undefined, simd, 'simd'],
    ['auto', undefined, simd, 'simd'],
    [undefined, undefined, noSimd, 'scalar'],
    ['auto', undefined, noSimd, 'scalar'],
    ['scalar', undefined, simd, 'scalar'],
    ['auto', 'scalar', simd, 'scalar'],
    [undefined, 'simd', simd, 'simd'],
    ['simd', 'scalar', simd, 'simd'],
    ['scalar', 'simd', simd, 'scalar'],
    [undefined, 'scalar', noSimd, 'scalar'],
  ] as const)('module %p, QE_FLASH_MODULE %p, %o -> %s', (choice, env, features, expected) => {
    expect(chooseModuleKind(choice, env, features)).toBe(expected);
  });

  test('SIMD asked of an engine without it is an error, not a silent fallback', () => {
    expectThrow(() => chooseModuleKind('simd', undefined, noSimd), Error, "requested (module: 'simd') but this engine does not support WebAssembly SIMD128");
    expectThrow(() => chooseModuleKind(undefined, 'simd', noSimd), Error, 'requested (QE_FLASH_MODULE=simd)');
  });

  test('no WebAssembly is an error', () => {
    expectThrow(() => chooseModuleKind(undefined, undefined, { webAssembly: false, simd128: false, relaxedSimd: false }), Error, 'needs WebAssembly');
  });

  test('QE_FLASH_MODULE=scalar forces the scalar build when the caller says auto', async () => {
    const saved = process.env.QE_FLASH_MODULE;
    process.env.QE_FLASH_MODULE = 'scalar';
    try {
      const fa = await createQEFlashAttention('pattern-adaptation', { blocks: { headsPerBlock: 1 } });
      fa.computeFlashAttentionSync(uniform(8, 1), uniform(8, 2), uniform(8, 3), 2, 4);
      expect(fa.getMetrics()[0].module).toBe('scalar');
      const forced = await createQEFlashAttention('pattern-adaptation', { blocks: { headsPerBlock: 1 } }, { module: 'simd' });
      forced.computeFlashAttentionSync(uniform(8, 1), uniform(8, 2), uniform(8, 3), 2, 4);
      expect(forced.getMetrics()[0].module).toBe('simd');
    } finally {
      if (saved === undefined) delete process.env.QE_FLASH_MODULE;
      else process.env.QE_FLASH_MODULE = saved;
    }
  });
});

describe('instantiation', () => {
  test('each build reports its own kind, and loads once', async () => {
    const simd = await loadModule('simd');
    const scalar = await loadModule('scalar');
    expect(simd.kind).toBe('simd');
    expect(scalar.kind).toBe('scalar');
    expect(await loadModule('simd')).toBe(simd);
    expect(await loadQEModule({ module: 'scalar' })).toBe(scalar);
    expect(simd.source).toBe(resolve(ROOT, 'wasm', MODULE_FILES.simd));
  });

  test('wasmBytes: the caller’s bytes, a new instance, its kind read from the module', async () => {
    const bytes = readFileSync(resolve(ROOT, 'wasm', MODULE_FILES.scalar));
    const module = await loadQEModule({ wasmBytes: bytes });
    expect(module.kind).toBe('scalar');
    expect(module.source).toBe('wasmBytes');
    expect(module).not.toBe(await loadModule('scalar'));
  });

  test('wasmUrl: a file URL of the folder picks the build’s file', async () => {
    const module = await loadQEModule({ module: 'scalar', wasmUrl: pathToFileURL(resolve(ROOT, 'wasm')).href + '/' });
    expect(module.kind).toBe('scalar');
    expect(module.source).toBe(resolve(ROOT, 'wasm', MODULE_FILES.scalar));
  });

  test('typed views follow the memory when it grows, and results stay right', async () => {
    const module = await loadModule('simd');
    const fa = await createQEFlashAttention('test-similarity', { blocks: { headsPerBlock: 2 } }, { module: 'simd' });
    const s = attentionShape({ seqLen: 12, dim: 8, heads: 2 });
    const Q = uniform(96, 1);
    const K = uniform(96, 2);
    const V = uniform(96, 3);
    const view = module.f32();
    const bytesBefore = module.memoryBytes;
    module.scope((scope) => {
      scope.alloc(bytesBefore + 32 * 2 ** 20); // more than is free: the memory must grow
    });
    expect(module.memoryBytes).toBeGreaterThan(bytesBefore);
    expect(view.length).toBe(0); // the old buffer was detached
    expect(module.f32().length).toBe(module.memoryBytes / 4);
    const out = fa.computeFlashAttentionSync(Q, K, V, 12, 8);
    expect(maxAbsDiff(out, referenceAttention(Q, K, V, s))).toBeLessThanOrEqual(1e-5);
    expect(module.liveAllocations).toBe(0);
  });
});
