/**
 * Test-case discovery for qe-flash similar: which files are tests, by the
 * naming conventions of each language, and the test cases inside a file:
 * JavaScript and TypeScript it(...) and test(...) calls, Python `def test_*`
 * functions, Java @Test methods and Go `func TestXxx` functions; a file with
 * none of these is one case.
 */
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { PathError, walkFiles } from './file-walk';
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

const LANGUAGE_BY_EXTENSION: Readonly<Record<string, CodeLanguage>> = {
  '.js': 'javascript', '.jsx': 'javascript', '.mjs': 'javascript', '.cjs': 'javascript',
  '.ts': 'typescript', '.tsx': 'typescript', '.mts': 'typescript', '.cts': 'typescript',
  '.py': 'python', '.java': 'java', '.go': 'go',
};

/** The language of a source file by its extension; undefined for other files. */
export function languageOf(file: string): CodeLanguage | undefined {
  return LANGUAGE_BY_EXTENSION[nodePath.extname(file).toLowerCase()];
}

const TEST_FOLDERS: ReadonlySet<string> = new Set(['test', 'tests', '__tests__']);

/**
 * Whether a source file is a test by the usual conventions: `*.test.*` and
 * `*.spec.*`, `test_*.py` and `*_test.py`, `*_test.go`, `*Test.java` and
 * `*Tests.java`, or any file under a folder named `test`, `tests` or
 * `__tests__`. `path` has "/" separators; every folder in it counts, so
 * pass it from the folder the user named, not from the file system root.
 */
export function isTestFile(path: string): boolean {
  const parts = path.split('/');
  const name = parts[parts.length - 1];
  if (parts.slice(0, -1).some((folder) => TEST_FOLDERS.has(folder))) return true;
  if (/\.(test|spec)\./.test(name)) return true;
  if (/^test_.*\.py$/.test(name) || /_test\.py$/.test(name)) return true;
  if (/_test\.go$/.test(name)) return true;
  return /Tests?\.java$/.test(name);
}

export interface CollectOptions {
  /** Every source file, not only tests; default false. */
  allFiles?: boolean;
  /** Leave out what .gitignore files exclude; default true. */
  gitignore?: boolean;
}

/**
 * The source files to look at under the paths (js/file-walk.ts), and how
 * many source files found by walking were skipped as non-tests. Files named
 * directly are always kept.
 */
export function collectSourceFiles(paths: readonly string[], options: CollectOptions = {}): { files: string[]; skipped: number } {
  const found = walkFiles(paths, { gitignore: options.gitignore ?? true, accept: (name) => languageOf(name) !== undefined });
  const files: string[] = [];
  let skipped = 0;
  for (const f of found) {
    if (options.allFiles === true || f.fromFolder === null || isTestFile(f.fromFolder)) files.push(f.path);
    else skipped++;
  }
  return { files, skipped };
}

/** A file's text; a PathError when it cannot be read. */
export function readSource(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (error) {
    throw new PathError(`cannot read ${file}: ${(error as Error).message}`);
  }
}

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
  const language = languageOf(file);
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
