/**
 * The house rules of js/, read from docs/ARCHITECTURE.md's floor table:
 * every file has a floor, no file imports one on a floor above its own,
 * and files above the module layer (floor 3 and up) never handle module
 * memory or raw entries: they use typed helpers.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';

const ROOT = resolve(__dirname, '..');

/** File name -> floor, from the "| floor | files | job |" table. */
function floors(): Map<string, number> {
  const doc = readFileSync(resolve(ROOT, 'docs/ARCHITECTURE.md'), 'utf8');
  const map = new Map<string, number>();
  for (const line of doc.split('\n')) {
    const m = /^\|\s*(\d+)[^|]*\|([^|]*)\|/.exec(line);
    if (m === null) continue;
    for (const f of m[2].matchAll(/`([a-z0-9-]+\.ts)`/g)) map.set(f[1], Number(m[1]));
  }
  return map;
}

const FILES = readdirSync(resolve(ROOT, 'js')).filter((f) => f.endsWith('.ts')).sort();
const source = (f: string): string => readFileSync(resolve(ROOT, 'js', f), 'utf8');
const imports = (f: string): string[] =>
  [...source(f).matchAll(/from '\.\/([a-z0-9-]+)'/g)].map((m) => `${m[1]}.ts`);

describe('the floors of js/', () => {
  const floor = floors();

  test('the table has the floors, and every file of js/ is in it', () => {
    expect(floor.get('index.ts')).toBe(6);
    expect(floor.get('module.ts')).toBe(1);
    expect(FILES.filter((f) => !floor.has(f))).toEqual([]);
  });

  test.each(FILES)('%s imports nothing from a floor above it', (f) => {
    const above = imports(f).filter((i) => (floor.get(i) ?? Infinity) > (floor.get(f) ?? -1));
    expect(above).toEqual([]);
  });

  test('the rule would catch a back-arrow', () => {
    expect(imports('similarity.ts')).toContain('module.ts');
    expect((floor.get('module.ts') as number) < (floor.get('similarity.ts') as number)).toBe(true);
  });
});

describe('no pointers above the module layer', () => {
  const floor = floors();
  // What handling module memory or raw entries looks like.
  const POINTER_USE = /\.(exports|scope|alloc|free|f32|i32|f64|u8|hnswEntries|adaptEntries|onnxAttentionEntries)\b\s*[(.]|\bcopyIn(Int32)?\(|\bqe_[a-z_]+\(/;
  const upper = FILES.filter((f) => (floor.get(f) ?? 0) >= 3);

  test.each(upper)('%s calls typed helpers only', (f) => {
    const hits = source(f).split('\n').map((line, i) => [i + 1, line] as const)
      .filter(([, line]) => !/^\s*(\*|\/\/|\/\*)/.test(line) && POINTER_USE.test(line));
    expect(hits).toEqual([]);
  });

  test('the pattern sees pointer use where it is allowed', () => {
    expect(POINTER_USE.test(source('corpus.ts'))).toBe(true);
    expect(POINTER_USE.test(source('attention.ts'))).toBe(true);
    expect(upper).toEqual(expect.arrayContaining(['similarity.ts', 'flash-attention.ts', 'backend.ts', 'code-embedding.ts', 'code-index.ts']));
  });
});
