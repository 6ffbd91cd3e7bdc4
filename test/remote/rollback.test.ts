import type { Middleware, UnknownAction } from '@reduxjs/toolkit'
import { describe, expect, test } from 'vitest'
import { discardDeadLetter, retryDeadLetter, rolledBack, selectItemSyncState, selectSliceSyncCounts, type RolledBackPayload } from '../../src'
import { readStore, until } from '../support/instrumentedStore'
import { rejectOps } from '../support/rejecting'
import { addItem, removeItem, updateItem } from '../support/store'
import { useMockSync, type SyncedOptions } from '../support/synced'

const { server, msw, client, forget } = useMockSync()
type Client = ReturnType<typeof client>

/** A client that records every `rolledBack` action it dispatches. */
function recording(options: SyncedOptions = {}) {
  const rollbacks: RolledBackPayload[] = []
  const record: Middleware = () => (next) => (action) => {
    if (rolledBack.match(action as UnknownAction)) rollbacks.push((action as ReturnType<typeof rolledBack>).payload)
    return next(action)
  }
  return Object.assign(client({ ...options, extraMiddleware: [record] }), { rollbacks })
}

const sync = (c: Client) => c.store.getState().sync
const connected = (c: Client) => until(() => sync(c).status.flaskConnected, 'the connection')
const drained = (c: Client) => until(() => sync(c).outboxDepth === 0, 'the outbox to drain')
const stored = async (c: Client, id: string) => (await readStore(c.factory, 'files', 'synced')).get(id)
const stateOf = (c: Client, id: string) => selectItemSyncState(c.store.getState(), 'files', id)

/** A synced item `id` at version 1, as the server holds it. */
async function syncedItem(c: Client, id: string, name: string): Promise<void> {
  await c.persistence.whenHydrated()
  await connected(c)
  c.store.dispatch(addItem({ id, name }))
  await c.persistence.flush()
  await drained(c)
  expect(stateOf(c, id)).toBe('synced')
}

const refuseName = (bad: string) => (op: { value?: unknown }) => ((op.value as { name?: string } | undefined)?.name === bad ? 'name is not allowed' : null)

describe('rollback on a permanent rejection (onReject: rollback, the default)', () => {
  test('a rejected put of an existing item returns to the server value, in the state and in IndexedDB, with a rolledBack action', async () => {
    const c = recording()
    await syncedItem(c, 'a', 'good')
    rejectOps(msw, server, refuseName('bad'))
    c.store.dispatch(updateItem({ id: 'a', name: 'bad' }))
    await c.persistence.flush()
    await until(() => c.rollbacks.length === 1, 'the rollback')
    expect(c.store.getState().files.entities.a).toEqual({ id: 'a', name: 'good' })
    expect(await stored(c, 'a')).toEqual({ id: 'a', name: 'good' })
    expect(c.rollbacks[0]).toMatchObject({
      key: 'files:a',
      slice: 'files',
      id: 'a',
      reason: { cause: 'rejected', code: 'validation', message: 'name is not allowed' },
      rejected: { type: 'put', value: { id: 'a', name: 'bad' } },
      restored: { value: { id: 'a', name: 'good' }, version: 1 },
    })
    expect(sync(c).deadLetters).toMatchObject([{ key: 'files:a', code: 'validation', message: 'name is not allowed', rolledBack: true }])
    expect(stateOf(c, 'a')).toBe('rejected')
    expect(selectSliceSyncCounts(c.store.getState(), 'files')).toEqual({ pending: 0, conflict: 0, rejected: 1 })
    expect(server.model.records()[0]!.value).toEqual({ id: 'a', name: 'good' })
  })

  test('a rejected create removes the item', async () => {
    const c = recording()
    await c.persistence.whenHydrated()
    await connected(c)
    rejectOps(msw, server, refuseName('bad'))
    c.store.dispatch(addItem({ id: 'new', name: 'bad' }))
    await c.persistence.flush()
    await until(() => c.rollbacks.length === 1, 'the rollback')
    expect(c.store.getState().files.entities.new).toBeUndefined()
    expect(await stored(c, 'new')).toBeUndefined()
    expect(c.rollbacks[0]).toMatchObject({ rejected: { type: 'put' }, restored: { value: null, version: null } })
    expect(stateOf(c, 'new')).toBe('rejected')
  })

  test('a rejected delete brings the item back', async () => {
    const c = recording()
    await syncedItem(c, 'keep-me', 'K')
    rejectOps(msw, server, (op) => (op.type === 'delete' ? 'you may not delete this' : null))
    c.store.dispatch(removeItem('keep-me'))
    await c.persistence.flush()
    await until(() => c.rollbacks.length === 1, 'the rollback')
    expect(c.store.getState().files.entities['keep-me']).toEqual({ id: 'keep-me', name: 'K' })
    expect(await stored(c, 'keep-me')).toEqual({ id: 'keep-me', name: 'K' })
    expect(c.rollbacks[0]).toMatchObject({ rejected: { type: 'delete', value: null }, reason: { message: 'you may not delete this' } })
  })

  test('a newer change of the same key queued behind the rejected one stays and is pushed on top of the server value', async () => {
    const c = recording()
    await syncedItem(c, 'a', 'good')
    rejectOps(msw, server, refuseName('bad'))
    // Hold the push of "bad" until "newer" is stored behind it.
    let release!: () => void
    const held = new Promise<void>((resolve) => (release = resolve))
    const { http } = await import('msw')
    msw.use(http.post(/\/sync\/push$/, async () => (await held, undefined)))
    c.store.dispatch(updateItem({ id: 'a', name: 'bad' }))
    await c.persistence.flush()
    await until(
      async () =>
        ((await readStore(c.factory, '__ris_outbox', 'synced')).get('files:a') as { ops: Array<{ sent: boolean }> } | undefined)?.ops[0]?.sent === true,
      'the push',
    )
    c.store.dispatch(updateItem({ id: 'a', name: 'newer' }))
    await c.persistence.flush()
    release()
    await until(() => sync(c).deadLetters.length === 1 && sync(c).outboxDepth === 0, 'the rejection and the newer push')
    expect(c.rollbacks).toEqual([])
    expect(c.store.getState().files.entities.a).toEqual({ id: 'a', name: 'newer' })
    expect(server.model.records()[0]).toMatchObject({ version: 2, value: { id: 'a', name: 'newer' } })
    expect(sync(c).deadLetters[0]).toMatchObject({ rolledBack: false })
    // The rejection stays visible until the app retries or discards it.
    expect(stateOf(c, 'a')).toBe('rejected')
  })

  test('rolling back one key leaves newer local changes of other keys alone', async () => {
    const c = recording()
    await syncedItem(c, 'a', 'good')
    rejectOps(msw, server, refuseName('bad'))
    server.down()
    c.store.dispatch(updateItem({ id: 'a', name: 'bad' }))
    c.store.dispatch(addItem({ id: 'b', name: 'fine' }))
    await c.persistence.flush()
    server.up()
    await c.persistence.sync!.checkConnection()
    await until(() => c.rollbacks.length === 1 && sync(c).outboxDepth === 0, 'the rollback')
    expect(c.store.getState().files.entities.b).toEqual({ id: 'b', name: 'fine' })
    expect(await stored(c, 'b')).toEqual({ id: 'b', name: 'fine' })
    expect(stateOf(c, 'b')).toBe('synced')
    expect(c.store.getState().files.entities.a).toEqual({ id: 'a', name: 'good' })
  })

  test('a conflict decided for the server rolls back with cause "conflict"', async () => {
    const c = recording()
    await syncedItem(c, 'a', 'mine')
    server.model.push({
      clientId: 'other',
      ops: [{ opId: 'x', collection: 'files', id: 'a', type: 'put', value: { id: 'a', name: 'theirs' }, baseVersion: 1, clientTime: 1 }],
    })
    c.store.dispatch(updateItem({ id: 'a', name: 'mine, edited' }))
    await c.persistence.flush()
    await until(() => c.rollbacks.length === 1, 'the rollback')
    expect(c.store.getState().files.entities.a).toEqual({ id: 'a', name: 'theirs' })
    expect(await stored(c, 'a')).toEqual({ id: 'a', name: 'theirs' })
    expect(c.rollbacks[0]).toMatchObject({
      opId: null,
      reason: { cause: 'conflict', code: 'conflict' },
      rejected: { value: { id: 'a', name: 'mine, edited' } },
    })
    expect(stateOf(c, 'a')).toBe('synced')
  })
})

describe('reloads', () => {
  test('a reload between the rejection and the next start shows the rolled-back value and the rejection, from IndexedDB', async () => {
    const first = recording()
    await syncedItem(first, 'a', 'good')
    rejectOps(msw, server, refuseName('bad'))
    first.store.dispatch(updateItem({ id: 'a', name: 'bad' }))
    await first.persistence.flush()
    await until(() => first.rollbacks.length === 1, 'the rollback')
    await first.persistence.dispose()
    forget(first.persistence)
    const second = client({ factory: first.factory })
    await second.persistence.whenHydrated()
    await second.persistence.sync!.load()
    expect(second.store.getState().files.entities.a).toEqual({ id: 'a', name: 'good' })
    expect(second.store.getState().sync.deadLetters).toMatchObject([{ key: 'files:a', rolledBack: true }])
    expect(stateOf(second, 'a')).toBe('rejected')
  })

  test('a reload before the answer arrived: the next instance gets the rejection and rolls back from the stored confirmed value', async () => {
    const first = recording()
    await syncedItem(first, 'a', 'good')
    server.down()
    first.store.dispatch(updateItem({ id: 'a', name: 'bad' }))
    await first.persistence.flush()
    await first.persistence.dispose()
    forget(first.persistence)
    expect(await readStore(first.factory, 'files', 'synced').then((m) => m.get('a'))).toEqual({ id: 'a', name: 'bad' })
    server.up()
    rejectOps(msw, server, refuseName('bad'))
    const second = recording({ factory: first.factory })
    await second.persistence.whenHydrated()
    await until(() => second.rollbacks.length === 1, 'the rollback after the reload')
    expect(second.store.getState().files.entities.a).toEqual({ id: 'a', name: 'good' })
    expect(await stored(second, 'a')).toEqual({ id: 'a', name: 'good' })
  })
})

describe("onReject: 'keep', retry, edit and resend, discard", () => {
  test("'keep' leaves the rejected value; discarding the dead letter rolls it back", async () => {
    const c = recording({ files: { onReject: 'keep' } })
    await syncedItem(c, 'a', 'good')
    rejectOps(msw, server, refuseName('bad'))
    c.store.dispatch(updateItem({ id: 'a', name: 'bad' }))
    await c.persistence.flush()
    await until(() => sync(c).deadLetters.length === 1, 'the dead letter')
    expect(c.rollbacks).toEqual([])
    expect(c.store.getState().files.entities.a).toEqual({ id: 'a', name: 'bad' })
    expect(stateOf(c, 'a')).toBe('rejected')
    c.store.dispatch(discardDeadLetter({ opId: sync(c).deadLetters[0]!.opId }))
    await until(() => c.rollbacks.length === 1, 'the rollback on discard')
    expect(c.rollbacks[0]!.reason.cause).toBe('discarded')
    expect(c.store.getState().files.entities.a).toEqual({ id: 'a', name: 'good' })
    expect(await stored(c, 'a')).toEqual({ id: 'a', name: 'good' })
    expect(stateOf(c, 'a')).toBe('synced')
  })

  test('discarding a rolled-back dead letter leaves the server value and clears the state', async () => {
    const c = recording()
    await syncedItem(c, 'a', 'good')
    rejectOps(msw, server, refuseName('bad'))
    c.store.dispatch(updateItem({ id: 'a', name: 'bad' }))
    await c.persistence.flush()
    await until(() => c.rollbacks.length === 1, 'the rollback')
    c.store.dispatch(discardDeadLetter({ opId: sync(c).deadLetters[0]!.opId }))
    await until(() => sync(c).deadLetters.length === 0, 'the discard')
    expect(c.rollbacks).toHaveLength(1)
    expect(c.store.getState().files.entities.a).toEqual({ id: 'a', name: 'good' })
    expect(stateOf(c, 'a')).toBe('synced')
  })

  test('retry sends the rejected value again (shown again meanwhile); edit and resend sends the edited value', async () => {
    const c = recording()
    await syncedItem(c, 'a', 'good')
    let strict = true
    rejectOps(msw, server, (op) => (strict && (op.value as { name?: string } | undefined)?.name !== 'good' ? 'not yet' : null))
    c.store.dispatch(updateItem({ id: 'a', name: 'bad' }))
    await c.persistence.flush()
    await until(() => c.rollbacks.length === 1, 'the rollback')
    // Retry while the server still refuses: rejected and rolled back again.
    c.store.dispatch(retryDeadLetter({ opId: sync(c).deadLetters[0]!.opId }))
    await until(() => c.rollbacks.length === 2, 'the second rollback')
    expect(c.store.getState().files.entities.a).toEqual({ id: 'a', name: 'good' })
    // Edit and resend: the edited value goes out, and is applied.
    strict = false
    c.store.dispatch(retryDeadLetter({ opId: sync(c).deadLetters[0]!.opId, value: { id: 'a', name: 'fixed' } }))
    await until(() => sync(c).deadLetters.length === 0 && sync(c).outboxDepth === 0, 'the resend')
    expect(server.model.records()[0]).toMatchObject({ version: 2, value: { id: 'a', name: 'fixed' } })
    expect(c.store.getState().files.entities.a).toEqual({ id: 'a', name: 'fixed' })
    expect(await stored(c, 'a')).toEqual({ id: 'a', name: 'fixed' })
    expect(stateOf(c, 'a')).toBe('synced')
  })
})

describe('per-item sync state', () => {
  test('pending while stored and unacknowledged, synced after; only items that are not synced are in the state', async () => {
    const c = client()
    await c.persistence.whenHydrated()
    await connected(c)
    for (let i = 0; i < 20; i++) c.store.dispatch(addItem({ id: `s${i}`, name: 'x' }))
    await c.persistence.flush()
    await drained(c)
    server.down()
    c.store.dispatch(updateItem({ id: 's3', name: 'offline' }))
    await c.persistence.flush()
    expect(stateOf(c, 's3')).toBe('pending')
    expect(stateOf(c, 's4')).toBe('synced')
    expect(Object.keys(sync(c).items)).toEqual(['files:s3'])
    expect(selectSliceSyncCounts(c.store.getState(), 'files')).toEqual({ pending: 1, conflict: 0, rejected: 0 })
    server.up()
    await c.persistence.sync!.checkConnection()
    await drained(c)
    await until(() => stateOf(c, 's3') === 'synced', 'synced')
    expect(sync(c).items).toEqual({})
    expect(sync(c).counts).toEqual({})
  })

  test('a manual conflict is "conflict" until resolved', async () => {
    const c = client({ strategy: 'manual' })
    await syncedItem(c, 'a', 'mine')
    server.model.push({
      clientId: 'other',
      ops: [{ opId: 'x', collection: 'files', id: 'a', type: 'put', value: { id: 'a', name: 'theirs' }, baseVersion: 1, clientTime: 1 }],
    })
    c.store.dispatch(updateItem({ id: 'a', name: 'edited' }))
    await c.persistence.flush()
    await until(() => stateOf(c, 'a') === 'conflict', 'the conflict')
    await c.persistence.sync!.resolve('files:a', 'server')
    await until(() => stateOf(c, 'a') === 'synced', 'resolved')
  })
})
