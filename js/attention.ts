/**
 * The attention room: one attention call from validated shapes to the
 * output. The element checks (NaN, infinity) run in module memory after the
 * copy, the call runs on the calling thread or on the worker pool, and
 * finite inputs whose scores overflow float32 are a RangeError.
 *
 * Module layer: with js/module.ts (memory, views, status codes) and
 * js/corpus.ts, the only files that call entries with pointers.
 */
import type { AttentionOptions } from '../types';
import { checkStatus, type QEModule } from './module';
import { onnxAttentionOn, type OnnxAttentionAttributes, type OnnxAttentionInputs } from './onnx-attention';
import { nonFiniteElementError, type ResolvedAttention } from './validate';

/** What the attention entry reports besides its output. */
export interface AttentionRun {
  output: Float32Array;
  tileQ: number;
  tileK: number;
  /** Bytes of working memory (arena) the kernel used. */
  workspaceBytes: number;
  /** Threads the call ran on. */
  threads: number;
}

/**
 * Attention of arguments whose shapes are validated; the elements are
 * checked here, in module memory, after the copy (a RangeError names the
 * first NaN or infinity). blockQ and blockK are the tile sizes asked for.
 * threads above 1 splits the work with the pool's workers (the threaded
 * build only; elsewhere it runs on this thread). Finite inputs whose scores
 * overflow float32 are a RangeError too.
 */
export function runAttention(
  module: QEModule, Q: Float32Array, K: Float32Array, V: Float32Array, p: ResolvedAttention,
  blockQ: number, blockK: number, threads = 1,
): AttentionRun {
  return module.scope((s) => {
    // Sized from the validated shape, not from the arrays (js/input.ts).
    const q = s.copyIn(Q, p.seqLen * p.dim, 'Q');
    const k = s.copyIn(K, p.kvSeqLen * p.dim, 'K');
    const v = s.copyIn(V, p.kvSeqLen * p.dim, 'V');
    const count = p.seqLen * p.dim;
    const o = s.allocFloats(count);
    // Where workers share the call, the output array is allocated and its
    // pages touched while they compute, instead of after (first writes to
    // fresh pages cost about 0.5 ms per MiB here).
    let output: Float32Array | null = null;
    const ran = runAttentionAt(module, { Q: [Q, q], K: [K, k], V: [V, v], o }, p, blockQ, blockK, threads, () => {
      output = new Float32Array(count);
      for (let i = 0; i < count; i += 1024) output[i] = 0;
    });
    const out: Float32Array = output ?? new Float32Array(count);
    out.set(module.f32().subarray(o >>> 2, (o >>> 2) + count));
    return { ...ran, output: out };
  });
}

/**
 * Attention on buffers already in module memory (each input with the
 * array the caller knows it by, for error messages): checks the inputs'
 * elements, runs the kernel on this thread or the pool's, and checks the
 * output for float32 overflow. `meanwhile` runs while workers compute.
 */
export function runAttentionAt(
  module: QEModule,
  b: { Q: [Float32Array, number]; K: [Float32Array, number]; V: [Float32Array, number]; o: number },
  p: ResolvedAttention,
  blockQ: number,
  blockK: number,
  threads = 1,
  meanwhile?: () => void,
): Omit<AttentionRun, 'output'> {
  const x = module.exports;
  checkFinite(module, 'Q', b.Q[0], b.Q[1]);
  checkFinite(module, 'K', b.K[0], b.K[1]);
  checkFinite(module, 'V', b.V[0], b.V[1]);
  const [q, k, v, o] = [b.Q[1], b.K[1], b.V[1], b.o];
  const count = p.seqLen * p.dim;
  let ran: Omit<AttentionRun, 'output' | 'workspaceBytes'>;
  if (module.pool !== null && threads > 1) {
    const run = module.pool.attention({
      q, k, v, o, seqLen: p.seqLen, kvSeqLen: p.kvSeqLen, dim: p.dim, heads: p.heads, scale: p.scale,
      causal: p.causal, validKeyLength: p.validKeyLength, blockQ, blockK,
      meanwhile: meanwhile ?? (() => undefined),
    }, threads);
    checkStatus(run.status, 'qe_attention');
    ran = { tileQ: run.tileQ, tileK: run.tileK, threads: run.threads };
  } else {
    const status = x.qe_attention(
      q, k, v, o, p.seqLen, p.kvSeqLen, p.dim, p.heads, p.scale,
      p.causal ? 1 : 0, p.validKeyLength, blockQ, blockK,
    );
    checkStatus(status, 'qe_attention');
    ran = { tileQ: x.qe_attention_tile_q(), tileK: x.qe_attention_tile_k(), threads: 1 };
  }
  if (module.firstNonFinite(o, count) < count) {
    // Finite inputs whose scaled scores q.k exceed float32's range (~3.4e38) have no float32 answer.
    throw new RangeError(
      `attention overflowed float32: some scaled score |q.k * scale| exceeds ~3.4e38 (inputs as large as ${maxAbs(b.Q[0]).toExponential(2)} and ${maxAbs(b.K[0]).toExponential(2)}); scale Q or K down`,
    );
  }
  return { ...ran, workspaceBytes: module.workspaceLastBytes() };
}

/** Throws the RangeError of validateFiniteElements for `data`, already copied to ptr. */
function checkFinite(module: QEModule, name: string, data: Float32Array, ptr: number): void {
  const at = module.firstNonFinite(ptr, data.length);
  if (at < data.length) throw nonFiniteElementError(name, data, at);
}

function maxAbs(x: Float32Array): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]));
  return m;
}

/**
 * Attention with kvHeads, a mask, softcap or a window: the ONNX operator's
 * entry on the 3D layout ([1, seqLen, dim]), which computes the same
 * attention (top-left causal, key padding as a rank-1 mask). One thread.
 */
export function runGeneralAttention(
  module: QEModule, Q: Float32Array, K: Float32Array, V: Float32Array, p: ResolvedAttention, options: AttentionOptions,
  blockQ: number, blockK: number,
): AttentionRun {
  const kvHeads = p.kvHeads ?? p.heads;
  const kvDim = kvHeads * p.headDim;
  const inputs: OnnxAttentionInputs = {
    Q: { data: Q, dims: [1, p.seqLen, p.dim] },
    K: { data: K, dims: [1, p.kvSeqLen, kvDim] },
    V: { data: V, dims: [1, p.kvSeqLen, kvDim] },
  };
  if (options.mask) inputs.attn_mask = { data: options.mask.data, dims: options.mask.dims, type: options.mask.data instanceof Uint8Array ? 'bool' : 'float32' };
  else if (p.validKeyLength < p.kvSeqLen) inputs.attn_mask = { data: new Uint8Array(p.validKeyLength).fill(1), dims: [p.validKeyLength], type: 'bool' };
  const attributes: OnnxAttentionAttributes = {
    q_num_heads: p.heads, kv_num_heads: kvHeads, scale: p.scale, is_causal: p.causal ? 1 : 0,
    left_window_size: options.window?.left ?? -1, right_window_size: options.window?.right ?? -1,
  };
  if (options.softcap) attributes.softcap = options.softcap;
  try {
    const out = onnxAttentionOn(module, inputs, attributes, { blockQ, blockK });
    return { output: out.Y.data as Float32Array, tileQ: 0, tileK: 0, workspaceBytes: module.workspaceLastBytes(), threads: 1 };
  } catch (error) {
    // The operator names its inputs; here they are options.
    if (error instanceof Error) error.message = error.message.replace('inputs.attn_mask', 'options.mask');
    throw error;
  }
}
