'use strict';
/*
 * A deterministic generator of distinct Jest test files with cases of about
 * 30 lines, and one planted near-duplicate: the input of the qe-flash
 * similar benchmark (bench/cli-similar.js) and of its tests (test/cli.test.ts).
 */
const fs = require('fs');
const nodePath = require('path');

// A small deterministic generator of distinct Jest test cases of about 30 lines.
function generator(seed) {
  let s = seed >>> 0;
  const rnd = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296);
  const words = 'user order cart invoice payment account session token profile address product price discount coupon shipment stock item review rating comment message queue worker job task event ticket booking route cache entry record table index query filter page cursor batch stream buffer request response header status error retry timeout limit plan feature flag metric counter span trace config theme layout grid matrix graph node edge tree commit build release version label file folder image video track report chart alert rule role group team region cluster volume secret'.split(' ');
  const verbs = 'create update delete fetch load save parse format validate compute merge split apply revert publish archive restore sync export import render resolve approve cancel refund notify encode decode'.split(' ');
  const pick = (a) => a[Math.floor(rnd() * a.length)];
  const cap = (w) => w[0].toUpperCase() + w.slice(1);
  const value = () => (rnd() < 0.5 ? String(Math.floor(rnd() * 1000)) : `'${pick(words)}-${Math.floor(rnd() * 100)}'`);
  return () => {
    const v = pick(words) + cap(pick(words));
    const lines = [`  it('${pick(verbs)}s the ${pick(words)} when ${pick(words)} is ${pick(words)}', async () => {`, `    const ${v} = new ${cap(pick(words))}${cap(pick(words))}({ ${pick(words)}: ${value()} });`];
    for (let i = 0; i < 26; i++) {
      const r = rnd();
      if (r < 0.3) lines.push(`    const ${pick(words)}${cap(pick(words))} = await ${v}.${pick(verbs)}${cap(pick(words))}(${value()});`);
      else if (r < 0.6) lines.push(`    expect(${v}.${pick(words)}).${pick(['toBe', 'toEqual', 'toContain', 'toBeGreaterThan'])}(${value()});`);
      else if (r < 0.8) lines.push(`    ${v}.${pick(words)} = ${value()};`);
      else lines.push(`    for (const ${pick(words)} of ${v}.${pick(words)}s) ${pick(verbs)}${cap(pick(words))}(${pick(words)});`);
    }
    lines.push('  });');
    return lines.join('\n');
  };
}

/**
 * Writes files x perFile generated cases under root/dir, and plants a
 * re-formatted, re-commented copy of one case in another file. Returns the
 * file:line of both, as qe-flash similar reports them.
 */
function writeGeneratedSuite(root, dir, files, perFile) {
  const next = generator(files * 31 + perFile);
  let planted = '';
  const where = { original: '', copy: '' };
  for (let f = 0; f < files; f++) {
    const cases = [];
    for (let c = 0; c < perFile; c++) cases.push(next());
    const rel = nodePath.join(dir, `group${f % 7}`, `feature${f}.test.js`);
    const header = `const api = require('../api');\n\ndescribe('feature ${f}', () => {\n`;
    if (f === 3) {
      planted = cases[2];
      const line = header.split('\n').length - 1 + cases.slice(0, 2).join('\n\n').split('\n').length + 1 + 1;
      where.original = `${rel}:${line}`;
    }
    if (f === files - 2) {
      cases[1] = `  // copied\n${planted.split('\n').map((l) => `    ${l.replace(/, /g, ',   ')}`).join('\n')}`;
      const line = header.split('\n').length - 1 + cases[0].split('\n').length + 1 + 2;
      where.copy = `${rel}:${line}`;
    }
    const file = nodePath.join(root, rel);
    fs.mkdirSync(nodePath.dirname(file), { recursive: true });
    fs.writeFileSync(file, `${header}${cases.join('\n\n')}\n});\n`);
  }
  return { original: nodePath.join(root, where.original), copy: nodePath.join(root, where.copy) };
}

module.exports = { writeGeneratedSuite };
