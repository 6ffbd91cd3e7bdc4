import { describe, expect, test } from 'vitest'
import { acknowledged, confirmedOf, withConfirmed, withLocalChange, withoutRejected, type OutboxRow } from '../../src/remote/outbox'
import type { RemoteRecord } from '../../src/remote/http/protocol'
import { readStore, until, writeRecord } from '../support/instrumentedStore'
import { addItem, removeItem, updateItem } from '../support/store'
import { useMockSync } from '../support/synced'

const record = (version: number, value: unknown, opId?: string): RemoteRecord => ({
  collection: 'files',
  id: 'a',
  version,
  updatedAt: 0,
  clientTime: 0,
  deleted: value === null,
  value,
  seq: version,
  ...(opId ? { opId } : {}),
})

const change = (value: unknown) => ({ key: 'files:a', slice: 'files', collection: 'files', id: 'a', type: 'put' as const, value, clientTime: 1 })

describe('the confirmed value, pure rules', () => {
  const start = withLocalChange(undefined, change({ n: 2 }), 1, 'op1', 1, { value: { n: 1 }, version: 1 })

  test('a new row starts from the confirmed value it is given; a newer change keeps it', () => {
    expect(start.confirmed).toEqual({ value: { n: 1 }, version: 1 })
    const sent: OutboxRow = { ...start, ops: [{ ...start.ops[0]!, sent: true }] }
    const next = withLocalChange(sent, change({ n: 3 }), 1, 'op2', 2, { value: { n: 99 }, version: 9 })
    expect(next.confirmed).toEqual({ value: { n: 1 }, version: 1 })
  })

  test('an acknowledgement makes the acknowledged record the confirmed value', () => {
    const sent: OutboxRow = { ...start, ops: [{ ...start.ops[0]!, sent: true }] }
    const behind = withLocalChange(sent, change({ n: 3 }), 1, 'op2', 2)
    expect(acknowledged(behind, 'op1', record(2, { n: 2 }, 'op1'))?.confirmed).toEqual({ value: { n: 2 }, version: 2 })
  })

  test('a rejection keeps the confirmed value: the server still holds it', () => {
    const sent: OutboxRow = { ...start, ops: [{ ...start.ops[0]!, sent: true }] }
    const behind = withLocalChange(sent, change({ n: 3 }), 1, 'op2', 2)
    expect(withoutRejected(behind, 'op1', 1)?.confirmed).toEqual({ value: { n: 1 }, version: 1 })
  })

  test('it never moves backwards, and a tombstone or no record is "deleted"', () => {
    const newer = withConfirmed(start, confirmedOf(record(5, { n: 5 })))
    expect(withConfirmed(newer, confirmedOf(record(3, { n: 3 }))).confirmed).toEqual({ value: { n: 5 }, version: 5 })
    expect(confirmedOf(record(6, null))).toEqual({ deleted: true, version: 6 })
    expect(confirmedOf(null)).toEqual({ deleted: true, version: null })
  })
})

describe('the confirmed value, stored beside the outbox row', () => {
  const { server, client } = useMockSync()
  const rows = async (c: ReturnType<typeof client>) => (await readStore(c.factory, '__ris_outbox', 'synced')) as Map<string, OutboxRow>
  const connected = (c: ReturnType<typeof client>) => until(() => c.store.getState().sync.status.flaskConnected, 'the connection')
  const drained = (c: ReturnType<typeof client>) => until(() => c.store.getState().sync.outboxDepth === 0, 'the outbox to drain')

  test('an edit of a synced item records the server value it was made on; a create records "never on the server"', async () => {
    const c = client()
    await c.persistence.whenHydrated()
    await connected(c)
    c.store.dispatch(addItem({ id: 'a', name: 'A' }))
    await c.persistence.flush()
    await drained(c)
    server.down()
    c.store.dispatch(updateItem({ id: 'a', name: 'A2' }))
    c.store.dispatch(addItem({ id: 'b', name: 'B' }))
    await c.persistence.flush()
    const stored = await rows(c)
    expect(stored.get('files:a')?.confirmed).toEqual({ value: { id: 'a', name: 'A' }, version: 1 })
    expect(stored.get('files:b')?.confirmed).toEqual({ deleted: true, version: null })
    // Synced keys cost nothing: only keys with pending operations have a row.
    expect([...stored.keys()].sort()).toEqual(['files:a', 'files:b'])
  })

  test('a pull of a newer server version while a change is pending updates it (the op keeps its base)', async () => {
    // `manual`: the conflict stays open, so the row stays and shows what it learned.
    const c = client({ strategy: 'manual' })
    await c.persistence.whenHydrated()
    await connected(c)
    c.store.dispatch(addItem({ id: 'a', name: 'A' }))
    await c.persistence.flush()
    await drained(c)
    // Another client writes version 2, then this one edits while the push fails.
    server.model.push({
      clientId: 'other',
      ops: [{ opId: 'x1', collection: 'files', id: 'a', type: 'put', value: { id: 'a', name: 'other' }, baseVersion: 1, clientTime: 1 }],
    })
    server.down()
    c.store.dispatch(updateItem({ id: 'a', name: 'mine' }))
    await c.persistence.flush()
    c.persistence.sync!.autoPush = false
    server.up()
    await c.persistence.sync!.checkConnection()
    await c.persistence.sync!.pullChanges().catch(() => undefined)
    const row = (await rows(c)).get('files:a')!
    expect(row.confirmed).toEqual({ value: { id: 'a', name: 'other' }, version: 2 })
    expect(row.ops.at(-1)).toMatchObject({ value: { id: 'a', name: 'mine' } })
    expect(row.ops[0]!.baseVersion).toBe(1)
  })

  test('a deleted item records its value, so a rejected delete can bring it back', async () => {
    const c = client()
    await c.persistence.whenHydrated()
    await connected(c)
    c.store.dispatch(addItem({ id: 'a', name: 'A' }))
    await c.persistence.flush()
    await drained(c)
    server.down()
    c.store.dispatch(removeItem('a'))
    await c.persistence.flush()
    expect((await rows(c)).get('files:a')?.confirmed).toEqual({ value: { id: 'a', name: 'A' }, version: 1 })
  })

  test('a row stored without it (an older version) loads and drains', async () => {
    const first = client()
    await first.persistence.whenHydrated()
    await connected(first)
    server.down()
    first.store.dispatch(addItem({ id: 'legacy', name: 'L' }))
    await first.persistence.flush()
    await first.persistence.dispose()
    // Strip `confirmed` as an older version would have stored the row.
    const row = (await rows(first)).get('files:legacy')!
    expect(row.confirmed).toBeDefined()
    const { confirmed: _dropped, ...legacy } = row
    await writeRecord(first.factory, '__ris_outbox', 'files:legacy', legacy, 'synced')
    server.up()
    const second = client({ factory: first.factory })
    await second.persistence.whenHydrated()
    await drained(second)
    expect(server.model.records().map((r) => r.id)).toEqual(['legacy'])
  })
})
