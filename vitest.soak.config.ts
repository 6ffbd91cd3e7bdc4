import { defineConfig } from 'vitest/config'

// The model-based randomized test (fast-check). Not part of `npm test` yet: see
// test/reliability/model.soak.ts for its status. FC_RUNS sets the number of runs, FC_SEED replays one.
export default defineConfig({
  test: {
    include: ['test/reliability/**/*.soak.ts'],
    environment: 'node',
    setupFiles: ['test/support/setup.ts'],
    testTimeout: 900_000,
  },
})
