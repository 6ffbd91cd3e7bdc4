// S1 (issue 17): what a bundler ships. Builds the package as it is published (`npm run build`,
// tsup) and runs size-limit on it: the tool and the checks `npm test` budgets with
// (package.json "size-limit": esbuild, minified, brotli; @reduxjs/toolkit and immer left out as
// peers, idb and ky counted). The rows name the checks by what they import, not by their budgets.
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Fact } from '../lib/harness'

interface Check {
  readonly path: string | readonly string[]
  readonly import?: string | Readonly<Record<string, string>>
}

interface Measured {
  readonly name: string
  readonly size: number
}

const kB = (bytes: number): string => `${(bytes / 1000).toFixed(2)} kB (${bytes.toLocaleString('en')} B)`

/** S1: the brotli size of a local-only bundle and of the whole core entry, against issue 17's goal. */
export async function s1(): Promise<Fact[]> {
  const root = process.env.RIS_REPO_ROOT ?? process.cwd()
  const build = spawnSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] })
  if (build.status !== 0) throw new Error('S1: npm run build failed')
  // Exits 1 when a budget is exceeded; the JSON still holds every check.
  const run = spawnSync(join(root, 'node_modules', '.bin', 'size-limit'), ['--json'], { cwd: root, encoding: 'utf8' })
  const measured = JSON.parse(run.stdout) as Measured[]
  const checks = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { 'size-limit': Check[] })['size-limit']
  const sizeOf = (what: string, match: (check: Check) => boolean): number => {
    const size = measured[checks.findIndex(match)]?.size
    if (size === undefined) throw new Error(`S1: package.json has no size-limit check for ${what}`)
    return size
  }
  const localOnly = sizeOf('createPersistenceMiddleware alone', (c) => c.path === 'dist/index.js' && c.import === '{ createPersistenceMiddleware }')
  const core = sizeOf('the whole core entry', (c) => c.path === 'dist/index.js' && c.import === '*')
  const remote = sizeOf('the whole remote entry', (c) => c.path === 'dist/remote.js' && c.import === '*')
  const synced = sizeOf(
    'createPersistenceMiddleware + createRemote',
    (c) => typeof c.import === 'object' && c.import['dist/index.js'] === '{ createPersistenceMiddleware }' && c.import['dist/remote.js'] === '{ createRemote }',
  )
  return [
    {
      id: 'S1',
      title: 'bundle of a local-only app: createPersistenceMiddleware alone, with idb (minified + brotli, size-limit)',
      value: kB(localOnly),
      target: '<= 8 kB',
      met: localOnly <= 8000,
    },
    {
      id: 'S1',
      title: 'the whole core entry, everything it exports (no sync engine, no ky)',
      value: kB(core),
      target: '<= 20 kB',
      met: core <= 20_000,
    },
    {
      id: 'S1',
      title: 'bundle of a synced app: createPersistenceMiddleware + createRemote, with idb and ky',
      value: kB(synced),
      target: 'reported',
      met: null,
    },
    { id: 'S1', title: 'the whole remote entry, with the core chunks it shares', value: kB(remote), target: 'reported', met: null },
  ]
}
