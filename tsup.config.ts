import { defineConfig } from 'tsup'

export default defineConfig({
  entry: { index: 'src/index.ts', remote: 'src/remote/index.ts', react: 'src/react/index.ts', testing: 'src/testing/index.ts' },
  format: ['esm', 'cjs'],
  dts: true,
  tsconfig: 'tsconfig.build.json',
  target: 'es2022',
  platform: 'neutral',
  sourcemap: true,
  clean: true,
  splitting: true,
  treeshake: true,
  external: ['@reduxjs/toolkit', 'idb', 'immer', 'ky', 'msw', 'react', 'react-dom', 'react-redux', 'react/jsx-runtime'],
})
