import { configureStore } from '@reduxjs/toolkit'
import { IDBFactory } from 'fake-indexeddb'
import { setupServer } from 'msw/node'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test, vi } from 'vitest'
import {
  configureAutoSync,
  createAutoSyncMiddleware,
  createPersistenceMiddleware,
  createSyncMonitorMiddleware,
  syncReducer,
  type AutoSyncMiddleware,
  type AutoSyncOptions,
  type PersistenceMiddleware,
} from '../../src'
import { createRemote } from '../../src/remote'
import { createMockSyncServer } from '../../src/testing'
import { channelHub, memoryLocks } from '../support/coordination'
import { readStore } from '../support/instrumentedStore'
import { addItem, filesSlice } from '../support/store'
import { BASE_URL } from '../support/synced'

const server = createMockSyncServer({ baseUrl: BASE_URL })
const msw = setupServer(...server.handlers)
const cleanups: Array<() => unknown> = []
beforeAll(() => msw.listen({ onUnhandledRequest: 'error' }))
beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date', 'performance'] })
})
afterEach(async () => {
  vi.useRealTimers()
  for (const c of cleanups.splice(0).reverse()) await c()
  server.reset()
})
afterAll(() => msw.close())

/** Lets IndexedDB (setImmediate) and fetch settle without moving the fake clock. */
async function settle(rounds = 30): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((r) => setImmediate(r))
}
async function advance(ms: number): Promise<void> {
  await vi.advanceTimersByTimeAsync(ms)
  await settle()
}

function tab(options: AutoSyncOptions & { factory?: IDBFactory; dbName?: string } = {}) {
  const { factory = new IDBFactory(), dbName = 'auto', ...autoOptions } = options
  const persistence: PersistenceMiddleware = createPersistenceMiddleware({
    dbName,
    indexedDB: factory,
    slices: { files: { debounceMs: 5 } },
    onError: () => {},
    remote: createRemote({ baseUrl: BASE_URL, retry: { initialDelayMs: 100, maxDelayMs: 1600 } }),
  })
  const autoSync: AutoSyncMiddleware = createAutoSyncMiddleware({ leader: 'always', onError: () => {}, ...autoOptions })
  const store = configureStore({
    reducer: { files: filesSlice.reducer, sync: syncReducer },
    middleware: (g) => g().concat(persistence, autoSync),
    enhancers: (g) => g().concat(persistence.enhancer),
  })
  cleanups.push(
    () => persistence.dispose(),
    () => autoSync.dispose(),
  )
  return { store, persistence, autoSync, factory }
}

async function ready(t: ReturnType<typeof tab>): Promise<void> {
  const hydrated = t.persistence.whenHydrated()
  await settle()
  await hydrated
  await settle()
}

async function change(t: ReturnType<typeof tab>, id: string): Promise<void> {
  t.store.dispatch(addItem({ id, name: id }))
  await advance(10) // past the 5 ms debounce: written locally with its outbox entry
}

describe('auto-sync', () => {
  test('the defaults are the seed’s', () => {
    const autoSync = createAutoSyncMiddleware({ default: false })
    cleanups.push(() => autoSync.dispose())
    expect(autoSync.getAutoSyncStatus()).toEqual({ enabled: true, lastSyncTime: 0, changeCounter: 0, nextSyncIn: null })
  })

  test('the interval syncs pending changes, then sets lastSyncTime and resets changeCounter; nextSyncIn counts down', async () => {
    const t = tab({ intervalMs: 1000, syncOnChange: false })
    await ready(t)
    await change(t, 'a')
    expect(server.model.records()).toHaveLength(0)
    expect(t.autoSync.getAutoSyncStatus().changeCounter).toBe(1)
    const next = t.autoSync.getAutoSyncStatus().nextSyncIn!
    await advance(300)
    expect(t.autoSync.getAutoSyncStatus().nextSyncIn).toBe(next - 300 - 30 * 0)
    await advance(next - 300)
    expect(server.model.records().map((r) => r.id)).toEqual(['a'])
    const status = t.autoSync.getAutoSyncStatus()
    expect(status.changeCounter).toBe(0)
    expect(status.lastSyncTime).toBeGreaterThan(0)
    expect(t.store.getState().sync.status.flaskConnected).toBe(true)
  })

  test('sync-on-change syncs once changes have settled, not before', async () => {
    const t = tab({ intervalMs: 60_000, syncOnChange: true, settleMs: 500 })
    await ready(t)
    await change(t, 'a')
    await advance(300)
    await change(t, 'b') // restarts the settle time
    await advance(300)
    expect(server.model.records()).toHaveLength(0)
    await advance(250)
    expect(
      server.model
        .records()
        .map((r) => r.id)
        .sort(),
    ).toEqual(['a', 'b'])
  })

  test('reaching maxQueueSize forces a sync at once', async () => {
    const t = tab({ intervalMs: 60_000, syncOnChange: false, maxQueueSize: 3 })
    await ready(t)
    await change(t, 'a')
    await change(t, 'b')
    expect(server.model.records()).toHaveLength(0)
    await change(t, 'c')
    await settle()
    expect(server.model.records()).toHaveLength(3)
  })

  test('while the server is down, health checks back off; syncing resumes on recovery', async () => {
    const t = tab({ intervalMs: 1000, syncOnChange: false })
    await ready(t)
    server.down()
    await change(t, 'a')
    await advance(1000) // the interval's sync fails: the engine marks the server down
    expect(t.store.getState().sync.status.flaskConnected).toBe(false)
    const times: number[] = []
    let last = server.requests.health ?? 0
    for (let elapsed = 0; elapsed < 6000; elapsed += 50) {
      await advance(50)
      if ((server.requests.health ?? 0) > last) {
        last = server.requests.health ?? 0
        times.push(Date.now())
      }
    }
    const gaps = times.slice(1).map((time, i) => time - times[i]!)
    expect(gaps.length).toBeGreaterThanOrEqual(2)
    expect(gaps.at(-1)!).toBeGreaterThan(gaps[0]!)
    server.up()
    await advance(2000)
    expect(server.model.records().map((r) => r.id)).toEqual(['a'])
    expect(t.store.getState().sync.status.flaskConnected).toBe(true)
  })

  test('two syncs never run at the same time', async () => {
    const t = tab({ intervalMs: 60_000, syncOnChange: false })
    await ready(t)
    let inFlight = 0
    let maxInFlight = 0
    const sync = t.persistence.sync!
    const original = sync.pullChanges
    sync.pullChanges = async () => {
      inFlight++
      maxInFlight = Math.max(maxInFlight, inFlight)
      try {
        await original()
        await settle(5)
      } finally {
        inFlight--
      }
    }
    await change(t, 'a')
    await Promise.all([t.autoSync.syncNow(), t.autoSync.syncNow(), t.autoSync.syncNow()])
    expect(maxInFlight).toBe(1)
    expect(server.model.records()).toHaveLength(1)
  })

  test('syncNow pushes and pulls by hand', async () => {
    const t = tab({ enabled: false })
    await ready(t)
    await change(t, 'manual')
    await t.autoSync.syncNow()
    expect(server.model.records().map((r) => r.id)).toEqual(['manual'])
    expect(t.autoSync.getAutoSyncStatus()).toMatchObject({ enabled: false, nextSyncIn: null, changeCounter: 0 })
  })

  test('dispose stops every timer', async () => {
    const t = tab({ intervalMs: 1000, syncOnChange: false })
    await ready(t)
    await change(t, 'a')
    t.autoSync.dispose()
    const requests = JSON.stringify(server.requests)
    await advance(5000)
    expect(JSON.stringify(server.requests)).toBe(requests)
    expect(t.autoSync.getAutoSyncStatus().nextSyncIn).toBeNull()
  })

  test('disposing the persistence instance stops auto-sync too, without reporting errors', async () => {
    const errors: unknown[] = []
    const t = tab({ intervalMs: 1000, syncOnChange: false, onError: (e) => errors.push(e) })
    await ready(t)
    expect(t.autoSync.getAutoSyncStatus().nextSyncIn).not.toBeNull()
    await t.persistence.dispose()
    await settle()
    const requests = JSON.stringify(server.requests)
    await advance(5000)
    expect(JSON.stringify(server.requests)).toBe(requests)
    expect(t.autoSync.getAutoSyncStatus().nextSyncIn).toBeNull()
    expect(errors).toEqual([])
  })

  test('configureAutoSync (module-level) and the instance method change the settings', async () => {
    const t = tab({ intervalMs: 60_000, syncOnChange: false })
    await ready(t)
    configureAutoSync({ intervalMs: 500 })
    expect(t.autoSync.getAutoSyncStatus().nextSyncIn).toBeLessThanOrEqual(500)
    await change(t, 'a')
    await advance(500)
    expect(server.model.records()).toHaveLength(1)
    t.autoSync.configureAutoSync({ enabled: false })
    expect(t.autoSync.getAutoSyncStatus()).toMatchObject({ enabled: false, nextSyncIn: null })
    expect(() => configureAutoSync({ intervalMs: -1 })).toThrow(/intervalMs/)
  })

  test('when the page is hidden, pending work is flushed and pushed', async () => {
    const doc = Object.assign(new EventTarget(), { visibilityState: 'visible' })
    const g = globalThis as unknown as Record<string, unknown>
    g.document = doc
    cleanups.push(() => delete g.document)
    const t = tab({ intervalMs: 60_000, syncOnChange: false, leader: 'always' })
    await ready(t)
    t.persistence.configure('files', { debounceMs: 60_000 })
    t.store.dispatch(addItem({ id: 'unsaved', name: 'x' }))
    await settle()
    doc.visibilityState = 'hidden'
    doc.dispatchEvent(new Event('visibilitychange'))
    await settle(60)
    expect((await readStore(t.factory, 'files', 'auto')).has('unsaved')).toBe(true)
    expect(server.model.records().map((r) => r.id)).toEqual(['unsaved'])
  })

  test('the three factories together share one queue and one outbox', async () => {
    const factory = new IDBFactory()
    const persistence = createPersistenceMiddleware({
      dbName: 'shared',
      indexedDB: factory,
      slices: { files: { debounceMs: 5 } },
      onError: () => {},
      remote: createRemote({ baseUrl: BASE_URL }),
    })
    const monitor = createSyncMonitorMiddleware({ default: false })
    const autoSync = createAutoSyncMiddleware({ intervalMs: 60_000, syncOnChange: false, leader: 'always', default: false })
    const store = configureStore({
      reducer: { files: filesSlice.reducer, sync: syncReducer },
      middleware: (g) => g().concat(persistence, monitor, autoSync),
      enhancers: (g) => g().concat(persistence.enhancer),
    })
    cleanups.push(
      () => persistence.dispose(),
      () => monitor.dispose(),
      () => autoSync.dispose(),
    )
    const hydrated = persistence.whenHydrated()
    await settle()
    await hydrated
    store.dispatch(addItem({ id: 'x', name: 'x' }))
    await advance(10)
    expect(monitor.getSyncMetrics().outboxDepth).toBe(1)
    expect(store.getState().sync.outboxDepth).toBe(1)
    await autoSync.syncNow()
    expect(monitor.getSyncMetrics().outboxDepth).toBe(0)
    expect(server.model.records()).toHaveLength(1)
    expect(monitor.getSyncMetrics().operationHistory.some((o) => o.kind === 'push')).toBe(true)
  })
})

describe('multiple tabs', () => {
  test('only the leader runs auto-sync; it hands over when the leading tab is disposed', async () => {
    const factory = new IDBFactory()
    const locks = memoryLocks()
    const hub = channelHub()
    const a = tab({ factory, leader: 'auto', locks, channel: hub.create(), intervalMs: 1000, syncOnChange: false, default: false })
    const b = tab({ factory, leader: 'auto', locks, channel: hub.create(), intervalMs: 1000, syncOnChange: false, default: false })
    await ready(a)
    await ready(b)
    expect([a.autoSync.isLeader(), b.autoSync.isLeader()]).toEqual([true, false])
    expect(b.autoSync.getAutoSyncStatus().nextSyncIn).toBeNull()
    await change(b, 'from-b') // the follower writes locally; the leader pushes the shared outbox
    await advance(1000)
    expect(server.model.records().map((r) => r.id)).toEqual(['from-b'])
    a.autoSync.dispose()
    await a.persistence.dispose()
    await settle()
    expect(b.autoSync.isLeader()).toBe(true)
    await change(b, 'after-handover')
    await advance(1000)
    expect(
      server.model
        .records()
        .map((r) => r.id)
        .sort(),
    ).toEqual(['after-handover', 'from-b'])
  })

  test('a change committed in one tab reaches the other tab’s store without being written back', async () => {
    const factory = new IDBFactory()
    const locks = memoryLocks()
    const hub = channelHub()
    const a = tab({ factory, leader: 'auto', locks, channel: hub.create(), intervalMs: 60_000, syncOnChange: false, default: false })
    const b = tab({ factory, leader: 'auto', locks, channel: hub.create(), intervalMs: 60_000, syncOnChange: false, default: false })
    await ready(a)
    await ready(b)
    await change(a, 'shared')
    await settle()
    expect(b.store.getState().files.entities.shared).toEqual({ id: 'shared', name: 'shared' })
    await advance(50)
    expect(b.persistence.getStatus().pendingOperations).toBe(0)
    // Follower tabs read the outbox the tabs share (so their per-item states follow): b shows
    // a's one pending operation, and has added none of its own.
    expect(a.store.getState().sync.outboxDepth).toBe(1)
    expect(b.store.getState().sync.outboxDepth).toBe(1)
    await a.autoSync.syncNow()
    expect(server.model.appliedOps).toBe(1)
    expect(a.store.getState().sync.outboxDepth).toBe(0)
  })

  test('a follower’s change is pushed by the leader once it settles, not at the next interval', async () => {
    const factory = new IDBFactory()
    const locks = memoryLocks()
    const hub = channelHub()
    const a = tab({ factory, leader: 'auto', locks, channel: hub.create(), intervalMs: 3_600_000, settleMs: 20, default: false })
    const b = tab({ factory, leader: 'auto', locks, channel: hub.create(), intervalMs: 3_600_000, settleMs: 20, default: false })
    await ready(a)
    await ready(b)
    expect([a.autoSync.isLeader(), b.autoSync.isLeader()]).toEqual([true, false])
    await change(b, 'from-follower')
    await advance(30) // the leader heard of it through the relay, and its settle ran out
    expect(server.model.records().map((r) => r.id)).toEqual(['from-follower'])
  })

  test('the leader re-reads the stored outbox before a sync only when another tab spoke, and at every interval tick', async () => {
    const factory = new IDBFactory()
    const locks = memoryLocks()
    const hub = channelHub()
    const a = tab({ factory, leader: 'auto', locks, channel: hub.create(), intervalMs: 60_000, settleMs: 20, default: false })
    const b = tab({ factory, leader: 'auto', locks, channel: hub.create(), intervalMs: 60_000, settleMs: 20, default: false })
    await ready(a)
    await ready(b)
    const engine = a.persistence.sync!
    const reload = engine.reload.bind(engine)
    let reloads = 0
    engine.reload = () => {
      reloads++
      return reload()
    }
    await change(a, 'first') // the first sync reads the outbox once (nothing is known yet)
    await advance(30)
    await change(a, 'second') // its own rows are in memory: no read
    await advance(30)
    expect(server.model.records().map((r) => r.id)).toEqual(['first', 'second'])
    expect(reloads).toBe(1)
    await change(b, 'third') // another tab spoke: read
    await advance(30)
    expect(reloads).toBe(2)
    await change(a, 'fourth')
    await advance(60_000) // the interval tick reads in any case
    expect(reloads).toBe(3)
    expect(server.model.records().map((r) => r.id)).toEqual(['first', 'second', 'third', 'fourth'])
  })

  test('leader "never" does not auto-sync; without Web Locks a non-browser runtime leads', async () => {
    const never = tab({ leader: 'never', intervalMs: 500, syncOnChange: false, default: false })
    await ready(never)
    await change(never, 'a')
    await advance(2000)
    expect(never.autoSync.isLeader()).toBe(false)
    expect(server.model.records()).toHaveLength(0)
    const auto = tab({ leader: 'auto', locks: null, intervalMs: 500, syncOnChange: false, default: false, dbName: 'auto2' })
    await ready(auto)
    expect(auto.autoSync.isLeader()).toBe(true)
  })
})
