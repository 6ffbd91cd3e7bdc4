import { openDB } from 'idb'
import { createIdbStore } from 'redux-idb-sync'
import { compare, type Fact, type Result } from '../lib/harness'
import { counting, dropReplay, items, makeItem, oursStore, persistStoreOf, prepareReplay, replayWalker, uniqueName, type replay } from '../lib/fixtures'
import type { Settings } from '../lib/settings'

// Cases that run both in Node (fake-indexeddb) and in Chromium (real IndexedDB).

/** B5: one key updated 1,000 times inside one debounce window, then flushed. */
export async function b5(settings: Settings): Promise<Array<Result | Fact>> {
  const factory = settings.factory()
  const dbName = uniqueName('b5')
  const storage = counting(createIdbStore({ dbName, factory, openTimeoutMs: 10_000, durability: 'default' }))
  const UPDATES = 1_000
  // The reducer replays 1,000 precomputed versions of the one item (see `prepareReplay`), so the
  // app's reducer (Immer, ~1 µs a dispatch: more than the put itself) is not in the measurement.
  prepareReplay(1, UPDATES)
  const ours = await oursStore(0, { factory, persistence: { dbName, storage } })
  const oursNext = replayWalker(1)
  ours.store.dispatch(oursNext())
  await ours.persistence.flush()
  const raw = await openDB(uniqueName('b5-raw'), 1, { upgrade: (db) => void db.createObjectStore('items') })
  const burst = async (dispatch: (a: ReturnType<typeof replay>) => unknown, next: () => ReturnType<typeof replay>) => {
    // Ten ticks of 100: the middleware sees 1,000 actions and 10 microtask diffs.
    for (let tick = 0; tick < 10; tick++) {
      for (let i = 0; i < UPDATES / 10; i++) dispatch(next())
      await Promise.resolve()
    }
  }
  const putsBefore = storage.counts.puts
  let runs = 0
  // The flush after the burst, timed on its own: the burst (1,000 dispatches and 10 diffs) runs
  // first, untimed, so the row compares the write the burst left against one raw put.
  const result = await compare({
    id: 'B5',
    title: '1,000 updates of one key in a debounce window: the flush after the burst',
    ours: {
      name: 'redux-idb-sync',
      timesItself: true,
      run: async () => {
        runs++
        await burst(ours.store.dispatch, oursNext)
        const t0 = performance.now()
        await ours.persistence.flush()
        return performance.now() - t0
      },
    },
    baseline: {
      name: 'one raw idb put',
      timesItself: true,
      run: async () => {
        const t0 = performance.now()
        const tx = raw.transaction('items', 'readwrite')
        void tx.store.put(makeItem(0), 'k0')
        await tx.done
        return performance.now() - t0
      },
    },
    report: 'overhead',
    target: { op: '<=', value: 1.5 },
    rounds: settings.rounds,
    iterations: settings.iterations(1),
    note: 'the flush timed directly, after the untimed burst',
  })
  const putsPerBurst = (storage.counts.puts - putsBefore) / runs
  raw.close()
  await ours.persistence.dispose()
  dropReplay(1)
  return [result, { id: 'B5', title: 'puts per burst of 1,000 updates of one key', value: `${putsPerBurst} put`, target: 'exactly 1', met: putsPerBurst === 1 }]
}

/** B7: hydration of n items, against a raw getAll and against redux-persist's rehydrate. */
export async function b7(settings: Settings): Promise<Result[]> {
  const n = settings.hydrateSize
  const factory = settings.factory()
  const dbName = uniqueName('b7')
  const seeded = await oursStore(n, { factory, persistence: { dbName } })
  await seeded.persistence.dispose()
  const rawName = uniqueName('b7-raw')
  {
    const db = await openDB(rawName, 1, { upgrade: (d) => void d.createObjectStore('items') })
    const tx = db.transaction('items', 'readwrite')
    for (const item of items(n)) void tx.store.put(item, item.id)
    await tx.done
    db.close()
  }
  const hydrateOurs = async () => {
    const o = await oursStore(0, { factory, persistence: { dbName } })
    if (o.store.getState().items.ids.length !== n) throw new Error(`hydrated ${o.store.getState().items.ids.length} of ${n}`)
    await o.persistence.dispose()
  }
  const rawGetAll = async () => {
    const db = await openDB(rawName, 1)
    const all = await db.getAll('items')
    if (all.length !== n) throw new Error('raw getAll read too little')
    db.close()
  }
  const rp = await persistStoreOf(n)
  rp.persistor.pause()
  const results = [
    await compare({
      id: 'B7',
      title: `hydrate ${n.toLocaleString('en')} items (open → in the store)`,
      ours: { name: 'redux-idb-sync', run: hydrateOurs },
      baseline: { name: 'raw idb getAll', run: rawGetAll },
      report: 'overhead',
      target: { op: '<=', value: 1.2 },
      rounds: settings.rounds,
      iterations: settings.quick ? 2 : 8,
    }),
  ]
  const rehydrate = async () => {
    const p = await persistStoreOf(0, rp.dbName)
    if (p.store.getState().items.ids.length !== n) throw new Error('redux-persist rehydrated too little')
    p.persistor.pause()
  }
  results.push(
    await compare({
      id: 'B7',
      title: `hydrate ${n.toLocaleString('en')} items, against redux-persist's rehydrate`,
      ours: { name: 'redux-idb-sync', run: hydrateOurs },
      baseline: { name: 'redux-persist 6 rehydrate', run: rehydrate },
      report: 'speedup',
      rounds: settings.rounds,
      iterations: settings.quick ? 2 : 8,
    }),
  )
  return results
}
