#!/usr/bin/env node
'use strict';
/*
 * qe-flash similar at scale: 10,000 generated test cases of about 30 lines
 * (400 files x 25 cases) with one planted near-duplicate, run through the
 * built command in its own process, as a user would. Reports the wall time
 * and whether the planted pair is reported first.
 *
 * Usage: node bench/cli-similar.js [--json]   (after make all)
 */
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');
const { writeGeneratedSuite } = require('./test-suite-generator');

const LIMIT_SECONDS = 20;

function runCliSimilarBenchmark() {
  const cli = path.join(__dirname, '..', 'dist', 'cjs', 'js', 'cli.js');
  if (!fs.existsSync(cli)) throw new Error(`${cli} is missing; run 'make all' first`);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'qe-flash-similar-'));
  try {
    const where = writeGeneratedSuite(root, 'suite', 400, 25);
    const start = process.hrtime.bigint();
    const run = spawnSync(process.execPath, [cli, 'similar', path.join(root, 'suite'), '--top', '3'], { encoding: 'utf8' });
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    if (run.status !== 0) throw new Error(`qe-flash similar exited with ${run.status}: ${run.stderr}`);
    const lines = run.stdout.split('\n');
    const first = lines.slice(1, 3).join('\n');
    const plantedFirst = first.includes(where.original) && first.includes(where.copy);
    return {
      cases: 10000,
      files: 400,
      seconds,
      limitSeconds: LIMIT_SECONDS,
      plantedFirst,
      verdict: plantedFirst && seconds < LIMIT_SECONDS ? 'PASS' : 'FAIL',
      header: lines[0],
      firstPair: first.replace(new RegExp(root.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') + '/', 'g'), ''),
    };
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

function cliSimilarMarkdown(r) {
  return [
    '| what | measured | bar | verdict |',
    '|---|---|---|---|',
    `| \`qe-flash similar\` over ${r.cases.toLocaleString('en-US')} generated cases (~30 lines, ${r.files} files), planted pair ${r.plantedFirst ? 'reported first' : 'NOT first'} | ${r.seconds.toFixed(1)} s | < ${r.limitSeconds} s, planted pair first | ${r.verdict} |`,
    '',
  ].join('\n');
}

module.exports = { runCliSimilarBenchmark, cliSimilarMarkdown };

if (require.main === module) {
  const r = runCliSimilarBenchmark();
  console.log(process.argv.includes('--json') ? JSON.stringify(r, null, 2) : `${r.header}\n${r.firstPair}\n\n${cliSimilarMarkdown(r)}`);
  process.exit(r.verdict === 'PASS' ? 0 : 1);
}
