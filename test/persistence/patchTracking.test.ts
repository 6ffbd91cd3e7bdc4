// The enhancer's patch tracking (the `track` slice option): the ids an action changed come from
// immer's patches, and every case the patches cannot name falls back to the full diff. The full
// diff is `diffCollection`; it is spied on to tell which path a change took.
import {
  combineReducers,
  configureStore,
  createEntityAdapter,
  createSlice,
  isDraft,
  type PayloadAction,
  type Reducer,
  type UnknownAction,
} from '@reduxjs/toolkit'
import fc from 'fast-check'
import { IDBFactory } from 'fake-indexeddb'
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest'
import { createPersistenceMiddleware, type PersistenceMiddleware, type SlicePersistenceConfig, type SyncError } from '../../src'
import { readStore } from '../support/instrumentedStore'
import type * as Shapes from '../../src/persistence/shapes'

const full = vi.hoisted(() => ({ calls: [] as string[] }))
vi.mock('../../src/persistence/shapes', async (importOriginal) => {
  const original = await importOriginal<typeof Shapes>()
  return {
    ...original,
    diffCollection: (...args: Parameters<typeof original.diffCollection>) => {
      full.calls.push(String(args[0]))
      return original.diffCollection(...args)
    },
  }
})

interface Doc {
  id: string
  text: string
}
const docs = createEntityAdapter<Doc>()
/** What the slice reducers were handed, per `slice:action type`: a draft or a plain state. */
const drafted: Array<[string, boolean]> = []
const docsSlice = createSlice({
  name: 'docs',
  initialState: docs.getInitialState({ status: 'idle' }),
  reducers: {
    upsert: docs.upsertOne,
    update: docs.updateOne,
    add: docs.addOne,
    remove: docs.removeOne,
    setAll: docs.setAll,
    removeAll: docs.removeAll,
    setStatus(state, action: PayloadAction<string>) {
      state.status = action.payload
    },
    /** Returns a new state instead of mutating: a reducer not written the RTK way. */
    replaceText(state, action: PayloadAction<{ id: string; text: string }>) {
      const { id, text } = action.payload
      return { ...state, ids: state.ids.includes(id) ? state.ids : [...state.ids, id], entities: { ...state.entities, [id]: { id, text } } }
    },
  },
  extraReducers: (builder) =>
    builder.addMatcher(
      (action): action is PayloadAction<Doc> => action.type === 'shared/set',
      (state, action) => {
        docs.upsertOne(state, action.payload)
      },
    ),
})
const { upsert, update, add, remove, setAll, removeAll, setStatus, replaceText } = docsSlice.actions

/** A record slice written without RTK: a plain reducer that spreads its state (`shared/set` also changes `docs`). */
type Notes = Record<string, { text: string }>
const notesReducer: Reducer<Notes> = (state = {}, action) => {
  if (action.type === 'notes/set' || action.type === 'shared/set') {
    drafted.push([`notes:${action.type}`, isDraft(state)])
    const { id, text } = (action as UnknownAction & { payload: { id: string; text: string } }).payload
    return { ...state, [id]: { text } }
  }
  return state
}

/** An array slice: patches name indexes, not ids. */
const todosSlice = createSlice({
  name: 'todos',
  initialState: [] as Array<{ id: number; title: string }>,
  reducers: {
    addTodo(state, action: PayloadAction<{ id: number; title: string }>) {
      state.push(action.payload)
    },
  },
})
const { addTodo } = todosSlice.actions

/** Numeric ids in an entities slice, nested under `data`. */
const counters = createEntityAdapter<{ id: number; n: number }>()
const countersSlice = createSlice({
  name: 'counters',
  initialState: { data: counters.getInitialState() },
  reducers: {
    upsertCounter(state, action: PayloadAction<{ id: number; n: number }>) {
      counters.upsertOne(state.data, action.payload)
    },
    removeCounter(state, action: PayloadAction<number>) {
      counters.removeOne(state.data, action.payload)
    },
  },
})
const { upsertCounter, removeCounter } = countersSlice.actions

/** The slice reducers as the root reducer calls them, noting whether they were handed a draft. */
const noting =
  <S>(name: string, reducer: Reducer<S>): Reducer<S> =>
  (state, action) => {
    if (state !== undefined) drafted.push([`${name}:${action.type}`, isDraft(state)])
    return reducer(state, action)
  }
const docsReducer = noting('docs', docsSlice.reducer)
const todosReducer = noting('todos', todosSlice.reducer)

const live: PersistenceMiddleware[] = []
beforeEach(() => {
  full.calls.length = 0
  drafted.length = 0
})
afterEach(async () => {
  for (const p of live.splice(0)) await p.dispose()
})

/**
 * `verifyChangedIds` runs the full diff beside every patched diff, so the tests that count full
 * diffs run without it; the randomized test at the end runs with it.
 */
async function setup(docsConfig: SlicePersistenceConfig = {}, verifyChangedIds = false) {
  const factory = new IDBFactory()
  const errors: SyncError[] = []
  const persistence = createPersistenceMiddleware({
    indexedDB: factory,
    onError: (e) => errors.push(e),
    slices: {
      docs: { debounceMs: 0, verifyChangedIds, ...docsConfig },
      notes: { debounceMs: 0, verifyChangedIds },
      todos: { debounceMs: 0, verifyChangedIds },
      counters: { debounceMs: 0, verifyChangedIds, path: ['data'] },
    },
  })
  live.push(persistence)
  const store = configureStore({
    reducer: combineReducers({ docs: docsReducer, notes: notesReducer, todos: todosReducer, counters: countersSlice.reducer }),
    middleware: (getDefault) => getDefault().concat(persistence),
    enhancers: (getDefault) => getDefault().concat(persistence.enhancer),
  })
  await persistence.whenHydrated()
  full.calls.length = 0
  const stored = async (name: string) => readStore(factory, name, persistence.dbName)
  return { store, persistence, stored, errors }
}

/** Dispatches, then diffs at once; returns how many full diffs that took. */
function fullDiffsOf(p: PersistenceMiddleware, run: () => void): number {
  const before = full.calls.length
  run()
  p.getStatus() // runs the pending diff now
  return full.calls.length - before
}

describe('patch tracking', () => {
  test('a learned action type is drafted: its changes, additions and removals need no full diff', async () => {
    const { store, persistence, stored, errors } = await setup()
    // The first of each type is reduced as usual and diffed in full: that is how types are learned.
    expect(fullDiffsOf(persistence, () => store.dispatch(upsert({ id: 'a', text: 'A' })))).toBe(1)
    expect(fullDiffsOf(persistence, () => store.dispatch(add({ id: 'b', text: 'B' })))).toBe(1)
    expect(fullDiffsOf(persistence, () => store.dispatch(remove('b')))).toBe(1)
    expect(fullDiffsOf(persistence, () => store.dispatch(update({ id: 'a', changes: { text: 'A1' } })))).toBe(1)
    // From now on: patches.
    expect(fullDiffsOf(persistence, () => store.dispatch(upsert({ id: 'c', text: 'C' })))).toBe(0)
    expect(fullDiffsOf(persistence, () => store.dispatch(add({ id: 'd', text: 'D' })))).toBe(0)
    expect(fullDiffsOf(persistence, () => store.dispatch(update({ id: 'a', changes: { text: 'A2' } })))).toBe(0)
    expect(fullDiffsOf(persistence, () => store.dispatch(remove('c')))).toBe(0)
    await persistence.flush()
    expect([...(await stored('docs'))].sort()).toEqual([
      ['a', { id: 'a', text: 'A2' }],
      ['d', { id: 'd', text: 'D' }],
    ])
    expect(store.getState().docs.entities.a).toEqual({ id: 'a', text: 'A2' })
    expect(Object.isFrozen(store.getState().docs.entities.a)).toBe(true)
    expect(errors).toEqual([])
  })

  test('a change beside the collection (a status field) writes nothing and is no full diff', async () => {
    const { store, persistence } = await setup()
    store.dispatch(setStatus('loading'))
    await persistence.flush()
    const puts = persistence.getStatus().pendingOperations
    expect(fullDiffsOf(persistence, () => store.dispatch(setStatus('done')))).toBe(0)
    expect(persistence.getStatus().pendingOperations).toBe(puts)
    expect(store.getState().docs.status).toBe('done')
  })

  test('numeric ids of a nested entities collection are written as numbers', async () => {
    const { store, persistence, stored, errors } = await setup()
    store.dispatch(upsertCounter({ id: 1, n: 0 }))
    store.dispatch(removeCounter(1))
    persistence.getStatus() // the learning actions' (full) diff
    expect(fullDiffsOf(persistence, () => store.dispatch(upsertCounter({ id: 7, n: 1 })))).toBe(0)
    expect(fullDiffsOf(persistence, () => store.dispatch(upsertCounter({ id: 8, n: 2 })))).toBe(0)
    expect(fullDiffsOf(persistence, () => store.dispatch(removeCounter(8)))).toBe(0)
    await persistence.flush()
    expect([...(await stored('counters'))]).toEqual([[7, { id: 7, n: 1 }]])
    expect(errors).toEqual([])
  })

  test('a burst of learned actions in one tick is one patched diff', async () => {
    const { store, persistence, stored } = await setup()
    store.dispatch(upsert({ id: 'x', text: '0' }))
    persistence.getStatus()
    const n = fullDiffsOf(persistence, () => {
      for (let i = 0; i < 50; i++) store.dispatch(upsert({ id: `k${i}`, text: String(i) }))
    })
    expect(n).toBe(0)
    await persistence.flush()
    expect((await stored('docs')).size).toBe(51)
  })
})

describe('patch tracking falls back to the full diff', () => {
  test('for an action type not seen before', async () => {
    const { store, persistence, stored } = await setup()
    expect(fullDiffsOf(persistence, () => store.dispatch(upsert({ id: 'a', text: 'A' })))).toBe(1)
    await persistence.flush()
    expect((await stored('docs')).get('a')).toEqual({ id: 'a', text: 'A' })
  })

  test('for a replaced collection (setAll, removeAll)', async () => {
    const { store, persistence, stored, errors } = await setup()
    store.dispatch(setAll([{ id: 'a', text: 'A' }]))
    store.dispatch(removeAll())
    persistence.getStatus()
    store.dispatch(upsert({ id: 'x', text: 'X' }))
    store.dispatch(upsert({ id: 'y', text: 'Y' }))
    // Learned types now, but they replace `entities`: the patches cannot name the ids.
    expect(fullDiffsOf(persistence, () => store.dispatch(setAll([{ id: 'b', text: 'B' }])))).toBe(1)
    await persistence.flush()
    expect([...(await stored('docs'))]).toEqual([['b', { id: 'b', text: 'B' }]])
    expect(fullDiffsOf(persistence, () => store.dispatch(removeAll()))).toBe(1)
    await persistence.flush()
    expect((await stored('docs')).size).toBe(0)
    expect(errors).toEqual([])
  })

  test('for a case reducer that returns a new state, and that type is never drafted again', async () => {
    const { store, persistence, stored, errors } = await setup()
    store.dispatch(replaceText({ id: 'a', text: '1' })) // learned
    expect(fullDiffsOf(persistence, () => store.dispatch(replaceText({ id: 'a', text: '2' })))).toBe(1) // drafted, returned new
    expect(fullDiffsOf(persistence, () => store.dispatch(replaceText({ id: 'b', text: '3' })))).toBe(1) // never drafted again
    // The drafted run is abandoned once it returns a new slice, and that action is reduced again
    // without drafts: learned, drafted, plain again, then plain for good.
    expect(drafted.filter(([type]) => type === `docs:${replaceText.type}`).map(([, d]) => d)).toEqual([false, true, false, false])
    await persistence.flush()
    expect([...(await stored('docs'))].sort()).toEqual([
      ['a', { id: 'a', text: '2' }],
      ['b', { id: 'b', text: '3' }],
    ])
    expect(Object.isFrozen(store.getState().docs.entities.a)).toBe(true)
    expect(errors).toEqual([])
  })

  // A reducer written without immer is never handed a draft: one that spreads it runs a Proxy
  // through its own copy, and V8 may then copy slowly at that site for the rest of the page's life
  // (test/reliability/load.test.ts: its second store's reducer, ~10 µs per copy of 10k entities
  // before, ~4 ms after). Its state is not frozen, which is how the enhancer tells.
  test('for a reducer not written with RTK (it spreads its state), which is never handed a draft', async () => {
    const { store, persistence, stored, errors } = await setup()
    const set = (id: string, text: string) => store.dispatch({ type: 'notes/set', payload: { id, text } })
    set('a', '1')
    expect(fullDiffsOf(persistence, () => set('b', '2'))).toBe(1)
    expect(fullDiffsOf(persistence, () => set('c', '3'))).toBe(1)
    expect(drafted.filter(([type]) => type === 'notes:notes/set').map(([, d]) => d)).toEqual([false, false, false])
    await persistence.flush()
    expect([...(await stored('notes'))].sort()).toEqual([
      ['a', { text: '1' }],
      ['b', { text: '2' }],
      ['c', { text: '3' }],
    ])
    // The state holds no revoked draft: every value reads.
    expect(JSON.parse(JSON.stringify(store.getState().notes))).toEqual({ a: { text: '1' }, b: { text: '2' }, c: { text: '3' } })
    expect(errors).toEqual([])
  })

  test('for an action type that also changes a slice reduced without immer: no slice reducer is handed a draft for it', async () => {
    const { store, persistence, stored, errors } = await setup()
    const set = (id: string, text: string) => store.dispatch({ type: 'shared/set', payload: { id, text } })
    set('a', '1')
    expect(fullDiffsOf(persistence, () => set('b', '2'))).toBe(2)
    expect(fullDiffsOf(persistence, () => set('c', '3'))).toBe(2)
    const plain = ['docs', 'notes', 'todos'].map((slice) => [`${slice}:shared/set`, false])
    expect(drafted.filter(([type]) => type.endsWith(':shared/set'))).toEqual([...plain, ...plain, ...plain])
    await persistence.flush()
    expect([...(await stored('docs'))].map(([id]) => id).sort()).toEqual(['a', 'b', 'c'])
    expect([...(await stored('notes'))].map(([id]) => id).sort()).toEqual(['a', 'b', 'c'])
    expect(errors).toEqual([])
  })

  test('for a dispatch nested inside a store listener', async () => {
    const { store, persistence, stored, errors } = await setup()
    store.dispatch(upsert({ id: 'a', text: 'A' }))
    store.dispatch(update({ id: 'a', changes: { text: 'A0' } }))
    persistence.getStatus()
    let nested = false
    const unsubscribe = store.subscribe(() => {
      if (nested) return
      nested = true
      store.dispatch(update({ id: 'a', changes: { text: 'from the listener' } }))
    })
    const diffs = fullDiffsOf(persistence, () => store.dispatch(upsert({ id: 'b', text: 'B' })))
    unsubscribe()
    expect(diffs).toBe(1)
    await persistence.flush()
    expect([...(await stored('docs'))].sort()).toEqual([
      ['a', { id: 'a', text: 'from the listener' }],
      ['b', { id: 'b', text: 'B' }],
    ])
    expect(errors).toEqual([])
  })

  test('for an array slice, which is never drafted', async () => {
    const { store, persistence, stored } = await setup()
    store.dispatch(addTodo({ id: 1, title: 'one' }))
    expect(fullDiffsOf(persistence, () => store.dispatch(addTodo({ id: 2, title: 'two' })))).toBe(1)
    expect(drafted.filter(([type]) => type === `todos:${addTodo.type}`).map(([, d]) => d)).toEqual([false, false])
    await persistence.flush()
    expect([...(await stored('todos'))].sort()).toEqual([
      [1, { id: 1, title: 'one' }],
      [2, { id: 2, title: 'two' }],
    ])
  })

  test('for a slice that opted out with track: false', async () => {
    const { store, persistence, stored } = await setup({ track: false })
    store.dispatch(upsert({ id: 'a', text: 'A' }))
    expect(fullDiffsOf(persistence, () => store.dispatch(upsert({ id: 'b', text: 'B' })))).toBe(1)
    await persistence.flush()
    expect((await stored('docs')).size).toBe(2)
  })

  test('for a change the enhancer did not see (a reducer swapped in with replaceReducer)', async () => {
    const { store, persistence, stored, errors } = await setup()
    store.dispatch(upsert({ id: 'a', text: 'A' }))
    persistence.getStatus()
    const root = combineReducers({ docs: docsReducer, notes: notesReducer, todos: todosReducer, counters: countersSlice.reducer })
    store.replaceReducer(root) // bypasses the enhancer's wrapper
    expect(fullDiffsOf(persistence, () => store.dispatch(upsert({ id: 'b', text: 'B' })))).toBe(1)
    await persistence.flush()
    expect((await stored('docs')).get('b')).toEqual({ id: 'b', text: 'B' })
    expect(errors).toEqual([])
  })

  test('for changes made while the slice was disabled', async () => {
    const { store, persistence, stored, errors } = await setup()
    store.dispatch(upsert({ id: 'a', text: 'A' }))
    persistence.getStatus()
    persistence.disable('docs')
    store.dispatch(upsert({ id: 'b', text: 'B' }))
    const before = full.calls.length
    persistence.enable('docs')
    persistence.getStatus()
    expect(full.calls.length - before).toBe(1)
    await persistence.flush()
    expect((await stored('docs')).get('b')).toEqual({ id: 'b', text: 'B' })
    expect(errors).toEqual([])
  })

  test('track must be a boolean', () => {
    expect(() => createPersistenceMiddleware({ slices: { docs: { track: 'yes' as unknown as boolean } } })).toThrow(/slices\.docs\.track/)
  })
})

describe('patch tracking checked by verifyChangedIds', () => {
  const id = fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f')
  const text = fc.string({ maxLength: 3 })
  const step = fc.oneof(
    { weight: 5, arbitrary: fc.record({ kind: fc.constant('upsert' as const), id, text }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('add' as const), id, text }) },
    { weight: 5, arbitrary: fc.record({ kind: fc.constant('update' as const), id, text }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('remove' as const), id }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('setAll' as const), ids: fc.uniqueArray(id, { maxLength: 3 }), text }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('removeAll' as const) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('status' as const), text }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('replaceText' as const), id, text }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('note' as const), id, text }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('counter' as const), n: fc.integer({ min: 1, max: 6 }) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('dropCounter' as const), n: fc.integer({ min: 1, max: 6 }) }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('diff' as const) }) },
  )

  test('3,000 random actions: no id missed, and IndexedDB equals the state', async () => {
    let drafts = 0
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 500, maxLength: 500 }), async (steps) => {
        drafted.length = 0
        const { store, persistence, stored, errors } = await setup({}, true)
        for (const s of steps) {
          if (s.kind === 'upsert') store.dispatch(upsert({ id: s.id, text: s.text }))
          else if (s.kind === 'add') store.dispatch(add({ id: s.id, text: s.text }))
          else if (s.kind === 'update') store.dispatch(update({ id: s.id, changes: { text: s.text } }))
          else if (s.kind === 'remove') store.dispatch(remove(s.id))
          else if (s.kind === 'setAll') store.dispatch(setAll(s.ids.map((x) => ({ id: x, text: s.text }))))
          else if (s.kind === 'removeAll') store.dispatch(removeAll())
          else if (s.kind === 'status') store.dispatch(setStatus(s.text))
          else if (s.kind === 'replaceText') store.dispatch(replaceText({ id: s.id, text: s.text }))
          else if (s.kind === 'note') store.dispatch({ type: 'notes/set', payload: { id: s.id, text: s.text } })
          else if (s.kind === 'counter') store.dispatch(upsertCounter({ id: s.n, n: s.n }))
          else if (s.kind === 'dropCounter') store.dispatch(removeCounter(s.n))
          else persistence.getStatus()
        }
        await persistence.flush()
        drafts += drafted.filter(([, d]) => d).length
        const state = store.getState()
        expect(errors).toEqual([])
        expect(Object.fromEntries(await stored('docs'))).toEqual(Object.fromEntries(state.docs.ids.map((k) => [k, state.docs.entities[k]])))
        expect(Object.fromEntries(await stored('notes'))).toEqual(state.notes)
        expect([...(await stored('counters'))]).toEqual(
          state.counters.data.ids.map((k) => [k, state.counters.data.entities[k]]).sort((x, y) => Number(x[0]) - Number(y[0])),
        )
        await persistence.dispose()
      }),
      { numRuns: 6 },
    )
    // The tracker really ran: most reductions of the docs slice were handed a draft.
    expect(drafts).toBeGreaterThan(1000)
  })
})
