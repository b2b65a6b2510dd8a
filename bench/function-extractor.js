'use strict';
/*
 * Real source no one here wrote: every function in the JavaScript and
 * TypeScript files under a folder (node_modules for the benchmark), as text.
 *
 * A function starts at the keyword `function`, at an arrow `=> {`, or at a
 * method `name(args) {` at the start of a line; its body is the brace block
 * that follows, matched by a small lexer that skips strings, template
 * literals (with their ${...} parts), comments and most regular-expression
 * literals. Nested functions count on their own. Files are visited in sorted
 * order and identical texts are kept once, so the set is deterministic for
 * a given node_modules and holds no exact duplicates (which would make
 * "the" nearest neighbour ambiguous).
 *
 * Usage: node bench/function-extractor.js [folder] [--count N]  (prints stats)
 */
const fs = require('fs');
const path = require('path');

const SOURCE = /\.(c|m)?(j|t)sx?$/;
const MAX_FILE_BYTES = 16 << 20;
const MIN_CHARS = 40;
const MAX_CHARS = 6000;

function* sourceFiles(dir) {
  let entries;
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) yield* sourceFiles(p);
    else if (e.isFile() && SOURCE.test(e.name) && !e.name.endsWith('.d.ts') && !/\.min\.[cm]?js$/.test(e.name)) yield p;
  }
}

/** Index just past the block whose '{' is at `open`, or -1 when it does not close. */
function matchBrace(text, open) {
  let depth = 0;
  const templates = []; // brace depth at which each open ${ of a template resumes the template
  let i = open;
  let prevSignificant = '';
  while (i < text.length) {
    const c = text[i];
    if (c === '/' && text[i + 1] === '/') {
      const nl = text.indexOf('\n', i);
      if (nl < 0) return -1;
      i = nl + 1;
      continue;
    }
    if (c === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      if (end < 0) return -1;
      i = end + 2;
      continue;
    }
    if (c === '"' || c === "'") {
      i++;
      while (i < text.length && text[i] !== c && text[i] !== '\n') i += text[i] === '\\' ? 2 : 1;
      i++;
      prevSignificant = 'a';
      continue;
    }
    if (c === '`' || (c === '}' && templates.length && templates[templates.length - 1] === depth)) {
      if (c === '}') templates.pop();
      i++;
      // Inside a template: up to the closing ` or the next ${.
      for (;;) {
        if (i >= text.length) return -1;
        if (text[i] === '\\') i += 2;
        else if (text[i] === '`') {
          i++;
          break;
        } else if (text[i] === '$' && text[i + 1] === '{') {
          templates.push(depth);
          i += 2;
          break;
        } else i++;
      }
      prevSignificant = 'a';
      continue;
    }
    if (c === '/' && /[(,=:[!&|?{};+\-*%<>~^]|^$/.test(prevSignificant)) {
      // A regular-expression literal (a '/' where a value starts).
      i++;
      let inClass = false;
      while (i < text.length && text[i] !== '\n') {
        if (text[i] === '\\') i++;
        else if (text[i] === '[') inClass = true;
        else if (text[i] === ']') inClass = false;
        else if (text[i] === '/' && !inClass) break;
        i++;
      }
      i++;
      prevSignificant = 'a';
      continue;
    }
    if (c === '{') depth++;
    else if (c === '}') {
      depth--;
      if (depth === 0) return i + 1;
    }
    if (!/\s/.test(c)) prevSignificant = /[A-Za-z0-9_$)\]]/.test(c) ? 'a' : c;
    i++;
  }
  return -1;
}

const STARTS = /\bfunction\b[\s*]*[\w$]*\s*\(|=>\s*\{|^[ \t]*(?:(?:static|async|public|private|protected|get|set)\s+)*[\w$]+\s*\([^()\n]*\)\s*(?::[^{\n]*)?\{/gm;
const NOT_METHODS = /^\s*(if|for|while|switch|catch|with|return|function)\b/;

/** The functions of one source text. */
function functionsOf(text) {
  const out = [];
  STARTS.lastIndex = 0;
  let m;
  while ((m = STARTS.exec(text)) !== null) {
    if (NOT_METHODS.test(m[0])) continue;
    const open = text.indexOf('{', m.index + (m[0].startsWith('=>') ? 0 : m[0].length - 1));
    if (open < 0) continue;
    if (!m[0].endsWith('{')) {
      // `function name(`: the body is the first '{' after the parameter list.
      const between = text.slice(m.index, open);
      if (between.length > 400) continue;
    }
    const end = matchBrace(text, open);
    if (end < 0) continue;
    const start = m[0].startsWith('=>') ? text.lastIndexOf('\n', m.index) + 1 : m.index + (m[0].length - m[0].trimStart().length);
    const body = text.slice(start, end);
    if (body.length >= MIN_CHARS && body.length <= MAX_CHARS) out.push(body.trim());
  }
  return out;
}

/**
 * Up to `count` distinct functions from the files under `root`, in file
 * order: [{ file, text }].
 */
function extractFunctions(root, count) {
  const seen = new Set();
  const out = [];
  let files = 0;
  for (const file of sourceFiles(root)) {
    let text;
    try {
      if (fs.statSync(file).size > MAX_FILE_BYTES) continue;
      text = fs.readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    files++;
    for (const f of functionsOf(text)) {
      if (seen.has(f)) continue;
      seen.add(f);
      out.push({ file: path.relative(root, file), text: f });
      if (out.length >= count) return { functions: out, files };
    }
  }
  return { functions: out, files };
}

module.exports = { extractFunctions, functionsOf, matchBrace };

if (require.main === module) {
  const args = process.argv.slice(2);
  const at = args.indexOf('--count');
  const count = at >= 0 ? Number(args[at + 1]) : Infinity;
  const root = args.find((a, i) => !a.startsWith('--') && args[i - 1] !== '--count') || path.join(__dirname, '..', 'node_modules');
  const t = Date.now();
  const { functions, files } = extractFunctions(root, count);
  console.log(`${functions.length} distinct functions from ${files} files in ${((Date.now() - t) / 1000).toFixed(1)} s`);
  for (const f of functions.slice(0, 3)) console.log(`--- ${f.file}\n${f.text.slice(0, 300)}`);
}
