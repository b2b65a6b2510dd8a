/** Jest with ts-jest (CommonJS). `make test-js` builds the modules and dist/ first. */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['<rootDir>/test/**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.json' }] },
  moduleFileExtensions: ['ts', 'js', 'json'],
  // test/compat imports the built package by its published name, as users do.
  moduleNameMapper: { '^@agentic-qe/v3/flash-attention$': '<rootDir>/dist/cjs/js/index.js' },
  testTimeout: 300000,
};
