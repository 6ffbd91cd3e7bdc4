import { defineConfig } from 'vitest/config'
import { reliabilityTests } from './vitest.reliability.config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'test/**/*.test.tsx'],
    // The slow reliability tests run in `npm run test:reliability` (.ci/run), not in `npm test`.
    exclude: ['test/e2e/**', 'test/browser/**', 'node_modules/**', ...reliabilityTests],
    environment: 'node',
    setupFiles: ['test/support/setup.ts'],
    typecheck: { enabled: true, include: ['test/**/*.test-d.ts'], tsconfig: './tsconfig.json' },
    restoreMocks: true,
    testTimeout: 20_000,
  },
})
