/**
 * The C API has one source of truth, its headers: js/c-api.ts (QE_STATUS,
 * QEExports, QE_EXPORT_NAMES) and the modules' export lists are generated
 * from the QE_EXPORT declarations of csrc/**\/*.h. These tests fail on any
 * drift between the headers, the generated file and the built modules.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { QE_EXPORT_NAMES, QE_STATUS, QE_STATUS_TEXT } from '../js/c-api';
import { MODULE_FILES, loadWasm } from '../js/loader';
import { checkStatus } from '../js/module';
import { RELAXED_UNAVAILABLE } from './helpers';

interface Entry { name: string; ret: string; returnsVoid: boolean; params: { c: string; name: string }[]; file: string }
interface Status { name: string; value: number; text: string }
interface Generator {
  headerFiles(): string[];
  parseHeaders(h: { file: string; text: string }[]): { entries: Entry[]; statuses: Status[] };
  readHeaders(): { file: string; text: string }[];
  renderTs(api: { entries: Entry[]; statuses: Status[] }): string;
  OUT: string;
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const gen = require('../scripts/gen-c-api.js') as Generator;
const ROOT = resolve(__dirname, '..');

describe('js/c-api.ts is generated from the headers', () => {
  const api = gen.parseHeaders(gen.readHeaders());

  test('the committed file is exactly what the headers give', () => {
    expect(readFileSync(gen.OUT, 'utf8')).toBe(gen.renderTs(api));
  });

  test('headers in subfolders are read', () => {
    const files = gen.headerFiles().map((f) => f.slice(ROOT.length + 1));
    expect(files).toEqual(expect.arrayContaining(['csrc/qe_api.h', 'csrc/search/similarity.h', 'csrc/attention/flash_attention.h']));
  });

  test('the status codes are the C enum, each with its meaning', () => {
    const header = readFileSync(resolve(ROOT, 'csrc/qe_api.h'), 'utf8');
    for (const [name, value] of Object.entries(QE_STATUS)) {
      expect(header).toMatch(new RegExp(`\\bQE_${name}\\s*=\\s*${value}\\b`));
      expect(QE_STATUS_TEXT[value].name).toBe(`QE_${name}`);
      if (value < 0) expect(QE_STATUS_TEXT[value].text.length).toBeGreaterThan(5);
    }
    expect(QE_STATUS.OK).toBe(0);
  });

  test('a status code the switch does not name yet still gets its header text', () => {
    const named = new Set([0, -1, -2, -3, -4]);
    for (const s of api.statuses.filter((t) => !named.has(t.value))) {
      expect(() => checkStatus(s.value, 'qe_x')).toThrow(`qe_x: ${s.text} (QE_${s.name})`);
    }
    expect(() => checkStatus(-999, 'qe_x')).toThrow('unknown status -999');
  });

  test('a declaration in a new room is picked up: multi-line, pointers, void parameters, comments', () => {
    const text = [
      '/* QE_EXPORT int qe_in_a_comment(int a); */',
      'enum { QE_ERR_FAKE = -77 /* a fake status for this test */ };',
      'QE_EXPORT qe_thing *qe_thing_create(const float *base_rows,',
      '                                   int32_t row_count, /* rows */ float *out);',
      'QE_EXPORT void qe_thing_destroy(qe_thing *thing);',
      'QE_EXPORT int32_t qe_thing_version(void);',
    ].join('\n');
    const got = gen.parseHeaders([{ file: 'csrc/room/thing.h', text }]);
    expect(got.entries.map((e) => [e.name, e.params.map((p) => p.name), e.returnsVoid])).toEqual([
      ['qe_thing_create', ['baseRows', 'rowCount', 'out'], false],
      ['qe_thing_destroy', ['thing'], true],
      ['qe_thing_version', [], false],
    ]);
    expect(got.statuses).toEqual([{ name: 'ERR_FAKE', value: -77, text: 'a fake status for this test' }]);
    const ts = gen.renderTs(got);
    expect(ts).toContain('qe_thing_create(baseRows: number, rowCount: number, out: number): number;');
    expect(ts).toContain('qe_thing_destroy(thing: number): void;');
    expect(ts).toContain("'qe_thing_version',");
  });

  test('a declaration it cannot read is an error, not a missing export', () => {
    expect(() => gen.parseHeaders([{ file: 'x.h', text: 'QE_EXPORT int qe_f(int);' }])).toThrow('has no name');
    expect(() => gen.parseHeaders([{ file: 'x.h', text: 'QE_EXPORT int qe_f(void (*cb)(int x));' }])).toThrow('cannot read');
    expect(() => gen.parseHeaders([{ file: 'x.h', text: 'QE_EXPORT int qe_f(void);\nQE_EXPORT int qe_f(void);' }])).toThrow('twice');
    expect(() => gen.parseHeaders([{ file: 'x.h', text: 'enum { QE_ERR_A = -9, QE_ERR_B = -9 };' }])).toThrow('repeats');
    expect(() => gen.parseHeaders([{ file: 'x.h', text: 'static QE_EXPORT int qe_f(void);' }])).toThrow('must start its line');
  });
});

describe('the built modules export exactly the header entries', () => {
  const files = (Object.entries(MODULE_FILES) as [string, string][])
    .filter(([kind]) => kind !== 'relaxed' || RELAXED_UNAVAILABLE === null)
    .map(([, file]) => file);
  // The threaded builds are not ModuleKinds of their own.
  files.push('qe-flash-simd-mt.wasm');
  if (RELAXED_UNAVAILABLE === null) files.push('qe-flash-relaxed-mt.wasm');

  test.each(files)('%s', (file) => {
    const module = new WebAssembly.Module(readFileSync(resolve(ROOT, 'wasm', file)));
    const exported = WebAssembly.Module.exports(module).filter((e) => e.kind === 'function' && e.name.startsWith('qe_')).map((e) => e.name);
    expect(exported.sort()).toEqual([...QE_EXPORT_NAMES].sort());
  });

  test('each entry takes as many arguments as its declaration', async () => {
    const loaded = await loadWasm({ module: 'simd' });
    const api = gen.parseHeaders(gen.readHeaders());
    for (const e of api.entries) {
      expect([e.name, (loaded.exports[e.name] as (...a: number[]) => number).length]).toEqual([e.name, e.params.length]);
    }
  });
});
