/**
 * Shared test helpers: both builds, instances per build and block config,
 * and access to the module an instance runs on.
 */
import type { BlockConfig, FlashAttentionConfigOverrides, ModuleKind, QEWorkloadType } from '../types';
import { createQEFlashAttention, type QEFlashAttention } from '../js/flash-attention';
import { loadQEModule, type QEModule } from '../js/module';

export const MODULE_KINDS: readonly ModuleKind[] = ['simd', 'scalar'];

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
