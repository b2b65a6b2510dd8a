/**
 * Feature hashing in module memory as typed helpers: a resident hashing
 * table (qe_feature_table_fill) and token vectors summed from it
 * (qe_feature_hash_embed). js/code-embedding.ts decides what the features
 * are; this file only moves them in and out.
 *
 * Module layer: it calls entries with pointers so callers above need not.
 */
import { checkStatus, type QEModule } from './module';

/** Features of a token sequence, in the CSR form qe_feature_hash_embed takes. */
export interface FeatureRows {
  /** tokens + 1 entries: token t owns features offsets[t] .. offsets[t + 1]. */
  offsets: Int32Array;
  /** Table row of each feature. */
  rows: Int32Array;
  /** Sign times weight of each feature. */
  weights: Float32Array;
}

/** A deterministic hashing table [rows x dim] kept in module memory until disposed. */
export class FeatureTable {
  private ptr: number;

  constructor(private readonly module: QEModule, readonly rows: number, readonly dim: number, seed: number, scale: number) {
    if (rows * dim * 4 > 0xffffffff) throw new RangeError(`tableRows ${rows} x dim ${dim}: the feature table does not fit in module memory (4 GiB)`);
    const ptr = module.alloc(rows * dim * 4);
    const status = module.exports.qe_feature_table_fill(ptr, rows, dim, seed >>> 0, scale);
    if (status !== 0) {
      module.free(ptr);
      checkStatus(status, 'qe_feature_table_fill');
    }
    this.ptr = ptr;
  }

  /** Token vectors [tokens x dim]: each the weighted sum of its features' table rows. */
  embed(features: FeatureRows): Float32Array {
    if (this.ptr === 0) throw new TypeError('this feature table has been disposed');
    const { module, dim } = this;
    const tokens = features.offsets.length - 1;
    return module.scope((s) => {
      const offsets = s.copyInInt32(features.offsets);
      const rows = s.copyInInt32(features.rows);
      const weights = s.copyIn(features.weights.length > 0 ? features.weights : new Float32Array(1));
      const out = s.allocFloats(tokens * dim);
      checkStatus(
        module.exports.qe_feature_hash_embed(offsets, rows, weights, tokens, features.rows.length, this.ptr, this.rows, dim, out),
        'qe_feature_hash_embed',
      );
      return s.readFloats(out, tokens * dim);
    });
  }

  /** Frees the table; calling it again does nothing. */
  dispose(): void {
    if (this.ptr === 0) return;
    const ptr = this.ptr;
    this.ptr = 0;
    this.module.free(ptr);
  }
}
