// Load: 100k dispatches touching 10k keys. Asserts counts and memory bounds, never timings.
// The numbers measured on the 2-core CI box and the reasoning behind every bound are in
// docs/reliability.md, section "Load"; each test prints its numbers in one line.
import { configureStore, createAction, createEntityAdapter, type EntityState } from '@reduxjs/toolkit'
import { IDBFactory } from 'fake-indexeddb'
import { setupServer } from 'msw/node'
import { isDeepStrictEqual } from 'node:util'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { afterAll, afterEach, beforeAll, describe, expect, test, vi } from 'vitest'
import { createPersistenceMiddleware, syncReducer, type PersistenceMiddleware, type SyncError } from '../../src'
import { createRemote } from '../../src/remote'
import { OUTBOX_STORE, type StorageOp } from '../../src/storage/types'
import { createMockSyncServer } from '../../src/testing'
import { instrumentedStore, readStore, type InstrumentedStore } from '../support/instrumentedStore'

const DISPATCHES = 100_000
const KEYS = 10_000
const SAMPLE_EVERY = 1_000
const BATCH_SIZE = 100
const MB = 1024 * 1024
/**
 * Heap growth allowed over the whole local run (sampled after a full GC every 10k dispatches
 * and after the flush). Measured: 7.3 MB at the peak of the burst, 10.2-12 MB after the flush
 * (10k items in the state, their structured clones in fake-indexeddb, the instrumented commit
 * log): about 2x headroom. Keeping every one of the 100k operations, as a queue without
 * coalescing would, costs 45-53 MB: more than twice the bound (calibrated at the end of the test).
 */
const HEAP_BOUND = 20 * MB

interface Item {
  id: number
  name: string
  body: { rev: number; text: string }
}

/** The item the i-th dispatch writes: key i % KEYS, with a value no other dispatch has (~250 bytes). */
const itemFor = (i: number): Item => ({ id: i % KEYS, name: `v${i}`, body: { rev: i, text: `${i}:`.padEnd(200, '.') } })
/** The value each key must end with: that of the last dispatch touching it. */
const finalItem = (id: number): Item => itemFor(DISPATCHES - KEYS + id)

const adapter = createEntityAdapter<Item>()
const saveFile = createAction<Item>('files/saveFile')

/**
 * An entity-adapter slice (`{ ids, entities }`, as `createEntityAdapter` makes it), its upsert
 * written without Immer: RTK's `upsertOne` took 2-5 ms per dispatch on a 10k-entity collection
 * here (Immer finalizes the whole `entities` object every time), so 100k of them would measure
 * Immer for minutes, not this library. Numeric ids keep `entities` in V8's fast elements mode,
 * which makes the copy below cheap (~10 µs).
 */
function filesReducer(state: EntityState<Item, number> = adapter.getInitialState(), action: { type: string }): EntityState<Item, number> {
  if (!saveFile.match(action)) return state
  const item = action.payload
  const exists = Object.prototype.hasOwnProperty.call(state.entities, item.id)
  return { ids: exists ? state.ids : [...state.ids, item.id], entities: { ...state.entities, [item.id]: item } }
}

function makeStore(persistence: PersistenceMiddleware) {
  return configureStore({
    reducer: { files: filesReducer, sync: syncReducer },
    // RTK's dev-only checks walk the whole state on every dispatch (10k items x 100k); a
    // production build has neither.
    middleware: (g) => g({ serializableCheck: false, immutableCheck: false }).concat(persistence),
    enhancers: (g) => g().concat(persistence.enhancer),
  })
}

// A full GC before each heap reading: without it heapUsed mostly measures garbage not collected
// yet. `--expose-gc` can be switched on at runtime; `gc` is then reachable from a fresh context.
setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void
const heapUsed = (): number => {
  gc()
  gc()
  return process.memoryUsage().heapUsed
}

/** One macrotask: the diff microtask runs and fake-indexeddb (setImmediate) advances one step. */
const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

/** Ticks until the local queue is empty (fake-indexeddb needs about one tick per request). */
async function settleQueue(persistence: PersistenceMiddleware): Promise<void> {
  for (let n = 0; n < 1_000_000 && persistence.getStatus().pendingOperations > 0; n++) await tick()
  expect(persistence.getStatus().pendingOperations).toBe(0)
}

type PutOp = Extract<StorageOp, { type: 'put' }>
const putsIn = (ops: readonly StorageOp[], store: string): PutOp[] => ops.filter((op): op is PutOp => op.type === 'put' && op.store === store)
const putsOf = (storage: InstrumentedStore, store: string): PutOp[] => putsIn(storage.commits.flat(), store)

/** Keys (0..KEYS-1) whose value in `values` is not `finalItem(key)`; and keys that should not be there. */
function wrongKeys(values: ReadonlyMap<number, unknown>): { missingOrStale: number[]; extra: number[] } {
  const missingOrStale: number[] = []
  for (let id = 0; id < KEYS; id++) if (!isDeepStrictEqual(values.get(id), finalItem(id))) missingOrStale.push(id)
  const extra = [...values.keys()].filter((id) => !(Number.isInteger(id) && id >= 0 && id < KEYS))
  return { missingOrStale: missingOrStale.slice(0, 10), extra: extra.slice(0, 10) }
}

const stateValues = (state: EntityState<Item, number>): Map<number, unknown> => new Map(state.ids.map((id) => [id, state.entities[id]]))

afterEach(() => {
  vi.useRealTimers()
})

describe('load: 100k dispatches on 10k keys', () => {
  test('local: the queue stays bounded by distinct keys and each key is written once, with its last value', async () => {
    // Only the clock is fake: the debounce is then deterministic, while fake-indexeddb
    // (setImmediate) runs for real.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date', 'performance'] })
    const factory = new IDBFactory()
    const storage = instrumentedStore(factory, 'load-local')
    const errors: SyncError[] = []
    const persistence = createPersistenceMiddleware({
      dbName: 'load-local',
      indexedDB: factory,
      storage,
      onError: (e) => errors.push(e),
      slices: { files: { storeName: 'files', debounceMs: 300, batchSize: BATCH_SIZE } },
    })
    const store = makeStore(persistence)
    await persistence.whenHydrated()
    const commitsBefore = storage.sliceCommits().length // the seed of the empty slice

    const heapBefore = heapUsed()
    const started = performance.now()
    const pending: number[] = []
    let peakHeap = 0
    for (let i = 0; i < DISPATCHES; i++) {
      store.dispatch(saveFile(itemFor(i)))
      if ((i + 1) % SAMPLE_EVERY === 0) {
        await tick()
        pending.push(persistence.getStatus().pendingOperations)
        // 2 ms per 1,000 dispatches: a key is touched again every 20 ms, well within its
        // 300 ms debounce, so no key may fall due during the burst.
        vi.advanceTimersByTime(2)
        if ((i + 1) % 10_000 === 0) peakHeap = Math.max(peakHeap, heapUsed() - heapBefore)
      }
    }
    const commitsDuringBurst = storage.sliceCommits().length - commitsBefore
    // The debounce alone writes everything once the burst is over; flush has nothing left.
    await vi.advanceTimersByTimeAsync(400)
    await settleQueue(persistence)
    await persistence.flush()
    const heapAfter = heapUsed() - heapBefore
    const durationMs = performance.now() - started

    const commits = storage.sliceCommits().slice(commitsBefore)
    const puts = putsIn(commits.flat(), 'files')
    const maxPending = Math.max(...pending)
    console.log(
      `load/local: ${DISPATCHES} dispatches, ${KEYS} keys: max pending ${maxPending}, heap +${(peakHeap / MB).toFixed(1)} MB peak, ` +
        `+${(heapAfter / MB).toFixed(1)} MB after flush, ${commitsDuringBurst} commits during the burst, ` +
        `${puts.length} puts in ${commits.length} transactions, ${Math.round(durationMs)} ms`,
    )

    // Memory: one queued operation per distinct key, never one per dispatch.
    expect(pending).toHaveLength(DISPATCHES / SAMPLE_EVERY)
    expect(pending[0]).toBe(SAMPLE_EVERY) // the sampling sees the queue: 1,000 distinct keys so far
    expect(maxPending).toBeLessThanOrEqual(KEYS)
    expect(peakHeap).toBeLessThan(HEAP_BOUND)
    expect(heapAfter).toBeLessThan(HEAP_BOUND)

    // Coalescing: nothing written while every key kept changing within its debounce, then
    // exactly one put per key (100k dispatches -> 10k puts), in full transactions.
    expect(commitsDuringBurst).toBe(0)
    expect(puts).toHaveLength(KEYS)
    expect(new Set(puts.map((op) => op.key)).size).toBe(KEYS)
    expect(puts.filter((op) => !isDeepStrictEqual(op.value, finalItem(op.key as number))).map((op) => op.key)).toEqual([])
    expect(commits.every((ops) => ops.length <= BATCH_SIZE)).toBe(true)
    // At least KEYS / batchSize; at most one partial batch for each of the <= 10 timer firings
    // over the 20 ms in which the last pass falls due.
    expect(commits.length).toBeGreaterThanOrEqual(KEYS / BATCH_SIZE)
    expect(commits.length).toBeLessThanOrEqual(KEYS / BATCH_SIZE + 10)

    // Everything persisted: exactly 10k records, each the final Redux value of its key.
    const state = store.getState().files
    expect(state.ids).toHaveLength(KEYS)
    expect(wrongKeys(stateValues(state))).toEqual({ missingOrStale: [], extra: [] })
    const stored = (await readStore(factory, 'files', 'load-local')) as Map<number, unknown>
    expect(stored.size).toBe(KEYS)
    expect(wrongKeys(stored)).toEqual({ missingOrStale: [], extra: [] })
    for (const id of [0, 1234, KEYS - 1]) expect(stored.get(id)).toEqual(state.entities[id])
    expect(errors).toEqual([])
    await persistence.dispose()

    // The heap bound is meaningful: keeping every operation (a queue entry and its value per
    // dispatch, as a non-coalescing queue would) costs far more than the bound.
    const base = heapUsed()
    const retained: unknown[] = []
    for (let i = 0; i < DISPATCHES; i++) {
      const value = itemFor(i)
      retained.push({ key: `files:${value.id}`, slice: 'files', id: value.id, op: 'put', value, seq: i, attempts: 0, state: 'pending', dueAt: 0 })
    }
    const leakCost = heapUsed() - base
    console.log(`load/local: retaining all ${retained.length} operations costs ${(leakCost / MB).toFixed(1)} MB`)
    expect(leakCost).toBeGreaterThan(1.5 * HEAP_BOUND)
  })

  describe('with remote sync', () => {
    const BASE_URL = 'http://load.test/api'
    const server = createMockSyncServer({ baseUrl: BASE_URL })
    const msw = setupServer(...server.handlers)
    beforeAll(() => msw.listen({ onUnhandledRequest: 'error' }))
    afterAll(() => msw.close())

    test('remote: the outbox coalesces per key (bounded by 10k while 50k writes pile up offline) and the server ends with the state', async () => {
      const factory = new IDBFactory()
      const storage = instrumentedStore(factory, 'load-remote')
      const errors: SyncError[] = []
      let conflicts = 0
      const persistence = createPersistenceMiddleware({
        dbName: 'load-remote',
        indexedDB: factory,
        storage,
        onError: (e) => errors.push(e),
        slices: { files: { storeName: 'files', debounceMs: 20, batchSize: BATCH_SIZE } },
        remote: createRemote({ baseUrl: BASE_URL, retry: { initialDelayMs: 20, maxDelayMs: 200 }, timeoutMs: 10_000, onConflict: () => conflicts++ }),
      })
      const store = makeStore(persistence)
      await persistence.whenHydrated()
      const engine = persistence.sync!
      for (let n = 0; n < 100_000 && !engine.connected; n++) await tick()
      expect(engine.connected).toBe(true)

      // First half offline: after each pass over the 10k keys the local queue is drained, so
      // every pass commits one write (and one outbox write) per key: 50k writes for the outbox
      // to hold. Second half online: writes and pushes interleave with the dispatches.
      server.down()
      const started = performance.now()
      let maxPending = 0
      let maxOutbox = 0
      let maxStoredOutbox = 0
      let outboxWritesOffline = 0
      let errorsOffline = 0
      const sampleOutbox = (): void => {
        maxOutbox = Math.max(maxOutbox, engine.outboxDepth, store.getState().sync.outboxDepth)
      }
      for (let i = 0; i < DISPATCHES; i++) {
        store.dispatch(saveFile(itemFor(i)))
        if ((i + 1) % SAMPLE_EVERY === 0) {
          // Real time: 5 ms between chunks lets the 20 ms debounce fall due and batches commit.
          await new Promise((resolve) => setTimeout(resolve, 5))
          maxPending = Math.max(maxPending, persistence.getStatus().pendingOperations)
          sampleOutbox()
          if ((i + 1) % KEYS === 0) {
            const offline = i + 1 <= DISPATCHES / 2
            if (offline) await settleQueue(persistence)
            sampleOutbox()
            maxStoredOutbox = Math.max(maxStoredOutbox, (await readStore(factory, OUTBOX_STORE, 'load-remote')).size)
            if (i + 1 === DISPATCHES / 2) {
              outboxWritesOffline = putsOf(storage, OUTBOX_STORE).length
              errorsOffline = errors.length
              server.up()
            }
          }
        }
      }
      const dispatchMs = performance.now() - started
      await engine.pushAll() // flushes the local queue, pushes until the outbox is empty
      const durationMs = performance.now() - started

      const localPuts = putsOf(storage, 'files').length
      const outboxWrites = putsOf(storage, OUTBOX_STORE).length
      const records = server.model.records()
      console.log(
        `load/remote: max pending ${maxPending}, max outbox ${maxOutbox} (stored ${maxStoredOutbox}) after ${outboxWritesOffline} outbox writes offline, ` +
          `${localPuts} local puts in ${storage.sliceCommits().length} transactions, ${outboxWrites} outbox writes, ` +
          `requests ${JSON.stringify(server.requests)}, ${server.model.appliedOps} ops applied, ${records.length} records, ` +
          `dispatch ${Math.round(dispatchMs)} ms, total ${Math.round(durationMs)} ms`,
      )

      // Bounded by distinct keys, in memory and in IndexedDB, although the offline half alone
      // committed 5 x 10k outbox writes: the latest operation per key replaces the earlier one.
      // One outbox write per key per pass, plus the first batch (remote.batchSize, 100) marked as
      // sent by the push that started before the client knew the server was down.
      expect(outboxWritesOffline).toBeGreaterThanOrEqual(DISPATCHES / 2)
      expect(outboxWritesOffline).toBeLessThanOrEqual(DISPATCHES / 2 + 100)
      expect(maxPending).toBeLessThanOrEqual(KEYS)
      expect(maxOutbox).toBeLessThanOrEqual(KEYS)
      expect(maxStoredOutbox).toBeLessThanOrEqual(KEYS)
      expect(maxOutbox).toBe(KEYS) // the sampling saw the full outbox

      // Drained: nothing left in the outbox, in memory, in the state or in IndexedDB.
      expect(engine.outboxDepth).toBe(0)
      expect(store.getState().sync.outboxDepth).toBe(0)
      expect((await readStore(factory, OUTBOX_STORE, 'load-remote')).size).toBe(0)
      expect(engine.deadLetterCount).toBe(0)
      expect(conflicts).toBe(0)
      expect(errors.slice(errorsOffline).map((e) => e.message)).toEqual([])

      // The server ends with exactly the state: 10k live records, each the final value.
      const state = store.getState().files
      expect(wrongKeys(stateValues(state))).toEqual({ missingOrStale: [], extra: [] })
      expect(records).toHaveLength(KEYS)
      expect(records.filter((r) => r.collection !== 'files' || r.deleted)).toEqual([])
      expect(wrongKeys(new Map(records.map((r) => [Number(r.id), r.value])))).toEqual({ missingOrStale: [], extra: [] })
      // Coalescing never adds operations: the server applied at most one per outbox write.
      expect(server.model.appliedOps).toBeGreaterThanOrEqual(KEYS)
      expect(server.model.appliedOps).toBeLessThanOrEqual(outboxWrites)
      // And IndexedDB agrees.
      const stored = (await readStore(factory, 'files', 'load-remote')) as Map<number, unknown>
      expect(stored.size).toBe(KEYS)
      expect(wrongKeys(stored)).toEqual({ missingOrStale: [], extra: [] })
      await persistence.dispose()
    }, 40_000)
  })
})
