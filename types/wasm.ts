/**
 * The few WebAssembly types that qe-flash's declarations mention, declared
 * here (structural subsets of the standard ones) so that a consumer's
 * TypeScript needs neither the DOM lib nor @types/node: `lib: ["ES2022"]`
 * with skipLibCheck off compiles. scripts/build-esm.js points the emitted
 * declarations' `WebAssembly.*` names at these.
 */
/** A compiled module (opaque to callers). */
export type Module = object;
/** An instance's memory. */
export interface Memory {
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
  grow(delta: number): number;
}
/** An instance's exports. */
export type Exports = Record<string, unknown>;
/** What an instance is given. */
export type Imports = Record<string, Record<string, unknown>>;
/** One imported value. */
export type ImportValue = unknown;
