/**
 * What differs between Node and browsers, in one place: where the package's
 * .wasm files are, how a worker starts, how many cores there are, and the
 * file system. This is the Node side; js/platform-browser.ts is the browser
 * side with the same exports. The ES-module build for browsers imports that
 * one instead (scripts/build-esm.js rewrites the import), so nothing that
 * reaches a browser names a Node built-in, and a bundler needs no externals.
 *
 * Ground floor: imports only js/wasm-fetch.ts.
 */
export { compileFromUrl } from './wasm-fetch';

/** Where the platform's code runs. */
export const PLATFORM: 'node' | 'browser' = 'node';

/** A compiled module and where its bytes came from (for messages). */
export interface CompiledModule {
  module: WebAssembly.Module;
  source: string;
}

function isNode(): boolean {
  return typeof process !== 'undefined' && typeof process.versions?.node === 'string';
}

/** The wasm/ folders this file may sit beside: js/ under ts-jest, dist/cjs/js/ and dist/esm/node/js/ when built. */
function candidateDirectories(): string[] {
  if (typeof __dirname === 'undefined') return [];
  return ['../wasm', '../../wasm', '../../../wasm', '../../../../wasm'].map((rel) => `${__dirname}/${rel}`);
}

/** Reads a whole file (Node). */
export async function readFileBytes(path: string): Promise<Uint8Array> {
  const fs = await import('node:fs/promises');
  return fs.readFile(path);
}

/**
 * Compiles one of the package's own .wasm files, found beside this file.
 * Never called where a caller gave wasmUrl or wasmBytes.
 */
export async function compilePackageModule(file: string): Promise<CompiledModule> {
  if (!isNode()) {
    throw new Error('outside Node, pass wasmUrl (the .wasm file, or the folder holding the builds) or wasmBytes');
  }
  const tried: string[] = [];
  const pathModule = await import('node:path');
  for (const dir of candidateDirectories()) {
    const path = pathModule.resolve(dir, file);
    if (tried.includes(path)) continue;
    tried.push(path);
    let bytes: Uint8Array;
    try {
      bytes = await readFileBytes(path);
    } catch (error) {
      if ((error as { code?: string }).code !== 'ENOENT') throw error;
      continue;
    }
    return { module: await WebAssembly.compile(bytes as BufferSource), source: path };
  }
  throw new Error(`cannot find ${file}; looked in ${tried.join(', ')}. Build it with 'make wasm', or pass wasmUrl or wasmBytes`);
}

/**
 * A local path for a wasmUrl that is not a web address (Node only: a file
 * path or a file: URL), or null where the URL must be fetched.
 */
export async function localPathOf(url: string): Promise<string | null> {
  if (!isNode() || /^(https?|data|blob):/i.test(url)) return null;
  if (!url.startsWith('file:')) return url;
  const { fileURLToPath } = await import('node:url');
  return fileURLToPath(url);
}

/** Logical cores this process may use (1 when unknown). */
export async function availableCores(): Promise<number> {
  try {
    const os = await import('node:os');
    const n = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
    return Math.max(1, n | 0);
  } catch {
    return 1;
  }
}

/** A started worker, as the thread pool sees it. */
export interface WorkerHandle {
  terminate(): Promise<void>;
}

/**
 * Starts a worker running `program` (the text of an expression whose value
 * is the worker's start function, js/worker-source.ts) and hands `data` to
 * that function, with the thread's host hooks: its process 'exit' event
 * (process.exit() in a worker ends only that thread, and runs the listener
 * there first) and process.exit itself. Node: worker_threads with eval,
 * unref()'d so an idle pool never keeps the process alive.
 */
export async function startWorker(program: string, data: unknown, onError: (error: unknown) => void, onExit?: () => void): Promise<WorkerHandle> {
  const { Worker } = await import('node:worker_threads');
  const source =
    `'use strict';\n(${program})(require('node:worker_threads').workerData, ` +
    `{ onExit: (listener) => process.on('exit', listener), exit: () => process.exit(1) });\n`;
  const worker = new Worker(source, { eval: true, workerData: data, name: 'qe-flash' } as ConstructorParameters<typeof Worker>[1]);
  worker.unref();
  worker.on('error', onError);
  if (onExit !== undefined) worker.on('exit', onExit);
  return { terminate: async () => void (await worker.terminate()) };
}

/** What the benchmark prints about the machine it ran on. */
export interface MachineInfo {
  cpu: string;
  cores: number;
  memoryGB: number;
  node: string;
  v8: string;
  platform: string;
  loadAverage: number[];
  date: string;
}

/** The machine, from Node's os module (synchronously: the benchmark calls it in constructors). */
export function describeMachine(): MachineInfo {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const os = require('node:os') as typeof import('node:os');
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    memoryGB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    v8: process.versions.v8,
    platform: `${os.platform()} ${os.arch()}`,
    loadAverage: os.loadavg().map((x) => Math.round(x * 100) / 100),
    date: new Date().toISOString(),
  };
}

/** Writes a text file through a temporary file and a rename (Node; the benchmark's Markdown export). */
export async function writeTextFile(path: string, text: string): Promise<void> {
  writeFileAtomicSync(path, text);
}

/**
 * Every file the package writes goes through here: the data into a
 * temporary file beside `path` (the same folder, so the rename cannot cross
 * file systems), fsynced, then renamed over `path`. A reader, or a crash or
 * power cut mid-write, sees the old file or the new one, never half of one;
 * on failure the temporary file is removed and `path` is as it was. Node.
 */
export function writeFileAtomicSync(path: string, data: string | Uint8Array): void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const fs = require('node:fs') as typeof import('node:fs');
  const temp = `${path}.${process.pid}.${Date.now().toString(36)}.tmp`;
  try {
    const fd = fs.openSync(temp, 'w');
    try {
      fs.writeFileSync(fd, data);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(temp, path);
  } catch (error) {
    try {
      fs.unlinkSync(temp);
    } catch {
      // Nothing was written.
    }
    throw error;
  }
}

/** writeFileAtomicSync for bytes, as a promise (Node; saved indexes and adapters). */
export async function writeBytesAtomic(path: string, bytes: Uint8Array): Promise<void> {
  writeFileAtomicSync(path, bytes);
}
