// Optimistic updates against the real reference Flask server: its validation refuses a value
// nested deeper than 100 levels (docs/protocol.md), which this client is configured to store
// locally (maxDepth 200). The built library (dist/), in Node on fake-indexeddb.
import { configureStore, createEntityAdapter, createSlice, type Middleware, type UnknownAction } from '@reduxjs/toolkit'
import { IDBFactory } from 'fake-indexeddb'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest'
import type { PersistenceMiddleware, RolledBackPayload } from '../../src'
import { startFlaskServer, type FlaskServer } from './flaskServer'
import { lib, remoteLib } from './lib'

const { createPersistenceMiddleware, discardDeadLetter, retryDeadLetter, rolledBack, selectItemSyncState, syncReducer } = lib

interface Doc {
  id: string
  title: string
  body?: unknown
}
const docs = createEntityAdapter<Doc>()
const docsSlice = createSlice({ name: 'docs', initialState: docs.getInitialState(), reducers: { save: docs.upsertOne } })
const { save } = docsSlice.actions

/** A value the server refuses: nested 101 levels deep. */
function tooDeep(): unknown {
  let value: unknown = 'leaf'
  for (let i = 0; i < 101; i++) value = { next: value }
  return value
}

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

function client(factory: IDBFactory, onReject: 'rollback' | 'keep' = 'rollback') {
  const rollbacks: RolledBackPayload[] = []
  const record: Middleware = () => (next) => (action) => {
    if (rolledBack.match(action as UnknownAction)) rollbacks.push((action as ReturnType<typeof rolledBack>).payload)
    return next(action)
  }
  const persistence = createPersistenceMiddleware({
    dbName: 'e2e-rollback',
    indexedDB: factory,
    maxDepth: 200,
    slices: { docs: { debounceMs: 5, onReject } },
    onError: () => {},
    remote: remoteLib.createRemote({ baseUrl: flask.baseUrl, retry: { initialDelayMs: 50, maxDelayMs: 200 }, timeoutMs: 2000 }),
  })
  live.push(persistence)
  const store = configureStore({
    reducer: { docs: docsSlice.reducer, sync: syncReducer },
    middleware: (g) => g().concat(persistence, record),
    enhancers: (g) => g().concat(persistence.enhancer),
  })
  return { store, persistence, rollbacks }
}

async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

const serverDoc = async (id: string) => (await (await fetch(`${flask.baseUrl}/items/docs/${id}`)).json()) as { version: number; value: Doc }

describe('rollback against the real server', () => {
  test('a refused edit returns to the server value, in the state and after a reload; edit and resend is applied', async () => {
    const factory = new IDBFactory()
    const c = client(factory)
    await c.persistence.whenHydrated()
    await until(() => c.store.getState().sync.status.flaskConnected, 'the connection')
    c.store.dispatch(save({ id: 'd1', title: 'fine' }))
    await c.persistence.flush()
    await until(() => selectItemSyncState(c.store.getState(), 'docs', 'd1') === 'synced' && c.store.getState().sync.outboxDepth === 0, 'the first push')
    c.store.dispatch(save({ id: 'd1', title: 'too deep', body: tooDeep() }))
    await c.persistence.flush()
    await until(() => c.rollbacks.length === 1, 'the rollback')
    expect(c.rollbacks[0]!.reason).toMatchObject({ cause: 'rejected', code: 'bad_request', message: 'value is nested deeper than 100' })
    expect(c.store.getState().docs.entities.d1).toEqual({ id: 'd1', title: 'fine' })
    expect(selectItemSyncState(c.store.getState(), 'docs', 'd1')).toBe('rejected')
    expect((await serverDoc('d1')).value).toEqual({ id: 'd1', title: 'fine' })

    // A reload reads the rolled-back item and the rejection from IndexedDB.
    await c.persistence.dispose()
    live.splice(live.indexOf(c.persistence), 1)
    const again = client(factory)
    await again.persistence.whenHydrated()
    await again.persistence.sync!.load()
    expect(again.store.getState().docs.entities.d1).toEqual({ id: 'd1', title: 'fine' })
    expect(selectItemSyncState(again.store.getState(), 'docs', 'd1')).toBe('rejected')

    // Edit and resend a value the server accepts.
    await until(() => again.store.getState().sync.status.flaskConnected, 'the connection')
    const [letter] = again.store.getState().sync.deadLetters
    again.store.dispatch(retryDeadLetter({ opId: letter!.opId, value: { id: 'd1', title: 'fixed' } }))
    await until(() => selectItemSyncState(again.store.getState(), 'docs', 'd1') === 'synced', 'the resend')
    expect(await serverDoc('d1')).toMatchObject({ version: 2, value: { id: 'd1', title: 'fixed' } })
    expect(again.store.getState().docs.entities.d1).toEqual({ id: 'd1', title: 'fixed' })
  })

  test("onReject 'keep' keeps the refused value until the dead letter is discarded", async () => {
    const c = client(new IDBFactory(), 'keep')
    await c.persistence.whenHydrated()
    await until(() => c.store.getState().sync.status.flaskConnected, 'the connection')
    c.store.dispatch(save({ id: 'k', title: 'server' }))
    await c.persistence.flush()
    await until(() => c.store.getState().sync.outboxDepth === 0, 'the first push')
    c.store.dispatch(save({ id: 'k', title: 'draft', body: tooDeep() }))
    await c.persistence.flush()
    await until(() => c.store.getState().sync.deadLetters.length === 1, 'the dead letter')
    expect(c.store.getState().docs.entities.k?.title).toBe('draft')
    c.store.dispatch(discardDeadLetter({ opId: c.store.getState().sync.deadLetters[0]!.opId }))
    await until(() => c.rollbacks.length === 1, 'the rollback on discard')
    expect(c.store.getState().docs.entities.k).toEqual({ id: 'k', title: 'server' })
  })
})
