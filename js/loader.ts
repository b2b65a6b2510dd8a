/**
 * Finding, choosing and instantiating the WebAssembly module.
 *
 * Five builds of the same C exist, of three kinds. Single-thread:
 * wasm/qe-flash-simd.wasm (SIMD128), wasm/qe-flash-scalar.wasm, and
 * wasm/qe-flash-relaxed.wasm (kind 'relaxed': SIMD128 plus relaxed SIMD's
 * fused multiply-add in the kernels' inner loops). The engine is probed with
 * WebAssembly.validate on tiny hand-assembled modules; 'auto' takes the
 * relaxed build where its probe validates, else SIMD, else scalar. Threaded:
 * wasm/qe-flash-simd-mt.wasm and wasm/qe-flash-relaxed-mt.wasm, the SIMD
 * and relaxed builds with atomics on a shared memory (js/threads.ts). One of
 * them is loaded instead of its single-thread twin when more than one thread
 * is asked for and the engine can run it, and comes with a pool of workers.
 * One thread gets the single-thread build: its memory is not shared, and V8
 * copies typed arrays into a shared memory 2.3x slower than into a plain one,
 * a cost every call pays on its inputs. Engines without relaxed
 * SIMD refuse the whole module, hence the probe (Node 20 has relaxed SIMD only
 * with --experimental-wasm-relaxed-simd; Node >= 21, Chrome >= 114 and
 * Firefox >= 145 by default). Node reads the bytes from the package's wasm/
 * folder; a browser streams them from beside the package (js/platform.ts and
 * js/platform-browser.ts), or either from a URL the caller gives. One instance per build and
 * source is kept for the life of the process. No process handlers are
 * registered.
 */
import type { ModuleChoice, ModuleKind, ModuleLoadOptions } from '../types';
import { createThreadedMemory, threadedImports } from './thread-protocol';
import { ThreadPool } from './thread-pool';
import { RELAXED_THREADED_MODULE_FILE, THREADED_MODULE_FILE, clampThreadCount, defaultThreadCount, detectThreadSupport, validateThreadCount } from './thread-support';
import { compileFromUrl, compilePackageModule, localPathOf, readFileBytes } from './platform';

export const MODULE_FILES: Readonly<Record<ModuleKind, string>> = Object.freeze({
  simd: 'qe-flash-simd.wasm',
  scalar: 'qe-flash-scalar.wasm',
  relaxed: 'qe-flash-relaxed.wasm',
});

const MODULE_KIND_NAMES: readonly ModuleKind[] = ['simd', 'scalar', 'relaxed'];

/** Environment variable that forces a build when the caller asks for 'auto'. */
export const MODULE_ENV_VAR = 'QE_FLASH_MODULE';

// Module header, then one type `() -> i32` and one function of that type.
const PROBE_PREFIX = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7f, 0x03, 0x02, 0x01, 0x00];

/** The function body `i32.const 0; i8x16.splat; i8x16.extract_lane_u 0` as a code section. */
export const SIMD128_PROBE = new Uint8Array([
  ...PROBE_PREFIX,
  0x0a, 0x0b, 0x01, 0x09, 0x00,
  0x41, 0x00, // i32.const 0
  0xfd, 0x0f, // i8x16.splat
  0xfd, 0x16, 0x00, // i8x16.extract_lane_u 0
  0x0b, // end
]);

/**
 * As SIMD128_PROBE, with an f32x4.relaxed_madd (opcode 0xfd 0x105, LEB128
 * 0x85 0x02 in the standard encoding) of three splats: the instruction the
 * relaxed build's kernels use.
 */
export const RELAXED_SIMD_PROBE = new Uint8Array([
  ...PROBE_PREFIX,
  0x0a, 0x16, 0x01, 0x14, 0x00,
  0x41, 0x00, 0xfd, 0x0f, // i32.const 0; i8x16.splat
  0x41, 0x00, 0xfd, 0x0f, // i32.const 0; i8x16.splat
  0x41, 0x00, 0xfd, 0x0f, // i32.const 0; i8x16.splat
  0xfd, 0x85, 0x02, // f32x4.relaxed_madd
  0xfd, 0x16, 0x00, // i8x16.extract_lane_u 0
  0x0b,
]);

export interface EngineFeatures {
  webAssembly: boolean;
  simd128: boolean;
  relaxedSimd: boolean;
}

let cachedFeatures: EngineFeatures | undefined;

function validates(bytes: BufferSource): boolean {
  try {
    return WebAssembly.validate(bytes);
  } catch {
    return false;
  }
}

/** What this engine can run, probed once. */
export function detectEngineFeatures(): EngineFeatures {
  if (cachedFeatures === undefined) {
    const webAssembly = typeof WebAssembly === 'object' && typeof WebAssembly.validate === 'function';
    cachedFeatures = Object.freeze({
      webAssembly,
      simd128: webAssembly && validates(SIMD128_PROBE),
      relaxedSimd: webAssembly && validates(RELAXED_SIMD_PROBE),
    });
  }
  return cachedFeatures;
}

function readEnvChoice(): string | undefined {
  const env = typeof process !== 'undefined' ? process.env?.[MODULE_ENV_VAR] : undefined;
  return env === undefined || env === '' ? undefined : env;
}

function isModuleKind(value: unknown): value is ModuleKind {
  return (MODULE_KIND_NAMES as readonly unknown[]).includes(value);
}

/**
 * The kind of build to load: an explicit 'simd', 'scalar' or 'relaxed'
 * wins, then QE_FLASH_MODULE, then the fastest the engine runs: relaxed SIMD
 * where it validates, else SIMD128, else scalar. Asking for a build the
 * engine cannot run is an error, not a silent fallback. (Whether threads can
 * run decides between a kind's threaded and single-thread builds, in
 * loadWasm.)
 */
export function chooseModuleKind(
  choice: ModuleChoice | undefined,
  envChoice: string | undefined,
  features: EngineFeatures,
): ModuleKind {
  if (choice !== undefined && choice !== 'auto' && !isModuleKind(choice)) {
    throw new RangeError(`module must be 'auto', 'simd', 'scalar' or 'relaxed', got ${JSON.stringify(choice)}`);
  }
  let kind: ModuleKind | undefined = choice === 'auto' ? undefined : choice;
  let reason = `module: '${kind}'`;
  if (kind === undefined && envChoice !== undefined) {
    if (!isModuleKind(envChoice)) {
      throw new RangeError(`${MODULE_ENV_VAR} must be 'simd', 'scalar' or 'relaxed', got ${JSON.stringify(envChoice)}`);
    }
    kind = envChoice;
    reason = `${MODULE_ENV_VAR}=${envChoice}`;
  }
  if (!features.webAssembly) throw new Error('qe-flash needs WebAssembly, which this engine does not provide');
  if (kind === undefined) {
    if (features.simd128 && features.relaxedSimd) return 'relaxed';
    return features.simd128 ? 'simd' : 'scalar';
  }
  if ((kind === 'simd' || kind === 'relaxed') && !features.simd128) {
    throw new Error(`the ${kind === 'simd' ? 'SIMD' : 'relaxed-SIMD'} module was requested (${reason}) but this engine does not support WebAssembly SIMD128`);
  }
  if (kind === 'relaxed' && !features.relaxedSimd) {
    throw new Error(
      `the relaxed-SIMD module was requested (${reason}) but this engine does not support WebAssembly relaxed SIMD` +
        ' (Node 20 needs --experimental-wasm-relaxed-simd; Node >= 21, Chrome >= 114 and Firefox >= 145 have it)',
    );
  }
  return kind;
}

/** An instantiated, initialized module. */
export interface LoadedWasm {
  kind: ModuleKind;
  exports: WebAssembly.Exports;
  memory: WebAssembly.Memory;
  /** Where the bytes came from, for messages. */
  source: string;
  /** Called after the module's memory grows (its old ArrayBuffer is then detached). */
  onMemoryGrowth: Set<() => void>;
  /** The threaded build on a shared memory, with its worker pool (null otherwise, or when workers cannot start). */
  pool: ThreadPool | null;
}

/** The file of a build: the threaded one when `threaded` (SIMD and relaxed SIMD have one). */
function fileOf(kind: ModuleKind, threaded: boolean): string {
  if (threaded && kind === 'relaxed') return RELAXED_THREADED_MODULE_FILE;
  return threaded ? THREADED_MODULE_FILE : MODULE_FILES[kind];
}

function importsMemory(module: WebAssembly.Module): boolean {
  return WebAssembly.Module.imports(module).some((e) => e.kind === 'memory' && e.module === 'env' && e.name === 'memory');
}

function createImports(onGrowth: Set<() => void>, module: WebAssembly.Module, shared?: WebAssembly.Memory): WebAssembly.Imports {
  const imports: Record<string, Record<string, WebAssembly.ImportValue>> = {};
  // Anything the module imports beyond the growth notice is unexpected; fail loudly if it is ever called.
  for (const entry of WebAssembly.Module.imports(module)) {
    if (shared !== undefined && entry.kind === 'memory' && entry.module === 'env' && entry.name === 'memory') continue;
    if (entry.kind !== 'function') {
      throw new Error(`the module imports ${entry.kind} ${entry.module}.${entry.name}, which qe-flash does not provide`);
    }
    imports[entry.module] ??= {};
    imports[entry.module][entry.name] = () => {
      throw new Error(`the module called ${entry.module}.${entry.name}, which qe-flash does not provide`);
    };
  }
  imports.env ??= {};
  const notify = () => {
    for (const listener of onGrowth) listener();
  };
  if (shared !== undefined) Object.assign(imports.env, threadedImports(shared, notify).env);
  imports.env.emscripten_notify_memory_growth = notify;
  return imports;
}

/** Resolves wasmUrl: a URL ending in '/' names the folder holding the builds. */
function resolveUrl(wasmUrl: string | { readonly href: string }, file: string): string {
  const href = typeof wasmUrl === 'string' ? wasmUrl : wasmUrl.href;
  return href.endsWith('/') ? href + file : href;
}

async function compileModule(file: string, options: ModuleLoadOptions): Promise<{ module: WebAssembly.Module; source: string }> {
  if (options.wasmBytes !== undefined) {
    return { module: await WebAssembly.compile(options.wasmBytes as BufferSource), source: 'wasmBytes' };
  }
  if (options.wasmUrl !== undefined) {
    const url = resolveUrl(options.wasmUrl, file);
    const path = await localPathOf(url);
    if (path !== null) {
      let bytes: Uint8Array;
      try {
        bytes = await readFileBytes(path);
      } catch (error) {
        throw new Error(`cannot read the module at ${path} (wasmUrl): ${(error as Error).message}`);
      }
      return { module: await WebAssembly.compile(bytes as BufferSource), source: path };
    }
    return { module: await compileFromUrl(url), source: url };
  }
  return compilePackageModule(file);
}

/** qe_simd_level() of the relaxed-SIMD build. */
const RELAXED_SIMD_LEVEL = 2;

async function instantiate(kind: ModuleKind, options: ModuleLoadOptions, threaded: boolean): Promise<LoadedWasm> {
  const { module, source } = await compileModule(fileOf(kind, threaded), options);
  const onMemoryGrowth = new Set<() => void>();
  // A wasmUrl naming one file may name another build: refused below by its
  // own qe_simd_level(), so that 'auto' falls back to the SIMD builds rather
  // than mislabel it. Either relaxed build serves any thread count (a
  // threaded one named for one thread runs without workers).
  const notRelaxed = () => new Error(`${source} is not a relaxed-SIMD build (${fileOf(kind, threaded)})`);
  if (importsMemory(module)) {
    // The threaded build: the main thread creates the shared memory; workers get the same one.
    if (!detectThreadSupport()) throw new Error(`${source} is the threaded build, which this engine cannot run (no shared memory or workers)`);
    const memory = createThreadedMemory();
    const instance = await WebAssembly.instantiate(module, createImports(onMemoryGrowth, module, memory));
    const exports = instance.exports;
    if (kind === 'relaxed' && options.wasmBytes === undefined && (exports.qe_simd_level as () => number)?.() !== RELAXED_SIMD_LEVEL) {
      throw notRelaxed();
    }
    let pool: ThreadPool | null = null;
    try {
      pool = await ThreadPool.start(module, memory, exports, 0);
    } catch {
      // Without a pool the threaded build still runs, on this thread.
    }
    return { kind, exports, memory, source, onMemoryGrowth, pool };
  }
  const instance = await WebAssembly.instantiate(module, createImports(onMemoryGrowth, module));
  const exports = instance.exports;
  const memory = exports.memory;
  if (!(memory instanceof WebAssembly.Memory)) throw new Error(`${source} does not export its memory`);
  if (kind === 'relaxed' && options.wasmBytes === undefined && (exports.qe_simd_level as () => number)?.() !== RELAXED_SIMD_LEVEL) {
    throw notRelaxed();
  }
  // A standalone module has no main: its constructors run in _initialize, before anything else.
  if (typeof exports._initialize === 'function') (exports._initialize as () => void)();
  return { kind, exports, memory, source, onMemoryGrowth, pool: null };
}

/** With a pool, has it hold `threads - 1` workers; starting them may fail, and the module then runs on one thread. */
async function withWorkers(loaded: LoadedWasm, threads: number): Promise<LoadedWasm> {
  if (loaded.pool !== null && threads > 1) await loaded.pool.ensureWorkers(threads - 1).catch(() => undefined);
  return loaded;
}

const instances = new Map<string, Promise<LoadedWasm>>();

/**
 * The module for these options, instantiated once per build and source.
 * With wasmBytes the caller's bytes are used as given (not cached); the
 * kind reported is the one chosen, and module.ts checks it against the
 * build's own qe_simd_level().
 *
 * options.threads (default 1) above 1 loads the chosen kind's threaded
 * build, with that many threads' worth of workers, where the engine can run
 * it (SIMD and relaxed SIMD); elsewhere, or when that build cannot be
 * loaded, its single-thread build (the fallback). When 'auto' chose relaxed
 * SIMD and neither relaxed build can be loaded (file missing, engine
 * refusing it), the choice falls back to the SIMD builds; asked for
 * explicitly, its failure is the error. The scalar build asked for
 * explicitly (option or environment) with more than one thread is an error.
 */
export function loadWasm(options: ModuleLoadOptions = {}, name = 'options'): Promise<LoadedWasm> {
  let kind: ModuleKind;
  let threads: number;
  const envChoice = readEnvChoice();
  try {
    // Errors name the argument as the caller's caller wrote it (`loadOptions.module`, `options.module.threads`).
    if (options === null || typeof options !== 'object') throw new TypeError(`${name} must be an object, got ${options === null ? 'null' : typeof options}`);
    if (options.module !== undefined && options.module !== 'auto' && !isModuleKind(options.module)) {
      throw new RangeError(`${name}.module must be 'auto', 'simd', 'scalar' or 'relaxed', got ${JSON.stringify(options.module)}`);
    }
    if (options.wasmBytes !== undefined && !(ArrayBuffer.isView(options.wasmBytes) || options.wasmBytes instanceof ArrayBuffer)) {
      throw new TypeError(`${name}.wasmBytes must be the bytes of a .wasm file (an ArrayBuffer or a typed array), got ${typeof options.wasmBytes}`);
    }
    kind = chooseModuleKind(options.module, envChoice, detectEngineFeatures());
    threads = options.threads === undefined ? 1 : validateThreadCount(options.threads, `${name}.threads`);
    const scalarForced = options.module === 'scalar' || ((options.module === undefined || options.module === 'auto') && envChoice === 'scalar');
    if (threads > 1 && scalarForced) {
      throw new RangeError(`threads: ${threads} needs the SIMD build; the scalar build${options.module === 'scalar' ? '' : ` (forced by ${MODULE_ENV_VAR})`} runs on one thread`);
    }
  } catch (error) {
    return Promise.reject(error);
  }
  // Never more threads than cores (js/flash-attention.ts records the warning).
  return clampThreadCount(threads)
    .then((clamped) => loadChosen(kind, clamped.threads, envChoice, options))
    .catch((error: unknown) => {
      if (options.wasmBytes !== undefined && error instanceof WebAssembly.CompileError) {
        throw new TypeError(`${name}.wasmBytes is not a WebAssembly module this engine compiles: ${error.message}`);
      }
      throw error;
    });
}

function loadChosen(kind: ModuleKind, threads: number, envChoice: string | undefined, options: ModuleLoadOptions): Promise<LoadedWasm> {
  const threaded = threads > 1 && detectThreadSupport() && kind !== 'scalar';
  if (options.wasmBytes !== undefined) return instantiate(kind, options, threaded).then((l) => withWorkers(l, threads));
  // The threaded build for several threads, falling back to the
  // single-thread one when it cannot be had (file missing, engine refusing it).
  const load = (k: ModuleKind) => (threaded ? threadedOrSingle(k, options) : cached(k, options, false));
  let pending: Promise<LoadedWasm>;
  if (kind === 'relaxed') {
    const chosenByAuto = (options.module === undefined || options.module === 'auto') && envChoice === undefined;
    pending = load('relaxed');
    if (chosenByAuto) pending = pending.catch(() => load('simd'));
  } else {
    pending = load(kind);
  }
  return pending.then((l) => withWorkers(l, threads));
}

/**
 * The kind's threaded build, else its single-thread one; when both fail, the
 * error says why for each. A threaded build that could not be had is tried
 * again by the next load (as any failed load is: a fetch that failed once may
 * not fail twice), rather than leaving the process on one thread for good.
 */
function threadedOrSingle(kind: ModuleKind, options: ModuleLoadOptions): Promise<LoadedWasm> {
  return cached(kind, options, true).catch((threadedError: unknown) =>
    cached(kind, options, false).catch((error: unknown) => {
      // A new error of the same class: the one caught may be shared by concurrent loads.
      if (!(error instanceof Error)) throw error;
      const why = threadedError instanceof Error ? threadedError.message : String(threadedError);
      const Same = error.constructor as new (message: string) => Error;
      throw new Same(`${error.message}; the threaded build could not be had either: ${why}`);
    }),
  );
}

function cacheKey(kind: ModuleKind, options: ModuleLoadOptions, threaded: boolean): string {
  const name = threaded ? `${kind}-mt` : kind;
  return options.wasmUrl === undefined ? name : `${name} ${resolveUrl(options.wasmUrl, fileOf(kind, threaded))}`;
}

function cached(kind: ModuleKind, options: ModuleLoadOptions, threaded: boolean): Promise<LoadedWasm> {
  const key = cacheKey(kind, options, threaded);
  let pending = instances.get(key);
  if (pending === undefined) {
    pending = instantiate(kind, options, threaded);
    instances.set(key, pending);
    // A failed load is not remembered, so a later call may try again.
    pending.catch(() => instances.delete(key));
  }
  return pending;
}

/**
 * Threads asked for: loadOptions.threads when given; else min(2, cores)
 * where threads can run and the build is left to 'auto' (no QE_FLASH_MODULE);
 * else 1.
 */
export async function resolveThreads(loadOptions: ModuleLoadOptions | undefined): Promise<{ threads: number; warning: string | null }> {
  if (loadOptions?.threads !== undefined) {
    // Above the core count: clamped, and the metrics of every call say so.
    return clampThreadCount(validateThreadCount(loadOptions.threads, 'loadOptions.threads'), 'loadOptions.threads');
  }
  const auto = loadOptions?.module === undefined || loadOptions.module === 'auto';
  const forced = typeof process !== 'undefined' && !!process.env?.[MODULE_ENV_VAR];
  return { threads: auto && !forced && loadOptions?.wasmBytes === undefined ? await defaultThreadCount() : 1, warning: null };
}
