// Differential sync and field-level merge, with the built library against the real Flask server:
// two devices editing different fields of one item both keep their edits with no conflict; the
// same field is still a conflict and follows the slice's strategy.
import { configureStore, createEntityAdapter, createSlice } from '@reduxjs/toolkit'
import { IDBFactory } from 'fake-indexeddb'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest'
import type { ConflictStrategy, PersistenceMiddleware, SyncConflict } from '../../src'
import { startFlaskServer, type FlaskServer } from './flaskServer'
import { lib, remoteLib } from './lib'

const { createPersistenceMiddleware, pullFlaskChanges, syncFromFlaskBulk, syncReducer } = lib

interface Note {
  id: string
  title: string
  body: string
}
const notes = createEntityAdapter<Note>()
const notesSlice = createSlice({ name: 'notes', initialState: notes.getInitialState(), reducers: { save: notes.upsertOne } })
const { save } = notesSlice.actions

let flask: FlaskServer
const live: PersistenceMiddleware[] = []
beforeAll(async () => {
  flask = await startFlaskServer()
})
afterAll(async () => {
  await flask.close()
})
beforeEach(async () => {
  await flask.reset()
})
afterEach(async () => {
  for (const p of live.splice(0)) await p.dispose()
})

function device(name: string, conflict: ConflictStrategy = 'server-wins') {
  const conflicts: SyncConflict[] = []
  const persistence = createPersistenceMiddleware({
    dbName: name,
    indexedDB: new IDBFactory(),
    slices: { notes: { debounceMs: 5, conflict, fieldMerge: true } },
    onError: () => {},
    remote: remoteLib.createRemote({
      baseUrl: flask.baseUrl,
      clientId: name,
      retry: { initialDelayMs: 50, maxDelayMs: 200 },
      timeoutMs: 2000,
      onConflict: (c) => conflicts.push(c),
    }),
  })
  live.push(persistence)
  const store = configureStore({
    reducer: { notes: notesSlice.reducer, sync: syncReducer },
    middleware: (g) => g().concat(persistence),
    enhancers: (g) => g().concat(persistence.enhancer),
  })
  const note = () => store.getState().notes.entities.n
  const edit = async (change: Partial<Note>) => {
    store.dispatch(save({ ...note()!, ...change }))
    await persistence.flush()
    await until(() => store.getState().sync.outboxDepth === 0, `${name}'s push`)
  }
  return { store, persistence, conflicts, note, edit }
}

async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

async function serverNote(): Promise<Note> {
  return ((await (await fetch(`${flask.baseUrl}/items/notes/n`)).json()) as { value: Note }).value
}

/** Both devices hold v1 of note `n`, then each edits without having seen the other's edit. */
async function bothHoldV1(conflict: ConflictStrategy = 'server-wins') {
  const alice = device('alice', conflict)
  const bob = device('bob', conflict)
  await Promise.all([alice.persistence.whenHydrated(), bob.persistence.whenHydrated()])
  await until(() => alice.store.getState().sync.status.flaskConnected && bob.store.getState().sync.status.flaskConnected, 'connections')
  alice.store.dispatch(save({ id: 'n', title: 'v1', body: 'body v1 '.repeat(1000) }))
  await alice.persistence.flush()
  await until(() => alice.store.getState().sync.outboxDepth === 0, 'v1 pushed')
  await bob.store.dispatch(syncFromFlaskBulk())
  expect(bob.note()?.title).toBe('v1')
  return { alice, bob }
}

test('two devices editing different fields of one item both keep their edits, with no conflict', async () => {
  const { alice, bob } = await bothHoldV1()
  await bob.edit({ body: 'bob rewrote the body' })
  await alice.edit({ title: 'alice renamed it' })
  const merged = { id: 'n', title: 'alice renamed it', body: 'bob rewrote the body' }
  expect(await serverNote()).toEqual(merged)
  await until(() => alice.note()?.body === merged.body, 'alice adopts the merged note')
  await bob.store.dispatch(pullFlaskChanges())
  expect(bob.note()).toEqual(merged)
  expect(alice.note()).toEqual(merged)
  expect([...alice.conflicts, ...bob.conflicts]).toEqual([])
  const history = await flask.history()
  expect(history.map((r) => r.version)).toEqual([1, 2, 3])
})

describe.each<[ConflictStrategy, string]>([
  ['server-wins', 'bob'],
  ['client-wins', 'alice'],
])('the same field under %s', (strategy, winner) => {
  test('is still a conflict, decided by the strategy for that field; the other field edit is kept', async () => {
    const { alice, bob } = await bothHoldV1(strategy)
    await bob.edit({ title: 'bob' })
    await alice.edit({ title: 'alice', body: 'alice body' })
    await until(async () => (await serverNote()).title === winner && alice.store.getState().sync.outboxDepth === 0, 'convergence')
    expect(await serverNote()).toEqual({ id: 'n', title: winner, body: 'alice body' })
    expect(alice.note()).toEqual({ id: 'n', title: winner, body: 'alice body' })
    expect(alice.conflicts).toHaveLength(1)
    expect(alice.conflicts[0]).toMatchObject({ key: 'notes:n', phase: 'push' })
  })
})
