/**
 * The bad-input table covers the whole public surface (issue 16): every
 * function and class each package entry point exports, and every public
 * method of every object they return (found by the TypeScript checker, see
 * test/badinput/surface.ts, and cross-checked against the modules' exports
 * at run time), has rows in one of the tables, or is listed as taking no
 * arguments, with the reason. A new entry without rows fails here.
 */
import * as main from '../js/index';
import * as report from '../js/report';
import { publicSurface, type Surface } from './badinput/surface';
import type { NoArgs, Table } from './badinput/harness';
import { ATTENTION_NO_ARGS, ATTENTION_TABLE } from './badinput/attention.table';
import { INDEX_NO_ARGS, INDEX_TABLE } from './badinput/index.table';
import { ADAPTER_NO_ARGS, ADAPTER_TABLE } from './badinput/adapter.table';
import { REPORT_NO_ARGS, REPORT_TABLE } from './badinput/report.table';

/**
 * Types users can hold but whose methods are the library's inner layer, not
 * API: QEModule is returned by the report's loadQEModuleForReport only to be
 * handed back to buildReportData / writeReport (typed by its name, its
 * methods take raw module pointers by design, docs/ARCHITECTURE.md); its
 * ThreadPool and its raw C exports (QEExports, QEModule#exports) come with it. Their entries are tested in test/module*.test.ts,
 * test/memory.test.ts and test/threads*.test.ts.
 */
const OPAQUE_TYPES = ['QEModule', 'ThreadPool', 'QEExports'];

const TABLES: Table[] = [ATTENTION_TABLE, INDEX_TABLE, ADAPTER_TABLE, REPORT_TABLE];
const NO_ARGS: NoArgs = { ...ATTENTION_NO_ARGS, ...INDEX_NO_ARGS, ...ADAPTER_NO_ARGS, ...REPORT_NO_ARGS };

let surface: Surface;
let entries: string[];
beforeAll(() => {
  surface = publicSurface();
  entries = [...surface.entries].filter((e) => !OPAQUE_TYPES.some((t) => e.startsWith(`${t}#`)));
});

function tableOf(entry: string): Table | undefined {
  return TABLES.find((t) => Object.prototype.hasOwnProperty.call(t, entry));
}

it('finds the surface: the entry points of package.json and the objects they return', () => {
  expect(Object.keys(surface.exportsBySubpath).sort()).toEqual(['.', './flash-attention', './report']);
  // A sample of each kind, so a broken walk cannot pass with an empty list.
  for (const e of ['createQEFlashAttention', 'new QEFlashAttention', 'QEFlashAttention#computeFlashAttention', 'SimilarityIndex#searchBatch', 'CodeIndex#pairs', 'ResidentAttention#run', 'HNSWIndex#loadFrom', 'PatternAdapter#import', 'WASMSIMDBackend#softmaxSIMD', 'onnxAttention', 'readResultsFile']) {
    expect(entries).toContain(e);
  }
  expect(entries.length).toBeGreaterThan(120);
});

it('agrees with the modules at run time: every exported function is an entry, and the default export holds only named exports', () => {
  const runtime: Record<string, Record<string, unknown>> = { '.': main as never, './flash-attention': main as never, './report': report as never };
  for (const [subpath, mod] of Object.entries(runtime)) {
    for (const [name, value] of Object.entries(mod)) {
      if (name === 'default' || typeof value !== 'function') continue;
      const constructible = entries.includes(`new ${name}`) || surface.internalConstructors.has(name);
      expect([subpath, name, entries.includes(name) || constructible]).toEqual([subpath, name, true]);
      // Every public method on the prototype of an exported class is an entry too (private ones are TypeScript's).
      const proto = (value as { prototype?: object }).prototype;
      if (proto === undefined || !constructible) continue;
      for (const key of Object.getOwnPropertyNames(proto)) {
        const d = Object.getOwnPropertyDescriptor(proto, key);
        if (key === 'constructor' || typeof d?.value !== 'function') continue;
        // Not an entry: then private (or @internal) in the TypeScript source.
        expect([`${name}#${key}`, entries.includes(`${name}#${key}`) || surface.hidden.has(`${name}#${key}`)]).toEqual([`${name}#${key}`, true]);
      }
    }
  }
  for (const [name, value] of Object.entries(main.default)) expect([name, value]).toEqual([name, (main as Record<string, unknown>)[name]]);
});

it('every entry has rows in the bad-input table, or takes no arguments (with the reason)', () => {
  const missing = entries.filter((e) => tableOf(e) === undefined && NO_ARGS[e] === undefined);
  expect(missing).toEqual([]);
  // Only entries without arguments may go without bad-input rows.
  const withArgs = Object.keys(NO_ARGS).filter((e) => (surface.arity.get(e) ?? 0) > 0);
  expect(withArgs).toEqual([]);
  for (const e of entries) {
    if (tableOf(e) === undefined || (surface.arity.get(e) ?? 0) === 0) continue;
    // An entry with arguments has rows other than "after dispose".
    const rows = (tableOf(e) as Table)[e].rows.filter((r) => r.bad !== 'after dispose');
    expect([e, rows.length > 0]).toEqual([e, true]);
  }
});

it('has no rows for entries that no longer exist', () => {
  const stale = [...TABLES.flatMap((t) => Object.keys(t)), ...Object.keys(NO_ARGS)].filter((e) => !entries.includes(e));
  expect(stale).toEqual([]);
});

it('counts', () => {
  const rows = TABLES.reduce((n, t) => n + Object.values(t).reduce((m, e) => m + e.rows.length, 0), 0);
  // Printed for the record (issue 16's closing note); the figures are the tables'.
  process.stdout.write(`bad-input table: ${entries.length} entries, ${rows} rows\n`);
  expect(rows).toBeGreaterThan(entries.length);
});
