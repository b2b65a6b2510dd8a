/**
 * The package as its users get it: `@agentic-qe/v3/flash-attention` through
 * CommonJS require and through ESM import (Node resolves a package's own
 * name from inside it), its type declarations, the scalar build forced by
 * environment, and a clear error when the .wasm files are missing. Needs
 * `make dist` first (`make test` and `make test-js` build it).
 */
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { attentionShape, maxAbsDiff, referenceAttention, uniform } from './reference';

const ROOT = resolve(__dirname, '..');
const PACKAGE = '@agentic-qe/v3/flash-attention';

const seqLen = 6;
const kvSeqLen = 9;
const dim = 8;
const heads = 2;
const Q = uniform(seqLen * dim, 31);
const K = uniform(kvSeqLen * dim, 32);
const V = uniform(kvSeqLen * dim, 33);
const expected = referenceAttention(Q, K, V, attentionShape({ seqLen, kvSeqLen, dim, heads, causal: true }));

/** The body of a script that computes the attention with `m` (the package) and prints JSON. */
const body = `
  const fa = await m.createQEFlashAttention('test-similarity', { blocks: { headsPerBlock: ${heads} } });
  const f = (a) => new Float32Array(a);
  const out = await fa.computeFlashAttention(f(${JSON.stringify(Array.from(Q))}), f(${JSON.stringify(Array.from(K))}),
    f(${JSON.stringify(Array.from(V))}), ${seqLen}, ${dim}, { kvSeqLen: ${kvSeqLen}, causal: true });
  const backend = await m.getWASMSIMDBackend();
  process.stdout.write(JSON.stringify({ out: Array.from(out), module: fa.getMetrics()[0].module,
    caps: backend.getCapabilities(), names: Object.keys(m).sort() }));
`;

interface Result {
  out: number[];
  module: string;
  caps: { module: string };
  names: string[];
}

function runNode(args: string[], env: NodeJS.ProcessEnv = {}, cwd = ROOT): Result {
  const childEnv = { ...process.env, ...env };
  if (env.QE_FLASH_MODULE === undefined) delete childEnv.QE_FLASH_MODULE;
  return JSON.parse(execFileSync(process.execPath, args, { cwd, env: childEnv }).toString()) as Result;
}

const requireScript = `(async () => { const m = require('${PACKAGE}'); ${body} })().catch((e) => { console.error(e); process.exit(1); });`;
const importScript = `import * as m from '${PACKAGE}'; ${body}`;

beforeAll(() => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  const targets = (c: unknown): string[] => (typeof c === 'string' ? [c] : Object.values(c as object).flatMap(targets));
  for (const target of [pkg.main, pkg.types, ...targets(pkg.exports)]) {
    if (!existsSync(join(ROOT, target as string))) throw new Error(`${target} is missing: run 'make dist' before the tests`);
  }
});

test('CommonJS: require by package name and subpath', () => {
  const result = runNode(['-e', requireScript]);
  expect(result.module).toBe('simd');
  expect(maxAbsDiff(result.out, expected)).toBeLessThanOrEqual(1e-5);
});

test('ESM: import by package name and subpath, with the same named exports as CommonJS', () => {
  const result = runNode(['--input-type=module', '-e', importScript]);
  expect(result.module).toBe('simd');
  expect(maxAbsDiff(result.out, expected)).toBeLessThanOrEqual(1e-5);
  const cjs = runNode(['-e', requireScript]);
  expect(result.names).toEqual(cjs.names);
  expect(result.names).toEqual(
    expect.arrayContaining([
      'createQEFlashAttention',
      'QEFlashAttention',
      'getWASMSIMDBackend',
      'WASMSIMDBackend',
      'QE_FLASH_ATTENTION_CONFIG',
      'QE_SONA_CONFIG',
      'QE_PERFORMANCE_TARGETS',
      'BLOCK_SIZE_PRESETS',
      'getOptimalBlockConfig',
      'getQEFlashAttentionConfig',
      'getWorkloadTypes',
    ]),
  );
});

test('QE_FLASH_MODULE=scalar forces the scalar build, with the same results', () => {
  const simd = runNode(['-e', requireScript]);
  const scalar = runNode(['--input-type=module', '-e', importScript], { QE_FLASH_MODULE: 'scalar' });
  expect(scalar.module).toBe('scalar');
  expect(scalar.caps.module).toBe('scalar');
  expect(maxAbsDiff(scalar.out, expected)).toBeLessThanOrEqual(1e-5);
  expect(maxAbsDiff(scalar.out, simd.out)).toBeLessThanOrEqual(1e-6);
});

describe('outside the repository', () => {
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'qe-flash-package-'));
  });

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  test('TypeScript consumers get the types through both conditions', () => {
    mkdirSync(join(dir, 'node_modules', '@agentic-qe'), { recursive: true });
    symlinkSync(ROOT, join(dir, 'node_modules', '@agentic-qe', 'v3'), 'dir');
    const use = `
      const fa = await createQEFlashAttention('code-embedding', { blocks: { kvChunkSize: 64 } });
      const out: Float32Array = await fa.computeFlashAttention(new Float32Array(8), new Float32Array(8), new Float32Array(8), 2, 4, { heads: 1 });
      const m: FlashAttentionMetrics[] = fa.getMetrics();
      const w: QEWorkloadType = fa.getWorkload();
      export const used = [out, m, w];`;
    writeFileSync(join(dir, 'esm.mts'), `import { createQEFlashAttention, type FlashAttentionMetrics, type QEWorkloadType } from '${PACKAGE}';\n${use}\n`);
    writeFileSync(
      join(dir, 'cjs.cts'),
      `import { createQEFlashAttention, type FlashAttentionMetrics, type QEWorkloadType } from '${PACKAGE}';\n` +
        `export async function f() {${use.replace('export const used =', 'return')}}\n`,
    );
    writeFileSync(join(dir, 'bad.mts'), `import { createQEFlashAttention } from '${PACKAGE}';\nawait createQEFlashAttention('no-such-workload');\n`);
    const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    const flags = ['--noEmit', '--strict', '--module', 'node16', '--moduleResolution', 'node16', '--target', 'es2022', '--types', 'node', '--typeRoots', join(ROOT, 'node_modules', '@types')];
    const compile = (...files: string[]): string => {
      try {
        execFileSync(process.execPath, [tsc, ...flags, ...files], { cwd: dir });
        return '';
      } catch (error) {
        return String((error as { stdout: Buffer }).stdout) || String(error);
      }
    };
    expect(compile('esm.mts', 'cjs.cts')).toBe('');
    // A wrong workload name is a type error: the declarations really are read.
    expect(compile('bad.mts')).toMatch(/'"no-such-workload"' is not assignable to parameter of type 'QEWorkloadType'/);
  });

  test('without the .wasm files the error says where it looked', () => {
    const pkg = join(dir, 'pkg');
    mkdirSync(pkg);
    cpSync(join(ROOT, 'package.json'), join(pkg, 'package.json'));
    cpSync(join(ROOT, 'dist'), join(pkg, 'dist'), { recursive: true });
    const script = `require('${PACKAGE}').createQEFlashAttention('test-similarity').then(() => process.exit(2), (e) => { process.stdout.write(e.message); });`;
    const message = execFileSync(process.execPath, ['-e', script], { cwd: pkg }).toString();
    expect(message).toMatch(/^cannot find qe-flash-(simd|scalar)\.wasm; looked in .*wasm\/qe-flash-(simd|scalar)\.wasm.*Build it with 'make wasm'/);
  });
});

describe('conditions', () => {
  const resolveWith = (conditions: string[], specifier: string): string =>
    execFileSync(process.execPath, [...conditions.map((c) => `--conditions=${c}`), '--input-type=module', '-e',
      `process.stdout.write(import.meta.resolve(${JSON.stringify(specifier)}))`], { cwd: ROOT }).toString();

  test('Node import gets the ES-module build for Node, compiled as ESM (not a wrapper of the CommonJS build)', () => {
    const url = resolveWith([], PACKAGE);
    expect(url).toMatch(/\/dist\/esm\/node\/js\/index\.js$/);
    const loader = readFileSync(join(ROOT, 'dist/esm/node/js/loader.js'), 'utf8');
    expect(loader).toMatch(/^import .* from '\.\/thread-pool\.js';$/m);
    expect(loader).not.toMatch(/require\(|dist\/cjs/);
  });

  test('the browser tree names no Node built-in and finds its .wasm files with new URL(..., import.meta.url)', () => {
    const dir = join(ROOT, 'dist/esm/browser/js');
    const all = ['index', 'loader', 'thread-pool', 'thread-dispatch', 'thread-support', 'worker-source', 'benchmark', 'platform-browser', 'module'].map((f) => readFileSync(join(dir, `${f}.js`), 'utf8')).join('\n');
    // Comments may name Node; code may not.
    const code = all.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
    expect(code).not.toMatch(/['"]node:|worker_threads|require\(/);
    for (const file of ['qe-flash-simd', 'qe-flash-scalar', 'qe-flash-simd-mt', 'qe-flash-relaxed', 'qe-flash-relaxed-mt']) {
      const m = all.match(new RegExp(`new URL\\('([^']*${file}\\.wasm)', import\\.meta\\.url\\)`));
      expect(m).not.toBeNull();
      expect(existsSync(resolve(dir, m![1]))).toBe(true);
    }
    expect(existsSync(join(dir, 'platform.js'))).toBe(false);
  });

  test('every tree carries the worker program, built from js/thread-worker.ts', () => {
    for (const tree of ['dist/cjs/js', 'dist/esm/node/js', 'dist/esm/browser/js']) {
      const text = readFileSync(join(ROOT, tree, 'worker-source.js'), 'utf8');
      expect(text).toContain('startThreadWorker');
      expect(text).toContain('qe_job_work');
    }
  });

  test('the .wasm files are exported as subpaths; default export; no marker or empty files', () => {
    for (const file of ['qe-flash-simd', 'qe-flash-scalar', 'qe-flash-simd-mt', 'qe-flash-relaxed', 'qe-flash-relaxed-mt']) {
      const url = resolveWith([], `@agentic-qe/v3/wasm/${file}.wasm`);
      expect(url.endsWith(`/wasm/${file}.wasm`)).toBe(true);
    }
    const out = execFileSync(process.execPath, ['--input-type=module', '-e',
      `import qe, { createQEFlashAttention } from '${PACKAGE}'; const c = (await import('node:module')).createRequire(process.cwd() + '/x')('${PACKAGE}');` +
      `process.stdout.write(JSON.stringify([qe.createQEFlashAttention === createQEFlashAttention, typeof c.default.createQEFlashAttention, 'runFlashAttentionBenchmarks' in qe]))`], { cwd: ROOT }).toString();
    expect(JSON.parse(out)).toEqual([true, 'function', false]);
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
    expect(pkg.sideEffects).toBe(false);
    expect(existsSync(join(ROOT, 'dist/.stamp'))).toBe(false);
    expect(existsSync(join(ROOT, 'LICENSE'))).toBe(true);
    const listing = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT }).toString())[0].files as { path: string; size: number }[];
    expect(listing.filter((f) => f.size === 0 || /\.stamp$/.test(f.path))).toEqual([]);
    expect(listing.map((f) => f.path)).toEqual(expect.arrayContaining(['LICENSE', 'wasm/qe-flash-simd.wasm', 'dist/esm/browser/js/index.js', 'dist/esm/node/js/index.js']));
  });
});
