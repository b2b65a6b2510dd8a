#!/usr/bin/env node
/**
 * qe-flash, the command-line tool.
 *
 *   qe-flash similar <paths...> [--threshold 0.9] [--top 20] [--json]
 *
 * Finds the test cases under the paths (files, or folders searched
 * recursively): JavaScript and TypeScript it(...) and test(...) calls,
 * Python `def test_*` functions, Java @Test methods and Go `func TestXxx`
 * functions; a file with none of these is one case. Each case is embedded
 * (js/code-embedding.ts, form 2), all of them go into one resident
 * similarity index (js/similarity.ts), and every case is searched against
 * it. Pairs at or above the threshold are reported best first, with
 * file:line for both sides and the cosine score.
 *
 * Exit status: 0 when the search ran (whether or not pairs were found),
 * 1 for a usage error, 2 for a missing or unreadable path.
 */
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { embedSource } from './code-embedding';
import { loadQEModule, type QEModule } from './module';
import { createSimilarityIndex } from './similarity';
import { tokenizeCode, type CodeLanguage, type CodeToken } from './tokenizer';

/** One test case found in a file. */
export interface TestCase {
  file: string;
  /** 1-based line where the case starts. */
  line: number;
  /** The test's name (the first string argument, or the function name); the file name for a whole-file case. */
  name: string;
  source: string;
}

export interface DuplicatePair {
  score: number;
  a: TestCase;
  b: TestCase;
}

export interface SimilarOptions {
  /** Report pairs with cosine at or above this; default 0.9. */
  threshold?: number;
  /** Report at most this many pairs; default 20. */
  top?: number;
  /** Nearest neighbours considered per case; default 10. */
  neighbors?: number;
  /**
   * Embedding length; default 128, a quarter of the code-embedding preset:
   * enough to tell near-duplicates from the rest, and 10,000 cases embed in
   * about 10 s on one core (256 takes about twice as long).
   */
  dim?: number;
  /** Called as work progresses: phase, done, total. */
  onProgress?: (phase: string, done: number, total: number) => void;
}

export const DEFAULT_THRESHOLD = 0.9;
export const DEFAULT_TOP = 20;
export const DEFAULT_NEIGHBORS = 10;
export const DEFAULT_CLI_DIM = 128;

const LANGUAGE_BY_EXTENSION: Readonly<Record<string, CodeLanguage>> = {
  '.js': 'javascript', '.jsx': 'javascript', '.mjs': 'javascript', '.cjs': 'javascript',
  '.ts': 'typescript', '.tsx': 'typescript', '.mts': 'typescript', '.cts': 'typescript',
  '.py': 'python', '.java': 'java', '.go': 'go',
};
const SKIPPED_FOLDERS = new Set(['node_modules', 'dist', 'build', 'coverage', '__pycache__', 'vendor', 'target']);

// ---------------------------------------------------------------------------
// Finding test cases

/** Index of the token closing the bracket opened at tokens[open] (same kind of bracket), or -1. */
function matchingBracket(tokens: readonly CodeToken[], open: number): number {
  const opener = tokens[open].text;
  const closer = opener === '(' ? ')' : opener === '{' ? '}' : ']';
  let depth = 0;
  for (let i = open; i < tokens.length; i++) {
    const t = tokens[i];
    if (t.kind !== 'punctuation') continue;
    if (t.text === opener) depth++;
    else if (t.text === closer && --depth === 0) return i;
  }
  return -1;
}

const lexeme = (source: string, t: CodeToken): string => source.slice(t.start, t.end);

function caseOf(file: string, source: string, first: CodeToken, last: CodeToken, name: string): TestCase {
  return { file, line: first.line, name, source: source.slice(first.start, last.end) };
}

/** it(...), test(...), it.only(...), test.each(table)(...): the whole call. */
function javascriptCases(file: string, source: string, tokens: readonly CodeToken[]): TestCase[] {
  const cases: TestCase[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (t.kind !== 'identifier' || (lexeme(source, t) !== 'it' && lexeme(source, t) !== 'test')) continue;
    if (i > 0 && tokens[i - 1].text === '.') continue; // foo.test(...), /re/.test(...)
    let j = i + 1;
    // Modifiers: .only, .skip, .concurrent, .each(table) or .each`table`.
    while (j > 0 && tokens[j]?.text === '.' && tokens[j + 1]?.kind === 'identifier') {
      const word = lexeme(source, tokens[j + 1]);
      j += 2;
      if (word === 'each' && tokens[j]?.text === '(') j = matchingBracket(tokens, j) + 1;
      else if (word === 'each' && tokens[j]?.kind === 'string') j++;
    }
    if (j <= 0 || tokens[j]?.text !== '(') continue;
    const close = matchingBracket(tokens, j);
    if (close < 0) continue;
    const nameToken = tokens[j + 1];
    const name = nameToken?.kind === 'string' ? lexeme(source, nameToken).slice(1, -1) : lexeme(source, t);
    cases.push(caseOf(file, source, t, tokens[close], name));
    i = close; // cases do not nest
  }
  return cases;
}

/** `def test_*` (and async def) at any indentation: the def line and the lines indented under it. */
function pythonCases(file: string, source: string): TestCase[] {
  const lines = source.split('\n');
  const cases: TestCase[] = [];
  const indentOf = (s: string): number => s.length - s.trimStart().length;
  let offset = 0;
  const starts: number[] = [];
  for (const l of lines) {
    starts.push(offset);
    offset += l.length + 1;
  }
  for (let i = 0; i < lines.length; i++) {
    const m = /^(\s*)(?:async\s+)?def\s+(test\w*)\s*\(/.exec(lines[i]);
    if (m === null) continue;
    const indent = m[1].length;
    let end = i;
    for (let j = i + 1; j < lines.length; j++) {
      const l = lines[j];
      if (l.trim() === '') continue;
      if (indentOf(l) <= indent) break;
      end = j;
    }
    cases.push({ file, line: i + 1, name: m[2], source: source.slice(starts[i], starts[end] + lines[end].length) });
    i = end;
  }
  return cases;
}

/** Java @Test methods: from the annotation to the method's closing brace. */
function javaCases(file: string, source: string, tokens: readonly CodeToken[]): TestCase[] {
  const cases: TestCase[] = [];
  for (let i = 0; i + 1 < tokens.length; i++) {
    if (tokens[i].text !== '@' || lexeme(source, tokens[i + 1]) !== 'Test') continue;
    let j = i + 2;
    let name = 'test';
    while (j < tokens.length && tokens[j].text !== '{' && tokens[j].text !== ';') {
      if (tokens[j].text === '(' && tokens[j - 1].kind === 'identifier') name = lexeme(source, tokens[j - 1]);
      j++;
    }
    if (tokens[j]?.text !== '{') continue;
    const close = matchingBracket(tokens, j);
    if (close < 0) continue;
    cases.push(caseOf(file, source, tokens[i], tokens[close], name));
    i = close;
  }
  return cases;
}

/** Go `func TestXxx(...)`: the whole function. */
function goCases(file: string, source: string, tokens: readonly CodeToken[]): TestCase[] {
  const cases: TestCase[] = [];
  for (let i = 0; i + 2 < tokens.length; i++) {
    if (tokens[i].text !== 'func' || tokens[i].kind !== 'keyword') continue;
    const name = lexeme(source, tokens[i + 1]);
    if (!/^Test[A-Z0-9_]?/.test(name) || tokens[i + 1].kind !== 'identifier') continue;
    let j = i + 1;
    while (j < tokens.length && tokens[j].text !== '(') j++;
    const params = j < tokens.length ? matchingBracket(tokens, j) : -1;
    if (params < 0) continue;
    j = params + 1;
    while (j < tokens.length && tokens[j].text !== '{') j++;
    if (j >= tokens.length) continue;
    const close = matchingBracket(tokens, j);
    if (close < 0) continue;
    cases.push(caseOf(file, source, tokens[i], tokens[close], name));
    i = close;
  }
  return cases;
}

/** The test cases of one file; the whole file when none is found. */
export function extractTestCases(source: string, file: string): TestCase[] {
  const language = LANGUAGE_BY_EXTENSION[nodePath.extname(file).toLowerCase()];
  let cases: TestCase[] = [];
  if (language === 'python') {
    cases = pythonCases(file, source);
  } else if (language !== undefined) {
    const tokens = tokenizeCode(source, { language });
    if (language === 'java') cases = javaCases(file, source, tokens);
    else if (language === 'go') cases = goCases(file, source, tokens);
    else cases = javascriptCases(file, source, tokens);
  }
  if (cases.length === 0 && source.trim() !== '') cases = [{ file, line: 1, name: nodePath.basename(file), source }];
  return cases;
}

// ---------------------------------------------------------------------------
// Files

/** A path the user named that cannot be used. */
export class PathError extends Error {}

/** The files under the given paths: named files as they are, folders searched for source files (hidden and build folders skipped), sorted. */
export function collectFiles(paths: readonly string[]): string[] {
  const files = new Set<string>();
  const walk = (dir: string): void => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch (error) {
      throw new PathError(`cannot read the folder ${dir}: ${(error as Error).message}`);
    }
    for (const entry of entries) {
      const full = nodePath.join(dir, entry.name);
      if (entry.isDirectory()) {
        if (!entry.name.startsWith('.') && !SKIPPED_FOLDERS.has(entry.name)) walk(full);
      } else if (entry.isFile() && LANGUAGE_BY_EXTENSION[nodePath.extname(entry.name).toLowerCase()] !== undefined) {
        files.add(full);
      }
    }
  };
  for (const p of paths) {
    let stat: fs.Stats;
    try {
      stat = fs.statSync(p);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new PathError(code === 'ENOENT' ? `no such file or folder: ${p}` : `cannot read ${p}: ${(error as Error).message}`);
    }
    if (stat.isDirectory()) walk(p);
    else files.add(p);
  }
  return [...files].sort();
}

function readSource(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (error) {
    throw new PathError(`cannot read ${file}: ${(error as Error).message}`);
  }
}

// ---------------------------------------------------------------------------
// The search

/**
 * Near-duplicate pairs among the cases: each case's `neighbors` nearest by
 * cosine of their embeddings, kept when at or above the threshold, best
 * first (ties by the earlier pair), at most `top`.
 */
export function findDuplicatePairs(module: QEModule, cases: readonly TestCase[], options: SimilarOptions = {}): DuplicatePair[] {
  const threshold = options.threshold ?? DEFAULT_THRESHOLD;
  const top = options.top ?? DEFAULT_TOP;
  const neighbors = options.neighbors ?? DEFAULT_NEIGHBORS;
  const dim = options.dim ?? DEFAULT_CLI_DIM;
  const progress = options.onProgress ?? (() => undefined);
  const n = cases.length;
  if (n < 2) return [];
  const embeddings = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    const language = LANGUAGE_BY_EXTENSION[nodePath.extname(cases[i].file).toLowerCase()];
    embeddings.set(embedSource(module, cases[i].source, { dim, language: language ?? 'auto' }), i * dim);
    if ((i & 63) === 63 || i === n - 1) progress('embedding', i + 1, n);
  }
  const index = createSimilarityIndex(module, dim);
  try {
    index.add(embeddings);
    const best = new Map<number, number>(); // a * n + b (a < b) -> score
    const k = Math.min(n, neighbors + 1);
    const chunk = 256;
    for (let q0 = 0; q0 < n; q0 += chunk) {
      const q1 = Math.min(n, q0 + chunk);
      const results = index.searchBatch(embeddings.subarray(q0 * dim, q1 * dim), k);
      results.forEach((row, r) => {
        const i = q0 + r;
        for (const { id: j, similarity } of row) {
          if (j === i || similarity < threshold) continue;
          const key = Math.min(i, j) * n + Math.max(i, j);
          const seen = best.get(key);
          if (seen === undefined || similarity > seen) best.set(key, similarity);
        }
      });
      progress('searching', q1, n);
    }
    return [...best.entries()]
      .sort((x, y) => y[1] - x[1] || x[0] - y[0])
      .slice(0, top)
      .map(([key, score]) => ({ score, a: cases[Math.floor(key / n)], b: cases[key % n] }));
  } finally {
    index.dispose();
  }
}

// ---------------------------------------------------------------------------
// The command line

export interface CliIO {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown; isTTY?: boolean };
  /** Milliseconds; default performance.now. */
  now?: () => number;
}

const USAGE = `usage: qe-flash similar <paths...> [options]

Finds near-duplicate test cases under the paths (files or folders):
JS/TS it()/test() blocks, Python def test_*, Java @Test methods, Go func
TestXxx; any other file is one case. Reports pairs best first with
file:line for both sides and their cosine similarity.

options:
  --threshold <x>   report pairs with similarity >= x, in (0, 1] (default ${DEFAULT_THRESHOLD})
  --top <n>         report at most n pairs (default ${DEFAULT_TOP})
  --json            print JSON instead of text
  --neighbors <n>   nearest cases considered per case (default ${DEFAULT_NEIGHBORS})
  --dim <n>         embedding length (default ${DEFAULT_CLI_DIM}; a multiple of 4)
  -h, --help        print this help
`;

class UsageError extends Error {}

interface ParsedArgs {
  paths: string[];
  threshold: number;
  top: number;
  neighbors: number;
  dim: number;
  json: boolean;
}

function parseArgs(argv: readonly string[]): ParsedArgs | 'help' {
  const args = [...argv];
  if (args.length === 0) throw new UsageError('no command given');
  if (args[0] === '-h' || args[0] === '--help') return 'help';
  const command = args.shift();
  if (command !== 'similar') throw new UsageError(`unknown command ${JSON.stringify(command)}; the command is 'similar'`);
  const parsed: ParsedArgs = { paths: [], threshold: DEFAULT_THRESHOLD, top: DEFAULT_TOP, neighbors: DEFAULT_NEIGHBORS, dim: DEFAULT_CLI_DIM, json: false };
  const number = (flag: string, text: string | undefined, integer: boolean, ok: (x: number) => boolean, range: string): number => {
    if (text === undefined) throw new UsageError(`${flag} needs a value`);
    const x = Number(text);
    if (text.trim() === '' || !Number.isFinite(x) || (integer && !Number.isInteger(x)) || !ok(x)) {
      throw new UsageError(`${flag} must be ${range}, got ${JSON.stringify(text)}`);
    }
    return x;
  };
  while (args.length > 0) {
    const arg = args.shift() as string;
    if (arg === '-h' || arg === '--help') return 'help';
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const value = (): string | undefined => (eq > 0 ? arg.slice(eq + 1) : args.shift());
    switch (flag) {
      case '--threshold':
        parsed.threshold = number(flag, value(), false, (x) => x > 0 && x <= 1, 'a number in (0, 1]');
        break;
      case '--top':
        parsed.top = number(flag, value(), true, (x) => x >= 1, 'a positive integer');
        break;
      case '--neighbors':
        parsed.neighbors = number(flag, value(), true, (x) => x >= 1, 'a positive integer');
        break;
      case '--dim':
        parsed.dim = number(flag, value(), true, (x) => x >= 4 && x % 4 === 0 && x <= 4096, 'a multiple of 4 in [4, 4096]');
        break;
      case '--json':
        if (eq > 0) throw new UsageError('--json takes no value');
        parsed.json = true;
        break;
      case '--':
        parsed.paths.push(...args.splice(0));
        break;
      default:
        if (arg.startsWith('-') && arg !== '-') throw new UsageError(`unknown option ${arg}`);
        parsed.paths.push(arg);
    }
  }
  if (parsed.paths.length === 0) throw new UsageError('similar needs at least one path');
  return parsed;
}

/** A progress bar on stderr, shown only once the job has run for a second. */
class ProgressBar {
  private shown = false;
  private lastPercent = -1;

  constructor(private readonly stderr: CliIO['stderr'], private readonly now: () => number, private readonly started: number) {}

  update(phase: string, done: number, total: number): void {
    if (this.now() - this.started < 1000) return;
    const percent = Math.floor((100 * done) / total);
    const tty = this.stderr.isTTY === true;
    // Without a terminal, one line per 10% rather than a redrawn bar.
    if (!tty && Math.floor(percent / 10) === Math.floor(this.lastPercent / 10) && done !== total) return;
    if (tty && percent === this.lastPercent && done !== total) return;
    this.lastPercent = percent;
    const width = 30;
    const filled = Math.round((width * done) / total);
    const bar = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${String(percent).padStart(3)}% ${phase} ${done}/${total}`;
    this.stderr.write(tty ? `\r${bar}` : `${bar}\n`);
    this.shown = true;
  }

  finish(): void {
    if (this.shown && this.stderr.isTTY === true) this.stderr.write('\n');
  }
}

function formatText(pairs: readonly DuplicatePair[], cases: number, files: number, threshold: number, found: number): string {
  const where = (c: TestCase): string => `${c.file}:${c.line}`;
  const lines = [`${cases} test cases in ${files} files; ${found} pairs with similarity >= ${threshold}${found > pairs.length ? ` (showing the best ${pairs.length})` : ''}`];
  for (const p of pairs) {
    lines.push(`${p.score.toFixed(4)}  ${where(p.a)}  ${JSON.stringify(p.a.name)}`);
    lines.push(`        ${where(p.b)}  ${JSON.stringify(p.b.name)}`);
  }
  return `${lines.join('\n')}\n`;
}

/**
 * Runs the command line (arguments after the program name); returns the
 * exit status. The module is loaded on first use unless given.
 */
export async function runCli(argv: readonly string[], io: CliIO, module?: QEModule): Promise<number> {
  const now = io.now ?? (() => performance.now());
  const started = now();
  let args: ParsedArgs | 'help';
  try {
    args = parseArgs(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.stderr.write(`qe-flash: ${error.message}\n\n${USAGE}`);
    return 1;
  }
  if (args === 'help') {
    io.stdout.write(USAGE);
    return 0;
  }
  const progress = new ProgressBar(io.stderr, now, started);
  try {
    const files = collectFiles(args.paths);
    const cases: TestCase[] = [];
    files.forEach((file, i) => {
      cases.push(...extractTestCases(readSource(file), file));
      if ((i & 63) === 63 || i === files.length - 1) progress.update('reading', i + 1, files.length);
    });
    const m = module ?? (await loadQEModule());
    // Every pair above the threshold, so the summary can count them; the output keeps the best `top`.
    const all = findDuplicatePairs(m, cases, {
      threshold: args.threshold,
      top: Number.MAX_SAFE_INTEGER,
      neighbors: args.neighbors,
      dim: args.dim,
      onProgress: (phase, done, total) => progress.update(phase, done, total),
    });
    progress.finish();
    const pairs = all.slice(0, args.top);
    if (args.json) {
      const side = (c: TestCase) => ({ file: c.file, line: c.line, name: c.name });
      io.stdout.write(`${JSON.stringify({
        threshold: args.threshold,
        files: files.length,
        cases: cases.length,
        found: all.length,
        pairs: pairs.map((p) => ({ score: p.score, a: side(p.a), b: side(p.b) })),
      }, null, 2)}\n`);
    } else {
      io.stdout.write(formatText(pairs, cases.length, files.length, args.threshold, all.length));
    }
    return 0;
  } catch (error) {
    progress.finish();
    if (error instanceof PathError) {
      io.stderr.write(`qe-flash: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
}

if (require.main === module) {
  runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr }).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`qe-flash: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
