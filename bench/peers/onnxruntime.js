'use strict';
/*
 * onnxruntime-web's wasm backend as an attention peer: the graph
 * Reshape/Transpose -> MatMul -> Mul(scale) -> Softmax -> MatMul ->
 * Transpose/Reshape, built in memory with onnx-proto, fp32, the same
 * multi-head layout as ours ([N x dim] in, [N x dim] out).
 *
 * onnxruntime-web fixes its thread count when its wasm starts, once per
 * process. The first thread count asked for runs in this process; any other
 * runs in a child process of this script, fed the same input arrays over IPC,
 * started for each shape and ended after it.
 */
const path = require('path');
const fs = require('fs');
const { fork } = require('child_process');

const { measure } = require(path.join(__dirname, '..', '..', 'dist', 'cjs', 'js', 'benchmark.js'));

function attentionModel(ort, onnx, { seqLen, dim, heads }) {
  const d = dim / heads;
  const FLOAT = onnx.TensorProto.DataType.FLOAT;
  const INT64 = onnx.TensorProto.DataType.INT64;
  const value = (name, shape) =>
    onnx.ValueInfoProto.create({ name, type: { tensorType: { elemType: FLOAT, shape: { dim: shape.map((v) => ({ dimValue: v })) } } } });
  const ints = (name, v) => onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.INTS, ints: v });
  const int = (name, v) => onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.INT, i: v });
  const node = (op, input, output, attribute = []) => onnx.NodeProto.create({ opType: op, input, output, attribute });
  const graph = onnx.GraphProto.create({
    name: 'attention',
    node: [
      node('Reshape', ['Q', 'heads_shape'], ['q3']),
      node('Transpose', ['q3'], ['qh'], [ints('perm', [1, 0, 2])]),
      node('Reshape', ['K', 'heads_shape'], ['k3']),
      node('Transpose', ['k3'], ['kt'], [ints('perm', [1, 2, 0])]),
      node('Reshape', ['V', 'heads_shape'], ['v3']),
      node('Transpose', ['v3'], ['vh'], [ints('perm', [1, 0, 2])]),
      node('MatMul', ['qh', 'kt'], ['scores']),
      node('Mul', ['scores', 'scale'], ['scaled']),
      node('Softmax', ['scaled'], ['probs'], [int('axis', -1)]),
      node('MatMul', ['probs', 'vh'], ['oh']),
      node('Transpose', ['oh'], ['o3'], [ints('perm', [1, 0, 2])]),
      node('Reshape', ['o3', 'out_shape'], ['O']),
    ],
    initializer: [
      onnx.TensorProto.create({ name: 'heads_shape', dims: [3], dataType: INT64, int64Data: [0, heads, d] }),
      onnx.TensorProto.create({ name: 'out_shape', dims: [2], dataType: INT64, int64Data: [0, dim] }),
      onnx.TensorProto.create({ name: 'scale', dims: [], dataType: FLOAT, floatData: [1 / Math.sqrt(d)] }),
    ],
    input: [value('Q', [seqLen, dim]), value('K', [seqLen, dim]), value('V', [seqLen, dim])],
    output: [value('O', [seqLen, dim])],
  });
  const model = onnx.ModelProto.create({ irVersion: 8, opsetImport: [{ domain: '', version: 17 }], graph });
  return onnx.ModelProto.encode(model).finish();
}

/** The installed version, read from its package.json (which its exports map does not expose). */
function ortVersion() {
  try {
    let dir = path.dirname(require.resolve('onnxruntime-web'));
    while (!fs.existsSync(path.join(dir, 'package.json'))) dir = path.dirname(dir);
    return JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).version;
  } catch {
    return undefined;
  }
}

let ortLoaded = null;
function loadOrt(threads) {
  if (ortLoaded === null) {
    const ort = require('onnxruntime-web');
    const { onnx } = require('onnx-proto');
    ort.env.wasm.numThreads = threads;
    ort.env.logLevel = 'error';
    ortLoaded = { ort, onnx, threads };
  } else if (ortLoaded.threads !== threads) {
    throw new Error(`onnxruntime-web already runs with ${ortLoaded.threads} threads in this process`);
  }
  return ortLoaded;
}

async function runInProcess(threads, shape, inputs, measureOptions) {
  const { ort, onnx } = loadOrt(threads);
  const before = process.memoryUsage();
  const session = await ort.InferenceSession.create(attentionModel(ort, onnx, shape), {
    executionProviders: ['wasm'],
    graphOptimizationLevel: 'all',
  });
  const dims = [shape.seqLen, shape.dim];
  const feeds = {
    Q: new ort.Tensor('float32', inputs.Q, dims),
    K: new ort.Tensor('float32', inputs.K, dims),
    V: new ort.Tensor('float32', inputs.V, dims),
  };
  let output = null;
  const timing = await measure(async () => {
    const result = await session.run(feeds);
    output = result.O.data;
  }, measureOptions);
  const after = process.memoryUsage();
  await session.release();
  return {
    output: Float32Array.from(output),
    timing,
    memory: { arrayBuffersBytes: Math.max(0, after.arrayBuffers - before.arrayBuffers), rssBytes: Math.max(0, after.rss - before.rss) },
  };
}

class OnnxRuntimePeer {
  constructor(threads, inProcess) {
    this.name = 'onnxruntime-web';
    this.threads = threads;
    this.inProcess = inProcess;
    this.child = null;
    this.pending = null;
    this.version = ortVersion();
  }

  async run(shape, inputs, measureOptions) {
    if (this.inProcess) return runInProcess(this.threads, shape, inputs, measureOptions);
    if (this.child === null) {
      this.child = fork(__filename, ['--child', String(this.threads)], { serialization: 'advanced', stdio: 'inherit' });
      this.child.on('message', (msg) => {
        const p = this.pending;
        this.pending = null;
        if (!p) return;
        if (msg.error) p.reject(new Error(msg.error));
        else p.resolve(msg.result);
      });
      this.child.on('exit', (code) => {
        if (this.pending) this.pending.reject(new Error(`onnxruntime-web child exited with ${code}`));
        this.pending = null;
        this.child = null;
      });
    }
    try {
      return await new Promise((resolve, reject) => {
        this.pending = { resolve, reject };
        this.child.send({ shape, inputs, measureOptions });
      });
    } finally {
      // A fresh child per shape: an idle onnxruntime thread pool left running
      // would compete with the engines measured after it.
      this.dispose();
    }
  }

  dispose() {
    if (this.child) this.child.kill();
    this.child = null;
  }
}

/**
 * Peers for the given thread counts, or [] with a reason when
 * onnxruntime-web is not installed. The first runs in this process unless
 * inProcess is false (Jest's module sandbox cannot host onnxruntime-web's
 * wasm loader, so under Jest every peer runs in a child process).
 */
function createOnnxRuntimePeers(threadCounts, { inProcess = true } = {}) {
  try {
    require.resolve('onnxruntime-web');
    require.resolve('onnx-proto');
  } catch {
    return { peers: [], reason: 'onnxruntime-web is not installed (npm ci installs it as a dev dependency)' };
  }
  return { peers: threadCounts.map((t, i) => new OnnxRuntimePeer(t, inProcess && i === 0)), reason: null };
}

module.exports = { createOnnxRuntimePeers, attentionModel };

if (require.main === module && process.argv[2] === '--child') {
  const threads = Number(process.argv[3]);
  process.on('message', async ({ shape, inputs, measureOptions }) => {
    try {
      const result = await runInProcess(threads, shape, inputs, measureOptions);
      process.send({ result });
    } catch (err) {
      process.send({ error: String((err && err.stack) || err) });
    }
  });
  process.on('disconnect', () => process.exit(0));
}
