/**
 * Shared test helpers: every build this engine runs, instances per build and
 * block config, and access to the module an instance runs on.
 */
import type { BlockConfig, FlashAttentionConfigOverrides, ModuleKind, QEWorkloadType } from '../types';
import { createQEFlashAttention, type QEFlashAttention } from '../js/flash-attention';
import { detectEngineFeatures } from '../js/loader';
import { loadQEModule, type QEModule } from '../js/module';
import { detectThreadSupport } from '../js/threads';

/**
 * Why the relaxed-SIMD build cannot run on this engine, or null when it can
 * (it needs relaxed SIMD, which Node 20 validates only under
 * --experimental-wasm-relaxed-simd as scripts/run-tests.sh passes; and,
 * since the relaxed tests run its threaded build too, shared memory, which
 * every Node this package supports has).
 */
export const RELAXED_UNAVAILABLE: string | null = !detectEngineFeatures().relaxedSimd
  ? `this engine does not validate relaxed SIMD (Node ${process.versions.node}, execArgv ${JSON.stringify(process.execArgv)}; ` +
    'Node 20 needs --experimental-wasm-relaxed-simd, as scripts/run-tests.sh passes)'
  : !detectThreadSupport()
    ? 'this engine cannot share WebAssembly memory, which the threaded relaxed build runs on'
    : null;

/** Whether this engine must run relaxed SIMD: Node >= 21 by default, Node 20 under the flag. */
export const RELAXED_EXPECTED =
  Number(process.versions.node.split('.')[0]) >= 21 || process.execArgv.includes('--experimental-wasm-relaxed-simd');

/**
 * The builds tested side by side: SIMD128, scalar, and relaxed SIMD where
 * the engine runs it (test/relaxed.test.ts says so, with the reason, where not).
 */
export const MODULE_KINDS: readonly ModuleKind[] = RELAXED_UNAVAILABLE === null ? ['simd', 'scalar', 'relaxed'] : ['simd', 'scalar'];

export function loadModule(kind: ModuleKind): Promise<QEModule> {
  return loadQEModule({ module: kind });
}

export function createOn(
  kind: ModuleKind,
  blocks?: Partial<BlockConfig>,
  workload: QEWorkloadType = 'test-similarity',
  extra: FlashAttentionConfigOverrides = {},
): Promise<QEFlashAttention> {
  return createQEFlashAttention(workload, { ...extra, blocks: { ...extra.blocks, ...blocks } }, { module: kind });
}

/** Runs fn and checks that it throws `errorClass` with `fragment` in its message. */
export function expectThrow(fn: () => unknown, errorClass: new (...args: never[]) => Error, fragment: string | RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(errorClass);
  expect((caught as Error).constructor).toBe(errorClass);
  expect((caught as Error).message).toMatch(fragment);
}

/** As expectThrow, for a promise that must reject. */
export async function expectReject(
  promise: Promise<unknown>,
  errorClass: new (...args: never[]) => Error,
  fragment: string | RegExp,
): Promise<void> {
  let caught: unknown;
  try {
    await promise;
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(errorClass);
  expect((caught as Error).constructor).toBe(errorClass);
  expect((caught as Error).message).toMatch(fragment);
}
