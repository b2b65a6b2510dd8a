/**
 * What a benchmark row is: the reference shapes, the engines' runs and
 * their metric fields, targets, and completeRow, which fills in the original
 * module's BenchmarkResult fields. The rows themselves are made in
 * js/benchmark-attention.ts and js/benchmark-search.ts.
 */
import type { QEWorkloadType } from '../types';
import { MAX_SPEEDUP_TARGET, MIN_SPEEDUP_TARGET, QE_PERFORMANCE_TARGETS } from './config';
import { seededUniform, type TimedSession, type TimingStats } from './benchmark-measure';

export const MIB = 1024 * 1024;

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

export function notRun(engine: string, threads: number, status: EngineStatus, note: string): EngineRun {
  return { engine, threads, status, timing: null, memoryBytes: null, memoryHow: '', maxAbsDiff: null, note };
}

export function targetChecks(
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

export function allPass(t: TargetCheck | null): boolean | null {
  if (!t) return null;
  const passes = [t.latencyMs.pass, t.memoryMB.pass, t.throughput.pass];
  if (passes.some((p) => p === null)) return null;
  return passes.every(Boolean);
}
