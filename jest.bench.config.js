/** `npm run bench:jest`: the benchmark suite under Jest (bench/*.bench.test.ts). */
const base = require('./jest.config.js');

module.exports = {
  ...base,
  roots: ['<rootDir>/bench'],
  testMatch: ['<rootDir>/bench/**/*.bench.test.ts'],
  testTimeout: 15 * 60 * 1000,
};
