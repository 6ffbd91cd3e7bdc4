import { configureStore } from '@reduxjs/toolkit'
import { IDBFactory, forceCloseDatabase } from 'fake-indexeddb'
import { afterEach, describe, expect, test } from 'vitest'
import { createPersistenceMiddleware, isHydrationError, isMigrationError, isStorageBlockedError, type PersistenceMiddleware, type SyncError } from '../../src'
import { createIdbStore } from '../../src/storage/idbStore'
import { instrumentedStore, readStore } from '../support/instrumentedStore'
import { addItem, addTodo, filesSlice, makeStore, removeItem, setNote, updateItem } from '../support/store'

const live: PersistenceMiddleware[] = []
afterEach(async () => {
  for (const p of live.splice(0)) await p.dispose()
})

function setup(options: Parameters<typeof makeStore>[0]) {
  const errors: SyncError[] = []
  const made = makeStore({ onError: (e) => errors.push(e), ...options })
  live.push(made.persistence)
  return { ...made, errors }
}

async function seedStore(factory: IDBFactory) {
  const first = setup({ indexedDB: factory })
  await first.persistence.whenHydrated()
  first.store.dispatch(addItem({ id: 'a', name: 'A' }))
  first.store.dispatch(addItem({ id: 'b', name: 'B' }))
  first.store.dispatch(setNote({ id: 'n', text: 'note' }))
  first.store.dispatch(addTodo({ id: 7, title: 'seven' }))
  await first.persistence.dispose()
  return first.store.getState()
}

describe('hydration', () => {
  test('a restart (new store, new middleware, same database) hydrates exactly the persisted state', async () => {
    const factory = new IDBFactory()
    const before = await seedStore(factory)
    const second = setup({ indexedDB: factory })
    expect(second.persistence.getStatus().hydrated).toBe(false)
    await second.persistence.whenHydrated()
    expect(second.persistence.getStatus().hydrated).toBe(true)
    expect(second.persistence.getStatus().slices.files?.hydration).toBe('done')
    const after = second.store.getState()
    expect(after.files).toEqual(before.files)
    expect(after.notes).toEqual(before.notes)
    expect(after.todos.items).toEqual(before.todos.items)
    expect(typeof after.todos.items[0]!.id).toBe('number')
  })

  test('hydrated data is never written back', async () => {
    const factory = new IDBFactory()
    await seedStore(factory)
    const storage = instrumentedStore(factory)
    const second = setup({ indexedDB: factory, storage })
    await second.persistence.whenHydrated()
    await second.persistence.flush()
    expect(storage.sliceCommits()).toEqual([])
    expect(second.persistence.getStatus().pendingOperations).toBe(0)
  })

  test('actions dispatched before hydration finishes are neither lost nor overwritten', async () => {
    const factory = new IDBFactory()
    await seedStore(factory)
    const second = setup({ indexedDB: factory })
    // Before whenHydrated: change a persisted item, delete another, add a new one.
    second.store.dispatch(updateItem({ id: 'a', name: 'A, edited early' }))
    second.store.dispatch(addItem({ id: 'b', name: 'temp' }))
    second.store.dispatch(removeItem('b'))
    second.store.dispatch(addItem({ id: 'c', name: 'C, new early' }))
    await second.persistence.whenHydrated()
    const files = second.store.getState().files
    expect(files.entities.a).toEqual({ id: 'a', name: 'A, edited early' })
    expect(files.entities.b).toBeUndefined()
    expect(files.entities.c).toEqual({ id: 'c', name: 'C, new early' })
    await second.persistence.flush()
    expect(Object.fromEntries(await readStore(factory, 'files'))).toEqual({
      a: { id: 'a', name: 'A, edited early' },
      c: { id: 'c', name: 'C, new early' },
    })
  })

  test('the first run stores the initial state', async () => {
    const factory = new IDBFactory()
    const persistence = createPersistenceMiddleware({ indexedDB: factory, slices: { files: {} }, onError: () => {} })
    live.push(persistence)
    configureStore({
      reducer: { files: filesSlice.reducer },
      preloadedState: { files: { ids: ['seeded'], entities: { seeded: { id: 'seeded', name: 'from code' } } } },
      middleware: (g) => g().concat(persistence),
      enhancers: (g) => g().concat(persistence.enhancer),
    })
    await persistence.whenHydrated()
    expect(Object.fromEntries(await readStore(factory, 'files'))).toEqual({ seeded: { id: 'seeded', name: 'from code' } })
  })

  test('without the enhancer, hydration reports a HydrationError and leaves state alone', async () => {
    const factory = new IDBFactory()
    await seedStore(factory)
    const errors: SyncError[] = []
    const persistence = createPersistenceMiddleware({ indexedDB: factory, slices: { files: {} }, onError: (e) => errors.push(e) })
    live.push(persistence)
    const store = configureStore({ reducer: { files: filesSlice.reducer }, middleware: (g) => g().concat(persistence) })
    const failure = await persistence.whenHydrated().catch((e: unknown) => e)
    expect(isHydrationError(failure)).toBe(true)
    expect((failure as Error).message).toMatch(/persistence\.enhancer/)
    expect(persistence.getStatus().slices.files?.hydration).toBe('error')
    expect(store.getState().files.ids).toEqual([])
  })

  test('keys from storage never reach a prototype', async () => {
    const factory = new IDBFactory()
    await seedStore(factory)
    const raw = createIdbStore({ dbName: 'redux-idb-sync', openTimeoutMs: 2000, factory, durability: 'default' })
    const evil = JSON.parse('{"id":"evil","name":"x","__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}}}') as unknown
    await raw.commit([
      { type: 'put', store: 'files', key: 'evil', value: evil },
      { type: 'put', store: 'notes', key: '__proto__', value: { text: 'proto-id' } },
    ])
    raw.close()
    const second = setup({ indexedDB: factory })
    await second.persistence.whenHydrated()
    const item = second.store.getState().files.entities.evil as unknown as Record<string, unknown>
    expect(Object.keys(item).sort()).toEqual(['id', 'name'])
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    expect(Object.getPrototypeOf(second.store.getState().notes)).toBe(Object.prototype)
    expect(Object.prototype.hasOwnProperty.call(second.store.getState().notes, '__proto__')).toBe(true)
  })
})

describe('versions and migrations', () => {
  async function storedAtVersion1(factory: IDBFactory) {
    const p = createPersistenceMiddleware({ indexedDB: factory, slices: { files: {} }, onError: () => {} })
    const store = configureStore({ reducer: { files: filesSlice.reducer }, middleware: (g) => g().concat(p), enhancers: (g) => g().concat(p.enhancer) })
    await p.whenHydrated()
    store.dispatch(addItem({ id: 'a', name: 'old shape' }))
    await p.dispose()
  }

  function at(factory: IDBFactory, migrate?: (items: unknown[], from: number) => unknown[], version = 2) {
    const errors: SyncError[] = []
    const p = createPersistenceMiddleware({
      indexedDB: factory,
      slices: { files: { version, ...(migrate ? { migrate: migrate as never } : {}) } },
      onError: (e) => errors.push(e),
    })
    live.push(p)
    const store = configureStore({ reducer: { files: filesSlice.reducer }, middleware: (g) => g().concat(p), enhancers: (g) => g().concat(p.enhancer) })
    return { p, store, errors }
  }

  test('migrate runs on an older version and rewrites the store in one transaction', async () => {
    const factory = new IDBFactory()
    await storedAtVersion1(factory)
    const calls: number[] = []
    const { p, store } = at(factory, (items, from) => {
      calls.push(from)
      return items.map((item) => ({ ...(item as object), name: `${(item as { name: string }).name}, migrated` }))
    })
    await p.whenHydrated()
    expect(calls).toEqual([1])
    expect(store.getState().files.entities.a).toEqual({ id: 'a', name: 'old shape, migrated' })
    expect((await readStore(factory, 'files')).get('a')).toEqual({ id: 'a', name: 'old shape, migrated' })
    expect((await readStore(factory, '__ris_meta')).get('files')).toEqual({ version: 2 })
  })

  test.each([
    [
      'a migrate that throws',
      () => {
        throw new Error('bad migration')
      },
      2,
    ],
    ['no migrate function', undefined, 2],
  ] as const)('%s: MigrationError, stored data untouched, writes held and not lost', async (_name, migrate, version) => {
    const factory = new IDBFactory()
    await storedAtVersion1(factory)
    const { p, store, errors } = at(factory, migrate as never, version)
    const failure = await p.whenHydrated().catch((e: unknown) => e)
    expect(isMigrationError(failure)).toBe(true)
    expect(errors.some(isMigrationError)).toBe(true)
    expect(p.getStatus().slices.files).toMatchObject({ hydration: 'error', error: { name: 'MigrationError' } })
    store.dispatch(addItem({ id: 'new', name: 'held' }))
    const flushed = await p.flush().catch((e: unknown) => e)
    expect((flushed as Error).name).toBe('FlushError')
    expect(p.getStatus().pendingOperations).toBe(1)
    expect(Object.fromEntries(await readStore(factory, 'files'))).toEqual({ a: { id: 'a', name: 'old shape' } })
    expect((await readStore(factory, '__ris_meta')).get('files')).toEqual({ version: 1 })
  })

  test('a downgrade is a MigrationError', async () => {
    const factory = new IDBFactory()
    await storedAtVersion1(factory)
    const second = at(factory, (items) => items, 2)
    await second.p.whenHydrated()
    await second.p.dispose()
    live.splice(live.indexOf(second.p), 1)
    const { p } = at(factory, (items) => items, 1)
    expect(isMigrationError(await p.whenHydrated().catch((e: unknown) => e))).toBe(true)
  })
})

describe('the database', () => {
  test('adding a slice later creates its store without losing data, while another connection is open', async () => {
    const factory = new IDBFactory()
    const first = createPersistenceMiddleware({ indexedDB: factory, slices: { files: {} }, onError: () => {} })
    live.push(first)
    const s1 = configureStore({ reducer: { files: filesSlice.reducer }, middleware: (g) => g().concat(first), enhancers: (g) => g().concat(first.enhancer) })
    await first.whenHydrated()
    s1.dispatch(addItem({ id: 'kept', name: 'K' }))
    await first.flush()
    // The first instance stays open; ours closes on versionchange, so the upgrade goes through.
    const second = setup({ indexedDB: factory })
    await second.persistence.whenHydrated()
    expect(second.store.getState().files.entities.kept).toEqual({ id: 'kept', name: 'K' })
    second.store.dispatch(setNote({ id: 'n', text: 'in the new store' }))
    await second.persistence.flush()
    expect((await readStore(factory, 'notes')).get('n')).toEqual({ text: 'in the new store' })
    // The first instance reopens transparently after being closed by the upgrade.
    s1.dispatch(addItem({ id: 'after-upgrade', name: 'X' }))
    await first.flush()
    expect((await readStore(factory, 'files')).has('after-upgrade')).toBe(true)
  })

  test('an upgrade blocked by a connection that never closes times out with StorageBlockedError instead of hanging', async () => {
    const factory = new IDBFactory()
    const first = createPersistenceMiddleware({ indexedDB: factory, slices: { files: {} }, onError: () => {} })
    const s1 = configureStore({ reducer: { files: filesSlice.reducer }, middleware: (g) => g().concat(first), enhancers: (g) => g().concat(first.enhancer) })
    await first.whenHydrated()
    s1.dispatch(addItem({ id: 'a', name: 'A' }))
    await first.dispose()
    // A foreign connection that ignores versionchange.
    const stubborn = await new Promise<IDBDatabase>((resolve) => {
      const r = factory.open('redux-idb-sync')
      r.onsuccess = () => resolve(r.result)
    })
    const second = setup({ indexedDB: factory, openTimeoutMs: 200 })
    const failure = await second.persistence.whenHydrated().catch((e: unknown) => e)
    expect(isStorageBlockedError(failure)).toBe(true)
    expect((failure as { blocked: boolean }).blocked).toBe(true)
    expect(second.persistence.getStatus().lastError?.name).toBe('StorageBlockedError')
    // Nothing was wiped: the stored item is still there.
    stubborn.close()
    expect((await readStore(factory, 'files')).get('a')).toEqual({ id: 'a', name: 'A' })
  })

  test('a lost connection is dropped and reopened, not reused', async () => {
    const factory = new IDBFactory()
    const connections: IDBDatabase[] = []
    const spying = new Proxy(factory, {
      get(target, prop) {
        if (prop !== 'open') return Reflect.get(target, prop) as unknown
        return (name: string, version?: number) => {
          const request = version === undefined ? target.open(name) : target.open(name, version)
          request.addEventListener('success', () => connections.push(request.result))
          return request
        }
      },
    })
    const { store, persistence, errors } = setup({ indexedDB: spying })
    await persistence.whenHydrated()
    store.dispatch(addItem({ id: 'one', name: '1' }))
    await persistence.flush()
    const opened = connections.length
    forceCloseDatabase(connections.at(-1)! as never)
    store.dispatch(addItem({ id: 'two', name: '2' }))
    await persistence.flush()
    expect(connections.length).toBeGreaterThan(opened)
    expect([...(await readStore(factory, 'files')).keys()].sort()).toEqual(['one', 'two'])
    expect(errors).toEqual([])
  })
})
