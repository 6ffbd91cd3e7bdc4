import { configureStore } from '@reduxjs/toolkit'
import { IDBFactory } from 'fake-indexeddb'
import { describe, expect, test, vi } from 'vitest'
import { filesSlice } from '../support/store'
import type * as LibraryModule from '../../src'

// Two copies of the library in one process (what an ESM app with a CJS dependency loads): the
// module-level functions of one copy must reach the instances the other created. The packaging
// check does the same with the real ESM and CJS builds from the tarball.
type Library = typeof LibraryModule
async function freshCopy(): Promise<Library> {
  vi.resetModules()
  return import('../../src')
}

describe('the registries are shared between copies of the library', () => {
  test('persistence, the default monitor and the default auto-sync created by one copy are controlled by another', async () => {
    const a = await freshCopy()
    const b = await freshCopy()
    expect(a.disablePersistence).not.toBe(b.disablePersistence) // really two copies

    const persistence = a.createPersistenceMiddleware({ slices: { files: {} }, dbName: 'shared', indexedDB: new IDBFactory(), onError: () => {} })
    const monitor = a.createSyncMonitorMiddleware()
    const autoSync = a.createAutoSyncMiddleware({ leader: 'never', channel: null })
    configureStore({
      reducer: { files: filesSlice.reducer },
      middleware: (g) => g().concat(persistence, monitor, autoSync),
      enhancers: (g) => g().concat(persistence.enhancer),
    })
    await persistence.whenHydrated()

    b.disablePersistence('files')
    expect(persistence.getStatus().slices.files?.enabled).toBe(false)
    b.enablePersistence('files')
    await b.flushPersistence()
    expect(persistence.getStatus().slices.files?.enabled).toBe(true)

    monitor.record({ kind: 'push', slice: null, items: 3, durationMs: 5, ok: true, error: null })
    expect(b.getSyncMetrics()).toBe(monitor.getSyncMetrics())
    expect(b.getSyncMetrics().totalOperations).toBeGreaterThan(0)

    b.configureAutoSync({ intervalMs: 12345 })
    expect(autoSync.getAutoSyncConfig().intervalMs).toBe(12345)

    autoSync.dispose()
    monitor.dispose()
    await persistence.dispose()
    expect(() => b.disablePersistence('files')).toThrow(/no live persistence instance/)
  })
})
