import type { Server } from 'node:http'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, expect, test } from 'vitest'
// @ts-expect-error: a plain ESM script without type declarations
import { buildExample, serveStatic } from '../../examples/web/serve.mjs'
import { startFlaskServer, type FlaskServer } from '../e2e/flaskServer'
import { launchChromium } from './chromium'

/** Where the dashboard screenshot goes; README.md shows it. */
export const SCREENSHOT = 'docs/images/dashboard.png'

let flask: FlaskServer
let web: Server
let browser: Browser
let page: Page
let url: string

beforeAll(async () => {
  flask = await startFlaskServer()
  const dist = (await buildExample()) as string
  web = (await serveStatic(dist)) as Server
  const address = web.address() as { port: number }
  url = `http://127.0.0.1:${address.port}/?api=${encodeURIComponent(flask.baseUrl)}`
  browser = await launchChromium()
  page = await (await browser.newContext({ viewport: { width: 1000, height: 1300 } })).newPage()
})

afterAll(async () => {
  await browser?.close()
  web?.close()
  await flask?.close()
})

interface Row {
  id: string
  text: string
}

async function notes(): Promise<Row[]> {
  return page.$$eval('ul[aria-label="Note list"] li', (items) =>
    items.map((li) => ({ id: li.getAttribute('data-id') ?? '', text: (li.querySelector('input') as HTMLInputElement).value })),
  )
}

async function serverNotes(): Promise<Record<string, string | null>> {
  const response = await fetch(`${flask.baseUrl}/sync/changes?since=0&limit=1000`)
  const body = (await response.json()) as { changes: Array<{ id: string; deleted: boolean; value: { text: string } | null }> }
  return Object.fromEntries(body.changes.map((c) => [c.id, c.deleted ? null : (c.value?.text ?? null)]))
}

const text = (testId: string) => page.getByTestId(testId).textContent()

async function addNote(value: string): Promise<void> {
  await page.getByLabel('New note', { exact: true }).fill(value)
  await page.getByRole('button', { name: 'Add' }).click()
}

async function editNote(from: string, to: string): Promise<string> {
  const row = (await notes()).find((n) => n.text === from)!
  await page.getByLabel(`Note ${row.id}`, { exact: true }).fill(to)
  return row.id
}

async function eventually(check: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await page.waitForTimeout(100)
  }
}

test('notes persist in real IndexedDB, survive the server going away, drain when it returns, and a conflict is resolved from the UI', async () => {
  await page.goto(url)
  await eventually(async () => /Connected/.test((await text('connection')) ?? ''), 'the first health check')

  // 1. Edit items; they are persisted and pushed.
  await addNote('first')
  await addNote('second')
  await editNote('first', 'first, edited')
  await eventually(
    async () =>
      Object.values(await serverNotes())
        .sort()
        .join('|') === 'first, edited|second',
    'the push',
  )
  await eventually(async () => (await text('outbox-depth')) === '0', 'an empty outbox')

  // 2. Stop the server, reload: the notes come back from IndexedDB (the server cannot serve them).
  await flask.stop()
  await page.reload()
  await eventually(async () => (await notes()).length === 2, 'hydration from IndexedDB')
  expect((await notes()).map((n) => n.text).sort()).toEqual(['first, edited', 'second'])
  await eventually(async () => /Offline — local-only mode/.test((await text('connection')) ?? ''), 'local-only mode')

  // 3. Edits continue locally; the outbox grows.
  await addNote('third, written offline')
  await eventually(async () => Number(await text('outbox-depth')) >= 1, 'the outbox to grow')
  expect(await text('connection')).toMatch(/Offline/)

  // 4. Restart the server: the outbox drains to it.
  await flask.start()
  await eventually(
    async () => (await serverNotes())['x'] !== undefined || Object.values(await serverNotes()).includes('third, written offline'),
    'the drain',
    30_000,
  )
  await eventually(async () => (await text('outbox-depth')) === '0' && /Connected/.test((await text('connection')) ?? ''), 'reconnection')

  // 5. Another device changes "second" on the server; this tab edits it too: a manual conflict.
  const second = (await notes()).find((n) => n.text === 'second')!
  const current = (await (await fetch(`${flask.baseUrl}/items/notes/${second.id}`)).json()) as { version: number }
  const other = await fetch(`${flask.baseUrl}/items/notes/${second.id}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      opId: 'other-device-1',
      value: { id: second.id, text: 'second, from another device' },
      baseVersion: current.version,
      clientTime: Date.now(),
    }),
  })
  expect(other.status).toBe(200)
  await editNote('second', 'second, edited here')
  const conflicts = page.getByRole('list', { name: 'Conflicts' })
  await conflicts.waitFor({ timeout: 20_000 })
  expect(await conflicts.textContent()).toContain('second, from another device')
  await page.screenshot({ path: SCREENSHOT, fullPage: true })
  await page.getByRole('button', { name: 'Keep mine' }).click()
  await eventually(async () => (await serverNotes())[second.id] === 'second, edited here', 'the resolution reaching the server')
  await eventually(async () => (await page.getByRole('list', { name: 'Conflicts' }).count()) === 0, 'the conflict list to clear')
})
