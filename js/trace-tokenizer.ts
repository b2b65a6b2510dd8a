/**
 * A tokenizer for failure text: stack traces in Java and Node formats with
 * their exceptions and messages, and the plain text around them (Jest's
 * `expect(received).toBe(expected)`, `Expected:` / `Received:` lines).
 *
 *   - exception lines (`java.lang.IllegalStateException: msg`, `Caused by: ...`,
 *     `TypeError: msg`, `Exception in thread "main" ...`): the exception type
 *     as written, then the message's words;
 *   - Java frames (`at pkg.Class$Inner.method(File.java:42)`, module prefixes
 *     such as `java.base/` dropped): the frame `pkg.Class$Inner.method`, and
 *     as parts the package, the class, the inner class and the method;
 *   - Node frames (`at fn (path:line:col)`, `at path:line:col`, `async`,
 *     `new`, `[as alias]`): the frame `file.js:fn`, and as parts the
 *     function's pieces, the file and its folder;
 *   - line and column numbers are dropped everywhere, `... 12 more` lines too;
 *   - framework frames (JUnit, TestNG, reflection, Surefire, Gradle, Jest and
 *     its `expect`, Mocha, Vitest, `node:internal`) are marked `framework`;
 *   - any other line gives its words (split like identifiers, lower-cased),
 *     numbers and hex addresses dropped, since they change from run to run.
 * Pure functions, no module needed.
 */
import { splitIdentifier } from './tokenizer';

export type TraceTokenKind = 'exception' | 'word' | 'frame' | 'frame-part';

export interface TraceToken {
  text: string;
  kind: TraceTokenKind;
  /** True for the frames (and their parts) of test frameworks, reflection and the runtime. */
  framework: boolean;
  /** 1-based line of the token. */
  line: number;
}

const JAVA_FRAMEWORK = [
  'org.junit.', 'junit.', 'org.testng.', 'java.lang.reflect.', 'sun.reflect.', 'jdk.internal.', 'java.base/',
  'org.apache.maven.surefire.', 'org.gradle.', 'org.eclipse.jdt.internal.junit', 'com.intellij.rt.',
  'org.junit.platform.', 'org.mockito.internal.', 'org.springframework.test.', 'kotlin.coroutines.',
  'java.util.concurrent.ThreadPoolExecutor', 'java.lang.Thread.run',
];
const NODE_FRAMEWORK = [
  /^node:/, /^internal\//, /\/node_modules\/(jest-[\w-]+|@jest\/[\w-]+|expect|expect-utils|@vitest\/[\w-]+|vitest|mocha|jasmine[\w-]*|ts-jest|babel-jest)\//,
  /^<anonymous>$/, /^native$/,
];
/** Runtime functions that show in every async Node trace (matched at the end of the frame's function name). */
const NODE_FRAMEWORK_FUNCTIONS = ['processTicksAndRejections', 'new Promise', 'Promise.then'];

const EXCEPTION_LINE = /^\s*(?:Caused by:\s*|Suppressed:\s*|Exception in thread "[^"]*"\s+|Uncaught\s+|Error:\s+(?=\w+(?:Error|Exception)\b))?((?:[\w$]+\.)*[\w$]*(?:Error|Exception|Throwable|Failure|Fault|Failed)[\w$]*)(?::\s*(.*))?$/;
/** `at` already removed: a symbol with a dot and no spaces, then the location in parentheses. */
const JAVA_FRAME = /^([^\s()]+\.[^\s().]+)\(([^()]*)\)$/;
const JAVA_LOCATION = /^(?:[\w$-]+\.(?:java|kt|scala|groovy|clj)(?::\d+)?|Native Method|Unknown Source|Compiled Code)$/;
const NODE_FRAME_CALL = /^\s*at\s+(?:async\s+)?(?:new\s+)?(.+?)(?:\s+\[as\s+[^\]]+\])?\s+\((.*)\)\s*$/;
const NODE_FRAME_BARE = /^\s*at\s+(?:async\s+)?(\S+)\s*$/;
const MORE_LINE = /^\s*\.\.\.\s*\d+\s+(more|common frames omitted)\s*$/;

/** Words of a message: letters (and digits inside identifiers) split like identifiers; numbers dropped. */
function messageWords(text: string): string[] {
  const out: string[] = [];
  for (const run of text.match(/[\p{L}\p{N}_$]+/gu) ?? []) {
    if (/^(0x)?[0-9a-f]*\d[0-9a-f]*$/i.test(run) && /\d/.test(run)) continue; // numbers, hex addresses, hash codes
    for (const part of splitIdentifier(run)) if (!/^\p{N}+$/u.test(part)) out.push(part);
  }
  return out;
}

/** Drops `:line` and `:line:col` from a location, and a file:// scheme. */
function stripLineNumbers(location: string): string {
  return location.replace(/^file:\/\//, '').replace(/(:\d+){1,2}$/, '');
}

/** Tokens of a failure text (see the top of this file). */
export function tokenizeTrace(text: string): TraceToken[] {
  if (typeof text !== 'string') throw new TypeError(`text must be a string, got ${text === null ? 'null' : typeof text}`);
  const tokens: TraceToken[] = [];
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, index) => {
    const line = index + 1;
    const push = (t: string, kind: TraceTokenKind, framework: boolean): void => {
      if (t !== '') tokens.push({ text: t, kind, framework, line });
    };
    if (raw.trim() === '' || MORE_LINE.test(raw)) return;

    const trimmed = raw.trim();
    const rest = trimmed.startsWith('at ') ? trimmed.slice(3).trim() : null;
    const java = rest === null ? null : JAVA_FRAME.exec(rest);
    if (java !== null && JAVA_LOCATION.test(java[2].trim())) {
      // A module or class-loader prefix (java.base/, app//) is not part of the frame.
      const symbol = java[1].slice(java[1].lastIndexOf('/') + 1);
      const dot = symbol.lastIndexOf('.');
      const cls = symbol.slice(0, dot);
      const method = symbol.slice(dot + 1);
      const framework = JAVA_FRAMEWORK.some((p) => java[1].startsWith(p) || cls.startsWith(p));
      push(symbol, 'frame', framework);
      const pkgEnd = cls.lastIndexOf('.');
      if (pkgEnd > 0) push(cls.slice(0, pkgEnd), 'frame-part', framework);
      for (const piece of cls.slice(pkgEnd + 1).split('$')) if (piece !== '' && !/^\d+$/.test(piece)) push(piece, 'frame-part', framework);
      push(method, 'frame-part', framework);
      return;
    }

    let fn = '';
    let location = '';
    const call = NODE_FRAME_CALL.exec(raw);
    if (call !== null) {
      fn = call[1];
      location = call[2];
    } else {
      const bare = NODE_FRAME_BARE.exec(raw);
      if (bare !== null && /[/\\:]|^<anonymous>$|^native$/.test(bare[1])) location = bare[1];
    }
    if (location !== '' || (call !== null && fn !== '')) {
      const where = stripLineNumbers(location.replace(/^.*,\s*<anonymous>.*$/, '<anonymous>'));
      const framework = NODE_FRAMEWORK.some((re) => re.test(where.replace(/\\/g, '/'))) || NODE_FRAMEWORK_FUNCTIONS.some((f) => fn === f || fn.endsWith(`.${f}`));
      const segments = where.split(/[/\\]/).filter((s) => s !== '');
      const file = segments[segments.length - 1] ?? where;
      push(fn === '' ? file : `${file}:${fn}`, 'frame', framework);
      for (const piece of fn.split(/[.\s]+/)) if (piece !== '' && piece !== '<anonymous>' && piece !== 'Object') push(piece, 'frame-part', framework);
      push(file, 'frame-part', framework);
      if (segments.length >= 2) push(segments[segments.length - 2], 'frame-part', framework);
      return;
    }

    const exception = EXCEPTION_LINE.exec(raw);
    if (exception !== null) {
      push(exception[1], 'exception', false);
      for (const word of messageWords(exception[2] ?? '')) push(word, 'word', false);
      return;
    }
    for (const word of messageWords(raw)) push(word, 'word', false);
  });
  return tokens;
}
