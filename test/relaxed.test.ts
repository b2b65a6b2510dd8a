/**
 * The relaxed-SIMD builds (wasm/qe-flash-relaxed.wasm for one thread, on a
 * memory of its own; wasm/qe-flash-relaxed-mt.wasm for several, on a shared
 * one): the probe, when 'auto' chooses them, forcing them, and their
 * agreement with every other build and with the float64 reference.
 *
 * scripts/run-tests.sh runs Jest under --experimental-wasm-relaxed-simd on
 * Node 20 (Node >= 21 has relaxed SIMD by default), so there the build must
 * load: the first test fails if it does not. Run without the flag on Node
 * 20, the tests that need the build are skipped, and the reason is printed.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { ModuleKind } from '../types';
import { getWASMSIMDBackend } from '../js/backend';
import { createQEFlashAttention, type QEFlashAttention } from '../js/flash-attention';
import { chooseModuleKind, detectEngineFeatures, MODULE_FILES, RELAXED_SIMD_PROBE, type EngineFeatures } from '../js/loader';
import { loadQEModule } from '../js/module';
import { RELAXED_THREADED_MODULE_FILE, THREADED_MODULE_FILE } from '../js/threads';
import { expectReject, expectThrow, RELAXED_EXPECTED, RELAXED_UNAVAILABLE } from './helpers';
import { attentionShape, maxAbsDiff, referenceAttention, uniform, type AttentionCase } from './reference';

const ROOT = resolve(__dirname, '..');
const RELAXED_FLAG = '--experimental-wasm-relaxed-simd';
const NODE_MAJOR = Number(process.versions.node.split('.')[0]);

if (RELAXED_UNAVAILABLE !== null) {
  // Not silent: say why the relaxed build's tests are skipped.
  console.warn(`relaxed.test.ts: the relaxed-SIMD build's tests are skipped: ${RELAXED_UNAVAILABLE}`);
}
const withRelaxed = RELAXED_UNAVAILABLE === null ? it : it.skip;

describe('the relaxed-SIMD probe', () => {
  it('holds f32x4.relaxed_madd in its standard encoding, in a module that is otherwise plain SIMD128', () => {
    const bytes = Array.from(RELAXED_SIMD_PROBE);
    const at = bytes.findIndex((b, i) => b === 0xfd && bytes[i + 1] === 0x85 && bytes[i + 2] === 0x02);
    expect(at).toBeGreaterThan(0);
    // Without that instruction (and one splat less) the module is valid SIMD128: the probe fails only for relaxed SIMD.
    const plain = Uint8Array.from([
      ...bytes.slice(0, 19), 0x0a, 0x12, 0x01, 0x10, 0x00,
      0x41, 0x00, 0xfd, 0x0f, 0x41, 0x00, 0xfd, 0x0f, 0xfd, 0xe4, 0x01, // two splats, f32x4.add
      0xfd, 0x16, 0x00, 0x0b,
    ]);
    expect(WebAssembly.validate(plain)).toBe(true);
  });

  it(`validates under ${RELAXED_FLAG}${NODE_MAJOR <= 20 ? ', and not without it on Node 20' : ''}`, () => {
    const script = `process.stdout.write(String(WebAssembly.validate(new Uint8Array(${JSON.stringify(Array.from(RELAXED_SIMD_PROBE))}))))`;
    expect(execFileSync(process.execPath, [RELAXED_FLAG, '-e', script]).toString()).toBe('true');
    const plain = execFileSync(process.execPath, ['-e', script]).toString();
    expect(plain).toBe(NODE_MAJOR <= 20 ? 'false' : 'true');
    // It is a real module: it compiles and instantiates where it validates.
    const run = `const m = new WebAssembly.Module(new Uint8Array(${JSON.stringify(Array.from(RELAXED_SIMD_PROBE))})); new WebAssembly.Instance(m); process.stdout.write('ok')`;
    expect(execFileSync(process.execPath, [RELAXED_FLAG, '-e', run]).toString()).toBe('ok');
  });

  it('this test run has relaxed SIMD exactly when the engine should (so `make test` exercises the relaxed build)', () => {
    expect(detectEngineFeatures().relaxedSimd).toBe(RELAXED_EXPECTED);
    if (RELAXED_EXPECTED) expect(RELAXED_UNAVAILABLE).toBeNull();
  });
});

describe('choosing the relaxed build', () => {
  const relaxed: EngineFeatures = { webAssembly: true, simd128: true, relaxedSimd: true };
  const simdOnly: EngineFeatures = { webAssembly: true, simd128: true, relaxedSimd: false };

  it.each([
    [undefined, undefined, relaxed, 'relaxed'],
    ['auto', undefined, relaxed, 'relaxed'],
    ['auto', undefined, simdOnly, 'simd'],
    ['simd', undefined, relaxed, 'simd'],
    ['scalar', undefined, relaxed, 'scalar'],
    ['relaxed', undefined, relaxed, 'relaxed'],
    [undefined, 'relaxed', relaxed, 'relaxed'],
    [undefined, 'simd', relaxed, 'simd'],
    ['auto', 'scalar', relaxed, 'scalar'],
  ] as const)('module %p, QE_FLASH_MODULE %p, %o -> %s', (choice, env, features, expected) => {
    expect(chooseModuleKind(choice, env, features)).toBe(expected);
  });

  it('asking for it where it cannot run is an error that says why', () => {
    expectThrow(() => chooseModuleKind('relaxed', undefined, simdOnly), Error,
      "relaxed-SIMD module was requested (module: 'relaxed') but this engine does not support WebAssembly relaxed SIMD (Node 20 needs --experimental-wasm-relaxed-simd");
    expectThrow(() => chooseModuleKind(undefined, 'relaxed', simdOnly), Error, 'requested (QE_FLASH_MODULE=relaxed)');
    expectThrow(() => chooseModuleKind('relaxed', undefined, { webAssembly: true, simd128: false, relaxedSimd: false }), Error,
      'does not support WebAssembly SIMD128');
  });

  it('forcing it on this engine loads it, or rejects with that error', async () => {
    if (RELAXED_UNAVAILABLE === null) {
      expect((await loadQEModule({ module: 'relaxed' })).kind).toBe('relaxed');
    } else {
      await expectReject(loadQEModule({ module: 'relaxed' }), Error, 'relaxed-SIMD module was requested');
    }
  });
});

describe('loading the relaxed build', () => {
  withRelaxed("'auto' with one thread: the single-thread relaxed build, on a memory that is not shared; metrics and capabilities say so", async () => {
    const fa = await createQEFlashAttention('test-similarity', undefined, { threads: 1 });
    try {
      const s = attentionShape({ seqLen: 40, dim: 32, heads: 2 });
      fa.computeFlashAttentionSync(uniform(40 * 32, 1), uniform(40 * 32, 2), uniform(40 * 32, 3), 40, 32, { heads: 2 });
      expect(fa.getMetrics().pop()).toMatchObject({ module: 'relaxed', threads: 1, seqLen: s.seqLen });
      expect(fa.getThreads()).toBe(1);
      const module = await loadQEModule({ threads: 1 });
      expect(module.kind).toBe('relaxed');
      expect(module.source).toBe(resolve(ROOT, 'wasm', MODULE_FILES.relaxed));
      expect(module.pool).toBeNull();
      // Not shared, so copies into it take V8's plain path.
      expect(module.f32().buffer instanceof SharedArrayBuffer).toBe(false);
    } finally {
      fa.dispose();
    }
    const backend = await getWASMSIMDBackend();
    const caps = backend.getCapabilities();
    expect(caps).toMatchObject({ supported: true, simd128: true, relaxedSimd: true, module: 'relaxed' });
    expect(caps.vectorOps.length).toBeGreaterThan(0);
    expect(backend.isSIMDAvailable()).toBe(true);
  });

  withRelaxed("'auto' with two threads: the threaded relaxed build, on a shared memory, with a worker", async () => {
    const one = await loadQEModule({ threads: 1 });
    const two = await loadQEModule({ threads: 2 });
    expect(two).not.toBe(one);
    expect(two.kind).toBe('relaxed');
    expect(two.source).toBe(resolve(ROOT, 'wasm', RELAXED_THREADED_MODULE_FILE));
    expect(two.f32().buffer instanceof SharedArrayBuffer).toBe(true);
    expect(two.pool?.readyWorkers).toBeGreaterThanOrEqual(1);
    // Asked for again, each is the same instance.
    expect(await loadQEModule({ threads: 2 })).toBe(two);
    expect(await loadQEModule({ module: 'relaxed' })).toBe(one);
  });

  withRelaxed('a wasmUrl naming either relaxed file loads it, for one thread or two', async () => {
    for (const file of [MODULE_FILES.relaxed, RELAXED_THREADED_MODULE_FILE]) {
      for (const threads of [1, 2]) {
        const m = await loadQEModule({ wasmUrl: resolve(ROOT, 'wasm', file), threads });
        expect([file, threads, m.kind, m.source]).toEqual([file, threads, 'relaxed', resolve(ROOT, 'wasm', file)]);
        // The threaded file comes with its pool (no workers for one thread); the other has none.
        expect([file, threads, m.pool === null]).toEqual([file, threads, file === MODULE_FILES.relaxed]);
      }
    }
  });

  withRelaxed('several threads without the threaded relaxed file: the single-thread relaxed build, on one thread', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'qe-flash-no-relaxed-mt-'));
    try {
      copyFileSync(resolve(ROOT, 'wasm', MODULE_FILES.relaxed), join(dir, MODULE_FILES.relaxed));
      const m = await loadQEModule({ wasmUrl: dir + '/', threads: 2 });
      expect(m.kind).toBe('relaxed');
      expect(m.source).toBe(join(dir, MODULE_FILES.relaxed));
      expect(m.pool).toBeNull();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  withRelaxed("'auto' falls back to the SIMD builds when the relaxed file is missing", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'qe-flash-no-relaxed-'));
    try {
      for (const file of [MODULE_FILES.simd, MODULE_FILES.scalar, THREADED_MODULE_FILE]) copyFileSync(resolve(ROOT, 'wasm', file), join(dir, file));
      const single = await loadQEModule({ wasmUrl: dir + '/', threads: 1 });
      expect(single.kind).toBe('simd');
      expect(single.source).toBe(join(dir, MODULE_FILES.simd));
      const threaded = await loadQEModule({ wasmUrl: dir + '/', threads: 2 });
      expect(threaded.kind).toBe('simd');
      expect(threaded.source).toBe(join(dir, THREADED_MODULE_FILE));
      // Forced, the missing file is the error; for several threads, both missing files.
      await expectReject(loadQEModule({ wasmUrl: dir + '/', module: 'relaxed' }), Error, MODULE_FILES.relaxed);
      const both = loadQEModule({ wasmUrl: dir + '/', module: 'relaxed', threads: 2 });
      await expectReject(both, Error, MODULE_FILES.relaxed);
      await expectReject(loadQEModule({ wasmUrl: dir + '/', module: 'relaxed', threads: 2 }), Error, `the threaded build could not be had either: cannot read the module at ${join(dir, RELAXED_THREADED_MODULE_FILE)}`);
      // A wasmUrl naming another build's file is not taken for the relaxed build.
      const file = await loadQEModule({ wasmUrl: join(dir, MODULE_FILES.simd) });
      expect(file.kind).toBe('simd');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

type Shape = AttentionCase;

const SHAPES: Shape[] = [
  { seqLen: 1, kvSeqLen: 300, dim: 384, heads: 8 },
  { seqLen: 37, dim: 24, heads: 3, causal: true },
  { seqLen: 256, dim: 384, heads: 12 },
  { seqLen: 333, kvSeqLen: 129, dim: 40, heads: 5, validKeyLength: 100 },
  { seqLen: 512, dim: 384, heads: 8 },
  { seqLen: 300, dim: 128, heads: 2, causal: true },
];

const label = (s: Shape) =>
  `${s.seqLen}x${s.kvSeqLen ?? s.seqLen} dim=${s.dim} heads=${s.heads}${s.causal ? ' causal' : ''}${s.validKeyLength ? ` valid=${s.validKeyLength}` : ''}`;

describe('every build agrees with float64 and with the others', () => {
  // Each build, forced: scalar, SIMD128, SIMD128 threaded (two threads), and
  // relaxed SIMD on one thread and on two.
  const builds: [string, ModuleKind, number][] = [
    ['scalar', 'scalar', 1],
    ['simd', 'simd', 1],
    ['simd-mt', 'simd', 2],
    ...(RELAXED_UNAVAILABLE === null ? ([['relaxed', 'relaxed', 1], ['relaxed-mt', 'relaxed', 2]] as [string, ModuleKind, number][]) : []),
  ];
  const instances = new Map<string, QEFlashAttention>();

  beforeAll(async () => {
    for (const [name, module, threads] of builds) {
      instances.set(name, await createQEFlashAttention('test-similarity', undefined, { module, threads }));
    }
  });

  afterAll(() => {
    for (const fa of instances.values()) fa.dispose();
  });

  it.each(SHAPES.map((s) => [label(s), s] as const))('%s', (_name, s) => {
    const shape = attentionShape(s);
    const Q = uniform(shape.seqLen * shape.dim, shape.seqLen + shape.dim, -2, 2);
    const K = uniform(shape.kvSeqLen * shape.dim, shape.kvSeqLen + 7, -2, 2);
    const V = uniform(shape.kvSeqLen * shape.dim, shape.kvSeqLen + 11);
    const options = { heads: s.heads, causal: s.causal ?? false, kvSeqLen: s.kvSeqLen, validKeyLength: s.validKeyLength };
    const expected = referenceAttention(Q, K, V, shape);
    const outputs = new Map<string, Float32Array>();
    for (const [name, kind, threads] of builds) {
      const fa = instances.get(name) as QEFlashAttention;
      const out = fa.computeFlashAttentionSync(Q, K, V, shape.seqLen, shape.dim, options);
      const m = fa.getMetrics().pop();
      expect(m?.module).toBe(kind);
      if (threads === 1) expect(m?.threads).toBe(1);
      const err = maxAbsDiff(out, expected);
      if (!(err <= 1e-6)) throw new Error(`${name}: max abs error ${err} against float64 > 1e-6`);
      outputs.set(name, out);
    }
    const first = outputs.get('scalar') as Float32Array;
    for (const [name, out] of outputs) {
      const diff = maxAbsDiff(out, first);
      if (!(diff <= 1e-6)) throw new Error(`${name} and scalar differ by ${diff} > 1e-6`);
    }
    // One build gives the same bits on one thread and on two.
    const same = (a: string, b: string) => Buffer.from((outputs.get(a) as Float32Array).buffer).equals(Buffer.from((outputs.get(b) as Float32Array).buffer));
    expect(same('simd', 'simd-mt')).toBe(true);
    if (RELAXED_UNAVAILABLE === null) expect(same('relaxed', 'relaxed-mt')).toBe(true);
  });
});
