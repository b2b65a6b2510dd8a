/**
 * The bad-input table (issue 16) for the pattern adapter and its export
 * file: see test/badinput/adapter.table.ts.
 */
import { loadQEModule, type QEModule } from '../js/module';
import { terminateThreadPools } from '../js/threads';
import { ADAPTER_TABLE, setUpAdapter, tearDownAdapter } from './badinput/adapter.table';
import { runTable } from './badinput/harness';

let qe: QEModule;
beforeAll(async () => {
  qe = await loadQEModule({ threads: 1 });
  await setUpAdapter(qe);
});
afterAll(async () => {
  tearDownAdapter();
  await terminateThreadPools();
});

runTable(ADAPTER_TABLE, () => [qe]);
