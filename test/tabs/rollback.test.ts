import { configureStore } from '@reduxjs/toolkit'
import { IDBFactory } from 'fake-indexeddb'
import { setupServer } from 'msw/node'
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest'
import { createAutoSyncMiddleware, createPersistenceMiddleware, selectItemSyncState, syncReducer, type ChannelLike, type LockManagerLike } from '../../src'
import { createRemote } from '../../src/remote'
import { createMockSyncServer } from '../../src/testing'
import { channelHub, memoryLocks } from '../support/coordination'
import { readStore, until } from '../support/instrumentedStore'
import { rejectOps } from '../support/rejecting'
import { addItem, filesSlice, updateItem } from '../support/store'
import { BASE_URL } from '../support/synced'

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

/** A tab: persistence with remote sync and auto-sync, sharing `factory` and the channel hub with the others. */
function tab(factory: IDBFactory, locks: LockManagerLike, channel: ChannelLike) {
  const persistence = createPersistenceMiddleware({
    dbName: 'tabs',
    indexedDB: factory,
    slices: { files: { debounceMs: 5 } },
    onError: () => {},
    remote: createRemote({ baseUrl: BASE_URL, retry: { initialDelayMs: 20, maxDelayMs: 100 } }),
  })
  const autoSync = createAutoSyncMiddleware({ leader: 'auto', locks, channel, intervalMs: 60_000, syncOnChange: false, default: false, onError: () => {} })
  const store = configureStore({
    reducer: { files: filesSlice.reducer, sync: syncReducer },
    middleware: (g) => g().concat(persistence, autoSync),
    enhancers: (g) => g().concat(persistence.enhancer),
  })
  cleanups.push(
    () => persistence.dispose(),
    () => autoSync.dispose(),
  )
  return { store, persistence, autoSync }
}

describe('rollback across tabs', () => {
  test("a follower tab's rejected edit, pushed by the leader, rolls back in both tabs, and both show it as rejected", async () => {
    const factory = new IDBFactory()
    const locks = memoryLocks()
    const hub = channelHub()
    const leader = tab(factory, locks, hub.create())
    const follower = tab(factory, locks, hub.create())
    await leader.persistence.whenHydrated()
    await follower.persistence.whenHydrated()
    await until(() => leader.autoSync.isLeader(), 'the leader')
    expect(follower.autoSync.isLeader()).toBe(false)
    leader.store.dispatch(addItem({ id: 'a', name: 'good' }))
    await leader.persistence.flush()
    await leader.autoSync.syncNow()
    await until(() => follower.store.getState().files.entities.a?.name === 'good', 'the item in the follower')

    rejectOps(msw, server, (op) => ((op.value as { name?: string } | undefined)?.name === 'bad' ? 'name is not allowed' : null))
    follower.store.dispatch(updateItem({ id: 'a', name: 'bad' }))
    await follower.persistence.flush()
    await until(() => leader.store.getState().files.entities.a?.name === 'bad', 'the edit in the leader')
    await leader.autoSync.syncNow()

    for (const t of [leader, follower]) {
      await until(() => t.store.getState().files.entities.a?.name === 'good', 'the rollback in each tab')
      await until(() => selectItemSyncState(t.store.getState(), 'files', 'a') === 'rejected', 'the rejected state in each tab')
      expect(t.store.getState().sync.deadLetters).toMatchObject([{ key: 'files:a', message: 'name is not allowed', rolledBack: true }])
    }
    expect((await readStore(factory, 'files', 'tabs')).get('a')).toEqual({ id: 'a', name: 'good' })
  })
})
