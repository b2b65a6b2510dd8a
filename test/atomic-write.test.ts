/**
 * Every file the project writes for someone to read later (bench/results/*,
 * README.md's generated sections, the benchmark's exports, saved indexes,
 * the build's generated sources) goes through a temporary file and a
 * rename. Checked by making a write die half-way, as a killed process
 * would: the target keeps its old content whole, and no temporary file is
 * left; a write that goes through leaves the whole new content.
 */
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { writeBytesAtomic, writeFileAtomicSync, writeTextFile } from '../js/platform';

// The module object itself (not an import's copy), so a spy on it is seen by every writer.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const fs = require('node:fs') as typeof import('node:fs');

// eslint-disable-next-line @typescript-eslint/no-require-imports
const benchFiles = require('../bench/write-results') as {
  writeFileAtomicSync(path: string, data: string | Uint8Array): void;
  writeResultFiles(dir: string, files: Record<string, string | Uint8Array>): void;
  replaceMarkedSection(file: string, start: string, end: string, body: string): boolean;
};
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { replaceFileSync } = require('../scripts/replace-file') as { replaceFileSync(file: string, text: string): boolean };

const ROOT = resolve(__dirname, '..');
let dir = '';
beforeEach(() => {
  dir = fs.mkdtempSync(join(tmpdir(), 'qe-atomic-'));
});
afterEach(() => {
  jest.restoreAllMocks();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** From now on every fs.writeFileSync writes the first half of its data, then throws (a crash mid-write). */
function crashMidWrite(): void {
  const real = fs.writeFileSync;
  jest.spyOn(fs, 'writeFileSync').mockImplementation(((file: import('node:fs').PathOrFileDescriptor, data: string | NodeJS.ArrayBufferView) => {
    const bytes = typeof data === 'string' ? Buffer.from(data) : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    real(file, bytes.subarray(0, bytes.length >> 1));
    throw new Error('simulated crash mid-write');
  }) as typeof fs.writeFileSync);
}

const OLD = 'old content, whole\n'.repeat(50);
const NEW = 'new content, whole\n'.repeat(80);

/** The writers, each given a file in `dir` to replace with `text`. */
const WRITERS: [string, (file: string, text: string) => unknown][] = [
  ['writeFileAtomicSync (js/platform.ts)', (file, text) => writeFileAtomicSync(file, text)],
  ['writeFileAtomicSync with bytes', (file, text) => writeFileAtomicSync(file, new TextEncoder().encode(text))],
  ['bench: writeResultFiles (bench/results/*)', (file, text) => benchFiles.writeResultFiles(join(file, '..'), { [file.split('/').pop() as string]: text })],
  ['scripts: replaceFileSync (js/c-api.ts, js/worker-source.ts)', (file, text) => replaceFileSync(file, text)],
];

describe.each(WRITERS)('%s', (_name, write) => {
  test('a write that goes through: the whole new content, no temporary file', () => {
    const file = join(dir, 'target.txt');
    fs.writeFileSync(file, OLD);
    write(file, NEW);
    expect(fs.readFileSync(file, 'utf8')).toBe(NEW);
    expect(fs.readdirSync(dir)).toEqual(['target.txt']);
    // A new file too.
    write(join(dir, 'fresh.txt'), 'x');
    expect(fs.readFileSync(join(dir, 'fresh.txt'), 'utf8')).toBe('x');
    expect(fs.readdirSync(dir).sort()).toEqual(['fresh.txt', 'target.txt']);
  });

  test('a write that dies half-way: the old content whole, no temporary file', () => {
    const file = join(dir, 'target.txt');
    fs.writeFileSync(file, OLD);
    crashMidWrite();
    expect(() => write(file, NEW)).toThrow('simulated crash mid-write');
    jest.restoreAllMocks();
    expect(fs.readFileSync(file, 'utf8')).toBe(OLD);
    expect(fs.readdirSync(dir)).toEqual(['target.txt']);
  });
});

test('the async forms (saveTo of indexes and adapters, the Markdown export) go the same way', async () => {
  const file = join(dir, 'target.bin');
  fs.writeFileSync(file, OLD);
  crashMidWrite();
  await expect(writeBytesAtomic(file, new TextEncoder().encode(NEW))).rejects.toThrow('simulated crash mid-write');
  await expect(writeTextFile(file, NEW)).rejects.toThrow('simulated crash mid-write');
  jest.restoreAllMocks();
  expect(fs.readFileSync(file, 'utf8')).toBe(OLD);
  expect(fs.readdirSync(dir)).toEqual(['target.bin']);
  await writeTextFile(file, NEW);
  expect(fs.readFileSync(file, 'utf8')).toBe(NEW);
});

describe('replaceMarkedSection (README.md between the bench and matrix markers)', () => {
  const START = '<!-- bench:start -->';
  const END = '<!-- bench:end -->';
  const README = `# title\n\nintro\n\n${START}\nold table\n${END}\n\n## after\ntext\n`;

  test('replaces only what lies between the markers', () => {
    const file = join(dir, 'README.md');
    fs.writeFileSync(file, README);
    expect(benchFiles.replaceMarkedSection(file, START, END, 'new | table')).toBe(true);
    expect(fs.readFileSync(file, 'utf8')).toBe(`# title\n\nintro\n\n${START}\nnew | table\n${END}\n\n## after\ntext\n`);
    expect(fs.readdirSync(dir)).toEqual(['README.md']);
  });

  test('markers missing or out of order: false, the file untouched', () => {
    const file = join(dir, 'README.md');
    for (const text of ['# no markers\n', `${END}\n${START}\n`, `${START}\nonly a start\n`]) {
      fs.writeFileSync(file, text);
      expect(benchFiles.replaceMarkedSection(file, START, END, 'x')).toBe(false);
      expect(fs.readFileSync(file, 'utf8')).toBe(text);
    }
  });

  test('a rewrite that dies half-way leaves the README whole', () => {
    const file = join(dir, 'README.md');
    fs.writeFileSync(file, README);
    crashMidWrite();
    expect(() => benchFiles.replaceMarkedSection(file, START, END, 'new | table')).toThrow('simulated crash mid-write');
    jest.restoreAllMocks();
    expect(fs.readFileSync(file, 'utf8')).toBe(README);
    expect(fs.readdirSync(dir)).toEqual(['README.md']);
  });
});

test('bench/results/* and README.md are written only through those helpers', () => {
  // Direct writes left, each with why it needs no rename: the duplicate
  // finder's generated suites go into a fresh temporary folder no later run
  // reads, and build-esm.js writes dist/, which make rebuilds whole unless
  // the stamp written after it (build/dist.stamp) says it finished.
  const allowed = new Set(['bench/test-suite-generator.js', 'scripts/build-esm.js', 'scripts/replace-file.js', 'js/platform.ts']);
  const files = [
    ...['bench', 'bench/browser', 'scripts'].flatMap((d) => fs.readdirSync(join(ROOT, d)).filter((f) => /\.(c?js|mjs)$/.test(f)).map((f) => `${d}/${f}`)),
    ...fs.readdirSync(join(ROOT, 'js')).filter((f) => f.endsWith('.ts')).map((f) => `js/${f}`),
  ];
  const direct = files.filter((f) => !allowed.has(f) && /\b(writeFileSync|writeFile|appendFileSync|createWriteStream)\s*\(/.test(fs.readFileSync(join(ROOT, f), 'utf8')));
  expect(direct).toEqual([]);
});
