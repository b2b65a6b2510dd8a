/**
 * The bad-input table's machinery. A table maps each public entry (named as
 * test/badinput/surface.ts names them) to rows of bad calls and one good
 * call. Each row asserts the error's class and that its message names the
 * argument as the user wrote it (`queries[3]`, `options.ef`, `k`); after
 * each row the entry's good call runs on the same instance and is checked
 * against an independent reference, and module memory holds no new
 * allocation.
 */
import { runInNewContext } from 'node:vm';
import type { QEModule } from '../../js/module';

export type ErrorClass = new (...args: never[]) => Error;

export interface Row {
  /** What is wrong, for the test title. */
  bad: string;
  call: () => unknown;
  /**
   * The error class, exactly (a subclass does not count). 'same-or-named':
   * a hostile form of a good argument, which must give the good answer or a
   * TypeError/RangeError naming the argument. 'same': the same data in
   * another form (shared memory, another realm), which must give the good answer.
   */
  error: ErrorClass | 'same-or-named' | 'same';
  /** The argument as the user wrote it, which the message must name; or a pattern the message must match. */
  arg: string | RegExp;
  /** For 'same-or-named': the good answer the hostile call must equal when it answers. */
  expected?: () => unknown;
}

export interface Entry {
  rows: Row[];
  /** A good call on the same instance, checked against a reference; runs after every row. */
  good: () => unknown;
}

export type Table = Record<string, Entry>;

/**
 * Entries that take no arguments and so have no bad input (each with why).
 * They still get a row for a call after dispose where their object has one.
 */
export type NoArgs = Record<string, string>;

/** Whether `message` names `arg` as a whole word: not part of a longer name (`k` in `kvSeqLen`, `options` in `options.ef`). */
export function namesArgument(message: string, arg: string): boolean {
  for (let at = message.indexOf(arg); at >= 0; at = message.indexOf(arg, at + 1)) {
    const before = at === 0 ? '' : message[at - 1];
    const after = message.slice(at + arg.length, at + arg.length + 2);
    if (/[\w$.\]]/.test(before)) continue;
    if (/^[\w$[]/.test(after) || /^\.\w/.test(after)) continue;
    return true;
  }
  return false;
}

/** Runs row.call and checks what it threw. */
export async function checkRow(row: Row): Promise<void> {
  let result: unknown;
  let error: unknown;
  try {
    result = await row.call();
  } catch (e) {
    error = e;
  }
  if (row.error === 'same') {
    if (error !== undefined) throw error;
    expect(result).toEqual(await row.expected?.());
    return;
  }
  if (row.error === 'same-or-named') {
    if (error === undefined) {
      expect(result).toEqual(await row.expected?.());
      return;
    }
    expect([TypeError, RangeError]).toContain((error as Error)?.constructor);
  } else {
    if (error === undefined) throw new Error(`expected ${(row.error as { name: string }).name} naming ${String(row.arg)}, but the call returned ${describeResult(result)}`);
    // Error itself stands for the system's errors (a missing folder: Node's SystemError), which need only be Errors.
    // (Object.prototype.toString, not instanceof: Jest runs tests in a realm of their own.)
    if (row.error === Error) expect(Object.prototype.toString.call(error)).toBe('[object Error]');
    else expect((error as Error).constructor).toBe(row.error);
  }
  const message = (error as Error).message;
  if (typeof row.arg === 'string') {
    if (!namesArgument(message, row.arg)) throw new Error(`the message does not name ${row.arg}: ${JSON.stringify(message)}`);
  } else {
    expect(message).toMatch(row.arg);
  }
}

function describeResult(result: unknown): string {
  try {
    return JSON.stringify(result)?.slice(0, 120) ?? String(result);
  } catch {
    return String(result);
  }
}

/**
 * Runs every row of every entry: the row, then no new module allocation,
 * then the entry's good call. `modules` gives the modules whose allocations
 * must not grow across a bad call.
 */
export function runTable(table: Table, modules: () => QEModule[] = () => []): void {
  describe.each(Object.keys(table))('%s', (name) => {
    const entry = table[name];
    it.each(entry.rows.map((r, i) => [`${i + 1}. ${r.bad}`, r] as const))('%s', async (_title, row) => {
      const live = modules().map((m) => m.liveAllocations);
      await checkRow(row);
      expect(modules().map((m) => m.liveAllocations)).toEqual(live);
      await entry.good();
    });
    if (entry.rows.length === 0) it('has rows', () => expect(entry.rows.length).toBeGreaterThan(0));
  });
}

// ------------------------------------------------------------------ row makers

/** A copy of `a` with `v` at index i. */
export function withAt(a: Float32Array, i: number, v: number): Float32Array {
  const c = a.slice();
  c[i] = v;
  return c;
}

export function detached(a: Float32Array): Float32Array {
  const c = a.slice();
  structuredClone(c.buffer, { transfer: [c.buffer] });
  return c;
}

export function shared(a: Float32Array): Float32Array {
  const v = new Float32Array(new SharedArrayBuffer(a.byteLength));
  v.set(a);
  return v;
}

export function lyingLength(a: Float32Array, claimed: number): Float32Array {
  const c = a.slice();
  Object.defineProperty(c, 'length', { value: claimed });
  return c;
}

export function foreignRealm(a: Float32Array): Float32Array {
  return runInNewContext('new Float32Array(src)', { src: Array.from(a) }) as Float32Array;
}

/**
 * The rows every Float32Array argument gets: wrong types, wrong length,
 * NaN and Infinity, a detached buffer, and hostile forms (a lying length
 * either way, a Proxy, a forged prototype), plus a SharedArrayBuffer and
 * another realm, which must give the same answer as the plain array.
 */
export function floatArrayRows(
  arg: string,
  good: Float32Array,
  call: (x: unknown) => unknown,
  options: { length?: boolean; finite?: boolean; nullable?: boolean } = {},
): Row[] {
  const n = good.length;
  const expected = () => call(good);
  const rows: Row[] = [
    { bad: `${arg} a string`, call: () => call('1,2,3'), error: TypeError, arg },
    { bad: `${arg} a Float64Array`, call: () => call(Float64Array.from(good)), error: TypeError, arg },
    { bad: `${arg} an object`, call: () => call({ length: n }), error: TypeError, arg },
    { bad: `${arg} detached`, call: () => call(detached(good)), error: TypeError, arg },
    { bad: `${arg} with a lying length of 1`, call: () => call(lyingLength(good, 1)), error: 'same-or-named', arg, expected },
    { bad: `${arg} with a lying length 64x`, call: () => call(lyingLength(good, n * 64)), error: 'same-or-named', arg, expected },
    { bad: `${arg} a Proxy`, call: () => call(new Proxy(good.slice(), {})), error: 'same-or-named', arg, expected },
    { bad: `${arg} a forged prototype`, call: () => call(Object.setPrototypeOf({ length: n, 0: good[0] }, Float32Array.prototype)), error: 'same-or-named', arg, expected },
    { bad: `${arg} on a SharedArrayBuffer`, call: () => call(shared(good)), error: 'same', arg, expected },
    { bad: `${arg} from another realm`, call: () => call(foreignRealm(good)), error: 'same', arg, expected },
  ];
  if (options.nullable !== true) rows.push({ bad: `${arg} null`, call: () => call(null), error: TypeError, arg });
  if (options.length !== false) {
    rows.push({ bad: `${arg} one element short`, call: () => call(good.slice(1)), error: RangeError, arg });
    rows.push({ bad: `${arg} empty`, call: () => call(new Float32Array(0)), error: RangeError, arg });
  }
  if (options.finite !== false) {
    rows.push({ bad: `${arg}[0] NaN`, call: () => call(withAt(good, 0, NaN)), error: RangeError, arg: `${arg}[0]` });
    rows.push({ bad: `${arg}[last] Infinity`, call: () => call(withAt(good, n - 1, Infinity)), error: RangeError, arg: `${arg}[${n - 1}]` });
    rows.push({ bad: `${arg}[last] -Infinity`, call: () => call(withAt(good, n - 1, -Infinity)), error: RangeError, arg: `${arg}[${n - 1}]` });
  }
  return rows;
}

/** The rows of an integer size or count: wrong types, NaN, Infinity, zero, negative, fractional and huge. */
export function sizeRows(arg: string, call: (x: unknown) => unknown, options: { zero?: boolean; huge?: boolean } = {}): Row[] {
  const rows: Row[] = [
    { bad: `${arg} a string`, call: () => call('3'), error: TypeError, arg },
    { bad: `${arg} null`, call: () => call(null), error: TypeError, arg },
    { bad: `${arg} NaN`, call: () => call(NaN), error: RangeError, arg },
    { bad: `${arg} Infinity`, call: () => call(Infinity), error: RangeError, arg },
    { bad: `${arg} negative`, call: () => call(-1), error: RangeError, arg },
    { bad: `${arg} fractional`, call: () => call(1.5), error: RangeError, arg },
  ];
  if (options.zero !== true) rows.push({ bad: `${arg} zero`, call: () => call(0), error: RangeError, arg });
  if (options.huge !== false) rows.push({ bad: `${arg} huge (2^53)`, call: () => call(2 ** 53), error: RangeError, arg });
  return rows;
}

/** The rows of an options object: a number, a string, and an unknown key when `unknownKey`. */
export function optionsRows(arg: string, call: (x: unknown) => unknown, unknownKey = false): Row[] {
  const rows: Row[] = [
    { bad: `${arg} a number`, call: () => call(5), error: TypeError, arg },
    { bad: `${arg} a string`, call: () => call('fast'), error: TypeError, arg },
  ];
  if (unknownKey) rows.push({ bad: `${arg} with an unknown key`, call: () => call({ nonsense: 1 }), error: TypeError, arg });
  return rows;
}

/** The rows of a string argument. */
export function stringRows(arg: string, call: (x: unknown) => unknown): Row[] {
  return [
    { bad: `${arg} a number`, call: () => call(42), error: TypeError, arg },
    { bad: `${arg} null`, call: () => call(null), error: TypeError, arg },
    { bad: `${arg} an object`, call: () => call({ toString: () => 'x' }), error: TypeError, arg },
  ];
}

/** A call after dispose: a TypeError saying so. */
export function afterDispose(call: () => unknown, what: RegExp = /disposed/): Row {
  return { bad: 'after dispose', call, error: TypeError, arg: what };
}
