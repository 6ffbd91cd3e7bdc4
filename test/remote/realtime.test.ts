import { configureStore } from '@reduxjs/toolkit'
import { IDBFactory } from 'fake-indexeddb'
import { setupServer } from 'msw/node'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test, vi } from 'vitest'
import { WebSocket as NodeWebSocket } from 'ws'
import {
  createAutoSyncMiddleware,
  createPersistenceMiddleware,
  createSyncMonitorMiddleware,
  isInvalidOptionError,
  isMalformedResponseError,
  isRealtimeError,
  syncReducer,
  type AutoSyncOptions,
  type SyncError,
  type WebSocketConstructorLike,
} from '../../src'
import { createRemote, type RemoteOptions } from '../../src/remote'
import { CloseCode, createMockSyncServer } from '../../src/testing'
import { addItem, filesSlice } from '../support/store'
import { BASE_URL } from '../support/synced'

// Node 20 has no global WebSocket; msw's `ws` interception patches the global class, so give it one.
;(globalThis as { WebSocket?: unknown }).WebSocket ??= NodeWebSocket

const WS_URL = 'ws://sync.test/realtime'
const server = createMockSyncServer({ baseUrl: BASE_URL, token: 't1', realtime: { url: WS_URL, heartbeatMs: 1000 } })
const rt = server.realtime!
const msw = setupServer(...server.handlers)
const cleanups: Array<() => unknown> = []
beforeAll(() => msw.listen({ onUnhandledRequest: 'error' }))
beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date', 'performance'] })
})
afterEach(async () => {
  currentToken = 't1'
  for (const c of cleanups.splice(0).reverse()) await c()
  vi.useRealTimers()
  server.reset()
})
afterAll(() => msw.close())

async function settle(rounds = 40): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((r) => setImmediate(r))
}
async function advance(ms: number): Promise<void> {
  await vi.advanceTimersByTimeAsync(ms)
  await settle()
}

/** Past the debounce (5 ms, written locally), then past auto-sync's settle (20 ms, pushed and poked). */
async function pushed(): Promise<void> {
  await advance(10)
  await advance(30)
  await advance(10)
}

let currentToken = 't1'
/** A device: its own database, persistence, monitor and auto-sync (the leader, with the interval effectively off). */
async function device(options: { auto?: AutoSyncOptions; remote?: Partial<RemoteOptions> } = {}) {
  const errors: SyncError[] = []
  const tokens: boolean[] = []
  const persistence = createPersistenceMiddleware({
    dbName: 'rt',
    indexedDB: new IDBFactory(),
    slices: { files: { debounceMs: 5 } },
    onError: (error) => errors.push(error),
    remote: createRemote({
      baseUrl: BASE_URL,
      retry: { initialDelayMs: 100, maxDelayMs: 800 },
      getToken: ({ refresh }) => {
        tokens.push(refresh)
        return currentToken
      },
      realtime: { url: WS_URL, retry: { initialDelayMs: 200, maxDelayMs: 1600 } },
      ...options.remote,
    }),
  })
  const monitor = createSyncMonitorMiddleware({ default: false })
  const autoSync = createAutoSyncMiddleware({ leader: 'always', intervalMs: 1e9, settleMs: 20, default: false, onError: () => {}, ...options.auto })
  const store = configureStore({
    reducer: { files: filesSlice.reducer, sync: syncReducer },
    middleware: (g) => g().concat(persistence, monitor, autoSync),
    enhancers: (g) => g().concat(persistence.enhancer),
  })
  cleanups.push(
    () => persistence.dispose(),
    () => autoSync.dispose(),
    () => monitor.dispose(),
  )
  const hydrated = persistence.whenHydrated()
  await settle()
  await hydrated
  await advance(10)
  const has = (id: string): boolean => store.getState().files.entities[id] !== undefined
  const realtime = () => store.getState().sync.realtime.state
  return { store, persistence, monitor, autoSync, errors, tokens, has, realtime }
}

/** Incremental pulls the server answered, over HTTP and over the socket. */
const pulls = (): number => (server.requests.changes ?? 0) + rt.pullsAnswered

describe('real-time channel (msw ws)', () => {
  test('B sees A’s edit through a poke, with no interval firing', async () => {
    const a = await device()
    const b = await device()
    expect(rt.openClients).toBe(2)
    expect(b.realtime()).toBe('open')
    const httpBefore = server.requests.changes ?? 0
    const socketBefore = rt.pullsAnswered
    a.store.dispatch(addItem({ id: 'x', name: 'from A' }))
    await pushed()
    expect(b.has('x')).toBe(true)
    expect(b.store.getState().files.entities.x?.name).toBe('from A')
    // With the socket open, the pulls after pokes go over it: no HTTP pull at all.
    expect(rt.pullsAnswered - socketBefore).toBeGreaterThanOrEqual(1)
    expect((server.requests.changes ?? 0) - httpBefore).toBe(0)
    const metrics = b.monitor.getSyncMetrics()
    expect(metrics.pokes).toBeGreaterThanOrEqual(1)
    expect(metrics.realtimeState).toBe('open')
    expect(metrics.p95VisibleLatency).toBeGreaterThanOrEqual(0)
    expect(b.autoSync.nextSyncAt()! - Date.now()).toBeGreaterThan(1e8) // the interval never came near
  })

  test('pokes that arrive during a pull are coalesced into one more pull', async () => {
    const a = await device()
    const b = await device()
    rt.pause() // A's write is not announced: the pokes below are the only ones
    a.store.dispatch(addItem({ id: 'c1', name: 'one' }))
    await pushed()
    rt.resume()
    const before = pulls()
    for (let i = 0; i < 5; i++) rt.poke()
    await advance(5)
    // On each device the first poke starts a pull; the four that arrive while it runs ask for
    // one more run, which finds the cursor already at the poked head and fetches nothing. A
    // pulls too: with its socket open it did not pull after its push (the poke of its own
    // write, held back here, would have).
    expect(pulls() - before).toBe(2)
    expect(b.has('c1')).toBe(true)
    for (const device of [a, b]) {
      expect(device.monitor.getSyncMetrics().pokes).toBe(5)
      expect(device.monitor.getSyncMetrics().pokePulls).toBe(1)
    }
  })

  test('a poke of a cursor this client already holds fetches nothing', async () => {
    const b = await device()
    const before = pulls()
    rt.poke() // the head B pulled when its socket opened
    await advance(5)
    expect(pulls()).toBe(before)
    expect(b.monitor.getSyncMetrics().pokes).toBe(1)
    expect(b.monitor.getSyncMetrics().pokePulls).toBe(0)
  })

  test('an edit costs one pull per device: the writer pulls on its own poke, not also after its push', async () => {
    const a = await device()
    const b = await device()
    const before = pulls()
    a.store.dispatch(addItem({ id: 'once', name: 'pulled once' }))
    await pushed()
    expect(b.has('once')).toBe(true)
    expect(pulls() - before).toBe(2)
    for (const device of [a, b]) expect(device.monitor.getSyncMetrics().pokePulls).toBe(1)
    // By hand, syncNow() still pushes and pulls, socket or not.
    await a.autoSync.syncNow()
    expect(pulls() - before).toBe(3)
  })

  test('a lost poke loses nothing: the next (re)connect pulls incrementally', async () => {
    const a = await device()
    const b = await device()
    rt.pause()
    a.store.dispatch(addItem({ id: 'lost', name: 'poke lost' }))
    await pushed()
    expect(server.model.records().map((r) => r.id)).toEqual(['lost'])
    expect(b.has('lost')).toBe(false)
    rt.resume()
    rt.dropAll(CloseCode.goingAway)
    await advance(2000) // the backoff, the reconnect, `ready`, the catch-up pull
    expect(b.realtime()).toBe('open')
    expect(b.has('lost')).toBe(true)
  })

  test('a token that expires mid-connection ends in getToken({ refresh: true }) and a new socket', async () => {
    const b = await device()
    const a = await device()
    expect(b.realtime()).toBe('open')
    currentToken = 't2'
    server.setToken('t2') // the old token is refused from now on; open sockets get 4002
    await advance(50)
    expect(b.tokens).toContain(true)
    expect(b.realtime()).toBe('open')
    expect(b.store.getState().sync.realtime.error).toBeNull()
    a.store.dispatch(addItem({ id: 'after', name: 'after refresh' }))
    await pushed() // A's push gets a 401, refreshes, retries; B is poked on the new socket
    expect(b.has('after')).toBe(true)
    currentToken = 't1'
  })

  test('a silent server is detected by the heartbeat and reconnected with backoff', async () => {
    const b = await device()
    // Every state the socket goes through: the reconnect after the drop may already be open
    // again when the heartbeat window ends (its backoff is 100-200 ms, and a silent mock still
    // greets new sockets).
    const seen: Array<{ state: string; error: string | null }> = []
    const unsubscribe = b.store.subscribe(() => {
      const { state, error } = b.store.getState().sync.realtime
      const last = seen.at(-1)
      if (!last || last.state !== state || last.error !== error) seen.push({ state, error })
    })
    rt.silence(true)
    await advance(3100) // two heartbeat intervals (1 s, as `ready` said) without a pong
    unsubscribe()
    const dropped = seen[0]
    expect(dropped).toBeDefined()
    expect(dropped!.state).not.toBe('open')
    expect(dropped!.error).toContain(String(CloseCode.heartbeatTimeout))
    rt.silence(false)
    await advance(2000)
    expect(b.realtime()).toBe('open')
  })

  test('while the socket is down, interval polling takes over; with it open, the idle interval does not pull', async () => {
    const a = await device()
    const b = await device({ auto: { intervalMs: 5000 } })
    const idle = server.requests.changes ?? 0
    await advance(5100)
    expect(server.requests.changes ?? 0).toBe(idle) // open socket: the idle tick skipped its pull
    rt.refuse(CloseCode.tryAgainLater)
    rt.dropAll(CloseCode.goingAway)
    await advance(100)
    expect(b.realtime()).toBe('down')
    a.store.dispatch(addItem({ id: 'polled', name: 'by interval' }))
    await pushed()
    expect(server.model.records().map((r) => r.id)).toEqual(['polled'])
    expect(b.has('polled')).toBe(false)
    await advance(5100) // B's interval fires and pulls
    expect(b.has('polled')).toBe(true)
    rt.refuse(null)
    await advance(3200) // the backoff (at most 1.6 s) runs out: the socket is back
    expect(b.realtime()).toBe('open')
  })

  test('only the leader holds the socket', async () => {
    await device({ auto: { leader: 'never' } })
    expect(rt.openClients).toBe(0)
  })

  test('a refused token is refreshed once, then the failure is reported and backed off', async () => {
    currentToken = 'wrong'
    const b = await device()
    await advance(50)
    expect(b.tokens.filter(Boolean).length).toBeGreaterThanOrEqual(1)
    expect(b.realtime()).not.toBe('open')
    const reported = b.errors.find(isRealtimeError)
    expect(reported?.code).toBe(CloseCode.unauthorized)
    currentToken = 't1'
  })

  test('without a WebSocket constructor the channel stays off, with a typed error, and nothing throws', async () => {
    const Missing = undefined as unknown as WebSocketConstructorLike
    const saved = (globalThis as { WebSocket?: unknown }).WebSocket
    ;(globalThis as { WebSocket?: unknown }).WebSocket = Missing
    try {
      const b = await device()
      expect(b.realtime()).toBe('off')
      expect(b.errors.some((e) => isRealtimeError(e) && e.reason === 'no_websocket')).toBe(true)
    } finally {
      ;(globalThis as { WebSocket?: unknown }).WebSocket = saved
    }
  })
})

describe('pulls over the socket (msw ws)', () => {
  /** A's edit, pushed and poked; B should hold it afterwards. */
  async function editOnA(a: Awaited<ReturnType<typeof device>>, id: string): Promise<void> {
    a.store.dispatch(addItem({ id, name: id }))
    await pushed()
  }

  test('a server without them (no "pull" in ready\'s features) is pulled over HTTP', async () => {
    rt.offerPulls(false)
    const a = await device()
    const b = await device()
    const http = server.requests.changes ?? 0
    await editOnA(a, 'plain')
    expect(b.has('plain')).toBe(true)
    expect(rt.pullsAnswered).toBe(0)
    expect((server.requests.changes ?? 0) - http).toBeGreaterThanOrEqual(1)
  })

  test('a pull the socket does not answer in time goes over HTTP, and the silent socket is replaced', async () => {
    // A pulls on the poke of its own write too: its socket goes silent as well.
    const a = await device({ remote: { timeoutMs: 500 } })
    const b = await device({ remote: { timeoutMs: 500 } })
    rt.failPulls('unanswered')
    const http = server.requests.changes ?? 0
    await editOnA(a, 'late')
    expect(b.has('late')).toBe(false) // its socket pull waits
    await advance(500)
    expect(b.has('late')).toBe(true)
    expect((server.requests.changes ?? 0) - http).toBeGreaterThanOrEqual(1)
    expect(b.store.getState().sync.realtime.error).toContain(String(CloseCode.heartbeatTimeout))
    rt.failPulls(null)
    await advance(2000) // backoff, a new socket
    expect(b.realtime()).toBe('open')
    const socket = rt.pullsAnswered
    await editOnA(a, 'again')
    expect(b.has('again')).toBe(true)
    expect(rt.pullsAnswered).toBeGreaterThan(socket)
  })

  test('a pull waiting on a socket that closes goes over HTTP at once, not after the timeout', async () => {
    const a = await device()
    const b = await device()
    rt.failPulls('unanswered')
    await editOnA(a, 'dropped')
    expect(b.has('dropped')).toBe(false)
    rt.dropAll(CloseCode.goingAway)
    await advance(5) // far below the 10 s request timeout
    expect(b.has('dropped')).toBe(true)
  })

  test('a malformed answer is a typed error, reported once; that page and the ones after come over HTTP', async () => {
    const a = await device()
    const b = await device()
    rt.failPulls('malformed')
    await editOnA(a, 'm1')
    expect(b.has('m1')).toBe(true)
    const malformed = b.errors.filter(isMalformedResponseError)
    expect(malformed).toHaveLength(1)
    expect(malformed[0]!.problem).toContain('changes')
    rt.failPulls(null)
    const [socket, http] = [rt.pullsAnswered, server.requests.changes ?? 0]
    await editOnA(a, 'm2')
    expect(b.has('m2')).toBe(true)
    // Neither device asks its socket any more (A pulled the poke of its own write and got the
    // same broken answer): one HTTP pull each.
    expect(rt.pullsAnswered - socket).toBe(0)
    expect((server.requests.changes ?? 0) - http).toBe(2)
    expect(b.errors.filter(isMalformedResponseError)).toHaveLength(1)
    expect(b.realtime()).toBe('open') // pokes still come through it
  })

  test('a server failure on the socket (503) leaves the page to HTTP', async () => {
    const a = await device()
    const b = await device()
    rt.failPulls('unavailable')
    const http = server.requests.changes ?? 0
    await editOnA(a, 'u1')
    expect(b.has('u1')).toBe(true)
    expect((server.requests.changes ?? 0) - http).toBeGreaterThanOrEqual(1)
  })

  test("a definite answer over the socket is the answer: a wiped server's 410 with its new epoch leads to a resync, not to an HTTP retry", async () => {
    const a = await device()
    const b = await device()
    await editOnA(a, 'old')
    expect(b.has('old')).toBe(true)
    const [socket, http, full] = [rt.pullsAnswered, server.requests.changes ?? 0, server.requests.pull ?? 0]
    server.model.reset() // wiped: a new epoch, an empty feed; the sockets stay open
    rt.poke() // B's cursor is now beyond the head
    await advance(50)
    expect(rt.pullsAnswered - socket).toBeGreaterThanOrEqual(1)
    expect((server.requests.changes ?? 0) - http).toBe(0)
    expect((server.requests.pull ?? 0) - full).toBeGreaterThanOrEqual(1) // the resync's full pull
    expect(b.has('old')).toBe(false) // the server no longer has it, and B had synced it
    expect(b.errors.some((e) => e.message.includes('another database'))).toBe(true)
  })
})

describe('remote.realtime option', () => {
  const make = (realtime: unknown) => () =>
    createPersistenceMiddleware({
      dbName: 'opt',
      indexedDB: new IDBFactory(),
      slices: { files: {} },
      remote: createRemote({ baseUrl: BASE_URL, realtime: realtime as RemoteOptions['realtime'] }),
    })
  test.each([
    ['an http URL', 'http://x/realtime'],
    ['a token in the URL', 'ws://x/realtime?token=secret'],
    ['a typo', { url: 'ws://x/rt', heartbeat: 5 }],
    ['a tiny heartbeat', { url: 'ws://x/rt', heartbeatMs: 1 }],
  ])('refuses %s by name', (_name, value) => {
    let caught: unknown
    try {
      make(value)().dispose()
    } catch (error) {
      caught = error
    }
    expect(isInvalidOptionError(caught)).toBe(true)
    expect(String((caught as Error).message)).toContain('remote.realtime')
  })
  test('is off by default, on with a URL', async () => {
    const off = make(undefined)()
    const on = make('ws://x/realtime')()
    expect(off.sync?.realtime).toBeNull()
    expect(on.sync?.realtime?.state).toBe('off') // nobody leads yet
    await off.dispose()
    await on.dispose()
  })
})
