/**
 * A code tokenizer for JavaScript, TypeScript, Python, Java and Go, made for
 * similarity rather than parsing: what two pieces of code share should show
 * in their tokens, and what does not change their meaning should not.
 *
 *   - whitespace and comments are dropped (// and block comments; # in
 *     Python; in any language, a #! line before the first token);
 *   - keywords are kept as written (`return`, `def`, `func`, `None`);
 *   - identifiers are split on snake_case, camelCase, acronyms and digits and
 *     lower-cased: `getHTTPResponse_v2` gives get, http, response, v, 2;
 *   - operators and punctuation are kept, longest match first (`===`, `=>`,
 *     `:=`, `**=`, `...`);
 *   - literals become their kind: numbers `<num>`, strings, template
 *     literals, Python and Java text blocks, runes and chars `<str>`,
 *     JavaScript regular expressions `<regex>`.
 *
 * The language is detected from the text unless given; it decides the
 * keyword set, whether # starts a comment, and whether / can open a regex.
 * Every token carries its 1-based line. Pure functions, no module needed.
 */

export type CodeLanguage = 'javascript' | 'typescript' | 'python' | 'java' | 'go';

export type CodeTokenKind = 'keyword' | 'identifier' | 'operator' | 'punctuation' | 'number' | 'string' | 'regex';

export interface CodeToken {
  /** The keyword, the lower-cased identifier part, the operator, or `<num>`, `<str>`, `<regex>`. */
  text: string;
  kind: CodeTokenKind;
  /** 1-based line of the token's first character. */
  line: number;
  /** Offsets of the lexeme in the source, [start, end): for an identifier part, the whole identifier. */
  start: number;
  end: number;
}

export interface TokenizeOptions {
  /** Default 'auto': detected from the source (detectLanguage). */
  language?: CodeLanguage | 'auto';
  /** Stop after this many tokens (default: no limit): the rest of the source is not scanned. */
  maxTokens?: number;
}

const JS_KEYWORDS = [
  'break', 'case', 'catch', 'class', 'const', 'continue', 'debugger', 'default', 'delete', 'do', 'else',
  'export', 'extends', 'finally', 'for', 'function', 'if', 'import', 'in', 'instanceof', 'new', 'return',
  'super', 'switch', 'this', 'throw', 'try', 'typeof', 'var', 'void', 'while', 'with', 'yield', 'let',
  'static', 'async', 'await', 'of', 'get', 'set', 'true', 'false', 'null', 'undefined', 'from',
];
const TS_KEYWORDS = [
  ...JS_KEYWORDS, 'interface', 'type', 'enum', 'implements', 'private', 'protected', 'public', 'readonly',
  'abstract', 'declare', 'namespace', 'module', 'keyof', 'as', 'is', 'infer', 'never', 'unknown', 'any',
  'satisfies', 'override', 'string', 'number', 'boolean', 'symbol', 'bigint', 'object',
];
const PYTHON_KEYWORDS = [
  'False', 'None', 'True', 'and', 'as', 'assert', 'async', 'await', 'break', 'class', 'continue', 'def',
  'del', 'elif', 'else', 'except', 'finally', 'for', 'from', 'global', 'if', 'import', 'in', 'is',
  'lambda', 'nonlocal', 'not', 'or', 'pass', 'raise', 'return', 'try', 'while', 'with', 'yield', 'self',
  'match', 'case',
];
const JAVA_KEYWORDS = [
  'abstract', 'assert', 'boolean', 'break', 'byte', 'case', 'catch', 'char', 'class', 'const', 'continue',
  'default', 'do', 'double', 'else', 'enum', 'extends', 'final', 'finally', 'float', 'for', 'goto', 'if',
  'implements', 'import', 'instanceof', 'int', 'interface', 'long', 'native', 'new', 'package', 'private',
  'protected', 'public', 'return', 'short', 'static', 'strictfp', 'super', 'switch', 'synchronized', 'this',
  'throw', 'throws', 'transient', 'try', 'void', 'volatile', 'while', 'var', 'record', 'true', 'false',
  'null', 'String',
];
const GO_KEYWORDS = [
  'break', 'case', 'chan', 'const', 'continue', 'default', 'defer', 'else', 'fallthrough', 'for', 'func',
  'go', 'goto', 'if', 'import', 'interface', 'map', 'package', 'range', 'return', 'select', 'struct',
  'switch', 'type', 'var', 'nil', 'true', 'false', 'string', 'int', 'int64', 'float64', 'bool', 'byte',
  'error', 'rune', 'make', 'len', 'append',
];

const KEYWORDS: Readonly<Record<CodeLanguage, ReadonlySet<string>>> = {
  javascript: new Set(JS_KEYWORDS),
  typescript: new Set(TS_KEYWORDS),
  python: new Set(PYTHON_KEYWORDS),
  java: new Set(JAVA_KEYWORDS),
  go: new Set(GO_KEYWORDS),
};

/** The languages the tokenizer knows. */
export const CODE_LANGUAGES: readonly CodeLanguage[] = Object.keys(KEYWORDS) as CodeLanguage[];

/** Operators and punctuation, longest first within each leading character. */
const OPERATORS = [
  '>>>=', '...', '===', '!==', '**=', '<<=', '>>=', '>>>', '&&=', '||=', '??=', '//=',
  '=>', '==', '!=', '<=', '>=', '&&', '||', '??', '?.', '++', '--', '+=', '-=', '*=', '/=', '%=', '&=',
  '|=', '^=', '**', '<<', '>>', '->', '::', ':=', '<-', '//', '@=',
  '+', '-', '*', '/', '%', '=', '<', '>', '!', '~', '&', '|', '^', '?', '@', '#', '\\',
];
/** OPERATORS by their first character, in the same order (longest first). */
const OPERATORS_BY_CHAR = new Map<string, string[]>();
for (const op of OPERATORS) {
  const list = OPERATORS_BY_CHAR.get(op[0]) ?? [];
  list.push(op);
  OPERATORS_BY_CHAR.set(op[0], list);
}
const PUNCTUATION = new Set(['(', ')', '[', ']', '{', '}', ';', ',', '.', ':']);

/** Tokens after which a `/` is division rather than the start of a regex. */
const DIVISION_AFTER = new Set(['identifier', 'number', 'string', 'regex']);
const DIVISION_AFTER_TEXT = new Set([')', ']', '}', 'this', 'super', 'true', 'false', 'null', 'undefined', '++', '--']);

/** Source characters detectLanguage looks at: the language shows in the first lines. */
export const DETECT_PREFIX_CHARS = 32 * 1024;
/** Characters of each line detectLanguage looks at. */
const DETECT_LINE_CHARS = 400;

const JAVA_LINE = [
  /^[ \t]*package[ \t]+[a-z_][\w.]*[ \t]*;/,
  /^[ \t]*(public|private|protected)[ \t]+(static[ \t]+)?(final[ \t]+)?(class|void|interface|[A-Z]\w*(<[^\n]*>)?[ \t]+\w+[ \t]*\()/,
  /^[ \t]*@Test\b/,
];
const GO_LINE = [/^[ \t]*package[ \t]+\w+[ \t]*$/, /^[ \t]*func[ \t]+(\([ \t]*\w+[ \t]+\*?\w+[ \t]*\)[ \t]*)?\w+[ \t]*\(/];
const PYTHON_DEF = /^[ \t]*(async[ \t]+)?def[ \t]+\w+[ \t]*\(/;
const PYTHON_IMPORT = /^[ \t]*(from[ \t]+[\w.]+[ \t]+)?import[ \t]+[\w.]+([ \t]+as[ \t]+\w+)?[ \t]*$/;
const TS_LINE = [/^[ \t]*(export[ \t]+)?(interface|type)[ \t]+\w+/, /\w[ \t]*:[ \t]*(string|number|boolean|void|unknown|any)\b/, /\bas[ \t]+const\b/];

/**
 * A guess of the language from telltale lines; TypeScript when type
 * annotations or interfaces show, JavaScript otherwise. Looks at the first
 * 32 KiB, line by line, each line's first 400 characters: every pattern is
 * anchored to one bounded line, so no input makes it slow.
 */
export function detectLanguage(source: string): CodeLanguage {
  const text = source.length > DETECT_PREFIX_CHARS ? source.slice(0, DETECT_PREFIX_CHARS) : source;
  const lines: string[] = [];
  for (let from = 0; from <= text.length; ) {
    let end = text.indexOf('\n', from);
    if (end < 0) end = text.length;
    // Blank lines tell nothing: 80 KB of newlines costs one indexOf each.
    if (end > from) lines.push(text.slice(from, Math.min(end, from + DETECT_LINE_CHARS)).replace(/\r$/, ''));
    from = end + 1;
  }
  const any = (patterns: readonly RegExp[]) => lines.some((l) => patterns.some((p) => p.test(l)));
  if (any(JAVA_LINE)) return 'java';
  if (any(GO_LINE)) return 'go';
  // A def line ends with ':' (a return annotation and a comment may follow).
  const pythonDef = lines.some((l) => PYTHON_DEF.test(l) && /:[ \t]*(#.*)?$/.test(l) && l.includes(')'));
  const braces = lines.some((l) => /[;{}][ \t]*$/.test(l));
  if (pythonDef || (any([PYTHON_IMPORT]) && !braces)) return 'python';
  if (any(TS_LINE)) return 'typescript';
  return 'javascript';
}

const IDENTIFIER_START = /[\p{L}_$]/u;
const IDENTIFIER_REST = /[\p{L}\p{N}_$]/u;

/** ASCII letters, digits, _ and $ without a regex; other characters by their Unicode class. */
function isIdentifierRest(source: string, j: number): number {
  const code = source.charCodeAt(j);
  if ((code >= 97 && code <= 122) || (code >= 65 && code <= 90) || (code >= 48 && code <= 57) || code === 95 || code === 36) return 1;
  if (code < 128) return 0;
  if (code >= 0xd800 && code <= 0xdbff) return IDENTIFIER_REST.test(source.slice(j, j + 2)) ? 2 : 0;
  return IDENTIFIER_REST.test(source[j]) ? 1 : 0;
}
const NUMBER = /^(?:0[xX][0-9a-fA-F_]+|0[bB][01_]+|0[oO][0-7_]+|(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:[eE][+-]?\d[\d_]*)?)[a-zA-Z]*/;

/** Character classes of splitIdentifier: upper, lower, digit, other. */
const UPPER = 1;
const LOWER = 2;
const DIGIT = 3;
const OTHER = 4;

function charClass(ch: string): number {
  const code = ch.charCodeAt(0);
  if (code < 128) {
    if (code >= 65 && code <= 90) return UPPER;
    if (code >= 97 && code <= 122) return LOWER;
    if (code >= 48 && code <= 57) return DIGIT;
    return OTHER;
  }
  if (/\p{Lu}/u.test(ch)) return UPPER;
  if (/\p{Ll}/u.test(ch)) return LOWER;
  if (/\p{N}/u.test(ch)) return DIGIT;
  return OTHER;
}

/**
 * Parts of an identifier, lower-cased: split on _ and $, between a lower-case
 * letter (or digit) and an upper-case one, before the last capital of an
 * acronym followed by lower case (HTTPServer: http, server), and between
 * letters and digits. One pass over the characters (no backtracking
 * pattern, so a 100 KB identifier of capitals is linear too).
 */
export function splitIdentifier(name: string): string[] {
  if (typeof name !== 'string') throw new TypeError(`name must be a string, got ${name === null ? 'null' : typeof name}`);
  const parts: string[] = [];
  const chars = Array.from(name); // code points
  const classes = chars.map(charClass);
  const n = chars.length;
  const piece = (a: number, b: number) => parts.push(chars.slice(a, b).join('').toLowerCase());
  let p = 0;
  while (p < n) {
    const ch = chars[p];
    if (ch === '_' || ch === '$') {
      p++;
      continue;
    }
    const c = classes[p];
    let q = p + 1;
    const runOf = (cls: number, from: number) => {
      let r = from;
      while (r < n && classes[r] === cls && chars[r] !== '_' && chars[r] !== '$') r++;
      return r;
    };
    if (c === UPPER) {
      const r = runOf(UPPER, p);
      if (r < n && classes[r] === LOWER) {
        if (r - p >= 2) {
          // An acronym, then a capitalized word: HTTP|Server.
          q = r - 1;
        } else {
          q = runOf(LOWER, r);
        }
      } else {
        q = r;
      }
    } else if (c === LOWER || c === DIGIT) {
      q = runOf(c, p);
    } else {
      q = runOf(OTHER, p);
    }
    piece(p, q);
    p = q;
  }
  return parts;
}

/** Tokens of `source`, comments and whitespace dropped. */
export function tokenizeCode(source: string, options: TokenizeOptions = {}): CodeToken[] {
  if (typeof source !== 'string') throw new TypeError(`source must be a string, got ${source === null ? 'null' : typeof source}`);
  if (options === null || typeof options !== 'object') {
    throw new TypeError(`options must be an object, got ${options === null ? 'null' : typeof options}`);
  }
  for (const key of Object.keys(options)) {
    if (key !== 'language' && key !== 'maxTokens') throw new TypeError(`options has an unknown key '${key}'; known keys: language, maxTokens`);
  }
  const choice = options.language ?? 'auto';
  if (choice !== 'auto' && !(CODE_LANGUAGES as readonly unknown[]).includes(choice)) {
    throw new RangeError(`options.language must be 'auto' or one of ${Object.keys(KEYWORDS).join(', ')}, got ${JSON.stringify(choice)}`);
  }
  const maxTokens = options.maxTokens ?? Number.POSITIVE_INFINITY;
  if (options.maxTokens !== undefined && typeof options.maxTokens !== 'number') {
    throw new TypeError(`options.maxTokens must be a number, got ${options.maxTokens === null ? 'null' : typeof options.maxTokens}`);
  }
  if (options.maxTokens !== undefined && (typeof maxTokens !== 'number' || !Number.isInteger(maxTokens) || maxTokens < 1)) {
    throw new RangeError(`options.maxTokens must be a positive integer, got ${String(options.maxTokens)}`);
  }
  const language: CodeLanguage = choice === 'auto' ? detectLanguage(source) : choice;
  const keywords = KEYWORDS[language];
  const python = language === 'python';
  const jsLike = language === 'javascript' || language === 'typescript';

  const tokens: CodeToken[] = [];
  const n = source.length;
  let i = 0;
  let line = 1;
  let start = 0;
  const push = (text: string, kind: CodeTokenKind, at: number): void => {
    tokens.push({ text, kind, line: at, start, end: i });
  };
  /** Advances past source[from, to), counting lines. */
  const skipTo = (to: number): void => {
    for (let j = i; j < to && j < n; j++) if (source.charCodeAt(j) === 10) line++;
    i = Math.min(to, n);
  };
  /** End of a quoted string opened at `start` by `quote` (escapes honoured), past the closing quote. */
  const quotedEnd = (start: number, quote: string, multiline: boolean): number => {
    let j = start + quote.length;
    while (j < n) {
      const c = source[j];
      if (c === '\\') {
        j += 2;
        continue;
      }
      if (source.startsWith(quote, j)) return j + quote.length;
      if (c === '\n' && !multiline) return j; // unterminated: stop at the line end
      j++;
    }
    return n;
  };
  /**
   * End of a JS template literal opened at `start`, nested ${...} and
   * templates inside them included. An explicit stack, not recursion, so
   * 40 KB of nested templates cannot overflow the call stack: -1 marks
   * template text, a positive number the brace depth of a ${...}.
   */
  const templateEnd = (start: number): number => {
    const stack: number[] = [-1];
    let j = start + 1;
    while (j < n) {
      const top = stack[stack.length - 1];
      const c = source[j];
      if (top === -1) {
        if (c === '\\') {
          j += 2;
          continue;
        }
        if (c === '`') {
          stack.pop();
          j++;
          if (stack.length === 0) return j;
          continue;
        }
        if (c === '$' && source[j + 1] === '{') {
          stack.push(1);
          j += 2;
          continue;
        }
        j++;
        continue;
      }
      if (c === '{') stack[stack.length - 1] = top + 1;
      else if (c === '}') {
        if (top === 1) stack.pop();
        else stack[stack.length - 1] = top - 1;
      } else if (c === '`') stack.push(-1);
      else if (c === '"' || c === "'") {
        j = quotedEnd(j, c, false);
        continue;
      }
      j++;
    }
    return n;
  };
  const regexAllowed = (): boolean => {
    const prev = tokens[tokens.length - 1];
    if (prev === undefined) return true;
    if (DIVISION_AFTER_TEXT.has(prev.text)) return false;
    if (prev.kind === 'keyword') return true; // return /x/, typeof /x/ ...
    return !DIVISION_AFTER.has(prev.kind);
  };
  /**
   * A '/' before this offset opens no regex: a scan from an earlier '/' ran
   * to here (a line end or the end) without closing. Real code has no such
   * regex, and without this each '/' of '/['.repeat(40000) would rescan the
   * line: quadratic.
   */
  let noRegexBefore = -1;
  /** End of a regex literal opened at `start` (flags included), or -1 when it is not one. */
  const regexEnd = (start: number): number => {
    if (start < noRegexBefore) return -1;
    let j = start + 1;
    let inClass = false;
    while (j < n) {
      const c = source[j];
      if (c === '\n') {
        noRegexBefore = j;
        return -1;
      }
      if (c === '\\') {
        j += 2;
        continue;
      }
      if (c === '[') inClass = true;
      else if (c === ']') inClass = false;
      else if (c === '/' && !inClass) {
        j++;
        while (j < n && /[a-z]/i.test(source[j])) j++;
        return j;
      }
      j++;
    }
    noRegexBefore = n;
    return -1;
  };

  while (i < n && tokens.length < maxTokens) {
    const c = source[i];
    const code = source.charCodeAt(i);
    // whitespace
    if (code === 10) {
      line++;
      i++;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\r' || c === '\f' || c === '\v' || code === 0xfeff || code === 0xa0) {
      i++;
      continue;
    }
    // comments
    if (c === '#' && (python || (source[i + 1] === '!' && tokens.length === 0))) {
      const end = source.indexOf('\n', i);
      i = end < 0 ? n : end;
      continue;
    }
    if (!python && c === '/' && source[i + 1] === '/') {
      const end = source.indexOf('\n', i);
      i = end < 0 ? n : end;
      continue;
    }
    if (!python && c === '/' && source[i + 1] === '*') {
      const end = source.indexOf('*/', i + 2);
      skipTo(end < 0 ? n : end + 2);
      continue;
    }
    const at = line;
    start = i;
    // strings
    if (python) {
      const m = /^(?:[rRbBuUfF]{1,2})?('''|"""|'|")/.exec(source.slice(i, i + 5));
      if (m !== null && (m[0].length === m[1].length || i === 0 || isIdentifierRest(source, i - 1) === 0)) {
        const quote = m[1];
        const start = i + m[0].length - quote.length;
        skipTo(quotedEnd(start, quote, quote.length === 3));
        push('<str>', 'string', at);
        continue;
      }
    } else if (c === '"' && source.startsWith('"""', i) && language === 'java') {
      skipTo(quotedEnd(i, '"""', true));
      push('<str>', 'string', at);
      continue;
    } else if (c === '"' || c === "'") {
      skipTo(quotedEnd(i, c, false));
      push('<str>', 'string', at);
      continue;
    } else if (c === '`') {
      // JS template literal, or a Go raw string (no escapes, no nesting).
      if (language === 'go') {
        const end = source.indexOf('`', i + 1);
        skipTo(end < 0 ? n : end + 1);
      } else {
        skipTo(templateEnd(i));
      }
      push('<str>', 'string', at);
      continue;
    }
    // numbers
    if ((code >= 48 && code <= 57) || (c === '.' && /[0-9]/.test(source[i + 1] ?? ''))) {
      const m = NUMBER.exec(source.slice(i, i + 64));
      i += m === null ? 1 : m[0].length;
      push('<num>', 'number', at);
      continue;
    }
    // identifiers and keywords
    if ((code >= 97 && code <= 122) || (code >= 65 && code <= 90) || code === 95 || code === 36 ||
        (code >= 128 && IDENTIFIER_START.test(code >= 0xd800 && code <= 0xdbff ? source.slice(i, i + 2) : c))) {
      let j = i + (code >= 0xd800 && code <= 0xdbff ? 2 : 1);
      for (let w = j < n ? isIdentifierRest(source, j) : 0; w > 0; w = j < n ? isIdentifierRest(source, j) : 0) j += w;
      const word = source.slice(i, j);
      i = j;
      if (keywords.has(word)) {
        push(word, 'keyword', at);
      } else {
        for (const part of splitIdentifier(word)) push(part, 'identifier', at);
      }
      continue;
    }
    // regular expressions (JavaScript and TypeScript)
    if (jsLike && c === '/' && regexAllowed()) {
      const end = regexEnd(i);
      if (end > 0) {
        i = end;
        push('<regex>', 'regex', at);
        continue;
      }
    }
    // punctuation and operators
    if (PUNCTUATION.has(c) && !(c === '.' && source.startsWith('...', i)) && !(c === ':' && (source[i + 1] === ':' || source[i + 1] === '='))) {
      i++;
      push(c, 'punctuation', at);
      continue;
    }
    const op = OPERATORS_BY_CHAR.get(c)?.find((o) => source.startsWith(o, i) && !(o === '//' && !python));
    if (op !== undefined) {
      i += op.length;
      push(op, 'operator', at);
      continue;
    }
    // anything else (a stray character): kept as an operator-like symbol
    const width = code >= 0xd800 && code <= 0xdbff ? 2 : 1;
    i += width;
    push(source.slice(start, i), 'operator', at);
  }
  // An identifier's parts may overshoot the cap by a few.
  if (tokens.length > maxTokens) tokens.length = maxTokens;
  return tokens;
}
