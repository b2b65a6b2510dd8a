/**
 * The benchmark suite: for each workload's reference shape, the naive
 * JavaScript baseline, our module (one thread, and all cores once threads
 * exist) and any peer engines run on the same inputs in one run; every
 * output is cross-checked, timings are medians after warm-up with min and
 * max, memory is measured, and each workload gets PASS or FAIL against
 * QE_PERFORMANCE_TARGETS.
 *
 * Peers (onnxruntime-web) are passed in by the caller: the package itself
 * depends on none of them. See bench/run.js.
 */
import type { QEWorkloadType } from '../types';
import { naiveAttention } from './baseline';
import { MAX_SPEEDUP_TARGET, MIN_SPEEDUP_TARGET, QE_PERFORMANCE_TARGETS, assertWorkloadType } from './config';
import { createQEFlashAttention, type QEFlashAttention } from './flash-attention';
import { loadQEModule, type QEModule } from './module';
import { createPatternAdapter } from './pattern-adapter';
import { createSimilarityIndex, matchPatterns, type IndexSearchResult, type SimilarityIndex } from './similarity';
import { describeMachine, writeFileAtomicSync, writeTextFile, type MachineInfo } from './platform';
import { threadsAvailable } from './thread-support';
import { describe, validatePositiveInteger, type ResolvedAttention } from './validate';

const MIB = 1024 * 1024;

/** The seed's promised speedup range over the baseline. */
export const SEED_SPEEDUP_RANGE = Object.freeze({ min: MIN_SPEEDUP_TARGET, max: MAX_SPEEDUP_TARGET });

/** Largest |difference| between two engines' outputs before the bench fails. */
export const CROSS_CHECK_TOLERANCE = 1e-4;

export interface AttentionShape {
  seqLen: number;
  dim: number;
  heads: number;
}

/** The fixed reference shapes, printed with every result. */
export const REFERENCE_SHAPES: Readonly<Record<'test-similarity' | 'code-embedding' | 'defect-matching', AttentionShape>> =
  Object.freeze({
    'test-similarity': { seqLen: 512, dim: 384, heads: 8 },
    'code-embedding': { seqLen: 1024, dim: 512, heads: 4 },
    'defect-matching': { seqLen: 256, dim: 384, heads: 12 },
  });

/** The search shapes: a resident corpus of test embeddings, and a defect-pattern library. */
export const SEARCH_SHAPES = Object.freeze({
  corpus: Object.freeze({ n: 10000, dim: 384, k: 10, batch: 512 }),
  patterns: Object.freeze({ n: 2000, dim: 384 }),
});

/** The long-sequence row: only an O(N) memory engine can run it. */
export const LONG_SEQUENCE_SHAPE: Readonly<AttentionShape> = Object.freeze({ seqLen: 16384, dim: 384, heads: 8 });

export interface TimingStats {
  medianMs: number;
  minMs: number;
  maxMs: number;
  runs: number;
  warmupRuns: number;
}

export interface MeasureOptions {
  /** Untimed calls at least (default 5), and at least warmupMs of them (default 300). */
  warmupCalls?: number;
  warmupMs?: number;
  /** Timed calls at least (default 10), and enough to fill about minTimeMs (default 300), at most maxRuns (default 40). */
  minRuns?: number;
  minTimeMs?: number;
  maxRuns?: number;
  /** Rounds of measureSideBySide (default SIDE_BY_SIDE_ROUNDS, at most minRuns). */
  rounds?: number;
}

function median(sorted: number[]): number {
  const n = sorted.length;
  return n % 2 === 1 ? sorted[(n - 1) / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
}

/** An engine set up for one shape, timed in batches (measureSideBySide). */
export interface TimedSession {
  /** Untimed calls: at least `calls` of them, and for at least `ms`. Returns how many ran. */
  warm(calls: number, ms: number): Promise<number>;
  /** `runs` calls, each timed on its own (in the engine's own process); their times in ms. */
  time(runs: number): Promise<number[]>;
}

/** A TimedSession for a function called in this process. */
export function localSession(fn: () => unknown): TimedSession {
  return {
    async warm(calls, ms) {
      let n = 0;
      const start = performance.now();
      // At most 200 calls: a warm-up of slow calls ends on the call count.
      while (n < calls || (performance.now() - start < ms && n < 200)) {
        await fn();
        n++;
      }
      return n;
    },
    async time(runs) {
      const times: number[] = [];
      for (let i = 0; i < runs; i++) {
        const t0 = performance.now();
        await fn();
        times.push(performance.now() - t0);
      }
      return times;
    },
  };
}

/** A peer session that keeps its first failure instead of throwing it: from then on it times nothing. */
interface GuardedSession extends PeerSession {
  readonly failure: { error: unknown } | null;
}

function guardedSession(session: PeerSession): GuardedSession {
  let failure: { error: unknown } | null = null;
  const guard = async <T>(call: () => Promise<T>, none: T): Promise<T> => {
    if (failure !== null) return none;
    try {
      return await call();
    } catch (error) {
      failure = { error };
      return none;
    }
  };
  return {
    get failure() {
      return failure;
    },
    warm: (calls, ms) => guard(() => session.warm(calls, ms), 0),
    time: (runs) => guard(() => session.time(runs), []),
    close: () => session.close(),
  };
}

/** Untimed calls, in ms, before each batch of measureSideBySide. */
export const REWARM_MS = 20;

/** How many rounds measureSideBySide splits the timed calls into. */
export const SIDE_BY_SIDE_ROUNDS = 5;

/**
 * The benchmark's rows that compare engines take at least this many timed
 * calls of each, in this many rounds, spread over several seconds: a slow
 * spell of the machine (here they last a second or two, and slow a second
 * core more than the first) then touches a minority of every engine's calls,
 * and the medians stand.
 */
export const COMPARED_RUNS = 60;
export const COMPARED_ROUNDS = 20;

/**
 * Times engines side by side. Each is warmed up first (V8 optimizes wasm and
 * JS only after it has seen them run); then they take turns, a batch of timed
 * calls each per round, so that a slow spell of the machine (another tenant,
 * a clock change) falls on all of them rather than on whichever ran then.
 * Each gets at least minRuns timed calls and, when its calls are quick,
 * enough to fill about minTimeMs (at most maxRuns).
 */
export async function measureSideBySide(sessions: readonly TimedSession[], options: MeasureOptions = {}): Promise<TimingStats[]> {
  const warmupCalls = options.warmupCalls ?? 5;
  const warmupMs = options.warmupMs ?? 300;
  const minRuns = options.minRuns ?? 10;
  const minTimeMs = options.minTimeMs ?? 300;
  const maxRuns = Math.max(minRuns, options.maxRuns ?? 40);
  const rounds = Math.max(1, Math.min(options.rounds ?? SIDE_BY_SIDE_ROUNDS, minRuns));
  const plans: { warmupRuns: number; perCall: number; batch: number; times: number[] }[] = [];
  for (const session of sessions) {
    const start = performance.now();
    const warmupRuns = await session.warm(warmupCalls, warmupMs);
    const perCall = (performance.now() - start) / Math.max(1, warmupRuns);
    const wanted = Math.min(maxRuns, Math.max(minRuns, Math.ceil(minTimeMs / Math.max(perCall, 1e-3))));
    plans.push({ warmupRuns, perCall, batch: Math.ceil(wanted / rounds), times: [] });
  }
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < sessions.length; i++) {
      // Untimed calls before each batch, at least one and 20 ms of them (but
      // not for calls of a second or more): caches, thread pools and cores
      // left cold by the engine that ran before are not counted against this
      // one. On this VM a core idle for a few tens of milliseconds wakes
      // slowly, and a 2-thread engine's first calls after one engine on one
      // thread ran at 1-thread speed.
      if (sessions.length > 1 && plans[i].perCall < 1000) await sessions[i].warm(1, REWARM_MS);
      plans[i].times.push(...(await sessions[i].time(plans[i].batch)));
    }
  }
  return plans.map(({ warmupRuns, times }) => {
    times.sort((a, b) => a - b);
    return { medianMs: median(times), minMs: times[0], maxMs: times[times.length - 1], runs: times.length, warmupRuns };
  });
}

/** Times fn alone: measureSideBySide with one engine. */
export async function measure(fn: () => unknown, options: MeasureOptions = {}): Promise<TimingStats> {
  return (await measureSideBySide([localSession(fn)], options))[0];
}

/** Deterministic inputs in [-1, 1) (mulberry32), so every engine and process sees the same numbers. */
export function seededUniform(length: number, seed: number): Float32Array {
  const out = new Float32Array(length);
  let a = seed >>> 0;
  for (let i = 0; i < length; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  }
  return out;
}

export interface AttentionInputs {
  Q: Float32Array;
  K: Float32Array;
  V: Float32Array;
}

export function attentionInputs(shape: AttentionShape, seed = 1): AttentionInputs {
  const n = shape.seqLen * shape.dim;
  return { Q: seededUniform(n, seed), K: seededUniform(n, seed + 1), V: seededUniform(n, seed + 2) };
}

/** A peer engine set up for one shape. */
export interface PeerSession extends TimedSession {
  /**
   * Ends the session: the output of its last call, and the growth of
   * process.memoryUsage() from before the engine was set up to after its timed calls.
   */
  close(): Promise<{ output: Float32Array; memory: { arrayBuffersBytes: number; rssBytes: number } }>;
}

/** Another attention engine to compare against, e.g. onnxruntime-web's wasm backend. */
export interface AttentionPeer {
  readonly name: string;
  readonly threads: number;
  readonly version?: string;
  /** Sets the engine up for one shape, with its inputs (not timed). */
  open(shape: AttentionShape, inputs: AttentionInputs): Promise<PeerSession>;
  dispose?(): Promise<void> | void;
}

export type EngineStatus = 'ok' | 'not built' | 'not installed' | 'skipped' | 'failed';

/** How one engine ran on one row, before the original module's metric fields are added (see EngineResult). */
export interface EngineRun {
  engine: string;
  threads: number;
  status: EngineStatus;
  timing: TimingStats | null;
  /** Working memory as this engine's row of the README defines it. */
  memoryBytes: number | null;
  memoryHow: string;
  /** Max |output - ours on one thread|. */
  maxAbsDiff: number | null;
  note?: string;
}

export interface TargetCheck {
  latencyMs: { target: number; measured: number | null; pass: boolean | null };
  memoryMB: { target: number; measured: number | null; pass: boolean | null };
  throughput: { target: number; measured: number | null; unit: string; pass: boolean | null };
}

/**
 * The original module's FlashAttentionMetrics fields, for one engine on one
 * benchmark row. NaN where the engine did not run (the type stays number, as
 * in the original; NaN rather than a made-up value).
 */
export interface BenchmarkMetrics {
  /** Median ms per call. */
  timeMs: number;
  /** Working memory as the row defines it (MiB). */
  memoryMB: number;
  /** The baseline's median over this engine's (1 for the baseline itself); NaN when either did not run. */
  speedup: number;
  /** Items per second at the median: query tokens for attention rows, queries for search rows, else calls. */
  throughput: number;
  /** The high-water mark of the working memory (MiB): memoryMB, which is already measured as a peak. */
  peakMemoryMB: number;
  /** The original's field; no cache is involved here, so it is left out. */
  cacheHitRate?: number;
}

/** One engine on one row: the original's metric fields plus how it ran. */
export interface EngineResult extends EngineRun, BenchmarkMetrics {}

/**
 * A row as the suite builds it: speedup, memoryReduction and meetsTarget are
 * null when not measured. completeRow() turns it into a BenchmarkResult.
 */
export interface BenchmarkRowDraft {
  workload: QEWorkloadType;
  /** What is timed, e.g. "attention N=512 dim=384 heads=8". */
  label: string;
  kind: 'attention' | 'search' | 'index' | 'adaptation';
  shape: Record<string, number>;
  baseline: EngineRun;
  /** Ours on one thread. */
  flash: EngineRun;
  /** Ours on all cores. */
  flashThreads: EngineRun;
  peers: EngineRun[];
  /** Baseline median over our best median. */
  speedup: number | null;
  /** 1 - ours / baseline working memory (both: bytes beyond inputs and outputs). */
  memoryReduction: number | null;
  /** Seed speedup range reached against the baseline. */
  seedSpeedupReached: boolean | null;
  targets: TargetCheck | null;
  meetsTarget: boolean | null;
  /** FLOPs of one call, for GFLOP/s (4 N^2 dim for attention). */
  flops: number | null;
  crossCheckPassed: boolean;
}

/**
 * One benchmark row, with the original module's BenchmarkResult fields
 * (workload, baseline, flash, speedup, memoryReduction, meetsTarget) keeping
 * their meaning, and this package's richer report in the other fields.
 */
export interface BenchmarkResult extends Omit<BenchmarkRowDraft, 'baseline' | 'flash' | 'flashThreads' | 'peers' | 'speedup' | 'memoryReduction' | 'meetsTarget'> {
  /** The naive JavaScript baseline (without flash attention). */
  baseline: EngineResult;
  /** Ours on one thread. */
  flash: EngineResult;
  /** Ours on all cores. */
  flashThreads: EngineResult;
  peers: EngineResult[];
  /** Baseline median over our best median; NaN when the baseline did not run (the original filled in 1). */
  speedup: number;
  /** 1 - ours / baseline working memory, a fraction; NaN when not measured. */
  memoryReduction: number;
  /** Every target of QE_PERFORMANCE_TARGETS measured and met; false when not judged (targets is then null). */
  meetsTarget: boolean;
}

/** Items one call of the row processes, for throughput. */
function itemsPerCall(row: BenchmarkRowDraft): number {
  if (row.kind === 'attention') return row.shape.seqLen ?? 1;
  return row.shape.queries ?? 1;
}

function completeEngine(e: EngineRun, items: number, baselineMs: number | null): EngineResult {
  const timeMs = e.status === 'ok' && e.timing ? e.timing.medianMs : NaN;
  const memoryMB = e.status === 'ok' && e.memoryBytes !== null ? e.memoryBytes / MIB : NaN;
  return {
    ...e,
    timeMs,
    memoryMB,
    speedup: baselineMs !== null && timeMs > 0 ? baselineMs / timeMs : NaN,
    throughput: timeMs > 0 ? items / (timeMs / 1000) : NaN,
    peakMemoryMB: memoryMB,
  };
}

/** A drafted row with the original module's fields filled in (NaN / false where not measured). */
export function completeRow(row: BenchmarkRowDraft): BenchmarkResult {
  const items = itemsPerCall(row);
  const baselineMs = row.baseline.status === 'ok' && row.baseline.timing ? row.baseline.timing.medianMs : null;
  return {
    ...row,
    baseline: completeEngine(row.baseline, items, baselineMs),
    flash: completeEngine(row.flash, items, baselineMs),
    flashThreads: completeEngine(row.flashThreads, items, baselineMs),
    peers: row.peers.map((p) => completeEngine(p, items, baselineMs)),
    speedup: row.speedup ?? NaN,
    memoryReduction: row.memoryReduction ?? NaN,
    meetsTarget: row.meetsTarget === true,
  };
}

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

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Number.POSITIVE_INFINITY;
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= worst)) worst = Number.isNaN(d) ? Number.POSITIVE_INFINITY : d;
  }
  return worst;
}

/**
 * Float64 attention for a few query rows: an independent check that the
 * engines agree with the truth, not only with each other.
 */
function referenceRows(inputs: AttentionInputs, shape: AttentionShape, rows: number[]): Map<number, Float64Array> {
  const { seqLen, dim, heads } = shape;
  const d = dim / heads;
  const scale = 1 / Math.sqrt(d);
  const out = new Map<number, Float64Array>();
  const s = new Float64Array(seqLen);
  for (const i of rows) {
    const row = new Float64Array(dim);
    for (let h = 0; h < heads; h++) {
      let max = -Infinity;
      for (let j = 0; j < seqLen; j++) {
        let dot = 0;
        for (let p = 0; p < d; p++) dot += inputs.Q[i * dim + h * d + p] * inputs.K[j * dim + h * d + p];
        s[j] = dot * scale;
        if (s[j] > max) max = s[j];
      }
      let sum = 0;
      for (let j = 0; j < seqLen; j++) {
        s[j] = Math.exp(s[j] - max);
        sum += s[j];
      }
      for (let p = 0; p < d; p++) {
        let acc = 0;
        for (let j = 0; j < seqLen; j++) acc += s[j] * inputs.V[j * dim + h * d + p];
        row[h * d + p] = acc / sum;
      }
    }
    out.set(i, row);
  }
  return out;
}

/**
 * The naive search the search rows compare against: every cosine in
 * JavaScript (float64 accumulation), then a full sort. Ties by lower index.
 */
function naiveCosineTopK(queries: Float32Array, count: number, corpus: Float32Array, n: number, dim: number, k: number) {
  const norms = new Float64Array(n);
  for (let r = 0; r < n; r++) {
    let s = 0;
    for (let c = 0; c < dim; c++) s += corpus[r * dim + c] * corpus[r * dim + c];
    norms[r] = Math.sqrt(s);
  }
  const out: { index: number; similarity: number }[][] = [];
  for (let q = 0; q < count; q++) {
    let qn = 0;
    for (let c = 0; c < dim; c++) qn += queries[q * dim + c] * queries[q * dim + c];
    qn = Math.sqrt(qn);
    const scored: { index: number; similarity: number }[] = [];
    for (let r = 0; r < n; r++) {
      let dot = 0;
      for (let c = 0; c < dim; c++) dot += queries[q * dim + c] * corpus[r * dim + c];
      scored.push({ index: r, similarity: qn > 0 && norms[r] > 0 ? dot / (qn * norms[r]) : 0 });
    }
    scored.sort((a, b) => b.similarity - a.similarity || a.index - b.index);
    out.push(scored.slice(0, k));
  }
  return out;
}

/**
 * Largest difference between our top-k lists and the naive ones: position by
 * position (the sorted scores must agree), and each row we name against the
 * naive score of that same row (so a swap of two rows whose scores differ by
 * rounding is allowed, a wrong row is not).
 */
function compareTopK(ours: { index: number; similarity: number }[][], truth: { index: number; similarity: number }[][]): number {
  if (ours.length !== truth.length) return Number.POSITIVE_INFINITY;
  let worst = 0;
  for (let q = 0; q < ours.length; q++) {
    if (ours[q].length !== truth[q].length) return Number.POSITIVE_INFINITY;
    const byIndex = new Map(truth[q].map((t) => [t.index, t.similarity]));
    for (let i = 0; i < ours[q].length; i++) {
      worst = Math.max(worst, Math.abs(ours[q][i].similarity - truth[q][i].similarity));
      const own = byIndex.get(ours[q][i].index);
      // A row outside the naive top-k must tie with its last entry.
      const reference = own ?? truth[q][truth[q].length - 1].similarity;
      worst = Math.max(worst, Math.abs(ours[q][i].similarity - reference));
    }
  }
  return worst;
}

function notRun(engine: string, threads: number, status: EngineStatus, note: string): EngineRun {
  return { engine, threads, status, timing: null, memoryBytes: null, memoryHow: '', maxAbsDiff: null, note };
}

function targetChecks(
  workload: QEWorkloadType,
  latencyMs: number | null,
  memoryMB: number | null,
  throughput: number | null,
  unit: string,
): TargetCheck {
  const t = QE_PERFORMANCE_TARGETS[workload];
  const le = (v: number | null, limit: number) => (v === null ? null : v <= limit);
  const ge = (v: number | null, limit: number) => (v === null ? null : v >= limit);
  return {
    latencyMs: { target: t.latency.after, measured: latencyMs, pass: le(latencyMs, t.latency.after) },
    memoryMB: { target: t.memory.after, measured: memoryMB, pass: le(memoryMB, t.memory.after) },
    throughput: { target: t.throughput.min, measured: throughput, unit, pass: ge(throughput, t.throughput.min) },
  };
}

function allPass(t: TargetCheck | null): boolean | null {
  if (!t) return null;
  const passes = [t.latencyMs.pass, t.memoryMB.pass, t.throughput.pass];
  if (passes.some((p) => p === null)) return null;
  return passes.every(Boolean);
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
      drafts.push(await this.attentionRow(workload, REFERENCE_SHAPES[workload], true));
      if (workload === 'test-similarity') drafts.push(...(await this.corpusSearchRows()));
      if (workload === 'defect-matching') drafts.push(await this.patternMatchRow());
    } else if (workload === 'coverage-analysis') {
      // The HNSW rows proper (100,000 x 384 against hnswlib-node) are
      // bench/hnsw.js's: they need a native peer and minutes of building.
      drafts.push(this.notBuiltRow(workload, 'index', 'HNSW top-10 query in 100,000 x 384', { n: 100000, dim: 384, k: 10 }, 'skipped', 'measured by bench/hnsw.js (make bench), against hnswlib-node'));
    } else {
      drafts.push(await this.adaptationRow());
    }
    const rows = drafts.map(completeRow);
    this.rows.push(...rows);
    this.headline.set(workload, rows[0]);
    return rows.map((r) => structuredClone(r));
  }

  /** N = 16384, dim 384, 8 heads: ours only; the others' score matrices alone would not fit. */
  async benchmarkLongSequence(): Promise<BenchmarkResult> {
    const row = completeRow(await this.attentionRow('code-embedding', LONG_SEQUENCE_SHAPE, false));
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

  private log(line: string): void {
    this.options.log?.(line);
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

  private notBuiltRow(
    workload: QEWorkloadType,
    kind: BenchmarkRowDraft['kind'],
    label: string,
    shape: Record<string, number>,
    status: EngineStatus = 'not built',
    note = 'lands with its own issue',
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

  /**
   * One adaptation step of the pattern adapter (rank 2, dim 256: InfoNCE
   * with a positive and 7 negatives, the exact gradient of A and B, an Adam
   * step), counted from the JS call to its return. Peers and the finer
   * microsecond rows are bench/pattern-adaptation.js's.
   */
  private async adaptationRow(): Promise<BenchmarkRowDraft> {
    const dim = 256;
    const rank = 2;
    const label = `Micro-LoRA rank ${rank}, dim ${dim}, one adaptation step (InfoNCE, 7 negatives, Adam)`;
    this.log(`pattern-adaptation: ${label}`);
    const adapter = await createPatternAdapter('pattern-adaptation', { dim, rank, maxPatterns: 16 });
    try {
      const anchor = seededUniform(dim, 41);
      const positive = seededUniform(dim, 42).map((v, i) => anchor[i] + 0.5 * v);
      const negatives = Array.from({ length: 7 }, (_, j) => seededUniform(dim, 50 + j));
      const example = { anchor, positive, negatives };
      // Batches of 100 steps per timed sample: one step is a few microseconds.
      const timing = await measure(() => {
        for (let i = 0; i < 100; i++) adapter.adapt(example);
      }, this.options.measure);
      const perStep: TimingStats = { ...timing, medianMs: timing.medianMs / 100, minMs: timing.minMs / 100, maxMs: timing.maxMs / 100 };
      const memoryBytes = adapter.getStats().memoryBytes;
      this.log(`  qe-flash: ${(perStep.medianMs * 1000).toFixed(2)} us per step`);
      const flash: EngineRun = {
        engine: 'qe-flash', threads: 1, status: 'ok', timing: perStep, memoryBytes,
        memoryHow: 'adapter weights and optimizer state in module memory', maxAbsDiff: 0,
      };
      const targets = targetChecks('pattern-adaptation', perStep.medianMs, memoryBytes / MIB, 1000 / perStep.medianMs, 'steps/s');
      return {
        workload: 'pattern-adaptation', label, kind: 'adaptation', shape: { rank, dim, negatives: 7 },
        baseline: notRun('baseline', 1, 'skipped', 'no naive baseline for adaptation; see the pattern-adaptation section'),
        flash, flashThreads: notRun('qe-flash', 1, 'skipped', 'one step is too small to share'), peers: [],
        // No baseline ran, so, as for every row without one, the verdict stays unmeasured;
        // `targets` still holds the latency, memory and throughput checks.
        speedup: null, memoryReduction: null, seedSpeedupReached: null, targets, meetsTarget: null, flops: null,
        crossCheckPassed: true,
      };
    } finally {
      adapter.dispose();
    }
  }

  private async searchModule(): Promise<QEModule> {
    return loadQEModule();
  }

  /**
   * Top-10 by cosine in a resident 10,000 x 384 corpus: 1 query, then 512 at
   * once; on one thread and on all cores, side by side.
   */
  private async corpusSearchRows(): Promise<BenchmarkRowDraft[]> {
    const { n, dim, k, batch } = SEARCH_SHAPES.corpus;
    const corpus = seededUniform(n * dim, 11);
    const queries = seededUniform(batch * dim, 12);
    const module = await this.searchModule();
    const threads = this.threadCounts().find((t) => t > 1);
    const engine = threads === undefined ? null : await this.engine('test-similarity', threads);
    const index = createSimilarityIndex(module, dim);
    const indexAll = engine === null ? null : engine.createSimilarityIndex(dim);
    try {
      index.add(corpus);
      indexAll?.add(corpus);
      const rows: BenchmarkRowDraft[] = [];
      for (const count of (this.options.searchBatch ?? true) ? [1, batch] : [1]) {
        const label = `top-${k} search, ${count === 1 ? '1 query' : `${count} queries`}, resident ${n.toLocaleString('en-US')} x ${dim}`;
        this.log(`test-similarity: ${label}`);
        const q = queries.subarray(0, count * dim);
        const outs: IndexSearchResult[][][] = [[], []];
        const sessions = [index, indexAll].filter((x) => x !== null).map((ix, i) => localSession(() => {
          outs[i] = count === 1 ? [ix.search(q, k)] : ix.searchBatch(q, k);
        }));
        const [timing, timingAll] = await measureSideBySide(sessions, { minRuns: COMPARED_RUNS, rounds: COMPARED_ROUNDS, ...this.options.measure });
        // Working memory of each configuration, from one more call of each alone.
        const highWater = async (m: QEModule, search: () => unknown): Promise<number> => {
          m.resetWorkspaceHighWater();
          search();
          return m.workspaceHighWaterBytes();
        };
        const searchOnce = (ix: SimilarityIndex) => () => (count === 1 ? ix.search(q, k) : ix.searchBatch(q, k));
        const workBytes = await highWater(module, searchOnce(index));
        const workBytesAll = indexAll === null ? null : await highWater(await loadQEModule({ threads }), searchOnce(indexAll));
        this.log(`  qe-flash: ${timing.medianMs.toFixed(3)} ms${timingAll ? `, ${threads} threads ${timingAll.medianMs.toFixed(3)} ms` : ''}`);
        let truth: { index: number; similarity: number }[][] = [];
        const slow = count === 1 ? this.options.measure ?? {} : { warmupCalls: 1, warmupMs: 0, minRuns: Math.min(5, this.options.measure?.minRuns ?? 5), minTimeMs: 0 };
        const baseTiming = await measure(() => {
          truth = naiveCosineTopK(q, count, corpus, n, dim, k);
        }, slow);
        this.log(`  baseline: ${baseTiming.medianMs.toFixed(3)} ms`);
        const asTopK = (r: IndexSearchResult[][]) => r.map((row) => row.map((x) => ({ index: x.id, similarity: x.similarity })));
        let diff = compareTopK(asTopK(outs[0]), truth);
        // The threaded search must give the same results, bit for bit.
        if (timingAll && JSON.stringify(outs[1]) !== JSON.stringify(outs[0])) diff = Infinity;
        if (!(diff <= CROSS_CHECK_TOLERANCE)) this.log(`  CROSS-CHECK FAILED: search results differ (${diff})`);
        const all: EngineRun | undefined = timingAll && {
          engine: 'qe-flash',
          threads: threads as number,
          status: 'ok',
          timing: timingAll,
          memoryBytes: workBytesAll,
          memoryHow: 'kernel working memory, all workers (arena high-water); the corpus itself is input',
          maxAbsDiff: 0,
        };
        rows.push(this.searchRow('test-similarity', label, { n, dim, k, queries: count }, timing, workBytes, baseTiming, n * 8 * count, diff, count, all));
      }
      return rows;
    } finally {
      index.dispose();
      indexAll?.dispose();
      engine?.dispose();
    }
  }

  /** One defect embedding against a 2,000-pattern library: cosine scores and softmax probabilities. */
  private async patternMatchRow(): Promise<BenchmarkRowDraft> {
    const { n, dim } = SEARCH_SHAPES.patterns;
    const library = seededUniform(n * dim, 21);
    const defect = seededUniform(dim, 22);
    const label = `match 1 defect against ${n.toLocaleString('en-US')} patterns, dim ${dim}`;
    this.log(`defect-matching: ${label}`);
    const module = await this.searchModule();
    let ours: { index: number; score: number; probability: number }[] = [];
    module.resetWorkspaceHighWater();
    const timing = await measure(() => {
      ours = matchPatterns(module, defect, { data: library, count: n });
    }, this.options.measure ?? {});
    const workBytes = module.workspaceHighWaterBytes();
    this.log(`  qe-flash: ${timing.medianMs.toFixed(3)} ms`);
    let truth: { index: number; similarity: number }[][] = [];
    const baseTiming = await measure(() => {
      truth = naiveCosineTopK(defect, 1, library, n, dim, n);
    }, this.options.measure ?? {});
    this.log(`  baseline: ${baseTiming.medianMs.toFixed(3)} ms`);
    const diff = compareTopK([ours.map((m) => ({ index: m.index, similarity: m.score }))], truth);
    if (!(diff <= CROSS_CHECK_TOLERANCE)) this.log(`  CROSS-CHECK FAILED: pattern scores differ (${diff})`);
    return this.searchRow('defect-matching', label, { n, dim }, timing, workBytes, baseTiming, n * 8, diff, 1);
  }

  private searchRow(
    workload: QEWorkloadType,
    label: string,
    shape: Record<string, number>,
    timing: TimingStats,
    workBytes: number,
    baseTiming: TimingStats,
    baseBytes: number,
    diff: number,
    queries: number,
    allCores?: EngineRun,
  ): BenchmarkRowDraft {
    const flash: EngineRun = {
      engine: 'qe-flash',
      threads: 1,
      status: 'ok',
      timing,
      memoryBytes: workBytes,
      memoryHow: 'kernel working memory (arena high-water); the corpus itself is input',
      maxAbsDiff: 0,
    };
    const baseline: EngineRun = {
      engine: 'baseline (naive JS)',
      threads: 1,
      status: 'ok',
      timing: baseTiming,
      memoryBytes: baseBytes,
      memoryHow: 'its score array',
      maxAbsDiff: diff,
    };
    // Targets, speedup and memory of our best configuration, as for attention.
    const allBest = allCores?.timing != null && allCores.timing.medianMs < timing.medianMs;
    const best = allBest ? (allCores.timing as TimingStats) : timing;
    const bestBytes = allBest ? allCores.memoryBytes ?? workBytes : workBytes;
    const targets = targetChecks(workload, best.medianMs, bestBytes / MIB, queries / (best.medianMs / 1000), 'queries/s');
    const speedup = baseTiming.medianMs / best.medianMs;
    return {
      workload,
      label,
      kind: 'search',
      shape,
      baseline,
      flash,
      flashThreads: allCores ?? notRun('qe-flash', 1, 'skipped', 'this search runs on one thread'),
      peers: [],
      speedup,
      memoryReduction: 1 - bestBytes / baseBytes,
      seedSpeedupReached: speedup >= SEED_SPEEDUP_RANGE.min,
      targets,
      meetsTarget: allPass(targets),
      flops: null,
      crossCheckPassed: diff <= CROSS_CHECK_TOLERANCE,
    };
  }

  private async attentionRow(workload: QEWorkloadType, shape: AttentionShape, withOthers: boolean): Promise<BenchmarkRowDraft> {
    const { seqLen, dim, heads } = shape;
    const label = `attention N=${seqLen} dim=${dim} heads=${heads}`;
    const inputs = attentionInputs(shape);
    const flops = 4 * seqLen * seqLen * dim;
    const measureOptions: MeasureOptions = withOthers
      ? { minRuns: COMPARED_RUNS, rounds: COMPARED_ROUNDS, ...this.options.measure }
      : { warmupCalls: 1, warmupMs: 0, minRuns: 3, minTimeMs: 0 };
    const options = { heads };
    this.log(`${workload}: ${label}`);

    // The engines compared with each other are timed side by side, taking
    // turns (measureSideBySide): ours on one thread, ours on all cores, and
    // the peers. Ours on one thread is the reference every other output is
    // compared with.
    const ours1 = await this.engine(workload, 1);
    if (ours1 === null) throw new Error('the single-thread engine could not be created');
    let reference: Float32Array = new Float32Array(0);
    const sessions: TimedSession[] = [localSession(() => {
      reference = ours1.computeFlashAttentionSync(inputs.Q, inputs.K, inputs.V, seqLen, dim, options);
    })];
    const multi: { threads: number; engine: QEFlashAttention; out: Float32Array }[] = [];
    const opened: { peer: AttentionPeer; session: GuardedSession; closed: boolean }[] = [];
    const peers: EngineRun[] = [];
    const peerFailed = (peer: AttentionPeer, err: unknown) => {
      peers.push(notRun(peer.name, peer.threads, 'failed', String((err as Error)?.message ?? err)));
      this.log(`  ${peer.name} (${peer.threads} threads) FAILED: ${(err as Error)?.message ?? err}`);
    };
    let flash: EngineRun;
    let flashThreads = notRun('qe-flash', describeMachine().cores, 'skipped', 'no multi-threaded engine in this run (one core, no threaded module, or threadCounts [1])');
    let crossCheckPassed: boolean;
    try {
      for (const threads of this.threadCounts().filter((t) => t > 1)) {
        const engine = await this.engine(workload, threads);
        if (engine === null) continue;
        const entry: (typeof multi)[number] = { threads, engine, out: new Float32Array(0) };
        multi.push(entry);
        sessions.push(localSession(() => {
          entry.out = engine.computeFlashAttentionSync(inputs.Q, inputs.K, inputs.V, seqLen, dim, options);
        }));
      }
      if (withOthers) {
        for (const peer of this.options.peers ?? []) {
          try {
            opened.push({ peer, session: guardedSession(await peer.open(shape, inputs)), closed: false });
          } catch (err) {
            peerFailed(peer, err);
          }
        }
      }
      const timings = await measureSideBySide([...sessions, ...opened.map((o) => o.session)], measureOptions);

      const last1 = ours1.getMetrics().pop();
      flash = {
        engine: 'qe-flash',
        threads: 1,
        status: 'ok',
        timing: timings[0],
        memoryBytes: last1 ? last1.memoryMB * MIB : null,
        memoryHow: 'kernel working memory (arena high-water)',
        maxAbsDiff: 0,
        note: last1 ? `${last1.module} module, tiles ${last1.tileQ}x${last1.tileK}` : undefined,
      };
      this.log(`  qe-flash 1 thread: ${timings[0].medianMs.toFixed(2)} ms`);

      // Independent check against float64 on sampled rows.
      const sample = [0, Math.floor(seqLen / 3), seqLen - 1].filter((v, i, a) => a.indexOf(v) === i);
      let truthDiff = 0;
      if (seqLen <= 4096) {
        for (const [i, row] of referenceRows(inputs, shape, sample)) {
          for (let c = 0; c < dim; c++) truthDiff = Math.max(truthDiff, Math.abs(reference[i * dim + c] - row[c]));
        }
      }
      crossCheckPassed = truthDiff <= CROSS_CHECK_TOLERANCE;
      if (!crossCheckPassed) this.log(`  CROSS-CHECK FAILED: qe-flash differs from float64 by ${truthDiff}`);

      // Ours on all cores.
      multi.forEach(({ threads, engine, out }, i) => {
        const timing = timings[1 + i];
        const last = engine.getMetrics().pop();
        const diff = maxAbsDiff(out, reference);
        if (!(diff <= CROSS_CHECK_TOLERANCE)) {
          crossCheckPassed = false;
          this.log(`  CROSS-CHECK FAILED: qe-flash ${threads} threads differs by ${diff}`);
        }
        flashThreads = {
          engine: 'qe-flash',
          threads,
          status: 'ok',
          timing,
          memoryBytes: last ? last.memoryMB * MIB : null,
          memoryHow: 'kernel working memory, all workers (arena high-water)',
          maxAbsDiff: diff,
          note: last ? `${last.module} module, ${last.threads} threads, tiles ${last.tileQ}x${last.tileK}` : undefined,
        };
        this.log(`  qe-flash ${threads} threads: ${timing.medianMs.toFixed(2)} ms`);
      });

      // The peers' outputs and memory; a peer that failed while timed is reported so.
      for (const [i, entry] of opened.entries()) {
        const { peer, session } = entry;
        try {
          entry.closed = true;
          const { output, memory } = await session.close();
          if (session.failure !== null) throw session.failure.error;
          const timing = timings[sessions.length + i];
          const diff = maxAbsDiff(output, reference);
          if (!(diff <= CROSS_CHECK_TOLERANCE)) {
            crossCheckPassed = false;
            this.log(`  CROSS-CHECK FAILED: ${peer.name} (${peer.threads} threads) differs by ${diff}`);
          }
          peers.push({
            engine: peer.name + (peer.version ? ` ${peer.version}` : ''),
            threads: peer.threads,
            status: 'ok',
            timing,
            memoryBytes: Math.max(memory.arrayBuffersBytes, memory.rssBytes),
            memoryHow: 'growth of process arrayBuffers / rss',
            maxAbsDiff: diff,
            note: `arrayBuffers +${(memory.arrayBuffersBytes / MIB).toFixed(1)} MiB, rss +${(memory.rssBytes / MIB).toFixed(1)} MiB`,
          });
          this.log(`  ${peer.name} ${peer.threads} thread(s): ${timing.medianMs.toFixed(2)} ms`);
        } catch (err) {
          peerFailed(peer, session.failure?.error ?? err);
        }
      }
    } finally {
      // Whatever happened: every engine released, every peer session ended.
      ours1.dispose();
      for (const { engine } of multi) engine.dispose();
      for (const entry of opened) {
        if (!entry.closed) await entry.session.close().catch(() => undefined);
      }
    }
    if (peers.some((p) => p.status === 'failed')) crossCheckPassed = false;

    // The naive baseline, same inputs, on its own (it is 40-70x slower; its
    // speedup goal has margin enough).
    let baseline = notRun('baseline', 1, 'skipped', `its ${seqLen} x ${seqLen} score matrix is ${((seqLen * seqLen * 4) / MIB).toFixed(0)} MiB`);
    if (withOthers) {
      const resolved: ResolvedAttention = {
        seqLen,
        kvSeqLen: seqLen,
        dim,
        heads,
        headDim: dim / heads,
        scale: 1 / Math.sqrt(dim / heads),
        causal: false,
        validKeyLength: seqLen,
      };
      let out: Float32Array = new Float32Array(0);
      const slow = { ...measureOptions, warmupCalls: Math.min(3, measureOptions.warmupCalls ?? 3), warmupMs: 0, minRuns: Math.min(10, measureOptions.minRuns ?? 10), minTimeMs: 0 };
      const timing = await measure(() => {
        out = naiveAttention(inputs.Q, inputs.K, inputs.V, resolved);
      }, slow);
      const diff = maxAbsDiff(out, reference);
      if (!(diff <= CROSS_CHECK_TOLERANCE)) {
        crossCheckPassed = false;
        this.log(`  CROSS-CHECK FAILED: baseline differs by ${diff}`);
      }
      baseline = {
        engine: 'baseline (naive JS)',
        threads: 1,
        status: 'ok',
        timing,
        memoryBytes: seqLen * seqLen * 4,
        memoryHow: 'its score matrix',
        maxAbsDiff: diff,
      };
      this.log(`  baseline: ${timing.medianMs.toFixed(2)} ms`);
    }

    const best = [flash, flashThreads].filter((e) => e.timing).sort((a, b) => a.timing!.medianMs - b.timing!.medianMs)[0];
    const speedup = baseline.timing && best.timing ? baseline.timing.medianMs / best.timing.medianMs : null;
    const memoryReduction =
      baseline.memoryBytes && best.memoryBytes !== null ? 1 - best.memoryBytes / baseline.memoryBytes : null;
    const targets = withOthers
      ? targetChecks(
          workload,
          best.timing!.medianMs,
          best.memoryBytes !== null ? best.memoryBytes / MIB : null,
          seqLen / (best.timing!.medianMs / 1000),
          'tokens/s',
        )
      : null;
    return {
      workload,
      label,
      kind: 'attention',
      shape: { ...shape },
      baseline,
      flash,
      flashThreads,
      peers,
      speedup,
      memoryReduction,
      seedSpeedupReached: speedup === null ? null : speedup >= SEED_SPEEDUP_RANGE.min,
      targets,
      meetsTarget: allPass(targets),
      flops,
      crossCheckPassed,
    };
  }
}

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

/** As in the original: runs the whole suite (see FlashAttentionBenchmark) and returns each workload's result. */
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

export async function runFlashAttentionBenchmarks(options: FlashAttentionBenchmarkOptions = {}): Promise<Map<QEWorkloadType, BenchmarkResult>> {
  return new FlashAttentionBenchmark(options).runFullSuite();
}

/** As in the original: benchmarks one workload on a fresh suite and returns its result. */
export async function benchmarkWorkload(workload: QEWorkloadType, options: FlashAttentionBenchmarkOptions = {}): Promise<BenchmarkResult> {
  return new FlashAttentionBenchmark(options).benchmarkWorkload(workload);
}
