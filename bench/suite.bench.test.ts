/**
 * The benchmark suite under Jest, for users who drive benchmarks from Jest.
 * It prints the same tables as `make bench`. Its assertions are about
 * agreement (every engine's output matches ours and float64), never about
 * timings: those are reported, and judged in the tables, not here.
 * onnxruntime-web runs in child processes here (Jest's sandbox cannot load
 * it), on the same inputs.
 */
import * as os from 'os';
import { FlashAttentionBenchmark, formatMarkdown, CROSS_CHECK_TOLERANCE } from '../js/benchmark';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { createOnnxRuntimePeers } = require('./peers/onnxruntime');

describe('flash attention benchmark suite', () => {
  it('runs every workload side by side and the engines agree', async () => {
    const cores = os.cpus().length;
    const { peers, reason } = createOnnxRuntimePeers(cores > 1 ? [1, cores] : [1], { inProcess: false });
    if (reason) console.log(`note: ${reason}`);
    const suite = new FlashAttentionBenchmark({ peers, longSequence: false });
    try {
      await suite.runFullSuite();
    } finally {
      for (const p of peers) await p.dispose?.();
    }
    const results = suite.getRows();
    console.log(formatMarkdown(results, suite.getMachine()));
    // The original module's view: one result per workload, its first row.
    expect([...suite.getResults().keys()]).toEqual(['test-similarity', 'code-embedding', 'defect-matching', 'coverage-analysis', 'pattern-adaptation']);

    const attention = results.filter((r) => r.kind === 'attention');
    expect(attention.map((r) => r.workload)).toEqual(['test-similarity', 'code-embedding', 'defect-matching']);
    for (const r of attention) {
      expect(r.flash.status).toBe('ok');
      expect(r.baseline.status).toBe('ok');
      expect(r.baseline.maxAbsDiff!).toBeLessThanOrEqual(CROSS_CHECK_TOLERANCE);
      for (const p of r.peers) {
        expect(p.status).toBe('ok');
        expect(p.maxAbsDiff!).toBeLessThanOrEqual(CROSS_CHECK_TOLERANCE);
      }
      expect(r.crossCheckPassed).toBe(true);
      // Medians are medians: inside their own range.
      expect(r.flash.timing!.minMs).toBeLessThanOrEqual(r.flash.timing!.medianMs);
      expect(r.flash.timing!.medianMs).toBeLessThanOrEqual(r.flash.timing!.maxMs);
      expect(r.flash.timing!.runs).toBeGreaterThanOrEqual(10);
    }
    expect(suite.crossChecksPassed()).toBe(true);
  });
});
