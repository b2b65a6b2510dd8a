'use strict';
/*
 * The `qe-flash report` page in Chromium: written by the CLI from a
 * generated test folder of 5,000 test cases (and from a Jest JSON results
 * file naming the same files), opened from file:// (it is self-contained),
 * its heatmap drawn with the module; the time is printed, not asserted.
 */
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

/** 5,000 it() blocks in 100 files: 40 families of near-copies with changed names and literals, and unrelated ones. */
function writeSuite(dir) {
  fs.mkdirSync(dir, { recursive: true });
  const verbs = ['parses', 'renders', 'validates', 'serializes', 'merges', 'sorts', 'caches', 'retries', 'rejects', 'streams'];
  const nouns = ['user', 'order', 'invoice', 'token', 'session', 'cart', 'report', 'queue', 'config', 'route'];
  let rng = 7;
  const next = () => ((rng = (Math.imul(rng, 1103515245) + 12345) >>> 0) / 4294967296);
  const body = (family, k) => {
    const v = verbs[family % verbs.length];
    const o = nouns[Math.floor(family / verbs.length) % nouns.length];
    const extra = family % 3 === 0 ? `\n    expect(result.${o}Id).toBeDefined();\n    expect(calls).toHaveLength(${family % 7});` : '';
    return `  it('${v} a ${o} (${k})', async () => {\n    const input = make${o[0].toUpperCase()}${o.slice(1)}({ id: ${k}, size: ${family * 3} });\n    const result = await ${v}${o[0].toUpperCase()}${o.slice(1)}(input, { mode: '${['strict', 'lenient', 'fast'][family % 3]}' });\n    expect(result.ok).toBe(true);${extra}\n  });\n`;
  };
  const files = [];
  for (let f = 0; f < 100; f++) {
    let text = `describe('module ${f}', () => {\n`;
    for (let t = 0; t < 50; t++) {
      const k = f * 50 + t;
      text += next() < 0.6 ? body(Math.floor(next() * 40), k) : body(40 + k, k);
    }
    text += '});\n';
    const file = path.join(dir, `module${f}.test.js`);
    fs.writeFileSync(file, text);
    files.push(file);
  }
  return files;
}

module.exports = async function reportTests({ check, assert, browser, ROOT, OUT, tmp, log }) {
  const cli = path.join(ROOT, 'dist', 'cjs', 'js', 'cli.js');
  const suite = path.join(tmp, 'suite5000');
  const files = writeSuite(suite);
  const page5000 = path.join(tmp, 'report-5000.html');
  const bench = path.join(ROOT, 'bench', 'results', 'latest.json');

  await check('report written by the CLI from a folder of 5,000 test cases', () => {
    const started = Date.now();
    const args = [cli, 'report', suite, '--out', page5000, ...(fs.existsSync(bench) ? ['--bench', bench] : [])];
    const out = execFileSync(process.execPath, args, { cwd: ROOT }).toString();
    assert(/: 5000 test cases in 100 files, \d+ near-duplicate pairs/.test(out), `unexpected output: ${out}`);
    const html = fs.readFileSync(page5000, 'utf8');
    assert(!/<script[^>]+src=/.test(html) && !/<link[^>]+href=/.test(html), 'the page loads other files');
    return `${out.trim().split(': ')[1]}; ${(html.length / 1e6).toFixed(1)} MB, written in ${((Date.now() - started) / 1000).toFixed(1)} s`;
  });

  await check('report page (file://, one thread) draws the heatmap of 5,000 tests and lists the pairs', async () => {
    const context = await browser.newContext({ viewport: { width: 1500, height: 1100 } });
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    try {
      await page.goto(`file://${page5000}`);
      await page.waitForFunction(() => document.body.dataset.heatmapDone === '1' || document.body.dataset.heatmapError, null, { timeout: 60000 });
      const r = await page.evaluate(() => {
        const c = document.getElementById('heatmap');
        const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        const colours = new Set();
        for (let i = 0; i < px.length; i += 4 * 97) colours.add(`${px[i]},${px[i + 1]},${px[i + 2]}`);
        return {
          ms: Number(document.body.dataset.heatmapMs), error: document.body.dataset.heatmapError, width: c.width, colours: colours.size,
          pairs: document.querySelectorAll('tr.pair').length, code: document.getElementById('code-a').textContent.length,
          status: document.getElementById('status').textContent,
        };
      });
      await page.screenshot({ path: path.join(OUT, 'report-5000.png'), fullPage: true });
      assert(!r.error, `the page failed: ${r.error}; ${errors.join(' | ')}`);
      assert(r.width === 800, `heatmap ${r.width} px wide`);
      assert(r.colours > 20, `the heatmap has ${r.colours} colours: not drawn`);
      assert(r.pairs > 0 && r.code > 0, 'no pairs listed or no code shown');
      assert(/module loaded/.test(r.status), `status: ${r.status}`);
      log(`   report heatmap for 5,000 tests drawn in ${r.ms.toFixed(0)} ms in Chromium on one thread (measured, not asserted; goal: within 2 s)`);
      return `heatmap ${r.ms.toFixed(0)} ms, ${r.pairs} pairs listed; ${r.status.replace(/\s+/g, ' ').slice(0, 160)}`;
    } finally {
      await context.close();
    }
  });

  await check('report from a Jest JSON results file names the same cases, with their outcomes', () => {
    const results = path.join(tmp, 'jest-results.json');
    fs.writeFileSync(results, JSON.stringify({
      numTotalTests: 100,
      testResults: files.slice(0, 2).map((name) => ({
        name,
        assertionResults: fs.readFileSync(name, 'utf8').match(/it\('([^']+)'/g).map((m, i) => ({ title: m.slice(4, -1), status: i === 3 ? 'failed' : 'passed' })),
      })),
    }));
    const out = path.join(tmp, 'report-jest.html');
    const text = execFileSync(process.execPath, [cli, 'report', results, '--out', out], { cwd: ROOT }).toString();
    assert(/: 100 test cases in 2 files/.test(text), text);
    const data = JSON.parse(fs.readFileSync(out, 'utf8').match(/<script type="application\/json" id="qe-report-data">([\s\S]*?)<\/script>/)[1]);
    const statuses = data.cases.map((c) => c.status);
    assert(statuses.filter((s) => s === 'failed').length === 2 && statuses.filter((s) => s === 'passed').length === 98, `outcomes ${JSON.stringify(statuses.slice(0, 10))}`);
    return text.trim();
  });
};

/** The Allure 3 plugin (packages/allure-plugin-qe-flash) with a stand-in context and store of Allure's shape. */
module.exports.allure = async function allureTest({ check, assert, ROOT, tmp }) {
  await check('report as an Allure 3 plugin: done() adds the page with Allure statuses, info() summarises', () => {
    const app = path.join(tmp, 'consumer');
    const plugin = path.join(app, 'node_modules', 'allure-plugin-qe-flash');
    fs.cpSync(path.join(ROOT, 'packages', 'allure-plugin-qe-flash'), plugin, { recursive: true });
    const tests = path.join(tmp, 'suite5000', 'module0.test.js');
    const script = `
      import QEFlashPlugin from 'allure-plugin-qe-flash';
      const files = {};
      const context = { id: 'qe-flash', reportName: 'demo', reportFiles: { addFile: async (p, data) => { files[p] = data.toString(); return p; } } };
      const store = { allTestResults: async () => [{ name: 'x', status: 'passed' }] };
      const p = new QEFlashPlugin({ tests: [${JSON.stringify(tests)}], threshold: 0.9 });
      await p.done(context, store);
      const info = await p.info(context);
      process.stdout.write(JSON.stringify({ files: Object.keys(files), html: files['index.html'].length, info }));`;
    const out = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: app }).toString());
    assert(out.files.join() === 'index.html' && out.html > 100000, `files ${out.files}, ${out.html} bytes`);
    assert(out.info.href === 'qe-flash/index.html' && out.info.stats.total === 50 && out.info.meta.pairs > 0, JSON.stringify(out.info));
    return `page ${(out.html / 1024).toFixed(0)} kB, summary ${JSON.stringify(out.info.stats)}`;
  });
};
