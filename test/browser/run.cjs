#!/usr/bin/env node
'use strict';
/*
 * The browser tests, in headless Chromium (Debian's, driven by playwright-core).
 *
 * The package is packed (npm pack) and installed into a fresh consumer
 * project in a temp folder, whose only code is consumer/main.js: one import
 * line and an attention call. That project is then loaded as
 *   - a plain <script type="module"> page (an import map names the package),
 *   - an esbuild bundle, a Vite build, Vite's dev server, a webpack 5 bundle
 *     and a Rollup bundle (with node-resolve, as every Rollup build has),
 * each built with no configuration at all (no externals, no copied wasm, no
 * wasmUrl), and each opened twice: without cross-origin isolation (one
 * thread) and with COOP/COEP (threads: 2). Every page computes attention on
 * the same seeded inputs; the result must match the package run in Node
 * within 1e-6, and a float64 reference within 1e-5. Also: a bundle that
 * imports only createQEFlashAttention leaves the benchmark suite out
 * (tree-shaking), .wasm served with a wrong MIME type still loads, a worker
 * that dies in the middle of a call (consumer/die.js, which reaches into the
 * browser tree for the pool's test hook) leaves the call right and is
 * replaced, and the
 * `qe-flash report` page draws its heatmap for 5,000 tests (time printed,
 * not asserted). Screenshots go to test-output/browser/. Loopback only.
 *
 * Ends with "browser-tests: N passed, N failed" (scripts/run-tests.sh adds
 * it to the total). Usage: node test/browser/run.cjs [--only name,...]
 */
const { execFileSync, spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const net = require('node:net');
const { serveFolder, proxy } = require('./serve.cjs');

const ROOT = path.resolve(__dirname, '..', '..');
// The benchmark's seeded inputs, from the built package (make builds dist/ before this runs).
const { seededUniform: uniform } = require(path.join(ROOT, 'dist', 'cjs', 'js', 'benchmark-measure.js'));
const OUT = path.join(ROOT, 'test-output', 'browser');
const BIN = path.join(ROOT, 'node_modules', '.bin');
const CHROMIUM = process.env.QE_CHROMIUM || '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'];
const only = (() => {
  const i = process.argv.indexOf('--only');
  return i > 0 ? new Set(process.argv[i + 1].split(',')) : null;
})();

let passed = 0;
let failed = 0;
const t0 = Date.now();
function log(line) {
  process.stdout.write(`${line}\n`);
}
async function check(name, fn) {
  if (only && !only.has(name.split(' ')[0])) return;
  const start = Date.now();
  try {
    const note = await fn();
    passed++;
    log(`  ok   ${name} (${((Date.now() - start) / 1000).toFixed(1)} s)${note ? ': ' + note : ''}`);
  } catch (error) {
    failed++;
    log(`  FAIL ${name}: ${error && error.stack ? error.stack.split('\n').slice(0, 4).join('\n       ') : error}`);
  }
}
function assert(condition, message) {
  if (!condition) throw new Error(message);
}

/* ------------------------------------------------------------ reference */

/** Multi-head attention in float64, scale 1/sqrt(head dim), no mask. */
function reference(Q, K, V, seqLen, kvSeqLen, dim, heads) {
  const hd = dim / heads;
  const scale = 1 / Math.sqrt(hd);
  const out = new Float64Array(seqLen * dim);
  const w = new Float64Array(kvSeqLen);
  for (let i = 0; i < seqLen; i++) {
    for (let h = 0; h < heads; h++) {
      let max = -Infinity;
      for (let j = 0; j < kvSeqLen; j++) {
        let dot = 0;
        for (let d = 0; d < hd; d++) dot += Q[i * dim + h * hd + d] * K[j * dim + h * hd + d];
        w[j] = dot * scale;
        if (w[j] > max) max = w[j];
      }
      let sum = 0;
      for (let j = 0; j < kvSeqLen; j++) {
        w[j] = Math.exp(w[j] - max);
        sum += w[j];
      }
      for (let j = 0; j < kvSeqLen; j++) {
        for (let d = 0; d < hd; d++) out[i * dim + h * hd + d] += (w[j] / sum) * V[j * dim + h * hd + d];
      }
    }
  }
  return out;
}
function maxAbsDiff(a, b) {
  assert(a.length === b.length, `length ${a.length} != ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

// Large enough that two threads split it (above MIN_PARALLEL_FLOPS), not a multiple of the tiles.
const SHAPE = { seqLen: 203, kvSeqLen: 317, dim: 96, heads: 3, seeds: [11, 12, 13] };

/* ------------------------------------------------------------ helpers */

function run(cmd, args, cwd, env = {}) {
  return execFileSync(cmd, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] }).toString();
}
function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}
async function waitFor(url, ms) {
  const until = Date.now() + ms;
  for (;;) {
    try {
      const r = await fetch(url);
      if (r.ok) return;
    } catch {
      /* not up yet */
    }
    if (Date.now() > until) throw new Error(`${url} did not come up in ${ms} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function main() {
  let chromium;
  try {
    ({ chromium } = require('playwright-core'));
  } catch {
    throw new Error('playwright-core is missing: run npm ci');
  }
  assert(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: scripts/ensure-deps.sh installs Debian's chromium`);
  fs.mkdirSync(OUT, { recursive: true });
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'qe-flash-browser-'));
  const closers = [];
  let browser;
  try {
    /* ---------------------------------------------- the consumer project */
    log('== browser tests: packing the package and installing it into a fresh consumer project');
    const packed = JSON.parse(run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', tmp], ROOT))[0];
    const tarball = path.join(tmp, packed.filename);
    const app = path.join(tmp, 'consumer');
    fs.mkdirSync(app);
    for (const f of fs.readdirSync(path.join(__dirname, 'consumer'))) fs.copyFileSync(path.join(__dirname, 'consumer', f), path.join(app, f));
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'qe-flash-consumer', private: true, type: 'module' }, null, 2));
    run('npm', ['install', '--offline', '--no-audit', '--no-fund', '--ignore-scripts', tarball], app);
    const pkgDir = path.join(app, 'node_modules', '@agentic-qe', 'v3');
    assert(fs.existsSync(path.join(pkgDir, 'wasm', 'qe-flash-simd.wasm')), 'the installed package has no wasm/');

    /* ---------------------------------------------- expected values, in Node */
    const { seqLen, kvSeqLen, dim, heads, seeds } = SHAPE;
    const Q = uniform(seqLen * dim, seeds[0]);
    const K = uniform(kvSeqLen * dim, seeds[1]);
    const V = uniform(kvSeqLen * dim, seeds[2]);
    const ref = reference(Q, K, V, seqLen, kvSeqLen, dim, heads);
    const nodeOut = JSON.parse(run(process.execPath, ['--input-type=module', '-e', `
      import { createQEFlashAttention } from '@agentic-qe/v3/flash-attention';
      const uniform = ${uniform.toString()};
      const s = ${JSON.stringify(SHAPE)};
      const fa = await createQEFlashAttention('test-similarity', undefined, { threads: 1 });
      const out = await fa.computeFlashAttention(uniform(s.seqLen * s.dim, s.seeds[0]), uniform(s.kvSeqLen * s.dim, s.seeds[1]),
        uniform(s.kvSeqLen * s.dim, s.seeds[2]), s.seqLen, s.dim, { heads: s.heads, kvSeqLen: s.kvSeqLen });
      process.stdout.write(JSON.stringify(Array.from(out)));`], app));
    await check('node-reference the package in Node (ESM, from the tarball) agrees with float64', () => {
      const d = maxAbsDiff(nodeOut, ref);
      assert(d <= 1e-5, `max |node - float64| = ${d}`);
      return `max |diff| ${d.toExponential(2)}`;
    });

    /* ---------------------------------------------- bundles, zero config */
    const outDir = (name) => path.join(app, `out-${name}`);
    const pageFor = (dir, script, type) =>
      fs.writeFileSync(path.join(dir, 'index.html'), `<!doctype html><html><head><meta charset="utf-8"><title>qe-flash</title></head><body><h1>qe-flash consumer</h1><script ${type} src="./${script}"></script></body></html>`);
    const builds = {};
    await check('esbuild bundles the package with no configuration', () => {
      run(path.join(BIN, 'esbuild'), ['main.js', '--bundle', '--format=esm', '--minify', `--outfile=${path.join(outDir('esbuild'), 'main.js')}`], app);
      pageFor(outDir('esbuild'), 'main.js', 'type="module"');
      builds.esbuild = outDir('esbuild');
      return `${(fs.statSync(path.join(outDir('esbuild'), 'main.js')).size / 1024).toFixed(0)} kB minified`;
    });
    await check('vite-build builds the package with no configuration', () => {
      run(path.join(BIN, 'vite'), ['build', '--outDir', outDir('vite'), '--logLevel', 'warn'], app);
      builds['vite-build'] = outDir('vite');
      const wasm = fs.readdirSync(path.join(outDir('vite'), 'assets')).filter((f) => f.endsWith('.wasm'));
      assert(wasm.length === 5, `vite emitted ${wasm.length} .wasm files, not 5`);
      return `${wasm.length} .wasm assets emitted`;
    });
    await check('webpack 5 bundles the package with no configuration', () => {
      run(path.join(BIN, 'webpack'), ['--mode', 'production', '--entry', './main.js', '--output-path', outDir('webpack')], app);
      pageFor(outDir('webpack'), 'main.js', '');
      builds.webpack = outDir('webpack');
      const wasm = fs.readdirSync(outDir('webpack')).filter((f) => f.endsWith('.wasm'));
      assert(wasm.length === 5, `webpack emitted ${wasm.length} .wasm files, not 5`);
      return `${wasm.length} .wasm assets emitted`;
    });
    await check('rollup bundles the package with only node-resolve (which every Rollup build of npm packages uses)', () => {
      run(path.join(BIN, 'rollup'), ['main.js', '--plugin', '@rollup/plugin-node-resolve', '--format', 'es', '--dir', outDir('rollup'), '--silent'], app,
        { NODE_PATH: path.join(ROOT, 'node_modules') });
      pageFor(outDir('rollup'), 'main.js', 'type="module"');
      builds.rollup = outDir('rollup');
      return `${fs.readdirSync(outDir('rollup')).filter((f) => f.endsWith('.js')).length} chunks`;
    });
    await check('tree-shaking a bundle of createQEFlashAttention alone leaves the benchmark suite out', () => {
      const dir = path.join(tmp, 'shake');
      fs.mkdirSync(dir);
      const marker = 'runFlashAttentionBenchmarks';
      fs.writeFileSync(path.join(app, 'one.js'), "import { createQEFlashAttention } from '@agentic-qe/v3/flash-attention';\nglobalThis.f = createQEFlashAttention;\n");
      fs.writeFileSync(path.join(app, 'all.js'), "import * as qe from '@agentic-qe/v3/flash-attention';\nglobalThis.qe = qe;\n");
      // Sizes of the JavaScript alone: the inlined .wasm fallback chunks (the same in both) are left external.
      const size = (entry) => {
        const out = path.join(dir, entry);
        run(path.join(BIN, 'esbuild'), [entry, '--bundle', '--format=esm', '--minify', '--external:./wasm-inline/*', `--outfile=${out}`], app);
        const text = fs.readFileSync(out, 'utf8');
        return { kB: fs.statSync(out).size / 1024, bench: text.includes('formatMarkdown') || text.includes('REFERENCE_SHAPES') || text.includes(marker) };
      };
      const one = size('one.js');
      const all = size('all.js');
      assert(all.bench, 'the full bundle should contain the benchmark (the marker test is broken)');
      assert(!one.bench, 'the createQEFlashAttention-only bundle contains the benchmark suite');
      assert(one.kB < all.kB, `${one.kB} kB is not below ${all.kB} kB`);
      return `esbuild --minify, JavaScript only: createQEFlashAttention ${one.kB.toFixed(1)} kB, everything ${all.kB.toFixed(1)} kB`;
    });

    /* ---------------------------------------------- Chromium */
    browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS, headless: true });
    const version = browser.version();
    log(`   (Chromium ${version})`);

    async function attentionPage(name, url, isolated) {
      const context = await browser.newContext();
      const page = await context.newPage();
      const errors = [];
      page.on('pageerror', (e) => errors.push(String(e)));
      try {
        await page.goto(url, { waitUntil: 'load' });
        await page.waitForFunction(() => typeof globalThis.qeRun === 'function', null, { timeout: 30000 }).catch(() => {
          throw new Error(`the page never became ready; errors: ${errors.join(' | ') || 'none'}`);
        });
        const threads = isolated ? 2 : 1;
        const r = await page.evaluate((args) => globalThis.qeRun(args), { ...SHAPE, threads });
        await page.evaluate((r) => {
          document.querySelector('h1').textContent = `qe-flash in Chromium: module ${r.module}, ${r.threads} thread(s), cross-origin isolated: ${r.isolated}`;
        }, r);
        await page.screenshot({ path: path.join(OUT, `${name}-${isolated ? 'isolated' : 'plain'}.png`) });
        assert(r.isolated === isolated, `crossOriginIsolated is ${r.isolated}`);
        const dNode = maxAbsDiff(r.out, nodeOut);
        const dRef = maxAbsDiff(r.out, ref);
        assert(dNode <= 1e-6, `max |browser - Node| = ${dNode}`);
        assert(dRef <= 1e-5, `max |browser - float64| = ${dRef}`);
        assert(r.caps.threadsAvailable === isolated, `getCapabilities().threadsAvailable is ${r.caps.threadsAvailable}`);
        // Chromium has relaxed SIMD: the threaded build when isolated, the single-thread one when not.
        assert(r.module === 'relaxed', `'auto' chose the ${r.module} build, not relaxed SIMD`);
        if (isolated) {
          assert(r.threads === 2, `ran on ${r.threads} thread(s), not 2`);
          assert(r.caps.threads >= 1, 'getCapabilities().threads');
        } else {
          assert(r.threads === 1 && r.caps.threads === 1, `ran on ${r.threads} thread(s) / capabilities say ${r.caps.threads}`);
        }
        return `module ${r.module}, ${r.threads} thread(s), max |diff| vs Node ${dNode.toExponential(2)}, vs float64 ${dRef.toExponential(2)}`;
      } finally {
        await context.close();
      }
    }

    const variants = [
      ['plain', app, 'plain.html'],
      ['esbuild', builds.esbuild, ''],
      ['vite-build', builds['vite-build'], ''],
      ['webpack', builds.webpack, ''],
      ['rollup', builds.rollup, ''],
    ];
    for (const [name, dir, file] of variants) {
      for (const isolated of [false, true]) {
        await check(`${name} page ${isolated ? 'cross-origin isolated, 2 threads' : 'not isolated, 1 thread'}`, async () => {
          assert(dir, 'its build failed');
          const server = await serveFolder(dir, { isolated });
          closers.push(server.close);
          return attentionPage(name, `${server.url}/${file}`, isolated);
        });
      }
    }
    // A worker that dies in the middle of a call (test/worker-exit.test.ts in Node): its code
    // throws (DIE_THROW = 2), or it stops answering and the deadline ends it (DIE_HANG = 3).
    for (const [how, what] of [[2, 'its code throws'], [3, 'it stops answering (deadline)']]) {
      await check(`worker-death page, cross-origin isolated, 2 threads: a worker dies mid-job (${what}), the call is still right`, async () => {
        const server = await serveFolder(app, { isolated: true });
        closers.push(server.close);
        const context = await browser.newContext();
        const page = await context.newPage();
        const errors = [];
        page.on('pageerror', (e) => errors.push(String(e)));
        try {
          await page.goto(`${server.url}/die.html`, { waitUntil: 'load' });
          await page.waitForFunction(() => typeof globalThis.qeDie === 'function', null, { timeout: 30000 }).catch(() => {
            throw new Error(`the page never became ready; errors: ${errors.join(' | ') || 'none'}`);
          });
          const r = await page.evaluate((args) => globalThis.qeDie(args), { ...SHAPE, how });
          assert(r.readyBefore === 1, `${r.readyBefore} workers ready before`);
          assert(r.fired !== null, 'the worker never took a job in 40 calls');
          for (const [name, out] of [['the call it died in', r.fired.out], ['the next call', r.next], ['a call after the replacement', r.last]]) {
            const d = maxAbsDiff(out, ref);
            assert(d <= 1e-5, `${name}: max |browser - float64| = ${d}`);
          }
          assert(r.fired.threads === 1, `the call claims ${r.fired.threads} threads`);
          assert(r.lost === 1, `the job lost ${r.lost} workers`);
          assert(r.readyAfter === 0, `${r.readyAfter} workers reported ready after the death`);
          assert(r.replaced === 1, `${r.replaced} workers ready after the replacement`);
          assert(r.fired.ms < 20000, `the call took ${r.fired.ms} ms`);
          return `the call it died in took ${r.fired.ms.toFixed(0)} ms, on ${r.fired.threads} thread; replaced; pool failure: ${r.failure}`;
        } finally {
          await context.close();
        }
      });
    }
    await check('plain page with .wasm served as application/octet-stream (no streaming compilation) still loads', async () => {
      const server = await serveFolder(app, { isolated: false, wasmType: 'application/octet-stream' });
      closers.push(server.close);
      return attentionPage('plain-wrong-mime', `${server.url}/plain.html`, false);
    });

    // Vite's dev server: once directly, once behind a proxy adding COOP/COEP.
    if (!only || only.has('vite-dev')) {
      const port = await freePort();
      const dev = spawn(process.execPath, [path.join(ROOT, 'node_modules', 'vite', 'bin', 'vite.js'), '--host', '127.0.0.1', '--port', String(port), '--strictPort', '--logLevel', 'warn'], { cwd: app, stdio: ['ignore', 'pipe', 'pipe'] });
      let devLog = '';
      dev.stdout.on('data', (d) => (devLog += d));
      dev.stderr.on('data', (d) => (devLog += d));
      closers.push(async () => dev.kill());
      const devUrl = `http://127.0.0.1:${port}`;
      let up = true;
      await waitFor(devUrl, 30000).catch((e) => {
        up = false;
        log(`   vite dev server: ${e.message}\n${devLog}`);
      });
      for (const isolated of [false, true]) {
        await check(`vite-dev page ${isolated ? 'cross-origin isolated, 2 threads' : 'not isolated, 1 thread'}`, async () => {
          assert(up, 'the dev server did not start');
          let url = devUrl;
          if (isolated) {
            const p = await proxy(devUrl, { isolated: true });
            closers.push(p.close);
            url = p.url;
          }
          return attentionPage('vite-dev', `${url}/`, isolated);
        });
      }
    }

    /* ---------------------------------------------- the report page */
    const reportTest = path.join(__dirname, 'report-page.cjs');
    if (fs.existsSync(reportTest)) {
      const report = require(reportTest);
      await report({ check, assert, browser, ROOT, OUT, tmp, log, serveFolder, closers });
      await report.allure({ check, assert, ROOT, tmp });
    }
  } finally {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    if (browser) await browser.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main()
  .catch((error) => {
    failed++;
    log(`  FAIL browser tests could not run: ${error && error.stack ? error.stack : error}`);
  })
  .finally(() => {
    log(`   (browser tests took ${((Date.now() - t0) / 1000).toFixed(1)} s; screenshots in ${path.relative(ROOT, OUT)}/)`);
    log(`browser-tests: ${passed} passed, ${failed} failed`);
    process.exit(failed === 0 ? 0 : 1);
  });
