import { idsFromPayload } from 'redux-idb-sync'
import { compare, type Result } from '../lib/harness'
import { dropReplay, oursStore, persistStoreOf, prepareReplay, replayWalker, type OursStore, type PersistStore } from '../lib/fixtures'
import type { Settings } from '../lib/settings'

/**
 * B1: one item changes in a state of n items; time from dispatch until the change is committed
 * to (fake) IndexedDB, ours against redux-persist 6 on idb-keyval. In Node everything, including
 * fake-indexeddb, runs on the main thread, so this is main-thread time per change.
 *
 * The app's own reducer is the same for every side and is not the persistence layer's doing, so
 * both stores replay states computed beforehand (see `prepareReplay`): each dispatch moves the
 * slice to a state one item away from the last in O(1), and what is measured is what each
 * library does with that change. Replayed states are no immer drafts, so ours cannot track
 * patches here: with default options these rows measure the full diff (the fallback). The goals
 * are measured with the real RTK reducer (b1real.ts).
 */
const oursChange = (o: OursStore, n: number) => {
  const next = replayWalker(n)
  return async () => {
    o.store.dispatch(next())
    await o.persistence.flush()
  }
}
const persistChange = (p: PersistStore, n: number) => {
  const next = replayWalker(n)
  return async () => {
    p.store.dispatch(next())
    await p.persistor.flush()
  }
}

const VARIANTS = [
  { label: 'default', slice: {} },
  { label: 'changedIds: idsFromPayload', slice: { changedIds: idsFromPayload } },
] as const

export async function b1(settings: Settings): Promise<Result[]> {
  const results: Result[] = []
  const stores: OursStore[] = []
  const runs = new Map<string, Map<number, () => Promise<void>>>()
  for (const n of settings.b1Sizes) {
    prepareReplay(n)
    const p = await persistStoreOf(0)
    const baselineRun = persistChange(p, n)
    await baselineRun() // to the path's first state (setup, not measured)
    for (const variant of VARIANTS) {
      const o = await oursStore(0, { factory: settings.factory(), slice: variant.slice })
      stores.push(o)
      const run = oursChange(o, n)
      o.persistence.configure('items', { batchSize: 1000 })
      await run() // to the path's first state, in big transactions (setup, not measured)
      o.persistence.configure('items', { batchSize: 100 }) // the default
      if (!runs.has(variant.label)) runs.set(variant.label, new Map())
      runs.get(variant.label)!.set(n, run)
      results.push(
        await compare({
          id: 'B1',
          title: `one item changes among ${n.toLocaleString('en')}, replayed states (ours: ${variant.label})`,
          ours: { name: 'redux-idb-sync', run },
          baseline: { name: 'redux-persist 6 + idb-keyval', run: baselineRun },
          report: 'speedup',
          rounds: settings.rounds,
          iterations: settings.iterations(n),
          note: 'dispatch → committed; the reducer replays precomputed states',
        }),
      )
    }
    p.persistor.pause()
  }
  const small = settings.b1Sizes[0]!
  const large = settings.b1Sizes[settings.b1Sizes.length - 1]!
  for (const [label, bySize] of runs) {
    if (large === small) continue
    results.push(
      await compare({
        id: 'B1',
        title: `flatness, replayed states (${label}): ours at ${large.toLocaleString('en')} items vs ours at ${small.toLocaleString('en')}`,
        ours: { name: `ours@${large}`, run: bySize.get(large)! },
        baseline: { name: `ours@${small}`, run: bySize.get(small)! },
        report: 'overhead',
        rounds: settings.rounds,
        iterations: settings.iterations(large),
        note: 'the reducer replays precomputed states',
      }),
    )
  }
  for (const o of stores) await o.persistence.dispose()
  for (const n of settings.b1Sizes) dropReplay(n)
  return results
}
