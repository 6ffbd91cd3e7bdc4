// Two devices whose clocks are 5 minutes fast and 5 minutes slow edit the same item through the
// real Flask server. No update may be lost silently, and both must converge.
import { configureStore, createEntityAdapter, createSlice } from '@reduxjs/toolkit'
import { IDBFactory } from 'fake-indexeddb'
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest'
import type { ConflictStrategy, PersistenceMiddleware, SyncConflict } from '../../src'
import { startFlaskServer, type FlaskServer } from './flaskServer'
import { lib, remoteLib } from './lib'

const { createPersistenceMiddleware, pullFlaskChanges, syncReducer, syncToFlaskBulk } = lib

interface Doc {
  id: string
  title: string
}
const docs = createEntityAdapter<Doc>()
const docsSlice = createSlice({ name: 'docs', initialState: docs.getInitialState(), reducers: { save: docs.upsertOne } })
const { save } = docsSlice.actions

const FIVE_MINUTES = 5 * 60_000
let flask: FlaskServer
const live: PersistenceMiddleware[] = []
beforeAll(async () => {
  flask = await startFlaskServer()
})
afterAll(async () => {
  await flask.close()
})
afterEach(async () => {
  for (const p of live.splice(0)) await p.dispose()
  await flask.reset()
})

function device(name: string, skewMs: number, conflict: ConflictStrategy) {
  const conflicts: SyncConflict[] = []
  const persistence = createPersistenceMiddleware({
    dbName: name,
    indexedDB: new IDBFactory(),
    slices: { docs: { debounceMs: 5, conflict } },
    onError: () => {},
    remote: remoteLib.createRemote({
      baseUrl: flask.baseUrl,
      clientId: name,
      now: () => Date.now() + skewMs,
      onConflict: (c) => conflicts.push(c),
      retry: { initialDelayMs: 50, maxDelayMs: 200 },
      timeoutMs: 5000,
    }),
  })
  live.push(persistence)
  const store = configureStore({
    reducer: { docs: docsSlice.reducer, sync: syncReducer },
    middleware: (g) => g().concat(persistence),
    enhancers: (g) => g().concat(persistence.enhancer),
  })
  const sync = async () => {
    await persistence.flush()
    await store.dispatch(syncToFlaskBulk())
    await store.dispatch(pullFlaskChanges())
  }
  return { store, persistence, conflicts, sync }
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

async function twoDevices(conflict: ConflictStrategy) {
  const fast = device('fast', +FIVE_MINUTES, conflict)
  const slow = device('slow', -FIVE_MINUTES, conflict)
  await Promise.all([fast.persistence.whenHydrated(), slow.persistence.whenHydrated()])
  // A health check each measures the server's clock against the device's.
  await Promise.all([fast.persistence.sync!.checkConnection(), slow.persistence.sync!.checkConnection()])
  fast.store.dispatch(save({ id: 'doc', title: 'v0' }))
  await fast.sync()
  await slow.sync()
  expect(slow.store.getState().docs.entities.doc?.title).toBe('v0')
  return { fast, slow }
}

describe('two devices with clocks 10 minutes apart', () => {
  test('each measures the server clock: offsets of about −5 and +5 minutes', async () => {
    const { fast, slow } = await twoDevices('server-wins')
    expect(Math.abs(fast.persistence.sync!.clockOffsetMs + FIVE_MINUTES)).toBeLessThan(2000)
    expect(Math.abs(slow.persistence.sync!.clockOffsetMs - FIVE_MINUTES)).toBeLessThan(2000)
  })

  test('last-write-wins follows real time, not the skewed clocks; the loser is reported; both converge', async () => {
    const { fast, slow } = await twoDevices('last-write-wins')
    // The fast device edits first; the slow one 2.5 s later in real time, though its clock
    // says ten minutes earlier. Both edits are made before either is pushed.
    fast.store.dispatch(save({ id: 'doc', title: 'fast, earlier' }))
    await fast.persistence.flush()
    await pause(2500)
    slow.store.dispatch(save({ id: 'doc', title: 'slow, later' }))
    await slow.persistence.flush()

    await fast.sync()
    await slow.sync() // meets the fast device's version: a conflict, settled by time
    await fast.sync()

    expect(slow.store.getState().docs.entities.doc?.title).toBe('slow, later')
    expect(fast.store.getState().docs.entities.doc?.title).toBe('slow, later')
    // Not silent: the device that saw the conflict reports both sides and the outcome.
    expect(slow.conflicts).toHaveLength(1)
    expect(slow.conflicts[0]).toMatchObject({ id: 'doc', resolution: 'client', strategy: 'last-write-wins' })
    expect(slow.persistence.sync!.outboxDepth + fast.persistence.sync!.outboxDepth).toBe(0)
  })

  test.each<ConflictStrategy>(['server-wins', 'client-wins'])(
    '%s: the overwritten edit is reported, never dropped silently; both converge',
    async (strategy) => {
      const { fast, slow } = await twoDevices(strategy)
      slow.store.dispatch(save({ id: 'doc', title: 'slow' }))
      await slow.sync()
      fast.store.dispatch(save({ id: 'doc', title: 'fast' }))
      await fast.sync()
      await slow.sync()
      const title = fast.store.getState().docs.entities.doc?.title
      expect(slow.store.getState().docs.entities.doc?.title).toBe(title)
      expect(title).toBe(strategy === 'server-wins' ? 'slow' : 'fast')
      expect(fast.conflicts).toHaveLength(1)
      expect(fast.conflicts[0]).toMatchObject({ id: 'doc', resolution: strategy === 'server-wins' ? 'server' : 'client' })
    },
  )
})
