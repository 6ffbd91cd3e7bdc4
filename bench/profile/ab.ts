// The workload of `node bench/profile/ab.mjs <git-ref>` (see there): the library of <git-ref>
// ('ris-before') against the working tree's ('ris-after'), side by side in one process, alternating
// (bench/lib/harness.ts `compare`), on OUR side of the cases a change to the write or read path
// moves: B1's flush after a real-reducer change, B5's flush after a burst, B16's flush of 1,000
// changed items, B7's hydration, and `commit` (our IndexedDB wrapper alone). Node only (fake-indexeddb).
import 'fake-indexeddb/auto'
import { IDBFactory } from 'fake-indexeddb'
import { configureStore } from '@reduxjs/toolkit'
import { createPersistenceMiddleware as before, createIdbStore as storeBefore } from 'ris-before'
import { createPersistenceMiddleware as after, createIdbStore as storeAfter } from 'ris-after'
import { compare, type Result } from '../lib/harness'
import { bump, counterSlice, items, makeItem, setAll, uniqueName, upsertMany, itemsSlice } from '../lib/fixtures'

type Create = typeof after
type ItemsState = ReturnType<typeof itemsSlice.reducer>
const quick = process.argv.includes('--quick')
const only = process.argv.slice(2).filter((a) => /^(B\d+|commit)$/.test(a))
const rounds = quick ? 2 : 10

/**
 * B5's reducer: `ab/step` moves the slice to a state computed beforehand (one item, a new revision
 * each), so the 1,000 dispatches of the burst cost O(1) each, as in bench/cases/storage.ts.
 */
const steps: ItemsState[] = []
{
  let state = itemsSlice.reducer(undefined, setAll(items(1)))
  for (let i = 0; i < 1_000; i++) steps.push((state = itemsSlice.reducer(state, bump('k0'))))
}
const itemsReducer = (state: ItemsState | undefined, action: { type: string; payload?: unknown }): ItemsState =>
  action.type === 'ab/step' ? steps[action.payload as number]! : itemsSlice.reducer(state, action as never)

/** A store of n items with the `items` slice persisted by one version of the library. */
async function storeOf(create: Create, n: number, dbName = uniqueName('ab'), factory: IDBFactory = new IDBFactory()) {
  const persistence = create({
    dbName,
    indexedDB: factory,
    onError: (e) => console.error('ab: failed:', e.name, e.message),
    slices: { items: { storeName: 'items' } },
  })
  const store = configureStore({
    reducer: { items: itemsReducer, counter: counterSlice.reducer },
    middleware: (d) => d({ serializableCheck: false, immutableCheck: false }).concat(persistence),
    enhancers: (d) => d().concat(persistence.enhancer),
  })
  await persistence.whenHydrated()
  if (n > 0) {
    persistence.configure('items', { batchSize: 1000 })
    store.dispatch(setAll(items(n)))
    await persistence.flush()
    persistence.configure('items', { batchSize: 100 })
  }
  return { store, persistence }
}

const cases: Record<string, () => Promise<Result[]>> = {
  async B1() {
    const out: Result[] = []
    for (const n of quick ? [1_000] : [1_000, 10_000]) {
      const side = async (create: Create, name: string) => {
        const o = await storeOf(create, n)
        let i = 0
        const next = () => `k${(i = (i + 7919) % n)}`
        o.store.dispatch(bump(next())) // learned
        await o.persistence.flush()
        return {
          name,
          timesItself: true,
          run: async () => {
            o.store.dispatch(bump(next()))
            const t0 = performance.now()
            await o.persistence.flush()
            return performance.now() - t0
          },
        }
      }
      out.push(
        await compare({
          id: 'B1',
          title: `flush after one item changed among ${n.toLocaleString('en')} (real reducer)`,
          ours: await side(after, 'after'),
          baseline: await side(before, 'before'),
          report: 'overhead',
          rounds,
          iterations: quick ? 3 : 200,
        }),
      )
    }
    return out
  },
  async B5() {
    const side = async (create: Create, name: string) => {
      const o = await storeOf(create, 1)
      let step = 0
      return {
        name,
        timesItself: true,
        run: async () => {
          for (let tick = 0; tick < 10; tick++) {
            for (let i = 0; i < 100; i++) o.store.dispatch({ type: 'ab/step', payload: (step = (step + 1) % steps.length) })
            await Promise.resolve()
          }
          const t0 = performance.now()
          await o.persistence.flush()
          return performance.now() - t0
        },
      }
    }
    return [
      await compare({
        id: 'B5',
        title: 'the flush after 1,000 updates of one key',
        ours: await side(after, 'after'),
        baseline: await side(before, 'before'),
        report: 'overhead',
        rounds,
        iterations: quick ? 3 : 100,
      }),
    ]
  },
  /** Our IndexedDB wrapper alone: `commit` of one put, the end of every flush. */
  async commit() {
    const side = async (create: typeof storeAfter, name: string) => {
      const storage = create({ dbName: uniqueName('ab-commit'), factory: new IDBFactory(), openTimeoutMs: 10_000, durability: 'default' })
      await storage.ensureStores(['items'])
      let rev = 0
      return { name, run: () => storage.commit([{ type: 'put', store: 'items', key: 'k0', value: makeItem(0, ++rev) }]) }
    }
    return [
      await compare({
        id: 'commit',
        title: 'one put through createIdbStore().commit',
        ours: await side(storeAfter, 'after'),
        baseline: await side(storeBefore, 'before'),
        report: 'overhead',
        rounds,
        iterations: quick ? 3 : 3000,
      }),
    ]
  },
  async B16() {
    const n = quick ? 100 : 1_000
    const side = async (create: Create, name: string) => {
      const o = await storeOf(create, n)
      let rev = 0
      return {
        name,
        timesItself: true,
        run: async () => {
          rev++
          o.store.dispatch(upsertMany(Array.from({ length: n }, (_, i) => makeItem(i, rev))))
          const t0 = performance.now()
          await o.persistence.flush()
          return performance.now() - t0
        },
      }
    }
    return [
      await compare({
        id: 'B16',
        title: `the flush after all ${n.toLocaleString('en')} items changed`,
        ours: await side(after, 'after'),
        baseline: await side(before, 'before'),
        report: 'overhead',
        rounds,
        iterations: quick ? 2 : 10,
      }),
    ]
  },
  async B7() {
    const n = quick ? 500 : 10_000
    const factory = new IDBFactory()
    const dbName = uniqueName('ab-b7')
    const seeded = await storeOf(after, n, dbName, factory)
    await seeded.persistence.dispose()
    const side = (create: Create, name: string) => ({
      name,
      run: async () => {
        const o = await storeOf(create, 0, dbName, factory)
        if (o.store.getState().items.ids.length !== n) throw new Error('hydrated too little')
        await o.persistence.dispose()
      },
    })
    return [
      await compare({
        id: 'B7',
        title: `hydrate ${n.toLocaleString('en')} items`,
        ours: side(after, 'after'),
        baseline: side(before, 'before'),
        report: 'overhead',
        rounds,
        iterations: quick ? 2 : 8,
      }),
    ]
  },
}

for (const [id, run] of Object.entries(cases)) {
  if (only.length > 0 && !only.includes(id)) continue
  for (const r of await run()) {
    console.log(
      `${r.id} ${r.title}: after ${r.oursMedianMs.toFixed(4)} ms, before ${r.baselineMedianMs.toFixed(4)} ms; after ÷ before = ${r.ratio.toFixed(3)}× (${r.ratioMin.toFixed(2)}–${r.ratioMax.toFixed(2)}× over ${r.rounds} rounds)`,
    )
  }
}
