// ES-module consumer: named imports, and the same names as require() gives.
import * as m from '@agentic-qe/v3/flash-attention';
import { createQEFlashAttention, getWASMSIMDBackend, terminateThreadPools } from '@agentic-qe/v3/flash-attention';
import { createRequire } from 'node:module';
import reference from './reference.cjs';

const require = createRequire(import.meta.url);
const cjs = require('@agentic-qe/v3/flash-attention');
const names = Object.keys(m).filter((n) => n !== 'default').sort();
const cjsNames = Object.keys(cjs).filter((n) => n !== 'default').sort();
if (JSON.stringify(names) !== JSON.stringify(cjsNames)) {
  throw new Error(`ESM exports ${names.join(',')} but CommonJS exports ${cjsNames.join(',')}`);
}
if (typeof createQEFlashAttention !== 'function' || typeof getWASMSIMDBackend !== 'function') {
  throw new Error('named imports are missing');
}
const r = await reference.exercise(m);
const backend = await getWASMSIMDBackend();
const capabilities = backend.getCapabilities();
process.stdout.write(JSON.stringify({ ...r, backend: capabilities.module, names }) + '\n');
await terminateThreadPools();
