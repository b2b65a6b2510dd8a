/**
 * The pattern adapter's learning layer: apply the Micro-LoRA, learn from
 * contrastive and reward-weighted examples (exact gradients in C), and the
 * weights (reset, get, set, merge).
 */
import { checkStatus, QE_STATUS, type QEModule } from './module';
import { PatternStore } from './pattern-store';
import { checkNumber, nonFiniteError, vectorError, type AdaptExample, type Vector } from './pattern-types';
import { realArray, realLength, realList } from './input';
import { anyNonFinite, describe } from './validate';

export class PatternLearner extends PatternStore {
  // ---------------------------------------------------------------- apply

  /**
   * The adapted vector x + (alpha / rank) B (A x), into `out` when given (a
   * Float32Array of dim elements; may be x itself), else a new Float32Array.
   */
  apply(x: Vector, out?: Float32Array): Float32Array {
    return this.applyAs(x, out, 'x');
  }

  /** apply, naming the vector as the caller wrote it (`x`; applyMicroLora's `input`). */
  protected applyAs(x: Vector, out: Float32Array | undefined, name: string): Float32Array {
    if (this.module === null) this.live();
    const d = this.dim;
    // The fast path takes only a Float32Array of this realm whose real length is dim (a lying
    // length would make the copy below overflow); anything else is read as it really is (js/input.ts).
    if (!(x instanceof Float32Array && realLength(x) === d && x.length === d)) x = realList(name, x) as Vector;
    if (x instanceof Float32Array ? x.length !== d : !Array.isArray(x) || x.length !== d) throw vectorError(name, x, d);
    if (out !== undefined && !(out instanceof Float32Array && realLength(out) === d && out.length === d)) out = realArray('out', out) as Float32Array;
    if (out !== undefined && (!(out instanceof Float32Array) || out.length !== d)) {
      throw out instanceof Float32Array ? new RangeError(`out must have ${d} elements, got ${out.length}`) : new TypeError(`out must be a Float32Array, got ${describe(out)}`);
    }
    const xb = this.xBuf;
    (xb.view.byteLength === 0 ? xb.get() : xb.view).set(x);
    if (!this.enabledValue) {
      if (this.identityCheck() !== 0) throw nonFiniteError(name, x);
      const copy = out ?? new Float32Array(d);
      copy.set(xb.get());
      return copy;
    }
    // NaN and infinity (also from array elements that are not numbers) are refused by C.
    const status = this.x.qe_lora_apply(this.lora, xb.ptr, this.yBuf.ptr);
    if (status !== 0) throw status === QE_STATUS.ERR_ARGUMENT ? nonFiniteError(name, x) : this.fail(status, 'qe_lora_apply');
    const yb = this.yBuf;
    const y = yb.view.byteLength === 0 ? yb.get() : yb.view;
    if (out === undefined) return y.slice();
    out.set(y);
    return out;
  }

  /**
   * The resident input of applyResident: dim floats in module memory, this
   * adapter's own (no other call writes them). Write a vector into it, call
   * applyResident(), read residentOutput: no copies and no allocation. Take
   * the views again after calls that may grow module memory (storing
   * patterns, large look-ups): a view of a grown memory is empty.
   */
  get residentInput(): Float32Array {
    this.live();
    return this.resident().input.get();
  }

  /** The resident output of applyResident (dim floats in module memory). */
  get residentOutput(): Float32Array {
    this.live();
    return this.resident().output.get();
  }

  /**
   * apply() from residentInput into residentOutput, which it returns (a view
   * of module memory: copy what must outlive the next call). NaN or
   * infinity in the input is a RangeError naming the element.
   */
  applyResident(): Float32Array {
    if (this.module === null) this.live();
    const r = this.residentPair ?? this.resident();
    let status: number;
    if (this.enabledValue) {
      status = this.x.qe_lora_apply(this.lora, r.input.ptr, r.output.ptr);
    } else {
      const input = r.input.get();
      status = 0;
      for (let i = 0; i < input.length; i++) if (!Number.isFinite(input[i])) status = QE_STATUS.ERR_ARGUMENT;
      if (status === 0) r.output.get().set(input);
    }
    if (status !== 0) throw status === QE_STATUS.ERR_ARGUMENT ? nonFiniteError('residentInput', r.input.get()) : this.fail(status, 'qe_lora_apply');
    const o = r.output;
    return o.view.byteLength === 0 ? o.get() : o.view;
  }

  /** The identity adapter still refuses NaN and infinity (in C, on the resident copy). */
  protected identityCheck(): number {
    for (const v of this.xBuf.get()) if (!Number.isFinite(v)) return QE_STATUS.ERR_ARGUMENT;
    return 0;
  }

  // ---------------------------------------------------------------- learn

  /**
   * One learning step; returns the example's loss (before the step). See
   * AdaptExample. With enabled false nothing is learned and the loss of the
   * identity adapter is returned.
   */
  adapt(example: AdaptExample): number {
    const loss = this.accumulate(example);
    if (this.enabledValue) this.step();
    return loss;
  }

  /**
   * One step on the mean gradient of several examples; each contrastive
   * example also takes the other examples' positives as negatives (in-batch
   * negatives). Returns the mean loss.
   */
  adaptBatch(examples: readonly AdaptExample[]): number {
    this.live();
    if (!Array.isArray(examples) || examples.length === 0) throw new TypeError(`examples must be a non-empty array, got ${describe(examples)}`);
    const positives: (Vector | string)[] = [];
    for (const e of examples) if (e && typeof e === 'object' && 'anchor' in e) positives.push(e.positive);
    let sum = 0;
    try {
      examples.forEach((e, i) => {
        if (e && typeof e === 'object' && 'anchor' in e && positives.length > 1) {
          const others = positives.filter((p) => p !== e.positive).map((p) => (typeof p === 'string' ? this.embeddingOf(p, `examples[${i}].positive`) : p));
          const given = e.negatives === undefined ? [] : this.negativeList(e.negatives, `examples[${i}].negatives`);
          sum += this.accumulate({ anchor: e.anchor, positive: e.positive, negatives: [...given, ...others] }, `examples[${i}]`);
        } else {
          sum += this.accumulate(e, `examples[${i}]`);
        }
      });
    } catch (error) {
      // A failed batch learns nothing: drop what was accumulated.
      this.discardAccumulated();
      throw error;
    }
    if (this.enabledValue) this.step();
    return sum / examples.length;
  }

  /** The gradient of an example's loss, without learning: dL/dA [rank x dim] and dL/dB [dim x rank], row-major. */
  gradient(example: { anchor: Vector; positive: Vector; negatives?: readonly Vector[] | Float32Array; reward?: number }): { loss: number; gradA: Float32Array; gradB: Float32Array } {
    const m = this.live();
    if (example === null || typeof example !== 'object') throw new TypeError(`example must be an object, got ${describe(example)}`);
    const reward = example.reward ?? 1;
    checkNumber('example.reward', reward, -3.4e38, 3.4e38);
    const nkeys = this.loadKeys(example.positive, example.negatives === undefined ? [] : this.negativeList(example.negatives, 'example.negatives'), 'example');
    this.loadQuery(example.anchor, 'example.anchor');
    const n = this.rankValue * this.dim;
    return m.scope((s) => {
      const ga = s.allocFloats(n);
      const gb = s.allocFloats(n);
      const status = this.x.qe_lora_gradient(this.lora, this.xBuf.ptr, this.keysBuf.ptr, nkeys, this.temperature, reward, this.small, ga, gb);
      if (status !== 0) throw this.argumentError(status, 'example', 'qe_lora_gradient');
      return { loss: m.f32()[this.small >>> 2], gradA: s.readFloats(ga, n), gradB: s.readFloats(gb, n) };
    });
  }

  protected accumulate(example: AdaptExample, name = 'example'): number {
    this.live();
    this.deferred = null;
    try {
      return this.accumulateChecked(example, name);
    } finally {
      this.deferred = null;
    }
  }

  private accumulateChecked(example: AdaptExample, name: string): number {
    if (example === null || typeof example !== 'object') throw new TypeError(`${name} must be an object, got ${describe(example)}`);
    let loss: number;
    if ('anchor' in example) {
      this.loadQuery(example.anchor, `${name}.anchor`, true);
      if (example.negatives === undefined && (typeof example.positive === 'string' || this.rowIds.length > 0)) {
        loss = this.cacheAdapt(name, example.positive, 1);
      } else {
        const negatives = example.negatives === undefined ? [] : this.negativeList(example.negatives, `${name}.negatives`, true);
        const nkeys = this.loadKeys(example.positive, negatives, name, true);
        loss = this.keysAdapt(nkeys, 1, name);
      }
    } else if ('query' in example) {
      const reward = example.reward;
      if (typeof reward !== 'number' || !Number.isFinite(reward)) throw new TypeError(`${name}.reward must be a finite number, got ${describe(reward)}`);
      this.loadQuery(example.query, `${name}.query`, true);
      if (example.result !== undefined && typeof example.result !== 'string') throw new TypeError(`${name}.result must be a pattern id (string), got ${describe(example.result)}`);
      if (example.result === undefined && this.rowIds.length === 0) {
        throw new RangeError(`${name}: a reward needs the result it judges: give result (a pattern id), or store patterns first`);
      }
      loss = this.cacheAdapt(name, example.result ?? null, reward);
    } else {
      throw new TypeError(`${name} must be { anchor, positive, negatives? } or { query, reward, result? }, got an object with keys ${Object.keys(example).join(', ') || '(none)'}`);
    }
    this.adaptations++;
    this.lastLoss = loss;
    return loss;
  }

  /** C entries take only the step: when disabled the loss is the identity's. */
  protected keysAdapt(nkeys: number, reward: number, name: string): number {
    const m = this.module as QEModule;
    if (!this.enabledValue) return this.identityLoss(nkeys, reward, name);
    const status = this.x.qe_lora_accumulate(this.lora, this.xBuf.ptr, this.keysBuf.ptr, nkeys, this.temperature, reward, this.small);
    if (status !== 0) throw this.argumentError(status, name, 'qe_lora_accumulate');
    return m.f32()[this.small >>> 2];
  }

  protected identityLoss(nkeys: number, reward: number, name: string): number {
    const m = this.module as QEModule;
    const n = this.rankValue * this.dim;
    return m.scope((s) => {
      // The adapter may have learned before it was disabled: use a fresh (identity) one.
      const out = s.alloc(4);
      checkStatus(this.x.qe_lora_create(this.dim, this.rankValue, this.alpha, this.seed, out), 'qe_lora_create');
      const fresh = m.i32()[out >>> 2];
      try {
        const ga = s.allocFloats(n);
        const gb = s.allocFloats(n);
        const status = this.x.qe_lora_gradient(fresh, this.xBuf.ptr, this.keysBuf.ptr, nkeys, this.temperature, reward, this.small, ga, gb);
        if (status !== 0) throw this.argumentError(status, name, 'qe_lora_gradient');
        return m.f32()[this.small >>> 2];
      } finally {
        this.x.qe_lora_destroy(fresh);
      }
    });
  }

  protected cacheAdapt(name: string, positive: Vector | string | null, reward: number): number {
    const m = this.module as QEModule;
    let row = -1;
    let vecPtr = 0;
    if (typeof positive === 'string') {
      row = this.rowOf(positive, `${name}.positive`);
    } else if (positive !== null) {
      this.keysBuf.get().set(this.checkVector(positive, `${name}.positive`));
      vecPtr = this.keysBuf.ptr;
    }
    if (!this.enabledValue) {
      // Build the same keys C would mine, through the identity, and score them.
      const nkeys = this.mineKeys(row, positive === null, name);
      return this.identityLoss(nkeys, reward, name);
    }
    const small = this.small;
    const status = this.x.qe_cache_adapt(this.cache, this.lora, this.xBuf.ptr, row, vecPtr, this.negatives, this.temperature, reward, 0, small, small + 4);
    if (status !== 0) throw this.argumentError(status, name, 'qe_cache_adapt');
    return m.f32()[small >>> 2];
  }

  /** Keys for the disabled adapter: positive (row, vector already in keys[0], or the nearest), then mined negatives. */
  protected mineKeys(row: number, nearest: boolean, name: string): number {
    const m = this.module as QEModule;
    const k = this.negatives + 2;
    this.ensureK(k);
    const status = this.x.qe_cache_search(this.cache, 0, this.xBuf.ptr, k, 0, this.idxPtr, this.scorePtr);
    if (status !== 0) throw this.argumentError(status, name, 'qe_cache_search');
    const idx = m.i32().slice(this.idxPtr >>> 2, (this.idxPtr >>> 2) + k);
    if (nearest) row = idx[0];
    if (row >= 0) checkStatus(this.x.qe_cache_row_embedding(this.cache, row, this.keysBuf.ptr), 'qe_cache_row_embedding');
    let nkeys = 1;
    for (let j = 0; j < k && idx[j] >= 0 && nkeys <= this.negatives; j++) {
      if (idx[j] === row) continue;
      checkStatus(this.x.qe_cache_row_embedding(this.cache, idx[j], this.keysBuf.ptr + nkeys * this.dim * 4), 'qe_cache_row_embedding');
      nkeys++;
    }
    return nkeys;
  }

  /** The optimizer step of what was accumulated. */
  protected step(): void {
    const status = this.x.qe_lora_step(this.lora);
    if (status === QE_STATUS.ERR_ARGUMENT) {
      throw new RangeError('the step would make a weight infinite or NaN (learning rate, alpha or the inputs too large); the weights were left as they were');
    }
    if (status !== 0) throw this.fail(status, 'qe_lora_step');
  }

  protected discardAccumulated(): void {
    checkStatus(this.x.qe_lora_discard(this.lora), 'qe_lora_discard');
  }

  // ------------------------------------------------------ weights, reset

  /** Back to the identity adapter of its seed: weights, optimizer state and counters. Patterns stay. */
  reset(): void {
    this.live();
    checkStatus(this.x.qe_lora_reset(this.lora), 'qe_lora_reset');
    this.adaptations = 0;
    this.lastLoss = null;
  }

  /** A copy of the weights: A [rank x dim] and B [dim x rank], row-major. */
  getWeights(): { A: Float32Array; B: Float32Array } {
    const m = this.live();
    const n = this.rankValue * this.dim;
    return m.scope((s) => {
      const a = s.allocFloats(n);
      const b = s.allocFloats(n);
      checkStatus(this.x.qe_lora_get_weights(this.lora, a, b), 'qe_lora_get_weights');
      return { A: s.readFloats(a, n), B: s.readFloats(b, n) };
    });
  }

  /** Sets A [rank x dim] and B [dim x rank] (finite). Optimizer state is kept. */
  setWeights(weights: { A: Float32Array; B: Float32Array }): void {
    const m = this.live();
    const n = this.rankValue * this.dim;
    if (weights === null || typeof weights !== 'object') throw new TypeError(`weights must be { A, B }, got ${describe(weights)}`);
    // Each read once, as it really is: a getter or a lying length changes nothing below.
    const real = { A: realArray('weights.A', weights.A) as Float32Array, B: realArray('weights.B', weights.B) as Float32Array };
    for (const key of ['A', 'B'] as const) {
      const w = real[key];
      if (!(w instanceof Float32Array)) throw new TypeError(`weights.${key} must be a Float32Array, got ${describe(w)}`);
      if (w.length !== n) throw new RangeError(`weights.${key} must have rank * dim = ${n} elements, got ${w.length}`);
      for (let i = 0; i < n; i++) if (!Number.isFinite(w[i])) throw new RangeError(`weights.${key}[${i}] must be finite, got ${w[i]}`);
    }
    m.scope((s) => {
      checkStatus(this.x.qe_lora_set_weights(this.lora, s.copyIn(real.A), s.copyIn(real.B)), 'qe_lora_set_weights');
    });
  }

  /** base [dim x dim] (default the identity) plus (alpha / rank) B A: the adapter as one matrix. */
  merge(base?: Float32Array): Float32Array {
    const m = this.live();
    const d = this.dim;
    let w: Float32Array;
    if (base === undefined) {
      w = new Float32Array(d * d);
      for (let i = 0; i < d; i++) w[i * d + i] = 1;
    } else {
      base = realArray('base', base) as Float32Array;
      if (!(base instanceof Float32Array)) throw new TypeError(`base must be a Float32Array, got ${describe(base)}`);
      if (base.length !== d * d) throw new RangeError(`base must have dim * dim = ${d * d} elements, got ${base.length}`);
      if (anyNonFinite(base)) throw nonFiniteError('base', base);
      w = base;
    }
    return m.scope((s) => {
      const p = s.copyIn(w);
      checkStatus(this.x.qe_lora_merge(this.lora, p), 'qe_lora_merge');
      return s.readFloats(p, d * d);
    });
  }

}
