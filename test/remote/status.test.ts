// What a new user sees in the sync slice and onError when something is off: every thunk ends in
// success or error, a down or misconfigured server is reported (with the URL and the real cause),
// a conflict is announced once, equal values are no conflict, and the status never contradicts itself.
import { http, HttpResponse } from 'msw'
import { expect, test } from 'vitest'
import { isHttpError, pullFlaskChanges, syncToFlaskBulk } from '../../src'
import { until } from '../support/instrumentedStore'
import { saveFile } from '../support/store'
import { BASE_URL, useMockSync } from '../support/synced'

const { server, msw, client } = useMockSync()
type Client = ReturnType<typeof client>
const status = (c: Client) => c.store.getState().sync.status

async function online(c: Client): Promise<void> {
  await c.persistence.whenHydrated()
  await until(() => status(c).flaskConnected, 'the connection')
}

test('pullFlaskChanges() ends in success with lastSyncTime set, never "syncing" forever', async () => {
  const c = client()
  await online(c)
  const before = Date.now()
  const result = await c.store.dispatch(pullFlaskChanges())
  expect(result.type).toBe('redux-idb-sync/pullFlaskChanges/fulfilled')
  expect(status(c).syncStatus).toBe('success')
  expect(status(c).lastSyncTime).toBeGreaterThanOrEqual(before)
  expect(status(c).error).toBeNull()
})

test('pullFlaskChanges() against a down server ends in error, with the reason', async () => {
  const c = client({ remote: { connectOnStart: false } })
  await c.persistence.whenHydrated()
  server.down()
  const result = await c.store.dispatch(pullFlaskChanges())
  expect(result.type).toBe('redux-idb-sync/pullFlaskChanges/rejected')
  expect(status(c).syncStatus).toBe('error')
  expect(status(c).error).toMatch(/no answer from the server/)
})

test('a down server reaches onError once (not once per backoff), naming the full URL; the status says error, not idle', async () => {
  server.down()
  const c = client()
  await c.persistence.whenHydrated()
  await until(() => c.errors.length >= 1, 'the error')
  // Several health checks back off meanwhile; the same failure is reported once.
  await until(() => (server.requests.health ?? 0) >= 1, 'a health check')
  await new Promise((resolve) => setTimeout(resolve, 150))
  expect(c.errors.map((e) => e.message)).toEqual([expect.stringContaining(`${BASE_URL}/health`)])
  expect(status(c)).toMatchObject({ flaskConnected: false, syncStatus: 'error' })
  expect(status(c).error).not.toBeNull()
})

test('a baseUrl without its /api prefix (404 on /health) is reported as a configuration error, and a bulk push rejects with that HttpError', async () => {
  msw.use(http.get(`${BASE_URL}/health`, () => HttpResponse.json({ error: 'not_found', message: 'no such endpoint' }, { status: 404 })))
  const c = client()
  await c.persistence.whenHydrated()
  await until(() => c.errors.some(isHttpError), 'the error')
  const error = c.errors.find(isHttpError)!
  expect(error.status).toBe(404)
  expect(error.message).toMatch(/remote\.baseUrl must be the API's URL including its prefix/)
  expect(error.message).toContain(`${BASE_URL}/health`)
  c.store.dispatch(saveFile({ id: 'a', name: 'A' }))
  const result = await c.store.dispatch(syncToFlaskBulk())
  expect(result.type).toBe('redux-idb-sync/syncToFlaskBulk/rejected')
  expect(result.payload).toMatchObject({ name: 'HttpError', message: expect.stringMatching(/answered 404/) })
  expect(c.store.getState().sync.outboxDepth).toBe(1) // kept
})

/** A manual client whose `doc` is at v1, and another device's edit `theirs` at v2; then the client edits it to `mine`. */
async function editedOnBothSides(theirs: string, mine: string): Promise<Client> {
  const c = client({ strategy: 'manual' })
  await online(c)
  c.store.dispatch(saveFile({ id: 'doc', name: 'v1' }))
  await c.persistence.flush()
  await until(() => c.store.getState().sync.outboxDepth === 0, 'v1 pushed')
  server.model.writeItem('PUT', 'files', 'doc', { opId: 'other', value: { id: 'doc', name: theirs }, baseVersion: 1, clientTime: 0 })
  c.store.dispatch(saveFile({ id: 'doc', name: mine }))
  await c.persistence.flush()
  return c
}

test('a manual conflict is announced once, however many pulls and pushes meet it', async () => {
  const c = await editedOnBothSides('theirs', 'mine')
  await until(() => c.conflicts.length === 1, 'the conflict')
  for (let i = 0; i < 3; i++) {
    await c.store.dispatch(pullFlaskChanges())
    await c.store.dispatch(syncToFlaskBulk())
  }
  expect(c.conflicts).toHaveLength(1)
  expect(c.store.getState().sync.conflicts.filter((x) => x.resolution === 'pending')).toHaveLength(1)
})

test('equal values on both sides are not a conflict', async () => {
  // Another device makes the same edit first.
  const c = await editedOnBothSides('same', 'same')
  await until(() => c.store.getState().sync.outboxDepth === 0, 'settled')
  expect(c.conflicts).toEqual([])
  expect(c.store.getState().sync.conflicts).toEqual([])
  expect(server.model.records()[0]).toMatchObject({ version: 2, opId: 'other' })
})
