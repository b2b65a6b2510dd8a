#!/usr/bin/env node
'use strict';
/*
 * The Node matrix: the three attention shapes, qe-flash against
 * onnxruntime-web (1 thread against 1, all cores against all cores), repeated
 * on each Node line users run, the way a consumer calls the package (no V8
 * flags, `createQEFlashAttention(w, undefined, { threads })`, then
 * `await computeFlashAttention(...)`). Node 20 runs twice, without and with
 * --experimental-wasm-relaxed-simd, since it picks a different module with
 * the flag.
 *
 *   node bench/matrix.js [--only=22,20] [--readme] [--quick]
 *                                        drive: each Node below (or those named) in its own
 *                                        process, then write bench/results/matrix.{json,md}
 *                                        and, with --readme, README.md's matrix section
 *   node bench/matrix.js --worker        measure in this process, print one JSON line
 *
 * Node binaries other than the machine's own come from the npm registry
 * (scripts/ensure-node.sh). Node 24 is also the headline run (bench/run.js,
 * started by `make bench` on it); this matrix repeats the key rows elsewhere.
 */
const os = require('os');
const path = require('path');
const { execFileSync, spawnSync } = require('child_process');

const root = path.join(__dirname, '..');

/** Rows judged for each Node: [label, node major, extra node flags, one-thread bar, all-cores bar]. */
const CONFIGS = [
  { label: 'Node 24', major: '24', flags: [], bar1: 1.7, barAll: 1.6 },
  { label: 'Node 22', major: '22', flags: [], bar1: 1.7, barAll: 1.6 },
  { label: 'Node 20, no flag', major: '20', flags: [], bar1: 1.5, barAll: null },
  { label: 'Node 20, --experimental-wasm-relaxed-simd', major: '20', flags: ['--experimental-wasm-relaxed-simd'], bar1: null, barAll: null },
];

async function worker() {
  const api = require(path.join(root, 'dist', 'cjs', 'js', 'index.js'));
  const bench = require(path.join(root, 'dist', 'cjs', 'js', 'benchmark.js'));
  const { createOnnxRuntimePeers } = require('./peers/onnxruntime');
  const quick = process.argv.includes('--quick');
  const cores = os.cpus().length;
  const threadCounts = api.threadsAvailable() && cores > 1 ? [1, cores] : [1];
  const { peers, reason } = createOnnxRuntimePeers(threadCounts);
  if (reason) throw new Error(reason);
  const options = quick
    ? { warmupCalls: 3, warmupMs: 100, minRuns: 5, rounds: 5, minTimeMs: 0 }
    : { minRuns: 30, maxRuns: 30, rounds: 10 };
  const rows = [];
  try {
    for (const [workload, shape] of Object.entries(bench.REFERENCE_SHAPES)) {
      const inputs = bench.attentionInputs(shape);
      const engines = [];
      for (const threads of threadCounts) {
        const engine = await api.createQEFlashAttention(workload, undefined, { threads });
        let out = null;
        const call = async () => {
          out = await engine.computeFlashAttention(inputs.Q, inputs.K, inputs.V, shape.seqLen, shape.dim, { heads: shape.heads });
        };
        engines.push({ name: 'qe-flash', threads, session: bench.localSession(call), engine, output: () => out });
      }
      // The resident form (prepareAttention): inputs written into module memory once, no copy in or out per call.
      for (const threads of threadCounts) {
        const engine = await api.createQEFlashAttention(workload, undefined, { threads });
        const resident = engine.prepareAttention(shape.seqLen, shape.dim, { heads: shape.heads });
        resident.Q.set(inputs.Q);
        resident.K.set(inputs.K);
        resident.V.set(inputs.V);
        const out = new Float32Array(shape.seqLen * shape.dim);
        engines.push({ name: 'qe-flash resident', threads, session: bench.localSession(() => resident.run()), engine, output: () => out.set(resident.output) || out, resident });
      }
      for (const peer of peers) {
        engines.push({ name: `${peer.name} ${peer.version || ''}`.trim(), threads: peer.threads, session: await peer.open(shape, inputs), peer: true });
      }
      const timings = await bench.measureSideBySide(engines.map((e) => e.session), options);
      const ours = engines[0].output();
      const row = { workload, shape, engines: [] };
      for (let i = 0; i < engines.length; i++) {
        const e = engines[i];
        let output;
        let module;
        if (e.peer) output = (await e.session.close()).output;
        else {
          output = e.output();
          module = e.engine.getMetrics().at(-1).module;
          if (e.resident) e.resident.dispose();
          e.engine.dispose();
        }
        let maxAbsDiff = 0;
        for (let j = 0; j < ours.length; j++) maxAbsDiff = Math.max(maxAbsDiff, Math.abs(output[j] - ours[j]));
        row.engines.push({ name: e.name, threads: e.threads, module, timing: timings[i], maxAbsDiff });
      }
      rows.push(row);
    }
  } finally {
    for (const p of peers) if (p.dispose) await p.dispose();
  }
  const machine = bench.describeMachine();
  process.stdout.write(JSON.stringify({ node: process.version, v8: process.versions.v8, flags: process.execArgv, machine, rows }) + '\n');
}

function nodeBinary(major) {
  return execFileSync('bash', [path.join(root, 'scripts', 'ensure-node.sh'), major], { encoding: 'utf8' }).trim();
}

function ratio(row, threads, form = 'qe-flash') {
  const ours = row.engines.find((e) => e.name === form && e.threads === threads);
  const ort = row.engines.find((e) => e.name.startsWith('onnxruntime-web') && e.threads === threads);
  return ours && ort ? { value: ort.timing.medianMs / ours.timing.medianMs, ours, ort } : null;
}

function fmt(t) {
  const f = (v) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
  return `${f(t.medianMs)} (${f(t.minMs)}-${f(t.maxMs)})`;
}

function markdown(runs) {
  const lines = [];
  const first = runs.find((r) => r.result);
  if (first) {
    const m = first.result.machine;
    lines.push(`Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGB} GB, ${m.platform}; ${m.date}.`, '');
  }
  lines.push(
    'Attention, median ms (min-max) over 30 timed calls of each engine after warm-up, the engines taking turns in 10 rounds; ratio = onnxruntime-web / qe-flash. qe-flash is called as `computeFlashAttention` (inputs copied in, output copied out, as onnxruntime-web\'s `session.run` does); "resident" is `prepareAttention(...).run()` on inputs already in module memory. The bars are judged on the copying form. No V8 flags except where the row says so.',
    '',
    '| Node | workload | qe-flash module | qe-flash 1 thr | resident 1 thr | onnxruntime-web 1 thr | 1 thr ratio (resident) | qe-flash all cores | resident all cores | onnxruntime-web all cores | all-cores ratio (resident) | bars | verdict |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|',
  );
  for (const run of runs) {
    if (!run.result) {
      lines.push(`| ${run.config.label} | failed: ${String(run.error).split('\n')[0].slice(0, 200)} | | | | | | | | | FAIL |`);
      continue;
    }
    for (const row of run.result.rows) {
      const one = ratio(row, 1);
      const cores = Math.max(...row.engines.map((e) => e.threads));
      const all = cores > 1 ? ratio(row, cores) : null;
      const oneR = ratio(row, 1, 'qe-flash resident');
      const allR = cores > 1 ? ratio(row, cores, 'qe-flash resident') : null;
      const both = (r, rr) => (r ? `${r.value.toFixed(2)}x${rr ? ` (${rr.value.toFixed(2)}x)` : ''}` : '');
      const checks = [];
      if (run.config.bar1 !== null && one) checks.push(one.value >= run.config.bar1);
      if (run.config.barAll !== null && all) checks.push(all.value >= run.config.barAll);
      const bars = [run.config.bar1 !== null ? `1 thr >= ${run.config.bar1}x` : '', run.config.barAll !== null ? `all >= ${run.config.barAll}x` : ''].filter(Boolean).join(', ') || 'reported only';
      const verdict = checks.length === 0 ? '' : checks.every(Boolean) ? 'PASS' : 'FAIL';
      const s = row.shape;
      lines.push(
        `| ${run.config.label} (${run.result.node}) | ${row.workload} ${s.seqLen}/${s.dim}/${s.heads} | ${one ? one.ours.module : ''} | ${one ? fmt(one.ours.timing) : ''} | ${oneR ? fmt(oneR.ours.timing) : ''} | ${one ? fmt(one.ort.timing) : ''} | ${both(one, oneR)} | ${all ? fmt(all.ours.timing) : ''} | ${allR ? fmt(allR.ours.timing) : ''} | ${all ? fmt(all.ort.timing) : ''} | ${both(all, allR)} | ${bars} | ${verdict} |`,
      );
    }
  }
  return lines.join('\n') + '\n';
}

/** Rewrites README.md between its matrix markers. */
function writeReadmeSection(md) {
  const body = `<!-- written by bench/matrix.js from bench/results/matrix.md; do not edit by hand -->\n\n${md}`;
  require('./write-results').replaceMarkedSection(path.join(root, 'README.md'), '<!-- matrix:start -->', '<!-- matrix:end -->', body);
}

function drive() {
  const only = process.argv.find((a) => a.startsWith('--only='));
  const configs = only ? CONFIGS.filter((c) => only.slice(7).split(',').includes(c.major)) : CONFIGS;
  const runs = [];
  for (const config of configs) {
    process.stdout.write(`matrix: ${config.label} ... `);
    try {
      const node = nodeBinary(config.major);
      const r = spawnSync(node, [...config.flags, __filename, '--worker', ...(process.argv.includes('--quick') ? ['--quick'] : [])], {
        cwd: root,
        encoding: 'utf8',
        maxBuffer: 64 << 20,
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      if (r.status !== 0) throw new Error(`exited with ${r.status}`);
      const result = JSON.parse(r.stdout.trim().split('\n').pop());
      runs.push({ config, result });
      console.log(result.rows.map((row) => `${row.workload} ${ratio(row, 1).value.toFixed(2)}x`).join(', '));
    } catch (error) {
      runs.push({ config, error: String(error && error.message ? error.message : error) });
      console.log(`failed: ${error.message}`);
    }
  }
  const outDir = path.join(root, 'bench', 'results');
  const md = markdown(runs);
  require('./write-results').writeResultFiles(outDir, {
    'matrix.json': JSON.stringify(runs, null, 2) + '\n',
    'matrix.md': `# qe-flash on each Node\n\n${md}`,
  });
  console.log('\n' + md);
  if (process.argv.includes('--readme')) writeReadmeSection(md);
  const failed = runs.some((r) => !r.result);
  return { runs, md, failed };
}

module.exports = { markdown, CONFIGS };

if (require.main === module) {
  if (process.argv.includes('--worker')) {
    worker().then(
      () => process.exit(0),
      (err) => {
        console.error(err && err.stack ? err.stack : err);
        process.exit(1);
      },
    );
  } else {
    const { failed } = drive();
    process.exit(failed ? 1 : 0);
  }
}
