// The built library (dist/), in Node on fake-indexeddb, against the real reference Flask
// server started on a free 127.0.0.1 port.
import { configureStore, createEntityAdapter, createSlice } from '@reduxjs/toolkit'
import { IDBFactory } from 'fake-indexeddb'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest'
import type { ConflictStrategy, PersistenceMiddleware } from '../../src'
import { startFlaskServer, type FlaskServer } from './flaskServer'
import { lib, remoteLib } from './lib'

const { createPersistenceMiddleware, resolveConflict, syncFromFlaskBulk, syncReducer } = lib

interface Doc {
  id: string
  title: string
}
const docs = createEntityAdapter<Doc>()
const docsSlice = createSlice({
  name: 'docs',
  initialState: docs.getInitialState(),
  reducers: { save: docs.upsertOne, remove: docs.removeOne },
})
const { save, remove } = docsSlice.actions

let flask: FlaskServer
const live: PersistenceMiddleware[] = []

beforeAll(async () => {
  flask = await startFlaskServer()
})
afterAll(async () => {
  await flask.close()
})
beforeEach(async () => {
  await flask.start()
  await flask.reset()
})
afterEach(async () => {
  for (const p of live.splice(0)) await p.dispose()
})

function client(factory: IDBFactory, conflict: ConflictStrategy = 'server-wins', name = 'c') {
  const persistence = createPersistenceMiddleware({
    dbName: 'e2e',
    indexedDB: factory,
    slices: { docs: { debounceMs: 5, conflict } },
    onError: () => {},
    remote: remoteLib.createRemote({ baseUrl: flask.baseUrl, clientId: name, retry: { initialDelayMs: 50, maxDelayMs: 200 }, timeoutMs: 2000 }),
  })
  live.push(persistence)
  const store = configureStore({
    reducer: { docs: docsSlice.reducer, sync: syncReducer },
    middleware: (g) => g().concat(persistence),
    enhancers: (g) => g().concat(persistence.enhancer),
  })
  return { store, persistence }
}

async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

async function serverItems(): Promise<Record<string, { title: string } | null>> {
  const response = await fetch(`${flask.baseUrl}/sync/changes?since=0&limit=1000`)
  const body = (await response.json()) as { changes: Array<{ id: string; deleted: boolean; value: { title: string } | null }> }
  return Object.fromEntries(body.changes.map((c) => [c.id, c.deleted ? null : c.value]))
}

test('create, update and delete round-trip to the server', async () => {
  const { store, persistence } = client(new IDBFactory())
  await persistence.whenHydrated()
  store.dispatch(save({ id: 'a', title: 'one' }))
  store.dispatch(save({ id: 'b', title: 'two' }))
  await persistence.flush()
  await until(() => store.getState().sync.outboxDepth === 0 && store.getState().sync.status.flaskConnected, 'first push')
  expect(await serverItems()).toEqual({ a: { id: 'a', title: 'one' }, b: { id: 'b', title: 'two' } })
  store.dispatch(save({ id: 'a', title: 'one, edited' }))
  store.dispatch(remove('b'))
  await persistence.flush()
  await until(() => store.getState().sync.outboxDepth === 0, 'second push')
  expect(await serverItems()).toEqual({ a: { id: 'a', title: 'one, edited' }, b: null })
  expect((await flask.stats()).appliedOps).toBe(4)
})

test('the server stopped, then restarted: nothing is lost', async () => {
  const { store, persistence } = client(new IDBFactory())
  await persistence.whenHydrated()
  await until(() => store.getState().sync.status.flaskConnected, 'connection')
  await flask.stop()
  for (let i = 0; i < 20; i++) store.dispatch(save({ id: `k${i}`, title: `offline ${i}` }))
  await persistence.flush()
  await until(() => !store.getState().sync.status.flaskConnected, 'noticing the server is down')
  expect(store.getState().sync.outboxDepth).toBe(20)
  expect(store.getState().docs.ids).toHaveLength(20) // the app carried on locally
  await flask.start()
  await until(() => store.getState().sync.outboxDepth === 0, 'the drain after restart', 20_000)
  const items = await serverItems()
  expect(Object.keys(items)).toHaveLength(20)
  expect(items.k7).toEqual({ id: 'k7', title: 'offline 7' })
})

test('a replayed push is applied once', async () => {
  const opId = 'replayed-op-1'
  const body = { clientId: 'x', ops: [{ opId, collection: 'docs', id: 'r', type: 'put', value: { id: 'r', title: 't' }, baseVersion: null, clientTime: 1 }] }
  const send = () =>
    fetch(`${flask.baseUrl}/sync/push`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }).then(
      (r) => r.json() as Promise<{ results: Array<{ status: string; record: { version: number } }> }>,
    )
  const first = await send()
  const second = await send()
  expect(first.results[0]!.status).toBe('applied')
  expect(second.results[0]!.status).toBe('duplicate')
  expect(second.results[0]!.record.version).toBe(first.results[0]!.record.version)
  expect((await flask.stats()).appliedOps).toBe(1)
})

test('the outbox survives a restart of the client', async () => {
  const factory = new IDBFactory()
  const first = client(factory)
  await first.persistence.whenHydrated()
  await until(() => first.store.getState().sync.status.flaskConnected, 'connection')
  await flask.stop()
  first.store.dispatch(save({ id: 'keep-me', title: 'written while the server was down' }))
  await first.persistence.flush()
  expect(first.store.getState().sync.outboxDepth).toBe(1)
  // The "crash": drop the first client without pushing, then start a new one on the same database.
  await first.persistence.dispose()
  await flask.start()
  const second = client(factory)
  await second.persistence.whenHydrated()
  expect(second.store.getState().docs.entities['keep-me']?.title).toBe('written while the server was down')
  await until(() => second.store.getState().sync.outboxDepth === 0 && second.store.getState().sync.status.flaskConnected, 'drain after restart')
  expect((await serverItems())['keep-me']).toEqual({ id: 'keep-me', title: 'written while the server was down' })
})

describe.each<[string, ConflictStrategy, (alice: string, bob: string) => string]>([
  ['server-wins', 'server-wins', (_a, bob) => bob],
  ['client-wins', 'client-wins', (alice) => alice],
  ['last-write-wins', 'last-write-wins', (alice) => alice],
  ['custom merge', ({ local, server }) => ({ id: 'shared', title: `${(server as Doc).title} + ${(local as Doc).title}` }), (alice, bob) => `${bob} + ${alice}`],
])('two clients conflicting under %s', (_name, strategy, expected) => {
  test('the conflict is detected, recorded, and both converge', async () => {
    const alice = client(new IDBFactory(), strategy, 'alice')
    const bob = client(new IDBFactory(), 'server-wins', 'bob')
    await Promise.all([alice.persistence.whenHydrated(), bob.persistence.whenHydrated()])
    alice.store.dispatch(save({ id: 'shared', title: 'v1' }))
    await alice.persistence.flush()
    await until(() => alice.store.getState().sync.outboxDepth === 0 && alice.store.getState().sync.status.flaskConnected, 'alice push')
    await until(() => bob.store.getState().sync.status.flaskConnected, 'bob connection')
    await bob.store.dispatch(syncFromFlaskBulk())
    expect(bob.store.getState().docs.entities.shared?.title).toBe('v1')
    bob.store.dispatch(save({ id: 'shared', title: 'bob' }))
    await bob.persistence.flush()
    await until(() => bob.store.getState().sync.outboxDepth === 0, 'bob push')
    alice.store.dispatch(save({ id: 'shared', title: 'alice' }))
    await alice.persistence.flush()
    await until(() => alice.store.getState().sync.conflicts.length === 1 && alice.store.getState().sync.outboxDepth === 0, 'alice conflict')
    const conflict = alice.store.getState().sync.conflicts[0]!
    expect(conflict.key).toBe('docs:shared')
    expect(conflict.server?.value).toEqual({ id: 'shared', title: 'bob' })
    const want = expected('alice', 'bob')
    await until(async () => (await serverItems()).shared?.title === want, 'server converges', 5000)
    expect(alice.store.getState().docs.entities.shared?.title).toBe(want)
    await bob.store.dispatch(syncFromFlaskBulk())
    expect(bob.store.getState().docs.entities.shared?.title).toBe(want)
  })
})

test('two clients conflicting under manual: both versions stay until resolved', async () => {
  const alice = client(new IDBFactory(), 'manual', 'alice')
  const bob = client(new IDBFactory(), 'server-wins', 'bob')
  await Promise.all([alice.persistence.whenHydrated(), bob.persistence.whenHydrated()])
  await until(() => alice.store.getState().sync.status.flaskConnected && bob.store.getState().sync.status.flaskConnected, 'connections')
  bob.store.dispatch(save({ id: 'm', title: 'bob' }))
  await bob.persistence.flush()
  await until(() => bob.store.getState().sync.outboxDepth === 0, 'bob push')
  alice.store.dispatch(save({ id: 'm', title: 'alice' }))
  await alice.persistence.flush()
  await until(() => alice.store.getState().sync.conflicts.some((c) => c.resolution === 'pending'), 'a pending conflict')
  expect(alice.store.getState().docs.entities.m?.title).toBe('alice') // local stays until resolved
  expect((await serverItems()).m?.title).toBe('bob')
  alice.store.dispatch(resolveConflict({ key: 'docs:m', resolution: 'merged', value: { id: 'm', title: 'alice & bob' } }))
  await until(async () => (await serverItems()).m?.title === 'alice & bob', 'the merge reaching the server')
  expect(alice.store.getState().docs.entities.m?.title).toBe('alice & bob')
  expect(alice.store.getState().sync.conflicts.at(-1)?.resolution).toBe('merged')
})
