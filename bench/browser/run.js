#!/usr/bin/env node
'use strict';
/*
 * make bench-browser: attention in headless Chromium, qe-flash and
 * onnxruntime-web (its wasm backend, the same graph as bench/peers) in the
 * same page, on the three attention shapes of the benchmark, at 1 thread and
 * at 2 threads (the page is cross-origin isolated, so both can use
 * workers; onnxruntime-web fixes its thread count per page, hence one page
 * per count). Engines take turns in rounds; each round times a batch of calls
 * (Chromium coarsens performance.now to 0.1 ms). Prints medians with min and
 * max, and writes bench/results/browser.json (not committed). Loopback only.
 */
const path = require('node:path');
const { chromium } = require('playwright-core');
const { onnx } = require('onnx-proto');
const { attentionModel } = require('../peers/onnxruntime.js');
const { serveFolder } = require('../../test/browser/serve.cjs');

const ROOT = path.resolve(__dirname, '..', '..');
const SHAPES = [
  { label: 'N=512 dim=384 heads=8', seqLen: 512, dim: 384, heads: 8 },
  { label: 'N=1024 dim=512 heads=4', seqLen: 1024, dim: 512, heads: 4 },
  { label: 'N=256 dim=384 heads=12', seqLen: 256, dim: 384, heads: 12 },
];
const ROUNDS = Number(process.env.QE_BENCH_ROUNDS || 15);
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'];
const fmt = (s) => `${s.medianMs.toFixed(2)} (${s.minMs.toFixed(2)}-${s.maxMs.toFixed(2)})`;

async function main() {
  const server = await serveFolder(ROOT, { isolated: true });
  const browser = await chromium.launch({ executablePath: process.env.QE_CHROMIUM || '/usr/bin/chromium', args: FLAGS, headless: true });
  const rows = [];
  try {
    console.log(`Chromium ${browser.version()}; ${ROUNDS} rounds per shape, engines taking turns; ms per call: median (min-max)`);
    for (const threads of [1, 2]) {
      const page = await (await browser.newContext()).newPage();
      const errors = [];
      page.on('pageerror', (e) => errors.push(String(e)));
      await page.goto(`${server.url}/bench/browser/page.html?threads=${threads}`);
      await page.waitForFunction(() => document.body.dataset.ready === '1', null, { timeout: 30000 }).catch(() => {
        throw new Error(`the page did not load: ${errors.join(' | ')}`);
      });
      for (const shape of SHAPES) {
        const model = Array.from(attentionModel(null, onnx, shape));
        const r = await page.evaluate((args) => globalThis.benchShape(args), { ...shape, model, rounds: ROUNDS });
        rows.push({ shape: shape.label, ...r });
        console.log(`${shape.label.padEnd(24)} ${threads} thread${threads > 1 ? 's' : ' '}  qe-flash ${fmt(r.qe)} [${r.module}, ${r.qeThreads} thr]  ` +
          `onnxruntime-web ${fmt(r.ort)}  ratio ${(r.ort.medianMs / r.qe.medianMs).toFixed(2)}x  max|diff| ${r.maxAbsDiff.toExponential(1)}`);
      }
      await page.context().close();
    }
  } finally {
    await browser.close();
    await server.close();
  }
  const out = path.join(ROOT, 'bench', 'results', 'browser.json');
  require('../write-results').writeResultFiles(path.dirname(out), { [path.basename(out)]: JSON.stringify({ date: new Date().toISOString(), rounds: ROUNDS, rows }, null, 2) });
  console.log(`wrote ${path.relative(ROOT, out)}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
