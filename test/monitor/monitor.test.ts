import { configureStore } from '@reduxjs/toolkit'
import { IDBFactory } from 'fake-indexeddb'
import { setupServer } from 'msw/node'
import { afterAll, afterEach, beforeAll, describe, expect, test, vi } from 'vitest'
import {
  createPersistenceMiddleware,
  createSyncMonitorMiddleware,
  getSyncMetrics,
  resetSyncMetrics,
  subscribeSyncMetrics,
  syncReducer,
  type PersistenceMiddleware,
  type SyncMetrics,
  type SyncMonitorMiddleware,
} from '../../src'
import { createRemote } from '../../src/remote'
import { createMockSyncServer } from '../../src/testing'
import { advance, useFakeClock } from '../support/clock'
import { readStore, until } from '../support/instrumentedStore'
import { addItem, filesSlice, setFiles } from '../support/store'
import { BASE_URL } from '../support/synced'

const server = createMockSyncServer({ baseUrl: BASE_URL })
const msw = setupServer(...server.handlers)
const cleanups: Array<() => unknown> = []
beforeAll(() => msw.listen({ onUnhandledRequest: 'error' }))
afterEach(async () => {
  vi.useRealTimers()
  for (const c of cleanups.splice(0).reverse()) await c()
  server.reset()
})
afterAll(() => msw.close())

function wired(options: { remote?: boolean; monitor?: SyncMonitorMiddleware } = {}) {
  const factory = new IDBFactory()
  const persistence: PersistenceMiddleware = createPersistenceMiddleware({
    indexedDB: factory,
    slices: { files: { debounceMs: 5, batchSize: 10 } },
    onError: () => {},
    ...(options.remote ? { remote: createRemote({ baseUrl: BASE_URL, retry: { initialDelayMs: 20, maxDelayMs: 50 } }) } : {}),
  })
  const monitor = options.monitor ?? createSyncMonitorMiddleware()
  const store = configureStore({
    reducer: { files: filesSlice.reducer, sync: syncReducer },
    middleware: (g) => g().concat(persistence, monitor),
    enhancers: (g) => g().concat(persistence.enhancer),
  })
  cleanups.push(
    () => persistence.dispose(),
    () => monitor.dispose(),
  )
  return { store, persistence, monitor, factory }
}

const op = (durationMs: number, ok = true) => ({
  kind: 'write' as const,
  slice: 'files',
  items: 1,
  durationMs,
  ok,
  error: ok ? null : { name: 'X', message: 'x' },
})

describe('the sync monitor', () => {
  test('observes IndexedDB batches, hydrations, pushes, pulls and health checks', async () => {
    const { store, persistence, monitor } = wired({ remote: true })
    await persistence.whenHydrated()
    await until(() => store.getState().sync.status.flaskConnected, 'connection')
    store.dispatch(addItem({ id: 'a', name: 'A' }))
    await persistence.flush()
    await until(() => store.getState().sync.outboxDepth === 0, 'the push')
    await persistence.sync!.pullChanges()
    await Promise.resolve()
    const kinds = new Set(monitor.getSyncMetrics().operationHistory.map((o) => o.kind))
    expect([...kinds].sort()).toEqual(['health', 'hydrate', 'pull', 'push', 'write'])
  })

  test('counters, average, last time, percentiles and success rate for a known sequence', () => {
    const monitor = createSyncMonitorMiddleware({ default: false })
    cleanups.push(() => monitor.dispose())
    const durations = [10, 20, 30, 40, 100]
    durations.forEach((d, i) => monitor.record({ ...op(d, i !== 2), at: 1000 + i }))
    const m = monitor.getSyncMetrics()
    expect(m).toMatchObject({
      totalOperations: 5,
      successfulOperations: 4,
      failedOperations: 1,
      lastOperationTime: 1004,
      averageOperationTime: 40,
      p50OperationTime: 30,
      p95OperationTime: 100,
      successRate: 0.8,
      lastSuccessTime: 1004,
    })
    expect(m.timeSinceLastSuccess).toBeGreaterThan(0)
  })

  test('the history keeps the last 100 operations in a ring', () => {
    const monitor = createSyncMonitorMiddleware({ default: false })
    cleanups.push(() => monitor.dispose())
    for (let i = 0; i < 150; i++) monitor.record(op(i))
    const { operationHistory, totalOperations, averageOperationTime } = monitor.getSyncMetrics()
    expect(operationHistory).toHaveLength(100)
    expect(operationHistory[0]!.durationMs).toBe(50)
    expect(operationHistory.at(-1)!.durationMs).toBe(149)
    expect(totalOperations).toBe(150)
    expect(averageOperationTime).toBeCloseTo(74.5)
  })

  test('snapshots are frozen, never change, and are the same object while nothing changed', async () => {
    const monitor = createSyncMonitorMiddleware({ default: false })
    cleanups.push(() => monitor.dispose())
    monitor.record(op(5))
    const first = monitor.getSyncMetrics()
    expect(monitor.getSyncMetrics()).toBe(first)
    expect(Object.isFrozen(first)).toBe(true)
    expect(Object.isFrozen(first.operationHistory)).toBe(true)
    const copy = JSON.stringify(first)
    monitor.record(op(7))
    expect(JSON.stringify(first)).toBe(copy)
    expect(monitor.getSyncMetrics()).not.toBe(first)
  })

  test('listeners hear once per batch, not once per item', async () => {
    useFakeClock()
    const { store, persistence, monitor } = wired()
    await persistence.whenHydrated()
    await Promise.resolve()
    const heard: SyncMetrics[] = []
    monitor.subscribeSyncMetrics((m) => heard.push(m))
    store.dispatch(setFiles(Array.from({ length: 10 }, (_, i) => ({ id: `f${i}`, name: 'n' }))))
    await persistence.flush()
    await advance(1_000) // past the 5 ms debounce: no second batch, no late per-item notification
    const writes = heard.filter((m) => m.operationHistory.at(-1)?.kind === 'write')
    expect(monitor.getSyncMetrics().operationHistory.filter((o) => o.kind === 'write')).toEqual([expect.objectContaining({ items: 10 })])
    expect(writes).toHaveLength(1)
  })

  test('a listener that throws breaks neither the other listeners nor the queue', async () => {
    const thrown: unknown[] = []
    const monitor = createSyncMonitorMiddleware({ onListenerError: (e) => thrown.push(e) })
    const { store, persistence, factory } = wired({ monitor })
    await persistence.whenHydrated()
    let calm = 0
    monitor.subscribeSyncMetrics(() => {
      throw new Error('listener bug')
    })
    monitor.subscribeSyncMetrics(() => calm++)
    store.dispatch(addItem({ id: 'still', name: 'written' }))
    await persistence.flush()
    await until(() => calm > 0 && thrown.length > 0, 'the listeners')
    expect(calm).toBeGreaterThan(0)
    expect(thrown.length).toBeGreaterThan(0)
    expect((await readStore(factory, 'files')).has('still')).toBe(true)
  })

  test('gauges: queue depth, outbox depth and dead letters come from the shared instance', async () => {
    const { store, persistence, monitor } = wired({ remote: true })
    await persistence.whenHydrated()
    await until(() => store.getState().sync.status.flaskConnected, 'connection')
    server.down()
    store.dispatch(addItem({ id: 'q', name: 'queued' }))
    expect(monitor.getSyncMetrics().pendingOperations).toBe(0) // diffed in a microtask
    await Promise.resolve()
    await until(() => monitor.getSyncMetrics().pendingOperations === 1, 'the queue gauge')
    await persistence.flush()
    await until(() => monitor.getSyncMetrics().outboxDepth === 1, 'the outbox gauge')
    expect(monitor.getSyncMetrics().outboxDepth).toBe(store.getState().sync.outboxDepth)
    expect(monitor.getSyncMetrics().deadLetterCount).toBe(0)
    // Back up, the outbox drains and the gauge follows. (Ending here also ends the health checks
    // against a down server: msw leaves a request that fails while its abort is being handled as
    // an unhandled rejection.)
    server.up()
    await until(() => monitor.getSyncMetrics().outboxDepth === 0, 'the outbox gauge back at 0')
  })

  test('resetSyncMetrics and the module-level functions act on the most recent default monitor', async () => {
    const older = createSyncMonitorMiddleware()
    const monitor = createSyncMonitorMiddleware()
    cleanups.push(
      () => older.dispose(),
      () => monitor.dispose(),
    )
    const heard: number[] = []
    const unsubscribe = subscribeSyncMetrics((m) => heard.push(m.totalOperations))
    cleanups.push(unsubscribe)
    monitor.record(op(1))
    older.record(op(1))
    older.record(op(1))
    await Promise.resolve()
    expect(getSyncMetrics().totalOperations).toBe(1)
    expect(heard).toEqual([1])
    resetSyncMetrics()
    expect(getSyncMetrics().totalOperations).toBe(0)
    expect(older.getSyncMetrics().totalOperations).toBe(2)
  })

  test('the monitor works alone, without persistence', () => {
    const monitor = createSyncMonitorMiddleware({ default: false })
    cleanups.push(() => monitor.dispose())
    const store = configureStore({ reducer: { x: (s: number = 0) => s }, middleware: (g) => g().concat(monitor) })
    store.dispatch({ type: 'anything' })
    monitor.record({ kind: 'push', slice: null, items: 3, durationMs: 12, ok: true, error: null })
    expect(monitor.getSyncMetrics()).toMatchObject({ totalOperations: 1, outboxDepth: 0, pendingOperations: 0 })
  })
})
