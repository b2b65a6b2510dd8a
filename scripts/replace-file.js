'use strict';
/*
 * The build's generated sources (js/c-api.ts, js/worker-source.ts) are make
 * targets: a half-written one would look newer than its inputs and never be
 * made again. So they are written as the package writes its files
 * (writeFileAtomicSync in js/platform.ts, which these scripts cannot load:
 * they run before the package is compiled): a temporary file beside the
 * target, then a rename over it. Unchanged text is not rewritten, so make
 * does not rebuild what depends on it.
 */
const fs = require('node:fs');

function replaceFileSync(file, text) {
  if (fs.existsSync(file) && fs.readFileSync(file, 'utf8') === text) return false;
  const temp = `${file}.${process.pid}.${Date.now().toString(36)}.tmp`;
  try {
    fs.writeFileSync(temp, text);
    fs.renameSync(temp, file);
  } catch (error) {
    fs.rmSync(temp, { force: true });
    throw error;
  }
  return true;
}

module.exports = { replaceFileSync };
