import { configureStore, type Middleware } from '@reduxjs/toolkit'
import { IDBFactory } from 'fake-indexeddb'
import {
  createPersistenceMiddleware,
  syncReducer,
  type ConflictStrategy,
  type PersistenceMiddleware,
  type RemoteOptions,
  type SlicePersistenceConfig,
  type SyncConflict,
  type SyncError,
} from '../../src'
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
}

/** A store with persistence (+ remote unless `remote: null`), the files and todos slices, and the sync slice. */
export function makeSyncedStore(options: SyncedOptions = {}) {
  const factory = options.factory ?? new IDBFactory()
  const errors: SyncError[] = []
  const conflicts: SyncConflict[] = []
  const persistence: PersistenceMiddleware = createPersistenceMiddleware({
    dbName: options.dbName ?? 'synced',
    indexedDB: factory,
    onError: (e) => errors.push(e),
    slices: {
      files: { debounceMs: 5, ...(options.strategy ? { conflict: options.strategy } : {}), ...options.files },
      todos: { debounceMs: 5, path: ['items'], shape: 'array' },
    },
    ...(options.remote === null
      ? {}
      : {
          remote: {
            baseUrl: BASE_URL,
            retry: { initialDelayMs: 20, maxDelayMs: 100 },
            timeoutMs: 1000,
            onConflict: (c) => conflicts.push(c),
            ...options.remote,
          },
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
