// Per-user data end to end: the built library on fake-indexeddb, devices of two users against the
// real server configured with one token per user. A user's devices see each other's edits; the
// other user's devices see none of them, whatever they pull. (The msw handlers of
// redux-idb-sync/testing know one token and no tenants: tenancy is tested here and in
// server/tests/test_tenancy.py.)
import { configureStore, createEntityAdapter, createSlice } from '@reduxjs/toolkit'
import { IDBFactory } from 'fake-indexeddb'
import { afterAll, afterEach, beforeAll, expect, test } from 'vitest'
import type { PersistenceMiddleware } from '../../src'
import { startFlaskServer, type FlaskServer } from './flaskServer'
import { lib, remoteLib } from './lib'

const { createPersistenceMiddleware, pullFlaskChanges, syncFromFlaskBulk, syncReducer } = lib

interface Note {
  id: string
  text: string
}
const notes = createEntityAdapter<Note>()
const notesSlice = createSlice({ name: 'notes', initialState: notes.getInitialState(), reducers: { save: notes.upsertOne } })
const { save } = notesSlice.actions

const TOKENS = { 'alice-token': 'alice', 'bob-token': 'bob' }
let flask: FlaskServer
const live: PersistenceMiddleware[] = []

beforeAll(async () => {
  flask = await startFlaskServer({ tokens: TOKENS })
})
afterAll(async () => {
  await flask.close()
})
afterEach(async () => {
  for (const p of live.splice(0)) await p.dispose()
})

function device(token: string, name: string) {
  const persistence = createPersistenceMiddleware({
    dbName: 'tenancy',
    indexedDB: new IDBFactory(),
    slices: { notes: { debounceMs: 5 } },
    onError: () => {},
    remote: remoteLib.createRemote({
      baseUrl: flask.baseUrl,
      clientId: name,
      getToken: () => token,
      retry: { initialDelayMs: 50, maxDelayMs: 200 },
      timeoutMs: 5000,
    }),
  })
  live.push(persistence)
  const store = configureStore({
    reducer: { notes: notesSlice.reducer, sync: syncReducer },
    middleware: (g) => g().concat(persistence),
    enhancers: (g) => g().concat(persistence.enhancer),
  })
  return { store, persistence }
}

async function until(check: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

test("a user's devices share their notes; another user's devices see none of them", async () => {
  const alicePhone = device('alice-token', 'alice-phone')
  const aliceLaptop = device('alice-token', 'alice-laptop')
  const bobPhone = device('bob-token', 'bob-phone')
  for (const d of [alicePhone, aliceLaptop, bobPhone]) await d.persistence.whenHydrated()

  alicePhone.store.dispatch(save({ id: 'n1', text: "alice's secret" }))
  bobPhone.store.dispatch(save({ id: 'n1', text: "bob's own n1" }))
  await alicePhone.persistence.flush()
  await bobPhone.persistence.flush()
  await until(() => alicePhone.store.getState().sync.outboxDepth === 0 && bobPhone.store.getState().sync.outboxDepth === 0, 'both pushes')

  await aliceLaptop.store.dispatch(syncFromFlaskBulk())
  expect(aliceLaptop.store.getState().notes.entities.n1?.text).toBe("alice's secret")

  // Bob pulls in full and incrementally: only his own note with the same id.
  await bobPhone.store.dispatch(syncFromFlaskBulk())
  await bobPhone.store.dispatch(pullFlaskChanges())
  expect(bobPhone.store.getState().notes.entities).toEqual({ n1: { id: 'n1', text: "bob's own n1" } })

  // And the server agrees, per token.
  const read = async (token: string) =>
    (await (await fetch(`${flask.baseUrl}/sync/pull`, { headers: { authorization: `Bearer ${token}` } })).json()) as { items: Array<{ value: Note }> }
  expect((await read('alice-token')).items.map((i) => i.value.text)).toEqual(["alice's secret"])
  expect((await read('bob-token')).items.map((i) => i.value.text)).toEqual(["bob's own n1"])
  expect((await fetch(`${flask.baseUrl}/sync/pull`)).status).toBe(401)
})

test('a token issued for a tenant reaches that tenant only, and stops working when it expires', async () => {
  const issued = await flask.issueToken('alice', 1500)
  const auth = { authorization: `Bearer ${issued.token}` }
  const pulled = (await (await fetch(`${flask.baseUrl}/sync/pull`, { headers: auth })).json()) as { items: unknown[] }
  expect(pulled.items.length).toBeGreaterThan(0) // alice's note from the test above
  await until(() => Date.now() > issued.expires_at! + 50, 'the expiry')
  expect((await fetch(`${flask.baseUrl}/sync/pull`, { headers: auth })).status).toBe(401)
})
