import { configureStore, type Middleware } from '@reduxjs/toolkit'
import { IDBFactory } from 'fake-indexeddb'
import { afterEach, describe, expect, test, vi } from 'vitest'
import { checkFlaskConnection, pullFlaskChanges, syncFromFlaskBulk, syncReducer, syncToFlaskBulk, type SyncProgress } from '../../../src'
import { advance, useFakeClock } from '../../support/clock'
import { until } from '../../support/instrumentedStore'
import { addItem, addTodo, filesSlice, setFiles } from '../../support/store'
import { BASE_URL, useMockSync } from '../../support/synced'

const { server, client, forget } = useMockSync()
// Registered after useMockSync's, so it runs before the instances are disposed.
afterEach(() => {
  vi.useRealTimers()
})

/** Seeds the server through the protocol, as another device would. */
async function seedServer(items: Array<{ id: string; name: string }>) {
  const response = await fetch(`${BASE_URL}/sync/push`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      clientId: 'other-device',
      ops: items.map((item, i) => ({
        opId: `seed-${item.id}-${i}`,
        collection: 'files',
        id: item.id,
        type: 'put',
        value: item,
        baseVersion: null,
        clientTime: 1,
      })),
    }),
  })
  expect(response.status).toBe(200)
}

describe('the sync slice', () => {
  test('its status has exactly the seed’s shape', async () => {
    const c = client()
    await c.persistence.whenHydrated()
    await until(() => c.store.getState().sync.status.flaskConnected, 'connection')
    const status = c.store.getState().sync.status
    expect(Object.keys(status).sort()).toEqual(['enabled', 'error', 'flaskConnected', 'lastSyncTime', 'syncStatus'])
    expect(status).toMatchObject({ enabled: true, flaskConnected: true, error: null })
  })

  test('can be mounted under any key', async () => {
    const c = client({ syncKey: 'mySync' })
    await c.persistence.whenHydrated()
    const state = c.store.getState() as unknown as Record<string, { status: { enabled: boolean } }>
    await until(() => state.mySync !== undefined && (c.store.getState() as unknown as typeof state).mySync!.status.enabled, 'the slice')
    expect((c.store.getState() as unknown as typeof state).mySync!.status.enabled).toBe(true)
  })

  test('syncToFlaskBulk pushes everything, including items persisted before sync was configured, with progress', async () => {
    const factory = new IDBFactory()
    const local = client({ factory, remote: null })
    await local.persistence.whenHydrated()
    local.store.dispatch(setFiles(Array.from({ length: 250 }, (_, i) => ({ id: `f${i}`, name: `n${i}` }))))
    await local.persistence.flush()
    await local.persistence.dispose()
    forget(local.persistence)
    expect(server.model.records()).toHaveLength(0)

    const progress: SyncProgress[] = []
    const recorder: Middleware = () => (next) => (action) => {
      const a = action as { type: string; payload: SyncProgress | null }
      if (a.type === 'redux-idb-sync/sync/progressChanged' && a.payload) progress.push(a.payload)
      return next(action)
    }
    const synced = client({ factory, remote: { batchSize: 100, connectOnStart: false }, extraMiddleware: [recorder] })
    await synced.persistence.whenHydrated()
    const result = await synced.store.dispatch(syncToFlaskBulk())
    expect(result.type).toBe('redux-idb-sync/syncToFlaskBulk/fulfilled')
    expect(server.model.records()).toHaveLength(250)
    const pushes = progress.filter((p) => p.operation === 'push')
    expect(pushes[0]).toEqual({ operation: 'push', done: 0, total: 250 })
    expect(pushes.at(-1)).toEqual({ operation: 'push', done: 250, total: 250 })
    expect(pushes.map((p) => p.done)).toEqual([0, 100, 200, 250])
    expect(synced.store.getState().sync.status.syncStatus).toBe('success')
    expect(synced.store.getState().sync.status.lastSyncTime).toEqual(expect.any(Number))
    expect(synced.store.getState().sync.progress).toBeNull()
  })

  test('syncFromFlaskBulk pulls everything into IndexedDB and the store, and nothing is pushed back', async () => {
    useFakeClock()
    await seedServer([
      { id: 'r1', name: 'remote one' },
      { id: 'r2', name: 'remote two' },
    ])
    const applied = server.model.appliedOps
    const c = client()
    await c.persistence.whenHydrated()
    await c.store.dispatch(syncFromFlaskBulk())
    expect(c.store.getState().files.entities.r1).toEqual({ id: 'r1', name: 'remote one' })
    await c.persistence.flush()
    await advance(5_000) // past the 5 ms debounce and the push retries (20 to 100 ms)
    expect(server.model.appliedOps).toBe(applied)
    expect(c.persistence.getStatus().pendingOperations).toBe(0)
    // Restart: it came from IndexedDB.
    await c.persistence.dispose()
    forget(c.persistence)
    const again = client({ factory: c.factory, remote: { connectOnStart: false } })
    await again.persistence.whenHydrated()
    expect(again.store.getState().files.ids.sort()).toEqual(['r1', 'r2'])
  })

  test('checkFlaskConnection answers with the health check', async () => {
    const c = client({ remote: { connectOnStart: false } })
    await c.persistence.whenHydrated()
    expect((await c.store.dispatch(checkFlaskConnection())).payload).toBe(true)
    expect(c.store.getState().sync.status.flaskConnected).toBe(true)
    server.down()
    expect((await c.store.dispatch(checkFlaskConnection())).payload).toBe(false)
    expect(c.store.getState().sync.status.flaskConnected).toBe(false)
  })

  test('thunks in a store without a remote reject with RemoteNotConfiguredError', async () => {
    const store = configureStore({ reducer: { files: filesSlice.reducer, sync: syncReducer } })
    const result = await store.dispatch(syncToFlaskBulk())
    expect(result.type).toBe('redux-idb-sync/syncToFlaskBulk/rejected')
    expect(result.payload).toMatchObject({ name: 'RemoteNotConfiguredError' })
    expect(store.getState().sync.status.syncStatus).toBe('error')
  })

  test('every action is serializable: RTK’s check stays on and quiet', async () => {
    const errors = vi.spyOn(console, 'error')
    const c = client()
    await c.persistence.whenHydrated()
    c.store.dispatch(addItem({ id: 'a', name: 'A' }))
    c.store.dispatch(addTodo({ id: 1, title: 't' }))
    await c.persistence.flush()
    await c.store.dispatch(syncToFlaskBulk())
    await c.store.dispatch(syncFromFlaskBulk())
    await c.store.dispatch(pullFlaskChanges())
    expect(errors.mock.calls.map(String).join('\n')).not.toMatch(/non-serializable/i)
  })
})
