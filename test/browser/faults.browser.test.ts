// Faults that only a real browser shows for real: Chromium's own quota, a page that dies between
// the IndexedDB commit and the push, and a database deleted under an open connection. The page
// (faults.page.ts) runs the library from src/ on Chromium's IndexedDB against the real Flask
// server; docs/reliability.md lists these beside their fake-indexeddb counterparts.
import { createServer, type Server } from 'node:http'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, beforeEach, expect, test } from 'vitest'
import { startFlaskServer, type FlaskServer } from '../e2e/flaskServer'
import { until } from '../support/instrumentedStore'
import { launchChromium } from './chromium'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
let flask: FlaskServer
let web: Server
let browser: Browser
let page: Page
let origin: string

beforeAll(async () => {
  flask = await startFlaskServer()
  const bundle = await build({
    entryPoints: [join(root, 'test/browser/faults.page.ts')],
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    target: 'chrome120',
    define: { 'process.env.NODE_ENV': '"production"' },
    logLevel: 'warning',
  })
  const script = bundle.outputFiles[0]!.contents
  web = createServer((request, response) => {
    if (request.url === '/page.js') {
      response.writeHead(200, { 'content-type': 'text/javascript' })
      response.end(script)
    } else {
      response.writeHead(200, { 'content-type': 'text/html' })
      response.end('<!doctype html><meta charset="utf-8"><title>faults</title><script type="module" src="/page.js"></script>')
    }
  })
  await new Promise<void>((resolve) => web.listen(0, '127.0.0.1', resolve))
  origin = `http://127.0.0.1:${(web.address() as { port: number }).port}`
  browser = await launchChromium()
  // A context of our own, so a test can open a second tab in the same profile.
  page = await (await browser.newContext()).newPage()
})

afterAll(async () => {
  await browser?.close()
  web?.close()
  await flask?.close()
})

beforeEach(async () => {
  // The page first: an instance of the last test must not push into the fresh server.
  await load()
  await flask.reset()
})

async function load(): Promise<void> {
  await page.goto(`${origin}/`)
  await page.waitForFunction(() => typeof window.harness === 'object')
}

async function serverTexts(): Promise<Record<string, string | null>> {
  const response = await fetch(`${flask.baseUrl}/sync/changes?since=0&limit=1000`)
  const body = (await response.json()) as { changes: Array<{ id: string; deleted: boolean; value: { text: string } | null }> }
  return Object.fromEntries(
    body.changes.map((c) => [c.id, c.deleted ? null : (c.value?.text.length ?? 0) > 40 ? `${c.value!.text.length} characters` : (c.value?.text ?? null)]),
  )
}

test('the quota runs out: StorageQuotaError, visibly; what fits is kept and synced; the rest lands once there is room', async () => {
  // Chromium's own quota, lowered for this origin to 256 KB: a 1 MB note does not fit. (An
  // override reaches only connections opened after it, so it comes first.)
  const cdp = await page.context().newCDPSession(page)
  await cdp.send('Storage.overrideQuotaForOrigin', { origin, quotaSize: 256 * 1024 })
  await page.evaluate((url) => window.harness.open(url, 'quota'), flask.baseUrl)
  await page.evaluate(() => window.harness.save('small', 'fits'))
  expect(await page.evaluate(() => window.harness.flush())).toBeNull()
  await page.evaluate(() => window.harness.save('big', 'x'.repeat(1024 * 1024)))
  expect(await page.evaluate(() => window.harness.flush())).toContain('StorageQuotaError')
  const status = await page.evaluate(() => window.harness.status())
  expect(status).toMatchObject({ lastError: 'StorageQuotaError', pending: 1 })
  expect(await page.evaluate(() => window.harness.errors())).toContain('StorageQuotaError')
  // The state keeps what the app dispatched; IndexedDB and the server hold what fit.
  expect(await page.evaluate(() => window.harness.texts())).toEqual({ small: 'fits', big: '1048576 characters' })
  expect(await page.evaluate(() => window.harness.stored('quota'))).toEqual(['small'])
  await until(async () => (await serverTexts()).small === 'fits', 'the small note on the server', 15_000)
  expect((await serverTexts()).big).toBeUndefined()
  // Room again: the queued write lands and is pushed; nothing was lost meanwhile.
  await cdp.send('Storage.overrideQuotaForOrigin', { origin })
  expect(await page.evaluate(() => window.harness.flush())).toBeNull()
  expect(await page.evaluate(() => window.harness.stored('quota'))).toEqual(['big', 'small'])
  await until(async () => (await serverTexts()).big === '1048576 characters', 'the big note on the server', 15_000)
  await page.evaluate(() => window.harness.dispose())
})

test('the page dies after the commit, before the push: after a reload the outbox goes out, each operation once', async () => {
  // A server nobody listens on: the commit succeeds, every push fails.
  const nowhere = 'http://127.0.0.1:9/api'
  await page.evaluate((url) => window.harness.open(url, 'crash'), nowhere)
  await page.evaluate(() => {
    window.harness.save('a', 'first')
    window.harness.save('b', 'second')
  })
  expect(await page.evaluate(() => window.harness.flush())).toBeNull()
  await until(async () => (await page.evaluate(() => window.harness.status())).outbox === 2, 'two entries in the outbox', 15_000)
  // The crash: the page goes away without disposing or flushing anything.
  await load()
  await page.evaluate((url) => window.harness.open(url, 'crash'), flask.baseUrl)
  expect(await page.evaluate(() => window.harness.texts())).toEqual({ a: 'first', b: 'second' })
  await until(async () => (await page.evaluate(() => window.harness.status())).outbox === 0, 'the outbox to drain', 15_000)
  expect(await serverTexts()).toEqual({ a: 'first', b: 'second' })
  expect((await flask.stats()).appliedOps).toBe(2)
  await page.evaluate(() => window.harness.dispose())
})

test('the database is deleted while open: DatabaseDeletedError, later changes land in a new database and survive a reload', async () => {
  await page.evaluate((url) => window.harness.open(url, 'deleted'), flask.baseUrl)
  await page.evaluate(() => window.harness.save('before', 'committed, then deleted'))
  expect(await page.evaluate(() => window.harness.flush())).toBeNull()
  // Our connection closes on `versionchange`, so the deletion is not blocked.
  expect(await page.evaluate(() => window.harness.deleteDatabase('deleted'))).toBe('deleted')
  await until(async () => (await page.evaluate(() => window.harness.errors())).includes('DatabaseDeletedError'), 'the DatabaseDeletedError', 15_000)
  expect((await page.evaluate(() => window.harness.status())).lastError).toBe('DatabaseDeletedError')
  await page.evaluate(() => window.harness.save('after', 'written to the new database'))
  expect(await page.evaluate(() => window.harness.flush())).toBeNull()
  expect(await page.evaluate(() => window.harness.stored('deleted'))).toEqual(['after'])
  await page.evaluate(() => window.harness.dispose())
  await load()
  await page.evaluate((url) => window.harness.open(url, 'deleted'), flask.baseUrl)
  expect(await page.evaluate(() => window.harness.texts())).toMatchObject({ after: 'written to the new database' })
  await page.evaluate(() => window.harness.dispose())
})

test('a logout in one tab: the other tab hears it on the BroadcastChannel, drops what is pending and stops; nothing recreates the database', async () => {
  const other = await page.context().newPage() // the same profile: a second tab
  try {
    await other.goto(`${origin}/`)
    await other.waitForFunction(() => typeof window.harness === 'object')
    await page.evaluate((url) => window.harness.open(url, 'logout'), flask.baseUrl)
    // The other tab's debounce is long enough that its edit is surely still in the window when the
    // first tab logs out (with 10 ms it could commit and be pushed before, on a loaded machine).
    await other.evaluate((url) => window.harness.open(url, 'logout', 5000), flask.baseUrl)
    await other.evaluate(() => window.harness.save('late', 'must go nowhere'))
    expect((await other.evaluate(() => window.harness.status())).pending).toBe(1)
    await page.evaluate(() => window.harness.clear())
    await until(async () => (await other.evaluate(() => window.harness.status())).disposed, 'the other tab to stop', 15_000)
    expect(await other.evaluate(() => window.harness.errors())).toContain('DatabaseDeletedError')
    await new Promise((resolve) => setTimeout(resolve, 300))
    const names = await page.evaluate(async () => (await indexedDB.databases()).map((d) => d.name))
    expect(names).not.toContain('logout')
    expect(await serverTexts()).toEqual({})
  } finally {
    await other.close()
  }
})
