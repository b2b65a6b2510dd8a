'use strict';
/*
 * Benchmark rows of the ONNX Attention operator, one thread each,
 * engines taking turns in this process (measureSideBySide):
 *   - grouped-query decode: 1 query token, 32 Q heads, 8 KV heads, head size
 *     128, a 4,096-token cache (4,095 past + 1 new), causal;
 *   - masked prefill: batch 4, 512 tokens, 12 heads, head size 64, a boolean
 *     key-padding mask [4, 1, 512, 512] (valid lengths 512, 400, 300, 137;
 *     onnxruntime-web wants the mask's query axis spelled out, not broadcast);
 * both against onnxruntime-web's own Attention operator (opset 23, wasm
 * backend) on the same inputs; and onnxAttention against
 * computeFlashAttention on the reference shapes (same module, same tiles):
 * what the operator's generality costs.
 *
 * Usage: node bench/onnx-attention.js [--quick]  (also run by bench/run.js)
 */
const path = require('path');

const root = path.join(__dirname, '..');
const bench = require(path.join(root, 'dist', 'cjs', 'js', 'benchmark.js'));
const api = require(path.join(root, 'dist', 'cjs', 'js', 'index.js'));
const { loadQEModule } = require(path.join(root, 'dist', 'cjs', 'js', 'module.js'));

const DECODE = { name: 'GQA decode: 1 token, 32 Q / 8 KV heads, head 128, 4,096-token cache', batch: 1, qHeads: 32, kvHeads: 8, qLen: 1, past: 4095, kvLen: 1, headSize: 128, causal: true };
const PREFILL = { name: 'masked prefill: batch 4, 512 tokens, 12 heads, head 64, per-batch padding', batch: 4, qHeads: 12, kvHeads: 12, qLen: 512, past: 0, kvLen: 512, headSize: 64, causal: false, valid: [512, 400, 300, 137] };

function inputsFor(c) {
  const keys = c.past + c.kvLen;
  const t = (data, dims, type = 'float32') => ({ data, dims, type });
  const inputs = {
    Q: t(bench.seededUniform(c.batch * c.qHeads * c.qLen * c.headSize, 1), [c.batch, c.qHeads, c.qLen, c.headSize]),
    K: t(bench.seededUniform(c.batch * c.kvHeads * c.kvLen * c.headSize, 2), [c.batch, c.kvHeads, c.kvLen, c.headSize]),
    V: t(bench.seededUniform(c.batch * c.kvHeads * c.kvLen * c.headSize, 3), [c.batch, c.kvHeads, c.kvLen, c.headSize]),
  };
  if (c.past) {
    inputs.past_key = t(bench.seededUniform(c.batch * c.kvHeads * c.past * c.headSize, 4), [c.batch, c.kvHeads, c.past, c.headSize]);
    inputs.past_value = t(bench.seededUniform(c.batch * c.kvHeads * c.past * c.headSize, 5), [c.batch, c.kvHeads, c.past, c.headSize]);
  }
  if (c.valid) {
    const mask = new Uint8Array(c.batch * c.qLen * keys);
    c.valid.forEach((n, b) => {
      for (let i = 0; i < c.qLen; i++) mask.fill(1, (b * c.qLen + i) * keys, (b * c.qLen + i) * keys + n);
    });
    inputs.attn_mask = t(mask, [c.batch, 1, c.qLen, keys], 'bool');
  }
  return inputs;
}

/** onnxruntime-web's Attention node (opset 23) for these inputs, as an ONNX model. */
function ortModel(onnx, inputs, attributes, outputs) {
  const types = { float32: onnx.TensorProto.DataType.FLOAT, bool: onnx.TensorProto.DataType.BOOL };
  const value = (name, t) =>
    onnx.ValueInfoProto.create({ name, type: { tensorType: { elemType: types[t.type], shape: { dim: t.dims.map((v) => ({ dimValue: v })) } } } });
  const order = ['Q', 'K', 'V', 'attn_mask', 'past_key', 'past_value'];
  const names = order.map((n) => (inputs[n] ? n : ''));
  while (names[names.length - 1] === '') names.pop();
  const attribute = Object.entries(attributes).map(([name, i]) =>
    onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.INT, i }));
  const graph = onnx.GraphProto.create({
    name: 'attention',
    node: [onnx.NodeProto.create({ opType: 'Attention', input: names, output: outputs.map((o) => o.name), attribute })],
    input: names.filter((n) => n).map((n) => value(n, inputs[n])),
    output: outputs.map((o) => value(o.name, { type: 'float32', dims: o.dims })),
  });
  return onnx.ModelProto.encode(onnx.ModelProto.create({ irVersion: 10, opsetImport: [{ domain: '', version: 23 }], graph })).finish();
}

function fmt(t) {
  return `${t.medianMs.toFixed(2)} (${t.minMs.toFixed(2)}-${t.maxMs.toFixed(2)})`;
}

function maxAbsDiff(a, b) {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

async function operatorRows(module, measureOptions, log) {
  let ort = null;
  let onnx = null;
  try {
    ort = require('onnxruntime-web');
    onnx = require('onnx-proto').onnx;
    ort.env.wasm.numThreads = 1;
    ort.env.logLevel = 'error';
  } catch {
    log('note: onnxruntime-web is not installed; the ONNX Attention rows have no peer column');
  }
  const rows = [];
  for (const c of [DECODE, PREFILL]) {
    const inputs = inputsFor(c);
    const attributes = c.causal ? { is_causal: 1 } : {};
    const keys = c.past + c.kvLen;
    const outputs = [{ name: 'Y', dims: [c.batch, c.qHeads, c.qLen, c.headSize] }];
    if (c.past) outputs.push({ name: 'present_key', dims: [c.batch, c.kvHeads, keys, c.headSize] }, { name: 'present_value', dims: [c.batch, c.kvHeads, keys, c.headSize] });
    let ours = null;
    const sessions = [bench.localSession(() => { ours = api.onnxAttentionOn(module, inputs, attributes).Y.data; })];
    let theirs = null;
    let session = null;
    if (ort) {
      session = await ort.InferenceSession.create(ortModel(onnx, inputs, attributes, outputs), { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
      const feeds = {};
      for (const [name, t] of Object.entries(inputs)) feeds[name] = new ort.Tensor(t.type, t.data, t.dims);
      sessions.push(bench.localSession(async () => { theirs = (await session.run(feeds)).Y.data; }));
    }
    const [mine, peer] = await bench.measureSideBySide(sessions, measureOptions);
    const row = { shape: c.name, ours: mine, ort: peer ?? null, maxAbsDiff: theirs ? maxAbsDiff(ours, theirs) : null };
    if (session) await session.release();
    log(`  ${c.name}: qe-flash ${fmt(mine)} ms${peer ? `, onnxruntime-web ${fmt(peer)} ms, x${(peer.medianMs / mine.medianMs).toFixed(2)}, max |diff| ${row.maxAbsDiff.toExponential(1)}` : ''}`);
    rows.push(row);
  }
  return rows;
}

async function overheadRows(module, measureOptions, log) {
  const rows = [];
  for (const [workload, shape] of Object.entries(bench.REFERENCE_SHAPES)) {
    const engine = await api.createQEFlashAttention(workload, undefined, { threads: 1 });
    const { blocks } = engine.getConfig();
    const { Q, K, V } = bench.attentionInputs(shape, 7);
    const n = shape.seqLen, d = shape.dim, h = shape.heads;
    const inputs = { Q: { data: Q, dims: [1, n, d] }, K: { data: K, dims: [1, n, d] }, V: { data: V, dims: [1, n, d] } };
    const attributes = { q_num_heads: h, kv_num_heads: h };
    const options = { blockQ: blocks.queryChunkSize, blockK: blocks.kvChunkSize };
    let a = null;
    let b = null;
    const [flash, op] = await bench.measureSideBySide([
      bench.localSession(() => { a = engine.computeFlashAttentionSync(Q, K, V, n, d, { heads: h }); }),
      bench.localSession(() => { b = api.onnxAttentionOn(module, inputs, attributes, options).Y.data; }),
    ], measureOptions);
    const same = a.length === b.length && a.every((x, i) => Object.is(x, b[i]));
    const row = { workload, shape: `N=${n}, dim ${d}, ${h} heads`, flash, onnx: op, ratio: op.medianMs / flash.medianMs, sameBits: same };
    log(`  ${workload} ${row.shape}: computeFlashAttention ${fmt(flash)} ms, onnxAttention ${fmt(op)} ms, ratio ${row.ratio.toFixed(3)}${same ? ', same bits' : ''}`);
    rows.push(row);
    engine.dispose?.();
  }
  return rows;
}

/** Both tables, measured now; `module` defaults to the single-thread build of this engine. */
async function runOnnxAttentionRows({ quick = false, log = () => {} } = {}) {
  const module = await loadQEModule({ threads: 1 });
  const measureOptions = quick
    ? { warmupCalls: 3, warmupMs: 100, minRuns: 5, minTimeMs: 0 }
    : { minRuns: bench.COMPARED_RUNS, rounds: bench.COMPARED_ROUNDS, maxRuns: bench.COMPARED_RUNS };
  log(`ONNX Attention operator (${module.kind} module, 1 thread):`);
  const operator = await operatorRows(module, measureOptions, log);
  log('onnxAttention vs computeFlashAttention (same module and tiles, 1 thread):');
  const overhead = await overheadRows(module, measureOptions, log);
  return { module: module.kind, operator, overhead };
}

function onnxAttentionMarkdown({ module, operator, overhead }) {
  const lines = [
    `ONNX Attention operator, 1 thread, ${module} module; medians (min-max) in ms, engines taking turns in one process:`,
    '',
    '| shape | qe-flash onnxAttention | onnxruntime-web Attention (opset 23) | ort / ours | max abs diff |',
    '|---|---|---|---|---|',
    ...operator.map((r) => `| ${r.shape} | ${fmt(r.ours)} | ${r.ort ? fmt(r.ort) : 'n/a'} | ${r.ort ? (r.ort.medianMs / r.ours.medianMs).toFixed(2) : 'n/a'} | ${r.maxAbsDiff === null ? 'n/a' : r.maxAbsDiff.toExponential(1)} |`),
    '',
    'onnxAttention against computeFlashAttention on the reference shapes (goal: within 5%):',
    '',
    '| workload | shape | computeFlashAttention | onnxAttention | ratio | same bits |',
    '|---|---|---|---|---|---|',
    ...overhead.map((r) => `| ${r.workload} | ${r.shape} | ${fmt(r.flash)} | ${fmt(r.onnx)} | ${r.ratio.toFixed(3)} | ${r.sameBits ? 'yes' : 'no'} |`),
    '',
  ];
  return lines.join('\n');
}

module.exports = { runOnnxAttentionRows, onnxAttentionMarkdown, ortModel };

if (require.main === module) {
  runOnnxAttentionRows({ quick: process.argv.includes('--quick'), log: (l) => console.log(l) })
    .then((r) => console.log('\n' + onnxAttentionMarkdown(r)))
    .catch((e) => { console.error(e); process.exit(1); });
}
