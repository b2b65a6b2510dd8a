/**
 * Array arguments as they really are. Every public entry passes its array
 * arguments through here first, so that what later code measures (.length)
 * is what the copy into module memory copies:
 *
 * - A typed array is read through the intrinsic %TypedArray%.prototype
 *   getters (buffer, byteOffset, length, and its kind by Symbol.toStringTag),
 *   which an own `length` property, a subclass's getter or another realm
 *   cannot change, and is replaced by a fresh view of this realm over the
 *   same memory. A Float32Array from a `vm` context or an iframe works like
 *   one of ours; one with a lying `length` is measured by its real one.
 * - A view over a SharedArrayBuffer is copied once, here: another thread may
 *   write it at any time, and every check and the copy into the module must
 *   see the same values.
 * - A detached buffer, and a Proxy or other object that only poses as a
 *   typed array, are a TypeError naming the argument.
 * - A plain array (a list of vectors, ids) is read once, element by element,
 *   into a snapshot: index getters and Proxies run once, and later code sees
 *   one consistent list.
 *
 * Ground floor: imports nothing.
 */

type TypedArrayKind =
  | 'Float32Array'
  | 'Float64Array'
  | 'Int8Array'
  | 'Uint8Array'
  | 'Uint8ClampedArray'
  | 'Int16Array'
  | 'Uint16Array'
  | 'Int32Array'
  | 'Uint32Array'
  | 'BigInt64Array'
  | 'BigUint64Array';

type AnyTypedArray = Float32Array | Float64Array | Int8Array | Uint8Array | Uint8ClampedArray | Int16Array | Uint16Array | Int32Array | Uint32Array;

const TypedArrayPrototype = Object.getPrototypeOf(Uint8Array.prototype) as object;

function intrinsicGetter(target: object, key: PropertyKey): (this: unknown) => unknown {
  const get = Object.getOwnPropertyDescriptor(target, key)?.get;
  if (get === undefined) throw new Error(`this engine has no intrinsic getter ${String(key)}`);
  return get as (this: unknown) => unknown;
}

const taTag = intrinsicGetter(TypedArrayPrototype, Symbol.toStringTag);
const taBuffer = intrinsicGetter(TypedArrayPrototype, 'buffer');
const taByteOffset = intrinsicGetter(TypedArrayPrototype, 'byteOffset');
const taLength = intrinsicGetter(TypedArrayPrototype, 'length');
const abByteLength = intrinsicGetter(ArrayBuffer.prototype, 'byteLength');
const abDetached = Object.getOwnPropertyDescriptor(ArrayBuffer.prototype, 'detached')?.get as ((this: unknown) => boolean) | undefined;
const sabByteLength = typeof SharedArrayBuffer === 'function' ? intrinsicGetter(SharedArrayBuffer.prototype, 'byteLength') : undefined;

const CONSTRUCTORS: Record<string, new (buffer: ArrayBufferLike, byteOffset: number, length: number) => AnyTypedArray> = {
  Float32Array,
  Float64Array,
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
};
const TYPED_ARRAY_NAMES = new Set<string>([...Object.keys(CONSTRUCTORS), 'BigInt64Array', 'BigUint64Array', 'Float16Array']);

/** The kind of a real typed array (of any realm), by its internal slot; undefined for anything else, Proxies included. */
export function typedArrayKind(value: unknown): TypedArrayKind | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  return taTag.call(value) as TypedArrayKind | undefined;
}

/** True for a SharedArrayBuffer of any realm. */
function isShared(buffer: unknown): boolean {
  if (sabByteLength === undefined) return false;
  // The usual cases answer without an exception (each thrown one costs
  // microseconds, more than a small call's work): an ArrayBuffer or a
  // SharedArrayBuffer of this realm, told apart by the intrinsic getter of
  // the kind its prototype claims (a prototype swapped by hand makes that
  // getter throw, and the answer is the other kind).
  let claimed: typeof abByteLength | null = null;
  try {
    claimed = buffer instanceof ArrayBuffer ? abByteLength : buffer instanceof SharedArrayBuffer ? sabByteLength : null;
  } catch {
    // A Proxy somewhere in its prototype chain: ask without a claim.
  }
  try {
    (claimed ?? sabByteLength).call(buffer);
    return claimed !== abByteLength;
  } catch {
    return claimed === abByteLength;
  }
}

/** True when `buffer` (an ArrayBuffer of any realm) has been detached (transferred away). */
function isDetached(buffer: unknown): boolean {
  if (isShared(buffer)) return false; // shared memory cannot be detached
  if (abDetached !== undefined) return abDetached.call(buffer);
  if ((abByteLength.call(buffer) as number) !== 0) return false;
  try {
    new Uint8Array(buffer as ArrayBuffer);
    return false;
  } catch {
    return true;
  }
}

/**
 * Whether `value` looks like a typed array to `instanceof` or
 * Object.prototype.toString without being one (a Proxy, an object with a
 * typed array's prototype or a forged Symbol.toStringTag).
 */
function posesAsTypedArray(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  try {
    for (const name of Object.keys(CONSTRUCTORS)) {
      if (value instanceof CONSTRUCTORS[name]) return name;
    }
    const tag = Object.prototype.toString.call(value).slice(8, -1);
    if (TYPED_ARRAY_NAMES.has(tag)) return tag;
  } catch {
    // A Proxy whose traps throw poses as nothing in particular.
    return 'a typed array';
  }
  return undefined;
}

/**
 * `value` as it really is, for an argument called `name`: a real typed array
 * becomes a fresh view of this realm over the same memory (a copy when that
 * memory is shared), measured by its real length; anything else that is not
 * posing as a typed array is returned unchanged for the argument's own checks
 * to describe. Throws a TypeError for a detached buffer and for an object
 * posing as a typed array (a Proxy).
 */
export function realArray(name: string, value: unknown): unknown {
  const kind = typedArrayKind(value);
  if (kind === undefined) {
    const posing = posesAsTypedArray(value);
    if (posing !== undefined) {
      throw new TypeError(`${name} must be a real ${posing}, got an object posing as one (a Proxy, or a forged prototype or tag); pass the array itself`);
    }
    return value;
  }
  const Ctor = CONSTRUCTORS[kind];
  if (Ctor === undefined) return value; // BigInt64Array and the like: left for the argument's checks to refuse
  const buffer = taBuffer.call(value) as ArrayBufferLike;
  if (isDetached(buffer)) {
    throw new TypeError(`${name}'s buffer is detached (it was transferred, e.g. by postMessage or structuredClone); pass an array that still holds its data`);
  }
  const view = new Ctor(buffer, taByteOffset.call(value) as number, taLength.call(value) as number);
  // Shared memory: one snapshot, which every check and the copy then see.
  return isShared(buffer) ? view.slice() : view;
}

/** The largest list length read from an untrusted array (the module's int32 limit). */
const MAX_LIST = 0x7fffffff;

/**
 * A plain array (or a Proxy of one) read once: its length once, each element
 * once, each through realArray. Anything else goes through realArray itself.
 */
export function realList(name: string, value: unknown): unknown {
  if (!Array.isArray(value)) return realArray(name, value);
  return snapshotList(name, value).map((v, i) => realArray(`${name}[${i}]`, v));
}

/** A plain array (or a Proxy of one) copied: its length read once, each element once, unchanged. */
export function snapshotList(name: string, value: readonly unknown[]): unknown[] {
  const length: unknown = value.length;
  if (typeof length !== 'number' || !Number.isInteger(length) || length < 0 || length > MAX_LIST) {
    throw new TypeError(`${name} has an impossible length ${String(length)} (a Proxy?)`);
  }
  const out: unknown[] = new Array(length);
  for (let i = 0; i < length; i++) out[i] = value[i];
  return out;
}

/** The real length of a typed array, whatever its own properties say; -1 for anything else. */
export function realLength(value: unknown): number {
  return typedArrayKind(value) === undefined ? -1 : (taLength.call(value) as number);
}
