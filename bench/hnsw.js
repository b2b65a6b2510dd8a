'use strict';
/*
 * The coverage-analysis rows: qe-flash's HNSW index (WebAssembly, one
 * thread) against hnswlib-node (native hnswlib) on the same vectors, same M
 * and efConstruction, in this process, the engines taking turns.
 *
 * Data sets (384 dimensions, cosine):
 *   - a mixture of Gaussians: 100,000 points around 256 centres;
 *   - real code: distinct functions from the JavaScript and TypeScript under
 *     node_modules (and the Debian JS trees make bench installs), embedded
 *     by qe-flash's built-in code embedding (generateCodeEmbedding); up to
 *     100,000, as many as there are; held-out functions are the queries.
 * Measures: build time; bytes per vector (saved index, and ours in memory);
 * recall@10 against the exact top-10 (an exact scan) and queries/s on one
 * thread for ef 16..256 (each engine's recall-vs-QPS curve), p50 latency;
 * filtered search at 10% and 1% selectivity (ours: a bitset checked in C;
 * hnswlib-node: its JavaScript callback filter), at ef 100.
 *
 * A result counts as a hit when it is as close as the exact 10th neighbour
 * (1e-5 slack for float rounding): ties are equally right.
 *
 * Usage: node bench/hnsw.js [--quick] [--json]   (after make all; see make bench)
 */
const fs = require('fs');
const os = require('os');
const path = require('path');

const root = path.join(__dirname, '..');
const K = 10;
const M = 16;
const EF_CONSTRUCTION = 200;
const SEED = 42;
const EFS = [16, 24, 32, 48, 64, 96, 128, 192, 256];
const REAL_ROOTS = [path.join(root, 'node_modules'), '/usr/lib/node_modules', '/usr/share/emscripten'];

function loadPeer() {
  try {
    const lib = require('hnswlib-node');
    return { lib, reason: null };
  } catch (e) {
    return { lib: null, reason: `hnswlib-node not loadable (${String(e.message).split('\n')[0]}); run make bench, which builds it` };
  }
}

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

function gaussianMixture(n, nq, dim, seed) {
  const r = rng(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
  const clusters = 256;
  const centres = Array.from({ length: clusters }, () => Float64Array.from({ length: dim }, gauss));
  const draw = () => {
    const c = centres[Math.floor(r() * clusters) % clusters];
    return Float32Array.from({ length: dim }, (_, d) => c[d] + 0.6 * gauss());
  };
  return { name: 'Gaussian mixture', vectors: Array.from({ length: n }, draw), queries: Array.from({ length: nq }, draw) };
}

/** Distinct functions under the real roots, embedded (cached in .cache/bench/ by content, so reruns skip the embedding). */
async function realCode(api, n, nq, log) {
  const { extractFunctions } = require('./function-extractor');
  const seen = new Set();
  const texts = [];
  let files = 0;
  for (const dir of REAL_ROOTS) {
    if (!fs.existsSync(dir)) continue;
    const got = extractFunctions(dir, n + nq - texts.length);
    files += got.files;
    for (const f of got.functions) {
      if (seen.has(f.text)) continue;
      seen.add(f.text);
      texts.push(f.text);
    }
    if (texts.length >= n + nq) break;
  }
  const hash = require('crypto').createHash('sha256');
  for (const t of texts) hash.update(t).update('\0');
  const cacheDir = path.join(root, '.cache', 'bench');
  const cache = path.join(cacheDir, `functions-${hash.digest('hex').slice(0, 16)}.f32`);
  const dim = 384;
  let flat;
  if (fs.existsSync(cache) && fs.statSync(cache).size === texts.length * dim * 4) {
    const b = fs.readFileSync(cache);
    flat = new Float32Array(b.buffer, b.byteOffset, texts.length * dim);
  } else {
    log(`  embedding ${texts.length} functions from ${files} files (built-in code embedding, dim ${dim})...`);
    const engine = await api.createQEFlashAttention('coverage-analysis');
    flat = new Float32Array(texts.length * dim);
    texts.forEach((t, i) => flat.set(engine.generateCodeEmbeddingSync(t), i * dim));
    engine.dispose();
    require('./write-results').writeResultFiles(cacheDir, { [path.basename(cache)]: new Uint8Array(flat.buffer, flat.byteOffset, flat.byteLength) });
  }
  const rows = Array.from({ length: texts.length }, (_, i) => flat.subarray(i * dim, (i + 1) * dim));
  // Every 50th function is held out as a query, so queries come from all packages.
  const queries = [];
  const vectors = [];
  rows.forEach((v, i) => ((i % 50 === 49 && queries.length < nq) || vectors.length >= n ? queries : vectors).push(v));
  return { name: 'real code (functions under node_modules)', vectors, queries: queries.slice(0, nq), files };
}

function median(xs) {
  const s = xs.slice().sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)] : NaN;
}

function recallOf(results, exact) {
  let hits = 0;
  let total = 0;
  results.forEach((got, i) => {
    const want = exact[i];
    const worst = want[want.length - 1] + 1e-5;
    for (const d of got) if (d <= worst) hits++;
    total += want.length;
  });
  return total ? Math.min(1, hits / total) : NaN;
}

/** Runs each engine's batch in turn, `rounds` times: median QPS, p50 latency (ms) and the distances of the last round. */
function takeTurns(engines, queries, rounds) {
  const out = engines.map(() => ({ qps: [], lat: [], distances: null }));
  for (let r = 0; r < rounds; r++) {
    engines.forEach((e, j) => {
      if (!e) return;
      for (let i = 0; i < Math.min(20, queries.length); i++) e(queries[i]); // warm
      const distances = new Array(queries.length);
      const t0 = performance.now();
      for (let i = 0; i < queries.length; i++) {
        const s = performance.now();
        distances[i] = e(queries[i]);
        out[j].lat.push(performance.now() - s);
      }
      out[j].qps.push(queries.length / ((performance.now() - t0) / 1000));
      out[j].distances = distances;
    });
  }
  return out.map((o) => ({ qps: median(o.qps), qpsMin: Math.min(...o.qps), qpsMax: Math.max(...o.qps), p50Ms: median(o.lat), distances: o.distances }));
}

async function runDataset(api, peerLib, data, opts, log) {
  const dim = data.vectors[0].length;
  const n = data.vectors.length;
  log(`coverage-analysis HNSW: ${data.name}, ${n} x ${dim}, ${data.queries.length} queries`);
  const row = { dataset: data.name, n, dim, queries: data.queries.length, M, efConstruction: EF_CONSTRUCTION };

  // Build: the peer first, then ours (one thread each).
  let peer = null;
  const arrays = peerLib ? data.vectors.map((v) => Array.from(v)) : null;
  const qArrays = peerLib ? data.queries.map((v) => Array.from(v)) : null;
  if (peerLib) {
    peer = new peerLib.HierarchicalNSW('cosine', dim);
    const t = performance.now();
    peer.initIndex(n, M, EF_CONSTRUCTION, SEED);
    for (let i = 0; i < n; i++) peer.addPoint(arrays[i], i);
    row.peerBuildS = (performance.now() - t) / 1000;
    const tmp = path.join(os.tmpdir(), `qe-hnsw-peer-${process.pid}.bin`);
    peer.writeIndexSync(tmp);
    row.peerBytesPerVector = fs.statSync(tmp).size / n;
    fs.rmSync(tmp, { force: true });
    log(`  hnswlib-node build ${row.peerBuildS.toFixed(1)} s`);
  }
  const index = await api.createHNSWIndex({ dimensions: dim, M, efConstruction: EF_CONSTRUCTION, seed: SEED, maxElements: n }, { module: 'auto', threads: 1 });
  let t = performance.now();
  index.batchInsert(data.vectors.map((vector, key) => ({ key, vector })));
  row.oursBuildS = (performance.now() - t) / 1000;
  row.oursBytesPerVector = index.save().length / n;
  row.oursMemoryBytesPerVector = index.getStats().bytesPerVector;
  log(`  qe-flash build ${row.oursBuildS.toFixed(1)} s, ${row.oursBytesPerVector.toFixed(0)} B/vector saved`);

  // The exact top-10 distances, by scanning.
  t = performance.now();
  const exact = data.queries.map((q) => index.searchExact(q, K).map((r) => r.distance));
  log(`  exact top-10 of ${data.queries.length} queries in ${((performance.now() - t) / 1000).toFixed(1)} s`);

  const ours = (ef) => (q) => index.search(q, K, { ef }).map((r) => r.distance);
  const theirs = (ef) => {
    if (!peer) return null;
    peer.setEf(ef);
    return (i) => peer.searchKnn(qArrays[i], K).distances;
  };
  const ids = data.queries.map((_, i) => i);
  row.curve = [];
  for (const ef of opts.efs) {
    const peerRun = theirs(ef);
    const [o, p] = takeTurns([(i) => ours(ef)(data.queries[i]), peerRun], ids, opts.rounds);
    const point = { ef, ours: { recall: recallOf(o.distances, exact), qps: o.qps, qpsMin: o.qpsMin, qpsMax: o.qpsMax, p50Ms: o.p50Ms } };
    if (peerRun) point.peer = { recall: recallOf(p.distances, exact), qps: p.qps, qpsMin: p.qpsMin, qpsMax: p.qpsMax, p50Ms: p.p50Ms };
    row.curve.push(point);
    log(`  ef ${ef}: qe-flash recall ${point.ours.recall.toFixed(4)} ${point.ours.qps.toFixed(0)} q/s p50 ${point.ours.p50Ms.toFixed(3)} ms` +
      (point.peer ? ` | hnswlib-node recall ${point.peer.recall.toFixed(4)} ${point.peer.qps.toFixed(0)} q/s p50 ${point.peer.p50Ms.toFixed(3)} ms` : ''));
  }

  // Filtered at 10% and 1%: the same admitted keys for both engines.
  row.filtered = [];
  const r = rng(99);
  for (const fraction of [0.1, 0.01]) {
    const admitted = new Uint8Array(n);
    const keys = [];
    for (let i = 0; i < n; i++) if (r() < fraction) (admitted[i] = 1), keys.push(i);
    const filter = index.createFilter(keys);
    const exactF = data.queries.map((q) => index.searchExact(q, K, { filter }).map((x) => x.distance));
    const ef = 100;
    if (peer) peer.setEf(ef);
    const [o, p] = takeTurns([
      (i) => index.search(data.queries[i], K, { ef, filter }).map((x) => x.distance),
      peer ? (i) => peer.searchKnn(qArrays[i], K, (label) => admitted[label] === 1).distances : null,
    ], ids, opts.rounds);
    const f = { selectivity: fraction, admitted: keys.length, ef, ours: { recall: recallOf(o.distances, exactF), qps: o.qps, qpsMin: o.qpsMin, qpsMax: o.qpsMax, p50Ms: o.p50Ms } };
    if (peer) f.peer = { recall: recallOf(p.distances, exactF), qps: p.qps, qpsMin: p.qpsMin, qpsMax: p.qpsMax, p50Ms: p.p50Ms };
    row.filtered.push(f);
    log(`  filter ${fraction * 100}%: qe-flash recall ${f.ours.recall.toFixed(4)} ${f.ours.qps.toFixed(0)} q/s` +
      (f.peer ? ` | hnswlib-node recall ${f.peer.recall.toFixed(4)} ${f.peer.qps.toFixed(0)} q/s` : ''));
  }
  index.dispose();
  row.bars = judge(row);
  return row;
}

/** The issue's bars, judged on one data set's row. */
function judge(row) {
  const best = (engine, target) => {
    const ok = row.curve.filter((p) => p[engine] && p[engine].recall >= target);
    if (ok.length === 0) return null;
    return ok.reduce((a, b) => (b[engine].qps > a[engine].qps ? b : a));
  };
  const bars = [];
  for (const target of [0.95, 0.98]) {
    const o = best('ours', target);
    const p = best('peer', target);
    const ratio = o && p ? o.ours.qps / p.peer.qps : null;
    bars.push({
      bar: `QPS at recall >= ${target}: >= 1.2x hnswlib-node, p50 < 0.25 ms`,
      ours: o ? `ef ${o.ef}: recall ${o.ours.recall.toFixed(3)}, ${o.ours.qps.toFixed(0)} q/s, p50 ${o.ours.p50Ms.toFixed(3)} ms` : 'not reached',
      peer: p ? `ef ${p.ef}: recall ${p.peer.recall.toFixed(3)}, ${p.peer.qps.toFixed(0)} q/s` : 'not reached / not run',
      ratio,
      pass: ratio !== null && ratio >= 1.2 && o.ours.p50Ms < 0.25,
    });
  }
  bars.push({
    bar: 'build time no worse than hnswlib-node',
    ours: `${row.oursBuildS.toFixed(1)} s`,
    peer: row.peerBuildS !== undefined ? `${row.peerBuildS.toFixed(1)} s` : 'not run',
    ratio: row.peerBuildS ? row.peerBuildS / row.oursBuildS : null,
    pass: row.peerBuildS !== undefined && row.oursBuildS <= row.peerBuildS,
  });
  const f = row.filtered.find((x) => x.selectivity === 0.01);
  const fr = f && f.peer ? f.ours.qps / f.peer.qps : null;
  bars.push({
    bar: 'filter 1%: recall >= 0.98 at >= 5x hnswlib-node filtered QPS',
    ours: f ? `recall ${f.ours.recall.toFixed(3)}, ${f.ours.qps.toFixed(0)} q/s` : 'not run',
    peer: f && f.peer ? `recall ${f.peer.recall.toFixed(3)}, ${f.peer.qps.toFixed(0)} q/s` : 'not run',
    ratio: fr,
    pass: fr !== null && f.ours.recall >= 0.98 && fr >= 5,
  });
  return bars;
}

async function runHnswBenchmark({ quick = false, log = console.log } = {}) {
  const api = require(path.join(root, 'dist', 'cjs', 'js', 'index.js'));
  const { lib, reason } = loadPeer();
  if (reason) log(`note: ${reason}`);
  const opts = quick ? { n: 20000, nq: 200, efs: [16, 32, 64, 128, 256], rounds: 2 } : { n: 100000, nq: 500, efs: EFS, rounds: 5 };
  const rows = [];
  rows.push(await runDataset(api, lib, gaussianMixture(opts.n, opts.nq, 384, 7), opts, log));
  rows.push(await runDataset(api, lib, await realCode(api, opts.n, opts.nq, log), opts, log));
  return { peer: lib ? 'hnswlib-node (native hnswlib, one thread)' : reason, rows };
}

function hnswMarkdown(result) {
  const lines = [];
  for (const row of result.rows) {
    lines.push(`HNSW (coverage-analysis), ${row.dataset}: ${row.n} x ${row.dim}, ${row.queries} queries, M ${row.M}, efConstruction ${row.efConstruction}, one thread, top-10, cosine`);
    lines.push('');
    lines.push(`Build: qe-flash ${row.oursBuildS.toFixed(1)} s, hnswlib-node ${row.peerBuildS !== undefined ? `${row.peerBuildS.toFixed(1)} s` : 'not run'}. ` +
      `Bytes per vector (saved): qe-flash ${row.oursBytesPerVector.toFixed(0)} (in memory ${row.oursMemoryBytesPerVector.toFixed(0)}), hnswlib-node ${row.peerBytesPerVector !== undefined ? row.peerBytesPerVector.toFixed(0) : '-'}.`);
    lines.push('');
    lines.push('| ef | qe-flash recall@10 | qe-flash q/s (min-max) | qe-flash p50 ms | hnswlib-node recall@10 | hnswlib-node q/s (min-max) | hnswlib-node p50 ms |');
    lines.push('|---|---|---|---|---|---|---|');
    const cell = (e) => (e ? [e.recall.toFixed(4), `${e.qps.toFixed(0)} (${e.qpsMin.toFixed(0)}-${e.qpsMax.toFixed(0)})`, e.p50Ms.toFixed(3)] : ['-', '-', '-']);
    for (const p of row.curve) lines.push(`| ${p.ef} | ${[...cell(p.ours), ...cell(p.peer)].join(' | ')} |`);
    for (const f of row.filtered) lines.push(`| filter ${f.selectivity * 100}% (${f.admitted} keys), ef ${f.ef} | ${[...cell(f.ours), ...cell(f.peer)].join(' | ')} |`);
    lines.push('');
    lines.push('| bar | qe-flash | hnswlib-node | ratio | met |');
    lines.push('|---|---|---|---|---|');
    for (const b of row.bars) lines.push(`| ${b.bar} | ${b.ours} | ${b.peer} | ${b.ratio === null ? '-' : `${b.ratio.toFixed(2)}x`} | ${b.pass ? 'yes' : 'no'} |`);
    lines.push('');
  }
  return lines.join('\n');
}

/** Recall (x) against queries/s (y, log scale), one line per engine and data set. */
function hnswCurveSvg(result, title) {
  const width = 980;
  const height = 460;
  const m = { top: 50, right: 260, bottom: 60, left: 80 };
  const pw = width - m.left - m.right;
  const ph = height - m.top - m.bottom;
  const series = [];
  const colors = ['#1b9e77', '#d95f02', '#7570b3', '#e7298a'];
  for (const row of result.rows) {
    for (const engine of ['ours', 'peer']) {
      const pts = row.curve.filter((p) => p[engine]).map((p) => ({ x: p[engine].recall, y: p[engine].qps, ef: p.ef }));
      if (pts.length) series.push({ name: `${engine === 'ours' ? 'qe-flash' : 'hnswlib-node'}, ${row.dataset.split(' (')[0]}`, pts, dash: engine === 'peer' });
    }
  }
  const all = series.flatMap((s) => s.pts);
  const xlo = Math.min(0.9, ...all.map((p) => p.x));
  const ylo = Math.pow(10, Math.floor(Math.log10(Math.min(...all.map((p) => p.y)))));
  const yhi = Math.pow(10, Math.ceil(Math.log10(Math.max(...all.map((p) => p.y)))));
  const X = (x) => m.left + ((x - xlo) / (1 - xlo)) * pw;
  const Y = (y) => m.top + ph - ((Math.log10(y) - Math.log10(ylo)) / (Math.log10(yhi) - Math.log10(ylo))) * ph;
  const o = [`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${(m.left + width - m.right) / 2}" y="28" text-anchor="middle" font-size="16" font-weight="bold">${title}</text>`];
  for (let y = ylo; y <= yhi; y *= 10) {
    o.push(`<line x1="${m.left}" x2="${m.left + pw}" y1="${Y(y)}" y2="${Y(y)}" stroke="#ddd"/><text x="${m.left - 8}" y="${Y(y) + 4}" text-anchor="end">${y}</text>`);
  }
  for (let x = Math.ceil(xlo * 100) / 100; x <= 1.0001; x += (1 - xlo) > 0.2 ? 0.05 : 0.01) {
    o.push(`<line x1="${X(x)}" x2="${X(x)}" y1="${m.top}" y2="${m.top + ph}" stroke="#eee"/><text x="${X(x)}" y="${m.top + ph + 16}" text-anchor="middle">${x.toFixed(2)}</text>`);
  }
  o.push(`<text x="${m.left + pw / 2}" y="${height - 18}" text-anchor="middle">recall@10 (ef 16 to 256 along each line)</text>`);
  o.push(`<text transform="translate(22 ${m.top + ph / 2}) rotate(-90)" text-anchor="middle">queries per second, one thread (log)</text>`);
  series.forEach((s, i) => {
    const c = colors[i % colors.length];
    o.push(`<polyline fill="none" stroke="${c}" stroke-width="2"${s.dash ? ' stroke-dasharray="6 4"' : ''} points="${s.pts.map((p) => `${X(p.x).toFixed(1)},${Y(p.y).toFixed(1)}`).join(' ')}"/>`);
    for (const p of s.pts) o.push(`<circle cx="${X(p.x).toFixed(1)}" cy="${Y(p.y).toFixed(1)}" r="3" fill="${c}"><title>${s.name} ef ${p.ef}: recall ${p.x.toFixed(4)}, ${p.y.toFixed(0)} q/s</title></circle>`);
    o.push(`<line x1="${width - m.right + 20}" x2="${width - m.right + 50}" y1="${m.top + 10 + i * 22}" y2="${m.top + 10 + i * 22}" stroke="${c}" stroke-width="2"${s.dash ? ' stroke-dasharray="6 4"' : ''}/><text x="${width - m.right + 56}" y="${m.top + 14 + i * 22}">${s.name}</text>`);
  });
  o.push('</svg>');
  return o.join('\n');
}

module.exports = { runHnswBenchmark, hnswMarkdown, hnswCurveSvg };

if (require.main === module) {
  const args = new Set(process.argv.slice(2));
  runHnswBenchmark({ quick: args.has('--quick'), log: (l) => console.error(l) }).then((result) => {
    if (args.has('--json')) console.log(JSON.stringify(result, null, 2));
    else console.log(hnswMarkdown(result));
    if (args.has('--svg')) require('./write-results').writeFileAtomicSync(path.join(os.tmpdir(), 'qe-hnsw-curve.svg'), hnswCurveSvg(result, 'HNSW recall vs QPS'));
    process.exit(0);
  }, (e) => {
    console.error(e && e.stack ? e.stack : e);
    process.exit(1);
  });
}
