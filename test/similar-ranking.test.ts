/**
 * qe-flash similar ranks what a person would call a duplicate first:
 * a folder of 400 template siblings (one template; each test
 * calls a different builder with different values and a different title)
 * and one real copy (locals renamed, a comment added, same calls and
 * values). The real pair must come first; --min-distinct leaves out the
 * parametrised family; each pair carries its evidence.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as nodePath from 'node:path';
import type { QEModule } from '../js/module';
import { runCli } from '../js/cli';
import { loadModule } from './helpers';
import { rng } from './reference';

let m: QEModule;
let root: string;
beforeAll(async () => {
  m = await loadModule('simd');
  root = fs.mkdtempSync(nodePath.join(os.tmpdir(), 'qe-flash-ranking-'));
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

function io() {
  let out = '';
  let err = '';
  return {
    io: { stdout: { write: (t: string) => (out += t) }, stderr: { write: (t: string) => (err += t), isTTY: false }, now: () => 0 },
    out: () => out,
    err: () => err,
  };
}

const VERBS = ['applies', 'computes', 'rounds', 'rejects', 'accepts', 'totals', 'splits', 'merges'];
const NOUNS = ['discount', 'coupon', 'voucher', 'refund', 'shipping', 'tax', 'bundle', 'gift card', 'order', 'invoice'];

/** One test of the template: builder, values and title all vary. */
function sibling(i: number, random: () => number): string {
  const fn = `build${Math.floor(random() * 40)}`;
  const code = `CODE${Math.floor(random() * 100000)}`;
  const price = Math.floor(random() * 90000) + 1000;
  const qty = Math.floor(random() * 9) + 2;
  const total = Math.floor(random() * 900000) + 10000;
  const title = `${VERBS[i % VERBS.length]} the ${NOUNS[Math.floor(random() * NOUNS.length)]} for case ${i}`;
  return [
    `  it('${title}', () => {`,
    `    const order = ${fn}(${price}, '${code}', ${qty});`,
    `    const receipt = checkout(order);`,
    `    expect(order.items).toHaveLength(${qty});`,
    `    expect(receipt.total).toBe(${total});`,
    `    expect(receipt.code).toBe('${code}');`,
    '  });',
  ].join('\n');
}

const ORIGINAL = [
  "  it('applies the spring discount to a full cart', () => {",
  "    const order = build4(1999, 'SPRING10', 3);",
  '    const receipt = checkout(order);',
  '    expect(order.items).toHaveLength(3);',
  '    expect(receipt.total).toBe(5828);',
  "    expect(receipt.code).toBe('SPRING10');",
  '  });',
].join('\n');

/** The real copy: locals renamed (order to o, receipt to r), a comment added, same calls and values. */
const COPY = [
  "  it('applies the spring discount to a full cart', () => {",
  '    // copied from the checkout suite',
  "    const o = build4(1999, 'SPRING10', 3);",
  '    const r = checkout(o);',
  '    expect(o.items).toHaveLength(3);',
  '    expect(r.total).toBe(5828);',
  "    expect(r.code).toBe('SPRING10');",
  '  });',
].join('\n');

function writeFolder(dir: string): void {
  const random = rng(2024);
  fs.mkdirSync(nodePath.join(root, dir, 'cart'), { recursive: true });
  for (let f = 0; f < 20; f++) {
    const tests = Array.from({ length: 20 }, (_, k) => sibling(f * 20 + k, random));
    if (f === 3) tests.splice(7, 0, ORIGINAL);
    if (f === 16) tests.splice(12, 0, COPY);
    fs.writeFileSync(nodePath.join(root, dir, 'cart', `checkout${f}.test.js`), `describe('checkout ${f}', () => {\n${tests.join('\n\n')}\n});\n`);
  }
}

describe('qe-flash similar on template siblings and one real copy', () => {
  beforeAll(() => writeFolder('siblings'));

  it('ranks the real pair first, with the shared values as evidence', async () => {
    const run = io();
    expect(await runCli(['similar', nodePath.join(root, 'siblings'), '--json', '--threshold', '0.05', '--top', '50'], run.io, m)).toBe(0);
    const report = JSON.parse(run.out());
    expect(report.cases).toBe(402);
    expect(report.pairs.length).toBeGreaterThan(1); // siblings do pass a low threshold: the ranking, not the threshold, puts the copy first
    const first = report.pairs[0];
    expect([first.a.name, first.b.name]).toEqual(['applies the spring discount to a full cart', 'applies the spring discount to a full cart']);
    expect([first.a.file, first.b.file].map((f: string) => nodePath.basename(f)).sort()).toEqual(['checkout16.test.js', 'checkout3.test.js']);
    expect(first.score).toBeGreaterThan(report.pairs[1].score);
    expect(first.evidence).toEqual(expect.arrayContaining(['"SPRING10"', '1999', '5828']));
    expect(first.distinct).toBeGreaterThanOrEqual(3);
  });

  it('--min-distinct leaves out pairs within the parametrised family', async () => {
    const run = io();
    expect(await runCli(['similar', nodePath.join(root, 'siblings'), '--json', '--threshold', '0.05', '--min-distinct', '2'], run.io, m)).toBe(0);
    const report = JSON.parse(run.out());
    expect(report.pairs).toHaveLength(1);
    expect(report.pairs[0].a.name).toBe('applies the spring discount to a full cart');
  });

  it('prints the evidence next to each pair', async () => {
    const run = io();
    expect(await runCli(['similar', nodePath.join(root, 'siblings'), '--threshold', '0.05', '--top', '1'], run.io, m)).toBe(0);
    const lines = run.out().split('\n');
    expect(lines[1]).toMatch(/checkout(3|16)\.test\.js:\d+/);
    expect(run.out()).toMatch(/shared: .*"SPRING10"/);
  });
});
