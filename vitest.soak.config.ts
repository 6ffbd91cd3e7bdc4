import { defineConfig } from 'vitest/config'

// The model-based randomized test (fast-check), test/reliability/model.soak.ts. Its own config so
// `npm test` stays quick: `npm run test:model` runs 100 runs (CI), `npm run test:soak` 1,000.
// FC_RUNS sets the number of runs; FC_SEED (and FC_PATH) replay a failure.
export default defineConfig({
  test: {
    include: ['test/reliability/**/*.soak.ts'],
    environment: 'node',
    setupFiles: ['test/support/setup.ts'],
    testTimeout: 900_000,
  },
})
