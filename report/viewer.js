// The page of `qe-flash report` (js/report.ts writes the data; this draws
// it). Bundled by `make dist` with the package's browser build, its .wasm
// inlined, into dist/report/viewer.js, which every report page carries.
import { getWASMSIMDBackend } from '../dist/esm/browser/js/index.js';

const data = JSON.parse(document.getElementById('qe-report-data').textContent);
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);

function decodeEmbeddings(base64) {
  const binary = atob(base64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return new Float32Array(bytes.buffer);
}

// A perceptual ramp (dark blue to yellow), 256 entries of RGB.
const STOPS = [[13, 8, 135], [84, 2, 163], [139, 10, 165], [185, 50, 137], [219, 92, 104], [244, 136, 73], [254, 188, 43], [240, 249, 33]];
const LUT = new Uint8Array(256 * 3);
for (let i = 0; i < 256; i++) {
  const x = (i / 255) * (STOPS.length - 1);
  const k = Math.min(STOPS.length - 2, Math.floor(x));
  const f = x - k;
  for (let c = 0; c < 3; c++) LUT[i * 3 + c] = Math.round(STOPS[k][c] * (1 - f) + STOPS[k + 1][c] * f);
}

function drawLegend() {
  const canvas = $('legend');
  const ctx = canvas.getContext('2d');
  for (let x = 0; x < canvas.width; x++) {
    const i = Math.round((x / (canvas.width - 1)) * 255);
    ctx.fillStyle = `rgb(${LUT[i * 3]},${LUT[i * 3 + 1]},${LUT[i * 3 + 2]})`;
    ctx.fillRect(x, 0, 1, canvas.height);
  }
}

/**
 * Cosine similarity of every pair (the embeddings are unit length), computed
 * with the module's matmul in row blocks, reduced to at most 800 x 800
 * pixels (each pixel the largest similarity it covers), then coloured.
 */
function drawHeatmap(backend, emb, n, dim) {
  const started = performance.now();
  const size = Math.max(1, Math.min(n, 800));
  const canvas = $('heatmap');
  canvas.width = size;
  canvas.height = size;
  const cells = new Float32Array(size * size).fill(-1);
  const colPixel = new Int32Array(n);
  for (let j = 0; j < n; j++) colPixel[j] = Math.floor((j * size) / n);
  const transposed = new Float32Array(dim * n);
  for (let j = 0; j < n; j++) for (let d = 0; d < dim; d++) transposed[d * n + j] = emb[j * dim + d];
  const block = 256;
  for (let r0 = 0; r0 < n; r0 += block) {
    const m = Math.min(block, n - r0);
    const sims = backend.matmulSIMD(emb.subarray(r0 * dim, (r0 + m) * dim), transposed, m, n, dim);
    for (let r = 0; r < m; r++) {
      const base = Math.floor(((r0 + r) * size) / n) * size;
      const row = r * n;
      for (let j = 0; j < n; j++) {
        const v = sims[row + j];
        const at = base + colPixel[j];
        if (v > cells[at]) cells[at] = v;
      }
    }
  }
  const ctx = canvas.getContext('2d');
  const image = ctx.createImageData(size, size);
  for (let i = 0; i < size * size; i++) {
    const v = Math.max(0, Math.min(1, cells[i]));
    const k = Math.round(v * 255) * 3;
    image.data[i * 4] = LUT[k];
    image.data[i * 4 + 1] = LUT[k + 1];
    image.data[i * 4 + 2] = LUT[k + 2];
    image.data[i * 4 + 3] = 255;
  }
  ctx.putImageData(image, 0, 0);
  // Cluster borders of the clusters big enough to see.
  ctx.strokeStyle = 'rgba(255,255,255,0.55)';
  ctx.lineWidth = Math.max(1, size / 400);
  let start = 0;
  for (const c of data.clusters) {
    if (c.size >= Math.max(3, n / 200)) {
      const a = (start * size) / n;
      const w = (c.size * size) / n;
      ctx.strokeRect(a, a, w, w);
    }
    start += c.size;
  }
  const ms = performance.now() - started;
  $('heatmap-time').textContent = `drawn in ${ms.toFixed(0)} ms (${n} × ${n} similarities, ${size} × ${size} px)`;
  document.body.dataset.heatmapMs = ms.toFixed(1);
  document.body.dataset.heatmapDone = '1';
  canvas.addEventListener('mousemove', (event) => {
    const rect = canvas.getBoundingClientRect();
    const px = Math.floor(((event.clientX - rect.left) / rect.width) * size);
    const py = Math.floor(((event.clientY - rect.top) / rect.height) * size);
    const i = Math.min(n - 1, Math.floor((py * n) / size));
    const j = Math.min(n - 1, Math.floor((px * n) / size));
    let dot = 0;
    for (let d = 0; d < dim; d++) dot += emb[i * dim + d] * emb[j * dim + d];
    const a = data.cases[i];
    const b = data.cases[j];
    $('hover').innerHTML = `<b>${dot.toFixed(3)}</b> · ${esc(a.name)} <small>(${esc(a.file)}:${a.line})</small><br>vs ${esc(b.name)} <small>(${esc(b.file)}:${b.line})</small>`;
  });
}

function showPair(index) {
  const p = data.pairs[index];
  document.querySelectorAll('tr.pair').forEach((tr) => tr.classList.toggle('sel', Number(tr.dataset.i) === index));
  const a = data.cases[p.a];
  const b = data.cases[p.b];
  $('code-title').textContent = `Side by side: similarity ${p.score.toFixed(4)}`;
  $('code-a').textContent = `// ${a.file}:${a.line}  ${a.name}\n\n${data.sources[p.a] ?? ''}`;
  $('code-b').textContent = `// ${b.file}:${b.line}  ${b.name}\n\n${data.sources[p.b] ?? ''}`;
}

function listPairs() {
  const body = $('pairs').querySelector('tbody');
  if (data.pairs.length === 0) {
    body.innerHTML = `<tr><td colspan="3">No pair at or above ${data.threshold}.</td></tr>`;
    return;
  }
  const badge = (c) => (c.status === 'failed' ? ' <span class="no">✗</span>' : c.status === 'passed' ? ' <span class="ok">✓</span>' : '');
  body.innerHTML = data.pairs
    .map((p, i) => {
      const a = data.cases[p.a];
      const b = data.cases[p.b];
      return `<tr class="pair" data-i="${i}"><td>${p.score.toFixed(4)}</td><td>${esc(a.name)}${badge(a)}<br><small>${esc(a.file)}:${a.line}</small></td><td>${esc(b.name)}${badge(b)}<br><small>${esc(b.file)}:${b.line}</small></td></tr>`;
    })
    .join('');
  body.addEventListener('click', (event) => {
    const tr = event.target.closest('tr.pair');
    if (tr) showPair(Number(tr.dataset.i));
  });
  showPair(0);
}

function showStatus(caps, loadMs, error) {
  const rows = [
    ['browser', navigator.userAgent.replace(/^Mozilla\/5\.0 /, '')],
    ['cross-origin isolated', String(globalThis.crossOriginIsolated === true)],
  ];
  if (error) {
    rows.push(['qe-flash', `<span class="no">failed to load: ${esc(error.message ?? error)}</span>`]);
  } else {
    const yes = (b) => (b ? '<span class="ok">yes</span>' : '<span class="no">no</span>');
    rows.push(
      ['module loaded', `<b>${esc(caps.module)}</b> (loaded in ${loadMs.toFixed(0)} ms)`],
      ['WebAssembly SIMD128', yes(caps.simd128)],
      ['relaxed SIMD', yes(caps.relaxedSimd)],
      ['threads', caps.threadsAvailable ? `<span class="ok">available</span>: ${caps.threads}` : '1 (threads need a cross-origin isolated page)'],
    );
  }
  $('status').innerHTML = rows.map(([k, v]) => `<tr><td>${k}</td><td>${v}</td></tr>`).join('');
}

/** The benchmark's medians: per workload, each engine as a bar on a log scale. */
function drawBench() {
  const results = (data.bench?.results ?? []).filter((r) => r.flash?.timing);
  if (results.length === 0) return;
  $('bench-section').hidden = false;
  const rows = [];
  for (const r of results) {
    const engines = [r.flash, r.flashThreads, r.baseline, ...(r.peers ?? [])].filter((e) => e && e.status === 'ok' && e.timing);
    rows.push({ label: r.label ?? r.workload, bars: engines.map((e) => ({ name: `${e.engine}, ${e.threads} thread${e.threads > 1 ? 's' : ''}`, ms: e.timing.medianMs, ours: e.engine === 'qe-flash' })) });
  }
  const canvas = $('bench');
  const barH = 14;
  const height = rows.reduce((h, r) => h + 22 + r.bars.length * (barH + 3), 10);
  canvas.height = height;
  const ctx = canvas.getContext('2d');
  const all = rows.flatMap((r) => r.bars.map((b) => b.ms));
  const lo = Math.log10(Math.min(...all) / 2);
  const hi = Math.log10(Math.max(...all) * 1.2);
  const left = 330;
  const width = canvas.width - left - 80;
  let y = 8;
  ctx.font = '12px system-ui, sans-serif';
  for (const r of rows) {
    ctx.fillStyle = '#111';
    ctx.font = 'bold 12px system-ui, sans-serif';
    ctx.fillText(r.label, 4, y + 12);
    y += 20;
    ctx.font = '12px system-ui, sans-serif';
    for (const b of r.bars) {
      const w = Math.max(2, ((Math.log10(b.ms) - lo) / (hi - lo)) * width);
      ctx.fillStyle = '#444';
      ctx.fillText(b.name, 14, y + barH - 3);
      ctx.fillStyle = b.ours ? '#2563eb' : b.name.startsWith('onnxruntime') ? '#f59e0b' : '#9ca3af';
      ctx.fillRect(left, y, w, barH);
      ctx.fillStyle = '#111';
      ctx.fillText(`${b.ms < 10 ? b.ms.toFixed(2) : b.ms.toFixed(1)} ms`, left + w + 6, y + barH - 3);
      y += barH + 3;
    }
  }
}

async function main() {
  drawLegend();
  listPairs();
  drawBench();
  const emb = decodeEmbeddings(data.embeddings);
  const n = data.cases.length;
  let backend;
  const t0 = performance.now();
  try {
    backend = await getWASMSIMDBackend();
  } catch (error) {
    showStatus(null, 0, error);
    document.body.dataset.heatmapError = String(error?.message ?? error);
    return;
  }
  showStatus(backend.getCapabilities(), performance.now() - t0);
  if (n > 0) drawHeatmap(backend, emb, n, data.dim);
  else document.body.dataset.heatmapDone = '1';
}

main();
