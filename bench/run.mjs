#!/usr/bin/env node
// `npm run bench [-- --quick] [-- B1 B3 ...]`: bundles the TypeScript benchmarks with esbuild
// (the library from src/, as the tests use it) and runs the Node half, then the Chromium half.
import { build } from 'esbuild'
import { spawnSync } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const out = join(root, 'node_modules', '.cache', 'redux-idb-sync-bench')
mkdirSync(out, { recursive: true })
const args = process.argv.slice(2)

await build({
  entryPoints: [join(root, 'bench/node/index.ts')],
  outfile: join(out, 'node.mjs'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  packages: 'external',
  alias: { 'redux-idb-sync': join(root, 'src') },
  define: { 'process.env.NODE_ENV': '"production"' },
  logLevel: 'warning',
})
const node = spawnSync(process.execPath, ['--expose-gc', join(out, 'node.mjs'), ...args], { stdio: 'inherit', env: { ...process.env, RIS_REPO_ROOT: root } })
if (node.status !== 0) process.exit(node.status ?? 1)
