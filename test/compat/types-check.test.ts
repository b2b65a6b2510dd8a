/**
 * The compat tests type-check as a user's code would: tsc, `strict`, against
 * the built package resolved by its name through package.json "exports", once
 * with module/moduleResolution node16 (the "require" condition's
 * declarations) and once with bundler (the "import" condition's). Any
 * diagnostic fails the test. The files are copied, with test/reference.ts,
 * into a scratch project whose node_modules/@agentic-qe/v3 links to this
 * package, so nothing but the published entry points is visible to them.
 */
import { execFileSync } from 'child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';

const ROOT = join(__dirname, '..', '..');
const FILES = ['compat/original-usage.test.ts', 'compat/coordinator-usage.test.ts', 'reference.ts'];
const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'qe-flash-compat-types-'));
  mkdirSync(join(dir, 'test', 'compat'), { recursive: true });
  for (const f of FILES) copyFileSync(join(ROOT, 'test', f), join(dir, 'test', f));
  mkdirSync(join(dir, 'node_modules', '@agentic-qe'), { recursive: true });
  symlinkSync(ROOT, join(dir, 'node_modules', '@agentic-qe', 'v3'), 'dir');
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'compat-consumer', private: true }));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** tsc's diagnostics for the copied files under these settings ('' when there are none). */
function typeCheck(name: string, compilerOptions: Record<string, unknown>): string {
  const config = {
    compilerOptions: {
      strict: true,
      noEmit: true,
      target: 'es2022',
      lib: ['es2022', 'dom'],
      types: ['node', 'jest'],
      typeRoots: [join(ROOT, 'node_modules', '@types')],
      esModuleInterop: true,
      skipLibCheck: false,
      ...compilerOptions,
    },
    files: FILES.map((f) => `test/${f}`),
  };
  writeFileSync(join(dir, name), JSON.stringify(config, null, 2));
  try {
    execFileSync(process.execPath, [TSC, '-p', name], { cwd: dir, encoding: 'utf8' });
    return '';
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string };
    return `${e.stdout ?? ''}${e.stderr ?? ''}` || String(error);
  }
}

describe('the compat tests type-check against the built package', () => {
  it('strict, module and moduleResolution node16', () => {
    expect(typeCheck('tsconfig.node16.json', { module: 'node16', moduleResolution: 'node16' })).toBe('');
  });

  it('strict, moduleResolution bundler', () => {
    expect(typeCheck('tsconfig.bundler.json', { module: 'esnext', moduleResolution: 'bundler' })).toBe('');
  });

  it('a wrong call is reported, so the check really reads the declarations', () => {
    writeFileSync(
      join(dir, 'test', 'compat', 'bad.ts'),
      "import { benchmarkWorkload } from '@agentic-qe/v3/flash-attention';\nexport const r = benchmarkWorkload('no-such-workload');\n",
    );
    FILES.push('compat/bad.ts');
    try {
      expect(typeCheck('tsconfig.bad.json', { module: 'node16', moduleResolution: 'node16' })).toMatch(
        /bad\.ts.*'"no-such-workload"' is not assignable to parameter of type 'QEWorkloadType'/,
      );
    } finally {
      FILES.pop();
    }
  });
});
