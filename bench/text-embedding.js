#!/usr/bin/env node
'use strict';
/*
 * Speed of the corpus-aware text index, side by side with the
 * embedding it replaces in the duplicate finder, in one process, engines
 * taking turns:
 *   - embedding a 40-line Java stack trace against a 'failure' index of 500
 *     traces (tokenize, hash, weigh, normalise): bar 1 ms;
 *   - embedding one ~30-line generated test case: the index's vector (dim
 *     256, the CLI's) against today's form-2 embedding at the CLI's former
 *     dim 128 (tokenizer, hashing, attention layer);
 * Warm-up first; medians with min and max.
 *
 * Usage: node bench/text-embedding.js [--json]   (after make all)
 */
const path = require('path');

const DIST = path.join(__dirname, '..', 'dist', 'cjs', 'js');
const TRACE_LIMIT_MS = 1;

/** A 40-line trace: exception, message, application frames, then JUnit and reflection frames. */
function javaTrace(i) {
  const lines = [`java.lang.IllegalStateException: order ${i} has no line items after discount SPRING${i % 50}`];
  for (let f = 0; f < 14; f++) lines.push(`\tat com.shop.module${i % 7}.Service${f}.step${(f * 7 + i) % 13}(Service${f}.java:${10 + f * 3})`);
  lines.push(`\tat com.shop.module${i % 7}.ServiceTest.handles${i % 11}(ServiceTest.java:${20 + i % 40})`);
  const junit = ['java.base/jdk.internal.reflect.NativeMethodAccessorImpl.invoke0(Native Method)', 'java.base/java.lang.reflect.Method.invoke(Method.java:568)',
    'org.junit.platform.commons.util.ReflectionUtils.invokeMethod(ReflectionUtils.java:725)', 'org.junit.jupiter.engine.execution.MethodInvocation.proceed(MethodInvocation.java:60)',
    'org.junit.jupiter.engine.descriptor.TestMethodTestDescriptor.invokeTestMethod(TestMethodTestDescriptor.java:214)', 'org.junit.platform.engine.support.hierarchical.NodeTestTask.executeRecursively(NodeTestTask.java:151)'];
  while (lines.length < 39) lines.push(`\tat ${junit[lines.length % junit.length]}`);
  lines.push('\t... 41 more');
  return lines.join('\n');
}

function stats(samples) {
  const s = samples.slice().sort((a, b) => a - b);
  return { median: s[Math.floor(s.length / 2)], min: s[0], max: s[s.length - 1], runs: s.length };
}

/** Per-call times (ms) of fn over `calls` calls, in `rounds` batches taking turns with the others. */
function timeTurns(fns, rounds = 10, calls = 50) {
  const out = fns.map(() => []);
  for (const fn of fns) for (let i = 0; i < 3 * calls; i++) fn(i); // warm-up
  for (let r = 0; r < rounds; r++) {
    fns.forEach((fn, k) => {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < calls; i++) fn(r * calls + i);
      out[k].push(Number(process.hrtime.bigint() - t0) / 1e6 / calls);
    });
  }
  return out.map(stats);
}

async function runTextEmbeddingBenchmark() {
  const { loadQEModule } = require(path.join(DIST, 'module.js'));
  const { createCodeIndex } = require(path.join(DIST, 'code-index.js'));
  const { embedSource } = require(path.join(DIST, 'code-embedding.js'));
  const module = await loadQEModule({ kind: 'simd' });

  const failures = createCodeIndex(module, { kind: 'failure' });
  const code = createCodeIndex(module, { kind: 'code', dim: 256 });
  try {
    for (let i = 0; i < 500; i++) failures.add(`defect-${i}`, javaTrace(i));
    const traces = Array.from({ length: 64 }, (_, i) => javaTrace(1000 + i));
    const cases = Array.from({ length: 64 }, (_, i) => generatedCase(i));
    cases.forEach((c, i) => code.add(String(i), c));
    const [trace] = timeTurns([(i) => failures.embed(traces[i % traces.length])]);
    const [search] = timeTurns([(i) => failures.search(traces[i % traces.length], 5)], 5, 20);
    const [newCase, oldCase] = timeTurns([
      (i) => code.embed(cases[i % cases.length]),
      (i) => embedSource(module, cases[i % cases.length], { dim: 128, weighting: 'uniform' }),
    ]);
    return {
      trace: { ...trace, lines: traces[0].split('\n').length, limitMs: TRACE_LIMIT_MS, verdict: trace.median < TRACE_LIMIT_MS ? 'PASS' : 'FAIL' },
      traceSearch: { ...search, library: 500 },
      testCase: { new: newCase, old: oldCase, ratio: newCase.median / oldCase.median },
    };
  } finally {
    failures.dispose();
    code.dispose();
  }
}

/** A ~30-line Jest case, deterministic in i. */
function generatedCase(i) {
  const lines = [`it('applies discount ${i} to the cart', async () => {`, `  const cart = new Cart({ owner: 'user-${i}' });`];
  for (let k = 0; k < 26; k++) lines.push(k % 2 ? `  expect(cart.item${(i + k) % 17}.price).toBe(${(i * 31 + k * 7) % 1000});` : `  await cart.addItem${k % 5}('sku-${(i + k) % 97}', ${k + 1});`);
  lines.push('});');
  return lines.join('\n');
}

function textEmbeddingMarkdown(r) {
  const f = (s) => `${s.median.toFixed(3)} ms (min ${s.min.toFixed(3)}, max ${s.max.toFixed(3)})`;
  return [
    '| what | median (min, max) | bar | verdict |',
    '|---|---|---|---|',
    `| embed a ${r.trace.lines}-line Java trace (failure index of 500) | ${f(r.trace)} | < ${r.trace.limitMs} ms | ${r.trace.verdict} |`,
    `| search it among ${r.traceSearch.library} known defects (top 5, with evidence) | ${f(r.traceSearch)} | | |`,
    `| embed a 30-line test case: code index, dim 256 | ${f(r.testCase.new)} | | |`,
    `| embed a 30-line test case: form 2 as the CLI did (dim 128, uniform) | ${f(r.testCase.old)} | | ratio ${r.testCase.ratio.toFixed(2)} |`,
    '',
  ].join('\n');
}

module.exports = { runTextEmbeddingBenchmark, textEmbeddingMarkdown };

if (require.main === module) {
  runTextEmbeddingBenchmark().then((r) => console.log(process.argv.includes('--json') ? JSON.stringify(r, null, 2) : textEmbeddingMarkdown(r)));
}
