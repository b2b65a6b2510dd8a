/**
 * The attention rows: ours on one thread, ours on all cores and the peers
 * timed side by side, taking turns; every output checked against ours and
 * against float64 on sampled rows; then the naive baseline on its own.
 */
import type { QEWorkloadType } from '../types';
import { naiveAttention } from './baseline';
import type { QEFlashAttention } from './flash-attention';
import { describeMachine } from './platform';
import type { ResolvedAttention } from './validate';
import { COMPARED_ROUNDS, COMPARED_RUNS, localSession, measure, measureSideBySide, type MeasureOptions, type TimedSession } from './benchmark-measure';
import { maxAbsDiff, referenceRows } from './benchmark-reference';
import {
  allPass, attentionInputs, CROSS_CHECK_TOLERANCE, MIB, notRun, SEED_SPEEDUP_RANGE, targetChecks,
  type AttentionPeer, type AttentionShape, type BenchmarkRowDraft, type EngineRun, type PeerSession,
} from './benchmark-rows';

/** What a row needs from the suite running it (js/benchmark.ts). */
export interface BenchContext {
  /** Timing options of the run (a quick run sets one call each). */
  readonly measure?: MeasureOptions;
  readonly peers: readonly AttentionPeer[];
  /** Include the 512-query search row. */
  readonly searchBatch: boolean;
  log(line: string): void;
  /** Thread counts of ours to run. */
  threadCounts(): number[];
  /** Our engine for a workload and thread count; null when it cannot run here. */
  engine(workload: QEWorkloadType, threads: number): Promise<QEFlashAttention | null>;
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

export async function attentionRow(ctx: BenchContext, workload: QEWorkloadType, shape: AttentionShape, withOthers: boolean): Promise<BenchmarkRowDraft> {
  const { seqLen, dim, heads } = shape;
  const label = `attention N=${seqLen} dim=${dim} heads=${heads}`;
  const inputs = attentionInputs(shape);
  const flops = 4 * seqLen * seqLen * dim;
  const measureOptions: MeasureOptions = withOthers
    ? { minRuns: COMPARED_RUNS, rounds: COMPARED_ROUNDS, ...ctx.measure }
    : { warmupCalls: 1, warmupMs: 0, minRuns: 3, minTimeMs: 0 };
  const options = { heads };
  ctx.log(`${workload}: ${label}`);

  // The engines compared with each other are timed side by side, taking
  // turns (measureSideBySide): ours on one thread, ours on all cores, and
  // the peers. Ours on one thread is the reference every other output is
  // compared with.
  const ours1 = await ctx.engine(workload, 1);
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
    ctx.log(`  ${peer.name} (${peer.threads} threads) FAILED: ${(err as Error)?.message ?? err}`);
  };
  let flash: EngineRun;
  let flashThreads = notRun('qe-flash', describeMachine().cores, 'skipped', 'no multi-threaded engine in this run (one core, no threaded module, or threadCounts [1])');
  let crossCheckPassed: boolean;
  try {
    for (const threads of ctx.threadCounts().filter((t) => t > 1)) {
      const engine = await ctx.engine(workload, threads);
      if (engine === null) continue;
      const entry: (typeof multi)[number] = { threads, engine, out: new Float32Array(0) };
      multi.push(entry);
      sessions.push(localSession(() => {
        entry.out = engine.computeFlashAttentionSync(inputs.Q, inputs.K, inputs.V, seqLen, dim, options);
      }));
    }
    if (withOthers) {
      for (const peer of ctx.peers) {
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
    ctx.log(`  qe-flash 1 thread: ${timings[0].medianMs.toFixed(2)} ms`);

    // Independent check against float64 on sampled rows.
    const sample = [0, Math.floor(seqLen / 3), seqLen - 1].filter((v, i, a) => a.indexOf(v) === i);
    let truthDiff = 0;
    if (seqLen <= 4096) {
      for (const [i, row] of referenceRows(inputs, shape, sample)) {
        for (let c = 0; c < dim; c++) truthDiff = Math.max(truthDiff, Math.abs(reference[i * dim + c] - row[c]));
      }
    }
    crossCheckPassed = truthDiff <= CROSS_CHECK_TOLERANCE;
    if (!crossCheckPassed) ctx.log(`  CROSS-CHECK FAILED: qe-flash differs from float64 by ${truthDiff}`);

    // Ours on all cores.
    multi.forEach(({ threads, engine, out }, i) => {
      const timing = timings[1 + i];
      const last = engine.getMetrics().pop();
      const diff = maxAbsDiff(out, reference);
      if (!(diff <= CROSS_CHECK_TOLERANCE)) {
        crossCheckPassed = false;
        ctx.log(`  CROSS-CHECK FAILED: qe-flash ${threads} threads differs by ${diff}`);
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
      ctx.log(`  qe-flash ${threads} threads: ${timing.medianMs.toFixed(2)} ms`);
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
          ctx.log(`  CROSS-CHECK FAILED: ${peer.name} (${peer.threads} threads) differs by ${diff}`);
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
        ctx.log(`  ${peer.name} ${peer.threads} thread(s): ${timing.medianMs.toFixed(2)} ms`);
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
      ctx.log(`  CROSS-CHECK FAILED: baseline differs by ${diff}`);
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
    ctx.log(`  baseline: ${timing.medianMs.toFixed(2)} ms`);
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
