// Two browsers (two Chromium contexts: two devices, each with its own IndexedDB) running the
// example app against the real server with real-time on and the sync interval at one hour: each
// sees the other's edits through the socket, never through the interval, within the B10 goal
// (edit to visible on the other device, p95 under 100 ms on loopback). SQLite with the socket
// server on a thread of app.py by default; RIS_SERVER_DATABASE=postgres RIS_SERVER_WORKERS=4 runs
// gunicorn with four workers and the socket process (LISTEN/NOTIFY) beside it.
//
// How it measures: each edit is a dispatch in page A, timed in page A (performance.timeOrigin +
// performance.now(), comparable across the pages of one machine), and its arrival is the first
// store notification in page B whose state holds it, timed in page B. No playwright round trip
// and no polling is inside a measurement. Along the way each page notes when its requests start
// and end and when the poke arrived, so a failure prints where the time went (docs/realtime.md,
// "Where the time goes").
//
// What it asserts: every edit arrives, through pokes, with the interval never firing, and p95
// under the B10 goal of 100 ms. When other work used more than a quarter of the machine during
// the measurement (read from /proc), the goal is reported and a regression bound of 1 s is
// asserted instead: on two shared cores every step also waits for a core. Measured on the 2-core
// machine this was written on, with nothing else running: p95 61-77 ms on SQLite and 66-91 ms on
// PostgreSQL with 4 workers (docs/realtime.md, "Where the time goes"). REALTIME_GOAL=1 asserts
// the goal even on a busy machine.
import { readdirSync, readFileSync } from 'node:fs'
import type { Server } from 'node:http'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, expect, test } from 'vitest'
// @ts-expect-error: a plain ESM script without type declarations
import { buildExample, serveStatic } from '../../examples/web/serve.mjs'
import { startFlaskServer, type FlaskServer } from '../e2e/flaskServer'
import { launchChromium } from './chromium'

/** The B10 goal (README, docs/realtime.md). */
const GOAL_P95_MS = 100
/** Edits timed, alternating A→B and B→A, after the warm-up. */
const EDITS = 30
/** Edits first, one each way through the UI and then by dispatch, not counted: the first ones meet cold code paths and connections. */
const WARM_UP = 4
/**
 * The way from an edit to the other page crosses six processes (two renderers, the browser's
 * IndexedDB and network service, the API, the socket server), and on a shared machine each step
 * also waits for a core. When processes other than this test's (its own worker, the browser and
 * the servers it started) used more than this share of the machine's CPU time during the
 * measurement, the machine was busy: the bound is BUSY_P95_MS, else the goal.
 */
const BUSY_OTHERS_SHARE = 0.25
/** The bound on a busy machine (other work over BUSY_OTHERS_SHARE): a regression bound, not the goal. */
const BUSY_P95_MS = 1000

/**
 * Starts measuring the CPU time other processes use (Linux /proc): the machine's busy time less
 * that of this process and its descendants. The returned function stops and answers their share
 * of the machine, from 0 to 1 (null without /proc).
 */
function measureOthers(): () => number | null {
  /** The machine's CPU time since boot, all cores: busy and in total (idle and iowait included), in ticks. */
  const machine = (): { busy: number; total: number } => {
    const [user, nice, system, idle, iowait, irq, softirq, steal] = readFileSync('/proc/stat', 'utf8')
      .split('\n')[0]!
      .trim()
      .split(/\s+/)
      .slice(1, 9)
      .map(Number)
    const busy = user! + nice! + system! + irq! + softirq! + steal!
    return { busy, total: busy + idle! + iowait! }
  }
  /** utime + stime of this process and every descendant alive now, per pid. */
  const ours = (): Map<number, number> => {
    const parent = new Map<number, number>()
    const time = new Map<number, number>()
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue
      try {
        const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
        parent.set(Number(entry), Number(fields[1]))
        time.set(Number(entry), Number(fields[11]) + Number(fields[12]))
      } catch {
        // gone meanwhile
      }
    }
    const mine = new Map<number, number>()
    for (const pid of time.keys()) {
      for (let p: number | undefined = pid; p !== undefined && p > 1; p = parent.get(p)) {
        if (p === process.pid) {
          mine.set(pid, time.get(pid)!)
          break
        }
      }
    }
    return mine
  }
  try {
    const before = machine()
    const oursBefore = ours()
    return () => {
      let oursUsed = 0
      for (const [pid, ticks] of ours()) oursUsed += ticks - (oursBefore.get(pid) ?? 0)
      const after = machine()
      const total = after.total - before.total
      return total <= 0 ? null : Math.min(1, Math.max(0, (after.busy - before.busy - oursUsed) / total))
    }
  } catch {
    return () => null
  }
}

let flask: FlaskServer
let web: Server
let browser: Browser
let pages: Page[] = []

/** In each page, before the app: a clock, a log of fetches and socket messages, and the time each note text first reached the store. */
function instrument(): void {
  const now = (): number => performance.timeOrigin + performance.now()
  const w = window as unknown as Record<string, unknown> & { notesExample?: NotesExample }
  const log: Array<Record<string, unknown>> = []
  const seen: Record<string, number> = {}
  Object.assign(w, { risNow: now, risLog: log, risSeen: seen })
  const plainFetch = window.fetch.bind(window)
  window.fetch = async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = input instanceof Request ? input.url : String(input)
    const method = init?.method ?? (input instanceof Request ? input.method : 'GET')
    const start = now()
    const response = await plainFetch(input, init)
    log.push({ kind: 'fetch', path: new URL(url).pathname.replace(/^.*\/api/, ''), method, start, end: now() })
    return response
  }
  const PlainWebSocket = window.WebSocket
  window.WebSocket = class extends PlainWebSocket {
    constructor(url: string | URL, protocols?: string | string[]) {
      super(url, protocols)
      this.addEventListener('message', (event) => log.push({ kind: 'socket', at: now(), data: String(event.data) }))
    }
    override send(data: string | ArrayBufferLike | Blob | ArrayBufferView): void {
      log.push({ kind: 'socket-sent', at: now(), data: String(data) })
      super.send(data)
    }
  }
  const attach = (): void => {
    const example = w.notesExample
    if (!example) return void setTimeout(attach, 1)
    example.persistence.subscribeEvents((event) => {
      if (event.type === 'committed') log.push({ kind: 'committed', at: now() })
    })
    example.store.subscribe(() => {
      const { entities } = example.store.getState().notes
      for (const id in entities) {
        const text = entities[id]!.text
        if (!(text in seen)) seen[text] = now()
      }
    })
  }
  attach()
}

/** What the example puts on `window.notesExample` (examples/web/main.tsx), as far as this test uses it. */
interface NotesExample {
  store: { getState(): { notes: { entities: Record<string, { text: string }> } }; dispatch(action: unknown): void; subscribe(listener: () => void): () => void }
  persistence: { subscribeEvents(listener: (event: { type: string }) => void): () => void; sync: { clockOffsetMs: number } }
  monitor: { getSyncMetrics(): { pokes: number; pokePulls: number; p95VisibleLatency: number } }
  autoSync: { nextSyncAt(): number | null }
  actions: { saveNote(note: { id: string; text: string }): unknown }
}
type Instrumented = Window & { notesExample: NotesExample; risNow(): number; risLog: Array<Record<string, unknown>>; risSeen: Record<string, number> }

beforeAll(async () => {
  // Without the testing endpoints: with them the server writes a request counter to its
  // database on every request, which a production server never does.
  flask = await startFlaskServer({ tokens: { 'browser-token': 'alice' }, realtime: true, testingEndpoints: false })
  const dist = (await buildExample()) as string
  web = (await serveStatic(dist)) as Server
  const { port } = web.address() as { port: number }
  // Real-time on, the interval at one hour; the debounce and settle are the example's real-time
  // defaults (0 and 0, as in bench B10); REALTIME_DEBOUNCE_MS=300 REALTIME_SETTLE_MS=1000 measures
  // the library's defaults (docs/realtime.md, "Where the time goes").
  const query = new URLSearchParams({
    api: flask.baseUrl,
    realtime: flask.realtimeUrl!,
    token: 'browser-token',
    interval: '3600000',
    ...(process.env.NODASH ? { nodash: '1' } : {}),
    ...(process.env.REALTIME_DEBOUNCE_MS ? { debounce: process.env.REALTIME_DEBOUNCE_MS } : {}),
    ...(process.env.REALTIME_SETTLE_MS ? { settle: process.env.REALTIME_SETTLE_MS } : {}),
  })
  browser = await launchChromium()
  pages = await Promise.all(
    [0, 1].map(async () => {
      const page = await (await browser.newContext()).newPage()
      await page.addInitScript(instrument)
      await page.goto(`http://127.0.0.1:${port}/?${query.toString()}`)
      return page
    }),
  )
})

afterAll(async () => {
  await browser?.close()
  web?.close()
  await flask?.close()
})

const realtimeText = (page: Page) => page.getByTestId('realtime').textContent({ timeout: 20_000 })
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Waits until `page`'s store holds a note with `text`; returns when it first did, on the page's clock. */
async function arrival(page: Page, text: string): Promise<number> {
  await page.waitForFunction((wanted) => wanted in (window as unknown as Instrumented).risSeen, text, { polling: 20, timeout: 10_000 })
  return page.evaluate((wanted) => (window as unknown as Instrumented).risSeen[wanted]!, text)
}

/** One edit: a dispatch in `from`, timed there; its arrival in `to`'s store, timed there. Returns the latency and where it went. */
async function edit(from: Page, to: Page, text: string): Promise<{ ms: number; phases: Record<string, number> }> {
  for (const page of [from, to]) await page.evaluate(() => void (window as unknown as Instrumented).risLog.splice(0))
  const sent = await from.evaluate(
    (note) => {
      const w = window as unknown as Instrumented
      const at = w.risNow()
      w.notesExample.store.dispatch(w.notesExample.actions.saveNote(note))
      return at
    },
    { id: `n-${text.replace(/\W/g, '-')}`, text },
  )
  const seen = await arrival(to, text)
  const [fromLog, toLog] = await Promise.all([from, to].map((page) => page.evaluate(() => (window as unknown as Instrumented).risLog)))
  return { ms: seen - sent, phases: phasesOf(sent, seen, fromLog!, toLog!) }
}

/** Where one edit's time went (docs/realtime.md, "Where the time goes"); NaN for a step not seen. */
function phasesOf(sent: number, seen: number, fromLog: Array<Record<string, unknown>>, toLog: Array<Record<string, unknown>>): Record<string, number> {
  const committed = fromLog.find((e) => e.kind === 'committed')?.at as number | undefined
  const push = fromLog.find((e) => e.kind === 'fetch' && e.path === '/sync/push')
  const poke = toLog.find((e) => e.kind === 'socket' && String(e.data).includes('"poke"'))
  const pokedAt = poke ? Number((JSON.parse(String(poke.data)) as { at: number }).at) : NaN
  const after = (poke?.at as number) ?? Infinity
  // The pull after the poke: over the socket (a `pull` frame, answered by `changes`) when the
  // server offers it, else `POST /sync/changes`.
  const asked = toLog.find((e) => e.kind === 'socket-sent' && String(e.data).includes('"type":"pull"') && (e.at as number) >= after)
  const id = asked ? (JSON.parse(String(asked.data)) as { id: string }).id : null
  const answered =
    asked &&
    toLog.find(
      (e) =>
        e.kind === 'socket' &&
        String(e.data).startsWith('{') &&
        String(e.data).includes('"changes"') &&
        (JSON.parse(String(e.data)) as { id?: string }).id === id,
    )
  const pull = answered
    ? { start: asked.at, end: answered.at }
    : toLog.find((e) => e.kind === 'fetch' && e.path === '/sync/changes' && (e.start as number) >= after)
  return {
    'debounce + local write': (committed ?? NaN) - sent,
    'to the push request': (push?.start as number) - (committed ?? NaN),
    'push until the server published': pokedAt - (push?.start as number),
    'poke on the wire': (poke?.at as number) - pokedAt,
    'poke to the pull request': (pull?.start as number) - (poke?.at as number),
    pull: (pull?.end as number) - (pull?.start as number),
    'into IndexedDB and the store': seen - (pull?.end as number),
  }
}

const quantile = (sorted: number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!
const ms = (x: number): string => (Number.isFinite(x) ? x.toFixed(0) : '-')

test('two browsers see each other’s edits over the socket, with the interval at one hour; edit to visible timed in the pages', async () => {
  const [a, b] = pages as [Page, Page]
  for (const page of [a, b]) {
    await expect.poll(() => realtimeText(page), { timeout: 20_000 }).toMatch(/Real-time: open/)
    await expect.poll(() => page.getByTestId('next-sync').textContent(), { timeout: 5000 }).toMatch(/Next sync: \d+ s/)
  }
  const run = Date.now().toString(36)
  // Warm-up: the first edit each way through the UI (typed and added, as a user does), then by dispatch.
  for (const [i, [from, to]] of (
    [
      [a, b],
      [b, a],
    ] as const
  ).entries()) {
    const text = `typed ${i} ${run}`
    await from.getByLabel('New note', { exact: true }).fill(text)
    await from.getByRole('button', { name: 'Add' }).click()
    await arrival(to, text)
  }
  for (let i = 2; i < WARM_UP; i++) await edit(i % 2 === 0 ? a : b, i % 2 === 0 ? b : a, `warm-up ${i} ${run}`)

  const samples: Array<{ direction: string; ms: number; phases: Record<string, number> }> = []
  const othersUsed = measureOthers()
  for (let i = 0; i < EDITS; i++) {
    const [from, to, direction] = i % 2 === 0 ? [a, b, 'A→B'] : [b, a, 'B→A']
    samples.push({ direction, ...(await edit(from, to, `edit ${i} ${run}`)) })
    await pause(200) // the previous edit's last work (the writer's own poke and pull) settles first
  }

  const others = othersUsed()
  const busy = others !== null && others > BUSY_OTHERS_SHARE
  const goal = process.env.REALTIME_GOAL === '1'
  const all = samples.map((s) => s.ms).sort((x, y) => x - y)
  const p50 = quantile(all, 0.5)
  const p95 = quantile(all, 0.95)
  const where = `${flask.backend}, ${flask.workers || 1} API worker(s)`
  const machine = others === null ? 'other work not measured' : `other work used ${(others * 100).toFixed(0)} % of the CPU${busy ? ': busy' : ''}`
  const lines = [
    `[realtime.browser] edit-to-visible across two Chromium pages, ${all.length} edits (${where}; ${machine}): p50 ${ms(p50)} ms, p95 ${ms(p95)} ms, max ${ms(all.at(-1)!)} ms; the B10 goal (p95 < ${GOAL_P95_MS} ms) ${p95 < GOAL_P95_MS ? 'met' : 'NOT met'}${goal || !busy ? ' (asserted)' : ` (not asserted on a busy machine; p95 < ${BUSY_P95_MS} ms is)`}`,
  ]
  for (const direction of ['A→B', 'B→A']) {
    const mine = samples
      .filter((s) => s.direction === direction)
      .map((s) => s.ms)
      .sort((x, y) => x - y)
    lines.push(`  ${direction}: p50 ${ms(quantile(mine, 0.5))} ms, p95 ${ms(quantile(mine, 0.95))} ms: ${mine.map(ms).join(', ')}`)
  }
  lines.push('  where the time went (p50 / p95 of each step, ms):')
  for (const phase of Object.keys(samples[0]!.phases)) {
    const values = samples.map((s) => s.phases[phase]!).filter(Number.isFinite)
    values.sort((x, y) => x - y)
    lines.push(`    ${phase.padEnd(34)} ${ms(quantile(values, 0.5)).padStart(4)} / ${ms(quantile(values, 0.95)).padStart(4)}`)
  }
  const metrics = await Promise.all([a, b].map((page) => page.evaluate(() => (window as unknown as Instrumented).notesExample.monitor.getSyncMetrics())))
  const offsets = await Promise.all([a, b].map((page) => page.evaluate(() => (window as unknown as Instrumented).notesExample.persistence.sync.clockOffsetMs)))
  lines.push(
    `  the monitor's p95VisibleLatency (server publish to store, server clock): A ${ms(metrics[0]!.p95VisibleLatency)} ms, B ${ms(metrics[1]!.p95VisibleLatency)} ms; measured clock offsets (one machine: truly 0) A ${ms(offsets[0]!)} ms, B ${ms(offsets[1]!)} ms`,
  )
  lines.push(`  ${await realtimeText(a)} | ${await realtimeText(b)}`)
  console.error(lines.join('\n'))

  // The interval never fired: it is an hour, and the next tick is still most of an hour away.
  for (const page of [a, b]) {
    const next = await page.evaluate(() => (window as unknown as Instrumented).notesExample.autoSync.nextSyncAt())
    expect(next! - Date.now()).toBeGreaterThan(3_000_000)
    expect(await realtimeText(page)).toMatch(/pokes/)
  }
  expect(metrics.every((m) => m.pokePulls > 0)).toBe(true)
  expect(p95, lines.join('\n')).toBeLessThan(goal || !busy ? GOAL_P95_MS : BUSY_P95_MS)
})
