'use strict';
/*
 * How the benchmark scripts write what they leave behind (bench/results/*,
 * README.md's generated sections, caches): through the package's own
 * writeFileAtomicSync (js/platform.ts), a temporary file beside the target
 * then a rename, so a run killed mid-write leaves the old file or the new
 * one, never half of one.
 */
const path = require('path');

const root = path.join(__dirname, '..');
const { writeFileAtomicSync } = require(path.join(root, 'dist', 'cjs', 'js', 'platform.js'));

/** Writes each { name: text } into dir (created if missing). */
function writeResultFiles(dir, files) {
  require('fs').mkdirSync(dir, { recursive: true });
  for (const [name, text] of Object.entries(files)) writeFileAtomicSync(path.join(dir, name), text);
}

/**
 * Replaces what lies between the `start` and `end` markers of a file (the
 * markers kept) by body. False, and the file untouched, when the markers are
 * missing or out of order.
 */
function replaceMarkedSection(file, start, end, body) {
  const text = require('fs').readFileSync(file, 'utf8');
  const a = text.indexOf(start);
  const b = text.indexOf(end);
  if (a < 0 || b < a) return false;
  writeFileAtomicSync(file, `${text.slice(0, a)}${start}\n${body}\n${end}${text.slice(b + end.length)}`);
  return true;
}

module.exports = { writeFileAtomicSync, writeResultFiles, replaceMarkedSection };
