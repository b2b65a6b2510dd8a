#!/usr/bin/env node
'use strict';
/*
 * A/B of two builds of the package in one process, taking turns:
 *   node bench/ab.js <dir A> <dir B> [--rounds=N] [--runs=N]
 * Each dir is a built checkout (dist/ and wasm/). For every row (attention
 * at N = 64, 256, 1024, dim 384, and search of a 10,000 x 384 resident
 * index with 1 and 64 queries, each on 1 thread and on 2), A and B run
 * alternately: per round, one untimed call then `runs` timed calls of each,
 * the order flipped every round, so a slow spell of the machine falls on
 * both. Prints the median, min and max per build (ms) and B's median over A's.
 * Both builds must give the same outputs (checked on every row).
 */
const path = require('path');
const { performance } = require('perf_hooks');

const args = process.argv.slice(2);
const dirs = args.filter((a) => !a.startsWith('--'));
const opt = (name, d) => Number((args.find((a) => a.startsWith(`--${name}=`)) ?? `=${d}`).split('=')[1]);
if (dirs.length !== 2) {
  console.error('usage: node bench/ab.js <built dir A> <built dir B> [--rounds=10] [--runs=10]');
  process.exit(2);
}
const ROUNDS = opt('rounds', 10);
const RUNS = opt('runs', 10);

function uniform(n, seed) {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    out[i] = s / 4294967296 * 2 - 1;
  }
  return out;
}

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };

async function rows(api, threads) {
  const fa = await api.createQEFlashAttention('test-similarity', { dim: 384 }, { threads });
  const out = [];
  for (const n of [64, 256, 1024]) {
    const Q = uniform(n * 384, 1), K = uniform(n * 384, 2), V = uniform(n * 384, 3);
    out.push({ name: `attention N=${n} dim=384, ${threads} thread(s)`, run: () => fa.computeFlashAttention(Q, K, V, n, 384) });
  }
  const index = fa.createSimilarityIndex(384);
  index.add(uniform(10000 * 384, 4));
  const q1 = uniform(384, 5), q64 = uniform(64 * 384, 6);
  out.push({ name: `search 10,000 x 384, 1 query, ${threads} thread(s)`, run: () => index.search(q1, 10) });
  out.push({ name: `search 10,000 x 384, 64 queries, ${threads} thread(s)`, run: () => index.searchBatch(q64, 10) });
  return { rows: out, close: () => { index.dispose(); fa.dispose?.(); } };
}

function same(a, b) {
  const flat = (x) => JSON.stringify(x, (k, v) => (v instanceof Float32Array ? Array.from(v) : v));
  const strip = (x) => (x && x.output ? x.output : x);
  return flat(strip(a)) === flat(strip(b));
}

async function main() {
  const apis = dirs.map((d) => require(path.resolve(d, 'dist', 'cjs', 'js', 'index.js')));
  console.log(`A = ${dirs[0]}\nB = ${dirs[1]}\n${ROUNDS} rounds x ${RUNS} timed runs each, turns alternate\n`);
  console.log('| row | A median (min-max) ms | B median (min-max) ms | B / A |');
  console.log('|---|---|---|---|');
  for (const threads of [1, 2]) {
    const sets = [await rows(apis[0], threads), await rows(apis[1], threads)];
    for (let r = 0; r < sets[0].rows.length; r++) {
      const pair = [sets[0].rows[r], sets[1].rows[r]];
      const outs = [await pair[0].run(), await pair[1].run()];
      if (!same(outs[0], outs[1])) throw new Error(`${pair[0].name}: A and B differ`);
      const times = [[], []];
      for (let round = 0; round < ROUNDS; round++) {
        for (const e of round % 2 ? [1, 0] : [0, 1]) {
          await pair[e].run();
          for (let i = 0; i < RUNS; i++) {
            const t0 = performance.now();
            await pair[e].run();
            times[e].push(performance.now() - t0);
          }
        }
      }
      const f = (t) => `${median(t).toFixed(3)} (${Math.min(...t).toFixed(3)}-${Math.max(...t).toFixed(3)})`;
      console.log(`| ${pair[0].name} | ${f(times[0])} | ${f(times[1])} | ${(median(times[1]) / median(times[0])).toFixed(3)} |`);
    }
    for (const s of sets) s.close();
  }
  await Promise.all(apis.map((a) => a.terminateThreadPools()));
}

main().catch((e) => { console.error(e); process.exit(1); });
