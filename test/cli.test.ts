/**
 * qe-flash similar (js/cli.ts): finding test cases in each language,
 * reporting planted near-duplicates first with file:line, options, the
 * progress bar, and errors. The 10,000-case timing is in the benchmark
 * (bench/cli-similar.js, run by make bench).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as nodePath from 'node:path';
import type { QEModule } from '../js/module';
import { collectFiles, extractTestCases, findDuplicatePairs, runCli } from '../js/cli';
import { releaseFeatureTables } from '../js/code-embedding';
import { loadModule } from './helpers';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { writeGeneratedSuite } = require('../bench/test-suite-generator');

let m: QEModule;
let root: string;
beforeAll(async () => {
  m = await loadModule('simd');
  root = fs.mkdtempSync(nodePath.join(os.tmpdir(), 'qe-flash-cli-'));
});
afterAll(() => {
  releaseFeatureTables(m);
  fs.rmSync(root, { recursive: true, force: true });
});

function write(rel: string, text: string): string {
  const file = nodePath.join(root, rel);
  fs.mkdirSync(nodePath.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
  return file;
}

/** Captured output streams. */
function io(tty = false, clock?: () => number) {
  const out: string[] = [];
  const err: string[] = [];
  return {
    io: { stdout: { write: (s: string) => out.push(s) }, stderr: { write: (s: string) => err.push(s), isTTY: tty }, now: clock },
    out: () => out.join(''),
    err: () => err.join(''),
  };
}

/** Writes generated cases under root/dir with one planted near-duplicate (bench/test-suite-generator.js). */
function generateSuite(dir: string, files: number, perFile: number): { original: string; copy: string } {
  return writeGeneratedSuite(root, dir, files, perFile);
}

describe('extractTestCases', () => {
  it('finds JS/TS it() and test() calls with their names and lines, and nothing else', () => {
    const source = [
      "describe('cart', () => {",
      "  it('adds', () => { expect(/a+/.test('aa')).toBe(true); });",
      '  test.each([[1, 2]])("sums %i", (a, b) => {',
      '    expect(a + b).toBe(3);',
      '  });',
      "  it.only('removes', async () => { await cart.test(x); });",
      "  const myTest = () => 1; myTest('no');",
      '});',
    ].join('\n');
    const cases = extractTestCases(source, 'cart.test.ts');
    expect(cases.map((c) => [c.name, c.line])).toEqual([['adds', 2], ['sums %i', 3], ['removes', 6]]);
    expect(cases[1].source).toBe('test.each([[1, 2]])("sums %i", (a, b) => {\n    expect(a + b).toBe(3);\n  })');
  });

  it('finds Python test functions by indentation, Java @Test methods and Go TestXxx functions', () => {
    const py = 'import pytest\n\nclass TestCart:\n    def test_add(self):\n        x = 1\n\n        assert x == 1\n    def helper(self):\n        pass\n\ndef test_remove():\n    assert True\n';
    expect(extractTestCases(py, 't.py').map((c) => [c.name, c.line, c.source.split('\n').length])).toEqual([['test_add', 4, 4], ['test_remove', 11, 2]]);
    const java = 'class T {\n  @Test\n  void adds() {\n    if (x) { y(); }\n  }\n  void helper() {}\n  @Test(timeout = 5) public void removes() throws Exception { z(); }\n}\n';
    expect(extractTestCases(java, 'T.java').map((c) => [c.name, c.line])).toEqual([['adds', 2], ['removes', 7]]);
    const go = 'package x\n\nfunc helper() {}\n\nfunc TestAdd(t *testing.T) {\n\tif f() { t.Fail() }\n}\n\nfunc TestRemove(t *testing.T) { g(`}`) }\n';
    expect(extractTestCases(go, 'x_test.go').map((c) => [c.name, c.line, c.source.endsWith('}')])).toEqual([['TestAdd', 5, true], ['TestRemove', 9, true]]);
  });

  it('takes a file without recognizable cases as one case', () => {
    expect(extractTestCases('const a = 1;\n', 'util.js')).toEqual([{ file: 'util.js', line: 1, name: 'util.js', source: 'const a = 1;\n' }]);
    expect(extractTestCases('SELECT 1;', 'q.sql')).toHaveLength(1);
    expect(extractTestCases('  \n', 'empty.js')).toEqual([]);
  });
});

describe('qe-flash similar', () => {
  it('reports the planted near-duplicate pair first, with file:line for both sides', async () => {
    const where = generateSuite('suite', 30, 12);
    const run = io();
    expect(await runCli(['similar', nodePath.join(root, 'suite')], run.io, m)).toBe(0);
    const lines = run.out().split('\n');
    expect(lines[0]).toMatch(/^360 test cases in 30 files; \d+ pairs? with similarity >= 0\.9/);
    expect(lines[1]).toMatch(/^1\.0000  /);
    const sides = [lines[1], lines[2]].map((l) => l.trim().split(/\s+/)[l.trim().startsWith('1.0000') ? 1 : 0]);
    expect(sides.sort()).toEqual([where.original, where.copy].sort());
    expect(run.err()).toBe('');
  });

  it('prints JSON, honours --top and --threshold, and counts what it found', async () => {
    const dir = nodePath.join(root, 'small');
    const a = "describe('x', () => {\n  it('adds two numbers', () => {\n    const total = add(2, 3);\n    expect(total).toBe(5);\n  });\n});\n";
    write('small/a.test.js', a);
    write('small/b.test.js', a.replace('total', 'sum').replace('total', 'sum'));
    write('small/c.test.js', "test('parses dates', () => { expect(parseDate('2024-01-02').getDate()).toEqual(2); });\n");
    const run = io();
    expect(await runCli(['similar', dir, '--json', '--threshold=0.5', '--top', '1'], run.io, m)).toBe(0);
    const report = JSON.parse(run.out());
    expect(report).toMatchObject({ threshold: 0.5, files: 3, cases: 3 });
    expect(report.pairs).toHaveLength(1);
    expect(report.found).toBeGreaterThanOrEqual(1);
    expect(report.pairs[0].score).toBeGreaterThan(0.7);
    expect([report.pairs[0].a.file, report.pairs[0].b.file].sort()).toEqual([nodePath.join(dir, 'a.test.js'), nodePath.join(dir, 'b.test.js')]);
    expect(report.pairs[0].a).toMatchObject({ line: 2, name: 'adds two numbers' });
    const none = io();
    expect(await runCli(['similar', dir, '--threshold', '1'], none.io, m)).toBe(0);
    expect(none.out()).toMatch(/^3 test cases in 3 files; 0 pairs with similarity >= 1\n$/);
  });

  it('draws a progress bar on stderr only once the job has run for a second', async () => {
    write('progress/a.test.js', "it('a', () => { expect(add(1, 1)).toBe(2); });\n");
    write('progress/b.test.js', "it('b', () => { expect(2).toBe(2); });\n");
    let t = 0;
    const slow = io(true, () => (t += 400));
    expect(await runCli(['similar', nodePath.join(root, 'progress')], slow.io, m)).toBe(0);
    expect(slow.err()).toMatch(/\r\[#+-*\] +\d+% (reading|embedding|searching) \d+\/\d+/);
    expect(slow.err().endsWith('\n')).toBe(true);
    const fast = io(true, () => 0);
    expect(await runCli(['similar', nodePath.join(root, 'progress')], fast.io, m)).toBe(0);
    expect(fast.err()).toBe('');
  });

  it('fails clearly on a missing path and on bad usage', async () => {
    const missing = io();
    expect(await runCli(['similar', nodePath.join(root, 'nope')], missing.io, m)).toBe(2);
    expect(missing.err()).toBe(`qe-flash: no such file or folder: ${nodePath.join(root, 'nope')}\n`);
    expect(missing.out()).toBe('');
    for (const [args, message] of [
      [[], /no command given/],
      [['similar'], /similar needs at least one path/],
      [['compare', 'x'], /unknown command "compare"/],
      [['similar', 'x', '--threshold', '2'], /--threshold must be a number in \(0, 1\]/],
      [['similar', 'x', '--top', '0'], /--top must be a positive integer/],
      [['similar', 'x', '--dim', '30'], /--dim must be a multiple of 4/],
      [['similar', 'x', '--frobnicate'], /unknown option --frobnicate/],
    ] as const) {
      const run = io();
      expect(await runCli(args, run.io, m)).toBe(1);
      expect(run.err()).toMatch(message);
      expect(run.err()).toMatch(/usage: qe-flash similar/);
    }
    const help = io();
    expect(await runCli(['--help'], help.io, m)).toBe(0);
    expect(help.out()).toMatch(/--threshold <x>/);
  });

  it('skips hidden and build folders when walking', () => {
    write('walk/src/a.test.ts', "it('a', () => {});\n");
    write('walk/node_modules/x/b.test.js', "it('b', () => {});\n");
    write('walk/.git/c.js', 'x');
    write('walk/README.md', '# no');
    expect(collectFiles([nodePath.join(root, 'walk')])).toEqual([nodePath.join(root, 'walk/src/a.test.ts')]);
  });
});

describe('findDuplicatePairs', () => {
  it('returns nothing for fewer than two cases', () => {
    expect(findDuplicatePairs(m, [])).toEqual([]);
    expect(findDuplicatePairs(m, [{ file: 'a.js', line: 1, name: 'a', source: 'x' }])).toEqual([]);
  });
});
