import { configureStore } from '@reduxjs/toolkit'
import { setupServer } from 'msw/node'
import { createAutoSyncMiddleware, createPersistenceMiddleware, createSyncMonitorMiddleware, idsFromPayload, syncReducer } from 'redux-idb-sync'
import { createRemote } from 'redux-idb-sync/remote'
import { createMockSyncServer } from 'redux-idb-sync/testing'
import { createOperationQueue } from '../../src/persistence/writeQueue'
import { compare, median, type Fact, type Result } from '../lib/harness'
import { bump, counterSlice, inc, items, itemsSlice, setAll, uniqueName } from '../lib/fixtures'
import type { Settings } from '../lib/settings'

const production = { serializableCheck: false, immutableCheck: false } as const

/** B6: dispatch overhead of all three middleware against a bare store. */
export async function b6(settings: Settings): Promise<Result[]> {
  const n = settings.quick ? 1_000 : 10_000
  const baseUrl = 'http://bench.test/api'
  const mock = createMockSyncServer({ baseUrl })
  const server = setupServer(...mock.handlers)
  server.listen({ onUnhandledRequest: 'error' })
  const results: Result[] = []
  try {
    for (const variant of [
      // Writes are B1–B5's subject; here the debounce is long enough that none starts while
      // dispatches are timed, so the row is the dispatch path alone: the middleware's check,
      // the diff and the queue.
      { label: 'default', slice: { debounceMs: 600_000 } },
      { label: 'changedIds: idsFromPayload', slice: { debounceMs: 600_000, changedIds: idsFromPayload } },
    ]) {
      const persistence = createPersistenceMiddleware({
        dbName: uniqueName('b6'),
        indexedDB: settings.factory(),
        slices: { items: variant.slice },
        remote: createRemote({ baseUrl }),
      })
      const monitor = createSyncMonitorMiddleware()
      const autoSync = createAutoSyncMiddleware({ enabled: true, intervalMs: 30_000, syncOnChange: true, maxQueueSize: 50 })
      const full = configureStore({
        reducer: { items: itemsSlice.reducer, counter: counterSlice.reducer, sync: syncReducer },
        middleware: (getDefault) => getDefault(production).concat(persistence, monitor, autoSync),
        enhancers: (getDefault) => getDefault().concat(persistence.enhancer),
      })
      await persistence.whenHydrated()
      persistence.configure('items', { debounceMs: 0, batchSize: 1000 })
      full.dispatch(setAll(items(n)))
      await persistence.flush()
      persistence.configure('items', { debounceMs: 600_000, batchSize: 10 })
      const bare = configureStore({
        reducer: { items: itemsSlice.reducer, counter: counterSlice.reducer, sync: syncReducer },
        middleware: (getDefault) => getDefault(production),
      })
      bare.dispatch(setAll(items(n)))
      if (variant.label === 'default') {
        const thousand = (dispatch: typeof bare.dispatch) => () => {
          for (let i = 0; i < 1_000; i++) dispatch(inc())
        }
        results.push(
          await compare({
            id: 'B6',
            title: '1,000 actions that touch no persisted slice (trivial reducer)',
            ours: { name: 'all three middleware', run: thousand(full.dispatch) },
            baseline: { name: 'bare store', run: thousand(bare.dispatch) },
            report: 'overhead',
            target: { op: '<=', value: 1.25 },
            rounds: settings.rounds,
            iterations: settings.iterations(1) * 5,
          }),
        )
      }
      const change = (dispatch: typeof bare.dispatch) => {
        let i = 0
        return async () => {
          dispatch(bump(`k${(i = (i + 7919) % n)}`))
          await Promise.resolve() // the middleware's diff runs in this microtask
        }
      }
      results.push(
        await compare({
          id: 'B6',
          title: `update one item of a persisted ${n.toLocaleString('en')}-item slice (ours: ${variant.label})`,
          ours: { name: 'all three middleware', run: change(full.dispatch) },
          baseline: { name: 'bare store', run: change(bare.dispatch) },
          report: 'overhead',
          target: { op: '<=', value: 1.05 },
          rounds: settings.rounds,
          iterations: settings.iterations(n) * 2,
          note: 'dispatch + diff + enqueue (writes measured in B1–B5)',
        }),
      )
      await persistence.dispose()
      autoSync.dispose()
      monitor.dispose()
    }
  } finally {
    server.close()
  }
  return results
}

const heapMb = (): number => {
  ;(globalThis as { gc?: () => void }).gc?.()
  return process.memoryUsage().heapUsed / 1024 / 1024
}

/**
 * B9's app: `keys` items with numeric ids, updated by a hand-written reducer. RTK's `upsertOne`
 * on 10k string-keyed entities costs milliseconds a dispatch (Immer copying the `entities`
 * dictionary), which would make this a benchmark of Immer; an element-keyed copy costs tens of
 * microseconds, so the library's own share of an operation stays visible, and any drift in it.
 */
interface LongRunState {
  ids: number[]
  entities: Record<number, { id: number; rev: number; body: string }>
}
const touch = (id: number) => ({ type: 'long/touch', payload: id }) as const
function longRunReducer(keys: number) {
  const initial: LongRunState = { ids: [], entities: {} }
  for (let id = 0; id < keys; id++) {
    initial.ids.push(id)
    initial.entities[id] = { id, rev: 0, body: `item ${id}` }
  }
  return (state: LongRunState = initial, action: { type: string; payload?: unknown }): LongRunState => {
    if (action.type !== 'long/touch') return state
    const id = action.payload as number
    const item = state.entities[id]!
    return { ids: state.ids, entities: { ...state.entities, [id]: { ...item, rev: item.rev + 1 } } }
  }
}

/** B9: a long run; time per operation at the start and at the end, and the heap. */
export async function b9(settings: Settings): Promise<Fact[]> {
  const keys = settings.pendingKeys
  const ops = settings.longRunOps
  const persistence = createPersistenceMiddleware({
    dbName: uniqueName('b9'),
    indexedDB: settings.factory(),
    slices: { items: { debounceMs: 50 } }, // the default configuration
    onError: (e) => console.error('bench B9:', e.name, e.message),
  })
  const store = configureStore({
    reducer: { items: longRunReducer(keys) },
    middleware: (getDefault) => getDefault(production).concat(persistence),
    enhancers: (getDefault) => getDefault().concat(persistence.enhancer),
  })
  await persistence.whenHydrated()
  const CHUNK = 1_000
  const chunkTimes: number[] = []
  const heapStart = heapMb()
  let peak = heapStart
  let i = 0
  for (let done = 0; done < ops; done += CHUNK) {
    const started = performance.now()
    for (let j = 0; j < CHUNK; j++) store.dispatch(touch((i = (i + 7919) % keys)))
    // Let the queue's timers and IndexedDB run, as an app's idle time would.
    await new Promise((resolve) => setTimeout(resolve, 1))
    chunkTimes.push((performance.now() - started) / CHUNK)
    if (chunkTimes.length % 10 === 0) peak = Math.max(peak, process.memoryUsage().heapUsed / 1024 / 1024)
  }
  await persistence.flush()
  const heapEnd = heapMb()
  const tenth = Math.max(3, Math.floor(chunkTimes.length / 10))
  const start = median(chunkTimes.slice(0, tenth))
  const end = median(chunkTimes.slice(-tenth))
  await persistence.dispose()
  // The queue's memory with every key pending, measured on the queue alone: the items it refers
  // to already live in the state, so what it adds is its entries and indexes.
  const values = Array.from({ length: keys }, (_, id) => ({ id, rev: 1, body: `item ${id}` }))
  const queue = createOperationQueue({
    debounceFor: () => 600_000,
    batchSizeFor: () => 100,
    canWrite: () => true,
    write: async () => ({ rejected: [] }),
    retry: { baseMs: 250, maxMs: 30_000 },
    onBatch: () => {},
  })
  const before = heapMb()
  for (let id = 0; id < keys; id++) queue.enqueue('items', id, 'put', values[id])
  const pending = queue.size
  const withPending = heapMb()
  queue.dispose()
  const fmt = (mb: number) => `${mb.toFixed(1)} MB`
  const queueMb = withPending - before
  return [
    {
      id: 'B9',
      title: `time per operation, last 10% vs first 10% of ${ops.toLocaleString('en')} ops on ${keys.toLocaleString('en')} keys`,
      value: `${(end / start).toFixed(2)}× (${(start * 1000).toFixed(1)} → ${(end * 1000).toFixed(1)} µs/op, app reducer included)`,
      target: '<= 1.10×',
      met: end / start <= 1.1,
    },
    {
      id: 'B9',
      title: 'heap after GC, start → end of the run (peak sampled during it)',
      value: `${fmt(heapStart)} → ${fmt(heapEnd)} (peak ${fmt(peak)})`,
      target: 'bounded',
      met: heapEnd - heapStart < 50,
      note: 'the slice itself holds the items',
    },
    {
      id: 'B9',
      title: `heap held by the queue with ${pending.toLocaleString('en')} keys pending (the queue alone; the items live in the state)`,
      value: `${fmt(queueMb)} (${((queueMb * 1024 * 1024) / Math.max(1, pending)).toFixed(0)} B/key)`,
      target: 'reported',
      met: null,
    },
  ]
}
