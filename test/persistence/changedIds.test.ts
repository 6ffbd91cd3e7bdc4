import { configureStore, createEntityAdapter, createSlice, type PayloadAction } from '@reduxjs/toolkit'
import { IDBFactory } from 'fake-indexeddb'
import { afterEach, describe, expect, test } from 'vitest'
import {
  createPersistenceMiddleware,
  idsFromPayload,
  isInvalidOptionError,
  type PersistenceMiddleware,
  type SlicePersistenceConfig,
  type SyncError,
} from '../../src'
import { readStore } from '../support/instrumentedStore'

interface Doc {
  id: string
  text: string
}
const docs = createEntityAdapter<Doc>()
const docsSlice = createSlice({
  name: 'docs',
  initialState: docs.getInitialState(),
  reducers: {
    upsert: docs.upsertOne,
    update: docs.updateOne,
    remove: docs.removeOne,
    addMany: docs.addMany,
    removeAll: docs.removeAll,
    /** Lies to `idsFromPayload`: its payload names one id, it changes another. */
    copyInto(state, action: PayloadAction<{ id: string; to: string }>) {
      const target = state.entities[action.payload.to]
      if (target) target.text = state.entities[action.payload.id]?.text ?? ''
    },
  },
})
const notesSlice = createSlice({
  name: 'notes',
  initialState: {} as Record<string, { text: string }>,
  reducers: {
    setNote(state, action: PayloadAction<{ id: string; text: string }>) {
      state[action.payload.id] = { text: action.payload.text }
    },
    dropNote(state, action: PayloadAction<string>) {
      delete state[action.payload]
    },
  },
})
const { upsert, update, remove, addMany, removeAll, copyInto } = docsSlice.actions
const { setNote, dropNote } = notesSlice.actions

const live: PersistenceMiddleware[] = []
afterEach(async () => {
  for (const p of live.splice(0)) await p.dispose()
})

function setup(config: SlicePersistenceConfig = {}) {
  const factory = new IDBFactory()
  const errors: SyncError[] = []
  const calls: string[] = []
  const changedIds = config.changedIds
  const persistence = createPersistenceMiddleware({
    indexedDB: factory,
    onError: (e) => errors.push(e),
    slices: {
      docs: {
        debounceMs: 0,
        ...config,
        ...(changedIds
          ? {
              changedIds: (action) => {
                calls.push(action.type)
                return changedIds(action)
              },
            }
          : {}),
      },
      notes: { debounceMs: 0, changedIds: idsFromPayload },
    },
  })
  live.push(persistence)
  const store = configureStore({
    reducer: { docs: docsSlice.reducer, notes: notesSlice.reducer },
    middleware: (getDefault) => getDefault().concat(persistence),
    enhancers: (getDefault) => getDefault().concat(persistence.enhancer),
  })
  const stored = async (name = 'docs') => Object.fromEntries(await readStore(factory, name))
  return { store, persistence, errors, calls, stored }
}

describe('idsFromPayload', () => {
  test.each([
    ['an id', 'a', ['a']],
    ['a numeric id', 7, [7]],
    ['an item', { id: 'a', text: 'x' }, ['a']],
    ['an update', { id: 'a', changes: { text: 'x' } }, ['a']],
    ['ids', ['a', 'b'], ['a', 'b']],
    ['items and updates', [{ id: 'a' }, { id: 'b', changes: {} }], ['a', 'b']],
  ])('reads %s', (_, payload, ids) => {
    expect(idsFromPayload({ type: 't', payload })).toEqual(ids)
  })

  test.each([
    ['no payload', undefined],
    ['an empty array', []],
    ['an empty id', ''],
    ['an item without id', { text: 'x' }],
    ['an array with one unreadable element', ['a', { text: 'x' }]],
    ['a dictionary', { a: { text: 'x' } }],
  ])('cannot tell from %s', (_, payload) => {
    expect(idsFromPayload({ type: 't', payload })).toBeUndefined()
  })
})

describe('changedIds', () => {
  test('persists updates, additions and removals exactly as the full diff does', async () => {
    const { store, persistence, stored, errors } = setup({ changedIds: idsFromPayload, verifyChangedIds: true })
    await persistence.whenHydrated()
    store.dispatch(
      addMany([
        { id: 'a', text: '1' },
        { id: 'b', text: '2' },
        { id: 'c', text: '3' },
      ]),
    )
    store.dispatch(update({ id: 'b', changes: { text: '2b' } }))
    await persistence.flush()
    store.dispatch(upsert({ id: 'c', text: '3c' }))
    store.dispatch(remove('a'))
    await persistence.flush()
    expect(await stored()).toEqual({ b: { id: 'b', text: '2b' }, c: { id: 'c', text: '3c' } })
    store.dispatch(removeAll())
    await persistence.flush()
    expect(await stored()).toEqual({})
    expect(errors).toEqual([])
  })

  test('an update of existing items is diffed from the hint alone (a lying hint shows it)', async () => {
    const { store, persistence, stored, calls } = setup({ changedIds: idsFromPayload })
    await persistence.whenHydrated()
    store.dispatch(
      addMany([
        { id: 'a', text: 'A' },
        { id: 'b', text: 'B' },
      ]),
    )
    await persistence.flush()
    // The payload names "a"; the reducer changes "b". Trusting the hint, nothing is written.
    store.dispatch(copyInto({ id: 'a', to: 'b' }))
    await persistence.flush()
    expect(store.getState().docs.entities.b?.text).toBe('A')
    expect((await stored()).b).toEqual({ id: 'b', text: 'B' })
    expect(calls).toContain(copyInto.type)
  })

  test('verifyChangedIds persists what a hint missed and names the action', async () => {
    const { store, persistence, stored, errors } = setup({ changedIds: idsFromPayload, verifyChangedIds: true })
    await persistence.whenHydrated()
    store.dispatch(
      addMany([
        { id: 'a', text: 'A' },
        { id: 'b', text: 'B' },
      ]),
    )
    await persistence.flush()
    store.dispatch(copyInto({ id: 'a', to: 'b' }))
    await persistence.flush()
    expect((await stored()).b).toEqual({ id: 'b', text: 'A' })
    expect(errors).toHaveLength(1)
    expect(isInvalidOptionError(errors[0])).toBe(true)
    expect(errors[0]!.message).toContain(copyInto.type)
  })

  test('one action in a tick that cannot tell makes the whole tick a full diff', async () => {
    const { store, persistence, stored } = setup({ changedIds: (action) => (action.type === copyInto.type ? undefined : idsFromPayload(action)) })
    await persistence.whenHydrated()
    store.dispatch(
      addMany([
        { id: 'a', text: 'A' },
        { id: 'b', text: 'B' },
        { id: 'c', text: 'C' },
      ]),
    )
    await persistence.flush()
    store.dispatch(update({ id: 'c', changes: { text: 'C2' } }))
    store.dispatch(copyInto({ id: 'a', to: 'b' }))
    await persistence.flush()
    expect(await stored()).toMatchObject({ b: { text: 'A' }, c: { text: 'C2' } })
  })

  test('a throwing changedIds is reported and the slice is diffed in full', async () => {
    const { store, persistence, stored, errors } = setup({
      changedIds: () => {
        throw new Error('boom')
      },
    })
    await persistence.whenHydrated()
    store.dispatch(upsert({ id: 'a', text: 'A' }))
    await persistence.flush()
    expect(await stored()).toEqual({ a: { id: 'a', text: 'A' } })
    expect(errors.map((e) => e.message).join()).toContain('changedIds threw')
  })

  test('record slices use the hint for puts and deletes', async () => {
    const { store, persistence, stored } = setup()
    await persistence.whenHydrated()
    store.dispatch(setNote({ id: 'x', text: '1' }))
    store.dispatch(setNote({ id: 'y', text: '2' }))
    await persistence.flush()
    store.dispatch(dropNote('x'))
    await persistence.flush()
    expect(await stored('notes')).toEqual({ y: { text: '2' } })
  })

  test('is checked up front', () => {
    expect(() => createPersistenceMiddleware({ slices: { docs: { changedIds: 'ids' as unknown as SlicePersistenceConfig['changedIds'] } } })).toThrow(
      /slices\.docs\.changedIds/,
    )
  })
})
