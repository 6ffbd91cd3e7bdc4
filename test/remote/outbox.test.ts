import { describe, expect, onTestFinished, test } from 'vitest'
import { discardDeadLetter, retryDeadLetter } from '../../src'
import { readStore, until } from '../support/instrumentedStore'
import { addItem, removeItem, updateItem } from '../support/store'
import { useMockSync } from '../support/synced'

const { server, client } = useMockSync()
const sync = (c: ReturnType<typeof client>) => c.store.getState().sync
const connected = (c: ReturnType<typeof client>) => until(() => sync(c).status.flaskConnected, 'the connection')
const drained = (c: ReturnType<typeof client>) => until(() => sync(c).outboxDepth === 0, 'the outbox to drain')

describe('the durable outbox', () => {
  test('an operation is stored in the outbox in the same transaction as its local write', async () => {
    const c = client()
    await c.persistence.whenHydrated()
    await connected(c)
    server.down()
    c.store.dispatch(addItem({ id: 'a', name: 'A' }))
    await c.persistence.flush()
    const outbox = await readStore(c.factory, '__ris_outbox', 'synced')
    expect([...outbox.keys()]).toEqual(['files:a'])
    // The row holds the operation itself: its type and its value, not a pointer to the local item.
    expect(outbox.get('files:a')).toMatchObject({ slice: 'files', collection: 'files', id: 'a', ops: [{ type: 'put', value: { id: 'a', name: 'A' } }] })
    expect((await readStore(c.factory, 'files', 'synced')).get('a')).toEqual({ id: 'a', name: 'A' })
    expect(sync(c).outboxDepth).toBe(1)
  })

  test('a crash between the local write and the push loses nothing: the next instance drains it', async () => {
    const first = client()
    await first.persistence.whenHydrated()
    await connected(first)
    server.down()
    first.store.dispatch(addItem({ id: 'survivor', name: 'S' }))
    await first.persistence.flush()
    expect(server.model.records()).toEqual([])
    // No dispose: the first instance simply stops being used, as after a crash.
    first.persistence.sync!.dispose()
    server.up()
    const second = client({ factory: first.factory })
    await second.persistence.whenHydrated()
    await drained(second)
    expect(server.model.records().map((r) => [r.id, r.value])).toEqual([['survivor', { id: 'survivor', name: 'S' }]])
  })

  test('entries of one key coalesce: 10 edits while down become one row; only an op whose push may have arrived stays apart', async () => {
    const c = client()
    await c.persistence.whenHydrated()
    await connected(c)
    server.down()
    for (let i = 1; i <= 10; i++) {
      c.store.dispatch(updateItem({ id: 'k', name: `v${i}` }))
      await c.persistence.flush().catch(() => undefined)
    }
    const rows = await readStore(c.factory, '__ris_outbox', 'synced')
    expect(rows.size).toBe(1)
    // The first edit's push was attempted before the client knew the server was down, so it may
    // have been applied: it is kept as it was sent. Every later edit coalesced into one op.
    const ops = (rows.get('files:k') as { ops: Array<{ sent: boolean; value: unknown }> }).ops
    expect(ops.map((op) => [op.sent, op.value])).toEqual([
      [true, { id: 'k', name: 'v1' }],
      [false, { id: 'k', name: 'v10' }],
    ])
    server.up()
    await drained(c)
    expect(server.model.appliedOps).toBe(2)
    expect(server.model.records()[0]!.value).toEqual({ id: 'k', name: 'v10' })
  })

  test('the outbox drains in order once the connection is back', async () => {
    const c = client()
    await c.persistence.whenHydrated()
    await connected(c)
    server.down()
    for (const id of ['first', 'second', 'third']) {
      c.store.dispatch(addItem({ id, name: id }))
      await c.persistence.flush()
    }
    c.store.dispatch(removeItem('second'))
    await c.persistence.flush()
    server.up()
    await drained(c)
    // `second` was re-queued by its delete, so it is last.
    expect(server.model.records().map((r) => [r.id, r.deleted])).toEqual([
      ['first', false],
      ['third', false],
      ['second', true],
    ])
  })

  test('an entry is removed only after the acknowledgement; a replay after a lost answer is applied once', async () => {
    const c = client()
    await c.persistence.whenHydrated()
    await connected(c)
    server.fail({ kind: 'lose-answer' })
    c.store.dispatch(addItem({ id: 'once', name: 'O' }))
    await c.persistence.flush()
    await until(() => (server.requests.push ?? 0) >= 2 && sync(c).outboxDepth === 0, 'the replay', 5000)
    expect(server.model.appliedOps).toBe(1)
    expect(server.model.records()).toHaveLength(1)
    expect((await readStore(c.factory, '__ris_outbox', 'synced')).size).toBe(0)
    expect((await readStore(c.factory, '__ris_versions', 'synced')).get('files:once')).toBe(1)
  })

  test('a permanently rejected operation moves to the dead-letter list, visibly; retry and discard settle it', async () => {
    const c = client()
    await c.persistence.whenHydrated()
    await connected(c)
    const tooLong = 'x'.repeat(600) // the server accepts ids of at most 512 characters
    c.store.dispatch(addItem({ id: tooLong, name: 'bad' }))
    c.store.dispatch(addItem({ id: 'fine', name: 'ok' }))
    await c.persistence.flush()
    await until(() => sync(c).deadLetters.length === 1 && sync(c).outboxDepth === 0, 'the dead letter')
    const [letter] = sync(c).deadLetters
    expect(letter).toMatchObject({ key: `files:${tooLong}`, code: 'bad_request', type: 'put' })
    expect((await readStore(c.factory, '__ris_dead', 'synced')).size).toBe(1)
    expect(server.model.records().map((r) => r.id)).toEqual(['fine'])
    expect(c.errors.some((e) => /dead-letter/.test(e.message))).toBe(true)
    c.store.dispatch(retryDeadLetter({ opId: letter!.opId }))
    await until(() => sync(c).deadLetters.length === 1 && sync(c).deadLetters[0]!.opId !== letter!.opId, 'the retried letter to fail again')
    c.store.dispatch(discardDeadLetter({ opId: sync(c).deadLetters[0]!.opId }))
    await until(() => sync(c).deadLetters.length === 0, 'the discard')
    expect((await readStore(c.factory, '__ris_dead', 'synced')).size).toBe(0)
  })

  test('a 4xx on a whole batch is narrowed down to the one operation, which is dead-lettered', async () => {
    const c = client()
    await c.persistence.whenHydrated()
    await connected(c)
    server.down()
    for (const id of ['a', 'b', 'c']) c.store.dispatch(addItem({ id, name: id }))
    await c.persistence.flush()
    server.up()
    server.fail({ kind: 'status', status: 422 }, 3) // the 3-op batch, then its halves' first request
    await until(() => sync(c).outboxDepth === 0, 'the drain', 5000)
    expect(sync(c).deadLetters.length).toBeGreaterThanOrEqual(1)
    expect(sync(c).deadLetters.length + server.model.records().length).toBe(3)
  })
})

describe('health checks and degrading', () => {
  test('while the server is down everything works locally and the outbox grows; it drains on recovery', async () => {
    const c = client()
    await c.persistence.whenHydrated()
    await connected(c)
    server.down()
    for (let i = 0; i < 5; i++) {
      c.store.dispatch(addItem({ id: `d${i}`, name: 'offline' }))
      await c.persistence.flush()
    }
    await until(() => !sync(c).status.flaskConnected, 'noticing')
    expect(sync(c).status.syncStatus).toBe('error')
    expect(sync(c).outboxDepth).toBe(5)
    expect(c.store.getState().files.ids).toHaveLength(5)
    server.up()
    await until(() => sync(c).status.flaskConnected && sync(c).outboxDepth === 0, 'recovery', 5000)
    expect(server.model.records()).toHaveLength(5)
    // The drain reports success once it has finished (it looks at the stored outbox once more).
    await until(() => sync(c).status.syncStatus === 'success', 'the success', 2000)
  })

  test('an online event is only a hint to check again', async () => {
    // Node has no window events; give globalThis an EventTarget as a browser's window has.
    const events = new EventTarget()
    const g = globalThis as unknown as Record<string, unknown>
    g.addEventListener = events.addEventListener.bind(events)
    g.removeEventListener = events.removeEventListener.bind(events)
    g.dispatchEvent = events.dispatchEvent.bind(events)
    onTestFinished(() => {
      delete g.addEventListener
      delete g.removeEventListener
      delete g.dispatchEvent
    })
    const c = client({ remote: { retry: { initialDelayMs: 60_000, maxDelayMs: 60_000 } } })
    await c.persistence.whenHydrated()
    await connected(c)
    server.down()
    c.store.dispatch(addItem({ id: 'x', name: 'x' }))
    await c.persistence.flush()
    await until(() => !sync(c).status.flaskConnected, 'noticing')
    const healthBefore = server.requests.health ?? 0
    server.up()
    events.dispatchEvent(new Event('online'))
    await until(() => sync(c).outboxDepth === 0, 'the drain after the hint')
    expect(server.requests.health).toBe(healthBefore + 1)
  })
})
