import { configureStore } from '@reduxjs/toolkit'
import { IDBFactory } from 'fake-indexeddb'
import { afterEach, describe, expect, test, vi } from 'vitest'
import { createAutoSyncMiddleware, createPersistenceMiddleware, type ChannelLike, type SyncError } from '../../src'
import { addItem, filesSlice } from '../support/store'

/** A channel whose postMessage always throws: auto-sync reports it as 'posting to other tabs failed'. */
const brokenChannel = (): ChannelLike => ({
  postMessage() {
    throw new Error('channel closed')
  },
  addEventListener() {},
  removeEventListener() {},
  close() {},
})

const cleanups: Array<() => unknown> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
  vi.restoreAllMocks()
})

function setup(autoSyncOnError?: (error: SyncError) => void) {
  const persistenceErrors: SyncError[] = []
  const persistence = createPersistenceMiddleware({
    dbName: 'on-error',
    indexedDB: new IDBFactory(),
    slices: { files: { debounceMs: 0 } },
    onError: (error) => persistenceErrors.push(error),
  })
  const autoSync = createAutoSyncMiddleware({ leader: 'never', channel: brokenChannel(), ...(autoSyncOnError ? { onError: autoSyncOnError } : {}) })
  const store = configureStore({
    reducer: { files: filesSlice.reducer },
    middleware: (g) => g().concat(persistence, autoSync),
    enhancers: (g) => g().concat(persistence.enhancer),
  })
  cleanups.push(
    () => persistence.dispose(),
    () => autoSync.dispose(),
  )
  return { store, persistence, persistenceErrors }
}

describe('AutoSyncOptions.onError', () => {
  test('by default, auto-sync errors go through the persistence instance: its onError, its status, no console.warn', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    const { store, persistence, persistenceErrors } = setup()
    await persistence.whenHydrated()
    store.dispatch(addItem({ id: 'a', name: 'A' }))
    await persistence.flush()
    expect(persistenceErrors.map((e) => e.message)).toContain('posting to other tabs failed: channel closed')
    expect(persistence.getStatus().lastError?.message).toBe('posting to other tabs failed: channel closed')
    expect(warn).not.toHaveBeenCalled()
  })

  test('an onError of its own receives them instead', async () => {
    const own: SyncError[] = []
    const { store, persistence, persistenceErrors } = setup((error) => own.push(error))
    await persistence.whenHydrated()
    store.dispatch(addItem({ id: 'a', name: 'A' }))
    await persistence.flush()
    expect(own.map((e) => e.message)).toEqual(['posting to other tabs failed: channel closed'])
    expect(persistenceErrors).toEqual([])
  })
})
