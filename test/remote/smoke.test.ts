import { configureStore } from '@reduxjs/toolkit'
import { setupServer } from 'msw/node'
import { afterAll, afterEach, beforeAll, expect, test } from 'vitest'
import { createPersistenceMiddleware, syncReducer, syncToFlaskBulk, syncFromFlaskBulk } from '../../src'
import { createMockSyncServer } from '../../src/testing'
import { addItem, filesSlice, newFactory, updateItem, removeItem } from '../support/store'

const server = createMockSyncServer({ baseUrl: 'http://sync.test/api' })
const msw = setupServer(...server.handlers)
beforeAll(() => msw.listen({ onUnhandledRequest: 'error' }))
afterEach(() => server.reset())
afterAll(() => msw.close())

function make(factory: IDBFactory) {
  const persistence = createPersistenceMiddleware({
    slices: { files: { debounceMs: 10 } },
    indexedDB: factory,
    onError: (e) => console.log('onError', e.name, e.message),
    remote: { baseUrl: 'http://sync.test/api', retry: { initialDelayMs: 20, maxDelayMs: 100 } },
  })
  const store = configureStore({
    reducer: { files: filesSlice.reducer, sync: syncReducer },
    middleware: (g) => g().concat(persistence),
    enhancers: (g) => g().concat(persistence.enhancer),
  })
  return { store, persistence }
}

test('round trip', async () => {
  const f = newFactory()
  const { store, persistence } = make(f)
  await persistence.whenHydrated()
  store.dispatch(addItem({ id: 'a', name: 'A' }))
  store.dispatch(addItem({ id: 'b', name: 'B' }))
  await persistence.flush()
  await new Promise((r) => setTimeout(r, 100))
  console.log(server.model.records().map((r) => [r.id, r.version, r.value]))
  console.log(store.getState().sync)
  server.down()
  store.dispatch(updateItem({ id: 'a', name: 'A2' }))
  store.dispatch(removeItem('b'))
  await persistence.flush()
  await new Promise((r) => setTimeout(r, 100))
  console.log('down', store.getState().sync.outboxDepth, store.getState().sync.status)
  server.up()
  await new Promise((r) => setTimeout(r, 500))
  console.log('up', store.getState().sync.outboxDepth, store.getState().sync.status)
  console.log(server.model.records().map((r) => [r.id, r.version, r.deleted, r.value]))
  await store.dispatch(syncToFlaskBulk())
  await store.dispatch(syncFromFlaskBulk())
  console.log(store.getState().sync.status, server.requests)
  expect(server.model.records().length).toBe(2)
  await persistence.dispose()
})
