import type { Server } from 'node:http'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, expect, test } from 'vitest'
// @ts-expect-error: a plain ESM script without type declarations
import { buildExample, serveStatic } from '../../examples/web/serve.mjs'
import { startFlaskServer, type FlaskServer } from '../e2e/flaskServer'
import { launchChromium } from './chromium'

/** Where the badge screenshot goes; docs/optimistic-updates.md shows it. */
const SCREENSHOT = 'docs/images/rejected-badge.png'

let flask: FlaskServer
let web: Server
let browser: Browser
let page: Page
let url: string

beforeAll(async () => {
  flask = await startFlaskServer()
  const dist = (await buildExample()) as string
  web = (await serveStatic(dist)) as Server
  url = `http://127.0.0.1:${(web.address() as { port: number }).port}/?api=${encodeURIComponent(flask.baseUrl)}`
  browser = await launchChromium()
  page = await (await browser.newContext({ viewport: { width: 1000, height: 1300 } })).newPage()
})

afterAll(async () => {
  await browser?.close()
  web?.close()
  await flask?.close()
})

async function eventually(check: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await page.waitForTimeout(50)
  }
}

const noteIds = () => page.$$eval('ul[aria-label="Note list"] li', (items) => items.map((li) => li.getAttribute('data-id') ?? ''))
const noteText = (id: string) => page.getByLabel(`Note ${id}`, { exact: true }).inputValue()
const badge = (id: string) => page.getByTestId(`badge-${id}`)
const badgeState = async (id: string) => (await badge(id).getAttribute('data-state')) ?? ''
const serverText = async (id: string) => ((await (await fetch(`${flask.baseUrl}/items/notes/${id}`)).json()) as { value: { text: string } }).value.text

test('each note shows pending, then synced; a change the server refuses rolls back to the server text with the reason', async () => {
  await page.goto(url)
  await eventually(async () => /Connected/.test((await page.getByTestId('connection').textContent()) ?? ''), 'the first health check')

  // Pending while the server answers 503 (the push is retried), synced once it is applied.
  await flask.failNext(4, 503)
  await page.getByLabel('New note', { exact: true }).fill('groceries')
  await page.getByRole('button', { name: 'Add' }).click()
  await eventually(async () => (await noteIds()).length === 1, 'the note')
  const [id] = await noteIds()
  await eventually(async () => (await badgeState(id!)) === 'pending', 'the pending badge')
  expect(await badge(id!).textContent()).toBe('Saving…')
  await eventually(async () => (await badgeState(id!)) === 'synced', 'the synced badge', 30_000)
  expect(await badge(id!).textContent()).toBe('Saved')
  expect(await serverText(id!)).toBe('groceries')

  // The server refuses the next requests for good (422): the edit is rejected and rolled back.
  await flask.failNext(2, 422)
  await page.getByLabel(`Note ${id}`, { exact: true }).fill('groceries, refused')
  await eventually(async () => (await badgeState(id!)) === 'rejected', 'the rejected badge', 30_000)
  expect(await noteText(id!)).toBe('groceries')
  expect(await badge(id!).textContent()).toContain('injected failure (422)')
  expect(await badge(id!).textContent()).toContain('the server’s version is shown')
  expect(await serverText(id!)).toBe('groceries')
  const rejected = page.getByRole('list', { name: 'Rejected changes' })
  expect(await rejected.textContent()).toContain(`notes:${id}`)
  await page.screenshot({ path: SCREENSHOT, fullPage: false })

  // The rollback is in IndexedDB too: a reload shows the server's text and the rejection.
  await page.reload()
  await eventually(async () => (await noteIds()).length === 1, 'hydration')
  expect(await noteText(id!)).toBe('groceries')
  await eventually(async () => (await badgeState(id!)) === 'rejected', 'the rejected badge after the reload')

  // Discard: the note is synced again.
  await page.getByRole('button', { name: 'Discard' }).click()
  await eventually(async () => (await badgeState(id!)) === 'synced', 'synced after discard')
})
