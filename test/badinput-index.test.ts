/**
 * The bad-input table (issue 16) for the indexes and the HNSW index file:
 * see test/badinput/index.table.ts.
 */
import { createQEFlashAttention, type QEFlashAttention } from '../js/flash-attention';
import { loadQEModule, type QEModule } from '../js/module';
import { terminateThreadPools } from '../js/threads';
import { INDEX_TABLE, DIM, setUpIndexes, tearDownIndexes } from './badinput/index.table';
import { runTable } from './badinput/harness';

let fa: QEFlashAttention;
let qe: QEModule;
beforeAll(async () => {
  fa = await createQEFlashAttention('test-similarity', { dim: DIM, blocks: { headsPerBlock: 2 } }, { threads: 1 });
  qe = await loadQEModule({ threads: 1 });
  await setUpIndexes(fa, qe);
});
afterAll(async () => {
  tearDownIndexes();
  fa.dispose();
  await terminateThreadPools();
});

runTable(INDEX_TABLE, () => [qe]);
