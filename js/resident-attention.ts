/**
 * Attention on inputs that stay in module memory between calls: for callers
 * that repeat one shape (an agent re-scoring the same window, a benchmark
 * loop), the copies of Q, K and V into the module and of the output back out
 * are the call's fixed cost. Here the caller writes Q, K and V straight into
 * the module's buffers and reads the output where the kernel wrote it, as
 * with onnxruntime-web's pre-allocated tensors.
 *
 * The views are taken afresh on each access: module memory may grow (any
 * call that allocates), and growth detaches earlier views. Read or copy the
 * output before the next call on the same module.
 */
import { runAttentionAt } from './attention';
import { realArray } from './input';
import type { QEModule } from './module';
import type { ResolvedAttention } from './validate';

/** What one run reports, for the caller's metrics. */
export interface ResidentRun {
  timeMs: number;
  tileQ: number;
  tileK: number;
  workspaceBytes: number;
  threads: number;
}

export class ResidentAttention {
  private readonly q: number;
  private readonly k: number;
  private readonly v: number;
  private readonly o: number;
  private disposed = false;

  /**
   * Buffers for one validated shape. `onRun` receives each run's figures
   * (the owner records metrics); the owner disposes this when it is
   * disposed itself.
   */
  constructor(
    private readonly module: QEModule,
    readonly shape: Readonly<ResolvedAttention>,
    private readonly blocks: { queryChunkSize: number; kvChunkSize: number },
    private readonly threads: number,
    private readonly onRun: (run: ResidentRun) => void,
    private readonly onDispose: (self: ResidentAttention) => void,
  ) {
    const qBytes = shape.seqLen * shape.dim * 4;
    const kvBytes = shape.kvSeqLen * shape.dim * 4;
    const taken: number[] = [];
    try {
      for (const bytes of [qBytes, kvBytes, kvBytes, qBytes]) taken.push(module.alloc(bytes));
    } catch (error) {
      for (const ptr of taken) module.free(ptr);
      throw error;
    }
    [this.q, this.k, this.v, this.o] = taken;
  }

  /** Q [seqLen x dim], in module memory: write the queries here. */
  get Q(): Float32Array {
    return this.view(this.q, this.shape.seqLen);
  }

  /** K [kvSeqLen x dim], in module memory. */
  get K(): Float32Array {
    return this.view(this.k, this.shape.kvSeqLen);
  }

  /** V [kvSeqLen x dim], in module memory. */
  get V(): Float32Array {
    return this.view(this.v, this.shape.kvSeqLen);
  }

  /** The output [seqLen x dim] of the last run, where the kernel wrote it. */
  get output(): Float32Array {
    return this.view(this.o, this.shape.seqLen);
  }

  /**
   * Attention of the current Q, K and V: checks their elements in module
   * memory (a RangeError names the first NaN or infinity), runs the kernel,
   * and returns the output view (valid until the module's memory next
   * grows). With `out`, copies the output there and returns it.
   */
  run(out?: Float32Array): Float32Array {
    this.notDisposed();
    // out as it really is (js/input.ts): a lying length or a detached buffer is caught here, not in the copy.
    // The copy goes through this view of out's memory; out itself is returned.
    let target: Float32Array | undefined;
    if (out !== undefined) {
      target = realArray('out', out) as Float32Array;
      const count = this.shape.seqLen * this.shape.dim;
      if (!(target instanceof Float32Array)) throw new TypeError('out must be a Float32Array');
      if (target.length !== count) throw new RangeError(`out must have seqLen * dim = ${count} elements, got ${target.length}`);
    }
    const start = performance.now();
    const ran = runAttentionAt(
      this.module,
      { Q: [this.Q, this.q], K: [this.K, this.k], V: [this.V, this.v], o: this.o },
      this.shape,
      this.blocks.queryChunkSize,
      this.blocks.kvChunkSize,
      this.threads,
    );
    const result = out === undefined || target === undefined ? this.output : (target.set(this.output), out);
    this.onRun({ timeMs: performance.now() - start, ...ran });
    return result;
  }

  /** Frees the buffers; later use throws. Disposing twice is a no-op. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const ptr of [this.q, this.k, this.v, this.o]) this.module.free(ptr);
    this.onDispose(this);
  }

  private view(ptr: number, rows: number): Float32Array {
    this.notDisposed();
    return this.module.f32().subarray(ptr >>> 2, (ptr >>> 2) + rows * this.shape.dim);
  }

  private notDisposed(): void {
    if (this.disposed) throw new TypeError('this ResidentAttention has been disposed (or the QEFlashAttention that prepared it)');
  }
}
