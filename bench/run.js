#!/usr/bin/env node
'use strict';
/*
 * `make bench`: runs the whole suite side by side in this process (the naive
 * baseline, qe-flash on 1 thread and on all cores, onnxruntime-web), prints
 * the tables, writes bench/results/latest.{json,md,svg}, and refreshes the
 * results section of README.md. Exits non-zero when any engine's output
 * differs from ours by more than the cross-check tolerance.
 *
 * Options: --quick (fewer timed runs, no N=16384 row; for a smoke test),
 *          --no-readme (leave README.md alone).
 */
const os = require('os');
const path = require('path');

const root = path.join(__dirname, '..');
const api = require(path.join(root, 'dist', 'cjs', 'js', 'index.js'));
const bench = require(path.join(root, 'dist', 'cjs', 'js', 'benchmark.js'));
const { createOnnxRuntimePeers } = require('./peers/onnxruntime');
const { barChartSvg } = require('./chart');
const { judgeGoals, goalsMarkdown } = require('./goals');
const { runCliSimilarBenchmark, cliSimilarMarkdown } = require('./cli-similar');
const { runOnnxAttentionRows, onnxAttentionMarkdown } = require('./onnx-attention');
const { runTextEmbeddingBenchmark, textEmbeddingMarkdown } = require('./text-embedding');
const { runPatternAdaptationBenchmark, patternAdaptationMarkdown, patternAdaptationGoals } = require('./pattern-adaptation');
const { runHnswBenchmark, hnswMarkdown, hnswCurveSvg } = require('./hnsw');
const { replaceMarkedSection, writeResultFiles } = require('./write-results');

/** GFLOP/s of our 4x8 register-tiled GEMM at 512 x 512 x 512 on one thread: what SIMD128 reaches here. */
async function gemmCeiling(backend) {
  const n = 512;
  const a = bench.seededUniform(n * n, 31);
  const b = bench.seededUniform(n * n, 32);
  const timing = await bench.measure(() => backend.matmulSIMD(a, b, n, n, n), {});
  return { gflops: (2 * n * n * n) / timing.medianMs / 1e6, timing, module: backend.getCapabilities().module };
}

async function main() {
  const args = new Set(process.argv.slice(2));
  const quick = args.has('--quick');
  const cores = os.cpus().length;
  const allCores = Math.max(1, cores);
  const threadCounts = api.threadsAvailable() && allCores > 1 ? [1, allCores] : [1];
  const ortThreads = allCores > 1 ? [1, allCores] : [1];
  const { peers, reason } = createOnnxRuntimePeers(ortThreads);
  if (reason) console.log(`note: ${reason}; its columns will be empty`);

  const started = Date.now();
  const suite = new bench.FlashAttentionBenchmark({
    peers,
    threadCounts,
    longSequence: !quick,
    measure: quick ? { warmupCalls: 3, warmupMs: 100, minRuns: 5, minTimeMs: 0 } : {},
    log: (line) => console.log(line),
    createEngine: (workload, threads) => api.createQEFlashAttention(workload, undefined, { threads }),
  });
  try {
    await suite.runFullSuite();
  } finally {
    for (const p of peers) if (p.dispose) await p.dispose();
  }
  const results = suite.getRows();
  const machine = suite.getMachine();
  const onnxRows = await runOnnxAttentionRows({ quick, log: (line) => console.log(line) });
  console.log('qe-flash similar: 10,000 generated test cases');
  const similar = runCliSimilarBenchmark();
  console.log(`  ${similar.seconds.toFixed(1)} s, planted pair first: ${similar.plantedFirst}`);
  console.log('text embedding: a 40-line trace, a 30-line test case');
  const textEmbedding = await runTextEmbeddingBenchmark();
  console.log(`  trace ${textEmbedding.trace.median.toFixed(3)} ms (median)`);
  // The ceiling next to goal 2: our own register-tiled GEMM, one thread, same run.
  const backend = await api.getWASMSIMDBackend();
  const gemm = await gemmCeiling(backend);
  console.log(`GEMM ceiling: ${gemm.gflops.toFixed(1)} GFLOP/s (${gemm.module} module)`);
  // The coverage-analysis rows: the HNSW index against hnswlib-node.
  let hnsw;
  try {
    hnsw = await runHnswBenchmark({ quick, log: (line) => console.log(line) });
  } catch (error) {
    console.log(`HNSW rows failed: ${error && error.stack ? error.stack : error}`);
    hnsw = { error: String(error), rows: [] };
  }
  const adaptation = await runPatternAdaptationBenchmark(api, { quick, log: (line) => console.log(line) });
  const goals = [...judgeGoals(results, gemm), ...patternAdaptationGoals(adaptation)];
  const elapsed = ((Date.now() - started) / 1000).toFixed(0);

  const report = [
    await suite.exportResultsMarkdown(),
    'Performance goals (issue "Performance: 1.7x faster than onnxruntime-web"), judged on this run:',
    '',
    goalsMarkdown(goals),
    'HNSW index, coverage-analysis (issue "Coverage search: an HNSW index in C/wasm SIMD"):',
    '',
    hnsw.error ? `not measured: ${hnsw.error}\n` : hnswMarkdown(hnsw),
    'Duplicate-test finder (issue "QE workloads that mean something"):',
    '',
    cliSimilarMarkdown(similar),
    onnxAttentionMarkdown(onnxRows),
    'Text embedding (issue "Find the real duplicate"), one process, engines taking turns:',
    '',
    textEmbeddingMarkdown(textEmbedding),
    'Pattern adaptation (issue "Micro-LoRA adapter that really learns"), beside @ruvector/learning-wasm:',
    '',
    patternAdaptationMarkdown(adaptation),
    `Produced by \`make bench\` in ${elapsed} s${quick ? ' (--quick)' : ''}. Reproduce with the same command.`,
    '',
  ].join('\n');

  const outDir = path.join(root, 'bench', 'results');
  writeResultFiles(outDir, {
    'latest.json': JSON.stringify({ machine, tolerance: bench.CROSS_CHECK_TOLERANCE, results, goals, cliSimilar: similar, textEmbedding, patternAdaptation: adaptation, hnsw }, null, 2) + '\n',
    'latest.md': `# qe-flash benchmark\n\n${report}`,
  });

  const attention = results.filter((r) => r.kind === 'attention' && r.baseline.status === 'ok');
  const seriesDefs = [
    ['qe-flash 1 thread', (r) => r.flash],
    [`qe-flash ${threadCounts[threadCounts.length - 1]} threads`, (r) => r.flashThreads],
    ['naive JS baseline', (r) => r.baseline],
    ...ortThreads.map((t) => [`onnxruntime-web ${t} thread${t > 1 ? 's' : ''}`, (r) => r.peers.find((p) => p.threads === t && p.engine.startsWith('onnxruntime-web'))]),
  ].filter(([, get], i) => i !== 1 || threadCounts.length > 1);
  const svg = barChartSvg({
    title: `Attention, median ms per call (${machine.cpu}, ${machine.cores} cores, Node ${machine.node})`,
    series: seriesDefs.map(([name]) => name),
    groups: attention.map((r) => ({
      label: `${r.workload}\nN=${r.shape.seqLen} dim=${r.shape.dim} h=${r.shape.heads}`,
      values: seriesDefs.map(([, get]) => {
        const e = get(r);
        return e && e.status === 'ok' && e.timing ? e.timing.medianMs : null;
      }),
    })),
  });
  // Below the bars: the HNSW recall-vs-QPS curves, one SVG holding both.
  const curve = hnsw.rows.length ? hnswCurveSvg(hnsw, `HNSW recall@10 vs queries/s, one thread (${machine.cpu}, Node ${machine.node})`) : null;
  const sizeOf = (s) => Number(/height="(\d+)"/.exec(s)[1]);
  const combined = curve === null ? svg : [
    `<svg xmlns="http://www.w3.org/2000/svg" width="980" height="${sizeOf(svg) + sizeOf(curve)}" viewBox="0 0 980 ${sizeOf(svg) + sizeOf(curve)}">`,
    svg.replace('<svg ', '<svg y="0" '),
    curve.replace('<svg ', `<svg y="${sizeOf(svg)}" `),
    '</svg>',
  ].join('\n');
  writeResultFiles(outDir, { 'latest.svg': combined });

  if (!args.has('--no-readme') && !quick) {
    const body = `<!-- written by bench/run.js from bench/results/latest.md; do not edit by hand -->\n\n${report}\n![benchmark chart](bench/results/latest.svg)\n`;
    replaceMarkedSection(path.join(root, 'README.md'), '<!-- bench:start -->', '<!-- bench:end -->', body);
  }

  console.log('\n' + report);
  console.log(`wrote ${path.relative(root, path.join(outDir, 'latest.json'))}, latest.md, latest.svg`);
  if (!suite.crossChecksPassed()) {
    console.error('\nFAILED: engines disagree beyond the cross-check tolerance (see CROSS-CHECK lines above)');
    process.exit(1);
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err && err.stack ? err.stack : err);
    process.exit(1);
  },
);
