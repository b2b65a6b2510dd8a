#!/usr/bin/env node
// Checks a freshly linked wasm/qe-flash-simd-mt.wasm (or, with --relaxed,
// wasm/qe-flash-relaxed-mt.wasm) before the Makefile installs it: it
// validates, imports nothing but its shared memory and the growth notice (so
// no libc symbol was left undefined), exports __stack_pointer and every qe_*
// entry that scripts/wasm-exports.sh lists, and reports its SIMD level (1;
// 2 for the relaxed-SIMD build, which must also hold relaxed instructions).
// With --single, the wasm-ld-linked single-thread build
// (wasm/qe-flash-relaxed.wasm): it imports only the growth notice, exports a
// memory of its own that is not shared, and reports no thread support.
// The relaxed build validates only where the engine has relaxed SIMD: on
// Node 20, run this with --experimental-wasm-relaxed-simd.
'use strict';
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');

const args = process.argv.slice(2);
const relaxed = args.includes('--relaxed');
const single = args.includes('--single');
const file = args.find((a) => !a.startsWith('--'));
if (!file) {
  console.error('usage: check-mt-module.cjs module.wasm [--relaxed] [--single]');
  process.exit(2);
}
const bytes = fs.readFileSync(file);
const fail = (message) => {
  console.error(`${file}: ${message}`);
  process.exit(1);
};
if (!WebAssembly.validate(bytes)) {
  fail(relaxed && Number(process.versions.node.split('.')[0]) < 21 && !process.execArgv.includes('--experimental-wasm-relaxed-simd')
    ? 'does not validate (Node 20 needs --experimental-wasm-relaxed-simd for relaxed SIMD)'
    : 'does not validate');
}
// A crude byte search for f32x4.relaxed_madd (0xfd 0x85 0x02): catches a
// relaxed build whose kernels lost the intrinsic. qe_simd_level() below is
// the real check that the build was compiled with relaxed SIMD.
const hasRelaxedMadd = bytes.includes(Buffer.from([0xfd, 0x85, 0x02]));
if (relaxed && !hasRelaxedMadd) fail('holds no f32x4.relaxed_madd');
const wasmModule = new WebAssembly.Module(bytes);

const imports = WebAssembly.Module.imports(wasmModule).map((i) => `${i.module}.${i.name}:${i.kind}`).sort();
const allowed = ['env.emscripten_notify_memory_growth:function', ...(single ? [] : ['env.memory:memory'])];
for (const entry of imports) if (!allowed.includes(entry)) fail(`unexpected import ${entry}`);
if (!single && !imports.includes('env.memory:memory')) fail('does not import its memory');

const exported = new Map(WebAssembly.Module.exports(wasmModule).map((e) => [e.name, e.kind]));
if (!single && exported.get('__stack_pointer') !== 'global') fail('does not export __stack_pointer');
if (!single && exported.has('memory')) fail('exports a memory of its own');
if (single && exported.get('memory') !== 'memory') fail('does not export its memory');
const listed = execFileSync('bash', [path.join(__dirname, 'wasm-exports.sh')], { encoding: 'utf8' })
  .trim().split(',').map((name) => name.replace(/^_/, ''));
for (const name of listed) if (exported.get(name) !== 'function') fail(`lacks the export ${name}`);

const stub = { emscripten_notify_memory_growth() {} };
let instance;
if (single) {
  instance = new WebAssembly.Instance(wasmModule, { env: stub });
  const buffer = instance.exports.memory.buffer;
  if (typeof SharedArrayBuffer !== 'undefined' && buffer instanceof SharedArrayBuffer) fail('its memory is shared');
  if (instance.exports.qe_thread_support() !== 0) fail('qe_thread_support() is not 0');
  // The allocator works on its own memory: a block, written, freed.
  const p = instance.exports.qe_alloc(1 << 20);
  if (p === 0 || p % 16 !== 0) fail(`qe_alloc(1 MiB) gave ${p}`);
  instance.exports.qe_free(p);
} else {
  // The memory it imports must be shared: instantiate against a non-shared one and expect refusal.
  try {
    new WebAssembly.Instance(wasmModule, { env: { ...stub, memory: new WebAssembly.Memory({ initial: 256, maximum: 65536 }) } });
    fail('accepted a non-shared memory');
  } catch (error) {
    if (!(error instanceof WebAssembly.LinkError)) throw error;
  }
  const memory = new WebAssembly.Memory({ initial: 256, maximum: 65536, shared: true });
  instance = new WebAssembly.Instance(wasmModule, { env: { ...stub, memory } });
  if (instance.exports.qe_thread_support() !== 1) fail('qe_thread_support() is not 1');
}
const level = relaxed ? 2 : 1;
if (instance.exports.qe_simd_level() !== level) fail(`qe_simd_level() is not ${level}`);
console.log(`${file}: ok (${listed.length} entries, ${single ? 'own memory' : 'shared memory'}${relaxed ? ', relaxed SIMD' : ''}, ${bytes.length} bytes)`);
