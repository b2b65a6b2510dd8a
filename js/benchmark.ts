/**
 * The benchmark suite: for each workload's reference shape, the naive
 * JavaScript baseline, our module (one thread, and all cores where the
 * threaded module runs) and any peer engines run on the same inputs in one
 * run; every output is cross-checked, timings are medians after warm-up
 * with min and max, memory is measured, and each workload gets PASS or FAIL
 * against QE_PERFORMANCE_TARGETS.
 *
 * This file runs the suite and keeps its results. The rooms it uses:
 * js/benchmark-measure.ts (timing, engines taking turns),
 * js/benchmark-rows.ts (what a row is), js/benchmark-attention.ts and
 * js/benchmark-search.ts (the rows), js/benchmark-reference.ts (what outputs
 * are checked against), js/benchmark-report.ts (the Markdown report).
 *
 * Peers (onnxruntime-web) are passed in by the caller: the package itself
 * depends on none of them. See bench/run.js.
 */
import type { QEWorkloadType } from '../types';
import { MAX_SPEEDUP_TARGET, MIN_SPEEDUP_TARGET, assertWorkloadType } from './config';
import { createQEFlashAttention, type QEFlashAttention } from './flash-attention';
import { describeMachine, writeFileAtomicSync, writeTextFile, type MachineInfo } from './platform';
import { threadsAvailable } from './thread-support';
import { describe, validatePositiveInteger } from './validate';
import type { MeasureOptions } from './benchmark-measure';
import {
  completeRow, CROSS_CHECK_TOLERANCE, LONG_SEQUENCE_SHAPE, notRun, REFERENCE_SHAPES,
  type AttentionPeer, type BenchmarkResult, type BenchmarkRowDraft, type EngineResult, type EngineStatus,
} from './benchmark-rows';
import { attentionRow, type BenchContext } from './benchmark-attention';
import { adaptationRow, corpusSearchRows, patternMatchRow } from './benchmark-search';
import { formatMarkdown } from './benchmark-report';

// The suite's vocabulary, exported from here as before the split.
export {
  COMPARED_ROUNDS, COMPARED_RUNS, localSession, measure, measureSideBySide, REWARM_MS, seededUniform, SIDE_BY_SIDE_ROUNDS,
  type TimedSession, type TimingStats,
} from './benchmark-measure';
export {
  attentionInputs, completeRow, CROSS_CHECK_TOLERANCE, LONG_SEQUENCE_SHAPE, REFERENCE_SHAPES, SEARCH_SHAPES, SEED_SPEEDUP_RANGE,
  type AttentionInputs, type AttentionPeer, type AttentionShape, type BenchmarkMetrics, type BenchmarkResult, type BenchmarkRowDraft,
  type EngineResult, type EngineRun, type EngineStatus, type PeerSession, type TargetCheck,
} from './benchmark-rows';
export { formatMarkdown };
export type { MeasureOptions };
export type { MachineInfo };
export { describeMachine };

export interface FlashAttentionBenchmarkOptions {
  /** Peer engines, run on the same inputs. */
  peers?: AttentionPeer[];
  /** Thread counts of ours to run (default [1], plus all cores where threads can run). */
  threadCounts?: number[];
  measure?: MeasureOptions;
  /** Include the N = 16384 row (default true). */
  longSequence?: boolean;
  /** Include the 512-query search row (default true; its naive baseline takes tens of seconds). */
  searchBatch?: boolean;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
  /** Makes our engine for a workload and thread count (default: createQEFlashAttention). */
  createEngine?: (workload: QEWorkloadType, threads: number) => Promise<QEFlashAttention | null>;
}

/**
 * The run QE_FLASH_BENCH_QUICK=1 sets as the default: a smoke test of the
 * suite, not a measurement. One timed call per engine and no warm-up, one
 * thread, no N = 16384 row, no 512-query search row.
 */
export const QUICK_BENCHMARK_OPTIONS: Readonly<FlashAttentionBenchmarkOptions> = Object.freeze({
  longSequence: false,
  searchBatch: false,
  threadCounts: [1],
  measure: { warmupCalls: 0, warmupMs: 0, minRuns: 1, minTimeMs: 0, maxRuns: 1, rounds: 1 },
});

/** Defaults from the environment: QE_FLASH_BENCH_QUICK=1 gives QUICK_BENCHMARK_OPTIONS (a smoke test, not a measurement). */
function environmentDefaults(): FlashAttentionBenchmarkOptions {
  const quick = typeof process !== 'undefined' && process.env?.QE_FLASH_BENCH_QUICK === '1';
  return quick ? { ...QUICK_BENCHMARK_OPTIONS, measure: { ...QUICK_BENCHMARK_OPTIONS.measure } } : {};
}


const ALL_WORKLOADS: readonly QEWorkloadType[] = ['test-similarity', 'code-embedding', 'defect-matching', 'coverage-analysis', 'pattern-adaptation'];

export class FlashAttentionBenchmark {
  private rows: BenchmarkResult[] = [];
  private headline = new Map<QEWorkloadType, BenchmarkResult>();
  private machine: MachineInfo | null = null;
  private readonly options: FlashAttentionBenchmarkOptions;

  /** Options default to a full run (QE_FLASH_BENCH_QUICK=1: a one-call smoke run). */
  constructor(options: FlashAttentionBenchmarkOptions = {}) {
    // A number here (the original's iterations?) would otherwise run the full suite silently.
    if (options === null || typeof options !== 'object') throw new TypeError(`options must be an object, got ${describe(options)}`);
    validateBenchmarkOptions(options);
    this.options = { ...environmentDefaults(), ...options };
  }

  /**
   * Every workload, plus the long-sequence row; as in the original, one
   * result per workload (its first row). getRows() has every row.
   */
  async runFullSuite(): Promise<Map<QEWorkloadType, BenchmarkResult>> {
    this.reset();
    this.machine = describeMachine();
    for (const workload of ALL_WORKLOADS) await this.benchmarkWorkloadRows(workload);
    if (this.options.longSequence ?? true) await this.benchmarkLongSequence();
    return this.getResults();
  }

  /** One workload's result (its first row: attention, or its index/adaptation row); every row it ran goes to getRows(). */
  async benchmarkWorkload(workload: QEWorkloadType): Promise<BenchmarkResult> {
    return (await this.benchmarkWorkloadRows(workload))[0];
  }

  /** The rows of one workload (attention, and its search or index rows); they are added to getRows(). */
  async benchmarkWorkloadRows(workload: QEWorkloadType): Promise<BenchmarkResult[]> {
    assertWorkloadType(workload);
    if (this.machine === null) this.machine = describeMachine();
    const drafts: BenchmarkRowDraft[] = [];
    if (workload === 'test-similarity' || workload === 'code-embedding' || workload === 'defect-matching') {
      drafts.push(await attentionRow(this.context(), workload, REFERENCE_SHAPES[workload], true));
      if (workload === 'test-similarity') drafts.push(...(await corpusSearchRows(this.context())));
      if (workload === 'defect-matching') drafts.push(await patternMatchRow(this.context()));
    } else if (workload === 'coverage-analysis') {
      // The HNSW rows proper (100,000 x 384 against hnswlib-node) are
      // bench/hnsw.js's: they need a native peer and minutes of building.
      drafts.push(this.notRunRow(workload, 'index', 'HNSW top-10 query in 100,000 x 384', { n: 100000, dim: 384, k: 10 }, 'skipped', 'measured by bench/hnsw.js (make bench), against hnswlib-node'));
    } else {
      drafts.push(await adaptationRow(this.context()));
    }
    const rows = drafts.map(completeRow);
    this.rows.push(...rows);
    this.headline.set(workload, rows[0]);
    return rows.map((r) => structuredClone(r));
  }

  /** N = 16384, dim 384, 8 heads: ours only; the others' score matrices alone would not fit. */
  async benchmarkLongSequence(): Promise<BenchmarkResult> {
    const row = completeRow(await attentionRow(this.context(), 'code-embedding', LONG_SEQUENCE_SHAPE, false));
    this.rows.push(row);
    return structuredClone(row);
  }

  /** As in the original: each workload benchmarked so far and its result (copies). */
  getResults(): Map<QEWorkloadType, BenchmarkResult> {
    return new Map([...this.headline].map(([w, r]) => [w, structuredClone(r)]));
  }

  /** Every row run so far, in order (copies): the full report. */
  getRows(): BenchmarkResult[] {
    return this.rows.map((r) => structuredClone(r));
  }

  /** Forgets every result. */
  reset(): void {
    this.rows = [];
    this.headline = new Map();
    this.machine = null;
  }

  /** Prints one result to the console: what was timed, the times, speedup, memory, verdict. */
  printBenchmarkResult(result: BenchmarkResult): void {
    if (result === null || typeof result !== 'object' || typeof result.workload !== 'string' || typeof result.baseline !== 'object') {
      throw new TypeError(`result must be a BenchmarkResult (from benchmarkWorkload or getRows), got ${describe(result)}`);
    }
    const ms = (e: EngineResult) => (Number.isNaN(e.timeMs) ? e.status : `${e.timeMs.toFixed(3)} ms`);
    const lines = [
      `${result.workload}: ${result.label}`,
      `  baseline (naive JS): ${ms(result.baseline)}`,
      `  qe-flash 1 thread:   ${ms(result.flash)}`,
    ];
    if (result.flashThreads.status === 'ok') lines.push(`  qe-flash ${result.flashThreads.threads} threads:   ${ms(result.flashThreads)}`);
    for (const p of result.peers) lines.push(`  ${p.engine} ${p.threads} thr: ${ms(p)}`);
    lines.push(
      `  speedup: ${Number.isNaN(result.speedup) ? 'not measured' : `${result.speedup.toFixed(2)}x`} (target ${MIN_SPEEDUP_TARGET}x-${MAX_SPEEDUP_TARGET}x)`,
      `  memory reduction: ${Number.isNaN(result.memoryReduction) ? 'not measured' : `${(result.memoryReduction * 100).toFixed(1)}%`}`,
      `  targets: ${result.targets === null ? 'not judged' : result.meetsTarget ? 'PASS' : 'FAIL'}; cross-check: ${result.crossCheckPassed ? 'ok' : 'FAILED'}`,
    );
    console.log(lines.join('\n'));
  }

  getMachine(): MachineInfo {
    return this.machine ?? describeMachine();
  }

  /** Every row, the machine and the tolerance as JSON (NaN, for what was not measured, is written as null). */
  exportResultsJSON(): string {
    return JSON.stringify({ machine: this.getMachine(), tolerance: CROSS_CHECK_TOLERANCE, results: this.rows }, null, 2);
  }

  /** As in the original: writes the results to `path` (exportResultsJSON; through a temporary file and a rename, so a reader never sees half a file). */
  exportResultsToFile(path: string): void {
    if (typeof path !== 'string' || path.length === 0) throw new TypeError(`path must be a non-empty string, got ${typeof path === 'string' ? 'an empty string' : typeof path}`);
    writeFileAtomicSync(path, this.exportResultsJSON() + '\n');
  }

  /** Writes the Markdown report to `path` and returns it. */
  async exportResultsMarkdown(path?: string): Promise<string> {
    if (path !== undefined && typeof path !== 'string') throw new TypeError(`path must be a string, got ${describe(path)}`);
    const md = formatMarkdown(this.rows, this.getMachine());
    if (path) await writeTextFile(path, md);
    return md;
  }

  /** True when every row that ran agreed across engines within CROSS_CHECK_TOLERANCE. */
  crossChecksPassed(): boolean {
    return this.rows.every((r) => r.crossCheckPassed);
  }

  /** What the rows need from this suite. */
  private context(): BenchContext {
    return {
      measure: this.options.measure,
      peers: this.options.peers ?? [],
      searchBatch: this.options.searchBatch ?? true,
      log: (line) => this.options.log?.(line),
      threadCounts: () => this.threadCounts(),
      engine: (workload, threads) => this.engine(workload, threads),
    };
  }

  private threadCounts(): number[] {
    if (this.options.threadCounts) return this.options.threadCounts;
    const cores = describeMachine().cores;
    return threadsAvailable() && cores > 1 ? [1, cores] : [1];
  }

  private async engine(workload: QEWorkloadType, threads: number): Promise<QEFlashAttention | null> {
    if (this.options.createEngine) return this.options.createEngine(workload, threads);
    return createQEFlashAttention(workload, undefined, { threads });
  }

  private notRunRow(
    workload: QEWorkloadType,
    kind: BenchmarkRowDraft['kind'],
    label: string,
    shape: Record<string, number>,
    status: EngineStatus,
    note: string,
  ): BenchmarkRowDraft {
    const nb = (engine: string) => notRun(engine, 1, status, note);
    return {
      workload,
      label,
      kind,
      shape,
      baseline: nb('baseline'),
      flash: nb('qe-flash'),
      flashThreads: nb('qe-flash'),
      peers: [],
      speedup: null,
      memoryReduction: null,
      seedSpeedupReached: null,
      targets: null,
      meetsTarget: null,
      flops: null,
      crossCheckPassed: true,
    };
  }
}

const BENCHMARK_OPTION_KEYS = ['peers', 'threadCounts', 'measure', 'longSequence', 'searchBatch', 'log', 'createEngine'];
const MEASURE_OPTION_KEYS = ['warmupCalls', 'warmupMs', 'minRuns', 'minTimeMs', 'maxRuns', 'rounds'];

/** Unknown keys and values of the wrong kind are errors naming the key (a typo would otherwise run the full suite). */
function validateBenchmarkOptions(options: FlashAttentionBenchmarkOptions): void {
  for (const key of Object.keys(options)) {
    if (!BENCHMARK_OPTION_KEYS.includes(key)) throw new TypeError(`options has an unknown key '${key}'; known keys: ${BENCHMARK_OPTION_KEYS.join(', ')}`);
  }
  const { peers, threadCounts, measure, log, createEngine } = options;
  if (peers !== undefined && !Array.isArray(peers)) throw new TypeError(`options.peers must be an array of AttentionPeer, got ${describe(peers)}`);
  if (threadCounts !== undefined) {
    if (!Array.isArray(threadCounts)) throw new TypeError(`options.threadCounts must be an array of thread counts, got ${describe(threadCounts)}`);
    threadCounts.forEach((t, i) => validatePositiveInteger(`options.threadCounts[${i}]`, t));
  }
  if (measure !== undefined) {
    if (measure === null || typeof measure !== 'object') throw new TypeError(`options.measure must be an object, got ${describe(measure)}`);
    for (const [key, value] of Object.entries(measure)) {
      if (!MEASURE_OPTION_KEYS.includes(key)) throw new TypeError(`options.measure has an unknown key '${key}'; known keys: ${MEASURE_OPTION_KEYS.join(', ')}`);
      if (typeof value !== 'number') throw new TypeError(`options.measure.${key} must be a number, got ${describe(value)}`);
      if (!Number.isFinite(value) || value < 0) throw new RangeError(`options.measure.${key} must be a finite number >= 0, got ${value}`);
    }
    if (measure.maxRuns !== undefined) validatePositiveInteger('options.measure.maxRuns', measure.maxRuns);
  }
  for (const key of ['longSequence', 'searchBatch'] as const) {
    if (options[key] !== undefined && typeof options[key] !== 'boolean') throw new TypeError(`options.${key} must be a boolean, got ${describe(options[key])}`);
  }
  if (log !== undefined && typeof log !== 'function') throw new TypeError(`options.log must be a function, got ${describe(log)}`);
  if (createEngine !== undefined && typeof createEngine !== 'function') throw new TypeError(`options.createEngine must be a function, got ${describe(createEngine)}`);
}

/** As in the original: runs the whole suite (see FlashAttentionBenchmark) and returns each workload's result. */
export async function runFlashAttentionBenchmarks(options: FlashAttentionBenchmarkOptions = {}): Promise<Map<QEWorkloadType, BenchmarkResult>> {
  return new FlashAttentionBenchmark(options).runFullSuite();
}

/** As in the original: benchmarks one workload on a fresh suite and returns its result. */
export async function benchmarkWorkload(workload: QEWorkloadType, options: FlashAttentionBenchmarkOptions = {}): Promise<BenchmarkResult> {
  return new FlashAttentionBenchmark(options).benchmarkWorkload(workload);
}
