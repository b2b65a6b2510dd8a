/**
 * The bad-input table (issue 16) for the attention surface: see
 * test/badinput/attention.table.ts for the rows and test/badinput/harness.ts
 * for what each row asserts.
 */
import { createQEFlashAttention } from '../js/flash-attention';
import { getWASMSIMDBackend } from '../js/backend';
import { loadQEModule } from '../js/module';
import { terminateThreadPools } from '../js/threads';
import { ATTENTION_TABLE, ctx, DIM, HEADS } from './badinput/attention.table';
import { runTable } from './badinput/harness';

beforeAll(async () => {
  ctx.fa = await createQEFlashAttention('test-similarity', { dim: DIM, blocks: { headsPerBlock: HEADS } }, { threads: 1 });
  ctx.backend = await getWASMSIMDBackend({ threads: 1 });
  ctx.module = await loadQEModule({ threads: 1 });
  ctx.resident = ctx.fa.prepareAttention(3, DIM, { kvSeqLen: 5 });
});
afterAll(async () => {
  ctx.resident.dispose();
  ctx.fa.dispose();
  await terminateThreadPools();
});

runTable(ATTENTION_TABLE, () => [ctx.module]);
