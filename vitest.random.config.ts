import { defineConfig } from 'vitest/config'

// The randomized multi-client end-to-end test (fast-check) against the real Flask server and the
// built library: test/e2e/randomized.soak.ts. Its own config, so `npm run test:e2e` stays quick:
// `npm run test:random` runs 50 runs (CI), `npm run test:random:soak` 1,000. FC_RUNS sets the
// number of runs; FC_SEED and FC_PATH replay a failure; FC_NO_SHRINK=1, FC_TRACE=1, FC_SURVEY=1.
export default defineConfig({
  test: {
    include: ['test/e2e/**/*.soak.ts'],
    environment: 'node',
    setupFiles: ['test/support/setup.ts'],
    testTimeout: 24 * 3600_000,
    hookTimeout: 60_000,
  },
})
