#!/usr/bin/env node
'use strict';
/*
 * Duplicate-finding quality on real test suites that no one here wrote:
 * the test functions shipped in Debian's Python packages (numpy, pyflakes;
 * installed with apt-get when missing and allowed) and the Jest/Mocha test
 * files shipped inside installed npm packages.
 *
 * Each test function is a candidate. A sample of them is copied with one
 * realistic edit (locals renamed, two asserts swapped, a comment added, the
 * asserts moved into an extracted helper, the title changed, or all of
 * these at once); the edited copy is the query and its original the one right
 * answer among all candidates, the other tests of the same files included.
 * Reported per method: MRR, recall@1 and recall@5 (rank of the original).
 *
 *   old     today's generateCodeEmbedding (embedSource, dim 512)
 *   tf-idf  textbook TF-IDF implemented here: words of 2+ letters/digits,
 *           lower-cased, raw counts x smoothed idf ln((1+N)/(1+df))+1, L2
 *           norm, exact cosine over sparse vectors (scikit-learn's defaults)
 *   new     createCodeIndex({ kind: 'code' }) holding the candidates (dim 512, --dim)
 *   and, for reference, today's generateCodeEmbedding with its built-in
 *   weighting (no corpus).
 *
 * Usage: npm run eval:embedding [-- --queries 600 --seed 1 --dim 512 --json]   (after make all)
 * The sample is seeded, so a run is reproducible; it is an evaluation, not a test.
 */
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const ROOT = path.join(__dirname, '..');
const DIST = path.join(ROOT, 'dist', 'cjs', 'js');
const PY_PACKAGES = [
  { apt: 'python3-numpy', dirs: ['numpy/lib/tests', 'numpy/ma/tests', 'numpy/polynomial/tests', 'numpy/linalg/tests', 'numpy/fft/tests'] },
  { apt: 'python3-pyflakes', dirs: ['pyflakes/test'] },
];
const DIST_PACKAGES = '/usr/lib/python3/dist-packages';
const EDITS = ['rename-locals', 'reorder-asserts', 'add-comment', 'extract-helper', 'change-title', 'all-edits'];

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
}

/** A small seeded generator (mulberry32), so the sample is the same every run. */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Installs the Debian packages whose test folders are missing, when root and apt-get are at hand. */
function ensurePythonPackages() {
  const missing = PY_PACKAGES.filter((p) => !p.dirs.some((d) => fs.existsSync(path.join(DIST_PACKAGES, d))));
  if (missing.length === 0) return;
  const names = missing.map((p) => p.apt);
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  const cmd = root ? 'apt-get' : 'sudo';
  const args = root ? ['install', '-y', ...names] : ['-n', 'apt-get', 'install', '-y', ...names];
  process.stderr.write(`installing ${names.join(' ')} (their tests are the evaluation data)\n`);
  let run = spawnSync(cmd, args, { stdio: 'inherit' });
  if (run.status !== 0) {
    spawnSync(cmd, root ? ['update'] : ['-n', 'apt-get', 'update'], { stdio: 'inherit' });
    run = spawnSync(cmd, args, { stdio: 'inherit' });
  }
  if (run.status !== 0) process.stderr.write(`could not install ${names.join(' ')}; evaluating on what is installed\n`);
}

function walk(dir, pick, out = []) {
  let entries;
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p, pick, out);
    else if (e.isFile() && pick(p)) out.push(p);
  }
  return out;
}

/** Python test functions (def test...): the def line and every deeper-indented or blank line after it. */
function pythonTests(file, source) {
  const lines = source.split('\n');
  const out = [];
  for (let i = 0; i < lines.length; i++) {
    const m = /^(\s*)def (test\w*)\s*\(/.exec(lines[i]);
    if (m === null) continue;
    const indent = m[1].length;
    let j = i + 1;
    while (j < lines.length && (lines[j].trim() === '' || /^\s*/.exec(lines[j])[0].length > indent)) j++;
    while (j > i + 1 && lines[j - 1].trim() === '') j--;
    const body = lines.slice(i, j);
    if (body.length >= 4 && body.length <= 80) out.push({ file, name: m[2], language: 'python', lines: body.map((l) => l.slice(indent)) });
  }
  return out;
}

/** JavaScript test cases: it(...)/test(...) calls, their extent found by matching brackets. */
function jsTests(file, source) {
  const out = [];
  const re = /^([ \t]*)(?:it|test)\s*\(\s*(['"`])((?:(?!\2).)*)\2/gm;
  let m;
  while ((m = re.exec(source)) !== null) {
    let depth = 0;
    let j = m.index + m[0].indexOf('(');
    for (; j < source.length; j++) {
      const c = source[j];
      if (c === '(' || c === '{' || c === '[') depth++;
      else if (c === ')' || c === '}' || c === ']') {
        depth--;
        if (depth === 0) break;
      } else if (c === '"' || c === "'" || c === '`') {
        const q = c;
        for (j++; j < source.length && source[j] !== q; j++) if (source[j] === '\\') j++;
      }
    }
    const text = source.slice(m.index, j + 1);
    const lines = text.split('\n');
    const indent = m[1].length;
    if (lines.length >= 4 && lines.length <= 80) out.push({ file, name: m[3], language: 'javascript', lines: lines.map((l, k) => (k === 0 ? l.trimStart() : l.slice(Math.min(indent, /^\s*/.exec(l)[0].length)))) });
  }
  return out;
}

function loadCorpus() {
  ensurePythonPackages();
  const cases = [];
  const sources = [];
  for (const pkg of PY_PACKAGES) {
    for (const d of pkg.dirs) {
      const dir = path.join(DIST_PACKAGES, d);
      const files = walk(dir, (p) => /\/test_\w+\.py$/.test(p)).sort();
      if (files.length > 0) sources.push(`${pkg.apt} ${d}`);
      for (const f of files) cases.push(...pythonTests(path.relative(DIST_PACKAGES, f), fs.readFileSync(f, 'utf8')));
    }
  }
  const jsFiles = walk(path.join(ROOT, 'node_modules'), (p) => /\.(test|spec)\.[cm]?js$/.test(p) && !/\.d\.ts$/.test(p)).sort();
  let jsCount = 0;
  for (const f of jsFiles) {
    const found = jsTests(path.relative(ROOT, f), fs.readFileSync(f, 'utf8'));
    jsCount += found.length;
    cases.push(...found);
  }
  if (jsCount > 0) sources.push(`${jsCount} JS test cases in ${jsFiles.length} files under node_modules`);
  // The same function text twice (copies inside a package) would make the answer ambiguous: keep the first.
  const seen = new Set();
  return { cases: cases.filter((c) => (seen.has(c.lines.join('\n')) ? false : (seen.add(c.lines.join('\n')), true))), sources };
}

// ---------------------------------------------------------------------------
// Edits. Each returns the edited lines, or null when it does not apply.

const PY_RESERVED = new Set(['self', 'True', 'False', 'None', 'def', 'return', 'for', 'in', 'if', 'with', 'as', 'not', 'and', 'or', 'is', 'lambda', 'assert', 'del', 'yield', 'np', 'pytest']);
const SHORT_NAMES = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'k', 'm', 'n', 'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'z'];

function bodyIndent(lines) {
  for (let i = 1; i < lines.length; i++) if (lines[i].trim() !== '') return /^\s*/.exec(lines[i])[0];
  return '    ';
}

function renameLocals(c, random) {
  const names = new Set();
  const js = c.language === 'javascript';
  for (const l of c.lines.slice(1)) {
    const assign = js ? /\b(?:const|let|var)\s+([A-Za-z_$][\w$]*)/g : /^\s*([A-Za-z_]\w*)(?:\s*,\s*([A-Za-z_]\w*))*\s*=(?!=)/g;
    let m;
    while ((m = assign.exec(l)) !== null) for (const n of m.slice(1)) if (n && !PY_RESERVED.has(n) && n.length > 1) names.add(n);
    const loop = /\bfor\s+\(?\s*(?:const|let|var)?\s*([A-Za-z_]\w*)/.exec(l);
    if (loop && !PY_RESERVED.has(loop[1]) && loop[1].length > 1) names.add(loop[1]);
  }
  if (names.size === 0) return null;
  const used = new Set(c.lines.join('\n').match(/\w+/g));
  const fresh = SHORT_NAMES.filter((n) => !used.has(n));
  let k = Math.floor(random() * 5);
  const map = new Map();
  for (const n of names) map.set(n, fresh.length > 0 ? fresh[k++ % fresh.length] + (k > fresh.length ? k : '') : `${n[0]}${k++}`);
  const re = new RegExp(`(?<![\\w.$])(${[...map.keys()].join('|')})(?![\\w$])`, 'g');
  return [c.lines[0], ...c.lines.slice(1).map((l) => l.replace(re, (n) => map.get(n)))];
}

const ASSERT_LINE = /^\s*(assert\b|self\.assert\w*\(|assert_\w*\(|np\.testing\.assert\w*\(|expect\(|assert\.\w+\()/;

/** Single-line asserts (balanced brackets) at the body's indent. */
function assertLines(c) {
  const indent = bodyIndent(c.lines);
  const out = [];
  c.lines.forEach((l, i) => {
    if (i === 0 || !l.startsWith(indent) || /^\s/.test(l.slice(indent.length)) || !ASSERT_LINE.test(l)) return;
    let depth = 0;
    for (const ch of l) depth += ch === '(' || ch === '[' || ch === '{' ? 1 : ch === ')' || ch === ']' || ch === '}' ? -1 : 0;
    if (depth === 0 && !/[\\,]$/.test(l.trim())) out.push(i);
  });
  return out;
}

function reorderAsserts(c, random) {
  const a = assertLines(c);
  const runs = [];
  for (let i = 0; i + 1 < a.length; i++) if (a[i + 1] === a[i] + 1) runs.push(a[i]);
  if (runs.length === 0) return null;
  const at = runs[Math.floor(random() * runs.length)];
  const lines = c.lines.slice();
  [lines[at], lines[at + 1]] = [lines[at + 1], lines[at]];
  return lines;
}

function addComment(c, random) {
  const indent = bodyIndent(c.lines);
  const at = 1 + Math.floor(random() * (c.lines.length - 1));
  const lines = c.lines.slice();
  const words = ['check the edge case as well', 'regression guard', 'see the issue tracker', 'keep this in sync with the docs'];
  lines.splice(at, 0, `${indent}${c.language === 'python' ? '#' : '//'} ${words[Math.floor(random() * words.length)]}`);
  return lines;
}

/** Moves the last run of consecutive asserts into a local helper, called where they were. */
function extractHelper(c) {
  const a = assertLines(c);
  if (a.length === 0) return null;
  let start = a.length - 1;
  while (start > 0 && a[start - 1] === a[start] - 1 && a.length - start < 3) start--;
  const first = a[start];
  const last = a[a.length - 1];
  if (a.slice(start).some((v, i) => v !== first + i)) return null;
  const indent = bodyIndent(c.lines);
  const inner = indent + '    ';
  const moved = c.lines.slice(first, last + 1).map((l) => inner + l.slice(indent.length));
  const helper = c.language === 'python'
    ? [`${indent}def check_result():`, ...moved, `${indent}check_result()`]
    : [`${indent}const checkResult = () => {`, ...moved.map((l) => l), `${indent}};`, `${indent}checkResult();`];
  return [...c.lines.slice(0, first), ...helper, ...c.lines.slice(last + 1)];
}

function changeTitle(c, random) {
  const words = ['regression', 'basic', 'again', 'edge_case', 'simple', 'issue_fix'];
  const w = words[Math.floor(random() * words.length)];
  if (c.language === 'python') return [c.lines[0].replace(/def (test\w*)/, (_, n) => `def ${n.replace(/^test_?/, `test_${w}_`)}`), ...c.lines.slice(1)];
  return [c.lines[0].replace(/(['"`])((?:(?!\1).)*)\1/, (_, q, t) => `${q}${w.replace('_', ' ')}: ${t}${q}`), ...c.lines.slice(1)];
}

function applyEdit(kind, c, random) {
  switch (kind) {
    case 'rename-locals':
      return renameLocals(c, random);
    case 'reorder-asserts':
      return reorderAsserts(c, random);
    case 'add-comment':
      return addComment(c, random);
    case 'extract-helper':
      return extractHelper(c);
    case 'change-title':
      return changeTitle(c, random);
    case 'all-edits': {
      let cur = c;
      let applied = 0;
      for (const k of EDITS.slice(0, -1)) {
        const next = applyEdit(k, cur, random);
        if (next !== null) {
          cur = { ...cur, lines: next };
          applied++;
        }
      }
      return applied >= 3 ? cur.lines : null;
    }
  }
  throw new Error(kind);
}

// ---------------------------------------------------------------------------
// Rankings

function rankOf(scores, answer) {
  const s = scores[answer];
  let rank = 1;
  for (let i = 0; i < scores.length; i++) if (i !== answer && (scores[i] > s || (scores[i] === s && i < answer))) rank++;
  return rank;
}

/** scikit-learn's TfidfVectorizer defaults, written out: the baseline. */
function tfidfBaseline(corpus) {
  const words = (t) => (t.toLowerCase().match(/\b\w\w+\b/gu) ?? []);
  const df = new Map();
  const docs = corpus.map((t) => {
    const tf = new Map();
    for (const w of words(t)) tf.set(w, (tf.get(w) ?? 0) + 1);
    for (const w of tf.keys()) df.set(w, (df.get(w) ?? 0) + 1);
    return tf;
  });
  const n = corpus.length;
  const idf = (w) => Math.log((1 + n) / (1 + (df.get(w) ?? 0))) + 1;
  const vec = (tf) => {
    const v = new Map();
    let sq = 0;
    for (const [w, c] of tf) {
      const x = c * idf(w);
      v.set(w, x);
      sq += x * x;
    }
    const inv = sq > 0 ? 1 / Math.sqrt(sq) : 0;
    for (const [w, x] of v) v.set(w, x * inv);
    return v;
  };
  const vectors = docs.map(vec);
  // Inverted lists make the exact cosine fast.
  const postings = new Map();
  vectors.forEach((v, d) => {
    for (const [w, x] of v) {
      let p = postings.get(w);
      if (p === undefined) postings.set(w, (p = []));
      p.push(d, x);
    }
  });
  return (query) => {
    const tf = new Map();
    for (const w of words(query)) tf.set(w, (tf.get(w) ?? 0) + 1);
    const q = vec(tf);
    const scores = new Float64Array(n);
    for (const [w, x] of q) {
      const p = postings.get(w);
      if (p !== undefined) for (let i = 0; i < p.length; i += 2) scores[p[i]] += x * p[i + 1];
    }
    return scores;
  };
}

function summarize(ranks) {
  const n = ranks.length;
  return {
    queries: n,
    mrr: ranks.reduce((s, r) => s + 1 / r, 0) / n,
    recallAt1: ranks.filter((r) => r <= 1).length / n,
    recallAt5: ranks.filter((r) => r <= 5).length / n,
  };
}

async function evaluate({ queries: wanted = 600, seed = 1, dim: newDim = 512 } = {}) {
  const { loadQEModule } = require(path.join(DIST, 'module.js'));
  const { embedSource } = require(path.join(DIST, 'code-embedding.js'));
  const { createCodeIndex } = require(path.join(DIST, 'code-index.js'));

  const { cases, sources } = loadCorpus();
  if (cases.length < 50) throw new Error(`only ${cases.length} test cases found; install python3-numpy and python3-pyflakes`);
  const texts = cases.map((c) => c.lines.join('\n'));
  const random = rng(seed);

  // The sample: a random order of the cases; each takes the next edit kind that applies to it.
  const order = cases.map((_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  const queries = [];
  let next = 0;
  for (const i of order) {
    if (queries.length >= wanted) break;
    for (let t = 0; t < EDITS.length; t++) {
      const kind = EDITS[(next + t) % EDITS.length];
      const edited = applyEdit(kind, cases[i], random);
      if (edited !== null && edited.join('\n') !== texts[i]) {
        queries.push({ answer: i, kind, text: edited.join('\n'), language: cases[i].language });
        next = (next + t + 1) % EDITS.length;
        break;
      }
    }
  }

  const module = await loadQEModule({ kind: 'simd' });
  const ranks = { old: [], 'tf-idf': [], new: [], builtin: [] };

  // old: today's embedding, exact cosine over all candidates.
  const dim = 512;
  const oldCorpus = new Float32Array(cases.length * dim);
  for (const [method, weighting] of [['old', 'uniform'], ['builtin', 'builtin']]) {
    cases.forEach((c, i) => oldCorpus.set(embedSource(module, texts[i], { language: c.language, weighting }), i * dim));
    for (const q of queries) {
      const v = embedSource(module, q.text, { language: q.language, weighting });
      const scores = new Float64Array(cases.length);
      for (let i = 0; i < cases.length; i++) {
        let s = 0;
        for (let c = 0; c < dim; c++) s += v[c] * oldCorpus[i * dim + c];
        scores[i] = s;
      }
      ranks[method].push(rankOf(scores, q.answer));
    }
  }

  const tfidf = tfidfBaseline(texts);
  for (const q of queries) ranks['tf-idf'].push(rankOf(tfidf(q.text), q.answer));

  // new: the corpus-aware index; languages differ by case, so each text's language is detected.
  const index = createCodeIndex(module, { kind: 'code', dim: newDim });
  try {
    texts.forEach((t, i) => index.add(String(i), t));
    for (const q of queries) {
      const results = index.search(q.text, cases.length);
      const scores = new Float64Array(cases.length).fill(-2);
      for (const r of results) scores[Number(r.id)] = r.score;
      ranks.new.push(rankOf(scores, q.answer));
    }
  } finally {
    index.dispose();
  }

  const byKind = {};
  for (const kind of EDITS) {
    const idx = queries.map((q, i) => (q.kind === kind ? i : -1)).filter((i) => i >= 0);
    byKind[kind] = Object.fromEntries(Object.entries(ranks).map(([m, r]) => [m, summarize(idx.map((i) => r[i]))]));
  }
  return {
    candidates: cases.length,
    files: new Set(cases.map((c) => c.file)).size,
    sources,
    seed,
    dim: newDim,
    overall: Object.fromEntries(Object.entries(ranks).map(([m, r]) => [m, summarize(r)])),
    byKind,
  };
}

function markdown(r) {
  const f = (x) => x.toFixed(3);
  const lines = [
    `${r.overall.new.queries} edited copies searched among ${r.candidates} real test cases (${r.files} files: ${r.sources.join('; ')}), seed ${r.seed}:`,
    '',
    '| ranking | MRR | recall@1 | recall@5 |',
    '|---|---|---|---|',
  ];
  const names = {
    old: 'old: generateCodeEmbedding before this change (weighting: uniform, dim 512)',
    'tf-idf': 'TF-IDF baseline (words, smoothed idf, cosine)',
    new: `new: createCodeIndex (BM25-weighted hashed features, dim ${r.dim})`,
    builtin: 'generateCodeEmbedding now (built-in weighting, no corpus, dim 512)',
  };
  for (const [m, s] of Object.entries(r.overall)) lines.push(`| ${names[m]} | ${f(s.mrr)} | ${f(s.recallAt1)} | ${f(s.recallAt5)} |`);
  lines.push('', '| edit | queries | MRR old / tf-idf / new / built-in | recall@1 old / tf-idf / new / built-in |', '|---|---|---|---|');
  for (const [k, s] of Object.entries(r.byKind)) {
    lines.push(`| ${k} | ${s.new.queries} | ${f(s.old.mrr)} / ${f(s['tf-idf'].mrr)} / ${f(s.new.mrr)} / ${f(s.builtin.mrr)} | ${f(s.old.recallAt1)} / ${f(s['tf-idf'].recallAt1)} / ${f(s.new.recallAt1)} / ${f(s.builtin.recallAt1)} |`);
  }
  return lines.join('\n');
}

module.exports = { evaluate, markdown };

if (require.main === module) {
  evaluate({ queries: Number(arg('queries', 600)), seed: Number(arg('seed', 1)), dim: Number(arg('dim', 512)) })
    .then((r) => console.log(process.argv.includes('--json') ? JSON.stringify(r, null, 2) : markdown(r)))
    .catch((e) => {
      console.error(e);
      process.exit(1);
    });
}
