import { defineConfig } from 'vitest/config'

// End-to-end: the built library (dist/) on fake-indexeddb against the real reference Flask
// server, which each test file starts on a free 127.0.0.1 port and stops afterwards.
export default defineConfig({
  test: {
    include: ['test/e2e/**/*.e2e.test.ts'],
    environment: 'node',
    setupFiles: ['test/support/setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 30_000,
    fileParallelism: false,
  },
})
