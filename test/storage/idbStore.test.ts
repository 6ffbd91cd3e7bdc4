import { IDBDatabase, IDBFactory, IDBObjectStore } from 'fake-indexeddb'
import { afterEach, describe, expect, test, vi } from 'vitest'
import { createIdbStore } from '../../src'
import { META_STORE } from '../../src/storage/types'

const open = () => createIdbStore({ dbName: 'read-all', openTimeoutMs: 2000, factory: new IDBFactory(), durability: 'default' })

describe('readAll', () => {
  const original = Object.getOwnPropertyDescriptor(IDBObjectStore.prototype, 'getAllRecords')
  afterEach(() => {
    if (original) Object.defineProperty(IDBObjectStore.prototype, 'getAllRecords', original)
  })

  // getAllRecords is newer than most browsers; the fallback (getAllKeys + getAll) must agree.
  test.each([
    ['with getAllRecords', false],
    ['without getAllRecords (two requests)', true],
  ])('%s: every key with its value, in key order, numeric and string keys kept apart', async (_name, hide) => {
    expect(typeof original?.value).toBe('function')
    if (hide) Object.defineProperty(IDBObjectStore.prototype, 'getAllRecords', { value: undefined, configurable: true, writable: true })
    const store = open()
    await store.ensureStores(['items'])
    await store.commit([
      { type: 'put', store: 'items', key: 'b', value: { id: 'b', n: 2 } },
      { type: 'put', store: 'items', key: 2, value: { id: 2 } },
      { type: 'put', store: 'items', key: 'a', value: { id: 'a', nested: { deep: [1, 2] } } },
      { type: 'put', store: 'items', key: 10, value: null },
    ])
    expect(await store.readAll('items')).toEqual([
      [2, { id: 2 }],
      [10, null],
      ['a', { id: 'a', nested: { deep: [1, 2] } }],
      ['b', { id: 'b', n: 2 }],
    ])
    expect(await store.readAll('missing-store-is-created-on-demand').catch((e: unknown) => e)).toEqual([])
    store.close()
  })
  test.each([
    ['with getAllRecords', false],
    ['without getAllRecords (two requests)', true],
  ])('readItems (%s): meta and every item from one transaction', async (_name, hide) => {
    if (hide) Object.defineProperty(IDBObjectStore.prototype, 'getAllRecords', { value: undefined, configurable: true, writable: true })
    const store = open()
    await store.ensureStores(['items', META_STORE])
    await store.commit([
      { type: 'put', store: 'items', key: 'b', value: { id: 'b' } },
      { type: 'put', store: 'items', key: 1, value: { id: 1 } },
      { type: 'put', store: META_STORE, key: 'items', value: { version: 3 } },
    ])
    const transaction = vi.spyOn(IDBDatabase.prototype, 'transaction')
    try {
      const read = await store.readItems!('items', 'items')
      expect(transaction).toHaveBeenCalledTimes(1)
      expect(transaction.mock.calls[0]![1]).toBe('readonly')
      expect(read.meta).toEqual({ version: 3 })
      expect(Array.from({ length: read.size }, (_, i) => [read.keyAt(i), read.valueAt(i)])).toEqual([
        [1, { id: 1 }],
        ['b', { id: 'b' }],
      ])
      expect((await store.readItems!('items', 'no-meta')).meta).toBeUndefined()
    } finally {
      transaction.mockRestore()
      store.close()
    }
  })
})
