// Real-time sync end to end: the built library in Node (fake-indexeddb, the `ws` package's
// WebSocket) against the real server and socket server. SQLite with the socket server on a thread
// of app.py by default; RIS_SERVER_DATABASE=postgres RIS_SERVER_WORKERS=4 runs gunicorn with the
// socket process beside it (LISTEN/NOTIFY), so A's write may land on any of the four workers.
import { configureStore, createEntityAdapter, createSlice } from '@reduxjs/toolkit'
import { IDBFactory } from 'fake-indexeddb'
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest'
import { WebSocket as NodeWebSocket } from 'ws'
import type { AutoSyncOptions, SyncError, WebSocketConstructorLike } from '../../src'
import type { RemoteOptions } from '../../src/remote'
import { startFlaskServer, type FlaskServer } from './flaskServer'
import { lib, remoteLib } from './lib'

const { createAutoSyncMiddleware, createPersistenceMiddleware, createSyncMonitorMiddleware, isRealtimeError, syncReducer } = lib
const WebSocket = NodeWebSocket as unknown as WebSocketConstructorLike

interface Doc {
  id: string
  title: string
}
const docs = createEntityAdapter<Doc>()
const docsSlice = createSlice({ name: 'docs', initialState: docs.getInitialState(), reducers: { save: docs.upsertOne } })
const { save } = docsSlice.actions

const cleanups: Array<() => unknown> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

async function until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<number> {
  const start = Date.now()
  while (!check()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
  return Date.now() - start
}

interface DeviceOptions {
  server: FlaskServer
  token: (refresh: boolean) => Promise<string>
  auto?: AutoSyncOptions
  remote?: Partial<RemoteOptions>
}

/** One device: its own database; auto-sync leads with the interval effectively off unless told. */
function device({ server, token, auto, remote }: DeviceOptions) {
  const refreshes: boolean[] = []
  const errors: SyncError[] = []
  const persistence = createPersistenceMiddleware({
    dbName: 'rt-e2e',
    indexedDB: new IDBFactory(),
    slices: { docs: { debounceMs: 5 } },
    onError: (error) => errors.push(error),
    remote: remoteLib.createRemote({
      baseUrl: server.baseUrl,
      retry: { initialDelayMs: 50, maxDelayMs: 400 },
      timeoutMs: 3000,
      getToken: async ({ refresh }) => {
        refreshes.push(refresh)
        return token(refresh)
      },
      realtime: { url: server.realtimeUrl!, WebSocket, retry: { initialDelayMs: 100, maxDelayMs: 400 } },
      ...remote,
    }),
  })
  const monitor = createSyncMonitorMiddleware({ default: false })
  const autoSync = createAutoSyncMiddleware({ leader: 'always', intervalMs: 3_600_000, settleMs: 0, default: false, ...auto })
  const store = configureStore({
    reducer: { docs: docsSlice.reducer, sync: syncReducer },
    middleware: (g) => g().concat(persistence, monitor, autoSync),
    enhancers: (g) => g().concat(persistence.enhancer),
  })
  cleanups.push(
    () => persistence.dispose(),
    () => autoSync.dispose(),
    () => monitor.dispose(),
  )
  return {
    store,
    monitor,
    autoSync,
    refreshes,
    errors,
    title: (id: string) => store.getState().docs.entities[id]?.title,
    realtime: () => store.getState().sync.realtime.state,
  }
}
type Device = ReturnType<typeof device>

const open = (d: Device, what: string) => until(() => d.realtime() === 'open', what)

describe('real-time sync against the real server', () => {
  let server: FlaskServer
  beforeAll(async () => {
    server = await startFlaskServer({ tokens: { 'alice-1': 'alice', 'bob-1': 'bob' }, realtime: true, realtimeHeartbeatMs: 300 })
  })
  afterAll(() => server.close())

  test('B sees A’s edit without any interval firing; a device of another tenant is not poked', async () => {
    const a = device({ server, token: async () => 'alice-1' })
    const b = device({ server, token: async () => 'alice-1' })
    const c = device({ server, token: async () => 'bob-1' })
    await Promise.all([open(a, 'A open'), open(b, 'B open'), open(c, 'C open')])
    const pulledBefore = c.monitor.getSyncMetrics().pokes
    a.store.dispatch(save({ id: 'd1', title: 'from A' }))
    const ms = await until(() => b.title('d1') === 'from A', 'B to see A’s edit', 5000)
    expect(ms).toBeLessThan(5000)
    expect(b.monitor.getSyncMetrics().pokes).toBeGreaterThanOrEqual(1)
    // The hour-long interval never fired on B: what it shows came from the poke's pull.
    expect(b.autoSync.nextSyncAt()! - Date.now()).toBeGreaterThan(3_000_000)
    await new Promise((r) => setTimeout(r, 300))
    expect(c.monitor.getSyncMetrics().pokes).toBe(pulledBefore)
    expect(c.title('d1')).toBeUndefined()
  })

  test('a token that expires mid-connection ends in getToken({ refresh: true }) and a socket that works', async () => {
    // B's tokens live 1.5 s; its getToken issues a new one when asked to refresh, as an app would.
    let current = (await server.issueToken('alice', 1500)).token
    const b = device({
      server,
      token: async (refresh) => {
        if (refresh) current = (await server.issueToken('alice', 60_000)).token
        return current
      },
    })
    const a = device({ server, token: async () => 'alice-1' })
    await Promise.all([open(a, 'A open'), open(b, 'B open')])
    const first = current
    // The server re-checks the token at each ping (every 300 ms): after 1.5 s it closes with 4002.
    await until(() => b.refreshes.includes(true), 'B to refresh its token', 8000)
    await until(() => current !== first && b.realtime() === 'open', 'B open again with the new token', 5000)
    expect(b.store.getState().sync.realtime.error).toBeNull()
    a.store.dispatch(save({ id: 'd2', title: 'after expiry' }))
    await until(() => b.title('d2') === 'after expiry', 'B to see A’s edit on the new socket', 5000)
    expect(b.errors.filter(isRealtimeError).filter((e) => e.code === 4001)).toEqual([])
  })
})

describe('socket process killed: polling takes over, then the socket comes back', () => {
  let server: FlaskServer
  beforeAll(async () => {
    server = await startFlaskServer({ tokens: { 'alice-1': 'alice' }, realtime: 'process', realtimeHeartbeatMs: 300 })
  })
  afterAll(() => server.close())

  test('nothing is lost while the socket is down', async () => {
    const a = device({ server, token: async () => 'alice-1' })
    const b = device({ server, token: async () => 'alice-1', auto: { intervalMs: 700 } })
    await Promise.all([open(a, 'A open'), open(b, 'B open')])
    await server.stopRealtime()
    await until(() => b.realtime() === 'down' || b.realtime() === 'connecting', 'B to notice the dead socket', 5000)
    a.store.dispatch(save({ id: 'd3', title: 'while the socket is down' }))
    await until(() => b.title('d3') === 'while the socket is down', 'B’s interval to pull it', 5000)
    expect(b.realtime()).not.toBe('open')
    await server.startRealtime()
    await open(b, 'B to reconnect')
    a.store.dispatch(save({ id: 'd4', title: 'socket back' }))
    await until(() => b.title('d4') === 'socket back', 'B to see it over the socket again', 5000)
  })
})
