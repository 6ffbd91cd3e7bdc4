// A change that is pushed at once is marked sent by the transaction that writes it (the item
// and its outbox row), so its push goes out without a transaction of its own first: one
// IndexedDB transaction less between an edit and the other devices. These tests count the
// transactions that wrote the outbox before the push request reached the server, and check
// what that marking may and may not do.
import { IDBDatabase } from 'fake-indexeddb'
import { http } from 'msw'
import { afterEach, describe, expect, test, vi } from 'vitest'
import { createAutoSyncMiddleware, pullFlaskChanges, type AutoSyncMiddleware, type ChannelLike } from '../../src'
import { channelHub } from '../support/coordination'
import { readStore, until } from '../support/instrumentedStore'
import { addItem, updateItem } from '../support/store'
import { BASE_URL, useMockSync } from '../support/synced'

const { server, msw, client } = useMockSync()
const OUTBOX = '__ris_outbox'
afterEach(() => vi.restoreAllMocks())

/**
 * From now on: for each push request that reaches the server, how many read-write transactions
 * including the outbox store had begun before it (the local write, and a claim if one ran).
 */
function outboxWritesBeforeEachPush(): number[] {
  let count = 0
  const seen: number[] = []
  const plain = IDBDatabase.prototype.transaction
  vi.spyOn(IDBDatabase.prototype, 'transaction').mockImplementation(function (this: IDBDatabase, stores, mode, options) {
    const names = typeof stores === 'string' ? [stores] : [...stores]
    if (mode === 'readwrite' && names.includes(OUTBOX)) count++
    return plain.call(this, stores, mode, options)
  })
  // Answers nothing itself: the request goes on to the mock server's handler.
  msw.use(
    http.post(`${BASE_URL}/sync/push`, () => {
      seen.push(count)
    }),
  )
  return seen
}

type Client = ReturnType<typeof client>
const sync = (c: Client) => c.store.getState().sync
/** Connected, and the start's own work (the pull that follows the connection) finished: the counting starts next. */
async function connected(c: Client): Promise<void> {
  await until(() => sync(c).status.flaskConnected, 'the connection')
  // Runs under the engine's lock: it waits for a pull already running, then pulls once more.
  await c.store.dispatch(pullFlaskChanges())
}
/** Until the server holds `id` and the client's outbox is empty. */
const drained = (c: Client, id: string) =>
  until(() => sync(c).outboxDepth === 0 && server.model.records().some((r) => r.id === id), `${id} to be pushed and acknowledged`)
const outboxRow = async (c: Client, key: string) =>
  (await readStore(c.factory, OUTBOX, 'synced')).get(key) as { ops: Array<{ sent: boolean; value: unknown }> } | undefined

/**
 * A synced client with auto-sync as the leader (`settleMs` as given), connected, after one edit
 * synced (auto-sync's first sync reads the stored outbox: another tab may have written it), and
 * a channel to it from another tab. Without such a channel every sync reads the stored outbox
 * first, since it cannot hear when another tab wrote it.
 */
async function withAutoSync(settleMs: number): Promise<{ c: Client; autoSync: AutoSyncMiddleware; otherTab: ChannelLike }> {
  const hub = channelHub()
  const autoSync = createAutoSyncMiddleware({ leader: 'always', intervalMs: 1e9, settleMs, default: false, onError: () => {}, channel: hub.create() })
  afterEach(() => autoSync.dispose())
  const c = client({ extraMiddleware: [autoSync] })
  await c.persistence.whenHydrated()
  await connected(c)
  c.store.dispatch(addItem({ id: 'first', name: 'first' }))
  await drained(c, 'first')
  // The pull after that push may still be writing (the counting starts next): one more sync
  // waits for it.
  await autoSync.syncNow()
  return { c, autoSync, otherTab: hub.create() }
}

describe('claiming at write', () => {
  test('the engine pushing on its own: the push goes out after the write alone', async () => {
    const c = client()
    await c.persistence.whenHydrated()
    await connected(c)
    const before = outboxWritesBeforeEachPush()
    c.store.dispatch(addItem({ id: 'a', name: 'A' }))
    await drained(c, 'a')
    expect(before).toEqual([1])
    expect(server.model.appliedOps).toBe(1)
    expect(await outboxRow(c, 'files:a')).toBeUndefined()
  })

  test('auto-sync with settleMs 0 (the leader): after the write alone as well', async () => {
    const { c } = await withAutoSync(0)
    const before = outboxWritesBeforeEachPush()
    c.store.dispatch(addItem({ id: 'b', name: 'B' }))
    await drained(c, 'b')
    expect(before).toEqual([1])
    expect(server.model.appliedOps).toBe(2)
  })

  test('auto-sync with a settle delay: the push claims the op in a transaction of its own first', async () => {
    const { c } = await withAutoSync(20)
    const before = outboxWritesBeforeEachPush()
    c.store.dispatch(addItem({ id: 'c', name: 'C' }))
    await drained(c, 'c')
    expect(before).toEqual([2])
  })

  test('another tab spoke between the write and the push: the outbox is read again, and the push claims from what is stored', async () => {
    const { c, otherTab } = await withAutoSync(0)
    const before = outboxWritesBeforeEachPush()
    c.store.dispatch(addItem({ id: 'spoken', name: 'S' }))
    otherTab.postMessage({ type: 'redux-idb-sync/committed', from: 'another tab', changes: [] })
    await drained(c, 'spoken')
    expect(before[0]).toBe(2)
    expect(server.model.appliedOps).toBe(2)
  })

  test('a slice with a dependency rule is claimed by its push, which asks the rule first', async () => {
    const c = client({ files: { debounceMs: 5, dependsOn: () => [] } })
    await c.persistence.whenHydrated()
    await connected(c)
    const before = outboxWritesBeforeEachPush()
    c.store.dispatch(addItem({ id: 'f', name: 'F' }))
    await drained(c, 'f')
    expect(before).toEqual([2])
  })

  test('with a settle delay the op is stored unsent: newer edits replace it until its push starts', async () => {
    const { c } = await withAutoSync(200)
    c.store.dispatch(addItem({ id: 'd', name: 'v1' }))
    await c.persistence.flush()
    c.store.dispatch(updateItem({ id: 'd', name: 'v2' }))
    await c.persistence.flush()
    const row = await outboxRow(c, 'files:d')
    expect(row?.ops.map((op) => [op.sent, op.value])).toEqual([[false, { id: 'd', name: 'v2' }]])
  })

  test('not connected: nothing is marked at write; the edits coalesce and go out once the server is back', async () => {
    server.down()
    const c = client()
    await c.persistence.whenHydrated()
    c.store.dispatch(addItem({ id: 'e', name: 'v1' }))
    await c.persistence.flush()
    c.store.dispatch(updateItem({ id: 'e', name: 'v2' }))
    await c.persistence.flush()
    expect((await outboxRow(c, 'files:e'))?.ops.map((op) => [op.sent, op.value])).toEqual([[false, { id: 'e', name: 'v2' }]])
    server.up()
    await c.persistence.sync!.checkConnection()
    await drained(c, 'e')
    expect(server.model.appliedOps).toBe(1)
    expect(server.model.records()[0]!.value).toEqual({ id: 'e', name: 'v2' })
  })

  test('a push whose answer is lost: the op marked at write is resent with its opId and applied once', async () => {
    const c = client()
    await c.persistence.whenHydrated()
    await connected(c)
    server.fail({ kind: 'lose-answer' })
    c.store.dispatch(addItem({ id: 'g', name: 'G' }))
    await drained(c, 'g')
    expect(server.model.appliedOps).toBe(1)
    expect(server.model.records().map((r) => r.id)).toEqual(['g'])
  })
})
