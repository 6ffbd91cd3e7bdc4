// B10 (edit-to-visible) and B12 (fan-out) against the real server and socket server: SQLite with
// the socket server on a thread of app.py by default; RIS_SERVER_DATABASE=postgres
// RIS_SERVER_WORKERS=4 runs gunicorn with the socket process (LISTEN/NOTIFY) beside it.
import { configureStore } from '@reduxjs/toolkit'
import { WebSocket as NodeWebSocket } from 'ws'
import {
  createAutoSyncMiddleware,
  createPersistenceMiddleware,
  syncReducer,
  type AutoSyncMiddleware,
  type PersistenceMiddleware,
  type WebSocketConstructorLike,
} from 'redux-idb-sync'
import { createApiClient, createRemote } from 'redux-idb-sync/remote'
import { hasFlask, startFlaskServer, type FlaskServer } from '../../test/e2e/flaskServer'
import type { Fact } from '../lib/harness'
import { itemsSlice, makeItem, uniqueName, upsertOne } from '../lib/fixtures'
import type { Settings } from '../lib/settings'

const WebSocket = NodeWebSocket as unknown as WebSocketConstructorLike
const hasWebsockets = async (): Promise<boolean> => {
  const { spawnSync } = await import('node:child_process')
  return spawnSync(process.env.PYTHON ?? 'python3', ['-c', 'import websockets'], { stdio: 'ignore' }).status === 0
}

interface Device {
  store: ReturnType<typeof makeStore>['store']
  persistence: PersistenceMiddleware
  autoSync: AutoSyncMiddleware
}

function makeStore(settings: Settings, server: FlaskServer, mode: { realtime: boolean; intervalMs: number }) {
  const persistence = createPersistenceMiddleware({
    dbName: uniqueName('b10'),
    indexedDB: settings.factory(),
    slices: { items: { debounceMs: 0 } },
    remote: createRemote({
      baseUrl: server.baseUrl,
      timeoutMs: 30_000,
      ...(mode.realtime ? { realtime: { url: server.realtimeUrl!, WebSocket } } : {}),
    }),
    onError: (e) => console.error('bench B10:', e.name, e.message),
  })
  const autoSync = createAutoSyncMiddleware({ leader: 'always', intervalMs: mode.intervalMs, settleMs: 0, default: false, onError: () => {} })
  const store = configureStore({
    reducer: { items: itemsSlice.reducer, sync: syncReducer },
    middleware: (g) => g({ serializableCheck: false, immutableCheck: false }).concat(persistence, autoSync),
    enhancers: (g) => g().concat(persistence.enhancer),
  })
  return { store, persistence, autoSync }
}

function until(check: () => boolean, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const end = Date.now() + timeoutMs
    const look = (): void => {
      if (check()) resolve()
      else if (Date.now() > end) reject(new Error('timed out'))
      else setImmediate(look)
    }
    look()
  })
}

const quantile = (sorted: readonly number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!
const fmt = (ms: number): string => (ms >= 100 ? ms.toFixed(0) : ms.toFixed(1))

/** A edits one item; the time until B's store holds that version. Also returns how long B's interval still had to run at the edit. */
async function sample(a: Device, b: Device, i: number, rev: number): Promise<{ ms: number; waitMs: number | null }> {
  const item = makeItem(i, rev)
  const next = b.autoSync.nextSyncAt()
  const started = performance.now()
  const wall = Date.now()
  a.store.dispatch(upsertOne(item))
  await until(() => (b.store.getState().items.entities[item.id] as { rev?: number } | undefined)?.rev === rev, 120_000)
  return { ms: performance.now() - started, waitMs: next === null ? null : Math.max(0, next - wall) }
}

async function pair(settings: Settings, server: FlaskServer, mode: { realtime: boolean; intervalMs: number }): Promise<[Device, Device]> {
  const a = makeStore(settings, server, { realtime: false, intervalMs: 3_600_000 })
  const b = makeStore(settings, server, mode)
  await Promise.all([a.persistence.whenHydrated(), b.persistence.whenHydrated()])
  await until(() => a.store.getState().sync.status.flaskConnected && b.store.getState().sync.status.flaskConnected, 10_000)
  if (mode.realtime) await until(() => b.store.getState().sync.realtime.state === 'open', 10_000)
  return [a, b]
}

/** B10: edit on A until visible on B, over the socket and by interval polling at 1 s and 30 s. */
export async function b10(settings: Settings): Promise<Fact[]> {
  if (!hasFlask() || !(await hasWebsockets())) {
    return [{ id: 'B10', title: 'edit-to-visible', value: 'not run: python3 needs flask and websockets', target: '–', met: null }]
  }
  const server = await startFlaskServer({ realtime: true })
  const where = `${server.backend}${server.workers ? `, ${server.workers} gunicorn workers + socket process` : ', app.py + socket thread'}`
  try {
    const wsN = settings.quick ? 5 : 50
    const [a, b] = await pair(settings, server, { realtime: true, intervalMs: 3_600_000 })
    for (let w = 0; w < 3; w++) await sample(a, b, 9000 + w, 1) // warm-up
    const ws: number[] = []
    for (let i = 0; i < wsN; i++) ws.push((await sample(a, b, i, 1)).ms)
    await Promise.all([a.persistence.dispose(), b.persistence.dispose()])
    a.autoSync.dispose()
    b.autoSync.dispose()

    const pollN = settings.quick ? 3 : 20
    const intervalMs = settings.quick ? 300 : 1000
    const [c, d] = await pair(settings, server, { realtime: false, intervalMs })
    const poll: number[] = []
    const cost: number[] = []
    for (let i = 0; i < pollN; i++) {
      // A random phase against B's interval, as edits arrive in real use.
      await new Promise((r) => setTimeout(r, Math.random() * intervalMs))
      const s = await sample(c, d, 100 + i, 2)
      poll.push(s.ms)
      if (s.waitMs !== null && s.ms >= s.waitMs) cost.push(s.ms - s.waitMs)
    }
    await Promise.all([c.persistence.dispose(), d.persistence.dispose()])
    c.autoSync.dispose()
    d.autoSync.dispose()

    ws.sort((x, y) => x - y)
    poll.sort((x, y) => x - y)
    cost.sort((x, y) => x - y)
    const c50 = cost.length ? quantile(cost, 0.5) : 0
    const wsP95 = quantile(ws, 0.95)
    const pollP95 = quantile(poll, 0.95)
    return [
      {
        id: 'B10',
        title: `edit on A → visible in B's store, WebSocket (${where})`,
        value: `p50 ${fmt(quantile(ws, 0.5))} ms, p95 ${fmt(wsP95)} ms (n=${ws.length})`,
        target: 'p95 < 100 ms',
        met: settings.quick ? null : wsP95 < 100,
      },
      {
        id: 'B10',
        title: `edit on A → visible in B, interval polling every ${intervalMs / 1000} s (no socket)`,
        value: `p50 ${fmt(quantile(poll, 0.5))} ms, p95 ${fmt(pollP95)} ms (n=${poll.length}, random phase); WebSocket p95 is **${(pollP95 / wsP95).toFixed(0)}×** shorter`,
        target: '–',
        met: null,
      },
      {
        id: 'B10',
        title: 'edit on A → visible in B, interval polling every 30 s (the default)',
        value: `p50 ${fmt(15_000 + c50)} ms, p95 ${fmt(28_500 + c50)} ms: computed from a uniform arrival phase (wait 0.5 / 0.95 × 30 s) plus the measured median cost after a tick (${fmt(c50)} ms, n=${cost.length}); not sampled`,
        target: '–',
        met: null,
      },
    ]
  } finally {
    await server.close()
  }
}

/** B12: N open sockets, one write: until every client has pulled it. */
export async function b12(settings: Settings): Promise<Fact[]> {
  if (!hasFlask() || !(await hasWebsockets())) {
    return [{ id: 'B12', title: 'fan-out', value: 'not run: python3 needs flask and websockets', target: '–', met: null }]
  }
  const n = settings.quick ? 50 : 1000
  const server = await startFlaskServer({ realtime: true })
  const where = `${server.backend}${server.workers ? `, ${server.workers} gunicorn workers + socket process` : ', app.py + socket thread'}`
  // Protocol-level clients: the library's HTTP client for the pull, a raw socket each (1,000 full
  // stores with their IndexedDB in one process would measure fake-indexeddb, not the fan-out).
  const api = createApiClient({ baseUrl: server.baseUrl, timeoutMs: 60_000 })
  const sockets: NodeWebSocket[] = []
  try {
    const head = (await api.changes('0', { limit: 1 })).cursor
    // Write 1 measures delivery alone (clients only count the poke); write 2 the whole path (each
    // client pulls on its poke). All clients live in this one Node process, so the second number
    // includes this process starting 1,000 requests and the server answering them on 2 cores.
    const phase: { pull: 'none' | 'http' | 'socket'; started: number; poked: number; pulled: number; lastPoke: number; lastPull: number; rev: number } = {
      pull: 'none',
      started: 0,
      poked: 0,
      pulled: 0,
      lastPoke: 0,
      lastPull: 0,
      rev: -1,
    }
    const ready: Array<Promise<void>> = []
    for (let i = 0; i < n; i++) {
      const socket = new NodeWebSocket(server.realtimeUrl!)
      sockets.push(socket)
      let cursor = head
      ready.push(
        new Promise((resolve, reject) => {
          socket.on('open', () => socket.send(JSON.stringify({ type: 'hello', protocol: 1, token: null })))
          socket.on('error', reject)
          const took = (page: { cursor: string; changes: ReadonlyArray<{ value?: unknown }> }): void => {
            cursor = page.cursor
            if (page.changes.some((c) => (c.value as { rev?: number } | null)?.rev === phase.rev)) {
              phase.pulled++
              if (phase.pulled === n) phase.lastPull = performance.now() - phase.started
            }
          }
          socket.on('message', (data) => {
            const message = JSON.parse(String(data)) as { type: string; cursor: string; changes: Array<{ value?: unknown }> }
            if (message.type === 'ready') resolve()
            if (message.type === 'changes') took(message)
            if (message.type !== 'poke') return
            phase.poked++
            if (phase.poked === n) phase.lastPoke = performance.now() - phase.started
            if (phase.pull === 'http') void api.changes(cursor, { limit: 100 }).then(took)
            if (phase.pull === 'socket') socket.send(JSON.stringify({ type: 'pull', id: String(phase.rev), since: cursor, limit: 100 }))
          })
        }),
      )
    }
    await Promise.all(ready)
    const write = async (rev: number, pull: 'none' | 'http' | 'socket'): Promise<void> => {
      Object.assign(phase, { pull, poked: 0, pulled: 0, rev, started: performance.now() })
      await api.push('b12-writer', [
        {
          opId: `b12-${rev}-${Date.now()}`,
          collection: 'items',
          id: 'fan',
          type: 'put',
          value: { ...makeItem(1), rev },
          baseVersion: null,
          clientTime: Date.now(),
          force: true,
        },
      ])
      await until(() => phase.poked === n && (pull === 'none' || phase.pulled === n), 120_000)
    }
    await write(1, 'none')
    const delivered = phase.lastPoke
    await new Promise((r) => setTimeout(r, 500))
    await write(2, 'http')
    const overHttp = phase.lastPull
    await new Promise((r) => setTimeout(r, 500))
    await write(3, 'socket')
    return [
      {
        id: 'B12',
        title: `fan-out: ${n.toLocaleString('en')} open sockets, one write (${where})`,
        value: `every socket poked ${fmt(delivered)} ms after the write was sent; with each client pulling on its poke, every client held the write after ${fmt(overHttp)} ms (GET /sync/changes), ${fmt(phase.lastPull)} ms (a pull over its socket)`,
        target: '–',
        met: null,
        note: 'protocol-level clients: one socket each, pulling with an incremental GET /sync/changes or over the socket, all in the benchmark process',
      },
    ]
  } finally {
    for (const socket of sockets) socket.terminate()
    await server.close()
  }
}
