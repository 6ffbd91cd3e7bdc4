import { describe, expect, test } from 'vitest'
import { createStatusStore, type PersistenceStatus, type SliceStatus } from '../../src/persistence/status'

const slice = (storeName: string): SliceStatus => ({ storeName, enabled: true, hydration: 'pending', version: 1, error: null })

const initial = (): PersistenceStatus => ({
  dbName: 'db',
  storage: 'indexeddb',
  persistent: true,
  hydrated: false,
  slices: { files: slice('files'), notes: slice('notes') },
  pendingOperations: 0,
  lastCommitTime: null,
  lastError: null,
  errorCount: 0,
  disposed: false,
})

/** Lets queued microtasks run. */
const microtasks = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await Promise.resolve()
}

describe('createStatusStore: snapshots', () => {
  test('the first snapshot is the initial status, frozen', () => {
    const store = createStatusStore(initial())
    expect(store.get()).toEqual(initial())
    expect(Object.isFrozen(store.get())).toBe(true)
  })

  test('the snapshot is the same object until something changes, then a new frozen one, built once', () => {
    const store = createStatusStore(initial())
    const first = store.get()
    expect(store.get()).toBe(first)
    store.update({ pendingOperations: 3 })
    const second = store.get()
    expect(second).not.toBe(first)
    expect(store.get()).toBe(second)
    expect(second.pendingOperations).toBe(3)
    expect(Object.isFrozen(second)).toBe(true)
    expect(Object.isFrozen(second.slices)).toBe(true)
  })

  test('an old snapshot never changes', () => {
    const store = createStatusStore(initial())
    const first = store.get()
    store.update({ pendingOperations: 3, hydrated: true })
    store.slice('files', { hydration: 'done' })
    store.get()
    expect(first).toEqual(initial())
  })

  test('the initial object passed in is not mutated by updates', () => {
    const start = initial()
    const store = createStatusStore(start)
    store.update({ errorCount: 2 })
    store.slice('files', { enabled: false })
    expect(start).toEqual(initial())
  })

  test('several updates between reads are one snapshot with all of them', () => {
    const store = createStatusStore(initial())
    store.update({ pendingOperations: 1 })
    store.update({ pendingOperations: 2, errorCount: 1 })
    expect(store.get()).toMatchObject({ pendingOperations: 2, errorCount: 1 })
  })
})

describe('createStatusStore: slices', () => {
  test('slice() patches one slice; the others keep their references', () => {
    const store = createStatusStore(initial())
    const notesBefore = store.get().slices.notes
    store.slice('files', { hydration: 'done', version: 2 })
    const after = store.get()
    expect(after.slices.files).toEqual({ ...slice('files'), hydration: 'done', version: 2 })
    expect(Object.isFrozen(after.slices.files)).toBe(true)
    expect(after.slices.notes).toBe(notesBefore)
  })

  test('slice() of an unknown slice changes nothing: no new snapshot, no notification', async () => {
    const store = createStatusStore(initial())
    const before = store.get()
    let heard = 0
    store.subscribe(() => heard++)
    store.slice('nope', { enabled: false })
    await microtasks()
    expect(store.get()).toBe(before)
    expect(store.get().slices).not.toHaveProperty('nope')
    expect(heard).toBe(0)
  })
})

describe('createStatusStore: listeners', () => {
  test('hear once per microtask however many fields changed, with the current snapshot, never synchronously', async () => {
    const store = createStatusStore(initial())
    const heard: PersistenceStatus[] = []
    store.subscribe((s) => heard.push(s))
    store.update({ pendingOperations: 1 })
    store.slice('files', { hydration: 'done' })
    store.update({ hydrated: true })
    expect(heard).toEqual([])
    await microtasks()
    expect(heard).toHaveLength(1)
    expect(heard[0]).toBe(store.get())
    expect(heard[0]).toMatchObject({ pendingOperations: 1, hydrated: true, slices: { files: { hydration: 'done' } } })
    store.update({ pendingOperations: 0 })
    await microtasks()
    expect(heard).toHaveLength(2)
  })

  test('an update made with no listener notifies nobody later; a listener added afterwards hears the next change', async () => {
    const store = createStatusStore(initial())
    store.update({ pendingOperations: 1 })
    const heard: PersistenceStatus[] = []
    store.subscribe((s) => heard.push(s))
    await microtasks()
    expect(heard).toEqual([])
    store.update({ pendingOperations: 2 })
    await microtasks()
    expect(heard.map((s) => s.pendingOperations)).toEqual([2])
  })

  test('subscribe returns the unsubscribe; an unsubscribed listener hears nothing more', async () => {
    const store = createStatusStore(initial())
    let heard = 0
    const unsubscribe = store.subscribe(() => heard++)
    store.update({ errorCount: 1 })
    await microtasks()
    unsubscribe()
    store.update({ errorCount: 2 })
    await microtasks()
    expect(heard).toBe(1)
  })

  test('a listener that throws does not starve the others', async () => {
    const store = createStatusStore(initial())
    const heard: string[] = []
    store.subscribe(() => heard.push('before'))
    store.subscribe(() => {
      throw new Error('listener bug')
    })
    store.subscribe(() => heard.push('after'))
    store.update({ disposed: true })
    await microtasks()
    expect(heard).toEqual(['before', 'after'])
  })

  test('an update from inside a listener is heard in a later round, not lost', async () => {
    const store = createStatusStore(initial())
    const heard: number[] = []
    store.subscribe((s) => {
      heard.push(s.errorCount)
      if (s.errorCount === 1) store.update({ errorCount: 2 })
    })
    store.update({ errorCount: 1 })
    await microtasks()
    expect(heard).toEqual([1, 2])
  })
})
