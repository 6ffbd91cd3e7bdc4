import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vite'

const src = (path: string): string => fileURLToPath(new URL(`../../src/${path}`, import.meta.url))

// The example builds against the library's source, so it always shows the current code.
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  esbuild: { jsx: 'automatic', jsxDev: !!process.env.EXAMPLE_REACT_DEV },
  // A production build, as an app ships it, whoever builds it: under vitest NODE_ENV is 'test',
  // which Vite would pass on and React would answer with its (several times slower) development build.
  define: process.env.EXAMPLE_REACT_DEV ? {} : { 'process.env.NODE_ENV': JSON.stringify('production') },
  resolve: {
    alias: [
      { find: /^redux-idb-sync\/react$/, replacement: src('react/index.ts') },
      { find: /^redux-idb-sync\/remote$/, replacement: src('remote/index.ts') },
      { find: /^redux-idb-sync$/, replacement: src('index.ts') },
    ],
  },
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2022' },
  logLevel: 'warn',
})
