/**
 * HNSW allow-lists: HNSWFilter (a reusable set of keys bound to one index)
 * and the bitset over the index's slots that the C search checks.
 */
import type { HNSWIndex } from './hnsw';
import { describe } from './validate';
import { validateKey, type HNSWFilterInput, type HNSWKey } from './hnsw-types';

/**
 * An allow-list bound to one index, reusable across searches: the bitset
 * over the index's slots is built once and rebuilt only after the index
 * changes. Made by HNSWIndex.createFilter.
 */
export class HNSWFilter {
  /** @internal */ bits: Uint8Array | null = null;
  /** @internal */ builtAt = -1;
  /** @internal */ constructor(readonly index: HNSWIndex, readonly keys: ReadonlySet<HNSWKey>) {}
  /** How many of the index's keys pass (as of now). */
  get size(): number {
    let n = 0;
    for (const k of this.keys) if (this.index.has(k)) n++;
    return n;
  }
}

/** What of an index a filter's bitset is made from. */
export interface FilterSource<M> {
  index: HNSWIndex<M>;
  slotKey: readonly (HNSWKey | undefined)[];
  slotMeta: readonly (M | undefined)[];
  keySlot: ReadonlyMap<HNSWKey, number>;
  /** Changes whenever slots change meaning. */
  generation: number;
}

/** The bitset over slots for a filter, current for this index state. */
export function filterBits<M>(src: FilterSource<M>, filter: HNSWFilterInput<M>): Uint8Array {
  let f: HNSWFilter;
  if (filter instanceof HNSWFilter) {
    if (filter.index !== (src.index as HNSWIndex)) throw new RangeError('options.filter was made by another index');
    f = filter;
  } else if (typeof filter === 'function') {
    // A predicate: evaluated once per stored key, in JavaScript, then checked in C as a bitset.
    const slots = src.slotKey.length;
    const bits = new Uint8Array(Math.ceil(slots / 8) + 1);
    for (let s = 0; s < slots; s++) {
      const key = src.slotKey[s];
      if (key !== undefined && filter(key, src.slotMeta[s])) bits[s >> 3] |= 1 << (s & 7);
    }
    return bits;
  } else {
    if (filter === null || typeof filter !== 'object' || typeof (filter as Iterable<HNSWKey>)[Symbol.iterator] !== 'function') {
      throw new TypeError(`options.filter must be an HNSWFilter, an iterable of keys or a function (key, metadata) => boolean, got ${describe(filter)}`);
    }
    f = src.index.createFilter(filter as Iterable<HNSWKey>);
  }
  if (f.bits === null || f.builtAt !== src.generation) {
    const bits = new Uint8Array(Math.ceil(src.slotKey.length / 8) + 1);
    for (const key of f.keys) {
      const s = src.keySlot.get(key);
      if (s !== undefined) bits[s >> 3] |= 1 << (s & 7);
    }
    f.bits = bits;
    f.builtAt = src.generation;
  }
  return f.bits;
}

/** HNSWIndex.createFilter: the keys given, or those whose (key, metadata) pass a predicate now. */
export function makeFilter<M>(
  index: HNSWIndex<M>, keySlot: ReadonlyMap<HNSWKey, number>, slotMeta: readonly (M | undefined)[],
  keys: Iterable<HNSWKey> | ((key: HNSWKey, metadata: M | undefined) => boolean),
): HNSWFilter {
  if (typeof keys === 'function') {
    const pass = new Set<HNSWKey>();
    for (const [key, slot] of keySlot) if (keys(key, slotMeta[slot])) pass.add(key);
    return new HNSWFilter(index as HNSWIndex, pass);
  }
  if (keys === null || typeof keys !== 'object' || typeof (keys as Iterable<HNSWKey>)[Symbol.iterator] !== 'function') {
    throw new TypeError(`keys must be an iterable of keys or a function (key, metadata) => boolean, got ${describe(keys)}`);
  }
  const set = new Set<HNSWKey>();
  let i = 0;
  for (const key of keys as Iterable<unknown>) {
    validateKey(`keys[${i++}]`, key);
    set.add(key);
  }
  return new HNSWFilter(index as HNSWIndex, set);
}
