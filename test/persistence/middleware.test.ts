import { configureStore } from '@reduxjs/toolkit'
import { IDBFactory } from 'fake-indexeddb'
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest'
import {
  configurePersistence,
  createPersistenceMiddleware,
  disablePersistence,
  enablePersistence,
  flushPersistence,
  InvalidOptionError,
  isFlushError,
  isInvalidOptionError,
  NonSerializableError,
  TransactionAbortedError,
  type PersistenceMiddleware,
  type SyncError,
} from '../../src'
import { advance, useFakeClock } from '../support/clock'
import { instrumentedStore, readStore, until } from '../support/instrumentedStore'
import {
  addItem,
  addTodo,
  deleteFile,
  filesSlice,
  makeStore,
  notesSlice,
  removeItem,
  removeNote,
  removeTodo,
  renameAll,
  saveFile,
  setFiles,
  setFilter,
  setNote,
  todosSlice,
  toggle,
  updateItem,
} from '../support/store'

const live: PersistenceMiddleware[] = []
afterEach(async () => {
  vi.useRealTimers()
  for (const p of live.splice(0)) await p.dispose()
})

function setup(options: Parameters<typeof makeStore>[0] & { storage?: ReturnType<typeof instrumentedStore> }) {
  const errors: SyncError[] = []
  const made = makeStore({ onError: (e) => errors.push(e), ...options })
  live.push(made.persistence)
  return { ...made, errors }
}

const puts = (commits: Array<Array<{ type: string; store: string }>>, store = 'files') =>
  commits.flat().filter((op) => op.type === 'put' && op.store === store).length
const deletes = (commits: Array<Array<{ type: string; store: string }>>, store = 'files') =>
  commits.flat().filter((op) => op.type === 'delete' && op.store === store).length

describe('writing', () => {
  test('25 changed keys with batchSize 10: at most 10 operations per transaction, all 25 land', async () => {
    const factory = new IDBFactory()
    const storage = instrumentedStore(factory)
    const { store, persistence } = setup({ indexedDB: factory, storage, slices: { files: { batchSize: 10, debounceMs: 20 } } })
    await persistence.whenHydrated()
    for (let i = 0; i < 25; i++) store.dispatch(addItem({ id: `f${i}`, name: `n${i}` }))
    await persistence.flush()
    const batches = storage.sliceCommits().map((ops) => ops.filter((op) => op.store === 'files').length)
    expect(batches).toEqual([10, 10, 5])
    const stored = await readStore(factory, 'files')
    expect(stored.size).toBe(25)
    expect(stored.get('f24')).toEqual({ id: 'f24', name: 'n24' })
  })

  test('a transaction that aborts keeps its operations, and the next flush writes them', async () => {
    const factory = new IDBFactory()
    const storage = instrumentedStore(factory)
    const { store, persistence, errors } = setup({ indexedDB: factory, storage, slices: { files: {} } })
    await persistence.whenHydrated()
    store.dispatch(addItem({ id: 'a', name: 'A' }))
    storage.failNext(new TransactionAbortedError('aborted by the test', { stores: ['files'] }))
    const failure = await persistence.flush().catch((e: unknown) => e)
    expect(isFlushError(failure)).toBe(true)
    expect(errors.map((e) => e.name)).toContain('TransactionAbortedError')
    expect(persistence.getStatus().pendingOperations).toBe(1)
    expect((await readStore(factory, 'files')).size).toBe(0)
    await persistence.flush()
    expect((await readStore(factory, 'files')).get('a')).toEqual({ id: 'a', name: 'A' })
    expect(persistence.getStatus().pendingOperations).toBe(0)
  })

  test('setFiles replacing 1,000 items with 1,000 others writes 1,000 puts and 1,000 deletes', async () => {
    const factory = new IDBFactory()
    const storage = instrumentedStore(factory)
    const { store, persistence } = setup({ indexedDB: factory, storage, slices: { files: { batchSize: 100 } } })
    await persistence.whenHydrated()
    store.dispatch(setFiles(Array.from({ length: 1000 }, (_, i) => ({ id: `old${i}`, name: 'old' }))))
    await persistence.flush()
    const before = storage.commits.length
    store.dispatch(setFiles(Array.from({ length: 1000 }, (_, i) => ({ id: `new${i}`, name: 'new' }))))
    await persistence.flush()
    const after = storage.commits.slice(before)
    expect(puts(after)).toBe(1000)
    expect(deletes(after)).toBe(1000)
    const stored = await readStore(factory, 'files')
    expect(stored.size).toBe(1000)
    expect([...stored.keys()].every((k) => String(k).startsWith('new'))).toBe(true)
  })

  test('flush resolves only after the data is committed', async () => {
    const factory = new IDBFactory()
    const { store, persistence } = setup({ indexedDB: factory, slices: { files: { debounceMs: 10_000 } } })
    await persistence.whenHydrated()
    store.dispatch(addItem({ id: 'x', name: 'X' }))
    await persistence.flush()
    expect((await readStore(factory, 'files')).get('x')).toEqual({ id: 'x', name: 'X' })
  })
})

describe('change detection', () => {
  test('the seed’s action families and any other action are persisted', async () => {
    const factory = new IDBFactory()
    const { store, persistence } = setup({ indexedDB: factory })
    await persistence.whenHydrated()
    store.dispatch(addItem({ id: 'a', name: 'A' }))
    store.dispatch(addItem({ id: 'b', name: 'B' }))
    store.dispatch(saveFile({ id: 'c', name: 'C' }))
    store.dispatch(updateItem({ id: 'a', name: 'A2' }))
    store.dispatch(removeItem('b'))
    store.dispatch(addItem({ id: 'd', name: 'D' }))
    store.dispatch(deleteFile('d'))
    await persistence.flush()
    expect(Object.fromEntries(await readStore(factory, 'files'))).toEqual({ a: { id: 'a', name: 'A2' }, c: { id: 'c', name: 'C' } })
    store.dispatch(renameAll('same')) // no ids in the payload
    await persistence.flush()
    expect([...(await readStore(factory, 'files')).values()].map((f) => (f as { name: string }).name)).toEqual(['same', 'same'])
  })

  test('record and array (nested under path) slices', async () => {
    const factory = new IDBFactory()
    const { store, persistence } = setup({ indexedDB: factory })
    await persistence.whenHydrated()
    store.dispatch(setNote({ id: 'n1', text: 'one' }))
    store.dispatch(setNote({ id: 'n2', text: 'two' }))
    store.dispatch(removeNote('n1'))
    store.dispatch(addTodo({ id: 1, title: 'a' }))
    store.dispatch(addTodo({ id: 2, title: 'b' }))
    store.dispatch(toggle(2))
    store.dispatch(removeTodo(1))
    await persistence.flush()
    expect(Object.fromEntries(await readStore(factory, 'notes'))).toEqual({ n2: { text: 'two' } })
    expect(Object.fromEntries(await readStore(factory, 'todos'))).toEqual({ 2: { id: 2, title: 'b', done: true } })
  })

  test('a change outside the collection writes nothing; actions on unpersisted state cost no writes', async () => {
    const factory = new IDBFactory()
    const storage = instrumentedStore(factory)
    const { store, persistence } = setup({ indexedDB: factory, storage })
    await persistence.whenHydrated()
    store.dispatch(addTodo({ id: 1, title: 'a' }))
    await persistence.flush()
    const before = storage.commits.length
    store.dispatch(setFilter('done'))
    store.dispatch({ type: 'unrelated/action' })
    await persistence.flush()
    expect(storage.commits.length).toBe(before)
  })

  test('an item without an id is reported and skipped; a throwing getId never throws into dispatch', async () => {
    const factory = new IDBFactory()
    const { store, persistence, errors } = setup({
      indexedDB: factory,
      slices: {
        todos: { path: ['items'], getId: (t: { id: number }) => (t.id === 13 ? undefined : t.id) },
        files: {
          shape: 'array',
          path: ['ids'],
          getId: () => {
            throw new Error('boom')
          },
        },
      },
    })
    await persistence.whenHydrated()
    store.dispatch(addTodo({ id: 1, title: 'ok' }))
    store.dispatch(addTodo({ id: 13, title: 'no id' }))
    expect(() => store.dispatch(addItem({ id: 'a', name: 'A' }))).not.toThrow()
    await persistence.flush()
    expect(errors.map((e) => e.name)).toContain('InvalidItemError')
    expect(errors.map((e) => e.message).join('\n')).toMatch(/finding changes in slice "files" failed: boom/)
    expect([...(await readStore(factory, 'todos')).keys()]).toEqual([1])
    expect(persistence.getStatus().errorCount).toBeGreaterThanOrEqual(2)
  })
})

describe('non-serializable values', () => {
  // RTK's own dev check also complains (on console.error) about such values in state; that is
  // the app's business, not what these tests look at.
  beforeEach(() => {
    vi.spyOn(console, 'error').mockImplementation(() => {})
  })
  class WithMethods {
    x = 1
    method(): number {
      return this.x
    }
  }
  const circular: Record<string, unknown> = { id: 'bad' }
  circular.self = circular
  // (10,000 levels overflow Immer inside the reducer before we ever see them; the validator's own
  // handling of 10,000 levels is tested in test/utils/serializable.test.ts.)
  let deep: Record<string, unknown> = { leaf: true }
  for (let i = 0; i < 150; i++) deep = { deep }

  test.each<[string, unknown, RegExp]>([
    ['a function', () => 1, /function/],
    ['a circular reference', circular.self, /circular/],
    ['a symbol', Symbol('s'), /symbol/],
    ['a class instance with methods', new WithMethods(), /instance of WithMethods/],
    ['a BigInt', BigInt(1), /BigInt/],
    ['150 levels of nesting (maxDepth 100)', deep, /deeper than maxDepth/],
  ])('%s gets a typed error naming slice and key; everything else is written', async (_name, bad, reason) => {
    const factory = new IDBFactory()
    const { store, persistence, errors } = setup({ indexedDB: factory })
    await persistence.whenHydrated()
    store.dispatch(addItem({ id: 'good1', name: 'ok' }))
    store.dispatch(addItem({ id: 'bad', name: 'x', body: bad }))
    store.dispatch(addItem({ id: 'good2', name: 'ok' }))
    const failure = await persistence.flush().catch((e: unknown) => e)
    expect(isFlushError(failure)).toBe(true)
    const error = errors.find((e) => e instanceof NonSerializableError) as NonSerializableError
    expect(error.slice).toBe('files')
    expect(error.key).toBe('files:bad')
    expect(error.message).toMatch(reason)
    expect(persistence.getStatus().lastError).toMatchObject({ name: 'NonSerializableError', key: 'files:bad' })
    expect([...(await readStore(factory, 'files')).keys()].sort()).toEqual(['good1', 'good2'])
    expect(persistence.getStatus().pendingOperations).toBe(0)
  })
})

describe('two stores', () => {
  test('different dbNames do not interfere; module-level functions act on every live instance', async () => {
    const factory = new IDBFactory()
    const a = setup({ indexedDB: factory, dbName: 'db-a', slices: { files: { debounceMs: 60_000 } } })
    const b = setup({ indexedDB: factory, dbName: 'db-b', slices: { files: { debounceMs: 60_000 } } })
    await Promise.all([a.persistence.whenHydrated(), b.persistence.whenHydrated()])
    a.store.dispatch(addItem({ id: 'only-a', name: 'A' }))
    b.store.dispatch(addItem({ id: 'only-b', name: 'B' }))
    await flushPersistence() // both, despite the minute-long debounce
    expect([...(await readStore(factory, 'files', 'db-a')).keys()]).toEqual(['only-a'])
    expect([...(await readStore(factory, 'files', 'db-b')).keys()]).toEqual(['only-b'])
    disablePersistence('files')
    expect(a.persistence.getStatus().slices.files?.enabled).toBe(false)
    expect(b.persistence.getStatus().slices.files?.enabled).toBe(false)
    enablePersistence('files')
    configurePersistence('files', { debounceMs: 5 })
    a.store.dispatch(addItem({ id: 'a2', name: 'A' }))
    await until(async () => (await readStore(factory, 'files', 'db-a')).has('a2'), 'the 5 ms debounce')
    expect(() => configurePersistence('nope', { debounceMs: 1 })).toThrow(InvalidOptionError)
  })
})

describe('control API', () => {
  test('disable stops writes; enable writes what changed meanwhile', async () => {
    const factory = new IDBFactory()
    const { store, persistence } = setup({ indexedDB: factory })
    await persistence.whenHydrated()
    persistence.disable('files')
    store.dispatch(addItem({ id: 'while-off', name: 'x' }))
    await persistence.flush()
    expect((await readStore(factory, 'files')).size).toBe(0)
    persistence.enable('files')
    await persistence.flush()
    expect([...(await readStore(factory, 'files')).keys()]).toEqual(['while-off'])
  })

  test('configure changes timing and rejects what cannot change', async () => {
    const factory = new IDBFactory()
    const { store, persistence } = setup({ indexedDB: factory })
    await persistence.whenHydrated()
    persistence.configure('files', { debounceMs: 400 })
    store.dispatch(addItem({ id: 'a', name: 'A' }))
    const start = Date.now()
    await until(async () => (await readStore(factory, 'files')).has('a'), 'the write', 3000)
    expect(Date.now() - start).toBeGreaterThanOrEqual(380)
    expect(() => persistence.configure('files', { storeName: 'x' } as never)).toThrow(/storeName/)
    expect(() => persistence.configure('files', { debounceMs: -1 })).toThrow(/debounceMs/)
    expect(() => persistence.configure('nope', {})).toThrow(InvalidOptionError)
  })

  test.each<[string, Record<string, unknown>, string]>([
    ['no slices', { slices: {} }, 'slices'],
    ['a negative debounce', { slices: { files: { debounceMs: -1 } } }, 'slices.files.debounceMs'],
    ['a zero batch size', { slices: { files: { batchSize: 0 } } }, 'slices.files.batchSize'],
    ['a reserved store name', { slices: { files: { storeName: '__ris_x' } } }, 'slices.files.storeName'],
    ['two slices on one store', { slices: { a: { storeName: 's' }, b: { storeName: 's' } } }, 'slices.b.storeName'],
    ['an empty dbName', { slices: { files: {} }, dbName: '' }, 'dbName'],
    ['a bad shape', { slices: { files: { shape: 'tree' } } }, 'slices.files.shape'],
    ['a bad strategy', { slices: { files: { conflict: 'coin-flip' } } }, 'slices.files.conflict'],
  ])('invalid options (%s) throw InvalidOptionError naming the option', (_name, options, option) => {
    let caught: unknown
    try {
      createPersistenceMiddleware(options as never)
    } catch (error) {
      caught = error
    }
    expect(isInvalidOptionError(caught)).toBe(true)
    expect((caught as InvalidOptionError).option).toBe(option)
  })

  test('dispose flushes what is pending, stops timers and closes the database', async () => {
    const factory = new IDBFactory()
    const storage = instrumentedStore(factory)
    const { store, persistence } = setup({ indexedDB: factory, storage, slices: { files: { debounceMs: 60_000 } } })
    await persistence.whenHydrated()
    store.dispatch(addItem({ id: 'pending', name: 'p' }))
    await persistence.dispose()
    expect((await readStore(factory, 'files')).has('pending')).toBe(true)
    const commits = storage.commits.length
    useFakeClock()
    store.dispatch(addItem({ id: 'after', name: 'a' }))
    await advance(61_000) // past the 60 s debounce the change would have waited for
    expect(storage.commits.length).toBe(commits)
    expect(persistence.getStatus().disposed).toBe(true)
    // Closed: an upgrade by another connection is not blocked.
    const upgraded = await new Promise<number>((resolve, reject) => {
      const request = factory.open('redux-idb-sync', 99)
      request.onsuccess = () => {
        request.result.close()
        resolve(request.result.version)
      }
      request.onerror = () => reject(request.error)
      request.onblocked = () => reject(new Error('blocked'))
    })
    expect(upgraded).toBe(99)
  })
})

describe('status and SSR', () => {
  test('without IndexedDB, importing and creating work; the instance runs in memory and says so', async () => {
    expect(typeof (globalThis as { indexedDB?: unknown }).indexedDB).toBe('undefined')
    const errors: SyncError[] = []
    const persistence = createPersistenceMiddleware({ slices: { files: {} }, onError: (e) => errors.push(e) })
    live.push(persistence)
    const store = configureStore({
      reducer: { files: filesSlice.reducer },
      middleware: (g) => g().concat(persistence),
      enhancers: (g) => g().concat(persistence.enhancer),
    })
    await persistence.whenHydrated()
    store.dispatch(addItem({ id: 'a', name: 'A' }))
    await persistence.flush()
    expect(store.getState().files.ids).toEqual(['a'])
    expect(persistence.getStatus()).toMatchObject({ storage: 'memory', persistent: false, hydrated: true })
    expect(errors.map((e) => e.name)).toContain('StorageUnavailableError')
  })

  test('getStatus is stable while nothing changes and subscribers hear about changes', async () => {
    const factory = new IDBFactory()
    const { store, persistence } = setup({ indexedDB: factory })
    await persistence.whenHydrated()
    expect(persistence.getStatus()).toBe(persistence.getStatus())
    const seen: number[] = []
    const unsubscribe = persistence.subscribe((s) => seen.push(s.pendingOperations))
    store.dispatch(addItem({ id: 'a', name: 'A' }))
    await persistence.flush()
    await Promise.resolve()
    unsubscribe()
    expect(seen).toContain(0)
    expect(Object.isFrozen(persistence.getStatus())).toBe(true)
  })

  test('notes and todos slices compose with unpersisted reducers', () => {
    expect(notesSlice.name).toBe('notes')
    expect(todosSlice.reducer(undefined, { type: 'x' }).filter).toBe('all')
  })
})
