import { spawnSync } from 'node:child_process'
import { resolve } from 'node:path'
import { describe, expect, test } from 'vitest'

// `npm run demo` as a first impression (dist/ is built by `npm run test:e2e`).
const root = resolve(import.meta.dirname, '..', '..')

describe.each(['flask', 'mock'])('npm run demo against the %s server', (kind) => {
  test('tells its story without noise: no RTK timing warnings, live progress, both conflicts, exit 0', () => {
    const run = spawnSync(process.execPath, ['demo/run.mjs'], {
      cwd: root,
      encoding: 'utf8',
      timeout: 120_000,
      env: { ...process.env, ...(kind === 'mock' ? { DEMO_SERVER: 'mock' } : {}) },
    })
    const out = `${run.stdout}${run.stderr}`
    expect(run.status, out).toBe(0)
    expect(out).toContain('demo finished')
    expect(out).not.toMatch(/InvariantMiddleware took/)
    expect(out).not.toMatch(/changeCounter \d+ →/)
    expect(out).toMatch(/alice conflict on files:file-1, found while pushing: strategy server-wins → server/)
    expect(out).toMatch(/state\.sync\.conflicts holds it .*local\.body "alice's offline edit"/)
    expect(out).toMatch(/bob conflict on files:file-2, .*strategy custom → merged/)
    expect(out).toContain(`alice's auto-sync pulled the merge: she shows "alice's line + bob's offline line"`)
    // Progress is printed as it happens: the push bar's lines carry their own, increasing times.
    const times = [...out.matchAll(/\[\s*([\d.]+) s\] alice push \[/g)].map((m) => Number(m[1]))
    expect(times.length).toBeGreaterThanOrEqual(10)
    expect(new Set(times).size).toBeGreaterThan(times.length / 2)
    expect([...times].sort((x, y) => x - y)).toEqual(times)
  })
})
