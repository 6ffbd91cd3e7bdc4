import { configureStore } from '@reduxjs/toolkit'
import { createPersistenceMiddleware, pullFlaskChanges, syncFromFlaskBulk, syncReducer, syncToFlaskBulk } from 'redux-idb-sync'
import { createApiClient, createRemote } from 'redux-idb-sync/remote'
import { hasFlask, startFlaskServer, type FlaskServer } from '../../test/e2e/flaskServer'
import { compare, type Fact, type Result } from '../lib/harness'
import { itemsSlice, makeItem, upsertOne, uniqueName } from '../lib/fixtures'
import type { Settings } from '../lib/settings'

/** A fetch that counts requests and the bytes of response bodies. */
function countingFetch() {
  const counts = { requests: 0, responseBytes: 0 }
  const wrapped: typeof fetch = async (input, init) => {
    counts.requests++
    const response = await fetch(input, init)
    counts.responseBytes += (await response.clone().arrayBuffer()).byteLength
    return response
  }
  return { counts, fetch: wrapped }
}

function client(settings: Settings, baseUrl: string) {
  const net = countingFetch()
  const persistence = createPersistenceMiddleware({
    dbName: uniqueName('b8'),
    indexedDB: settings.factory(),
    slices: { items: { debounceMs: 0 } },
    remote: createRemote({ baseUrl, fetch: net.fetch, timeoutMs: 30_000 }),
    onError: (e) => console.error('bench B8:', e.name, e.message),
  })
  const store = configureStore({
    reducer: { items: itemsSlice.reducer, sync: syncReducer },
    middleware: (getDefault) => getDefault({ serializableCheck: false, immutableCheck: false }).concat(persistence),
    enhancers: (getDefault) => getDefault().concat(persistence.enhancer),
  })
  return { store, persistence, net }
}

/** B8: syncing to the reference Flask server; requests per batch and bytes of an incremental pull. */
export async function b8(settings: Settings): Promise<Array<Result | Fact>> {
  if (!hasFlask()) {
    return [{ id: 'B8', title: 'sync to the reference Flask server', value: 'not run: python3 -c "import flask" fails here', target: '–', met: null }]
  }
  const server: FlaskServer = await startFlaskServer()
  try {
    const n = settings.syncItems
    const ours = client(settings, server.baseUrl)
    await ours.persistence.whenHydrated()
    let round = 0
    let oursRequests = 0
    let runs = 0
    const oneByOne = createApiClient({ baseUrl: server.baseUrl, timeoutMs: 30_000 })
    const result = await compare({
      id: 'B8',
      title: `sync ${n.toLocaleString('en')} changed items to Flask`,
      ours: {
        name: 'redux-idb-sync',
        run: async () => {
          round++
          for (let i = 0; i < n; i++) ours.store.dispatch(upsertOne(makeItem(i, round)))
          const before = ours.net.counts.requests
          await ours.persistence.flush()
          await ours.store.dispatch(syncToFlaskBulk())
          if (ours.persistence.sync!.outboxDepth !== 0) throw new Error('B8: the outbox did not drain')
          oursRequests += ours.net.counts.requests - before
          runs++
        },
      },
      baseline: {
        name: 'one request per change',
        run: async () => {
          round++
          for (let i = 0; i < n; i++) {
            await oneByOne.putItem({
              opId: `b8-${round}-${i}`,
              collection: 'one-by-one',
              id: `k${i}`,
              type: 'put',
              value: makeItem(i, round),
              baseVersion: null,
              clientTime: Date.now(),
            })
          }
        },
      },
      report: 'speedup',
      rounds: settings.quick ? 2 : 10,
      iterations: 1,
      note: 'flush + push until the outbox is empty; baseline: PUT per item',
    })
    const batchSize = 100 // remote.batchSize default
    const requestsPerSync = oursRequests / runs
    const facts: Fact[] = [
      {
        id: 'B8',
        title: `HTTP requests to sync ${n.toLocaleString('en')} items (batches of ${batchSize})`,
        value: `${requestsPerSync.toFixed(1)} requests vs ${n} one per change`,
        target: `≈ ${Math.ceil(n / batchSize)} (one per batch)`,
        met: requestsPerSync <= Math.ceil(n / batchSize) + 2,
      },
    ]
    await ours.persistence.dispose()

    // Incremental pull: a reader that has everything, then one item changes among pullSize.
    const size = settings.pullSize
    const writer = client(settings, server.baseUrl)
    await writer.persistence.whenHydrated()
    writer.persistence.configure('items', { batchSize: 500 })
    for (let i = 0; i < size; i++) writer.store.dispatch(upsertOne(makeItem(i, 1)))
    await writer.persistence.flush()
    await writer.store.dispatch(syncToFlaskBulk())
    const reader = client(settings, server.baseUrl)
    await reader.persistence.whenHydrated()
    let bytes = reader.net.counts.responseBytes
    await reader.store.dispatch(syncFromFlaskBulk())
    const full = reader.net.counts.responseBytes - bytes
    if (reader.store.getState().items.ids.length < size) throw new Error('B8: the full pull read too little')
    writer.store.dispatch(upsertOne(makeItem(7, 2)))
    await writer.persistence.flush()
    await writer.store.dispatch(syncToFlaskBulk())
    bytes = reader.net.counts.responseBytes
    await reader.store.dispatch(pullFlaskChanges())
    const incremental = reader.net.counts.responseBytes - bytes
    if (reader.store.getState().items.entities.k7?.rev !== 2) throw new Error('B8: the incremental pull missed the change')
    facts.push({
      id: 'B8',
      title: `bytes of an incremental pull of 1 change among ${size.toLocaleString('en')} vs a full pull`,
      value: `${incremental.toLocaleString('en')} B vs ${full.toLocaleString('en')} B = 1/${Math.round(full / incremental).toLocaleString('en')}`,
      target: '<= 1/1,000',
      met: full / incremental >= 1000,
    })
    await writer.persistence.dispose()
    await reader.persistence.dispose()
    return [result, ...facts]
  } finally {
    await server.close()
  }
}
