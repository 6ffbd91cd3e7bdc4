import {
  combineReducers,
  configureStore,
  createAction,
  createEntityAdapter,
  createSlice,
  type EntityState,
  type Middleware,
  type PayloadAction,
  type Reducer,
} from '@reduxjs/toolkit'
import Dexie, { type Table } from 'dexie'
import { createStore as createKeyvalStore, del, get, set } from 'idb-keyval'
import localforage from 'localforage'
import { persistReducer, persistStore, type Persistor } from 'redux-persist'
import { rememberEnhancer, rememberReducer } from 'redux-remember'
import { createPersistenceMiddleware, type LocalStore, type PersistenceMiddleware, type PersistenceOptions } from 'redux-idb-sync'

/** A realistic item: a note of ~200 bytes. */
export interface Item {
  id: string
  title: string
  body: string
  done: boolean
  rev: number
}

export const makeItem = (i: number, rev = 0): Item => ({
  id: `k${i}`,
  title: `item number ${i}`,
  body: `${'lorem ipsum dolor sit amet '.repeat(6)}#${i}`,
  done: i % 3 === 0,
  rev,
})

export const adapter = createEntityAdapter<Item>()
export const itemsSlice = createSlice({
  name: 'items',
  initialState: adapter.getInitialState(),
  reducers: {
    setAll: adapter.setAll,
    upsertOne: adapter.upsertOne,
    upsertMany: adapter.upsertMany,
    bump: (state, action: PayloadAction<string>) => {
      const item = state.entities[action.payload]
      if (item) item.rev += 1
    },
  },
})
/** A slice nobody persists, for actions that touch no persisted slice. */
export const counterSlice = createSlice({
  name: 'counter',
  initialState: { n: 0 },
  reducers: { inc: (state) => void (state.n += 1) },
})
export const { setAll, upsertOne, upsertMany, bump } = itemsSlice.actions
export const { inc } = counterSlice.actions

/**
 * B1/B2 take the app's reducer out of the measurement by replaying states computed beforehand:
 * Immer copying a 100k-key `entities` object costs tens of milliseconds per change, the same with
 * or without a persistence library, and subtracting a control store's time left the library's
 * share (well under a millisecond) inside that noise. `replay` moves the slice to a stored state
 * in O(1); its payload names the one id that changed, as an RTK reducer's payload would.
 * A step without `id` (the jump to the first state) says nothing about which ids changed.
 */
export const replay = createAction<{ n: number; step: number; id?: string }>('items/replay')
const replayPaths = new Map<number, readonly ItemsState[]>()
const itemsReducer: Reducer<ItemsState> = (state, action) =>
  replay.match(action) ? replayPaths.get(action.payload.n)![action.payload.step]! : itemsSlice.reducer(state, action)

/**
 * Computes the replay path of n items: `changes + 1` states, each one item away from the next,
 * walked 0 → changes → 0 → … so that every step changes exactly one item (a fixed stride spreads
 * the changed ids over the collection).
 */
export function prepareReplay(n: number, changes = 32): void {
  let state = itemsSlice.reducer(undefined, setAll(items(n)))
  const states = [state]
  for (let j = 0; j < changes; j++) {
    state = itemsSlice.reducer(state, bump(`k${(j * 7919 + 1) % n}`))
    states.push(state)
  }
  replayPaths.set(n, states)
}

/** Frees a replay path. */
export const dropReplay = (n: number): void => void replayPaths.delete(n)

/** A walker over the replay path of n items, for one store. Its first action jumps to state 0. */
export function replayWalker(n: number): () => ReturnType<typeof replay> {
  const last = replayPaths.get(n)!.length - 1
  let position = -1
  let direction = 1
  return () => {
    if (position < 0) {
      position = 0
      return replay({ n, step: 0 })
    }
    if (position + direction > last || position + direction < 0) direction = -direction
    const next = position + direction
    const id = `k${(Math.min(position, next) * 7919 + 1) % n}`
    position = next
    return replay({ n, step: next, id })
  }
}

export const items = (n: number): Item[] => Array.from({ length: n }, (_, i) => makeItem(i))

/** RTK's development checks walk the whole state on every dispatch; both sides run without them, as in production. */
const production = { serializableCheck: false, immutableCheck: false } as const

let dbCounter = 0
export const uniqueName = (prefix: string): string => `${prefix}-${++dbCounter}-${Date.now()}`

export interface OursStore {
  readonly store: ReturnType<typeof makeStore>
  readonly persistence: PersistenceMiddleware
}

function makeStore(persistence: Middleware & { enhancer: PersistenceMiddleware['enhancer'] }, extra: Middleware[] = []) {
  return configureStore({
    reducer: { items: itemsReducer, counter: counterSlice.reducer },
    middleware: (getDefault) => getDefault(production).concat(persistence, ...extra),
    enhancers: (getDefault) => getDefault().concat(persistence.enhancer),
  })
}

/** Our store: the `items` slice persisted with the library's defaults unless overridden. */
export async function oursStore(
  n: number,
  options: {
    factory?: IDBFactory
    slice?: Record<string, unknown>
    extra?: (p: PersistenceMiddleware) => Middleware[]
    persistence?: Partial<PersistenceOptions>
  } = {},
): Promise<OursStore> {
  const persistence = createPersistenceMiddleware({
    dbName: uniqueName('ours'),
    ...(options.factory ? { indexedDB: options.factory } : {}),
    onError: (e) => console.error('bench: ours failed:', e.name, e.message),
    slices: { items: { storeName: 'items', ...options.slice } },
    ...options.persistence,
  })
  const store = makeStore(persistence, options.extra?.(persistence))
  await persistence.whenHydrated()
  if (n > 0) {
    // Fill in big transactions (setup, not measured), then return to the configured batch size.
    const batchSize = (options.slice?.batchSize as number | undefined) ?? 100 // the library's default
    persistence.configure('items', { batchSize: 1000 })
    store.dispatch(setAll(items(n)))
    await persistence.flush()
    persistence.configure('items', { batchSize })
  }
  return { store, persistence }
}

/** The same reducers and an n-item slice, with no persistence at all: the control. */
export function bareStore(n: number) {
  const store = configureStore({
    reducer: { items: itemsReducer, counter: counterSlice.reducer },
    middleware: (getDefault) => getDefault(production),
  })
  if (n > 0) store.dispatch(setAll(items(n)))
  return store
}

/** redux-persist 6 storage on IndexedDB through idb-keyval (the setup its docs recommend for IndexedDB). */
export function idbKeyvalStorage(dbName: string) {
  const kv = createKeyvalStore(dbName, 'keyval')
  return {
    getItem: (key: string) => get<string>(key, kv),
    setItem: (key: string, value: string) => set(key, value, kv),
    removeItem: (key: string) => del(key, kv),
  }
}

export interface PersistStore {
  readonly store: ReturnType<typeof makePersistStore>['store']
  readonly persistor: Persistor
  readonly dbName: string
}

/** redux-persist 6 storage on localforage (its IndexedDB driver), the other storage its docs name for the browser. */
export function localforageStorage(dbName: string) {
  const instance = localforage.createInstance({ name: dbName, storeName: 'keyval', driver: localforage.INDEXEDDB })
  return {
    getItem: (key: string) => instance.getItem<string>(key),
    setItem: (key: string, value: string) => instance.setItem(key, value),
    removeItem: (key: string) => instance.removeItem(key),
  }
}

/** The storage shape redux-persist takes. */
interface KeyValue {
  getItem(key: string): Promise<unknown>
  setItem(key: string, value: string): Promise<unknown>
  removeItem(key: string): Promise<unknown>
}

function makePersistStore(dbName: string, storage: KeyValue) {
  const root = combineReducers({ items: itemsReducer, counter: counterSlice.reducer })
  const persisted = persistReducer({ key: 'root', storage, whitelist: ['items'] }, root) as unknown as Reducer<ReturnType<typeof root>>
  const store = configureStore({ reducer: persisted, middleware: (getDefault) => getDefault(production) })
  return { store }
}

/** redux-persist 6 persisting the same `items` slice (needs a global `indexedDB`, as idb-keyval uses it). */
export async function persistStoreOf(
  n: number,
  dbName = uniqueName('redux-persist'),
  storageOf: (dbName: string) => KeyValue = idbKeyvalStorage,
): Promise<PersistStore> {
  const { store } = makePersistStore(dbName, storageOf(dbName))
  const persistor = await new Promise<Persistor>((resolve) => {
    const p = persistStore(store, null, () => resolve(p))
  })
  if (n > 0) {
    store.dispatch(setAll(items(n)))
    await persistor.flush()
  }
  return { store, persistor, dbName }
}

export type ItemsState = EntityState<Item, string>

/** Wraps a LocalStore and counts what reaches it: transactions and single-item writes. */
export function counting(inner: LocalStore): LocalStore & { readonly counts: { commits: number; puts: number } } {
  const counts = { commits: 0, puts: 0 }
  return {
    counts,
    kind: inner.kind,
    persistent: inner.persistent,
    ensureStores: (names) => inner.ensureStores(names),
    commit: (ops) => {
      counts.commits++
      for (const op of ops) if (op.type === 'put' && !op.store.startsWith('__ris_')) counts.puts++
      return inner.commit(ops)
    },
    readAll: (store) => inner.readAll(store),
    get: (store, key) => inner.get(store, key),
    getMany: (store, keys) => inner.getMany(store, keys),
    close: () => inner.close(),
  }
}

/**
 * redux-remember 6 persisting the `items` slice through idb-keyval, throttle 0 (it writes from its
 * store listener, inside `dispatch`). `written()` resolves when the next write has completed.
 */
export async function rememberStoreOf(n: number) {
  const kv = createKeyvalStore(uniqueName('redux-remember'), 'keyval')
  let waiting: Array<() => void> = []
  const driver = {
    getItem: (key: string) => get(key, kv),
    setItem: async (key: string, value: unknown) => {
      await set(key, value, kv)
      const done = waiting
      waiting = []
      for (const resolve of done) resolve()
    },
  }
  const store = configureStore({
    reducer: rememberReducer({ items: itemsReducer, counter: counterSlice.reducer }),
    middleware: (getDefault) => getDefault(production),
    enhancers: (getDefault) => getDefault().concat(rememberEnhancer(driver, ['items'], { persistThrottle: 0 })),
  })
  const written = () => new Promise<void>((resolve) => waiting.push(resolve))
  // Rehydration runs first; wait for it to settle before filling.
  await new Promise((resolve) => setTimeout(resolve, 20))
  if (n > 0) {
    const first = written()
    store.dispatch(setAll(items(n)))
    await first
  }
  return { store, written }
}

/** Dexie 4: one table of items, the hand-written raw limit (`put`, `bulkPut`). */
export async function dexieTable(): Promise<{ table: Table<Item, string>; close: () => void }> {
  const db = new Dexie(uniqueName('dexie'))
  db.version(1).stores({ items: 'id' })
  await db.open()
  return { table: db.table('items'), close: () => db.close() }
}
