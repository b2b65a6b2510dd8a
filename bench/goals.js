'use strict';
/*
 * The performance issue's goals, each judged from the measured results of
 * this run: the figure, the bar, PASS or FAIL (or "not measured" when the
 * engine it needs did not run).
 */

const ATTENTION = ['test-similarity', 'code-embedding', 'defect-matching'];

function find(results, workload, kind = 'attention', label) {
  return results.find((r) => r.workload === workload && r.kind === kind && (!label || r.label.includes(label)));
}

function peer(row, threads) {
  return row && row.peers.find((p) => p.engine.startsWith('onnxruntime-web') && p.threads === threads && p.status === 'ok');
}

/** onnxruntime-web on the most threads it ran with: the peer of "all cores". */
function peerAllCores(row) {
  const ort = row ? row.peers.filter((p) => p.engine.startsWith('onnxruntime-web') && p.status === 'ok' && p.threads > 1) : [];
  return ort.sort((a, b) => b.threads - a.threads)[0];
}

function ms(e) {
  return e && e.status === 'ok' && e.timing ? e.timing.medianMs : null;
}

function goal(list, id, what, measured, bar, pass) {
  list.push({ id, what, measured, bar, verdict: pass === null ? 'not measured' : pass ? 'PASS' : 'FAIL' });
}

function judgeGoals(results, gemm) {
  const goals = [];
  // 1. One thread, 1.7x onnxruntime-web on one thread.
  for (const w of ATTENTION) {
    const r = find(results, w);
    const ours = ms(r && r.flash);
    const ort = ms(peer(r, 1));
    const ratio = ours && ort ? ort / ours : null;
    goal(goals, '1', `${w} (${r ? r.label : ''}): 1 thread vs onnxruntime-web 1 thread`,
      ratio === null ? 'n/a' : `${ratio.toFixed(2)}x (${ours.toFixed(2)} vs ${ort.toFixed(2)} ms)`, '>= 1.7x', ratio === null ? null : ratio >= 1.7);
  }
  // 2. GFLOP/s on one thread.
  for (const [w, bar] of [['test-similarity', 47], ['code-embedding', 50]]) {
    const r = find(results, w);
    const t = ms(r && r.flash);
    const gf = t ? r.flops / t / 1e6 : null;
    const ceiling = gemm ? ` (our GEMM, same run: ${gemm.gflops.toFixed(1)})` : '';
    goal(goals, '2', `${w}: GFLOP/s on 1 thread`, gf === null ? 'n/a' : `${gf.toFixed(1)}${ceiling}`, `>= ${bar}`, gf === null ? null : gf >= bar);
  }
  // 3. Both cores.
  for (const w of ATTENTION) {
    const r = find(results, w);
    if (!r) continue;
    const one = ms(r.flash);
    const all = ms(r.flashThreads);
    if (r.shape.seqLen >= 512) {
      const s = one && all ? one / all : null;
      goal(goals, '3', `${w}: all cores vs our 1 thread`, s === null ? 'n/a' : `${s.toFixed(2)}x`, '>= 1.8x', s === null ? null : s >= 1.8);
    }
    const ortPeer = peerAllCores(r);
    const ort2 = ms(ortPeer);
    const ratio = all && ort2 ? ort2 / all : null;
    goal(goals, '3', `${w}: all cores (${r.flashThreads.threads} threads) vs onnxruntime-web ${ortPeer ? ortPeer.threads : 'n'} threads`,
      ratio === null ? 'n/a' : `${ratio.toFixed(2)}x (${all.toFixed(2)} vs ${ort2.toFixed(2)} ms)`, '>= 1.6x', ratio === null ? null : ratio >= 1.6);
  }
  for (const [w, bar] of [['test-similarity', 15], ['defect-matching', 5]]) {
    const r = find(results, w);
    const best = r ? Math.min(...[ms(r.flash), ms(r.flashThreads)].filter((x) => x !== null)) : null;
    goal(goals, '3', `${w}: latency, best configuration`, best === null || !isFinite(best) ? 'n/a' : `${best.toFixed(2)} ms`, `< ${bar} ms`,
      best === null || !isFinite(best) ? null : best < bar);
  }
  // 4. Long sequence memory.
  const long = results.find((r) => r.kind === 'attention' && r.shape.seqLen === 16384);
  const longEngine = long && (long.flashThreads.status === 'ok' ? long.flashThreads : long.flash);
  const longMiB = longEngine && longEngine.memoryBytes !== null ? longEngine.memoryBytes / 2 ** 20 : null;
  goal(goals, '4', `N=16384 dim=384 heads=8: working memory beyond inputs and outputs${longEngine && longEngine.timing ? ` (ran in ${(longEngine.timing.medianMs / 1000).toFixed(1)} s)` : ''}`,
    longMiB === null ? 'n/a' : `${longMiB.toFixed(2)} MiB`, '< 16 MiB', longMiB === null ? null : longMiB < 16);
  // 5. 25x the naive baseline.
  for (const w of ATTENTION) {
    const r = find(results, w);
    goal(goals, '5', `${w}: vs naive JavaScript baseline`, r && Number.isFinite(r.speedup) ? `${r.speedup.toFixed(1)}x` : 'n/a', '>= 25x',
      r && Number.isFinite(r.speedup) ? r.speedup >= 25 : null);
  }
  // 6. Search.
  const one = find(results, 'test-similarity', 'search', '1 query');
  const batch = find(results, 'test-similarity', 'search', '512 queries');
  const t1 = one ? Math.min(...[ms(one.flash), ms(one.flashThreads)].filter((x) => x !== null)) : null;
  const t512 = batch ? Math.min(...[ms(batch.flash), ms(batch.flashThreads)].filter((x) => x !== null)) : null;
  goal(goals, '6', 'search: 1 query, resident 10,000 x 384, top-10', t1 === null || !isFinite(t1) ? 'not built' : `${t1.toFixed(3)} ms`, '< 0.3 ms',
    t1 === null || !isFinite(t1) ? null : t1 < 0.3);
  goal(goals, '6', 'search: 512 queries against it', t512 === null || !isFinite(t512) ? 'not built' : `${t512.toFixed(1)} ms`, '< 150 ms',
    t512 === null || !isFinite(t512) ? null : t512 < 150);
  return goals;
}

function goalsMarkdown(goals) {
  const lines = ['| goal | what | measured | bar | verdict |', '|---|---|---|---|---|'];
  for (const g of goals) lines.push(`| ${g.id} | ${g.what} | ${g.measured} | ${g.bar} | ${g.verdict} |`);
  return lines.join('\n') + '\n';
}

module.exports = { judgeGoals, goalsMarkdown };
