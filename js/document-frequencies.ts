/**
 * A document-frequency table in module memory as typed helpers: `buckets`
 * uint32 counts (a power of two) that qe_text_df_add fills and qe_text_idf /
 * qe_text_tfidf_embed read (csrc/embed/text_weight.c). js/code-index.ts
 * counts its texts in one; js/code-embedding.ts keeps one of built-in
 * frequencies per module. Feature f counts in bucket f & (buckets - 1).
 *
 * Module layer: it calls entries with pointers so callers above need not.
 */
import { checkStatus, type QEModule } from './module';

/** Documents in the compressed-row form qe_text_tfidf_embed takes. */
export interface WeightedDocuments {
  /** documents + 1 entries: document d owns features offsets[d] .. offsets[d + 1]. */
  offsets: Int32Array;
  /** The hashed features (uint32 bit patterns). */
  hashes: Int32Array;
  /** Term frequency of each feature (finite, >= 0). */
  counts: Float32Array;
  /** Weight of each feature (finite). */
  weights: Float32Array;
}

export class DocumentFrequencies {
  private ptr: number;

  constructor(private readonly module: QEModule, readonly buckets: number) {
    const ptr = module.alloc(buckets * 4);
    module.i32().fill(0, ptr >>> 2, (ptr >>> 2) + buckets);
    this.ptr = ptr;
  }

  private live(): number {
    if (this.ptr === 0) throw new TypeError('this document-frequency table has been disposed');
    return this.ptr;
  }

  /** Raises the count of `feature`'s bucket to at least `count` (for tables of known frequencies). */
  raise(feature: number, count: number): void {
    const at = (this.live() >>> 2) + (feature & (this.buckets - 1));
    const view = this.module.i32();
    view[at] = Math.max(view[at], count);
  }

  /** Counts one document: each bucket of `distinct` (features of distinct buckets) gains 1. */
  addDocument(distinct: Int32Array): void {
    const df = this.live();
    const { module } = this;
    module.scope((s) => {
      const p = s.copyInInt32(distinct);
      checkStatus(module.exports.qe_text_df_add(df, this.buckets, p, distinct.length), 'qe_text_df_add');
    });
  }

  /** BM25's idf of each feature among `documents` documents, from its bucket's count. */
  idf(features: Int32Array, documents: number): Float32Array {
    const df = this.live();
    const { module } = this;
    if (features.length === 0) return new Float32Array(0);
    return module.scope((s) => {
      const p = s.copyInInt32(features);
      const out = s.allocFloats(features.length);
      checkStatus(module.exports.qe_text_idf(p, features.length, df, this.buckets, documents, out), 'qe_text_idf');
      return s.readFloats(out, features.length);
    });
  }

  /** Unit vectors [documents x dim] of BM25-weighted, sign-hashed features (qe_text_tfidf_embed). */
  embed(docs: WeightedDocuments, documents: number, k1: number, dim: number): Float32Array {
    const df = this.live();
    const { module } = this;
    const count = docs.offsets.length - 1;
    const total = docs.offsets[count];
    return module.scope((s) => {
      const pOffsets = s.copyInInt32(docs.offsets);
      const pHashes = s.copyInInt32(docs.hashes);
      const pCounts = s.copyIn(docs.counts);
      const pWeights = s.copyIn(docs.weights);
      const pOut = s.allocFloats(count * dim);
      checkStatus(
        module.exports.qe_text_tfidf_embed(pOffsets, pHashes, pCounts, pWeights, count, total, df, this.buckets, documents, k1, dim, pOut),
        'qe_text_tfidf_embed',
      );
      return s.readFloats(pOut, count * dim);
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
