/**
 * The HNSW index as bytes (csrc/search/hnsw.h's format: magic, version,
 * dimension, metric, parameters, counts, CRC32C over everything) with the
 * caller's keys and metadata as JSON inside it; the typed errors of a load.
 */
import type { HNSWEntries, QEModule } from './module';
import { describe } from './validate';
import { hnswStatus, METRIC_CODE, METRIC_NAME, type HNSWKey, type HNSWMetric } from './hnsw-types';

/** Why bytes could not be loaded as an index. */
export type HNSWFileErrorCode = 'EMPTY' | 'FOREIGN' | 'VERSION' | 'TRUNCATED' | 'CHECKSUM' | 'DIMENSION' | 'METRIC' | 'CORRUPT';

const FILE_ERROR_CODES: readonly HNSWFileErrorCode[] = ['EMPTY', 'FOREIGN', 'VERSION', 'TRUNCATED', 'CHECKSUM', 'DIMENSION', 'METRIC', 'CORRUPT'];

/** load() / loadFrom() of bytes that are not a sound index of this shape. Nothing is changed. */
export class HNSWFileError extends RangeError {
  readonly code: HNSWFileErrorCode;
  constructor(code: HNSWFileErrorCode, message: string) {
    if (!FILE_ERROR_CODES.includes(code)) throw new RangeError(`code must be one of ${FILE_ERROR_CODES.join(', ')}, got ${describe(code)}`);
    if (typeof message !== 'string') throw new TypeError(`message must be a string, got ${describe(message)}`);
    super(message);
    this.name = 'HNSWFileError';
    this.code = code;
  }
}

const FILE_ERRORS: Record<number, HNSWFileErrorCode> = {
  [-21]: 'EMPTY', [-22]: 'FOREIGN', [-23]: 'VERSION', [-24]: 'TRUNCATED',
  [-25]: 'CHECKSUM', [-26]: 'DIMENSION', [-27]: 'METRIC', [-28]: 'CORRUPT',
};

/** The index behind `handle` with its keys and metadata (by slot) as bytes. */
export function saveIndex(module: QEModule, x: HNSWEntries, handle: number, slotKey: readonly (HNSWKey | undefined)[], slotMeta: readonly unknown[]): Uint8Array {
  const user = new TextEncoder().encode(JSON.stringify({ keys: slotKey.map((k) => (k === undefined ? null : k)), metadata: slotMeta.map((m) => (m === undefined ? null : m)) }));
  return module.scope((s) => {
    const pSize = s.alloc(4);
    hnswStatus(x.qe_hnsw_index_save_size(handle, user.length, pSize), 'qe_hnsw_index_save_size');
    const size = module.i32()[pSize >>> 2] >>> 0;
    const pUser = s.alloc(Math.max(1, user.length));
    module.u8().set(user, pUser);
    const out = s.alloc(size);
    hnswStatus(x.qe_hnsw_index_save(handle, pUser, user.length, out, size), 'qe_hnsw_index_save');
    return module.u8().slice(out, out + size);
  });
}

/**
 * A new C index from saved bytes of this dimension and metric, with its keys
 * and metadata by slot and the saved efSearch; an HNSWFileError (nothing
 * left allocated) when the bytes are not that.
 */
export function loadIndex(module: QEModule, x: HNSWEntries, bytes: Uint8Array, dim: number, metric: HNSWMetric): { handle: number; keys: (HNSWKey | undefined)[]; metadata: unknown[]; efSearch: number } {
  return module.scope((s) => {
    const p = s.alloc(Math.max(1, bytes.length));
    module.u8().set(bytes, p);
    const out = s.alloc(12);
    const status = x.qe_hnsw_index_load(p, bytes.length, dim, METRIC_CODE[metric], out, out + 4, out + 8);
    const code = FILE_ERRORS[status];
    if (code !== undefined) throw fileError(code, bytes, dim, metric);
    hnswStatus(status, 'qe_hnsw_index_load');
    const i32 = module.i32();
    const handle = i32[out >>> 2] >>> 0;
    const userOffset = i32[(out + 4) >>> 2] >>> 0;
    const userBytes = i32[(out + 8) >>> 2] >>> 0;
    try {
      const user = parseUser(bytes.subarray(userOffset, userOffset + userBytes), x.qe_hnsw_index_slot_count(handle), x.qe_hnsw_index_count(handle));
      return { handle, ...user, efSearch: readU32(bytes, 28) };
    } catch (error) {
      x.qe_hnsw_index_destroy(handle);
      throw error;
    }
  });
}

function readU32(b: Uint8Array, at: number): number {
  return (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0;
}

function fileError(code: HNSWFileErrorCode, bytes: Uint8Array, dim: number, metric: HNSWMetric): HNSWFileError {
  switch (code) {
    case 'EMPTY':
      return new HNSWFileError(code, 'load: the bytes are empty (0 bytes), not an HNSW index');
    case 'FOREIGN':
      return new HNSWFileError(code, `load: these ${bytes.length} bytes are not a qe-flash HNSW index (no QEHNSW magic number)`);
    case 'VERSION':
      return new HNSWFileError(code, `load: the bytes are index format version ${readU32(bytes, 8)}, not one this build reads (version 1)`);
    case 'TRUNCATED':
      return new HNSWFileError(code, `load: the index is truncated (${bytes.length} bytes, fewer than its header announces)`);
    case 'CHECKSUM':
      return new HNSWFileError(code, 'load: CRC32C checksum mismatch: the bytes were altered or damaged');
    case 'DIMENSION':
      return new HNSWFileError(code, `load: the bytes are a saved index, and the saved index has ${readU32(bytes, 12)} dimensions but this index has ${dim}`);
    case 'METRIC':
      return new HNSWFileError(code, `load: the bytes are a saved index that uses the ${METRIC_NAME[readU32(bytes, 16)] ?? `unknown (${readU32(bytes, 16)})`} metric but this index uses ${metric}`);
    default:
      return new HNSWFileError(code, 'load: the checksum of the bytes matches but the content is inconsistent (links, counts or levels); refusing it');
  }
}

/** The keys and metadata block; checked against the graph's slots. */
function parseUser(block: Uint8Array, slots: number, count: number): { keys: (HNSWKey | undefined)[]; metadata: unknown[] } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(block));
  } catch {
    throw new HNSWFileError('CORRUPT', 'load: the keys block of the bytes is not valid JSON');
  }
  const p = parsed as { keys?: unknown; metadata?: unknown };
  if (!p || !Array.isArray(p.keys) || !Array.isArray(p.metadata) || p.keys.length !== slots || p.metadata.length !== slots) {
    throw new HNSWFileError('CORRUPT', `load: the keys block of the bytes does not match the graph's ${slots} slots`);
  }
  const keys: (HNSWKey | undefined)[] = new Array(slots);
  const seen = new Set<HNSWKey>();
  let n = 0;
  for (let s = 0; s < slots; s++) {
    const k = p.keys[s];
    if (k === null) continue;
    if ((typeof k !== 'string' && typeof k !== 'number') || seen.has(k)) throw new HNSWFileError('CORRUPT', `load: in the bytes, the key of slot ${s} is missing or repeated`);
    seen.add(k);
    keys[s] = k;
    n++;
  }
  if (n !== count) throw new HNSWFileError('CORRUPT', `load: the bytes hold ${n} keys for ${count} stored vectors`);
  const metadata = p.metadata.map((m: unknown) => (m === null ? undefined : m));
  return { keys, metadata };
}
