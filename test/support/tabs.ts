import { configureStore } from '@reduxjs/toolkit'
import { setupServer } from 'msw/node'
import { afterAll, afterEach, beforeAll } from 'vitest'
import type { IDBFactory } from 'fake-indexeddb'
import { createAutoSyncMiddleware, createPersistenceMiddleware, syncReducer, type ChannelLike, type LocalStore, type LockManagerLike } from '../../src'
import { createRemote } from '../../src/remote'
import { createMockSyncServer } from '../../src/testing'
import { filesSlice } from './store'
import { BASE_URL } from './synced'

export interface TabOptions {
  readonly debounceMs?: number
  /** A storage backend over the same factory and the `tabs` database. */
  readonly storage?: LocalStore
}

/**
 * One browser tab: persistence of the files slice (database `tabs`) with remote sync against
 * `BASE_URL`, and auto-sync electing a leader through `locks` and relaying commits on `channel`
 * (no interval, no sync on change). `track` receives what disposes it.
 */
export function syncedTab(
  factory: IDBFactory,
  locks: LockManagerLike,
  channel: ChannelLike,
  track: (...dispose: Array<() => unknown>) => void,
  options: TabOptions = {},
) {
  const persistence = createPersistenceMiddleware({
    dbName: 'tabs',
    indexedDB: factory,
    ...(options.storage ? { storage: options.storage } : {}),
    slices: { files: { debounceMs: options.debounceMs ?? 5 } },
    onError: () => {},
    remote: createRemote({ baseUrl: BASE_URL, retry: { initialDelayMs: 20, maxDelayMs: 100 } }),
  })
  const autoSync = createAutoSyncMiddleware({ leader: 'auto', locks, channel, intervalMs: 60_000, syncOnChange: false, default: false, onError: () => {} })
  const store = configureStore({
    reducer: { files: filesSlice.reducer, sync: syncReducer },
    middleware: (g) => g().concat(persistence, autoSync),
    enhancers: (g) => g().concat(persistence.enhancer),
  })
  track(
    () => persistence.dispose(),
    () => autoSync.dispose(),
  )
  return { store, persistence, autoSync }
}

/**
 * Registers an msw server over `createMockSyncServer` for the current test file and returns a
 * `tab()` builder (see `syncedTab`); tabs are disposed, and the server reset, after each test.
 */
export function useMockTabs() {
  const server = createMockSyncServer({ baseUrl: BASE_URL })
  const msw = setupServer(...server.handlers)
  const cleanups: Array<() => unknown> = []
  beforeAll(() => msw.listen({ onUnhandledRequest: 'error' }))
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c()
    server.reset()
    msw.resetHandlers()
  })
  afterAll(() => msw.close())
  const tab = (factory: IDBFactory, locks: LockManagerLike, channel: ChannelLike, options: TabOptions = {}) =>
    syncedTab(factory, locks, channel, (...dispose) => cleanups.push(...dispose), options)
  return { server, msw, tab }
}
