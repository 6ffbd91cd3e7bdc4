import { compare, median, type Fact, type Result, type Side } from '../lib/harness'
import {
  bareStore,
  bump,
  dexieTable,
  inc,
  localforageStorage,
  makeItem,
  oursStore,
  persistStoreOf,
  rememberStoreOf,
  upsertOne,
  type OursStore,
} from '../lib/fixtures'
import type { Settings } from '../lib/settings'

/**
 * B1/B2 with the app's real RTK reducer (`bump`: a case reducer that mutates one entity), default
 * options: ours learns the changed id from immer's patches (the enhancer's `track`).
 *
 * What is timed is each library's own work for the change, from `dispatch` returning to the
 * change being committed: the reducer (immer copying the `entities` object, O(items), the same for
 * every library) is not. Ours and redux-persist do all their work after `dispatch` returns (the
 * diff and the write; redux-persist's serialization in `flush`). redux-remember writes from its
 * store listener, inside `dispatch`, so its side is timed from before `dispatch` and the bare
 * store's median dispatch of the same round is subtracted (its own cost is milliseconds, so the
 * subtraction is small beside it). The tracker's share of the reducer is its own row.
 */
export async function b1real(settings: Settings, withPeers: boolean): Promise<Array<Result | Fact>> {
  const results: Array<Result | Fact> = []
  const oursBySize = new Map<number, Side>()
  const stride = (n: number) => {
    let i = 0
    return () => `k${(i = (i + 7919) % n)}`
  }
  const oursSide = (o: OursStore, n: number): Side => {
    const next = stride(n)
    return {
      name: 'redux-idb-sync',
      timesItself: true,
      run: async () => {
        o.store.dispatch(bump(next()))
        const t0 = performance.now()
        await o.persistence.flush()
        return performance.now() - t0
      },
    }
  }
  const stores: OursStore[] = []
  for (const n of settings.b1Sizes) {
    const o = await oursStore(n, { factory: settings.factory() })
    stores.push(o)
    const ours = oursSide(o, n)
    await ours.run() // the first `bump` teaches the enhancer the type (full diff); from here on: patches
    oursBySize.set(n, ours)
    const p = await persistStoreOf(n)
    const nextP = stride(n)
    const persistSide: Side = {
      name: 'redux-persist 6 + idb-keyval',
      timesItself: true,
      run: async () => {
        p.store.dispatch(bump(nextP()))
        const t0 = performance.now()
        await p.persistor.flush()
        return performance.now() - t0
      },
    }
    const target = n === 10_000 ? { op: '>=' as const, value: 100 } : n === 100_000 ? { op: '>=' as const, value: 1000 } : undefined
    results.push(
      await compare({
        id: 'B1',
        title: `one item changes among ${n.toLocaleString('en')}, real RTK reducer, default options`,
        ours,
        baseline: persistSide,
        report: 'speedup',
        ...(target ? { target } : {}),
        rounds: settings.rounds,
        iterations: settings.iterations(n),
        note: 'dispatch returned → committed',
      }),
    )
    p.persistor.pause()
    if (withPeers && n === Math.min(10_000, settings.b1Sizes[settings.b1Sizes.length - 1]!)) {
      const lf = await persistStoreOf(n, undefined, localforageStorage)
      const nextL = stride(n)
      results.push(
        await compare({
          id: 'B1',
          title: `one item changes among ${n.toLocaleString('en')}, real RTK reducer, default options, vs redux-persist on localforage`,
          ours,
          baseline: {
            name: 'redux-persist 6 + localforage',
            timesItself: true,
            run: async () => {
              lf.store.dispatch(bump(nextL()))
              const t0 = performance.now()
              await lf.persistor.flush()
              return performance.now() - t0
            },
          },
          report: 'speedup',
          rounds: settings.rounds,
          iterations: settings.iterations(n),
          note: 'dispatch returned → committed',
        }),
      )
      lf.persistor.pause()
      const remember = await rememberStoreOf(n)
      const bare = bareStore(n)
      const nextR = stride(n)
      const nextB = stride(n)
      // The bare store's dispatch of the same action, measured alongside, is subtracted.
      const bareTimes: number[] = []
      results.push(
        await compare({
          id: 'B1',
          title: `one item changes among ${n.toLocaleString('en')}, real RTK reducer, default options, vs redux-remember`,
          ours,
          baseline: {
            name: 'redux-remember 6 + idb-keyval',
            timesItself: true,
            run: async () => {
              let t = performance.now()
              bare.dispatch(bump(nextB()))
              bareTimes.push(performance.now() - t)
              const written = remember.written()
              t = performance.now()
              remember.store.dispatch(bump(nextR()))
              await written
              return Math.max(0.001, performance.now() - t - median(bareTimes.slice(-9)))
            },
          },
          report: 'speedup',
          rounds: settings.rounds,
          iterations: settings.iterations(n),
          note: 'redux-remember writes inside dispatch: timed from dispatch, net of a bare store’s dispatch',
        }),
      )
      const dexie = await dexieTable()
      await dexie.table.bulkPut(Array.from({ length: n }, (_, i) => makeItem(i)))
      let rev = 0
      const nextD = stride(n)
      results.push(
        await compare({
          id: 'B1',
          title: `one item changes among ${n.toLocaleString('en')}, real RTK reducer, default options, vs a hand-written Dexie put (the raw limit)`,
          ours,
          baseline: {
            name: 'Dexie 4 table.put',
            timesItself: true,
            run: async () => {
              const item = { ...makeItem(0, ++rev), id: nextD() }
              const t0 = performance.now()
              await dexie.table.put(item)
              return performance.now() - t0
            },
          },
          report: 'overhead',
          rounds: settings.rounds,
          iterations: settings.iterations(n),
          note: 'how far ours is from writing the one item by hand',
        }),
      )
      dexie.close()
      results.push(...(await trackerShare(settings, n)))
    }
  }
  const small = settings.b1Sizes[0]!
  const large = settings.b1Sizes[settings.b1Sizes.length - 1]!
  if (large !== small) {
    results.push(
      await compare({
        id: 'B1',
        title: `flatness, real RTK reducer, default options: ours at ${large.toLocaleString('en')} items vs ours at ${small.toLocaleString('en')}`,
        ours: { ...oursBySize.get(large)!, name: `ours@${large}` },
        baseline: { ...oursBySize.get(small)!, name: `ours@${small}` },
        report: 'overhead',
        target: { op: '<=', value: 1.2 },
        rounds: settings.rounds,
        iterations: settings.iterations(large),
        note: 'dispatch returned → committed',
      }),
    )
  }
  for (const o of stores) await o.persistence.dispose()
  return results
}

/**
 * The tracker's share of the app's reducer: `dispatch` alone (drafted reduction, the
 * middleware's reference checks), ours against a bare store of the same reducers; no write
 * starts while timed (a long debounce). For an update (`bump`), an addition (`upsertOne` of a new
 * id: immer's patches of the `ids` array) and actions that touch no persisted slice.
 */
async function trackerShare(settings: Settings, n: number): Promise<Array<Result | Fact>> {
  const o = await oursStore(n, { factory: settings.factory(), slice: { debounceMs: 600_000 } })
  const bare = bareStore(n)
  const results: Array<Result | Fact> = []
  const upd = (dispatch: typeof bare.dispatch) => {
    let i = 0
    return () => void dispatch(bump(`k${(i = (i + 7919) % n)}`))
  }
  o.store.dispatch(bump('k1')) // learned
  results.push(
    await compare({
      id: 'B1',
      title: `tracker's share of the reducer: update one item of ${n.toLocaleString('en')} (dispatch alone)`,
      ours: { name: 'ours (drafted)', run: upd(o.store.dispatch) },
      baseline: { name: 'bare store', run: upd(bare.dispatch) },
      report: 'overhead',
      rounds: settings.rounds,
      iterations: settings.iterations(n),
    }),
  )
  let added = 0
  const add = (dispatch: typeof bare.dispatch, prefix: string) => () => void dispatch(upsertOne({ ...makeItem(0), id: `${prefix}${added++}` }))
  o.store.dispatch(upsertOne({ ...makeItem(0), id: 'learn' }))
  results.push(
    await compare({
      id: 'B1',
      title: `tracker's share of the reducer: add one item to ${n.toLocaleString('en')} (dispatch alone)`,
      ours: { name: 'ours (drafted)', run: add(o.store.dispatch, 'o') },
      baseline: { name: 'bare store', run: add(bare.dispatch, 'b') },
      report: 'overhead',
      rounds: settings.rounds,
      iterations: settings.iterations(n),
    }),
  )
  const thousand = (dispatch: typeof bare.dispatch) => () => {
    for (let i = 0; i < 1_000; i++) dispatch(inc())
  }
  const r = await compare({
    id: 'B1',
    title: 'tracker and middleware on 1,000 actions that touch no persisted slice',
    ours: { name: 'ours', run: thousand(o.store.dispatch) },
    baseline: { name: 'bare store', run: thousand(bare.dispatch) },
    report: 'overhead',
    rounds: settings.rounds,
    iterations: settings.iterations(1) * 5,
  })
  results.push(r, {
    id: 'B1',
    title: 'added per action that touches no persisted slice',
    value: `${(r.oursMedianMs - r.baselineMedianMs).toFixed(3)} µs`, // ms per 1,000 actions = µs per action
    target: '≈ 0.15 µs (the prototype)',
    met: null,
  })
  await o.persistence.dispose()
  return results
}
