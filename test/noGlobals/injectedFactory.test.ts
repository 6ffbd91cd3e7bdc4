import { configureStore, createEntityAdapter, createSlice } from '@reduxjs/toolkit'
import { IDBFactory } from 'fake-indexeddb'
import { describe, expect, test } from 'vitest'
import { createIdbStore, createPersistenceMiddleware } from '../../src'

// README, Options: `indexedDB` — "the IndexedDB factory (inject one in tests)". A user's test
// imports fake-indexeddb's IDBFactory and nothing else: no `fake-indexeddb/auto`, so none of the
// IndexedDB classes idb looks for with `instanceof` exist as globals.

interface FileItem {
  id: string
  name: string
  body: string
}
const files = createEntityAdapter<FileItem>()
const filesSlice = createSlice({
  name: 'files',
  initialState: files.getInitialState(),
  reducers: { saveFile: files.upsertOne, deleteFile: files.removeOne },
})

function makeStore(factory: IDBFactory) {
  const persistence = createPersistenceMiddleware({
    dbName: 'injected',
    slices: { files: { debounceMs: 10 } },
    indexedDB: factory,
    onError: (error) => {
      throw error
    },
  })
  const store = configureStore({
    reducer: { files: filesSlice.reducer },
    middleware: (getDefault) => getDefault().concat(persistence),
    enhancers: (getDefault) => getDefault().concat(persistence.enhancer),
  })
  return { persistence, store }
}

describe('an injected IDBFactory without the IndexedDB globals', () => {
  test('the runtime really has no IndexedDB globals here', () => {
    expect(typeof (globalThis as { IDBRequest?: unknown }).IDBRequest).toBe('undefined')
    expect(typeof (globalThis as { IDBDatabase?: unknown }).IDBDatabase).toBe('undefined')
    expect(typeof (globalThis as { indexedDB?: unknown }).indexedDB).toBe('undefined')
  })

  test('hydrates, writes, deletes and hydrates again in a second store on the same factory', async () => {
    const factory = new IDBFactory()
    const first = makeStore(factory)
    await first.persistence.whenHydrated()
    expect(first.persistence.getStatus()).toMatchObject({ storage: 'indexeddb', persistent: true, hydrated: true, errorCount: 0 })
    first.store.dispatch(filesSlice.actions.saveFile({ id: 'a', name: 'notes.txt', body: 'hi' }))
    first.store.dispatch(filesSlice.actions.saveFile({ id: 'b', name: 'todo.txt', body: 'later' }))
    await first.persistence.flush()
    first.store.dispatch(filesSlice.actions.deleteFile('b'))
    await first.persistence.flush()
    await first.persistence.dispose()

    const second = makeStore(factory)
    await second.persistence.whenHydrated()
    expect(second.store.getState().files.entities).toEqual({ a: { id: 'a', name: 'notes.txt', body: 'hi' } })
    expect(second.persistence.getStatus().errorCount).toBe(0)
    await second.persistence.dispose()
  })

  test('createIdbStore on an injected factory: commit, readAll, get and getMany', async () => {
    const store = createIdbStore({ dbName: 'direct', openTimeoutMs: 2000, factory: new IDBFactory(), durability: 'default' })
    await store.ensureStores(['items'])
    await store.commit([
      { type: 'put', store: 'items', key: 'b', value: { id: 'b' } },
      { type: 'put', store: 'items', key: 1, value: { id: 1 } },
      { type: 'put', store: 'items', key: 'gone', value: { id: 'gone' } },
      { type: 'deleteIf', store: 'items', key: 'gone', field: 'id', equals: 'gone' },
    ])
    expect(await store.readAll('items')).toEqual([
      [1, { id: 1 }],
      ['b', { id: 'b' }],
    ])
    expect(await store.get('items', 'b')).toEqual({ id: 'b' })
    expect(await store.getMany('items', ['b', 'missing', 1])).toEqual([{ id: 'b' }, undefined, { id: 1 }])
    // A failed request inside a batch aborts the whole transaction, as with idb: nothing applied.
    await expect(
      store.commit([
        { type: 'put', store: 'items', key: 'c', value: { id: 'c' } },
        { type: 'put', store: 'items', key: 'd', value: { fn: () => 1 } },
      ]),
    ).rejects.toMatchObject({ name: expect.stringMatching(/Error$/) })
    expect(await store.get('items', 'c')).toBeUndefined()
    store.close()
  })
})
