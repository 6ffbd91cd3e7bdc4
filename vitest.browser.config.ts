import { defineConfig } from 'vitest/config'

// A real browser: Debian's Chromium driven by playwright-core, against the example app (built
// with Vite) and the real reference Flask server, both on 127.0.0.1.
export default defineConfig({
  test: {
    include: ['test/browser/**/*.browser.test.ts'],
    environment: 'node',
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
})
