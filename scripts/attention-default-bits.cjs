#!/usr/bin/env node
/*
 * Hashes (FNV-1a over the float32 bits) of computeFlashAttention's outputs on
 * fixed inputs, for checking that a kernel change keeps the default path's
 * results bit for bit. test/attention-bits.test.ts compares the current build
 * with test/fixtures/attention-default-bits.json, which this script wrote
 * from the builds before the change:
 *   node scripts/attention-default-bits.cjs <folder with the old .wasm files> > test/fixtures/attention-default-bits.json
 * Needs dist/ (make all).
 */
'use strict';
const { readFileSync } = require('node:fs');
const { join } = require('node:path');

/* seqLen, kvSeqLen, dim, heads, causal, validKeyLength (0: all), blocks */
const SHAPES = [
  [1, 1, 1, 1, false, 0, 0],
  [5, 5, 8, 1, true, 0, 0],
  [37, 37, 12, 3, true, 0, 0],
  [33, 70, 20, 4, false, 50, 0],
  [45, 20, 7, 1, false, 0, 0],
  [130, 130, 64, 2, true, 0, 0],
  [133, 133, 64, 1, true, 0, 0],
  [200, 300, 48, 4, false, 257, 0],
  [257, 257, 32, 2, true, 0, 0],
  [129, 129, 96, 3, true, 0, 16],
  [64, 200, 64, 8, false, 130, 24],
  [300, 300, 128, 2, true, 0, 0],
];

function seeded(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function inputs(i, rows, dim) {
  const next = seeded(1000 + i * 7 + rows);
  const x = new Float32Array(rows * dim);
  for (let j = 0; j < x.length; j++) x[j] = 3 * next() - 1.5;
  return x;
}

function fnv1a(f32) {
  const u = new Uint32Array(f32.buffer, f32.byteOffset, f32.length);
  let h = 0x811c9dc5;
  for (let i = 0; i < u.length; i++) {
    h = Math.imul(h ^ u[i], 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}

/** Hash of each shape's output on an instance (createQEFlashAttention's result). */
async function hashes(createFor) {
  const out = [];
  for (let i = 0; i < SHAPES.length; i++) {
    const [seqLen, kvSeqLen, dim, heads, causal, valid, block] = SHAPES[i];
    const attention = await createFor(block);
    const Q = inputs(i, seqLen, dim), K = inputs(i + 100, kvSeqLen, dim), V = inputs(i + 200, kvSeqLen, dim);
    const o = attention.computeFlashAttentionSync(Q, K, V, seqLen, dim, {
      heads, causal, kvSeqLen, ...(valid ? { validKeyLength: valid } : {}),
    });
    out.push(fnv1a(o));
  }
  return out;
}

module.exports = { SHAPES, hashes };

if (require.main === module) {
  (async () => {
    const dir = process.argv[2];
    if (!dir) throw new Error('usage: attention-default-bits.cjs <folder with qe-flash-{simd,scalar}.wasm>');
    const { createQEFlashAttention } = require('../dist/cjs/js/index.js');
    const result = {};
    for (const kind of ['simd', 'scalar']) {
      const bytes = readFileSync(join(dir, `qe-flash-${kind}.wasm`));
      result[kind] = await hashes((block) =>
        createQEFlashAttention('test-similarity', block ? { blocks: { queryChunkSize: block, kvChunkSize: block } } : undefined,
          { module: kind, wasmBytes: bytes, threads: 1 }));
    }
    process.stdout.write(JSON.stringify({ note: 'FNV-1a of computeFlashAttention outputs before issue 18 (scripts/attention-default-bits.cjs)', ...result }, null, 1) + '\n');
  })().catch((e) => { console.error(e); process.exit(1); });
}
