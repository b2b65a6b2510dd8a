#!/usr/bin/env node
'use strict';
/*
 * `make soak`: 100,000 mixed calls on one module, as a long-lived agent makes
 * them (attention small and threaded, resident-index search and searchBatch,
 * index add and remove, code embedding from text and from tokens, one-shot
 * similarity, defect matching, the backend's kernels, the pattern adapter
 * (apply, learning steps, storing, removing and finding patterns), an HNSW
 * index under churn (delete the oldest key, insert one, search), and bad
 * calls that must fail cleanly), asserting that module memory stays flat within one
 * 64 KiB page after the warm-up, that no allocation outlives its call, and
 * that sampled answers stay right (float64 references). Prints module
 * memory, live allocations and RSS at checkpoints; exits non-zero on any
 * failure. Not part of `make test` (it takes about a minute).
 *
 * Options: --calls=N (default 100000), --warmup=N (default 10% of calls),
 *          --threads=N (default 2).
 */
const path = require('path');
const root = path.join(__dirname, '..');
const api = require(path.join(root, 'dist', 'cjs', 'js', 'index.js'));
const { loadQEModule } = require(path.join(root, 'dist', 'cjs', 'js', 'module.js'));
const { releaseFeatureTables } = require(path.join(root, 'dist', 'cjs', 'js', 'code-embedding.js'));

const PAGE = 65536;
const arg = (name, fallback) => {
  const a = process.argv.find((s) => s.startsWith(`--${name}=`));
  return a === undefined ? fallback : Number(a.slice(name.length + 3));
};
const CALLS = arg('calls', 100000);
const WARMUP = arg('warmup', Math.floor(CALLS / 10));
const THREADS = arg('threads', 2);

/** Seeded uniform floats in [-1, 1). */
function uniform(n, seed) {
  const out = new Float32Array(n);
  let s = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = (s >>> 0) / 2147483648 - 1;
  }
  return out;
}

/** Float64 multi-head attention (no mask, or causal). */
function referenceAttention(Q, K, V, n, dim, heads, causal) {
  const hd = dim / heads;
  const scale = 1 / Math.sqrt(hd);
  const out = new Float64Array(n * dim);
  for (let i = 0; i < n; i++) {
    for (let h = 0; h < heads; h++) {
      const last = causal ? i : n - 1;
      const logits = new Float64Array(last + 1);
      let max = -Infinity;
      for (let j = 0; j <= last; j++) {
        let dot = 0;
        for (let d = 0; d < hd; d++) dot += Q[i * dim + h * hd + d] * K[j * dim + h * hd + d];
        logits[j] = dot * scale;
        max = Math.max(max, logits[j]);
      }
      let sum = 0;
      for (let j = 0; j <= last; j++) sum += (logits[j] = Math.exp(logits[j] - max));
      for (let d = 0; d < hd; d++) {
        let acc = 0;
        for (let j = 0; j <= last; j++) acc += logits[j] * V[j * dim + h * hd + d];
        out[i * dim + h * hd + d] = acc / sum;
      }
    }
  }
  return out;
}

function maxAbsDiff(a, b) {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Ids of the k stored vectors most cosine-similar to q, in float64 (ties by lower id). */
function referenceTopK(q, stored, k) {
  const norm = (v) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
  const qn = norm(q);
  return [...stored.entries()]
    .map(([id, v]) => ({ id, s: v.reduce((acc, x, d) => acc + x * q[d], 0) / (qn * norm(v)) }))
    .sort((a, b) => b.s - a.s || a.id - b.id)
    .slice(0, k);
}

const SOURCES = [
  "it('adds two numbers', () => { expect(add(1, 2)).toBe(3); });",
  'def test_parse_header(self):\n    self.assertEqual(parse("a: b"), {"a": "b"})\n',
  '@Test\npublic void rejectsEmptyName() { assertThrows(IllegalArgumentException.class, () -> new User("")); }',
  'func TestRetryBackoff(t *testing.T) {\n\tif got := backoff(3); got != 8 { t.Fatalf("got %d", got) }\n}',
  'const re = /[a-z]+\\/x/g; const s = `tmpl ${a + `inner ${b}`}`; // comment\nlet snake_case_name = camelCaseName;',
];

async function main() {
  const fa = await api.createQEFlashAttention('test-similarity', { dim: 64, blocks: { headsPerBlock: 4 } }, { threads: THREADS });
  const module = await loadQEModule({ threads: THREADS });
  const backend = await api.getWASMSIMDBackend();
  const dim = 64;
  const index = fa.createSimilarityIndex(dim);
  const stored = new Map(); // id -> Float32Array, the index's contents as the test knows them
  const order = []; // ids, oldest first
  for (let i = 0; i < 256; i++) {
    const v = uniform(dim, 5000 + i);
    const [id] = index.add(v);
    stored.set(id, v);
    order.push(id);
  }
  // The pattern adapter (apply, learning steps, the cache) and an HNSW index
  // (insert, search, delete) on the same module, so their memory counts too.
  const adapter = await api.createPatternAdapter('pattern-adaptation', { dim, patternCacheSize: 64, module: { threads: THREADS } });
  const hnsw = await api.createHNSWIndex({ dimensions: dim, M: 8, efConstruction: 32, maxElements: 64, seed: 3 }, { threads: THREADS });
  const hnswKeys = [];
  for (let i = 0; i < 48; i++) {
    hnsw.insert(`h${i}`, uniform(dim, 7000 + i));
    hnswKeys.push(`h${i}`);
  }
  let hnswNext = 48;
  const corpusList = Array.from({ length: 40 }, (_, i) => uniform(dim, 9000 + i));
  const patterns = Array.from({ length: 12 }, (_, i) => ({ name: `p${i}`, embedding: uniform(dim, 9500 + i) }));

  const failures = [];
  const fail = (what) => {
    if (failures.length < 20) failures.push(what);
  };
  const counts = {};
  const checkpoints = [];
  let warm = null;
  let seed = 1;
  const t0 = performance.now();

  for (let call = 0; call < CALLS; call++) {
    const op = call % 14;
    counts[op] = (counts[op] ?? 0) + 1;
    const check = call % 997 < 12; // about one call in 80 is checked against a reference
    seed++;
    try {
      switch (op) {
        case 0:
        case 1: {
          // Small attention, on the calling thread (shapes 1..47, awkward sizes included).
          const n = 1 + ((call * 7) % 47);
          const causal = op === 1;
          const Q = uniform(n * dim, seed);
          const K = uniform(n * dim, seed + 1);
          const V = uniform(n * dim, seed + 2);
          const out = fa.computeFlashAttentionSync(Q, K, V, n, dim, { causal });
          if (check) {
            const d = maxAbsDiff(out, referenceAttention(Q, K, V, n, dim, 4, causal));
            if (!(d <= 1e-5)) fail(`call ${call}: attention n=${n} causal=${causal} off by ${d}`);
          }
          break;
        }
        case 2: {
          // Attention large enough to be split across the worker threads.
          const n = 96 + ((call * 13) % 65);
          const d2 = 128;
          const Q = uniform(n * d2, seed);
          const K = uniform(n * d2, seed + 1);
          const V = uniform(n * d2, seed + 2);
          const out = fa.computeFlashAttentionSync(Q, K, V, n, d2, { heads: 4 });
          if (call % 997 < 24) {
            const d = maxAbsDiff(out, referenceAttention(Q, K, V, n, d2, 4, false));
            if (!(d <= 1e-5)) fail(`call ${call}: threaded attention n=${n} off by ${d}`);
          }
          break;
        }
        case 3: {
          const q = uniform(dim, seed);
          const hits = index.search(q, 10);
          if (check) {
            const want = referenceTopK(q, stored, 10);
            for (let r = 0; r < 10; r++) {
              if (hits[r].id !== want[r].id || Math.abs(hits[r].similarity - want[r].s) > 1e-5) {
                fail(`call ${call}: search rank ${r} got ${hits[r].id}, expected ${want[r].id}`);
                break;
              }
            }
          }
          break;
        }
        case 4: {
          // Add four, remove the four oldest: the index stays at 256 rows.
          const rows = uniform(4 * dim, seed);
          const ids = index.add(rows);
          ids.forEach((id, i) => {
            stored.set(id, rows.slice(i * dim, (i + 1) * dim));
            order.push(id);
          });
          for (let i = 0; i < 4; i++) {
            const id = order.shift();
            if (!index.remove(id)) fail(`call ${call}: remove(${id}) found nothing`);
            stored.delete(id);
          }
          if (index.size !== stored.size) fail(`call ${call}: index size ${index.size}, expected ${stored.size}`);
          break;
        }
        case 5: {
          const results = index.searchBatch([uniform(dim, seed), uniform(dim, seed + 1), uniform(dim, seed + 2)], 5);
          if (results.length !== 3 || results.some((r) => r.length !== 5)) fail(`call ${call}: searchBatch shape`);
          break;
        }
        case 6: {
          const src = SOURCES[call % SOURCES.length] + `\n// ${call}\nconst v${call % 97} = ${call};`;
          const e = fa.generateCodeEmbeddingSync(src);
          if (e.length !== dim) fail(`call ${call}: embedding length ${e.length}`);
          if (check) {
            const norm = Math.sqrt(e.reduce((s, x) => s + x * x, 0));
            if (Math.abs(norm - 1) > 1e-4) fail(`call ${call}: embedding norm ${norm}`);
          }
          break;
        }
        case 7: {
          const n = 1 + (call % 16);
          const e = fa.generateCodeEmbeddingSync(uniform(n * dim, seed));
          if (e.length !== dim) fail(`call ${call}: token embedding length ${e.length}`);
          break;
        }
        case 8: {
          const q = uniform(dim, seed);
          const top = fa.computeTestSimilaritySync(q, corpusList, 3);
          if (check) {
            const want = referenceTopK(q, new Map(corpusList.map((v, i) => [i, v])), 3);
            if (top.map((r) => r.index).join() !== want.map((r) => r.id).join()) fail(`call ${call}: computeTestSimilarity order`);
          }
          break;
        }
        case 9: {
          const m = fa.matchDefectPatternSync(uniform(dim, seed), patterns);
          const total = m.reduce((s, r) => s + r.probability, 0);
          if (m.length !== patterns.length || Math.abs(total - 1) > 1e-4) fail(`call ${call}: matchDefectPattern probabilities sum to ${total}`);
          break;
        }
        case 10: {
          const x = uniform(3 * 17, seed);
          const sm = backend.softmaxSIMD(x.subarray(0, 17));
          const mm = backend.matmulSIMD(x.subarray(0, 12), x.subarray(12, 24), 3, 3, 4);
          const ln = backend.layerNormSIMD(x.subarray(0, 17), new Float32Array(17).fill(1), new Float32Array(17));
          if (sm.length !== 17 || mm.length !== 9 || ln.length !== 17) fail(`call ${call}: backend kernel shapes`);
          break;
        }
        case 11: {
          // Bad calls must throw a RangeError/TypeError and leave nothing behind.
          const n = 4;
          const Q = uniform(n * dim, seed);
          if (call % 3 === 0) Q[call % Q.length] = NaN;
          const args = call % 3 === 2 ? [Q, Q.subarray(1), Q, n, dim] : [Q, Q, Q, n, dim];
          let threw = null;
          try {
            fa.computeFlashAttentionSync(...args);
          } catch (error) {
            threw = error;
          }
          if (call % 3 !== 1 && !(threw instanceof RangeError)) fail(`call ${call}: a bad attention call gave ${threw}`);
          if (call % 3 === 1 && threw !== null) fail(`call ${call}: a good attention call threw ${threw}`);
          try {
            index.search(new Float32Array(dim + 1), 3);
            fail(`call ${call}: a wrong-length query was accepted`);
          } catch (error) {
            if (!(error instanceof RangeError)) fail(`call ${call}: a wrong-length query gave ${error}`);
          }
          break;
        }
        case 12: {
          const x = uniform(dim, seed);
          const y = adapter.apply(x);
          if (y.length !== dim || !y.every(Number.isFinite)) fail(`call ${call}: adapter apply`);
          const loss = adapter.adapt({ anchor: x, positive: uniform(dim, seed + 1), negatives: [uniform(dim, seed + 2), uniform(dim, seed + 3)] });
          if (!Number.isFinite(loss)) fail(`call ${call}: adapt loss ${loss}`);
          adapter.storePattern({ id: `p${call % 100}`, embedding: uniform(dim, seed + 4), quality: (call % 10) / 10 });
          if (call % 5 === 0) adapter.removePattern(`p${(call + 50) % 100}`);
          const found = adapter.findPatterns(x, 3);
          if (found.length > 3 || found.some((r, i) => i > 0 && r.score > found[i - 1].score)) fail(`call ${call}: findPatterns order`);
          break;
        }
        case 13: {
          // Churn: one key out (oldest), one in; then a search.
          const gone = hnswKeys.shift();
          hnsw.delete(gone);
          const key = `h${hnswNext++}`;
          hnsw.insert(key, uniform(dim, seed));
          hnswKeys.push(key);
          const res = hnsw.search(uniform(dim, seed + 1), 5);
          if (res.length !== 5 || res.some((r) => r.key === gone)) fail(`call ${call}: HNSW search after churn`);
          if (hnsw.size() !== 48) fail(`call ${call}: HNSW size ${hnsw.size()}`);
          break;
        }
        default:
          break;
      }
    } catch (error) {
      fail(`call ${call} (op ${op}): ${error && error.stack ? error.stack.split('\n').slice(0, 3).join(' | ') : error}`);
    }
    if (call + 1 === WARMUP || (call + 1) % Math.max(1, Math.floor(CALLS / 10)) === 0 || call + 1 === CALLS) {
      if (global.gc) global.gc();
      const point = {
        calls: call + 1,
        memoryBytes: module.memoryBytes,
        liveAllocations: module.liveAllocations,
        liveBytes: module.liveBytes,
        rssMB: process.memoryUsage().rss / 2 ** 20,
        seconds: (performance.now() - t0) / 1000,
      };
      if (call + 1 === WARMUP) warm = point;
      if (checkpoints.length === 0 || checkpoints[checkpoints.length - 1].calls !== point.calls) checkpoints.push(point);
      console.log(
        `${String(point.calls).padStart(7)} calls  module memory ${(point.memoryBytes / 2 ** 20).toFixed(3)} MiB  ` +
          `live allocations ${point.liveAllocations} (${point.liveBytes} B)  rss ${point.rssMB.toFixed(1)} MiB  ${point.seconds.toFixed(1)} s` +
          (point === warm ? '  <- end of warm-up' : ''),
      );
    }
  }

  const after = checkpoints.filter((p) => warm !== null && p.calls >= warm.calls);
  const maxMemory = Math.max(...after.map((p) => p.memoryBytes));
  const grew = warm === null ? 0 : maxMemory - warm.memoryBytes;
  const problems = [...failures];
  if (grew > PAGE) problems.push(`module memory grew by ${grew} bytes after the warm-up (allowed: one page, ${PAGE})`);
  for (const p of after) {
    if (p.liveAllocations !== warm.liveAllocations || p.liveBytes !== warm.liveBytes) {
      problems.push(`at ${p.calls} calls: ${p.liveAllocations} live allocations (${p.liveBytes} B), ${warm.liveAllocations} (${warm.liveBytes} B) after the warm-up`);
    }
  }
  index.dispose();
  fa.dispose();
  adapter.dispose();
  hnsw.dispose();
  // What stays is the code embedding's resident feature table (one per
  // module, by design); releaseFeatureTables frees it.
  releaseFeatureTables(module);
  if (module.liveAllocations !== 0) problems.push(`${module.liveAllocations} allocations outlive the index, the instance and the feature table`);
  await api.terminateThreadPools();

  const seconds = (performance.now() - t0) / 1000;
  console.log(
    `soak: ${CALLS} calls in ${seconds.toFixed(1)} s on the ${module.kind} module (${THREADS} threads); ` +
      `module memory ${warm ? (warm.memoryBytes / 2 ** 20).toFixed(3) : '?'} MiB after ${WARMUP} warm-up calls, ` +
      `${(maxMemory / 2 ** 20).toFixed(3)} MiB at most after (growth ${grew} B); ` +
      `rss ${checkpoints[0].rssMB.toFixed(0)} -> ${checkpoints[checkpoints.length - 1].rssMB.toFixed(0)} MiB`,
  );
  if (problems.length > 0) {
    for (const p of problems) console.error(`soak: FAIL ${p}`);
    process.exitCode = 1;
  } else {
    console.log('soak: ok');
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
