#!/usr/bin/env node
/**
 * qe-flash, the command-line tool: argument parsing, output and exit
 * status. Which files are tests and the cases inside them are in
 * js/test-cases.ts, folder walking in js/file-walk.ts, the pair search in
 * js/duplicate-pairs.ts.
 *
 *   qe-flash similar <paths...> [options]      qe-flash --help | --version
 *   qe-flash report <folder | results.json> [--out page.html] [--bench results.json]  (js/report.ts)
 *
 * Exit status: 0 when the search ran (whether or not pairs were found),
 * 1 for a usage error, 2 for a missing or unreadable path.
 */
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { parseArgs as parseNodeArgs } from 'node:util';
import {
  DEFAULT_CLI_DIM,
  DEFAULT_MIN_DISTINCT,
  DEFAULT_NEIGHBORS,
  DEFAULT_THRESHOLD,
  DEFAULT_TOP,
  findDuplicatePairs,
  type DuplicatePair,
} from './duplicate-pairs';
import { PathError, SKIPPED_FOLDERS } from './file-walk';
import { loadQEModule, type QEModule } from './module';
import { collectSourceFiles, extractTestCases, readSource, type TestCase } from './test-cases';

export interface CliIO {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown; isTTY?: boolean };
  /** Milliseconds, for the progress bar's one-second delay; default performance.now. */
  now?: () => number;
}

/** Exit statuses, as documented in --help. */
export const EXIT_OK = 0;
export const EXIT_USAGE = 1;
export const EXIT_PATH = 2;

interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  /** Shown after the flag in --help. */
  value?: string;
  help: string;
}

/** Every option: parsed by util.parseArgs, listed by --help from this one table. */
export const CLI_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  threshold: { type: 'string', value: '<x>', help: `report pairs with similarity >= x, in (0, 1] (default ${DEFAULT_THRESHOLD})` },
  top: { type: 'string', value: '<n>', help: `report at most n pairs (default ${DEFAULT_TOP})` },
  json: { type: 'boolean', help: 'print JSON instead of text' },
  'all-files': { type: 'boolean', help: 'every source file, not only test files' },
  'no-ignore': { type: 'boolean', help: 'walk into what .gitignore files exclude' },
  neighbors: { type: 'string', value: '<n>', help: `nearest cases considered per case (default ${DEFAULT_NEIGHBORS})` },
  'min-distinct': { type: 'string', value: '<n>', help: `only pairs sharing >= n features rare in these files; 2 leaves out parametrised families (default ${DEFAULT_MIN_DISTINCT})` },
  dim: { type: 'string', value: '<n>', help: `embedding length, a multiple of 4 in [4, 4096] (default ${DEFAULT_CLI_DIM})` },
  help: { type: 'boolean', short: 'h', help: 'print this help and exit' },
  version: { type: 'boolean', short: 'v', help: 'print the version and exit' },
};

function usage(): string {
  const flags = Object.entries(CLI_OPTIONS).map(([name, o]) => {
    const flag = `${o.short !== undefined ? `-${o.short}, ` : ''}--${name}${o.value !== undefined ? ` ${o.value}` : ''}`;
    return `  ${flag.padEnd(20)}${o.help}`;
  });
  return `usage: qe-flash similar <paths...> [options]
       qe-flash report <test folder | results.json> [--out page.html]  (see qe-flash report --help)
       qe-flash --help | --version

Finds near-duplicate test cases under the paths (files or folders) and
reports the pairs best first, with file:line for both sides, their cosine
similarity, and what they share. Features common in these files (the test
framework's words, a template's scaffolding) weigh little; literal values
and names that two cases alone share weigh most. Test cases: JS/TS it()/test() blocks, Python def test_*,
Java @Test methods, Go func TestXxx; a file with none of these is one case.

Folders are searched for test files: *.test.*, *.spec.*, test_*.py,
*_test.py, *_test.go, *Test.java, *Tests.java, and any file under a test/,
tests/ or __tests__/ folder; --all-files takes every source file
(.js .jsx .mjs .cjs .ts .tsx .mts .cts .py .java .go). Files named on the
command line are always read. What .gitignore files exclude is skipped
(--no-ignore to read it), and so are hidden folders and
${[...SKIPPED_FOLDERS].join(', ')}.

options:
${flags.join('\n')}

examples:
  qe-flash similar test/
  qe-flash similar src tests --threshold 0.95 --top 50
  qe-flash similar . --all-files --no-ignore --json > pairs.json

exit status: ${EXIT_OK} when the search ran, whether or not pairs were found; ${EXIT_USAGE} on a usage
error; ${EXIT_PATH} when a path is missing or unreadable.
`;
}

/** This package's version, from the package.json above this file (js/ in the source tree, dist/cjs/js/ when built). */
export function packageVersion(): string {
  for (let dir = __dirname; ; dir = nodePath.dirname(dir)) {
    const file = nodePath.join(dir, 'package.json');
    if (fs.existsSync(file)) {
      const pkg = JSON.parse(fs.readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === '@agentic-qe/v3' && typeof pkg.version === 'string') return pkg.version;
    }
    if (nodePath.dirname(dir) === dir) throw new Error('cannot find the package.json of @agentic-qe/v3');
  }
}

class UsageError extends Error {}

interface SimilarArgs {
  paths: string[];
  threshold: number;
  top: number;
  neighbors: number;
  minDistinct: number;
  dim: number;
  json: boolean;
  allFiles: boolean;
  gitignore: boolean;
}

function numberOption(flag: string, text: string | undefined, fallback: number, integer: boolean, ok: (x: number) => boolean, range: string): number {
  if (text === undefined) return fallback;
  const x = Number(text);
  if (text.trim() === '' || !Number.isFinite(x) || (integer && !Number.isInteger(x)) || !ok(x)) {
    throw new UsageError(`--${flag} must be ${range}, got ${JSON.stringify(text)}`);
  }
  return x;
}

/** util.parseArgs's errors, in this tool's words. */
function usageErrorOf(error: Error & { code?: string }): UsageError {
  const quoted = /'([^']+)'/.exec(error.message)?.[1] ?? '';
  switch (error.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return new UsageError(`unknown option ${quoted}`);
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE': {
      const flag = quoted.split(' ')[0];
      if (/does not take an argument/.test(error.message)) return new UsageError(`${flag} takes no value`);
      if (/argument missing/.test(error.message)) return new UsageError(`${flag} needs a value`);
      // A value starting with "-": util.parseArgs asks for --flag=value.
      return new UsageError(`${flag} needs a value; write ${flag}=<value> for one starting with "-"`);
    }
    default:
      return new UsageError(error.message);
  }
}

function parseCommandLine(argv: readonly string[]): SimilarArgs | 'help' | 'version' {
  const options = Object.fromEntries(
    Object.entries(CLI_OPTIONS).map(([name, o]) => [name, o.short !== undefined ? { type: o.type, short: o.short } : { type: o.type }]),
  ) as Record<string, { type: 'string' | 'boolean'; short?: string }>;
  let parsed: { values: Record<string, string | boolean | undefined>; positionals: string[] };
  try {
    parsed = parseNodeArgs({ args: [...argv], options, allowPositionals: true, strict: true }) as typeof parsed;
  } catch (error) {
    const e = error as Error & { code?: string };
    if (typeof e.code === 'string' && e.code.startsWith('ERR_PARSE_ARGS')) throw usageErrorOf(e);
    throw error;
  }
  const { values, positionals } = parsed;
  if (values.help === true) return 'help';
  if (values.version === true) return 'version';
  if (positionals.length === 0) throw new UsageError('no command given');
  const [command, ...paths] = positionals;
  if (command === 'help') return 'help';
  if (command !== 'similar') throw new UsageError(`unknown command ${JSON.stringify(command)}; the command is 'similar'`);
  if (paths.length === 0) throw new UsageError('similar needs at least one path');
  const text = (name: string): string | undefined => values[name] as string | undefined;
  return {
    paths,
    threshold: numberOption('threshold', text('threshold'), DEFAULT_THRESHOLD, false, (x) => x > 0 && x <= 1, 'a number in (0, 1]'),
    top: numberOption('top', text('top'), DEFAULT_TOP, true, (x) => x >= 1, 'a positive integer'),
    neighbors: numberOption('neighbors', text('neighbors'), DEFAULT_NEIGHBORS, true, (x) => x >= 1, 'a positive integer'),
    minDistinct: numberOption('min-distinct', text('min-distinct'), DEFAULT_MIN_DISTINCT, true, (x) => x >= 0, 'a non-negative integer'),
    dim: numberOption('dim', text('dim'), DEFAULT_CLI_DIM, true, (x) => x >= 4 && x % 4 === 0 && x <= 4096, 'a multiple of 4 in [4, 4096]'),
    json: values.json === true,
    allFiles: values['all-files'] === true,
    gitignore: values['no-ignore'] !== true,
  };
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

interface Summary {
  cases: number;
  files: number;
  /** Source files found by walking and left out as non-tests; null with --all-files. */
  skipped: number | null;
  threshold: number;
  found: number;
}

function formatText(pairs: readonly DuplicatePair[], s: Summary): string {
  const where = (c: TestCase): string => `${c.file}:${c.line}`;
  const skipped = s.skipped === null ? '' : `, ${s.skipped} non-test file${s.skipped === 1 ? '' : 's'} skipped`;
  const showing = s.found > pairs.length ? ` (showing the best ${pairs.length})` : '';
  const lines = [`${s.cases} test cases in ${s.files} files${skipped}; ${s.found} pairs with similarity >= ${s.threshold}${showing}`];
  for (const p of pairs) {
    lines.push(`${p.score.toFixed(4)}  ${where(p.a)}  ${JSON.stringify(p.a.name)}`);
    lines.push(`        ${where(p.b)}  ${JSON.stringify(p.b.name)}`);
    if (p.evidence.length > 0) lines.push(`        shared: ${p.evidence.join(', ')}`);
  }
  return `${lines.join('\n')}\n`;
}

/**
 * Runs the command line (arguments after the program name); returns the
 * exit status. The module is loaded on first use unless given.
 */
export async function runCli(argv: readonly string[], io: CliIO, module?: QEModule): Promise<number> {
  if (argv[0] === 'report') {
    // Loaded only for this command: the page's builder and viewer (js/report.ts).
    const { runReportCli } = await import('./report');
    return runReportCli(argv.slice(1), io, async () => module ?? loadQEModule());
  }
  const now = io.now ?? (() => performance.now());
  const started = now();
  let args: SimilarArgs | 'help' | 'version';
  try {
    args = parseCommandLine(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.stderr.write(`qe-flash: ${error.message}\n\n${usage()}`);
    return EXIT_USAGE;
  }
  if (args === 'help') {
    io.stdout.write(usage());
    return EXIT_OK;
  }
  if (args === 'version') {
    io.stdout.write(`${packageVersion()}\n`);
    return EXIT_OK;
  }
  const progress = new ProgressBar(io.stderr, now, started);
  try {
    const { files, skipped } = collectSourceFiles(args.paths, { allFiles: args.allFiles, gitignore: args.gitignore });
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
      minDistinct: args.minDistinct,
      dim: args.dim,
      onProgress: (phase, done, total) => progress.update(phase, done, total),
    });
    progress.finish();
    const pairs = all.slice(0, args.top);
    const summary: Summary = { cases: cases.length, files: files.length, skipped: args.allFiles ? null : skipped, threshold: args.threshold, found: all.length };
    if (args.json) {
      const side = (c: TestCase) => ({ file: c.file, line: c.line, name: c.name });
      io.stdout.write(`${JSON.stringify({
        threshold: args.threshold,
        files: files.length,
        skippedNonTestFiles: summary.skipped ?? 0,
        allFiles: args.allFiles,
        cases: cases.length,
        found: all.length,
        minDistinct: args.minDistinct,
        pairs: pairs.map((p) => ({ score: p.score, a: side(p.a), b: side(p.b), evidence: p.evidence, distinct: p.distinct })),
      }, null, 2)}\n`);
    } else {
      io.stdout.write(formatText(pairs, summary));
    }
    return EXIT_OK;
  } catch (error) {
    progress.finish();
    if (error instanceof PathError) {
      io.stderr.write(`qe-flash: ${error.message}\n`);
      return EXIT_PATH;
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
