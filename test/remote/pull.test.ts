import { http, HttpResponse } from 'msw'
import { afterEach, expect, test, vi } from 'vitest'
import { pullFlaskChanges, syncFromFlaskBulk } from '../../src'
import { advance, useFakeClock } from '../support/clock'
import { readStore, until } from '../support/instrumentedStore'
import { BASE_URL, useMockSync } from '../support/synced'

const { server, msw, client } = useMockSync()
// Registered after useMockSync's, so it runs before the instances are disposed.
afterEach(() => {
  vi.useRealTimers()
})

let n = 0
async function remote(ops: Array<{ collection?: string; id: string; type?: 'put' | 'delete'; value?: unknown; baseVersion?: number | null }>) {
  const response = await fetch(`${BASE_URL}/sync/push`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      clientId: 'elsewhere',
      ops: ops.map((op) => ({ opId: `remote-${++n}`, collection: 'files', type: 'put', baseVersion: null, clientTime: 1, ...op })),
    }),
  })
  const body = (await response.json()) as { results: Array<{ status: string }> }
  expect(body.results.every((r) => r.status === 'applied')).toBe(true)
}

test('an incremental pull applies puts and tombstones; the cursor moves with the data', async () => {
  const c = client()
  await c.persistence.whenHydrated()
  await remote([
    { id: 'a', value: { id: 'a', name: 'A' } },
    { id: 'b', value: { id: 'b', name: 'B' } },
  ])
  await c.store.dispatch(pullFlaskChanges())
  expect(c.store.getState().files.ids.sort()).toEqual(['a', 'b'])
  expect((await readStore(c.factory, '__ris_meta', 'synced')).get('__cursor')).toMatchObject({ cursor: '2' })
  await remote([{ id: 'b', type: 'delete', baseVersion: 1 }])
  await c.store.dispatch(pullFlaskChanges())
  expect(c.store.getState().files.ids).toEqual(['a'])
  expect((await readStore(c.factory, 'files', 'synced')).has('b')).toBe(false)
  expect((await readStore(c.factory, '__ris_meta', 'synced')).get('__cursor')).toMatchObject({ cursor: '3' })
  expect((await readStore(c.factory, '__ris_versions', 'synced')).get('files:a')).toBe(1)
})

test('a pull with nothing new transfers no changes; pulled data is never pushed back', async () => {
  useFakeClock()
  const c = client()
  await c.persistence.whenHydrated()
  await remote([{ id: 'a', value: { id: 'a', name: 'A' } }])
  await c.store.dispatch(pullFlaskChanges())
  const applied = server.model.appliedOps
  const sizes: number[] = []
  msw.use(
    http.get(`${BASE_URL}/sync/changes`, async ({ request }) => {
      const since = new URL(request.url).searchParams.get('since')
      const answer = server.model.changes(since, null, null)
      sizes.push((answer.body as { changes: unknown[] }).changes.length)
      return HttpResponse.json(answer.body as never, { status: answer.status })
    }),
  )
  await c.store.dispatch(pullFlaskChanges())
  await c.persistence.flush()
  await advance(5_000) // past the 5 ms debounce and the push retries (20 to 100 ms)
  expect(sizes).toEqual([0])
  expect(server.model.appliedOps).toBe(applied)
  expect(c.store.getState().sync.outboxDepth).toBe(0)
})

test('numeric ids come back as numbers', async () => {
  const c = client()
  await c.persistence.whenHydrated()
  await remote([{ collection: 'todos', id: '42', value: { id: 42, title: 'from the server' } }])
  await c.store.dispatch(syncFromFlaskBulk())
  expect(c.store.getState().todos.items).toEqual([{ id: 42, title: 'from the server' }])
  expect([...(await readStore(c.factory, 'todos', 'synced')).keys()]).toEqual([42])
})

test('a full pull deletes local items the server no longer has, and keeps local-only ones', async () => {
  const c = client()
  await c.persistence.whenHydrated()
  await remote([{ id: 'gone', value: { id: 'gone', name: 'G' } }])
  await c.store.dispatch(syncFromFlaskBulk())
  expect(c.store.getState().files.ids).toEqual(['gone'])
  server.reset() // the server lost it (or it was purged)
  await c.store.dispatch(syncFromFlaskBulk())
  expect(c.store.getState().files.ids).toEqual([])
})

test('keys like __proto__ in server JSON never reach a prototype', async () => {
  const c = client()
  await c.persistence.whenHydrated()
  msw.use(
    http.get(
      `${BASE_URL}/sync/pull`,
      () =>
        new HttpResponse(
          '{"items":[{"collection":"files","id":"p","version":1,"updatedAt":1,"clientTime":1,"deleted":false,"seq":1,"value":{"id":"p","name":"x","__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}}}}],"cursor":"1"}',
          { headers: { 'content-type': 'application/json' } },
        ),
    ),
  )
  await c.store.dispatch(syncFromFlaskBulk())
  const item = c.store.getState().files.entities.p as unknown as Record<string, unknown>
  expect(Object.keys(item).sort()).toEqual(['id', 'name'])
  expect(({} as Record<string, unknown>).polluted).toBeUndefined()
})

test('a malformed pull answer changes nothing and is reported', async () => {
  const c = client()
  await c.persistence.whenHydrated()
  await until(() => c.store.getState().sync.status.flaskConnected, 'connection')
  server.fail({ kind: 'wrong-shape' })
  const result = await c.store.dispatch(syncFromFlaskBulk())
  expect(result.type).toBe('redux-idb-sync/syncFromFlaskBulk/rejected')
  expect(result.payload).toMatchObject({ name: 'MalformedResponseError' })
  expect(c.store.getState().sync.status).toMatchObject({ syncStatus: 'error' })
  expect(c.store.getState().files.ids).toEqual([])
})

test('a page on another origin pulls incrementally by POST from a protocol 4 server (one URL, one CORS preflight), by GET otherwise', async () => {
  const saved = Object.getOwnPropertyDescriptor(globalThis, 'location')
  const methods: string[] = []
  const seen = ({ request }: { request: Request }): void => {
    if (new URL(request.url).pathname.endsWith('/sync/changes')) methods.push(request.method)
  }
  msw.events.on('request:start', seen)
  try {
    await remote([{ id: 'a', value: { id: 'a', name: 'A' } }])
    Object.defineProperty(globalThis, 'location', { value: { origin: 'http://app.test' }, configurable: true })
    const crossOrigin = client()
    await crossOrigin.persistence.whenHydrated()
    await crossOrigin.persistence.sync!.checkConnection() // the health check says which protocol
    await crossOrigin.store.dispatch(pullFlaskChanges())
    expect(crossOrigin.store.getState().files.ids).toEqual(['a'])
    expect(methods).toEqual(['POST'])
    // An older server (protocol 3) has no POST /sync/changes: GET, preflight or not.
    msw.use(http.get(`${BASE_URL}/health`, () => HttpResponse.json({ ...(server.model.health().body as object), protocol: 3 })))
    const older = client()
    await older.persistence.whenHydrated()
    await older.persistence.sync!.checkConnection() // the health check says which protocol
    await older.store.dispatch(pullFlaskChanges())
    expect(older.store.getState().files.ids).toEqual(['a'])
    expect(methods).toEqual(['POST', 'GET'])
    // The page and the API on one origin: no preflight to save, the plain GET.
    msw.resetHandlers()
    Object.defineProperty(globalThis, 'location', { value: { origin: new URL(BASE_URL).origin }, configurable: true })
    const sameOrigin = client()
    await sameOrigin.persistence.whenHydrated()
    await sameOrigin.persistence.sync!.checkConnection() // the health check says which protocol
    await sameOrigin.store.dispatch(pullFlaskChanges())
    expect(methods).toEqual(['POST', 'GET', 'GET'])
  } finally {
    msw.events.removeListener('request:start', seen)
    if (saved) Object.defineProperty(globalThis, 'location', saved)
    else delete (globalThis as { location?: unknown }).location
  }
})
