import { defineConfig } from 'vitest/config'
import { reliabilityTests } from './vitest.reliability.config'

export default defineConfig({
  test: {
    environment: 'node',
    restoreMocks: true,
    testTimeout: 20_000,
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts', 'test/**/*.test.tsx'],
          // The slow reliability tests run in `npm run test:reliability` (.ci/run), not in `npm test`.
          exclude: ['test/e2e/**', 'test/browser/**', 'test/noGlobals/**', 'node_modules/**', ...reliabilityTests],
          setupFiles: ['test/support/setup.ts'],
          typecheck: { enabled: true, include: ['test/**/*.test-d.ts'], tsconfig: './tsconfig.json' },
        },
      },
      {
        // What a user's test runner sees: no IndexedDB classes on globalThis, only the factory
        // the test injects. test/support/setup.ts (the globals) must not run here.
        extends: true,
        test: {
          name: 'no-idb-globals',
          include: ['test/noGlobals/**/*.test.ts'],
        },
      },
    ],
  },
})
