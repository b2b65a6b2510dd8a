/**
 * qe-flash similar (js/cli.ts, js/test-cases.ts, js/file-walk.ts,
 * js/gitignore.ts, js/duplicate-pairs.ts): finding test files and the test
 * cases in them, walking folders as git would (checked against git itself),
 * reporting planted near-duplicates first with file:line, options, the
 * progress bar, and errors. Every run is given a clock, so the progress bar
 * never appears by accident on a slow machine. The 10,000-case timing is in
 * the benchmark (bench/cli-similar.js, run by make bench).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as nodePath from 'node:path';
import type { QEModule } from '../js/module';
import { CLI_OPTIONS, runCli } from '../js/cli';
import { findDuplicatePairs } from '../js/duplicate-pairs';
import { walkFiles } from '../js/file-walk';
import { compileIgnoreLine, isIgnored } from '../js/gitignore';
import { collectSourceFiles, extractTestCases, isTestFile } from '../js/test-cases';
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

/**
 * Captured output streams. The clock stands still unless one is given: the
 * progress bar appears only after a second of it, so a slow machine cannot
 * put it on stderr.
 */
function io(tty = false, clock: () => number = () => 0) {
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
    expect(lines[0]).toMatch(/^360 test cases in 30 files, 0 non-test files skipped; \d+ pairs? with similarity >= 0\.5/);
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
    expect(none.out()).toMatch(/^3 test cases in 3 files, 0 non-test files skipped; 0 pairs with similarity >= 1\n$/);
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
      [['similar', 'x', '-q'], /unknown option -q/],
      [['similar', 'x', '--top'], /--top needs a value/],
      [['similar', 'x', '--threshold', '-1'], /--threshold needs a value; write --threshold=<value>/],
      [['similar', 'x', '--threshold=-1'], /--threshold must be a number in \(0, 1\], got "-1"/],
      [['similar', 'x', '--json=yes'], /--json takes no value/],
      [['similar', 'x', '--top', '2.5'], /--top must be a positive integer/],
    ] as const) {
      const run = io();
      expect(await runCli(args, run.io, m)).toBe(1);
      expect(run.err()).toMatch(message);
      expect(run.err()).toMatch(/usage: qe-flash similar/);
    }
    // A path that is not a folder's child: unreadable, status 2.
    const file = write('plain.test.js', "it('a', () => {});\n");
    const unreadable = io();
    expect(await runCli(['similar', nodePath.join(file, 'x.js')], unreadable.io, m)).toBe(2);
    expect(unreadable.err()).toMatch(/^qe-flash: cannot read .*plain\.test\.js\/x\.js: ENOTDIR/);
  });

  it('skips hidden and build folders when walking', () => {
    write('walk/src/a.test.ts', "it('a', () => {});\n");
    write('walk/node_modules/x/b.test.js', "it('b', () => {});\n");
    write('walk/.git/c.js', 'x');
    write('walk/README.md', '# no');
    expect(walkFiles([nodePath.join(root, 'walk')])).toEqual([
      { path: nodePath.join(root, 'walk/README.md'), fromFolder: 'walk/README.md' },
      { path: nodePath.join(root, 'walk/src/a.test.ts'), fromFolder: 'walk/src/a.test.ts' },
    ]);
    expect(collectSourceFiles([nodePath.join(root, 'walk')])).toEqual({ files: [nodePath.join(root, 'walk/src/a.test.ts')], skipped: 0 });
  });
});

describe('which files are tests', () => {
  it('follows the naming conventions of each language', () => {
    const tests = [
      'p/cart.test.ts', 'p/cart.spec.js', 'p/cart.test.d.ts', 'p/Cart.spec.tsx', 'p/test_cart.py', 'p/cart_test.py', 'p/cart_test.go',
      'p/CartTest.java', 'p/CartTests.java', 'p/test/helpers.ts', 'p/tests/conftest.py', 'p/src/__tests__/cart.js', 'test/x.js',
      'p/src/test/java/org/x/Cart.java',
    ];
    const others = [
      'p/cart.ts', 'p/testing.ts', 'p/latest.js', 'p/contest.py', 'p/test.py', 'p/cart_test.js', 'p/test_cart.go', 'p/cartTest.ts',
      'p/CartTesting.java', 'p/attest/x.ts', 'p/testdata/x.go', 'p/tested/x.ts', 'p/src/spec.js',
    ];
    expect(tests.filter((f) => !isTestFile(f))).toEqual([]);
    expect(others.filter((f) => isTestFile(f))).toEqual([]);
  });

  it('reports only test cases by default, every file with --all-files, and says how many files it skipped', async () => {
    // Two source files alike but for their strings (as zod's locales/de.ts and hu.ts), and tests in four languages.
    const locale = (word: string) => `export const messages = {\n  required: '${word}',\n  tooSmall: (n: number) => \`${word} \${n}\`,\n  tooBig: (n: number) => \`${word}! \${n}\`,\n};\n`;
    write('mixed/src/locales/de.ts', locale('Pflichtfeld'));
    write('mixed/src/locales/hu.ts', locale('Kötelező'));
    write('mixed/src/cart.ts', 'export function add(a: number, b: number): number {\n  return a + b;\n}\n');
    write('mixed/src/cart.test.ts', "it('adds', () => {\n  expect(add(1, 2)).toBe(3);\n});\nit('adds zero', () => {\n  expect(add(0, 2)).toBe(2);\n});\n");
    write('mixed/py/cart.py', 'def add(a, b):\n    return a + b\n');
    write('mixed/py/test_cart.py', 'def test_add():\n    assert add(1, 2) == 3\n');
    write('mixed/go/cart.go', 'package cart\n\nfunc Add(a, b int) int { return a + b }\n');
    write('mixed/go/cart_test.go', 'package cart\n\nfunc TestAdd(t *testing.T) {\n\tif Add(1, 2) != 3 { t.Fail() }\n}\n');
    write('mixed/java/Cart.java', 'class Cart { int add(int a, int b) { return a + b; } }\n');
    write('mixed/java/CartTest.java', 'class CartTest {\n  @Test\n  void adds() { assertEquals(3, new Cart().add(1, 2)); }\n}\n');
    const dir = nodePath.join(root, 'mixed');
    const tests = ['src/cart.test.ts', 'py/test_cart.py', 'go/cart_test.go', 'java/CartTest.java'].map((f) => nodePath.join(dir, f)).sort();

    const run = io();
    expect(await runCli(['similar', dir, '--json', '--threshold', '0.05', '--top', '1000'], run.io, m)).toBe(0);
    const report = JSON.parse(run.out());
    expect(report).toMatchObject({ files: 4, skippedNonTestFiles: 6, allFiles: false, cases: 5 });
    const seen = new Set<string>(report.pairs.flatMap((p: { a: { file: string }; b: { file: string } }) => [p.a.file, p.b.file]));
    expect([...seen].filter((f) => !tests.includes(f))).toEqual([]);
    const text = io();
    expect(await runCli(['similar', dir], text.io, m)).toBe(0);
    expect(text.out()).toMatch(/^5 test cases in 4 files, 6 non-test files skipped; /);

    const all = io();
    expect(await runCli(['similar', dir, '--all-files', '--json', '--threshold', '0.5'], all.io, m)).toBe(0);
    const everything = JSON.parse(all.out());
    expect(everything).toMatchObject({ files: 10, skippedNonTestFiles: 0, allFiles: true, cases: 11 });
    const localePair = everything.pairs.find((p: { a: { file: string }; b: { file: string } }) => p.a.file.endsWith('de.ts') && p.b.file.endsWith('hu.ts'));
    // The two translations share every name and differ in every literal, which the weighting counts: similar, not the same.
    expect(localePair?.score).toBeGreaterThan(0.5);
    expect(localePair?.score).toBeLessThan(0.95);
    const allText = io();
    expect(await runCli(['similar', dir, '--all-files'], allText.io, m)).toBe(0);
    expect(allText.out()).toMatch(/^11 test cases in 10 files; /);

    // A file named on the command line is read whatever its name.
    const named = io();
    expect(await runCli(['similar', nodePath.join(dir, 'src/cart.ts'), nodePath.join(dir, 'go'), '--json'], named.io, m)).toBe(0);
    expect(JSON.parse(named.out())).toMatchObject({ files: 2, skippedNonTestFiles: 1, cases: 2 });
  });
});

describe('.gitignore', () => {
  /** Files under dir that git would add: untracked and not ignored, "/"-separated and relative, sorted. */
  function gitSees(dir: string): string[] {
    const env = { ...process.env, GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_NOSYSTEM: '1' };
    const out = execFileSync('git', ['-c', 'core.excludesFile=', 'ls-files', '--others', '--exclude-standard', '-z'], { cwd: dir, env, encoding: 'utf8' });
    return out.split('\0').filter((f) => f !== '').sort();
  }
  const walked = (dir: string): string[] =>
    walkFiles([dir]).map((f) => nodePath.relative(dir, f.path).split(nodePath.sep).join('/')).sort();

  it('leaves out what git leaves out, on nested files with negation, folder-only, anchored and ** patterns', () => {
    const repo = nodePath.join(root, 'repo');
    fs.mkdirSync(repo, { recursive: true });
    execFileSync('git', ['init', '-q'], { cwd: repo });
    const ignore = (rel: string, lines: string[]) => write(`repo/${rel}`, `${lines.join('\n')}\n`);
    ignore('.gitignore', [
      '# comment', '', '*.log', '!keep.log', 'out/', '/rooted.js', 'docs/*.md', 'a/**/z.js', '**/gen', 'cache/',
      'deep/**', '!deep/x.js', '\\#hash.js', 'spaced.js   ', 'f?o.js', '[ab]c.js', '[!x]y.js', 'lib/inner/', 'skip-me', '\\!bang.js',
    ]);
    ignore('sub/.gitignore', ['!*.log', 'local.js', '/anchored.js', 'out/keep/', 'inner']);
    ignore('sub/more/.gitignore', ['*.js', '!wanted.js']);
    write('repo/.git/info/exclude', 'excluded-by-info.js\n');
    const files = [
      'a.js', 'x.log', 'keep.log', 'out/a.js', 'src/out/b.js', 'rooted.js', 'src/rooted.js', 'docs/a.md', 'docs/sub/b.md', 'src/docs/c.md',
      'a/z.js', 'a/b/z.js', 'a/b/c/z.js', 'b/a/z.js', 'gen/x.js', 'src/gen/y.js', 'src/gen', 'cache', 'x/cache/y.js', 'deep/x.js', 'deep/y.js',
      '#hash.js', 'spaced.js', 'foo.js', 'fxo.js', 'fo.js', 'ac.js', 'bc.js', 'cc.js', 'ay.js', 'xy.js', 'lib/inner/a.js', 'lib/inner.js',
      'skip-me/a.js', 'src/skip-me', '!bang.js', 'excluded-by-info.js',
      'sub/x.log', 'sub/local.js', 'sub/deeper/local.js', 'sub/anchored.js', 'sub/deeper/anchored.js', 'sub/out/keep/a.js',
      'sub/inner/a.js', 'sub/more/a.js', 'sub/more/wanted.js', 'sub/more/a.ts', 'sub/more/deeper/b.js',
    ];
    for (const f of files) {
      if (f === 'src/gen') continue; // a folder above, would clash
      write(`repo/${f}`, `// ${f}\n`);
    }
    const expected = gitSees(repo).filter((f) => !f.startsWith('.git') && !f.endsWith('.gitignore'));
    expect(expected.length).toBeGreaterThan(15); // the fixture leaves plenty in
    expect(expected.length).toBeLessThan(files.length - 15); // and plenty out
    expect(walked(repo).filter((f) => !f.endsWith('.gitignore'))).toEqual(expected);
    // From a folder inside the repository, the outer .gitignore files still apply.
    const sub = nodePath.join(repo, 'sub');
    expect(walked(sub).filter((f) => !f.endsWith('.gitignore'))).toEqual(gitSees(sub).filter((f) => !f.endsWith('.gitignore')));
    // --no-ignore: every file.
    expect(walkFiles([repo], { gitignore: false }).length).toBe(files.length - 1 + 3);
  });

  it('compiles single lines as git reads them', () => {
    const matches = (line: string, path: string, dir = false) => {
      const rule = compileIgnoreLine(line, '');
      return rule === null ? null : isIgnored([rule], path, dir);
    };
    expect(matches('# c', 'x')).toBeNull();
    expect(matches('   ', 'x')).toBeNull();
    expect(matches('trailing\\', 'trailing')).toBeNull();
    expect(matches('*.js', 'a/b/c.js')).toBe(true);
    expect(matches('/c.js', 'a/c.js')).toBe(false);
    expect(matches('a/c.js', 'x/a/c.js')).toBe(false);
    expect(matches('build/', 'build')).toBe(false);
    expect(matches('build/', 'build', true)).toBe(true);
    expect(matches('**', 'any/thing')).toBe(true);
    expect(matches('a/**', 'a')).toBe(false);
    expect(matches('a/**', 'a/b/c')).toBe(true);
    expect(matches('a/**/b', 'a/b')).toBe(true);
    expect(matches('a/**/b', 'a/x/y/b')).toBe(true);
    expect(matches('a/**/b', 'ab/b')).toBe(false);
    expect(matches('*', 'a/b')).toBe(true); // matches at every level
    expect(matches('a*b', 'a/b')).toBe(false); // * does not cross a slash
    expect(matches('[a-c]x', 'bx')).toBe(true);
    expect(matches('[!a-c]x', 'bx')).toBe(false);
    expect(matches('[!a-c]x', 'dx')).toBe(true);
    expect(matches('[x', '[x')).toBe(true);
    expect(matches('esc\\ ', 'esc ')).toBe(true);
    expect(compileIgnoreLine('!x', '')?.negate).toBe(true);
  });
});

describe('qe-flash basics', () => {
  it('prints the package version with --version and -v', async () => {
    const pkg = JSON.parse(fs.readFileSync(nodePath.join(__dirname, '..', 'package.json'), 'utf8'));
    for (const flag of ['--version', '-v']) {
      const run = io();
      expect(await runCli([flag], run.io, m)).toBe(0);
      expect(run.out()).toBe(`${pkg.version}\n`);
      expect(run.err()).toBe('');
    }
  });

  it('lists every flag, examples and the exit codes in --help', async () => {
    for (const args of [['--help'], ['-h'], ['similar', '--help'], ['help']]) {
      const run = io();
      expect(await runCli(args, run.io, m)).toBe(0);
      const help = run.out();
      for (const [name, o] of Object.entries(CLI_OPTIONS)) {
        expect(help).toMatch(new RegExp(`^  ${o.short !== undefined ? `-${o.short}, ` : ''}--${name}\\b.*\\S`, 'm'));
      }
      expect(help).toMatch(/^examples:\n  qe-flash similar \S+/m);
      expect(help).toMatch(/exit status: 0 when the search ran, whether or not pairs were found; 1 on a usage\nerror; 2 when a path is missing or unreadable/);
    }
    expect(Object.keys(CLI_OPTIONS).sort()).toEqual(['all-files', 'dim', 'help', 'json', 'min-distinct', 'neighbors', 'no-ignore', 'threshold', 'top', 'version']);
  });

  it('reads files that .gitignore excludes with --no-ignore', async () => {
    write('ign/.gitignore', 'generated/\n');
    write('ign/a.test.js', "it('a', () => { expect(add(1, 1)).toBe(2); });\n");
    write('ign/generated/b.test.js', "it('a', () => { expect(add(1, 1)).toBe(2); });\n");
    const dir = nodePath.join(root, 'ign');
    const plain = io();
    expect(await runCli(['similar', dir, '--json'], plain.io, m)).toBe(0);
    expect(JSON.parse(plain.out())).toMatchObject({ files: 1, cases: 1, found: 0 });
    const noIgnore = io();
    expect(await runCli(['similar', dir, '--json', '--no-ignore'], noIgnore.io, m)).toBe(0);
    expect(JSON.parse(noIgnore.out())).toMatchObject({ files: 2, cases: 2, found: 1 });
  });
});
describe('findDuplicatePairs', () => {
  it('returns nothing for fewer than two cases', () => {
    expect(findDuplicatePairs(m, [])).toEqual([]);
    expect(findDuplicatePairs(m, [{ file: 'a.js', line: 1, name: 'a', source: 'x' }])).toEqual([]);
  });
});
