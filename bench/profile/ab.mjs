#!/usr/bin/env node
// Before/after of a change to the library, in one process:
//
//   node bench/profile/ab.mjs [<git-ref>=HEAD] [B1 B5 B7 B16 commit] [--quick]
//
// Bundles bench/profile/ab.ts with esbuild as bench/run.mjs does, with src/ of <git-ref>
// (extracted with `git archive`) as 'ris-before' and the working tree's src/ as 'ris-after', and
// runs it under `node --expose-gc` with NODE_ENV=production: each case runs both versions side by
// side, alternating, and prints after ÷ before (the median of the per-round ratios, min–max).
import { build } from 'esbuild'
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdirSync, rmSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const out = join(root, 'node_modules', '.cache', `redux-idb-sync-ab-${basename(root)}`)
const args = process.argv.slice(2)
const ref = args.find((a) => !a.startsWith('--') && !/^(B\d+|commit)$/.test(a)) ?? 'HEAD'
const before = join(out, 'before')
rmSync(before, { recursive: true, force: true })
mkdirSync(before, { recursive: true })
execFileSync('sh', ['-c', `git -C "${root}" archive "${ref}" src | tar -x -C "${before}"`], { stdio: 'inherit' })
const bundle = join(out, 'ab.mjs')
await build({
  entryPoints: [join(root, 'bench/profile/ab.ts')],
  outfile: bundle,
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  packages: 'external',
  alias: { 'redux-idb-sync': join(root, 'src'), 'ris-after': join(root, 'src'), 'ris-before': join(before, 'src') },
  define: { 'process.env.NODE_ENV': '"production"' },
  logLevel: 'warning',
})
console.log(`before = src/ of ${ref} (${execFileSync('git', ['-C', root, 'rev-parse', '--short', ref]).toString().trim()}), after = the working tree`)
const child = spawnSync(process.execPath, ['--expose-gc', bundle, ...args.filter((a) => a !== ref)], {
  stdio: 'inherit',
  env: { ...process.env, NODE_ENV: 'production' },
})
process.exit(child.status ?? 1)
