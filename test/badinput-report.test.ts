/**
 * The bad-input table (issue 16) for the ./report entry point and the
 * results files it reads: see test/badinput/report.table.ts.
 */
import { loadQEModule, type QEModule } from '../js/module';
import { terminateThreadPools } from '../js/threads';
import { REPORT_TABLE, setUpReport, tearDownReport } from './badinput/report.table';
import { runTable } from './badinput/harness';

let qe: QEModule;
beforeAll(async () => {
  qe = await loadQEModule({ threads: 1 });
  await setUpReport(qe);
});
afterAll(async () => {
  tearDownReport();
  await terminateThreadPools();
});

runTable(REPORT_TABLE, () => [qe]);
