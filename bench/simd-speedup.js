#!/usr/bin/env node
'use strict';
/*
 * The SIMD speedup behind SIMDCapabilities.expectedSpeedup: each built-in
 * operation of WASMSIMDBackend.benchmarkOperation timed on the SIMD build
 * (and the relaxed one where the engine validates it) and on the scalar
 * build of the same C, taking turns in one process, 5 rounds of 40 timed
 * calls each after warm-up; prints the median per-round ratio scalar / SIMD
 * with its min and max. Run after `make all`: node bench/simd-speedup.js
 * (Node 20: add --experimental-wasm-relaxed-simd for the relaxed build).
 */
const path = require('path');
const api = require(path.join(__dirname, '..', 'dist', 'cjs', 'js', 'index.js'));

const OPS = ['matmul', 'vecadd', 'embedding', 'softmax', 'layer-norm', 'attention'];
const ROUNDS = 5;
const ITERATIONS = 40;

const median = (a) => {
  const s = a.slice().sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

async function backend(module) {
  const b = new api.WASMSIMDBackend({ module });
  try {
    await b.initialize();
    return b;
  } catch {
    return null;
  }
}

(async () => {
  const scalar = await backend('scalar');
  const builds = [['simd', await backend('simd')], ['relaxed', await backend('relaxed')]].filter(([, b]) => b !== null);
  const times = {};
  for (const op of OPS) times[op] = { scalar: [], ...Object.fromEntries(builds.map(([k]) => [k, []])) };
  for (let round = 0; round < ROUNDS; round++) {
    for (const op of OPS) {
      times[op].scalar.push((await scalar.benchmarkOperation(op, ITERATIONS)).medianMs);
      for (const [k, b] of builds) times[op][k].push((await b.benchmarkOperation(op, ITERATIONS)).medianMs);
    }
  }
  console.log(`| operation | scalar ms | ${builds.map(([k]) => `${k} ms | scalar / ${k} (min-max)`).join(' | ')} |`);
  console.log(`|---|---|${builds.map(() => '---|---|').join('')}`);
  for (const op of OPS) {
    const cells = builds.map(([k]) => {
      const ratios = times[op].scalar.map((t, i) => t / times[op][k][i]);
      return `${median(times[op][k]).toFixed(3)} | ${median(ratios).toFixed(2)}x (${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)})`;
    });
    console.log(`| ${op} | ${median(times[op].scalar).toFixed(3)} | ${cells.join(' | ')} |`);
  }
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
