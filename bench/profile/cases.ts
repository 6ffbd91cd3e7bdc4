// The workloads of `node bench/profile/profile.mjs` (see there): OUR side of each benchmark case
// that misses its target, run many times, with only the part the benchmark times wrapped in
// `console.profile(label)` … `console.profileEnd(label)`. The driver has the Profiler domain
// enabled (Node: an in-process inspector session; Chromium: CDP), so each timed phase becomes one
// CPU profile, and what the benchmark leaves out (the app's reducer, the setup) is in none of them.
//
// `limits` measures, side by side and alternating (bench/lib/harness.ts), the physical limits that
// explain a miss: the same IndexedDB requests written by hand, structured clone alone, etc.
import { configureStore, type Reducer, type UnknownAction } from '@reduxjs/toolkit'
import { createIdbStore } from 'redux-idb-sync'
import { compare, type Result } from '../lib/harness'
import {
  bareStore,
  bump,
  items,
  makeItem,
  oursStore,
  persistStoreOf,
  prepareReplay,
  replayWalker,
  uniqueName,
  upsertMany,
  dropReplay,
  type Item,
  type OursStore,
} from '../lib/fixtures'

export interface ProfileEnv {
  readonly quick: boolean
  readonly factory: () => IDBFactory
  /** Whether this is the Chromium run (real IndexedDB) rather than Node (fake-indexeddb). */
  readonly browser: boolean
}

/** One run of a phase on the page's clock (ms): the start marker s0–s1, the phase s1–e0, the end marker e0–e1. */
export interface PhaseMark {
  readonly label: string
  readonly s0: number
  readonly s1: number
  readonly e0: number
  readonly e1: number
}

/**
 * What a case reports besides its profiles: the durations of each phase's runs (ms, in order),
 * every run of a phase on the page's clock, and the limits measured.
 */
export interface CaseReport {
  readonly timings: Record<string, number[]>
  readonly phases: PhaseMark[]
  readonly limits: Result[]
}

/**
 * Spins for `us` microseconds around each phase in Chromium, so that some samples of the profile
 * fall in these two functions: the driver finds the offset between the page's clock and the
 * profile's from them, and from it each phase's window in the profile.
 */
function phaseStartMarker(us: number): void {
  const end = performance.now() + us / 1000
  while (performance.now() < end);
}
function phaseEndMarker(us: number): void {
  const end = performance.now() + us / 1000
  while (performance.now() < end);
}
const MARKER_US = 1_000

/**
 * How phases become profiles: one profile per loop of phases (`session`), and in it the window of
 * each phase. Chromium (the default here): `console.profile`, which the driver receives through
 * CDP, and marker functions around each phase (see above). Node (installed by
 * bench/profile/node.ts): an inspector session, and windows on the profile's own clock.
 * A profile per phase would not do: starting the profiler costs milliseconds and slows what
 * follows (Chromium), and in Node the garbage of parsing the last profile lands in the next phase.
 */
export const profiler = {
  session: async (run: () => Promise<void>): Promise<void> => {
    console.profile('loop')
    try {
      await run()
    } finally {
      console.profileEnd('loop')
    }
  },
  start: (_label: string): void => phaseStartMarker(MARKER_US),
  stop: (_label: string): void => phaseEndMarker(MARKER_US),
}

/** Runs phases, each profiled (see `profiler`), and keeps their durations and marks. */
function timer() {
  const times = new Map<string, number[]>()
  const phases: PhaseMark[] = []
  return {
    session: (loop: () => Promise<void>) => profiler.session(loop),
    async run(label: string, fn: () => unknown) {
      const s0 = performance.now()
      profiler.start(label)
      const s1 = performance.now()
      let e0 = NaN
      try {
        await fn()
        e0 = performance.now()
      } finally {
        profiler.stop(label)
      }
      phases.push({ label, s0, s1, e0, e1: performance.now() })
      if (!times.has(label)) times.set(label, [])
      times.get(label)!.push(e0 - s1)
    },
    report: (limits: Result[]): CaseReport => ({ timings: Object.fromEntries(times), phases, limits }),
  }
}

// ------------------------------------------------------------------ the raw IndexedDB API, by hand

const request = <T>(r: IDBRequest<T>): Promise<T> =>
  new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result)
    r.onerror = () => reject(r.error)
  })

const committed = (tx: IDBTransaction): Promise<void> =>
  new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve()
    tx.onabort = () => reject(tx.error)
  })

function rawOpen(factory: IDBFactory, name: string): Promise<IDBDatabase> {
  const r = factory.open(name, 1)
  r.onupgradeneeded = () => void r.result.createObjectStore('items')
  return request(r)
}

/** `items` put by hand in one transaction (the raw API: one request each, no promise per request). */
async function rawPuts(db: IDBDatabase, values: readonly Item[]): Promise<void> {
  const tx = db.transaction('items', 'readwrite')
  const done = committed(tx)
  const store = tx.objectStore('items')
  for (const value of values) store.put(value, value.id)
  await done
}

async function rawFill(db: IDBDatabase, n: number): Promise<void> {
  for (let from = 0; from < n; from += 10_000) {
    await rawPuts(
      db,
      Array.from({ length: Math.min(10_000, n - from) }, (_, i) => makeItem(from + i)),
    )
  }
}

const stride = (n: number) => {
  let i = 0
  return () => `k${(i = (i + 7919) % n)}`
}

// ------------------------------------------------------------------------------------------ cases

/**
 * B1/B2: one item changes among n (the real RTK reducer, default options); the timed part is
 * `flush()` after `dispatch` returned, as in bench/cases/b1real.ts.
 */
async function b1(env: ProfileEnv, sizes: readonly number[]): Promise<CaseReport> {
  const t = timer()
  const iterations = env.quick ? 20 : 400
  const limits: Result[] = []
  const stores = new Map<number, OursStore>()
  const walkers = new Map<number, () => string>()
  for (const n of sizes) {
    const o = await oursStore(n, { factory: env.factory() })
    const next = stride(n)
    o.store.dispatch(bump(next())) // learned: from here on, patches
    await o.persistence.flush()
    stores.set(n, o)
    walkers.set(n, next)
    await t.session(async () => {
      for (let i = 0; i < iterations; i++) {
        o.store.dispatch(bump(next()))
        await t.run(`flush @${n}`, () => o.persistence.flush())
      }
    })
  }
  // Limit 0: what the app's reducer at n leaves to whatever runs after it. The small store's
  // flush right after the large store's `bump` (immer's copy of its `entities` object), against
  // the large store's own flush and against the small store's flush after its own `bump`.
  {
    const small = sizes[0]!
    const large = sizes[sizes.length - 1]!
    const flushOf = (n: number, after?: number) => ({
      name: after === undefined ? `flush @${n}` : `flush @${n} after the dispatch @${after}`,
      timesItself: true,
      run: async () => {
        if (after !== undefined) stores.get(after)!.store.dispatch(bump(walkers.get(after)!()))
        stores.get(n)!.store.dispatch(bump(walkers.get(n)!()))
        const t0 = performance.now()
        await stores.get(n)!.persistence.flush()
        const ms = performance.now() - t0
        if (after !== undefined) await stores.get(after)!.persistence.flush()
        return ms
      },
    })
    const options = { id: 'B1', report: 'overhead' as const, rounds: env.quick ? 2 : 8, iterations: env.quick ? 3 : 30 }
    limits.push(
      await compare({ ...options, title: `our flush @${large} vs our flush @${small}`, ours: flushOf(large), baseline: flushOf(small) }),
      await compare({
        ...options,
        title: `our flush @${small}, right after the reducer @${large} ran vs after its own`,
        ours: flushOf(small, large),
        baseline: flushOf(small),
      }),
      await compare({
        ...options,
        title: `our flush @${large} vs our flush @${small} right after the reducer @${large}`,
        ours: flushOf(large),
        baseline: flushOf(small, large),
      }),
    )
  }
  for (const o of stores.values()) await o.persistence.dispose()
  // Limit 1: one put by hand, raw API, one transaction, into a store of 1k vs the largest n records.
  const small = sizes[0]!
  const large = sizes[sizes.length - 1]!
  const dbs = new Map<number, IDBDatabase>()
  for (const n of [small, large]) {
    const db = await rawOpen(env.factory(), uniqueName(`b1-raw-${n}`))
    await rawFill(db, n)
    dbs.set(n, db)
  }
  const putOne = (n: number) => {
    const next = stride(n)
    let rev = 0
    return async () => rawPuts(dbs.get(n)!, [{ ...makeItem(0, ++rev), id: next() }])
  }
  limits.push(
    await compare({
      id: 'B1',
      title: `one raw put (one transaction) into a store of ${large.toLocaleString('en')} vs ${small.toLocaleString('en')} records`,
      ours: { name: `raw put @${large}`, run: putOne(large) },
      baseline: { name: `raw put @${small}`, run: putOne(small) },
      report: 'overhead',
      rounds: env.quick ? 2 : 6,
      iterations: env.quick ? 3 : 100,
    }),
  )
  // Limit 2: the same raw put after a reducer-sized allocation (the copy immer makes of the
  // `entities` object of n items, as the app's `bump` does), vs without one.
  const entities: Record<string, Item> = Object.fromEntries(items(large).map((item) => [item.id, item]))
  let sink: unknown
  const put = putOne(large)
  limits.push(
    await compare({
      id: 'B1',
      title: `one raw put at ${large.toLocaleString('en')} records, after copying a ${large.toLocaleString('en')}-key object (untimed) vs not`,
      ours: {
        name: 'after the copy',
        timesItself: true,
        run: async () => {
          sink = { ...entities }
          const t0 = performance.now()
          await put()
          return performance.now() - t0
        },
      },
      baseline: {
        name: 'no copy',
        timesItself: true,
        run: async () => {
          const t0 = performance.now()
          await put()
          return performance.now() - t0
        },
      },
      report: 'overhead',
      rounds: env.quick ? 2 : 6,
      iterations: env.quick ? 3 : 30,
    }),
  )
  void sink
  for (const db of dbs.values()) db.close()
  return t.report(limits)
}

/** B3/B4: a burst of 1,000 distinct keys (one `upsertMany`), default batchSize 100: dispatch and flush. */
async function b3(env: ProfileEnv): Promise<CaseReport> {
  const n = env.quick ? 100 : 1_000
  const t = timer()
  const o = await oursStore(0, { factory: env.factory() })
  let rev = 0
  const burst = () => upsertMany(Array.from({ length: n }, (_, i) => makeItem(i, rev)))
  await t.session(async () => {
    for (let i = 0; i < (env.quick ? 4 : 60); i++) {
      rev++
      const action = burst()
      await t.run('dispatch', () => o.store.dispatch(action))
      await t.run('flush', () => o.persistence.flush())
    }
  })
  // The limits. B3 times ours from the dispatch to the commit, net of a bare store's dispatch of
  // the same action: our part of the dispatch (the drafted reduction with patches, the diff and
  // the enqueue in the microtask after it) against the bare store's; our flush against the same
  // puts in one transaction (B3's baseline); and that transaction against the ones batchSize 100
  // makes, written by hand the way the queue writes them (one after another, each awaited).
  const db = await rawOpen(env.factory(), uniqueName('b3-raw'))
  const values = () => Array.from({ length: n }, (_, i) => makeItem(i, ++rev))
  const bare = bareStore(0)
  const rounds = env.quick ? 2 : 6
  const limits = [
    await compare({
      id: 'B3',
      title: `dispatch of the burst (and the microtask after it): ours vs a bare store`,
      ours: {
        name: 'ours',
        timesItself: true,
        run: async () => {
          rev++
          const action = burst()
          const t0 = performance.now()
          o.store.dispatch(action)
          await Promise.resolve()
          const ms = performance.now() - t0
          await o.persistence.flush()
          return ms
        },
      },
      baseline: {
        name: 'bare store',
        timesItself: true,
        run: async () => {
          rev++
          const action = burst()
          const t0 = performance.now()
          bare.dispatch(action)
          await Promise.resolve()
          return performance.now() - t0
        },
      },
      report: 'overhead',
      rounds,
      iterations: env.quick ? 2 : 8,
    }),
    await compare({
      id: 'B3',
      title: `our flush of the burst (batchSize 100) vs the same ${n} puts by hand in one transaction`,
      ours: {
        name: 'our flush',
        timesItself: true,
        run: async () => {
          rev++
          o.store.dispatch(burst())
          await Promise.resolve()
          const t0 = performance.now()
          await o.persistence.flush()
          return performance.now() - t0
        },
      },
      baseline: { name: 'one transaction', run: () => rawPuts(db, values()) },
      report: 'overhead',
      rounds,
      iterations: env.quick ? 2 : 8,
    }),
    await compare({
      id: 'B3',
      title: `${n} puts by hand: ${n / 100} awaited transactions of 100 vs one transaction`,
      ours: {
        name: `${n / 100} transactions of 100`,
        run: async () => {
          const all = values()
          for (let from = 0; from < n; from += 100) await rawPuts(db, all.slice(from, from + 100))
        },
      },
      baseline: { name: 'one transaction', run: () => rawPuts(db, values()) },
      report: 'overhead',
      rounds,
      iterations: env.quick ? 2 : 8,
    }),
  ]
  db.close()
  await o.persistence.dispose()
  return t.report(limits)
}

/** B5: one key updated 1,000 times in one debounce window (replayed states), then the flush, timed. */
async function b5(env: ProfileEnv): Promise<CaseReport> {
  const t = timer()
  const factory = env.factory()
  const dbName = uniqueName('b5')
  const UPDATES = 1_000
  prepareReplay(1, UPDATES)
  const o = await oursStore(0, { factory, persistence: { dbName } })
  const next = replayWalker(1)
  o.store.dispatch(next())
  await o.persistence.flush()
  const burst = async () => {
    for (let tick = 0; tick < 10; tick++) {
      for (let i = 0; i < UPDATES / 10; i++) o.store.dispatch(next())
      await Promise.resolve()
    }
  }
  await t.session(async () => {
    for (let i = 0; i < (env.quick ? 20 : 1_000); i++) {
      await burst()
      await t.run('flush', () => o.persistence.flush())
    }
  })
  // The limits: the one put the flush makes, through our IndexedDB wrapper alone (its `commit`,
  // which the flush ends in) and by hand with the raw API.
  const storage = createIdbStore({ dbName: uniqueName('b5-wrapper'), factory, openTimeoutMs: 10_000, durability: 'default' })
  await storage.ensureStores(['items'])
  const db = await rawOpen(factory, uniqueName('b5-raw'))
  let rev = 0
  const limits: Result[] = []
  const oursSide = {
    name: 'our flush',
    timesItself: true,
    run: async () => {
      await burst()
      const t0 = performance.now()
      await o.persistence.flush()
      return performance.now() - t0
    },
  }
  limits.push(
    await compare({
      id: 'B5',
      title: 'the flush after the burst vs one put through our IndexedDB wrapper (`commit`)',
      ours: oursSide,
      baseline: { name: 'our commit', run: () => storage.commit([{ type: 'put', store: 'items', key: 'k0', value: makeItem(0, ++rev) }]) },
      report: 'overhead',
      rounds: env.quick ? 2 : 6,
      iterations: env.quick ? 3 : 200,
    }),
    await compare({
      id: 'B5',
      title: 'one put through our IndexedDB wrapper (`commit`) vs one raw put',
      ours: { name: 'our commit', run: () => storage.commit([{ type: 'put', store: 'items', key: 'k0', value: makeItem(0, ++rev) }]) },
      baseline: { name: 'raw put', run: () => rawPuts(db, [makeItem(0, ++rev)]) },
      report: 'overhead',
      rounds: env.quick ? 2 : 6,
      iterations: env.quick ? 3 : 200,
    }),
  )
  db.close()
  storage.close()
  await o.persistence.dispose()
  dropReplay(1)
  return t.report(limits)
}

/** B7: hydrating n items, open → in the store (a new store + `whenHydrated()`, then dispose). */
async function b7(env: ProfileEnv): Promise<CaseReport> {
  const n = env.quick ? 500 : 10_000
  const t = timer()
  const factory = env.factory()
  const dbName = uniqueName('b7')
  const seeded = await oursStore(n, { factory, persistence: { dbName } })
  await seeded.persistence.dispose()
  const hydrateOurs = async () => {
    const o = await oursStore(0, { factory, persistence: { dbName } })
    if (o.store.getState().items.ids.length !== n) throw new Error('hydrated too little')
    await o.persistence.dispose()
  }
  await t.session(async () => {
    for (let i = 0; i < (env.quick ? 2 : 40); i++) await t.run('hydrate', hydrateOurs)
  })
  // The limits: the raw read (B7's baseline), and the raw read plus building the entity state by
  // hand and putting it in a store (the least any library has to do).
  const rawName = uniqueName('b7-raw')
  {
    const db = await rawOpen(factory, rawName)
    await rawFill(db, n)
    db.close()
  }
  /**
   * `values`: getAll, B7's baseline; `records`: keys and values, as hydration needs (getAllRecords
   * where there is one); `two`: keys and values with getAllKeys + getAll; `state`: `records` and
   * the entity state built and put in a store.
   */
  const rawRead = async (mode: 'values' | 'records' | 'two' | 'state') => {
    const db = await rawOpen(factory, rawName)
    const tx = db.transaction('items', 'readonly')
    const store = tx.objectStore('items') as IDBObjectStore & { getAllRecords?: () => IDBRequest<Array<{ primaryKey: IDBValidKey; value: unknown }>> }
    let count: number
    if (mode === 'values') count = (await request(store.getAll())).length
    else {
      let ids: string[]
      let values: unknown[]
      if (store.getAllRecords && mode !== 'two') {
        const records = await request(store.getAllRecords())
        ids = records.map((r) => r.primaryKey as string)
        values = records.map((r) => r.value)
      } else {
        ;[ids, values] = await Promise.all([request(store.getAllKeys()) as Promise<string[]>, request(store.getAll())])
      }
      if (mode === 'state') {
        const entities: Record<string, unknown> = {}
        for (let i = 0; i < ids.length; i++) entities[ids[i]!] = values[i]
        const replace: Reducer<unknown> = (s = { ids: [], entities: {} }, a: UnknownAction) => (a.type === 'replace' ? a.payload : s)
        const store = configureStore({ reducer: { items: replace }, middleware: (d) => d({ serializableCheck: false, immutableCheck: false }) })
        store.dispatch({ type: 'replace', payload: { ids, entities } })
      }
      count = ids.length
    }
    if (count !== n) throw new Error('raw read too little')
    db.close()
  }
  const rounds = env.quick ? 2 : 6
  const iterations = env.quick ? 2 : 8
  const limits = [
    await compare({
      id: 'B7',
      title: `hydrate ${n.toLocaleString('en')}: ours vs by hand (open, keys and values in one request, the entity state into a store)`,
      ours: { name: 'ours', run: hydrateOurs },
      baseline: { name: 'by hand', run: () => rawRead('state') },
      report: 'overhead',
      rounds,
      iterations,
    }),
    await compare({
      id: 'B7',
      title: `by hand: keys and values (getAllRecords where there is one) vs values alone (getAll, B7's baseline)`,
      ours: { name: 'keys + values', run: () => rawRead('records') },
      baseline: { name: 'getAll', run: () => rawRead('values') },
      report: 'overhead',
      rounds,
      iterations,
    }),
    await compare({
      id: 'B7',
      title: `by hand: keys and values with getAllRecords (one request) vs getAllKeys + getAll (two)`,
      ours: { name: 'getAllRecords', run: () => rawRead('records') },
      baseline: { name: 'getAllKeys + getAll', run: () => rawRead('two') },
      report: 'overhead',
      rounds,
      iterations,
    }),
    await compare({
      id: 'B7',
      title: `by hand: keys and values + the entity state into a store vs keys and values alone`,
      ours: { name: 'keys + values + state', run: () => rawRead('state') },
      baseline: { name: 'keys + values', run: () => rawRead('records') },
      report: 'overhead',
      rounds,
      iterations,
    }),
  ]
  return t.report(limits)
}

/** B16: every item of a 1,000-item slice changes in one burst (default options); the flush, timed. */
async function b16(env: ProfileEnv): Promise<CaseReport> {
  const n = env.quick ? 100 : 1_000
  const t = timer()
  const o = await oursStore(n, { factory: env.factory() })
  let rev = 0
  const all = () => Array.from({ length: n }, (_, i) => makeItem(i, rev))
  await t.session(async () => {
    for (let i = 0; i < (env.quick ? 4 : 80); i++) {
      rev++
      o.store.dispatch(upsertMany(all()))
      await t.run('flush', () => o.persistence.flush())
    }
  })
  // The limits: our flush against the same puts by hand in one transaction (the item-level limit);
  // those puts against structured clone of the n items alone, and against redux-persist's own
  // write: one JSON string of the slice, one put.
  const db = await rawOpen(env.factory(), uniqueName('b16-raw'))
  await rawFill(db, n)
  const p = await persistStoreOf(n)
  p.persistor.pause()
  const state = p.store.getState().items
  const limits = [
    await compare({
      id: 'B16',
      title: `our flush vs the same ${n} puts by hand in one transaction (the item-level limit)`,
      ours: {
        name: 'our flush',
        timesItself: true,
        run: async () => {
          rev++
          o.store.dispatch(upsertMany(all()))
          const t0 = performance.now()
          await o.persistence.flush()
          return performance.now() - t0
        },
      },
      baseline: { name: 'raw puts', run: () => rawPuts(db, all()) },
      report: 'overhead',
      rounds: env.quick ? 2 : 6,
      iterations: env.quick ? 2 : 20,
    }),
    await compare({
      id: 'B16',
      title: `${n} puts by hand in one transaction vs ${n} structured clones alone`,
      ours: { name: 'raw puts', run: () => rawPuts(db, all()) },
      baseline: { name: 'structuredClone × n', run: () => all().map((item) => structuredClone(item)) },
      report: 'overhead',
      rounds: env.quick ? 2 : 6,
      iterations: env.quick ? 2 : 20,
    }),
    await compare({
      id: 'B16',
      title: `${n} puts by hand in one transaction vs one put of JSON.stringify(slice) (redux-persist's write)`,
      ours: { name: 'raw puts', run: () => rawPuts(db, all()) },
      baseline: {
        name: 'stringify + one put',
        run: async () => {
          const tx = db.transaction('items', 'readwrite')
          const done = committed(tx)
          tx.objectStore('items').put(JSON.stringify({ items: JSON.stringify(state) }), 'persist:root')
          await done
        },
      },
      report: 'overhead',
      rounds: env.quick ? 2 : 6,
      iterations: env.quick ? 2 : 20,
    }),
  ]
  db.close()
  await o.persistence.dispose()
  return t.report(limits)
}

export const profileCases: Record<string, (env: ProfileEnv) => Promise<CaseReport>> = {
  B1: (env) => b1(env, env.quick ? [1_000, 2_000] : env.browser ? [1_000, 10_000] : [1_000, 10_000, 100_000]),
  B3: b3,
  B5: b5,
  B7: b7,
  B16: b16,
}
