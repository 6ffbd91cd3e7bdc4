// Regressions for the findings that broke "never lost, never applied twice" (sync engine v2).
// Each test replays one finding's sequence against the msw mock of the protocol and checks the
// server's history (every applied operation), not only its end state.
import { IDBFactory } from 'fake-indexeddb'
import { http } from 'msw'
import { describe, expect, test, vi } from 'vitest'
import { checkFlaskConnection, isInvalidItemError, isNonSerializableError, pullFlaskChanges, type ConflictStrategy } from '../../src'
import type { RemoteRecord } from '../../src/remote'
import { createOperationQueue, type QueueEntry } from '../../src/persistence/writeQueue'
import { readStore, until, withCommit } from '../support/instrumentedStore'
import { createIdbStore } from '../../src/storage/idbStore'
import type { LocalStore } from '../../src/storage/types'
import { addTodo, saveFile, type FileItem } from '../support/store'
import { BASE_URL, useMockSync } from '../support/synced'

const { server, msw, client, forget } = useMockSync()
type Client = ReturnType<typeof client>

const history = (): RemoteRecord[] => (server.model.history().body as { ops: RemoteRecord[] }).ops
const record = (id: string) => server.model.records().find((r) => r.id === id)
const nameOf = (value: unknown): string | undefined => (value as FileItem | null | undefined)?.name
const localName = (c: Client, id: string) => c.store.getState().files.entities[id]?.name
const sync = (c: Client) => c.store.getState().sync

/** Each value the server applied, with the opIds that applied it: more than one is a double apply. */
function appliedTwice(): Array<[string, string[]]> {
  const byValue = new Map<string, string[]>()
  for (const r of history()) {
    const key = `${r.collection}:${r.id}=${JSON.stringify(r.value)}`
    byValue.set(key, [...(byValue.get(key) ?? []), r.opId ?? '?'])
  }
  return [...byValue].filter(([, opIds]) => opIds.length > 1)
}

async function online(c: Client): Promise<void> {
  await c.persistence.whenHydrated()
  await until(() => sync(c).status.flaskConnected, 'the connection')
}

async function edit(c: Client, name: string, id = 'doc'): Promise<void> {
  c.store.dispatch(saveFile({ id, name }))
  await c.persistence.flush()
}

async function settled(c: Client, what = 'the outbox to drain'): Promise<void> {
  await until(() => sync(c).outboxDepth === 0 && c.persistence.getStatus().pendingOperations === 0 && sync(c).status.flaskConnected, what, 5000)
}

/** `doc` at v1 from `c`, then another device writes v2 on top of it. */
async function overwrittenElsewhere(c: Client, theirs = 'theirs'): Promise<void> {
  await edit(c, 'v1')
  await until(() => sync(c).outboxDepth === 0 && record('doc')?.version === 1, 'v1 pushed')
  const answer = server.model.writeItem('PUT', 'files', 'doc', {
    opId: 'other-device',
    value: { id: 'doc', name: theirs },
    baseVersion: 1,
    clientTime: Date.now(),
  })
  expect(answer.status).toBe(200)
}

describe.each<ConflictStrategy>(['server-wins', 'manual'])('finding 1 (%s): a lost answer and then six offline edits', (strategy) => {
  test('the server version carrying our own opId is recognised however many edits followed: no conflict, no revert', async () => {
    const c = client({ strategy })
    await online(c)
    server.fail({ kind: 'lose-answer' })
    await edit(c, 'e1')
    await until(() => record('doc')?.version === 1 && !sync(c).status.flaskConnected, 'e1 applied, its answer lost')
    server.down()
    for (let i = 2; i <= 7; i++) await edit(c, `e${i}`)
    server.up()
    await c.store.dispatch(checkFlaskConnection())
    await settled(c)
    expect(c.conflicts).toEqual([])
    expect(sync(c).conflicts).toEqual([])
    expect(nameOf(record('doc')?.value)).toBe('e7')
    expect(localName(c, 'doc')).toBe('e7')
    // e1 once (its replay was a duplicate), then e7: the edits in between coalesced.
    expect(history().map((r) => nameOf(r.value))).toEqual(['e1', 'e7'])
  })
})

test('finding 2: under server-wins, a conflict while a newer local edit is committed never pushes the server value back', async () => {
  const c = client({ strategy: 'server-wins' })
  await online(c)
  await overwrittenElsewhere(c)
  let armed = true
  msw.use(
    http.post(`${BASE_URL}/sync/push`, async () => {
      if (armed) {
        armed = false
        await edit(c, 'b2') // committed while b1's push is on the wire
      }
      return undefined
    }),
  )
  await edit(c, 'b1')
  await until(() => c.conflicts.length === 1, 'the conflict')
  await settled(c)
  // The server's version won over everything the decision saw; nothing of ours was applied,
  // and in particular no copy of the server's own value under our opId.
  expect(history().map((r) => [r.version, nameOf(r.value), r.opId === 'other-device'])).toEqual([
    [1, 'v1', false],
    [2, 'theirs', true],
  ])
  expect(localName(c, 'doc')).toBe('theirs')
  // Another device's edit based on the real v2 is not lost to a phantom v3.
  expect(server.model.writeItem('PUT', 'files', 'doc', { opId: 'a3', value: { id: 'doc', name: 'a3' }, baseVersion: 2, clientTime: 0 }).status).toBe(200)
})

test('finding 3: one client typing fast applies every value at most once, under its own opId', async () => {
  const c = client({ files: { debounceMs: 10 } })
  await online(c)
  let seed = 7
  const random = (): number => (seed = (seed * 16807) % 2147483647) / 2147483647
  for (let i = 1; i <= 400; i++) {
    c.store.dispatch(saveFile({ id: 'doc', name: `t${i}` }))
    await new Promise((resolve) => setTimeout(resolve, Math.floor(random() * 14)))
  }
  await c.persistence.flush()
  await settled(c)
  expect(appliedTwice()).toEqual([])
  expect(nameOf(record('doc')?.value)).toBe('t400')
})

test("finding 3: a newer write committing just as a push starts is never sent under the older op's opId", async () => {
  const factory = new IDBFactory()
  let armed = false
  let c: Client | null = null
  /** The moment a push starts: the first read of the slice's store (where v1 read values) or the push request. */
  const commitNewer = async (): Promise<void> => {
    if (!armed || !c) return
    armed = false
    await edit(c, 'e2')
  }
  const inner = createIdbStore({ dbName: 'synced', openTimeoutMs: 2000, factory, durability: 'default' })
  const storage: LocalStore = {
    ...withCommit(inner, (ops) => inner.commit(ops)),
    async getMany(store, keys) {
      if (store === 'files') await commitNewer()
      return inner.getMany(store, keys)
    },
  }
  c = client({ factory, storage })
  msw.use(
    http.post(`${BASE_URL}/sync/push`, async () => {
      await commitNewer()
      return undefined
    }),
  )
  await online(c)
  armed = true
  await edit(c, 'e1')
  await until(() => !armed, 'the newer write')
  await settled(c)
  expect(appliedTwice()).toEqual([])
  expect(history().map((r) => nameOf(r.value))).toEqual(['e1', 'e2'])
})

test('finding 4: after dispose() resolved, an in-flight pull writes nothing and a new instance keeps what it committed', async () => {
  const factory = new IDBFactory()
  const first = client({ factory, remote: { connectOnStart: false } })
  await first.persistence.whenHydrated()
  server.model.writeItem('PUT', 'files', 'x', { opId: 'other', value: { id: 'x', name: 'from the server' }, baseVersion: null, clientTime: 0 })
  let release!: () => void
  const held = new Promise<void>((resolve) => (release = resolve))
  let asked = false
  msw.use(
    http.get(`${BASE_URL}/sync/changes`, async () => {
      asked = true
      await held
      return undefined
    }),
  )
  const pulling = first.store.dispatch(pullFlaskChanges())
  await until(() => asked, 'the pull on the wire')
  await first.persistence.dispose()
  forget(first.persistence)
  const second = client({ factory, remote: { connectOnStart: false } })
  await second.persistence.whenHydrated()
  await edit(second, 'mine', 'x')
  release()
  await pulling
  await new Promise((resolve) => setTimeout(resolve, 50))
  expect((await readStore(factory, 'files', 'synced')).get('x')).toEqual({ id: 'x', name: 'mine' })
  expect((await readStore(factory, '__ris_meta', 'synced')).get('__cursor')).toBeUndefined()
  expect(first.store.getState().files.entities.x).toBeUndefined()
})

test('finding 5: across tabs, a pull in one tab meets the edit another tab just committed as a conflict, never overwriting it', async () => {
  const factory = new IDBFactory()
  const leader = client({ factory, strategy: 'client-wins', remote: { connectOnStart: false } })
  const follower = client({ factory, strategy: 'client-wins', remote: { connectOnStart: false } })
  await Promise.all([leader.persistence.whenHydrated(), follower.persistence.whenHydrated()])
  await leader.store.dispatch(pullFlaskChanges())
  server.model.writeItem('PUT', 'files', 'k', { opId: 'other-device', value: { id: 'k', name: 'theirs' }, baseVersion: null, clientTime: 0 })
  let armed = true
  msw.use(
    http.get(`${BASE_URL}/sync/changes`, async () => {
      if (armed) {
        armed = false
        await edit(follower, 'follower edit', 'k') // committed while the leader's pull is on the wire
      }
      return undefined
    }),
  )
  await leader.store.dispatch(pullFlaskChanges())
  expect(leader.conflicts.map((x) => [x.key, x.phase, x.resolution])).toEqual([['files:k', 'pull', 'client']])
  expect((await readStore(factory, 'files', 'synced')).get('k')).toEqual({ id: 'k', name: 'follower edit' })
  await leader.store.dispatch(checkFlaskConnection())
  await settled(leader)
  expect(nameOf(record('k')?.value)).toBe('follower edit')
  expect(appliedTwice()).toEqual([])
})

test('finding 6: a custom merge is written and pushed even when a newer local change still waits in the debounce queue', async () => {
  const merge: ConflictStrategy = ({ local, server: remote }) => ({ id: 'doc', name: `${nameOf(remote)}+${nameOf(local)}` })
  const c = client({ strategy: merge, files: { debounceMs: 300 } })
  await online(c)
  await overwrittenElsewhere(c)
  let armed = true
  msw.use(
    http.post(`${BASE_URL}/sync/push`, () => {
      if (armed) {
        armed = false
        c.store.dispatch(saveFile({ id: 'doc', name: 'newer' })) // queued, not committed
      }
      return undefined
    }),
  )
  await edit(c, 'mine')
  await until(() => c.conflicts.length === 1, 'the conflict')
  expect(c.conflicts[0]).toMatchObject({ resolution: 'merged' })
  await until(() => history().some((r) => nameOf(r.value) === 'theirs+mine'), 'the merged value on the server')
  await c.persistence.flush()
  await settled(c)
  expect(history().map((r) => nameOf(r.value))).toEqual(['v1', 'theirs', 'theirs+mine', 'newer'])
  expect(localName(c, 'doc')).toBe('newer')
})

test('finding 7: a backward jump of the wall clock does not hold back a debounced write', async () => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date', 'performance'] })
  try {
    const written: QueueEntry[][] = []
    const queue = createOperationQueue({
      debounceFor: () => 300,
      batchSizeFor: () => 100,
      canWrite: () => true,
      write: async (batch) => {
        written.push([...batch])
        return { rejected: [] }
      },
      onBatch: () => undefined,
      retry: { baseMs: 10, maxMs: 100 },
    })
    queue.enqueue('files', 'a', 'put', { id: 'a' })
    vi.setSystemTime(Date.now() - 3_600_000) // the device clock goes back an hour
    await vi.advanceTimersByTimeAsync(400)
    expect(written.map((b) => b.map((e) => e.key))).toEqual([['files:a']])
    queue.dispose()
  } finally {
    vi.useRealTimers()
  }
})

test('finding 8: an id that is not well-formed UTF-16 is refused at once, and the items behind it still sync', async () => {
  const c = client()
  await online(c)
  c.store.dispatch(saveFile({ id: '\ud83d', name: 'half an emoji' }))
  c.store.dispatch(saveFile({ id: 'good', name: 'G' }))
  await c.persistence.flush()
  await settled(c)
  expect(c.errors.some((e) => isInvalidItemError(e) && e.slice === 'files')).toBe(true)
  expect(server.model.records().map((r) => r.id)).toEqual(['good'])
  expect(sync(c).deadLetters).toEqual([])
})

test('finding 12: a server with a new epoch (wiped, replaced, restored) is pulled in full instead of skipped by a cursor ahead of it', async () => {
  const c = client()
  await online(c)
  for (const id of ['a', 'b', 'c']) await edit(c, id, id)
  await settled(c)
  await c.store.dispatch(pullFlaskChanges())
  // The server is replaced by an empty database; another device writes there first.
  server.reset()
  server.model.writeItem('PUT', 'files', 'z', { opId: 'other', value: { id: 'z', name: 'after the restore' }, baseVersion: null, clientTime: 0 })
  await c.store.dispatch(checkFlaskConnection())
  await c.store.dispatch(pullFlaskChanges())
  // A cursor-based pull from the old cursor (3) would have skipped z (seq 1).
  expect(localName(c, 'z')).toBe('after the restore')
  expect((await readStore(c.factory, '__ris_meta', 'synced')).get('__cursor')).toMatchObject({ epoch: server.model.epoch })
})

test('finding 12: a cursor ahead of the feed (410 cursor_ahead: restored with the same epoch) starts a full pull', async () => {
  const c = client()
  await online(c)
  await edit(c, 'kept', 'a')
  await settled(c)
  server.model.writeItem('PUT', 'files', 'late', { opId: 'other', value: { id: 'late', name: 'L' }, baseVersion: null, clientTime: 0 })
  await c.store.dispatch(pullFlaskChanges())
  expect(localName(c, 'late')).toBe('L')
  let once = true
  msw.use(
    http.get(`${BASE_URL}/sync/changes`, () => {
      if (!once) return undefined
      once = false
      return new Response(JSON.stringify({ error: 'cursor_ahead', message: 'since is ahead of the feed', epoch: server.model.epoch }), {
        status: 410,
        headers: { 'content-type': 'application/json' },
      })
    }),
  )
  const pulled = await c.store.dispatch(pullFlaskChanges())
  expect(pulled.type).toBe('redux-idb-sync/pullFlaskChanges/fulfilled')
  expect(server.requests.pull).toBeGreaterThanOrEqual(1)
  expect(localName(c, 'late')).toBe('L')
})

test('finding 13: one depth rule, a primitive leaf included: depth 100 syncs, 101 is refused before it reaches the outbox', async () => {
  const c = client()
  await online(c)
  const nest = (levels: number): unknown => {
    let value: unknown = 'leaf'
    for (let i = 0; i < levels; i++) value = { n: value }
    return value
  }
  // The item is one level deeper than its `body`: 100 and 101 steps to the leaf.
  c.store.dispatch(saveFile({ id: 'ok', name: 'ok', body: nest(99) }))
  c.store.dispatch(saveFile({ id: 'deep', name: 'deep', body: nest(100) }))
  await expect(c.persistence.flush()).rejects.toThrow(/nested deeper than maxDepth/)
  await settled(c)
  expect(c.errors.filter(isNonSerializableError).map((e) => e.key)).toEqual(['files:deep'])
  expect(server.model.records().map((r) => r.id)).toEqual(['ok'])
  expect(sync(c).deadLetters).toEqual([])
})

test('finding 14: an array slice holding ids 1 and "1" reports the second as an InvalidItemError instead of dropping one silently', async () => {
  const c = client()
  await online(c)
  c.store.dispatch(addTodo({ id: 1, title: 'number' }))
  // A string id in a slice of numbers, as a plain-JS caller or a parsed payload may produce.
  c.store.dispatch(addTodo({ id: '1' as unknown as number, title: 'string' }))
  await c.persistence.flush()
  expect(c.errors.filter(isInvalidItemError).map((e) => e.message)).toEqual([expect.stringContaining('cannot be told from')])
  const stored = await readStore(c.factory, 'todos', 'synced')
  expect([...stored.entries()]).toEqual([[1, { id: 1, title: 'number' }]])
})

test('finding 15: last-write-wins compares the time of the edit, not of its commit', async () => {
  let clock = 1_000_000
  const c = client({ strategy: 'last-write-wins', files: { debounceMs: 200 }, remote: { now: () => clock } })
  await online(c)
  await overwrittenElsewhere(c)
  await c.store.dispatch(pullFlaskChanges())
  // Our edit is made at t; another device writes at t + 1 s; ours commits (debounced) later still.
  c.store.dispatch(saveFile({ id: 'doc', name: 'earlier edit' }))
  await new Promise((resolve) => setTimeout(resolve, 0)) // the change is observed at the end of its tick
  // Times are on the server's clock: the device clock plus the offset health checks measured.
  const t = clock + c.persistence.sync!.clockOffsetMs
  clock += 1000
  expect(
    server.model.writeItem('PUT', 'files', 'doc', { opId: 'later-device', value: { id: 'doc', name: 'later write' }, baseVersion: 2, clientTime: t + 1000 })
      .status,
  ).toBe(200)
  clock += 5000
  await c.persistence.flush()
  await until(() => c.conflicts.length === 1, 'the conflict')
  expect(c.conflicts[0]).toMatchObject({ strategy: 'last-write-wins', resolution: 'server' })
  await settled(c)
  expect(nameOf(record('doc')?.value)).toBe('later write')
  expect(localName(c, 'doc')).toBe('later write')
})

test('an edit dispatched while pulled data is being applied (not yet diffed) is kept and pushed, never replaced in the state', async () => {
  const c = client({ strategy: 'client-wins', remote: { connectOnStart: false } })
  await c.persistence.whenHydrated()
  // One page: a todo first, then the file the app is about to edit.
  server.model.writeItem('PUT', 'todos', '1', { opId: 'other-1', value: { id: 1, title: 'remote todo' }, baseVersion: null, clientTime: 0 })
  server.model.writeItem('PUT', 'files', 'k', { opId: 'other-2', value: { id: 'k', name: 'theirs' }, baseVersion: null, clientTime: 0 })
  let edited = false
  // A subscriber reacts to the pulled todo by editing the file, synchronously, while the same
  // pull is still applying its page (the file's record comes next).
  const unsubscribe = c.store.subscribe(() => {
    if (edited || c.store.getState().todos.items.length === 0) return
    edited = true
    c.store.dispatch(saveFile({ id: 'k', name: 'mine' }))
  })
  await c.store.dispatch(pullFlaskChanges())
  unsubscribe()
  expect(edited).toBe(true)
  expect(localName(c, 'k')).toBe('mine')
  await c.persistence.flush()
  await c.store.dispatch(checkFlaskConnection())
  await settled(c)
  expect(nameOf(record('k')?.value)).toBe('mine')
})

test("a row committed while an older transaction's effects are still on their way to memory is pushed all the same", async () => {
  const factory = new IDBFactory()
  let c: Client | null = null
  let armed = false
  const inner = createIdbStore({ dbName: 'synced', openTimeoutMs: 2000, factory, durability: 'default' })
  // The acknowledgement's transaction commits, and before the engine hears back a local edit of
  // the same key commits too: the engine then applies the older transaction's effects last.
  const storage: LocalStore = {
    ...withCommit(inner, (ops) => inner.commit(ops)),
    async transact(stores, work) {
      let acknowledges = false
      const result = await inner.transact(stores, (tx) =>
        work({
          get: (store, key) => tx.get(store, key),
          put(store, key, value, ref) {
            if (store === '__ris_versions') acknowledges = true
            tx.put(store, key, value, ref)
          },
          delete: (store, key) => tx.delete(store, key),
        }),
      )
      if (armed && acknowledges && c) {
        armed = false
        await edit(c, 'second')
      }
      return result
    },
  }
  c = client({ factory, storage })
  await online(c)
  armed = true
  await edit(c, 'first')
  await until(() => !armed, 'the second edit')
  // Only the background push runs: no sync thunk re-reads the outbox.
  await until(() => nameOf(record('doc')?.value) === 'second', 'the second edit on the server', 5000)
  await settled(c)
})
