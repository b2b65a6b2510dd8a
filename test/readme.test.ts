/**
 * The README's usage example runs as written: it is extracted from the
 * README and run with node from the repository root, where the package
 * resolves by its own name (the test command builds dist/ first).
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

const root = path.join(__dirname, '..');

function usageExample(): string {
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
  const usage = readme.slice(readme.indexOf('## Usage'));
  const match = /```js\n([\s\S]*?)```/.exec(usage);
  if (!match) throw new Error('README has no ```js block under ## Usage');
  return match[1];
}

describe('README usage example', () => {
  it('runs and prints what its comments promise', () => {
    const out = execFileSync(process.execPath, ['-e', usageExample()], { cwd: root, encoding: 'utf8' }).trim();
    // out.length and causal.length are 128 x 384; the first call has no baseline yet; the last one is faster than it.
    expect(out).toBe('49152 49152 true null true');
  });
});
