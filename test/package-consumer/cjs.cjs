// CommonJS consumer: require by package name and subpath.
'use strict';
const m = require('@agentic-qe/v3/flash-attention');
const { exercise } = require('./reference.cjs');

exercise(m).then(
  (r) => {
    process.stdout.write(JSON.stringify({ ...r, names: Object.keys(m).sort() }) + '\n');
    return m.terminateThreadPools();
  },
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
