'use strict';
/*
 * Loopback-only HTTP for the browser tests: a static server for a folder,
 * and a pass-through proxy (to put COOP/COEP in front of Vite's dev server).
 * With `isolated`, every response carries the two headers that make a page
 * cross-origin isolated (SharedArrayBuffer, hence threads). `wasmType` lets a
 * test serve .wasm with a wrong MIME type.
 */
const http = require('node:http');
const fs = require('node:fs');
const path = require('node:path');

const TYPES = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.mjs': 'text/javascript', '.cjs': 'text/javascript',
  '.json': 'application/json', '.css': 'text/css', '.png': 'image/png', '.svg': 'image/svg+xml', '.map': 'application/json',
};

function isolationHeaders(isolated) {
  return isolated ? { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' } : {};
}

function listen(server) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      resolve({ url: `http://127.0.0.1:${port}`, close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(() => r()); }) });
    });
  });
}

/** Serves `root` on 127.0.0.1 (a random port). */
function serveFolder(root, { isolated = false, wasmType = 'application/wasm' } = {}) {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    let file = path.join(root, decodeURIComponent(url.pathname));
    if (!file.startsWith(root)) { res.writeHead(403).end(); return; }
    if (fs.existsSync(file) && fs.statSync(file).isDirectory()) file = path.join(file, 'index.html');
    fs.readFile(file, (err, data) => {
      if (err) { res.writeHead(404, isolationHeaders(isolated)).end('not found'); return; }
      const ext = path.extname(file);
      const type = ext === '.wasm' ? wasmType : TYPES[ext] ?? 'application/octet-stream';
      res.writeHead(200, { 'Content-Type': type, 'Cache-Control': 'no-store', ...isolationHeaders(isolated) });
      res.end(data);
    });
  });
  return listen(server);
}

/** Forwards every request to `target` (an http://127.0.0.1 origin), adding the isolation headers. */
function proxy(target, { isolated = true } = {}) {
  const to = new URL(target);
  const server = http.createServer((req, res) => {
    const upstream = http.request({ host: to.hostname, port: to.port, path: req.url, method: req.method, headers: { ...req.headers, host: to.host } }, (up) => {
      res.writeHead(up.statusCode ?? 502, { ...up.headers, ...isolationHeaders(isolated) });
      up.pipe(res);
    });
    upstream.on('error', () => res.writeHead(502).end());
    req.pipe(upstream);
  });
  return listen(server);
}

module.exports = { serveFolder, proxy };
