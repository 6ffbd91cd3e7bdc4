import { IDBFactory } from 'fake-indexeddb'
import { expect, test } from 'vitest'
import { TransactionAbortedError, pullFlaskChanges } from '../../src'
import { instrumentedStore, readStore, until } from '../support/instrumentedStore'
import { addItem } from '../support/store'
import { BASE_URL, useMockSync } from '../support/synced'

const { server, client } = useMockSync()
const abort = () => new TransactionAbortedError('injected', { stores: ['__ris_outbox'] })

test('when storing an acknowledgement fails, memory still matches storage and the replay settles it once', async () => {
  const factory = new IDBFactory()
  const storage = instrumentedStore(factory, 'synced')
  const c = client({ factory, storage })
  await c.persistence.whenHydrated()
  await until(() => c.store.getState().sync.status.flaskConnected, 'connection')
  server.down()
  c.store.dispatch(addItem({ id: 'a', name: 'A' }))
  await c.persistence.flush()
  expect((await readStore(factory, '__ris_outbox', 'synced')).size).toBe(1)
  // The acknowledgement of the push below: the commit that stores the server's version.
  storage.failNext(abort(), 1, (ops) => ops.some((op) => op.store === '__ris_versions'))
  server.up()
  await until(() => (server.requests.push ?? 0) >= 1, 'the push')
  await until(() => c.store.getState().sync.outboxDepth === 0 && (server.requests.push ?? 0) >= 2, 'the replay', 5000)
  expect((await readStore(factory, '__ris_outbox', 'synced')).size).toBe(0)
  expect((await readStore(factory, '__ris_versions', 'synced')).get('files:a')).toBe(1)
  expect(server.model.appliedOps).toBe(1)
})

test('when storing a pulled page fails, the cursor does not move and the next pull brings it again', async () => {
  const factory = new IDBFactory()
  const storage = instrumentedStore(factory, 'synced')
  const c = client({ factory, storage, remote: { connectOnStart: false } })
  await c.persistence.whenHydrated()
  const put = await fetch(`${BASE_URL}/sync/push`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      clientId: 'other',
      ops: [{ opId: 'o1', collection: 'files', id: 'r', type: 'put', value: { id: 'r', name: 'remote' }, baseVersion: null, clientTime: 1 }],
    }),
  })
  expect(put.status).toBe(200)
  storage.failNext(abort())
  const failed = await c.store.dispatch(pullFlaskChanges())
  expect(failed.type).toBe('redux-idb-sync/pullFlaskChanges/rejected')
  expect((await readStore(factory, '__ris_meta', 'synced')).get('__cursor')).toBeUndefined()
  expect((await readStore(factory, 'files', 'synced')).has('r')).toBe(false)
  await c.store.dispatch(pullFlaskChanges())
  expect((await readStore(factory, 'files', 'synced')).get('r')).toEqual({ id: 'r', name: 'remote' })
  expect((await readStore(factory, '__ris_meta', 'synced')).get('__cursor')).toMatchObject({ cursor: '1' })
  expect(c.store.getState().files.entities.r).toEqual({ id: 'r', name: 'remote' })
})
