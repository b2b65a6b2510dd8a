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
 * started for each shape and ended after it. Each shape is a session that
 * the benchmark times in turns with the other engines (measureSideBySide).
 */
const path = require('path');
const fs = require('fs');
const { fork } = require('child_process');

const { localSession } = require(path.join(__dirname, '..', '..', 'dist', 'cjs', 'js', 'benchmark.js'));

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

/**
 * One shape's session in this process: warm(calls, ms) and time(runs) as
 * js/benchmark.ts's TimedSession, close() the last output and memory growth.
 */
async function openInProcess(threads, shape, inputs) {
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
  const local = localSession(async () => {
    const result = await session.run(feeds);
    output = result.O.data;
  });
  return {
    warm: local.warm,
    time: local.time,
    async close() {
      const after = process.memoryUsage();
      await session.release();
      return {
        output: Float32Array.from(output),
        memory: { arrayBuffersBytes: Math.max(0, after.arrayBuffers - before.arrayBuffers), rssBytes: Math.max(0, after.rss - before.rss) },
      };
    },
  };
}

/**
 * One shape's session in a child process of this script, started for the
 * shape and ended with it: an idle onnxruntime thread pool left running
 * would compete with the engines measured after it. Each call is one
 * message; the child times its own calls.
 */
async function openInChild(threads, shape, inputs) {
  const child = fork(__filename, ['--child', String(threads)], { serialization: 'advanced', stdio: 'inherit' });
  let pending = null;
  let exited = null;
  child.on('message', (msg) => {
    const p = pending;
    pending = null;
    if (!p) return;
    if (msg.error) p.reject(new Error(msg.error));
    else p.resolve(msg.result);
  });
  child.on('exit', (code) => {
    exited = code;
    if (pending) pending.reject(new Error(`onnxruntime-web child exited with ${code}`));
    pending = null;
  });
  // A failed send (the channel already closed) arrives here, not as an exit.
  child.on('error', (err) => {
    if (pending) pending.reject(err);
    pending = null;
  });
  const ask = (msg) =>
    new Promise((resolve, reject) => {
      if (exited !== null) return reject(new Error(`onnxruntime-web child exited with ${exited}`));
      pending = { resolve, reject };
      child.send(msg);
    });
  try {
    await ask({ op: 'open', shape, inputs });
  } catch (err) {
    child.kill();
    throw err;
  }
  return {
    warm: (calls, ms) => ask({ op: 'warm', calls, ms }),
    time: (runs) => ask({ op: 'time', runs }),
    async close() {
      try {
        return await ask({ op: 'close' });
      } finally {
        child.kill();
      }
    },
  };
}

class OnnxRuntimePeer {
  constructor(threads, inProcess) {
    this.name = 'onnxruntime-web';
    this.threads = threads;
    this.inProcess = inProcess;
    this.version = ortVersion();
  }

  open(shape, inputs) {
    return this.inProcess ? openInProcess(this.threads, shape, inputs) : openInChild(this.threads, shape, inputs);
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
  let session = null;
  process.on('message', async (msg) => {
    try {
      let result;
      if (msg.op === 'open') {
        session = await openInProcess(threads, msg.shape, msg.inputs);
      } else if (msg.op === 'warm') {
        result = await session.warm(msg.calls, msg.ms);
      } else if (msg.op === 'time') {
        result = await session.time(msg.runs);
      } else if (msg.op === 'close') {
        result = await session.close();
        session = null;
      } else {
        throw new Error(`unknown request ${msg.op}`);
      }
      process.send({ result });
    } catch (err) {
      process.send({ error: String((err && err.stack) || err) });
    }
  });
  process.on('disconnect', () => process.exit(0));
}
