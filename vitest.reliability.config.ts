import { defineConfig } from 'vitest/config'

/**
 * The slow reliability tests: the 100k-dispatch load test and the bad-input catalogue (its 50 MB
 * values). They run with the model-based test in `.ci/run` (`npm run test:reliability`), not in
 * `npm test`, which stays quick; `vitest.config.ts` excludes exactly this list.
 */
export const reliabilityTests = ['test/reliability/load.test.ts', 'test/reliability/badInput.test.ts']

export default defineConfig({
  test: {
    include: reliabilityTests,
    environment: 'node',
    setupFiles: ['test/support/setup.ts'],
    restoreMocks: true,
    testTimeout: 120_000,
  },
})
