import { configureStore, type Middleware } from '@reduxjs/toolkit'
import { IDBFactory } from 'fake-indexeddb'
import { setupServer } from 'msw/node'
import { afterAll, afterEach, beforeAll } from 'vitest'
import {
  createPersistenceMiddleware,
  syncReducer,
  type ChannelLike,
  type ConflictStrategy,
  type LocalStore,
  type PersistenceMiddleware,
  type SlicePersistenceConfig,
  type SyncConflict,
  type SyncError,
} from '../../src'
import { createRemote, type RemoteOptions } from '../../src/remote'
import { createMockSyncServer } from '../../src/testing'
import { filesSlice, todosSlice } from './store'

export const BASE_URL = 'http://sync.test/api'

export interface SyncedOptions {
  factory?: IDBFactory
  dbName?: string
  strategy?: ConflictStrategy
  remote?: Partial<RemoteOptions> | null
  files?: SlicePersistenceConfig
  /** Where the sync slice is mounted. */
  syncKey?: string
  extraMiddleware?: Middleware[]
  /** A storage backend (e.g. an instrumented one); it must use the same factory and dbName. */
  storage?: LocalStore
  /** The channel `clear()` announces a logout on (tests link two "tabs" with a channelHub). */
  logoutChannel?: ChannelLike | null
}

/** A store with persistence (+ remote unless `remote: null`), the files and todos slices, and the sync slice. */
export function makeSyncedStore(options: SyncedOptions = {}) {
  const factory = options.factory ?? new IDBFactory()
  const errors: SyncError[] = []
  const conflicts: SyncConflict[] = []
  const persistence: PersistenceMiddleware = createPersistenceMiddleware({
    dbName: options.dbName ?? 'synced',
    indexedDB: factory,
    ...(options.storage ? { storage: options.storage } : {}),
    ...(options.logoutChannel !== undefined ? { logoutChannel: options.logoutChannel } : {}),
    onError: (e) => errors.push(e),
    slices: {
      files: { debounceMs: 5, ...(options.strategy ? { conflict: options.strategy } : {}), ...options.files },
      todos: { debounceMs: 5, path: ['items'], shape: 'array' },
    },
    ...(options.remote === null
      ? {}
      : {
          remote: createRemote({
            baseUrl: BASE_URL,
            retry: { initialDelayMs: 20, maxDelayMs: 100 },
            timeoutMs: 1000,
            onConflict: (c) => conflicts.push(c),
            ...options.remote,
          }),
        }),
  })
  const syncKey = options.syncKey ?? 'sync'
  const store = configureStore({
    reducer: { files: filesSlice.reducer, todos: todosSlice.reducer, [syncKey]: syncReducer } as {
      files: typeof filesSlice.reducer
      todos: typeof todosSlice.reducer
      sync: typeof syncReducer
    },
    middleware: (g) => g().concat(persistence, ...(options.extraMiddleware ?? [])),
    enhancers: (g) => g().concat(persistence.enhancer),
  })
  return { store, persistence, factory, errors, conflicts }
}

/**
 * Registers an msw server over `createMockSyncServer` for the current test file (unhandled
 * requests are errors; handlers and state reset after each test) and returns a `client()`
 * builder whose instances are disposed after each test.
 */
export function useMockSync() {
  const server = createMockSyncServer({ baseUrl: BASE_URL })
  const msw = setupServer(...server.handlers)
  const live: PersistenceMiddleware[] = []
  beforeAll(() => msw.listen({ onUnhandledRequest: 'error' }))
  afterEach(async () => {
    for (const p of live.splice(0)) await p.dispose()
    server.reset()
    msw.resetHandlers()
  })
  afterAll(() => msw.close())
  const client = (options: SyncedOptions = {}) => {
    const made = makeSyncedStore(options)
    live.push(made.persistence)
    return made
  }
  /** Stops tracking an instance the test disposed itself. */
  const forget = (persistence: PersistenceMiddleware): void => {
    live.splice(live.indexOf(persistence), 1)
  }
  return { server, msw, client, forget }
}
