'use strict';
/*
 * The learning demonstration of the pattern adapter (issue 12), shared by
 * test/pattern-learning.test.ts and bench/pattern-adaptation.js:
 *
 * 300 patterns in 30 clusters (dim 256). A query of pattern p is M p plus
 * noise, where M = I + beta (u1 v1' + u2 v2') is a fixed hidden rank-2
 * linear distortion (u, v random unit vectors). 200 patterns' queries train
 * the adapter, one feedback step per query ({ anchor: query, positive: the
 * pattern's id }, hard negatives mined from the cache); recall@1 is measured
 * on fresh queries of the 100 held-out patterns, before and after. The
 * control task is the same with beta = 0 (no distortion): there is nothing
 * to learn, and training must not make retrieval worse.
 *
 * Everything is seeded (mulberry32), so a run is deterministic.
 */

function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function gaussian(rng) {
  let u = 0;
  while (u === 0) u = rng();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng());
}

const DEFAULT_TASK = Object.freeze({
  seed: 7, dim: 256, clusters: 30, perCluster: 10, train: 200,
  beta: 30, distortionRank: 2, noise: 0.1, spread: 0.3,
});

function makeLearningTask(options = {}) {
  const o = { ...DEFAULT_TASK, ...options };
  const { dim } = o;
  const rng = mulberry32(o.seed);
  // A vector of N(0, s^2 / dim) entries: norm about s.
  const vec = (s) => Float32Array.from({ length: dim }, () => (gaussian(rng) * s) / Math.sqrt(dim));
  const unit = (v) => {
    let n = 0;
    for (const x of v) n += x * x;
    n = Math.sqrt(n);
    return v.map((x) => x / n);
  };
  const patterns = [];
  for (let c = 0; c < o.clusters; c++) {
    const center = vec(1);
    for (let j = 0; j < o.perCluster; j++) {
      const g = vec(o.spread);
      patterns.push(center.map((x, i) => x + g[i]));
    }
  }
  const U = Array.from({ length: o.distortionRank }, () => unit(vec(1)));
  const V = Array.from({ length: o.distortionRank }, () => unit(vec(1)));
  /** A fresh query of pattern i: M p + noise. */
  const query = (i) => {
    const p = patterns[i];
    const q = Float32Array.from(p);
    for (let k = 0; k < o.distortionRank; k++) {
      let dot = 0;
      for (let d = 0; d < dim; d++) dot += V[k][d] * p[d];
      for (let d = 0; d < dim; d++) q[d] += o.beta * dot * U[k][d];
    }
    const e = vec(o.noise);
    return q.map((x, d) => x + e[d]);
  };
  const order = patterns.map((_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  const train = order.slice(0, o.train);
  const held = order.slice(o.train);
  const heldQueries = held.map((i) => query(i));
  return { options: o, patterns, query, train, held, heldQueries, rng };
}

/** recall@1 of the held-out queries through the adapter (look-ups that do not mark patterns used would be as good; these do). */
function heldOutRecall(adapter, task) {
  let hits = 0;
  task.held.forEach((i, j) => {
    if (adapter.findPatterns(task.heldQueries[j], 1)[0].id === `p${i}`) hits++;
  });
  return hits / task.held.length;
}

/**
 * Stores the task's patterns, measures held-out recall@1, takes `steps`
 * feedback steps on training queries, measures again. Returns the figures.
 */
function runLearningDemo(adapter, task, steps) {
  task.patterns.forEach((p, i) => adapter.storePattern({ id: `p${i}`, embedding: p }));
  const before = heldOutRecall(adapter, task);
  let firstLoss = 0;
  let lastLoss = 0;
  const window = Math.max(1, Math.floor(steps / 10));
  for (let s = 0; s < steps; s++) {
    const i = task.train[Math.floor(task.rng() * task.train.length)];
    const loss = adapter.adapt({ anchor: task.query(i), positive: `p${i}` });
    if (s < window) firstLoss += loss / window;
    if (s >= steps - window) lastLoss += loss / window;
  }
  const after = heldOutRecall(adapter, task);
  return { before, after, gain: after - before, steps, firstLoss, lastLoss };
}

module.exports = { DEFAULT_TASK, makeLearningTask, runLearningDemo, heldOutRecall, mulberry32 };
