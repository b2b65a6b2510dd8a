#!/usr/bin/env node
/*
 * The package's ES-module builds, from tsc's ES-module output (build/esm,
 * tsconfig.esm.json), in two trees that differ in one import:
 *   dist/esm/node/js/     js/platform.ts (Node built-ins, loaded lazily)
 *   dist/esm/browser/js/  js/platform-browser.ts: no Node built-in anywhere,
 *                         the .wasm found with new URL(..., import.meta.url)
 * Relative specifiers get their '.js' (browsers and Node's ESM resolve no
 * extensionless paths). dist/esm/types/ holds the declarations with the same
 * specifiers, for `import` consumers under node16/bundler resolution. Then
 * empty modules are dropped and the browser tree is checked for Node names.
 * Run after `tsc -p tsconfig.build.json` and `tsc -p tsconfig.esm.json`.
 */
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const tscOut = path.join(root, 'build', 'esm');
const dist = path.join(root, 'dist');
const fail = (message) => {
  console.error(`build-esm: ${message}`);
  process.exit(1);
};

/** Adds '.js' (or '/index.js' for a folder) to each relative specifier of `text`, a file in `dir`. */
function withExtensions(text, dir, platformFile) {
  const fix = (spec) => {
    if (!spec.startsWith('.')) return spec;
    if (/\.(m?js|json|wasm)$/.test(spec)) return spec;
    if (spec === './platform') return `./${platformFile}.js`;
    const target = path.resolve(dir, spec);
    if (fs.existsSync(target + '.ts') || fs.existsSync(target + '.js') || fs.existsSync(target + '.d.ts')) return spec + '.js';
    if (fs.existsSync(path.join(target, 'index.ts')) || fs.existsSync(path.join(target, 'index.js')) || fs.existsSync(path.join(target, 'index.d.ts'))) return spec + '/index.js';
    fail(`cannot resolve ${spec} from ${path.relative(root, dir)}`);
  };
  return text
    .replace(/(\bfrom\s*)(['"])([^'"]+)\2/g, (_, a, q, s) => `${a}${q}${fix(s)}${q}`)
    .replace(/(\bimport\s*\(\s*)(['"])([^'"]+)\2/g, (_, a, q, s) => `${a}${q}${fix(s)}${q}`)
    .replace(/(\bimport\s+)(['"])([^'"]+)\2/g, (_, a, q, s) => `${a}${q}${fix(s)}${q}`);
}

/** True for a compiled module with no code (a types-only source). */
function isEmptyModule(text) {
  const code = text
    .replace(/\/\/.*$/gm, '')
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/["']use strict["'];?/g, '')
    .replace(/Object\.defineProperty\(exports,\s*"__esModule",\s*\{\s*value:\s*true\s*\}\);?/g, '')
    .replace(/export\s*\{\s*\};?/g, '')
    .trim();
  return code === '';
}

function walk(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)]);
}

// Node ESM has no require or __dirname; the Node platform file uses both.
const NODE_ESM_PRELUDE =
  "import { createRequire as __qeCreateRequire } from 'node:module';\n" +
  "import { fileURLToPath as __qeFileURLToPath } from 'node:url';\n" +
  'const require = __qeCreateRequire(import.meta.url);\n' +
  "const __dirname = __qeFileURLToPath(new URL('.', import.meta.url));\n";

const NODE_NAMES = /['"]node:|\brequire\s*\(|__dirname|\bprocess\.(?!env\b|versions\b)|worker_threads/;

if (!fs.existsSync(tscOut)) fail('build/esm is missing: run tsc -p tsconfig.esm.json first');
const trees = {
  node: { platform: 'platform', skip: new Set(['platform-browser.js']) },
  browser: { platform: 'platform-browser', skip: new Set(['platform.js']) },
};
// Only what js/index.js reaches goes into a tree (the CLI and its helpers stay CommonJS-only).
function reachable(platformFile) {
  const seen = new Set();
  const queue = ['js/index.js'];
  while (queue.length > 0) {
    const rel = queue.shift();
    if (seen.has(rel)) continue;
    seen.add(rel);
    const text = withExtensions(fs.readFileSync(path.join(tscOut, rel), 'utf8'), path.join(root, path.dirname(rel)), platformFile);
    for (const m of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)['"](\.[^'"]+\.js)['"]/g)) {
      const next = path.posix.normalize(path.posix.join(path.posix.dirname(rel), m[1]));
      if (fs.existsSync(path.join(tscOut, next))) queue.push(next);
    }
  }
  return seen;
}

for (const [name, tree] of Object.entries(trees)) {
  const outDir = path.join(dist, 'esm', name);
  fs.rmSync(outDir, { recursive: true, force: true });
  const wanted = reachable(tree.platform);
  for (const file of walk(tscOut)) {
    if (!file.endsWith('.js')) continue;
    const rel = path.relative(tscOut, file);
    if (tree.skip.has(path.basename(rel)) || !wanted.has(rel.split(path.sep).join('/'))) continue;
    const text = fs.readFileSync(file, 'utf8');
    if (isEmptyModule(text)) continue;
    const srcDir = path.join(root, path.dirname(rel));
    let out = withExtensions(text, srcDir, tree.platform);
    if (name === 'node' && path.basename(rel) === 'platform.js') out = NODE_ESM_PRELUDE + out;
    if (name === 'browser') {
      // Comments may name Node; code may not.
      const code = out.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
      const lines = code.split('\n').filter((line) => NODE_NAMES.test(line) && !/typeof process/.test(line));
      if (lines.length > 0) fail(`the browser build's ${rel} names Node:\n  ${lines.join('\n  ')}`);
    }
    fs.mkdirSync(path.join(outDir, path.dirname(rel)), { recursive: true });
    fs.writeFileSync(path.join(outDir, rel), out);
  }
}
// The browser tree's inlined modules (js/platform-browser.ts's fallback).
const inlineDir = path.join(dist, 'esm', 'browser', 'js', 'wasm-inline');
fs.mkdirSync(inlineDir, { recursive: true });
for (const file of ['qe-flash-simd.wasm', 'qe-flash-scalar.wasm', 'qe-flash-simd-mt.wasm', 'qe-flash-relaxed.wasm', 'qe-flash-relaxed-mt.wasm']) {
  const wasm = path.join(root, 'wasm', file);
  if (!fs.existsSync(wasm)) fail(`${path.relative(root, wasm)} is missing: run make wasm first`);
  const text = fs.readFileSync(wasm).toString('base64');
  fs.writeFileSync(path.join(inlineDir, file.replace(/\.wasm$/, '.js')), `// ${file}, base64 (scripts/build-esm.js)\nexport default '${text}';\n`);
}
fs.writeFileSync(path.join(dist, 'esm', 'package.json'), JSON.stringify({ type: 'module', sideEffects: false }, null, 2) + '\n');

// Declarations that compile without the DOM lib or @types/node (lib ES2022,
// TypeScript 5.0): the standard WebAssembly names become types/wasm.ts's,
// and typed arrays lose the type argument TypeScript 5.7 added.
const TYPED_ARRAY_ARG = /\b((?:Uint8|Uint8Clamped|Int8|Uint16|Int16|Uint32|Int32|Float32|Float64|BigInt64|BigUint64)Array)<[^<>]*>/g;
function portableDeclarations(text, file) {
  let out = text.replace(TYPED_ARRAY_ARG, '$1');
  if (/\bWebAssembly\.\w/.test(out.replace(/\/\*[\s\S]*?\*\//g, '').replace(/"(?:[^"\\]|\\.)*"/g, ''))) {
    let rel = path.relative(path.dirname(file), path.join(dist, 'types', 'types', 'wasm')).split(path.sep).join('/');
    if (!rel.startsWith('.')) rel = './' + rel;
    // Only in code: comments and string literals (the worker's program) keep theirs.
    out = out.replace(/(\/\*[\s\S]*?\*\/|"(?:[^"\\]|\\.)*")|\bWebAssembly\.(\w)/g, (m, keep, c) => (keep ? keep : `QEWasm.${c}`));
    out = `import type * as QEWasm from '${rel}';\n` + out;
  }
  for (const name of ['BufferSource', 'NodeJS', 'Worker', 'Response']) {
    const code = out.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '').replace(/"(?:[^"\\]|\\.)*"/g, '');
    if (new RegExp(`\\b${name}\\b`).test(code)) fail(`${path.relative(root, file)} mentions ${name}, which needs the DOM lib or @types/node`);
  }
  return out;
}
for (const file of walk(path.join(dist, 'types'))) {
  if (file.endsWith('.d.ts')) fs.writeFileSync(file, portableDeclarations(fs.readFileSync(file, 'utf8'), file));
}

// Declarations for `import` consumers: the same files with ESM specifiers.
const typesIn = path.join(dist, 'types');
const typesOut = path.join(dist, 'esm', 'types');
fs.rmSync(typesOut, { recursive: true, force: true });
for (const file of walk(typesIn)) {
  if (!file.endsWith('.d.ts')) continue;
  const rel = path.relative(typesIn, file);
  const srcDir = path.join(root, path.dirname(rel));
  fs.mkdirSync(path.join(typesOut, path.dirname(rel)), { recursive: true });
  fs.writeFileSync(path.join(typesOut, rel), withExtensions(fs.readFileSync(file, 'utf8'), srcDir, 'platform'));
}

// The CommonJS build's types-only modules are empty: nothing requires them.
for (const file of walk(path.join(dist, 'cjs'))) {
  if (file.endsWith('.js') && isEmptyModule(fs.readFileSync(file, 'utf8'))) fs.rmSync(file);
}
const pruneEmptyFolders = (dir) => {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) pruneEmptyFolders(path.join(dir, e.name));
  if (fs.readdirSync(dir).length === 0) fs.rmdirSync(dir);
};
pruneEmptyFolders(dist);
const count = (d) => walk(d).filter((f) => f.endsWith('.js')).length;
console.log(`build-esm: dist/esm/node ${count(path.join(dist, 'esm', 'node'))} modules, dist/esm/browser ${count(path.join(dist, 'esm', 'browser'))} modules, dist/esm/types`);
