/**
 * The benchmark's Markdown report: the machine, the timing table (medians
 * with min-max, GF/s), memory, and the targets' verdicts.
 */
import type { MachineInfo } from './platform';
import { describe } from './validate';
import { COMPARED_ROUNDS, COMPARED_RUNS, REWARM_MS, type TimingStats } from './benchmark-measure';
import { allPass, MIB, type BenchmarkResult, type EngineRun } from './benchmark-rows';

function fmtMs(t: TimingStats | null): string {
  if (!t) return '';
  const f = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
  return `${f(t.medianMs)} (${f(t.minMs)}-${f(t.maxMs)})`;
}

function cell(e: EngineRun | undefined, flops: number | null): string {
  if (!e) return 'n/a';
  if (e.status !== 'ok') return e.status;
  const gf = flops && e.timing ? ` · ${(flops / e.timing.medianMs / 1e6).toFixed(1)} GF/s` : '';
  return `${fmtMs(e.timing)}${gf}`;
}

function mib(bytes: number | null): string {
  if (bytes === null) return '';
  return bytes >= MIB ? `${(bytes / MIB).toFixed(1)} MiB` : `${(bytes / 1024).toFixed(0)} KiB`;
}

function passFail(p: boolean | null): string {
  return p === null ? 'n/a' : p ? 'PASS' : 'FAIL';
}

/** The report: machine, the timing table, memory, targets. */
export function formatMarkdown(results: BenchmarkResult[], machine: MachineInfo): string {
  if (!Array.isArray(results)) throw new TypeError(`results must be an array of BenchmarkResult, got ${describe(results)}`);
  results.forEach((r, i) => {
    if (r === null || typeof r !== 'object' || !Array.isArray(r.peers)) throw new TypeError(`results[${i}] must be a BenchmarkResult, got ${describe(r)}`);
  });
  if (machine === null || typeof machine !== 'object') throw new TypeError(`machine must be a MachineInfo (describeMachine()), got ${describe(machine)}`);
  const peerNames = [...new Set(results.flatMap((r) => r.peers.map((p) => `${p.engine}|${p.threads}`)))];
  const lines: string[] = [];
  lines.push(`Machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGB} GB, Node ${machine.node} (V8 ${machine.v8}), ${machine.platform}; load average at start ${machine.loadAverage.join(' / ')}; ${machine.date}.`);
  lines.push('');
  lines.push(
    `Times are medians in ms with (min-max) after warm-up, over at least ${COMPARED_RUNS} timed runs of each engine compared (10 for the naive baseline and the pattern match, 5 for the naive 512-query search, 3 for the N = 16384 row); GF/s counts 4·N²·dim FLOPs. ` +
      `The engines compared on a row (qe-flash on 1 thread and on all cores, and the peers) take turns: ${COMPARED_ROUNDS} rounds, each a batch of timed runs per engine after ${REWARM_MS} ms of untimed runs, so that a slow spell of the machine falls on all of them.`,
  );
  const modules = [
    ...new Set(
      results
        .flatMap((r) => [r.flash, r.flashThreads])
        .filter((e) => e.status === 'ok' && e.note)
        .map((e) => e.note!.replace(/, tiles.*/, '')),
    ),
  ];
  if (modules.length) lines.push(`qe-flash ran as: ${modules.join('; ')}.`);
  lines.push('');
  const head = ['workload', 'what is timed', 'baseline (naive JS)', 'qe-flash 1 thread', 'qe-flash all cores', ...peerNames.map((p) => {
    const [name, threads] = p.split('|');
    return `${name} ${threads} thr`;
  }), 'vs baseline', 'cross-check'];
  lines.push(`| ${head.join(' | ')} |`);
  lines.push(`|${head.map(() => '---').join('|')}|`);
  for (const r of results) {
    const peerCells = peerNames.map((p) => cell(r.peers.find((e) => `${e.engine}|${e.threads}` === p), r.flops));
    const threadsCell = r.flashThreads.status === 'ok' ? `${cell(r.flashThreads, r.flops)} (${r.flashThreads.threads} thr)` : r.flashThreads.status;
    const diffs = [r.baseline, r.flashThreads, ...r.peers].map((e) => e.maxAbsDiff).filter((d): d is number => d !== null);
    const check = r.kind === 'attention' && r.flash.status === 'ok'
      ? `${r.crossCheckPassed ? 'ok' : 'FAILED'}${diffs.length ? `, max diff ${Math.max(...diffs).toExponential(1)}` : ''}`
      : r.flash.status === 'ok' ? (r.crossCheckPassed ? 'ok' : 'FAILED') : '';
    lines.push(`| ${[
      r.workload,
      r.label,
      cell(r.baseline, r.flops),
      cell(r.flash, r.flops),
      threadsCell,
      ...peerCells,
      Number.isNaN(r.speedup) ? '' : `${r.speedup.toFixed(1)}x`,
      check,
    ].join(' | ')} |`);
  }
  lines.push('');
  lines.push('Memory (working memory beyond inputs and outputs):');
  lines.push('');
  lines.push('| workload | what is timed | qe-flash | baseline | reduction | peers |');
  lines.push('|---|---|---|---|---|---|');
  for (const r of results.filter((x) => x.flash.status === 'ok')) {
    const ours = r.flashThreads.status === 'ok' ? r.flashThreads : r.flash;
    lines.push(`| ${r.workload} | ${r.label} | ${mib(ours.memoryBytes)} | ${r.baseline.status === 'ok' ? mib(r.baseline.memoryBytes) : r.baseline.note ?? r.baseline.status} | ${Number.isNaN(r.memoryReduction) ? '' : `${(r.memoryReduction * 100).toFixed(1)}%`} | ${r.peers.filter((p) => p.status === 'ok').map((p) => `${p.engine} ${p.threads} thr: ${p.note}`).join('; ')} |`);
  }
  lines.push('');
  lines.push('Targets (QE_PERFORMANCE_TARGETS: latency after, memory after, throughput minimum; judged on our best configuration):');
  lines.push('');
  lines.push('| workload | what is timed | latency | memory | throughput | seed speedup 2.49x-7.47x | verdict |');
  lines.push('|---|---|---|---|---|---|---|');
  for (const r of results) {
    if (!r.targets) {
      if (r.flash.status !== 'ok') lines.push(`| ${r.workload} | ${r.label} | | | | | ${r.flash.status === 'skipped' ? r.flash.note : r.flash.status} |`);
      continue;
    }
    const t = r.targets;
    lines.push(`| ${r.workload} | ${r.label} | ${t.latencyMs.measured?.toFixed(2)} ms <= ${t.latencyMs.target} ${passFail(t.latencyMs.pass)} | ${t.memoryMB.measured?.toFixed(2)} MB <= ${t.memoryMB.target} ${passFail(t.memoryMB.pass)} | ${Math.round(t.throughput.measured ?? 0)} ${t.throughput.unit} >= ${t.throughput.target} ${passFail(t.throughput.pass)} | ${Number.isNaN(r.speedup) ? 'n/a' : `${r.speedup.toFixed(1)}x ${r.seedSpeedupReached ? 'reached' : 'not reached'}`} | ${passFail(allPass(r.targets))} |`);
  }
  lines.push('');
  return lines.join('\n');
}
