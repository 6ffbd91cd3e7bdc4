import { configureStore } from '@reduxjs/toolkit'
import { expectTypeOf, test } from 'vitest'
import {
  createPersistenceMiddleware,
  getSyncMetrics,
  syncReducer,
  type PersistenceOptions,
  type PersistenceStatus,
  type SlicePersistenceConfig,
  type SyncMetrics,
  type SyncState,
} from '../src'
import { createRemote } from '../src/remote'
import { filesSlice, type FileItem } from './support/store'

test('the middleware and its enhancer fit configureStore without casts', () => {
  const persistence = createPersistenceMiddleware({ slices: { files: {} } })
  const store = configureStore({
    reducer: { files: filesSlice.reducer, sync: syncReducer },
    middleware: (g) => g().concat(persistence),
    enhancers: (g) => g().concat(persistence.enhancer),
  })
  expectTypeOf(store.getState().sync).toEqualTypeOf<SyncState>()
  expectTypeOf(persistence.getStatus()).toEqualTypeOf<PersistenceStatus>()
  expectTypeOf(persistence.flush()).toEqualTypeOf<Promise<void>>()
  expectTypeOf(getSyncMetrics()).toEqualTypeOf<SyncMetrics>()
})

test('item types flow into slice callbacks', () => {
  const config: SlicePersistenceConfig<FileItem> = {
    getId: (file) => {
      expectTypeOf(file).toEqualTypeOf<FileItem>()
      return file.id
    },
    conflict: ({ local, server }) => {
      expectTypeOf(local).toEqualTypeOf<FileItem | null>()
      return server ?? local
    },
  }
  createPersistenceMiddleware({ slices: { files: config } })
})

test('remote takes createRemote(...), not a plain options object', () => {
  const remote = createRemote({ baseUrl: 'https://example.com/api' })
  expectTypeOf(remote).toMatchTypeOf<NonNullable<PersistenceOptions['remote']>>()
  createPersistenceMiddleware({ slices: { files: {} }, remote })
  // @ts-expect-error the options object of 0.1: wrap it in createRemote from 'redux-idb-sync/remote'
  createPersistenceMiddleware({ slices: { files: {} }, remote: { baseUrl: 'https://example.com/api' } })
})
