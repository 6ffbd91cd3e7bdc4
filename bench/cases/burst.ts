import { openDB, type IDBPDatabase } from 'idb'
import { compare, type Result } from '../lib/harness'
import { bareStore, makeItem, oursStore, persistStoreOf, upsertMany, uniqueName, type OursStore } from '../lib/fixtures'
import type { Settings } from '../lib/settings'

/**
 * B3 and B4: a burst of distinct keys (one `upsertMany`), from the dispatch until committed (our `flush()`
 * bypasses the debounce, so the wait of `debounceMs` is not counted), against the same records
 * written by hand: in one transaction (the physical limit, B3) and in one transaction per key
 * (B4: all started at once, which lets IndexedDB pipeline them, the kindest form of that
 * baseline; and awaited one after another, as a loop of `await set(key, value)` does).
 * The reducer's cost of the dispatches is measured on a bare store and subtracted from ours.
 */
export async function burst(settings: Settings): Promise<Result[]> {
  const n = settings.burst
  const raw: IDBPDatabase = await openDB(uniqueName('burst-raw'), 1, { upgrade: (db) => void db.createObjectStore('items') })
  let rev = 0
  const oneTransaction = async () => {
    rev++
    const tx = raw.transaction('items', 'readwrite')
    for (let i = 0; i < n; i++) void tx.store.put(makeItem(i, rev), `k${i}`)
    await tx.done
  }
  const perKey = async () => {
    rev++
    await Promise.all(
      Array.from({ length: n }, (_, i) => {
        const tx = raw.transaction('items', 'readwrite')
        void tx.store.put(makeItem(i, rev), `k${i}`)
        return tx.done
      }),
    )
  }
  // One bulk action (a fetch result, an import): with one action per key, Immer's O(items) work
  // per dispatch would drown the persistence layer's cost in the reducer's (B5 covers that case).
  const perKeySequential = async () => {
    rev++
    for (let i = 0; i < n; i++) {
      const tx = raw.transaction('items', 'readwrite')
      void tx.store.put(makeItem(i, rev), `k${i}`)
      await tx.done
    }
  }
  const dispatchBurst = (dispatch: (a: ReturnType<typeof upsertMany>) => unknown) => {
    rev++
    dispatch(upsertMany(Array.from({ length: n }, (_, i) => makeItem(i, rev))))
  }
  const bare = bareStore(0)
  const bareSide = { name: 'bare store, same dispatches', run: () => dispatchBurst(bare.dispatch) }
  const oursBurst = (o: OursStore) => async () => {
    dispatchBurst(o.store.dispatch)
    await o.persistence.flush()
  }
  const results: Result[] = []
  const sizes = settings.quick ? [10, 100] : [10, 50, 100, 250, 1000]
  for (const batchSize of sizes) {
    const o = await oursStore(0, { factory: settings.factory(), slice: { batchSize } })
    const label = batchSize === 10 ? 'batchSize 10 (the first default)' : batchSize === 100 ? 'batchSize 100 (the default)' : `batchSize ${batchSize}`
    results.push(
      await compare({
        id: 'B3',
        title: `burst of ${n.toLocaleString('en')} distinct keys, ours with ${label}`,
        ours: { name: 'redux-idb-sync', run: oursBurst(o) },
        baseline: { name: 'raw idb, one transaction', run: oneTransaction },
        netOf: { ours: bareSide },
        report: 'overhead',
        target: { op: '<=', value: 1.3 },
        rounds: settings.rounds,
        iterations: settings.quick ? 2 : 6,
      }),
    )
    if (batchSize === 10 || batchSize === 100) {
      results.push(
        await compare({
          id: 'B4',
          title: `burst of ${n.toLocaleString('en')} distinct keys, ours with ${label}, vs awaiting each key's transaction in turn`,
          ours: { name: 'redux-idb-sync', run: oursBurst(o) },
          baseline: { name: 'raw idb, one awaited transaction per key', run: perKeySequential },
          netOf: { ours: bareSide },
          report: 'speedup',
          target: { op: '>=', value: 6 },
          rounds: settings.rounds,
          iterations: settings.quick ? 2 : 3,
        }),
      )
      results.push(
        await compare({
          id: 'B4',
          title: `burst of ${n.toLocaleString('en')} distinct keys, ours with ${label}`,
          ours: { name: 'redux-idb-sync', run: oursBurst(o) },
          baseline: { name: 'raw idb, one transaction per key', run: perKey },
          netOf: { ours: bareSide },
          report: 'speedup',
          target: { op: '>=', value: 6 },
          rounds: settings.rounds,
          iterations: settings.quick ? 2 : 6,
        }),
      )
    }
    await o.persistence.dispose()
  }
  raw.close()
  return results
}

/**
 * B16: a burst in which every item of a 1,000-item slice changes (one `upsertMany`), ours with the
 * default options against redux-persist, each from `dispatch` returning until committed.
 */
export async function b16(settings: Settings): Promise<Result[]> {
  const n = settings.burst
  const o = await oursStore(n, { factory: settings.factory() })
  const p = await persistStoreOf(n)
  let rev = 0
  const all = () => Array.from({ length: n }, (_, i) => makeItem(i, rev))
  const ours = {
    name: 'redux-idb-sync',
    timesItself: true,
    run: async () => {
      rev++
      o.store.dispatch(upsertMany(all()))
      const t0 = performance.now()
      await o.persistence.flush()
      return performance.now() - t0
    },
  }
  const result = await compare({
    id: 'B16',
    title: `every item of a ${n.toLocaleString('en')}-item slice changes in one burst, default options`,
    ours,
    baseline: {
      name: 'redux-persist 6 + idb-keyval',
      timesItself: true,
      run: async () => {
        rev++
        p.store.dispatch(upsertMany(all()))
        const t0 = performance.now()
        await p.persistor.flush()
        return performance.now() - t0
      },
    },
    report: 'speedup',
    target: { op: '>=', value: 1 },
    rounds: settings.rounds,
    iterations: settings.quick ? 2 : 8,
    note: 'dispatch returned → committed',
  })
  // The item-level limit for the same burst: the same 1,000 records put by hand in one
  // transaction. redux-persist writes one string, so no item-level store can reach its time.
  const raw: IDBPDatabase = await openDB(uniqueName('b16-raw'), 1, { upgrade: (db) => void db.createObjectStore('items') })
  const limit = await compare({
    id: 'B16',
    title: `every item of a ${n.toLocaleString('en')}-item slice changes in one burst, default options, vs the item-level limit`,
    ours,
    baseline: {
      name: 'raw idb, the same puts in one transaction',
      timesItself: true,
      run: async () => {
        rev++
        const items = all()
        const t0 = performance.now()
        const tx = raw.transaction('items', 'readwrite')
        for (const item of items) void tx.store.put(item, item.id)
        await tx.done
        return performance.now() - t0
      },
    },
    report: 'overhead',
    rounds: settings.rounds,
    iterations: settings.quick ? 2 : 8,
    note: 'dispatch returned → committed',
  })
  raw.close()
  p.persistor.pause()
  await o.persistence.dispose()
  return [result, limit]
}
