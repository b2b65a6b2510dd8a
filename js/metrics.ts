/**
 * Per-call metrics of the attention, every number measured: time around the
 * module call (copies included), the kernel's working memory as the arena
 * reports it, module memory, and a speedup only where a baseline ran on the
 * same shape in this instance.
 */
import type { FlashAttentionMetrics, ModuleKind, QEOperation, QEWorkloadType } from '../types';
import type { ResolvedAttention } from './validate';

const MIB = 1024 * 1024;

/** Calls kept by default; older ones are dropped first. */
export const DEFAULT_METRICS_CAPACITY = 10000;

/** The shape a baseline time is valid for. */
export function shapeKey(p: Pick<ResolvedAttention, 'seqLen' | 'kvSeqLen' | 'dim' | 'heads' | 'causal'>): string {
  return `${p.seqLen}x${p.kvSeqLen}x${p.dim}/h${p.heads}${p.causal ? '/causal' : ''}`;
}

export interface MeasuredCall {
  workload: QEWorkloadType;
  shape: ResolvedAttention;
  timeMs: number;
  workspaceBytes: number;
  memoryBytes: number;
  tileQ: number;
  tileK: number;
  module: ModuleKind;
  /** Threads the call ran on (default 1). */
  threads?: number;
  /** What the call did differently from what was asked (a worker lost and replaced, ...). */
  warnings?: readonly string[];
}

/** One call of a QE method (similarity, defect matching, code embedding). */
export interface MeasuredOperation {
  operation: Exclude<QEOperation, 'attention'>;
  workload: QEWorkloadType;
  /** Rows processed: corpus vectors, patterns, or code tokens. */
  rows: number;
  dim: number;
  heads: number;
  timeMs: number;
  workspaceBytes: number;
  memoryBytes: number;
  module: ModuleKind;
  /** Threads the call ran on (default 1). */
  threads?: number;
  warnings?: readonly string[];
}

export class MetricsRecorder {
  private entries: FlashAttentionMetrics[] = [];
  /** A warning that holds for every call of the instance (threads clamped to the cores). */
  private standing: string | null = null;
  private readonly baselineMs = new Map<string, number>();

  constructor(private readonly capacity: number = DEFAULT_METRICS_CAPACITY) {}

  /** Attaches `warning` to every later record's `warnings`. */
  setStandingWarning(warning: string): void {
    this.standing = warning;
  }

  /** The record's `warnings`: the standing one and the call's own; absent when there are none. */
  private warnings(own: readonly string[] | undefined): { warnings?: string[] } {
    const all = [...(this.standing === null ? [] : [this.standing]), ...(own ?? [])];
    return all.length === 0 ? {} : { warnings: all };
  }

  /** Remembers the latest baseline time for this shape. */
  recordBaseline(shape: ResolvedAttention, timeMs: number): void {
    this.baselineMs.set(shapeKey(shape), timeMs);
  }

  baselineTime(shape: ResolvedAttention): number | null {
    return this.baselineMs.get(shapeKey(shape)) ?? null;
  }

  record(call: MeasuredCall): FlashAttentionMetrics {
    const baselineTimeMs = this.baselineTime(call.shape);
    // A timer too coarse to see the call (browsers round to 0.1 ms) leaves the ratio unknown.
    const resolved = call.timeMs > 0;
    const entry: FlashAttentionMetrics = {
      operation: 'attention',
      workload: call.workload,
      seqLen: call.shape.seqLen,
      kvSeqLen: call.shape.kvSeqLen,
      dim: call.shape.dim,
      heads: call.shape.heads,
      causal: call.shape.causal,
      timeMs: call.timeMs,
      memoryMB: call.workspaceBytes / MIB,
      peakMemoryMB: call.memoryBytes / MIB,
      throughput: resolved ? call.shape.seqLen / (call.timeMs / 1000) : Number.POSITIVE_INFINITY,
      speedup: baselineTimeMs !== null && resolved ? baselineTimeMs / call.timeMs : null,
      baselineTimeMs,
      tileQ: call.tileQ,
      tileK: call.tileK,
      module: call.module,
      threads: call.threads ?? 1,
      timestamp: Date.now(),
      ...this.warnings(call.warnings),
    };
    this.entries.push(entry);
    if (this.entries.length > this.capacity) this.entries.splice(0, this.entries.length - this.capacity);
    return copyEntry(entry);
  }

  /** Records a QE method call; its speedup is unknown (no baseline runs for these). */
  recordOperation(call: MeasuredOperation): FlashAttentionMetrics {
    const entry: FlashAttentionMetrics = {
      operation: call.operation,
      workload: call.workload,
      seqLen: call.rows,
      kvSeqLen: call.rows,
      dim: call.dim,
      heads: call.heads,
      causal: false,
      timeMs: call.timeMs,
      memoryMB: call.workspaceBytes / MIB,
      peakMemoryMB: call.memoryBytes / MIB,
      throughput: call.timeMs > 0 ? call.rows / (call.timeMs / 1000) : Number.POSITIVE_INFINITY,
      speedup: null,
      baselineTimeMs: null,
      tileQ: 0,
      tileK: 0,
      module: call.module,
      threads: call.threads ?? 1,
      timestamp: Date.now(),
      ...this.warnings(call.warnings),
    };
    this.entries.push(entry);
    if (this.entries.length > this.capacity) this.entries.splice(0, this.entries.length - this.capacity);
    return copyEntry(entry);
  }

  list(): FlashAttentionMetrics[] {
    return this.entries.map(copyEntry);
  }

  /** Mean speedup over the recorded calls whose speedup is known; null when none is. */
  averageSpeedup(): number | null {
    let sum = 0;
    let count = 0;
    for (const entry of this.entries) {
      if (entry.speedup !== null) {
        sum += entry.speedup;
        count++;
      }
    }
    return count === 0 ? null : sum / count;
  }

  /** Forgets the recorded calls; baseline times stay, as they are still valid measurements. */
  reset(): void {
    this.entries = [];
  }
}

function copyEntry(entry: FlashAttentionMetrics): FlashAttentionMetrics {
  return entry.warnings === undefined ? { ...entry } : { ...entry, warnings: [...entry.warnings] };
}
