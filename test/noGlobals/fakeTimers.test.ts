import { configureStore, createEntityAdapter, createSlice } from '@reduxjs/toolkit'
import { IDBFactory } from 'fake-indexeddb'
import { setupServer } from 'msw/node'
import { afterEach, describe, expect, test, vi } from 'vitest'
import { createPersistenceMiddleware, createSyncMonitorMiddleware } from '../../src'
import { createApiClient } from '../../src/remote'
import { createMockSyncServer } from '../../src/testing'

// README, "Testing your app", as a user's test file would do it (no IndexedDB globals, an
// injected factory, fake timers).

const TO_FAKE = ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date', 'performance'] as const

const adapter = createEntityAdapter<{ id: string; name: string }>()
const files = createSlice({ name: 'files', initialState: adapter.getInitialState(), reducers: { saveFile: adapter.upsertOne } })
const notes = createSlice({ name: 'notes', initialState: adapter.getInitialState(), reducers: { saveNote: adapter.upsertOne } })

afterEach(() => {
  vi.useRealTimers()
})

describe('fake timers', () => {
  test("Vitest's default list fakes setImmediate, which fake-indexeddb needs real (hence the documented list)", () => {
    vi.useFakeTimers()
    setImmediate(() => undefined)
    expect(vi.getTimerCount()).toBe(1)
  })

  test(`the documented toFake list (${TO_FAKE.join(', ')}): hydration, the debounce and flush work`, async () => {
    vi.useFakeTimers({ toFake: [...TO_FAKE] })
    const factory = new IDBFactory()
    const persistence = createPersistenceMiddleware({ slices: { files: { debounceMs: 300 } }, indexedDB: factory })
    const store = configureStore({
      reducer: { files: files.reducer },
      middleware: (g) => g().concat(persistence),
      enhancers: (g) => g().concat(persistence.enhancer),
    })
    await persistence.whenHydrated()
    store.dispatch(files.actions.saveFile({ id: 'a', name: 'a.txt' }))
    expect(persistence.getStatus().pendingOperations).toBe(1)
    await vi.advanceTimersByTimeAsync(299)
    expect(persistence.getStatus().pendingOperations).toBe(1)
    await vi.advanceTimersByTimeAsync(1)
    await vi.waitFor(() => expect(persistence.getStatus().lastCommitTime).not.toBeNull())
    expect(persistence.getStatus().pendingOperations).toBe(0)
    await persistence.dispose()

    const again = createPersistenceMiddleware({ slices: { files: {} }, indexedDB: factory })
    const restored = configureStore({ reducer: { files: files.reducer }, middleware: (g) => g().concat(again), enhancers: (g) => g().concat(again.enhancer) })
    await again.whenHydrated()
    expect(restored.getState().files.ids).toEqual(['a'])
    await again.dispose()
  })
})

describe('the mock server and the monitor, as documented', () => {
  test('server.fail(fault, 2) skips health checks unless includeHealth is set', async () => {
    const server = createMockSyncServer({ baseUrl: 'http://localhost/api' })
    const msw = setupServer(...server.handlers)
    msw.listen({ onUnhandledRequest: 'error' })
    try {
      const client = createApiClient({ baseUrl: 'http://localhost/api' })
      server.fail({ kind: 'status', status: 503 }, 2)
      await expect(client.health()).resolves.toMatchObject({ status: 'ok' }) // not consumed
      const op = { opId: 'o1', collection: 'files', id: 'a', type: 'put', value: { id: 'a' }, baseVersion: null, clientTime: 1 } as const
      await expect(client.push('c', [op])).rejects.toMatchObject({ name: 'HttpError', status: 503 })
      await expect(client.push('c', [op])).rejects.toMatchObject({ name: 'HttpError', status: 503 })
      await expect(client.push('c', [op])).resolves.toMatchObject({ results: [{ status: 'applied' }] })
      server.fail({ kind: 'status', status: 503, includeHealth: true }, 1)
      await expect(client.health()).rejects.toMatchObject({ name: 'HttpError', status: 503 })
    } finally {
      msw.close()
    }
  })

  test('operationHistory[].slice is null for a batch that spans two slices', async () => {
    const persistence = createPersistenceMiddleware({ slices: { files: {}, notes: {} }, indexedDB: new IDBFactory() })
    const monitor = createSyncMonitorMiddleware({ default: false })
    const store = configureStore({
      reducer: { files: files.reducer, notes: notes.reducer },
      middleware: (g) => g().concat(persistence, monitor),
      enhancers: (g) => g().concat(persistence.enhancer),
    })
    await persistence.whenHydrated()
    store.dispatch(files.actions.saveFile({ id: 'a', name: 'a.txt' }))
    await persistence.flush()
    store.dispatch(files.actions.saveFile({ id: 'b', name: 'b.txt' }))
    store.dispatch(notes.actions.saveNote({ id: 'n', name: 'note' }))
    await persistence.flush()
    const writes = monitor.getSyncMetrics().operationHistory.filter((o) => o.kind === 'write')
    expect(writes.map((o) => [o.slice, o.items])).toEqual([
      ['files', 1],
      [null, 2],
    ])
    monitor.dispose()
    await persistence.dispose()
  })
})
