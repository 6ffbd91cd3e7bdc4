import { IDBFactory } from 'fake-indexeddb'
import { afterEach, describe, expect, test, vi } from 'vitest'
import {
  clearPersistence,
  createIdbStore,
  createMemoryStore,
  isDatabaseDeletedError,
  isFlushError,
  isStorageBlockedError,
  isStorageError,
  type LocalStore,
} from '../../src'
import { advance, untilFake, useFakeClock } from '../support/clock'
import { channelHub } from '../support/coordination'
import { readStore } from '../support/instrumentedStore'
import { addItem } from '../support/store'
import { useMockSync } from '../support/synced'

const { server, client } = useMockSync()
// Registered after useMockSync's, so it runs before the instances are disposed.
afterEach(() => {
  vi.useRealTimers()
})

const databases = async (factory: IDBFactory): Promise<string[]> => (await factory.databases()).map((d) => d.name ?? '')

describe('clear() and clearPersistence(): logout', () => {
  test('deletes the database with its outbox; what was pending is neither written nor pushed', async () => {
    useFakeClock()
    const { store, persistence, factory } = client({ dbName: 'logout' })
    await persistence.whenHydrated()
    server.down()
    store.dispatch(addItem({ id: 'sent-nowhere', name: 'queued in the outbox' }))
    await persistence.flush()
    expect((await readStore(factory, '__ris_outbox', 'logout')).size).toBe(1)
    store.dispatch(addItem({ id: 'never-written', name: 'still in the debounce queue' }))
    server.up()
    const pushesBefore = server.requests.push ?? 0

    await persistence.clear()

    expect(await databases(factory)).not.toContain('logout')
    expect(persistence.getStatus().disposed).toBe(true)
    // Past the 5 ms debounce of 'never-written' and several push retries (20 to 100 ms) of 'sent-nowhere'.
    await advance(5_000)
    expect(server.requests.push ?? 0).toBe(pushesBefore)
    expect(server.model.records()).toEqual([])
    // The database was not re-created by anything still running.
    expect(await databases(factory)).not.toContain('logout')
  })

  test('works while another tab has the same database open', async () => {
    const a = client({ dbName: 'shared' })
    const b = client({ dbName: 'shared', factory: a.factory })
    await Promise.all([a.persistence.whenHydrated(), b.persistence.whenHydrated()])
    a.store.dispatch(addItem({ id: 'x', name: 'x' }))
    await a.persistence.flush()
    await b.persistence.flush() // b holds an open connection too

    await a.persistence.clear()

    expect(await databases(a.factory)).not.toContain('shared')
  })

  test('another tab hears the logout: it drops what is pending and stops, and nothing recreates the database', async () => {
    useFakeClock()
    const hub = channelHub()
    const a = client({ dbName: 'tabs', logoutChannel: hub.create() })
    const b = client({ dbName: 'tabs', factory: a.factory, logoutChannel: hub.create() })
    await Promise.all([a.persistence.whenHydrated(), b.persistence.whenHydrated()])
    b.store.dispatch(addItem({ id: 'synced', name: 'in b before the logout' }))
    await b.persistence.flush()
    await untilFake(() => server.model.records().length === 1, "b's push")
    // b has an edit still in its debounce window when a logs out.
    b.persistence.configure('files', { debounceMs: 60_000 })
    b.store.dispatch(addItem({ id: 'after-logout', name: 'must go nowhere' }))
    const pushesBefore = server.requests.push ?? 0

    await a.persistence.clear()

    await untilFake(() => b.persistence.getStatus().disposed, 'b to stop')
    const told = b.errors.find(isDatabaseDeletedError)
    expect(told).toMatchObject({ reason: 'logout', dbName: 'tabs' })
    expect(b.persistence.getStatus().lastError).toMatchObject({ name: 'DatabaseDeletedError' })
    await advance(61_000) // past b's 60 s debounce
    // Nothing of b's session was written again or pushed.
    expect(await databases(a.factory)).not.toContain('tabs')
    expect(server.requests.push ?? 0).toBe(pushesBefore)
    expect(server.model.records().map((r) => r.id)).toEqual(['synced'])
  })

  test('without the channel, an unannounced deletion is reported, and later changes are written to a new database', async () => {
    const a = client({ dbName: 'quiet', logoutChannel: null })
    const b = client({ dbName: 'quiet', factory: a.factory, logoutChannel: null })
    await Promise.all([a.persistence.whenHydrated(), b.persistence.whenHydrated()])
    await a.persistence.clear()
    await expect.poll(() => b.errors.some(isDatabaseDeletedError)).toBe(true)
    expect(b.errors.find(isDatabaseDeletedError)).toMatchObject({ reason: 'deleted' })
    expect(b.persistence.getStatus().disposed).toBe(false)
  })

  test('a connection outside the library that never closes ends in StorageBlockedError, not a hang', async () => {
    const factory = new IDBFactory()
    const storage = createIdbStore({ dbName: 'held', factory, openTimeoutMs: 300, durability: 'default' })
    const { persistence } = client({ dbName: 'held', remote: null, factory, storage })
    await persistence.whenHydrated()
    // A foreign connection that ignores versionchange.
    const request = factory.open('held')
    const foreign = await new Promise<IDBDatabase>((resolve) => (request.onsuccess = () => resolve(request.result)))
    const errors: unknown[] = []
    await persistence.clear().catch((error: unknown) => errors.push(error))
    expect(errors).toHaveLength(1)
    expect(isStorageBlockedError(errors[0])).toBe(true)
    foreign.close()
    // The delete stayed queued and completes once the connection closed.
    await expect.poll(() => databases(factory)).not.toContain('held')
  })

  test('clearPersistence() clears every live instance and reports failures together', async () => {
    const one = client({ dbName: 'one', remote: null })
    const two = client({ dbName: 'two', remote: null })
    await Promise.all([one.persistence.whenHydrated(), two.persistence.whenHydrated()])
    await clearPersistence()
    expect(await databases(one.factory)).not.toContain('one')
    expect(await databases(two.factory)).not.toContain('two')
    expect(one.persistence.getStatus().disposed && two.persistence.getStatus().disposed).toBe(true)

    const memory = createMemoryStore()
    const { destroy: _omit, ...withoutDestroy } = memory
    const custom: LocalStore = withoutDestroy
    const three = client({ dbName: 'three', remote: null, storage: custom })
    await three.persistence.whenHydrated()
    const failure = await clearPersistence().catch((error: unknown) => error)
    expect(isFlushError(failure)).toBe(true)
    expect(isFlushError(failure) && isStorageError(failure.errors[0])).toBe(true)
  })
})
