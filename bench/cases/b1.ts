import { idsFromPayload } from 'redux-idb-sync'
import { compare, type Result } from '../lib/harness'
import { bareStore, bump, oursStore, persistStoreOf, type OursStore, type PersistStore } from '../lib/fixtures'
import type { Settings } from '../lib/settings'

/**
 * B1: one item changes in a state of n items; time from dispatch until the change is committed
 * to (fake) IndexedDB, ours against redux-persist 6 on idb-keyval. In Node everything, including
 * fake-indexeddb, runs on the main thread, so this is main-thread time per change.
 *
 * The app's own reducer (Immer copying the 100k-key `entities` object costs ~60 ms) is the same
 * for every side and is not the persistence layer's doing: a bare store running the same
 * dispatches is measured in every round and subtracted.
 */
const changeOne = (n: number) => {
  let i = 0
  // A fixed stride visits ids all over the collection, the same sequence for every side.
  return () => `k${(i = (i + 7919) % n)}`
}

const oursChange = (o: OursStore, n: number) => {
  const next = changeOne(n)
  return async () => {
    o.store.dispatch(bump(next()))
    await o.persistence.flush()
  }
}
const persistChange = (p: PersistStore, n: number) => {
  const next = changeOne(n)
  return async () => {
    p.store.dispatch(bump(next()))
    await p.persistor.flush()
  }
}
const bareChange = (store: ReturnType<typeof bareStore>, n: number) => {
  const next = changeOne(n)
  return async () => {
    store.dispatch(bump(next()))
    await Promise.resolve()
  }
}

const VARIANTS = [
  { label: 'default', slice: {} },
  { label: 'changedIds: idsFromPayload', slice: { changedIds: idsFromPayload } },
] as const

export async function b1(settings: Settings): Promise<Result[]> {
  const results: Result[] = []
  const flat = new Map<string, Map<number, OursStore>>()
  for (const n of settings.b1Sizes) {
    const p = await persistStoreOf(n)
    const bareSide = { name: 'bare store', run: bareChange(bareStore(n), n) }
    for (const variant of VARIANTS) {
      const o = await oursStore(n, { factory: settings.factory(), slice: variant.slice })
      if (!flat.has(variant.label)) flat.set(variant.label, new Map())
      flat.get(variant.label)!.set(n, o)
      results.push(
        await compare({
          id: 'B1',
          title: `one item changes among ${n.toLocaleString('en')} (ours: ${variant.label})`,
          ours: { name: 'redux-idb-sync', run: oursChange(o, n) },
          baseline: { name: 'redux-persist 6 + idb-keyval', run: persistChange(p, n) },
          netOf: { ours: bareSide, baseline: bareSide },
          report: 'speedup',
          ...(n === 10_000 ? { target: { op: '>=' as const, value: 100 } } : {}),
          rounds: settings.rounds,
          iterations: settings.iterations(n),
          note: 'dispatch → committed, net of the reducer',
        }),
      )
    }
    p.persistor.pause()
  }
  for (const [label, bySize] of flat) {
    const sizes = [...bySize.keys()]
    const small = sizes[0]!
    const large = sizes[sizes.length - 1]!
    if (large === small) continue
    const bareSmall = bareStore(small)
    const bareLarge = bareStore(large)
    // Net of each size's own reducer: both sides minus their bare store, run in the same round.
    const a = bySize.get(large)!
    const b = bySize.get(small)!
    const runLarge = oursChange(a, large)
    const runSmall = oursChange(b, small)
    const ctlLarge = bareChange(bareLarge, large)
    const ctlSmall = bareChange(bareSmall, small)
    results.push(
      await compare({
        id: 'B1',
        title: `flatness (${label}): ours at ${large.toLocaleString('en')} items vs ours at ${small.toLocaleString('en')}`,
        ours: { name: `ours@${large}`, run: runLarge },
        baseline: { name: `ours@${small}`, run: runSmall },
        netOf: { ours: { name: `bare@${large}`, run: ctlLarge }, baseline: { name: `bare@${small}`, run: ctlSmall } },
        report: 'overhead',
        target: { op: '<=', value: 1.2 },
        rounds: settings.rounds,
        iterations: settings.iterations(large),
        note: 'net of each size’s reducer',
      }),
    )
  }
  for (const bySize of flat.values()) for (const o of bySize.values()) await o.persistence.dispose()
  return results
}
