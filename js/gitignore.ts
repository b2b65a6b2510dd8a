/**
 * .gitignore patterns: the part of git's rules (gitignore(5)) that a walk
 * over a working tree needs. Supported: comments, blank lines, escapes
 * (`\#`, `\!`, `\ `), trailing spaces, negation (`!`), directory-only
 * patterns (`foo/`), anchored patterns (a slash at the start or in the
 * middle), `*`, `?`, bracket expressions, and `**` as a leading, trailing or
 * middle path segment. Rules from several files are kept in one list, outer
 * folders first, so the last matching rule decides, as in git, where a
 * deeper file overrides an outer one and a later line an earlier one.
 * POSIX character classes (`[[:alpha:]]`) are not supported.
 */

/** One compiled line of a .gitignore file. */
export interface IgnoreRule {
  /** The folder holding the .gitignore, as a path with "/" separators; the rule applies below it. */
  base: string;
  /** The line as written, for messages. */
  pattern: string;
  negate: boolean;
  /** Written with a trailing slash: matches folders only. */
  directoryOnly: boolean;
  /** Tested against the path relative to `base`, with "/" separators. */
  regex: RegExp;
}

const escapeRegExp = (text: string): string => text.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');

/** One path segment of a glob (no "/" in it) as regular-expression source, or null when it is malformed. */
function segmentSource(segment: string): string | null {
  let out = '';
  for (let i = 0; i < segment.length; i++) {
    const c = segment[i];
    if (c === '\\') {
      if (i + 1 >= segment.length) return null; // git: a trailing backslash matches nothing
      out += escapeRegExp(segment[++i]);
    } else if (c === '*') {
      while (segment[i + 1] === '*') i++; // "a**b" is "a*b"
      out += '[^/]*';
    } else if (c === '?') {
      out += '[^/]';
    } else if (c === '[') {
      // The closing bracket; one right after "[" or "[!" is a member.
      let j = i + 1;
      if (segment[j] === '!' || segment[j] === '^') j++;
      if (segment[j] === ']') j++;
      while (j < segment.length && segment[j] !== ']') j += segment[j] === '\\' ? 2 : 1;
      if (j >= segment.length) {
        out += '\\['; // no closing bracket: a literal "["
        continue;
      }
      let body = segment.slice(i + 1, j);
      const negated = body[0] === '!' || body[0] === '^';
      if (negated) body = body.slice(1);
      let members = '';
      for (let k = 0; k < body.length; k++) {
        const m = body[k];
        if (m === '\\' && k + 1 < body.length) members += escapeRegExp(body[++k]);
        else if (m === '-' && k > 0 && k < body.length - 1) members += '-'; // a range
        else members += escapeRegExp(m);
      }
      out += negated ? `(?!/)[^${members}]` : `[${members}]`;
      i = j;
    } else {
      out += escapeRegExp(c);
    }
  }
  return out;
}

/** A glob with "/" separators as regular-expression source, `**` segments included; null when malformed. */
function globSource(glob: string): string | null {
  const segments = glob.split('/').filter((s) => s !== '');
  if (segments.length === 1 && segments[0] === '**') return '.*';
  let out = '';
  let separator = false;
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i];
    if (segment === '**') {
      if (i === 0) {
        out += '(?:.*/)?'; // "**/foo": foo in any folder
        separator = false;
      } else if (i === segments.length - 1) {
        out += '/.+'; // "foo/**": everything inside foo
      } else {
        out += '(?:/.*)?'; // "a/**/b": zero or more folders between
        separator = true;
      }
      continue;
    }
    const source = segmentSource(segment);
    if (source === null) return null;
    out += (separator ? '/' : '') + source;
    separator = true;
  }
  return out;
}

/**
 * One .gitignore line as a rule, or null for blank lines, comments and
 * malformed patterns. `base` is the folder of the .gitignore file.
 */
export function compileIgnoreLine(line: string, base: string): IgnoreRule | null {
  let text = line.replace(/\r$/, '');
  // Trailing spaces are dropped unless the last one is escaped.
  const trimmed = text.replace(/ +$/, '');
  if (trimmed.length < text.length) {
    const backslashes = /\\*$/.exec(trimmed)?.[0].length ?? 0;
    text = backslashes % 2 === 1 ? `${trimmed} ` : trimmed;
  }
  if (text === '' || text.startsWith('#')) return null;
  const pattern = text;
  const negate = text.startsWith('!');
  if (negate) text = text.slice(1);
  const directoryOnly = text.endsWith('/') && !text.endsWith('\\/');
  if (directoryOnly) text = text.replace(/\/+$/, '');
  if (text === '') return null;
  // A slash anywhere but at the end anchors the pattern to the .gitignore's folder.
  const anchored = text.includes('/');
  const source = globSource(text);
  if (source === null || source === '') return null;
  const regex = new RegExp(anchored ? `^${source}$` : `^(?:.*/)?${source}$`);
  return { base, pattern, negate, directoryOnly, regex };
}

/** The rules of one .gitignore file's text, in order. */
export function parseIgnoreFile(text: string, base: string): IgnoreRule[] {
  const rules: IgnoreRule[] = [];
  for (const line of text.split('\n')) {
    const rule = compileIgnoreLine(line, base);
    if (rule !== null) rules.push(rule);
  }
  return rules;
}

/** The path of `path` below `base` ("/" separators), or null when it is not below it. */
function below(base: string, path: string): string | null {
  if (base === '') return path;
  if (path.length > base.length && path.startsWith(base) && path[base.length] === '/') return path.slice(base.length + 1);
  return null;
}

/**
 * Whether the rules ignore a path ("/" separators, in the same frame as the
 * rules' bases). The last rule that matches decides; a negated one
 * re-includes. Callers test a folder before walking into it: as in git, a
 * file inside an ignored folder cannot be re-included.
 */
export function isIgnored(rules: readonly IgnoreRule[], path: string, isDirectory: boolean): boolean {
  for (let i = rules.length - 1; i >= 0; i--) {
    const rule = rules[i];
    if (rule.directoryOnly && !isDirectory) continue;
    const rel = below(rule.base, path);
    if (rel !== null && rule.regex.test(rel)) return !rule.negate;
  }
  return false;
}
