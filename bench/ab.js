#!/usr/bin/env node
'use strict';
/*
 * A/B of two builds of the package in one process, taking turns:
 *   node bench/ab.js <dir A> <dir B> [--rounds=N] [--runs=N]
 * Each dir is a built checkout (dist/ and wasm/). The rows are the
 * benchmark's attention and search rows (js/benchmark-rows.ts: attention at
 * the three reference shapes, top-10 in a resident 10,000 x 384 corpus with
 * 1 and 512 queries, one defect against 2,000 patterns) plus attention at
 * N = 64 (call overhead) and a code embedding of source text; each on 1
 * thread and on 2. A and B run alternately: per round, one untimed call then
 * `runs` timed calls of each, the order flipped every round, so a slow spell
 * of the machine falls on both. Prints the median, min and max per build
 * (ms), B's median over A's, and the spread of that ratio over the rounds
 * (the ratio of each round's medians: min-max), which is the noise to read
 * a difference against. Both builds must give the same outputs (checked on
 * every row). --only=<text> keeps the rows whose name contains it.
 */
const path = require('path');
const { performance } = require('perf_hooks');

const args = process.argv.slice(2);
const dirs = args.filter((a) => !a.startsWith('--'));
const opt = (name, d) => Number((args.find((a) => a.startsWith(`--${name}=`)) ?? `=${d}`).split('=')[1]);
if (dirs.length !== 2) {
  console.error('usage: node bench/ab.js <built dir A> <built dir B> [--rounds=10] [--runs=10] [--only=text]');
  process.exit(2);
}
const ROUNDS = opt('rounds', 10);
const RUNS = opt('runs', 10);
const ONLY = (args.find((a) => a.startsWith('--only=')) ?? '').slice('--only='.length);

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

// Attention shapes: the benchmark's reference shapes (workload, N, dim, heads) and a small one.
const ATTENTION = [
  ['test-similarity', 64, 384, 8],
  ['test-similarity', 512, 384, 8],
  ['code-embedding', 1024, 512, 4],
  ['defect-matching', 256, 384, 12],
];
const SOURCE = `describe('parser', () => {
  it('parses nested arrays', () => {
    const input = '[1, [2, 3], [[4]]]';
    expect(parse(input)).toEqual([1, [2, 3], [[4]]]);
  });
  it('rejects a trailing comma', () => {
    expect(() => parse('[1, 2,]')).toThrow(SyntaxError);
  });
});
`;

async function rows(api, threads) {
  const engines = [];
  const engine = async (workload) => {
    const fa = await api.createQEFlashAttention(workload, undefined, { threads });
    engines.push(fa);
    return fa;
  };
  const out = [];
  for (const [workload, n, dim, heads] of ATTENTION) {
    const fa = await engine(workload);
    const Q = uniform(n * dim, 1), K = uniform(n * dim, 2), V = uniform(n * dim, 3);
    out.push({ name: `attention N=${n} dim=${dim} heads=${heads}, ${threads} thread(s)`, run: () => fa.computeFlashAttentionSync(Q, K, V, n, dim, { heads }) });
  }
  const fa = await engine('test-similarity');
  const index = fa.createSimilarityIndex(384);
  index.add(uniform(10000 * 384, 4));
  const q1 = uniform(384, 5), q512 = uniform(512 * 384, 6);
  out.push({ name: `top-10 search, 1 query, resident 10,000 x 384, ${threads} thread(s)`, run: () => index.search(q1, 10) });
  out.push({ name: `top-10 search, 512 queries, resident 10,000 x 384, ${threads} thread(s)`, run: () => index.searchBatch(q512, 10) });
  const library = { data: uniform(2000 * 384, 7), count: 2000 };
  const defect = uniform(384, 8);
  const dm = await engine('defect-matching');
  out.push({ name: `match 1 defect against 2,000 patterns, dim 384, ${threads} thread(s)`, run: () => dm.matchDefectPatternSync(defect, library) });
  const ce = await engine('code-embedding');
  out.push({ name: `code embedding of a 9-line test (text), ${threads} thread(s)`, run: () => ce.generateCodeEmbeddingSync(SOURCE) });
  return { rows: out.filter((r) => r.name.includes(ONLY)), close: () => { index.dispose(); for (const e of engines) e.dispose(); } };
}

function same(a, b) {
  const flat = (x) => JSON.stringify(x, (k, v) => (v instanceof Float32Array ? Array.from(v) : v));
  const strip = (x) => (x && x.output ? x.output : x);
  return flat(strip(a)) === flat(strip(b));
}

async function main() {
  const apis = dirs.map((d) => require(path.resolve(d, 'dist', 'cjs', 'js', 'index.js')));
  console.log(`A = ${dirs[0]}\nB = ${dirs[1]}\n${ROUNDS} rounds x ${RUNS} timed runs each, turns alternate\n`);
  const os = require('os');
  console.log(`Node ${process.version}, ${os.cpus().length} cores, load average at start ${os.loadavg().map((x) => x.toFixed(2)).join(' / ')}`);
  console.log('| row | A median (min-max) ms | B median (min-max) ms | B / A | B / A per round (min-max) |');
  console.log('|---|---|---|---|---|');
  for (const threads of [1, 2]) {
    const sets = [await rows(apis[0], threads), await rows(apis[1], threads)];
    for (let r = 0; r < sets[0].rows.length; r++) {
      const pair = [sets[0].rows[r], sets[1].rows[r]];
      const outs = [await pair[0].run(), await pair[1].run()];
      if (!same(outs[0], outs[1])) throw new Error(`${pair[0].name}: A and B differ`);
      const times = [[], []];
      const ratios = [];
      for (let round = 0; round < ROUNDS; round++) {
        const mine = [[], []];
        for (const e of round % 2 ? [1, 0] : [0, 1]) {
          await pair[e].run();
          for (let i = 0; i < RUNS; i++) {
            const t0 = performance.now();
            await pair[e].run();
            mine[e].push(performance.now() - t0);
          }
          times[e].push(...mine[e]);
        }
        ratios.push(median(mine[1]) / median(mine[0]));
      }
      const f = (t) => `${median(t).toFixed(3)} (${Math.min(...t).toFixed(3)}-${Math.max(...t).toFixed(3)})`;
      console.log(`| ${pair[0].name} | ${f(times[0])} | ${f(times[1])} | ${(median(times[1]) / median(times[0])).toFixed(3)} | ${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)} |`);
    }
    for (const s of sets) s.close();
  }
  console.log(`load average at end ${require('os').loadavg().map((x) => x.toFixed(2)).join(' / ')}`);
  await Promise.all(apis.map((a) => a.terminateThreadPools?.()));
}

main().catch((e) => { console.error(e); process.exit(1); });
