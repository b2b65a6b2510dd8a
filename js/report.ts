/**
 * `qe-flash report`: one self-contained HTML page about a test suite's
 * near-duplicates, from a test folder or a Jest / Vitest / Playwright JSON
 * results file.
 *
 * Node does the reading and the embedding (the same embedding and
 * similarity index as `qe-flash similar`) and orders the cases into clusters;
 * the page itself loads qe-flash in the browser (dist/report/viewer.js, built
 * from report/viewer.js with the browser build and its .wasm inlined), draws
 * the similarity heatmap with the module's matmul, lists the near-duplicate
 * pairs with their code side by side, draws the benchmark's results when a
 * results JSON is given, and says which browser, SIMD, threads and module it
 * got. The page needs no server: open the file.
 *
 * Clustering: single linkage over each case's nearest neighbours at or above
 * `clusterThreshold` (union-find on the kNN graph), clusters largest first,
 * and inside a cluster a walk that goes to the most similar unvisited
 * neighbour, so near-duplicates sit next to each other on the diagonal.
 */
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { embedSource } from './code-embedding';
/*
 * The report embeds each case on its own (form 2, uniform weighting) for its
 * heatmap, so it keeps that embedding's scale: threshold 0.9 and dim 128, the
 * former qe-flash similar defaults (which now ranks with the code index, on a
 * lower scale).
 */
const DEFAULT_THRESHOLD = 0.9;
const DEFAULT_CLI_DIM = 128;
import { PathError } from './file-walk';
import { writeFileAtomicSync } from './platform';
import { collectSourceFiles, extractTestCases, languageOf, type TestCase } from './test-cases';
import { loadQEModule, type QEModule } from './module';
import { createSimilarityIndex } from './similarity';
import { describe, validatePositiveInteger } from './validate';

export interface ReportOptions {
  /** Pairs at or above this similarity are near-duplicates (default 0.9). */
  threshold?: number;
  /** Edges at or above this join clusters (default 0.75). */
  clusterThreshold?: number;
  /** Most pairs listed (default 200). */
  top?: number;
  /** Embedding length (default 128, as `qe-flash similar`). */
  dim?: number;
  /** A benchmark results JSON (bench/results/latest.json) to draw. */
  benchResults?: string;
  /** Page title. */
  title?: string;
  /** Called as work progresses. */
  onProgress?: (phase: string, done: number, total: number) => void;
}

/** A test's outcome from a results file, when one was given. */
type Outcome = 'passed' | 'failed' | 'skipped' | 'other';

interface ReportCase {
  name: string;
  file: string;
  line: number;
  status?: Outcome;
  cluster: number;
}

/** What the page receives (in a JSON script element). */
export interface ReportData {
  title: string;
  generated: string;
  source: string;
  dim: number;
  threshold: number;
  /** Cases in heatmap order. */
  cases: ReportCase[];
  /** Embeddings in heatmap order, unit length, float32 little-endian, base64. */
  embeddings: string;
  clusters: { size: number }[];
  pairs: { a: number; b: number; score: number }[];
  /** Source text of the cases in pairs, by heatmap index. */
  sources: Record<number, string>;
  bench: unknown;
  files: number;
}

const MAX_SOURCE_CHARS = 6000;

function outcomeOf(status: unknown): Outcome {
  if (status === 'passed' || status === 'expected') return 'passed';
  if (status === 'failed' || status === 'unexpected' || status === 'timedOut') return 'failed';
  if (status === 'skipped' || status === 'pending' || status === 'todo' || status === 'disabled') return 'skipped';
  return 'other';
}

/**
 * The test files, and each test's outcome by file and title, of a Jest or
 * Vitest (`testResults[].name` and `assertionResults`) or Playwright
 * (`suites[].specs[]`, files relative to `config.rootDir`) JSON report.
 */
export function readResultsFile(path: string): { files: string[]; outcomes: Map<string, Outcome> } {
  if (typeof path !== 'string' || path.length === 0) throw new TypeError(`path must be a non-empty string, got ${describe(path)}`);
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(path, 'utf8'));
  } catch (error) {
    throw new PathError(`cannot read the results file ${path}: ${(error as Error).message}`);
  }
  const base = nodePath.dirname(nodePath.resolve(path));
  const files = new Set<string>();
  const outcomes = new Map<string, Outcome>();
  const locate = (file: string, root?: string): string => {
    if (nodePath.isAbsolute(file)) return file;
    for (const dir of [root, base, process.cwd()]) {
      if (dir !== undefined && fs.existsSync(nodePath.resolve(dir, file))) return nodePath.resolve(dir, file);
    }
    return nodePath.resolve(root ?? base, file);
  };
  if (json === null || typeof json !== 'object') throw new PathError(`${path} is neither a Jest/Vitest (testResults) nor a Playwright (suites) JSON report`);
  const r = json as { testResults?: unknown; suites?: unknown; config?: { rootDir?: string } };
  if (Array.isArray(r.testResults)) {
    for (const suite of r.testResults as { name?: string; testFilePath?: string; assertionResults?: { title?: string; status?: string }[] }[]) {
      const name = suite.name ?? suite.testFilePath;
      if (typeof name !== 'string') continue;
      const file = locate(name);
      files.add(file);
      for (const a of suite.assertionResults ?? []) if (typeof a.title === 'string') outcomes.set(`${file}\0${a.title}`, outcomeOf(a.status));
    }
  } else if (Array.isArray(r.suites)) {
    type Spec = { title?: string; file?: string; tests?: { status?: string; results?: { status?: string }[] }[] };
    type Suite = { file?: string; specs?: Spec[]; suites?: Suite[] };
    const root = r.config?.rootDir;
    const visit = (suite: Suite): void => {
      if (typeof suite.file === 'string') files.add(locate(suite.file, root));
      for (const spec of suite.specs ?? []) {
        const file = typeof spec.file === 'string' ? locate(spec.file, root) : undefined;
        if (file === undefined || typeof spec.title !== 'string') continue;
        files.add(file);
        const results = (spec.tests ?? []).flatMap((t) => t.results ?? []);
        const last = results[results.length - 1]?.status;
        outcomes.set(`${file}\0${spec.title}`, outcomeOf(last ?? spec.tests?.[0]?.status));
      }
      for (const child of suite.suites ?? []) visit(child);
    };
    for (const suite of r.suites as Suite[]) visit(suite);
  } else {
    throw new PathError(`${path} is neither a Jest/Vitest (testResults) nor a Playwright (suites) JSON report`);
  }
  return { files: [...files].filter((f) => fs.existsSync(f)).sort(), outcomes };
}

/** Union-find with path halving. */
function makeSets(n: number): { find(i: number): number; union(a: number, b: number): void } {
  const parent = Int32Array.from({ length: n }, (_, i) => i);
  const find = (i: number): number => {
    while (parent[i] !== i) {
      parent[i] = parent[parent[i]];
      i = parent[i];
    }
    return i;
  };
  return { find, union: (a, b) => void (parent[find(a)] = find(b)) };
}

/**
 * Builds the page's data: cases found, embedded, searched (each case's
 * nearest neighbours), clustered and ordered.
 */
export function buildReportData(module: QEModule, inputs: readonly string[], options: ReportOptions = {}): ReportData {
  if (module === null || typeof module !== 'object' || typeof (module as Partial<QEModule>).scope !== 'function') {
    throw new TypeError(`module must be a loaded qe-flash module (loadQEModuleForReport()), got ${describe(module)}`);
  }
  if (!Array.isArray(inputs)) throw new TypeError(`inputs must be an array of paths, got ${describe(inputs)}`);
  inputs.forEach((p, i) => {
    if (typeof p !== 'string' || p.length === 0) throw new TypeError(`inputs[${i}] must be a non-empty string, got ${describe(p)}`);
  });
  if (options === null || typeof options !== 'object') throw new TypeError(`options must be an object, got ${describe(options)}`);
  const threshold = options.threshold ?? DEFAULT_THRESHOLD;
  const clusterThreshold = options.clusterThreshold ?? 0.75;
  const dim = options.dim ?? DEFAULT_CLI_DIM;
  const top = options.top ?? 200;
  const progress = options.onProgress ?? (() => undefined);
  for (const [name, v] of [['threshold', threshold], ['clusterThreshold', clusterThreshold]] as const) {
    if (typeof v !== 'number') throw new TypeError(`options.${name} must be a number, got ${describe(v)}`);
    if (!(v > 0 && v <= 1)) throw new RangeError(`options.${name} must be in (0, 1], got ${v}`);
  }
  validatePositiveInteger('options.dim', dim);
  validatePositiveInteger('options.top', top);
  if (typeof progress !== 'function') throw new TypeError(`options.onProgress must be a function, got ${describe(progress)}`);
  // A number here would be read by fs as a file descriptor.
  if (options.benchResults !== undefined && (typeof options.benchResults !== 'string' || options.benchResults.length === 0)) {
    throw new TypeError(`options.benchResults must be the path of a results JSON, got ${describe(options.benchResults)}`);
  }
  if (options.title !== undefined && typeof options.title !== 'string') throw new TypeError(`options.title must be a string, got ${describe(options.title)}`);
  if (inputs.length === 0) throw new RangeError('report needs a test folder, test files, or one JSON results file');

  let files: string[];
  let outcomes = new Map<string, Outcome>();
  let source: string;
  if (inputs.length === 1 && inputs[0].toLowerCase().endsWith('.json')) {
    ({ files, outcomes } = readResultsFile(inputs[0]));
    source = `results file ${inputs[0]}`;
  } else {
    files = collectSourceFiles(inputs).files;
    source = inputs.join(', ');
  }
  const cases: TestCase[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (error) {
      throw new PathError(`cannot read ${file}: ${(error as Error).message}`);
    }
    cases.push(...extractTestCases(text, file));
  }
  const n = cases.length;
  const embeddings = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    const e = embedSource(module, cases[i].source, { dim, language: languageOf(cases[i].file) ?? 'auto', weighting: 'uniform' });
    let norm = 0;
    for (let d = 0; d < dim; d++) norm += e[d] * e[d];
    const s = norm > 0 ? 1 / Math.sqrt(norm) : 0;
    for (let d = 0; d < dim; d++) embeddings[i * dim + d] = e[d] * s;
    if ((i & 255) === 255 || i === n - 1) progress('embedding', i + 1, n);
  }

  // Nearest neighbours of every case: pairs, and the clustering's edges.
  const neighbors: { id: number; similarity: number }[][] = [];
  if (n > 1) {
    const index = createSimilarityIndex(module, dim);
    try {
      index.add(embeddings);
      const k = Math.min(n, 11);
      for (let q0 = 0; q0 < n; q0 += 256) {
        const q1 = Math.min(n, q0 + 256);
        neighbors.push(...index.searchBatch(embeddings.subarray(q0 * dim, q1 * dim), k));
        progress('searching', q1, n);
      }
    } finally {
      index.dispose();
    }
  } else if (n === 1) {
    neighbors.push([]);
  }
  const sets = makeSets(n);
  const best = new Map<number, number>();
  neighbors.forEach((row, i) => {
    for (const { id: j, similarity } of row) {
      if (j === i) continue;
      if (similarity >= clusterThreshold) sets.union(i, j);
      if (similarity >= threshold) {
        const key = Math.min(i, j) * n + Math.max(i, j);
        if (!(best.get(key)! >= similarity)) best.set(key, similarity);
      }
    }
  });

  // Clusters largest first (ties: first case first); inside one, a greedy walk to the most similar unvisited neighbour.
  const members = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    const r = sets.find(i);
    if (!members.has(r)) members.set(r, []);
    members.get(r)!.push(i);
  }
  const clusters = [...members.values()].sort((a, b) => b.length - a.length || a[0] - b[0]);
  const order: number[] = [];
  const clusterOf = new Int32Array(n);
  const visited = new Uint8Array(n);
  clusters.forEach((group, c) => {
    for (const start of group) {
      if (visited[start]) continue;
      let at = start;
      for (;;) {
        visited[at] = 1;
        clusterOf[at] = c;
        order.push(at);
        const next = neighbors[at].find((nb) => nb.id !== at && !visited[nb.id] && sets.find(nb.id) === sets.find(at));
        if (next === undefined) break;
        at = next.id;
      }
    }
  });
  const position = new Int32Array(n);
  order.forEach((original, p) => (position[original] = p));

  const ordered = new Float32Array(n * dim);
  order.forEach((original, p) => ordered.set(embeddings.subarray(original * dim, (original + 1) * dim), p * dim));
  const pairs = [...best.entries()]
    .sort((x, y) => y[1] - x[1] || x[0] - y[0])
    .slice(0, top)
    .map(([key, score]) => ({ a: position[Math.floor(key / n)], b: position[key % n], score }));
  const sources: Record<number, string> = {};
  for (const p of pairs) {
    for (const i of [p.a, p.b]) {
      const text = cases[order[i]].source;
      sources[i] = text.length > MAX_SOURCE_CHARS ? `${text.slice(0, MAX_SOURCE_CHARS)}\n…` : text;
    }
  }
  const common = commonFolder(files);
  const bench = options.benchResults === undefined ? null : readBench(options.benchResults);
  return {
    title: options.title ?? `Near-duplicate tests: ${source}`,
    generated: new Date().toISOString(),
    source,
    dim,
    threshold,
    cases: order.map((i) => {
      const c = cases[i];
      const status = outcomes.get(`${c.file}\0${c.name}`);
      return { name: c.name, file: nodePath.relative(common, c.file) || nodePath.basename(c.file), line: c.line, cluster: clusterOf[i], ...(status ? { status } : {}) };
    }),
    embeddings: Buffer.from(ordered.buffer, ordered.byteOffset, ordered.byteLength).toString('base64'),
    clusters: clusters.map((g) => ({ size: g.length })),
    pairs,
    sources,
    bench,
    files: files.length,
  };
}

function commonFolder(files: readonly string[]): string {
  if (files.length === 0) return process.cwd();
  let common = nodePath.dirname(nodePath.resolve(files[0]));
  for (const f of files) {
    while (!nodePath.resolve(f).startsWith(common + nodePath.sep) && common !== nodePath.dirname(common)) common = nodePath.dirname(common);
  }
  return common;
}

function readBench(path: string): unknown {
  try {
    const json = JSON.parse(fs.readFileSync(path, 'utf8')) as { results?: unknown; machine?: unknown };
    if (!Array.isArray(json.results)) throw new Error('it has no results array (expected bench/results/latest.json)');
    return { machine: json.machine ?? null, results: json.results };
  } catch (error) {
    throw new PathError(`cannot read the benchmark results ${path}: ${(error as Error).message}`);
  }
}

/** The viewer bundle (report/viewer.js built with the browser build and its .wasm inlined). */
function viewerScript(): string {
  const candidates = ['../report/viewer.js', '../../report/viewer.js', '../dist/report/viewer.js', '../../dist/report/viewer.js'].map((rel) =>
    nodePath.resolve(__dirname, rel),
  );
  for (const file of candidates) {
    if (fs.existsSync(file) && file.includes(`${nodePath.sep}dist${nodePath.sep}`)) return fs.readFileSync(file, 'utf8');
  }
  throw new Error(`cannot find the report viewer (dist/report/viewer.js); looked in ${candidates.join(', ')}. Build it with 'make dist'`);
}

const escapeHtml = (s: string): string => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

/** The page: data in a JSON script element, the viewer inline. */
export function renderReportHtml(data: ReportData): string {
  if (data === null || typeof data !== 'object' || !Array.isArray((data as Partial<ReportData>).cases)) {
    throw new TypeError(`data must be what buildReportData returns, got ${describe(data)}`);
  }
  // '<' escaped so no text inside can close the script element.
  const json = JSON.stringify(data).replace(/</g, '\\u003c');
  const viewer = viewerScript().replace(/<\/script/gi, '<\\/script');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(data.title)}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1b1f24;background:#f6f7f9}
header{padding:12px 20px;background:#1f2937;color:#fff}header h1{font-size:18px;margin:0}
header .sub{opacity:.8;font-size:12px}
main{display:grid;grid-template-columns:minmax(420px,820px) 1fr;gap:16px;padding:16px 20px}
section{background:#fff;border:1px solid #d8dde3;border-radius:6px;padding:12px}
h2{font-size:15px;margin:0 0 8px}
#heatmap{width:100%;image-rendering:pixelated;border:1px solid #ccc;cursor:crosshair}
#hover{font-size:12px;min-height:2.8em;color:#444}
table{border-collapse:collapse;width:100%;font-size:12px}td,th{padding:3px 6px;border-bottom:1px solid #eee;text-align:left;vertical-align:top}
tr.pair{cursor:pointer}tr.pair:hover,tr.pair.sel{background:#e8f0fe}
.code{display:grid;grid-template-columns:1fr 1fr;gap:8px}
pre{margin:0;padding:8px;background:#0f172a;color:#e2e8f0;font-size:11.5px;overflow:auto;max-height:420px;border-radius:4px;white-space:pre}
.status td:first-child{color:#555;width:11em}.ok{color:#0a7a2f}.no{color:#b42318}
#pairs-wrap{max-height:360px;overflow:auto}.wide{grid-column:1/-1}
.legend{display:flex;align-items:center;gap:6px;font-size:11px;color:#555}.legend canvas{height:10px;width:160px}
</style></head>
<body>
<header><h1>${escapeHtml(data.title)}</h1><div class="sub">${data.cases.length} test cases in ${data.files} files · ${data.pairs.length} near-duplicate pairs (similarity ≥ ${data.threshold}) · ${data.clusters.length} clusters · generated ${escapeHtml(data.generated)} by qe-flash report</div></header>
<main>
<section><h2>Similarity heatmap (clustered)</h2><canvas id="heatmap" width="10" height="10"></canvas>
<div class="legend"><span>0</span><canvas id="legend" width="160" height="10"></canvas><span>1</span><span id="heatmap-time"></span></div>
<div id="hover">Hover over the heatmap to see which two tests a cell compares.</div></section>
<section><h2>Engine</h2><table class="status" id="status"><tr><td>qe-flash</td><td>loading…</td></tr></table>
<h2 style="margin-top:14px">Near-duplicate pairs</h2><div id="pairs-wrap"><table id="pairs"><thead><tr><th>similarity</th><th>test A</th><th>test B</th></tr></thead><tbody></tbody></table></div></section>
<section class="wide"><h2 id="code-title">Side by side</h2><div class="code"><pre id="code-a"></pre><pre id="code-b"></pre></div></section>
<section class="wide" id="bench-section" hidden><h2>Benchmark: time per workload (median ms, lower is better)</h2><canvas id="bench" width="1200" height="10" style="width:100%"></canvas></section>
</main>
<script type="application/json" id="qe-report-data">${json}</script>
<script type="module">
${viewer}
</script>
</body></html>
`;
}

/** The module the report embeds with (for the Allure plugin, which has no other way in). */
export function loadQEModuleForReport(): Promise<QEModule> {
  return loadQEModule();
}

/** Builds the report and writes it to `out` (temp file, then rename). */
export function writeReport(module: QEModule, inputs: readonly string[], out: string, options: ReportOptions = {}): ReportData {
  if (typeof out !== 'string' || out.length === 0) throw new TypeError(`out must be a non-empty string, got ${describe(out)}`);
  const data = buildReportData(module, inputs, options);
  const html = renderReportHtml(data);
  // No torn page, and no temporary file left behind when the write fails.
  writeFileAtomicSync(out, html);
  return data;
}

const REPORT_USAGE = `usage: qe-flash report <test folder | files... | results.json> [options]

Writes one self-contained HTML page (open it in a browser; no server needed):
a clustered similarity heatmap of the test cases, the near-duplicate pairs
with their code side by side, the browser's SIMD and thread status and the
module it loaded, and the benchmark's results when --bench is given.
A single .json argument is read as a Jest, Vitest or Playwright JSON report.

options:
  --out <file>          where to write the page (default qe-flash-report.html)
  --threshold <x>       near-duplicate pairs at or above x, in (0, 1] (default ${DEFAULT_THRESHOLD})
  --bench <file>        benchmark results JSON to draw (bench/results/latest.json)
  --title <text>        page title
  -h, --help            print this help
`;

/** `qe-flash report ...` (arguments after 'report'); returns the exit status. */
export async function runReportCli(
  argv: readonly string[],
  io: { stdout: { write(text: string): unknown }; stderr: { write(text: string): unknown } },
  loadModule: () => Promise<QEModule>,
): Promise<number> {
  if (!Array.isArray(argv)) throw new TypeError(`argv must be an array of strings, got ${describe(argv)}`);
  argv.forEach((a, i) => {
    if (typeof a !== 'string') throw new TypeError(`argv[${i}] must be a string, got ${describe(a)}`);
  });
  if (io === null || typeof io !== 'object' || typeof io.stdout?.write !== 'function' || typeof io.stderr?.write !== 'function') {
    throw new TypeError(`io must be { stdout, stderr } with write(text), got ${describe(io)}`);
  }
  if (typeof loadModule !== 'function') throw new TypeError(`loadModule must be a function, got ${describe(loadModule)}`);
  const inputs: string[] = [];
  const options: ReportOptions = {};
  let out = 'qe-flash-report.html';
  const args = [...argv];
  const usage = (message: string): number => {
    io.stderr.write(`qe-flash report: ${message}\n\n${REPORT_USAGE}`);
    return 1;
  };
  while (args.length > 0) {
    const arg = args.shift()!;
    const value = (): string | undefined => args.shift();
    if (arg === '-h' || arg === '--help') {
      io.stdout.write(REPORT_USAGE);
      return 0;
    } else if (arg === '--out' || arg === '--bench' || arg === '--title' || arg === '--threshold') {
      const v = value();
      if (v === undefined) return usage(`${arg} needs a value`);
      if (arg === '--out') out = v;
      else if (arg === '--bench') options.benchResults = v;
      else if (arg === '--title') options.title = v;
      else {
        const x = Number(v);
        if (!(x > 0 && x <= 1)) return usage(`--threshold must be a number in (0, 1], got ${v}`);
        options.threshold = x;
      }
    } else if (arg.startsWith('-') && arg !== '-') {
      return usage(`unknown option ${arg}`);
    } else {
      inputs.push(arg);
    }
  }
  if (inputs.length === 0) return usage('report needs a test folder, test files, or one JSON results file');
  try {
    const data = writeReport(await loadModule(), inputs, out, options);
    io.stdout.write(`${out}: ${data.cases.length} test cases in ${data.files} files, ${data.pairs.length} near-duplicate pairs, ${data.clusters.length} clusters\n`);
    return 0;
  } catch (error) {
    if (error instanceof PathError || error instanceof RangeError) {
      io.stderr.write(`qe-flash report: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
}
