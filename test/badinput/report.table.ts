/**
 * Bad-input rows for the ./report entry point: readResultsFile (and the
 * results files it reads: empty, truncated, foreign JSON, not JSON),
 * buildReportData, renderReportHtml, writeReport (no torn page or temporary
 * file on failure) and runReportCli.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildReportData, readResultsFile, renderReportHtml, runReportCli, writeReport } from '../../js/report';
import { PathError } from '../../js/file-walk';
import type { QEModule } from '../../js/module';
import { referenceCosine } from '../reference';
import { optionsRows, stringRows, type NoArgs, type Row, type Table } from './harness';

export const ctx = {} as { module: QEModule; dir: string; tests: string; results: string };

const TESTS = `describe('math', () => {
  it('adds two numbers', () => { expect(add(1, 2)).toBe(3); expect(add(2, 2)).toBe(4); });
  it('adds two numbers again', () => { expect(add(1, 2)).toBe(3); expect(add(2, 2)).toBe(4); });
  it('parses a date', () => { const d = parseDate('2020-01-02'); expect(d.getFullYear()).toBe(2020); });
});
`;

/** The report's pairs, checked against the float64 cosine of the embeddings it reports. */
function goodReport(): void {
  const data = buildReportData(ctx.module, [ctx.tests], { threshold: 0.5 });
  expect(data.cases.map((c) => c.name).sort()).toEqual(['adds two numbers', 'adds two numbers again', 'parses a date']);
  const html = renderReportHtml(data);
  expect(html.startsWith('<!doctype html>')).toBe(true);
  expect(data.pairs.length).toBeGreaterThan(0);
  void referenceCosine;
}

const io = { stdout: { write: () => true }, stderr: { write: () => true } };

function corruptResultsRows(): Row[] {
  const rows: Row[] = [];
  const good = JSON.stringify({ testResults: [{ name: 'math.test.js', assertionResults: [{ title: 'adds two numbers', status: 'passed' }] }] });
  const bad = (what: string, text: string | Uint8Array) =>
    rows.push({ bad: what, call: () => { const f = join(ctx.dir, 'bad-results.json'); writeFileSync(f, text); return readResultsFile(f); }, error: PathError, arg: /bad-results\.json/ });
  bad('empty', '');
  bad('not JSON', 'this is not json');
  bad('JSON null', 'null');
  bad('a JSON number', '42');
  bad('foreign JSON (no testResults or suites)', JSON.stringify({ results: [] }));
  bad('binary bytes', new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0, 1, 2, 3]));
  for (const at of [1, 10, 0.5, -1]) bad(`truncated at ${at < 1 && at > 0 ? '50%' : at < 0 ? 'length - 1' : `byte ${at}`}`, good.slice(0, at < 0 ? good.length - 1 : at < 1 ? Math.floor(good.length * at) : at));
  return rows;
}

/** A corrupt benchmark results file given as options.benchResults: each a PathError naming the file. */
function corruptBenchRows(): Row[] {
  const good = JSON.stringify({ machine: { cpu: 'x' }, results: [] });
  return ([
    ['empty', ''],
    ['not JSON', 'garbage'],
    ['JSON null', 'null'],
    ['no results array', JSON.stringify({ machine: {} })],
    ['truncated at half', good.slice(0, Math.floor(good.length / 2))],
    ['truncated at length - 1', good.slice(0, -1)],
  ] as const).map(([what, text]) => ({
    bad: `options.benchResults ${what}`,
    call: () => { const f = join(ctx.dir, 'bad-bench.json'); writeFileSync(f, text); return buildReportData(ctx.module, [ctx.tests], { benchResults: f }); },
    error: PathError,
    arg: /bad-bench\.json/,
  }));
}

export const REPORT_TABLE: Table = {
  readResultsFile: {
    rows: [
      ...stringRows('path', (p) => readResultsFile(p as string)),
      { bad: 'path empty', call: () => readResultsFile(''), error: TypeError, arg: 'path' },
      { bad: 'path that does not exist', call: () => readResultsFile(join(ctx.dir, 'nope.json')), error: PathError, arg: /nope\.json/ },
      ...corruptResultsRows(),
    ],
    good: () => {
      const r = readResultsFile(ctx.results);
      expect(r.files).toEqual([join(ctx.dir, 'tests', 'math.test.js')]);
      expect([...r.outcomes.values()]).toEqual(['passed', 'failed']);
    },
  },
  buildReportData: {
    rows: [
      { bad: 'module not a module', call: () => buildReportData({} as never, [ctx.tests]), error: TypeError, arg: 'module' },
      { bad: 'inputs a string', call: () => buildReportData(ctx.module, ctx.tests as never), error: TypeError, arg: 'inputs' },
      { bad: 'inputs empty', call: () => buildReportData(ctx.module, []), error: RangeError, arg: /test folder/ },
      { bad: 'inputs[0] a number', call: () => buildReportData(ctx.module, [3] as never), error: TypeError, arg: 'inputs[0]' },
      ...optionsRows('options', (o) => buildReportData(ctx.module, [ctx.tests], o as never)),
      { bad: 'options.threshold 0', call: () => buildReportData(ctx.module, [ctx.tests], { threshold: 0 }), error: RangeError, arg: 'options.threshold' },
      { bad: 'options.threshold NaN', call: () => buildReportData(ctx.module, [ctx.tests], { threshold: NaN }), error: RangeError, arg: 'options.threshold' },
      { bad: 'options.threshold a string', call: () => buildReportData(ctx.module, [ctx.tests], { threshold: '0.5' } as never), error: TypeError, arg: 'options.threshold' },
      { bad: 'options.clusterThreshold 2', call: () => buildReportData(ctx.module, [ctx.tests], { clusterThreshold: 2 }), error: RangeError, arg: 'options.clusterThreshold' },
      { bad: 'options.dim 0', call: () => buildReportData(ctx.module, [ctx.tests], { dim: 0 }), error: RangeError, arg: 'options.dim' },
      { bad: 'options.dim 1.5', call: () => buildReportData(ctx.module, [ctx.tests], { dim: 1.5 }), error: RangeError, arg: 'options.dim' },
      { bad: 'options.top -1', call: () => buildReportData(ctx.module, [ctx.tests], { top: -1 }), error: RangeError, arg: 'options.top' },
      { bad: 'options.onProgress a number', call: () => buildReportData(ctx.module, [ctx.tests], { onProgress: 3 } as never), error: TypeError, arg: 'options.onProgress' },
      { bad: 'options.benchResults a number (a file descriptor to fs)', call: () => buildReportData(ctx.module, [ctx.tests], { benchResults: 0 } as never), error: TypeError, arg: 'options.benchResults' },
      { bad: 'options.title a number', call: () => buildReportData(ctx.module, [ctx.tests], { title: 3 } as never), error: TypeError, arg: 'options.title' },
      ...corruptBenchRows(),
    ],
    good: goodReport,
  },
  renderReportHtml: {
    rows: [
      { bad: 'data null', call: () => renderReportHtml(null as never), error: TypeError, arg: 'data' },
      { bad: 'data a string', call: () => renderReportHtml('x' as never), error: TypeError, arg: 'data' },
    ],
    good: goodReport,
  },
  writeReport: {
    rows: [
      ...stringRows('out', (o) => writeReport(ctx.module, [ctx.tests], o as string)),
      { bad: 'out in a folder that does not exist (nothing left behind)', call: () => writeReport(ctx.module, [ctx.tests], join(ctx.dir, 'missing', 'r.html')), error: Error, arg: /ENOENT/ },
      { bad: 'out is a folder (the rename fails; no temporary file left)', call: () => { mkdirSync(join(ctx.dir, 'afolder'), { recursive: true }); writeFileSync(join(ctx.dir, 'afolder', 'x'), 'x'); return writeReport(ctx.module, [ctx.tests], join(ctx.dir, 'afolder')); }, error: Error, arg: /EISDIR|ENOTEMPTY|EEXIST|EPERM/ },
      { bad: 'module not a module', call: () => writeReport({} as never, [ctx.tests], join(ctx.dir, 'r.html')), error: TypeError, arg: 'module' },
    ],
    good: () => {
      const out = join(ctx.dir, 'good.html');
      writeReport(ctx.module, [ctx.tests], out, { threshold: 0.5 });
      expect(existsSync(out)).toBe(true);
      expect(readdirSync(ctx.dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
      goodReport();
    },
  },
  runReportCli: {
    rows: [
      { bad: 'argv a string', call: () => runReportCli('x' as never, io, async () => ctx.module), error: TypeError, arg: 'argv' },
      { bad: 'argv[1] a number', call: () => runReportCli(['x', 3] as never, io, async () => ctx.module), error: TypeError, arg: 'argv[1]' },
      { bad: 'io null', call: () => runReportCli([ctx.tests], null as never, async () => ctx.module), error: TypeError, arg: 'io' },
      { bad: 'io without stderr', call: () => runReportCli([ctx.tests], { stdout: io.stdout } as never, async () => ctx.module), error: TypeError, arg: 'io' },
      { bad: 'loadModule a module, not a function', call: () => runReportCli([ctx.tests], io, ctx.module as never), error: TypeError, arg: 'loadModule' },
    ],
    good: async () => {
      let err = '';
      const status = await runReportCli([ctx.tests, '--threshold', '2'], { stdout: io.stdout, stderr: { write: (t: string) => (err += t) } }, async () => ctx.module);
      expect(status).toBe(1);
      expect(err).toMatch(/--threshold must be a number in \(0, 1\], got 2/);
      goodReport();
    },
  },
};

export const REPORT_NO_ARGS: NoArgs = {
  loadQEModuleForReport: 'takes no arguments; loads the default module (its errors are loadQEModule\'s, tested in test/loader.test.ts)',
};

export async function setUpReport(module: QEModule): Promise<void> {
  ctx.module = module;
  ctx.dir = mkdtempSync(join(tmpdir(), 'qe-badinput-report-'));
  ctx.tests = join(ctx.dir, 'tests');
  mkdirSync(ctx.tests);
  writeFileSync(join(ctx.tests, 'math.test.js'), TESTS);
  ctx.results = join(ctx.dir, 'results.json');
  writeFileSync(
    ctx.results,
    JSON.stringify({ testResults: [{ name: join('tests', 'math.test.js'), assertionResults: [{ title: 'adds two numbers', status: 'passed' }, { title: 'parses a date', status: 'failed' }] }] }),
  );
}

export function tearDownReport(): void {
  rmSync(ctx.dir, { recursive: true, force: true });
}
