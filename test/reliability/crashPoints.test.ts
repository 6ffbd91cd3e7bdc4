// Crash points of the write and push path (docs/reliability.md, "Crash points").
//
// Each test drives one client to a precise point and kills "the process" there: the storage it
// holds freezes (every call it makes from then on never returns, so nothing it does afterwards
// reaches IndexedDB), and the instance is dropped with `dispose({ flush: false })`, which writes
// nothing. Then a new store + middleware opens the SAME fake-indexeddb database (same
// IDBFactory, same dbName), and the test checks what survived, exactly what was lost, and that
// the server applied every operation exactly once.
//
// The server is the in-memory mock of `src/testing` behind msw. Its model's `push` and `changes`
// are wrapped to keep a ledger (every opId it was sent and what it answered for it) and to let a
// test kill the client at the moment the server has applied a push, or is serving a pull page.
//
// Deterministic: fake setTimeout/Date, opIds `op-1`, `op-2`, ... (crypto.randomUUID stubbed),
// Math.random seeded (backoff jitter), fixed client ids. No timing assertions: every wait is on
// a condition, in fake time.
import { configureStore } from '@reduxjs/toolkit'
import { IDBFactory } from 'fake-indexeddb'
import { setupServer } from 'msw/node'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test, vi } from 'vitest'
import {
  createIdbStore,
  createPersistenceMiddleware,
  flushPersistence,
  isSyncError,
  pullFlaskChanges,
  syncReducer,
  type LocalStore,
  type PersistenceMiddleware,
  type SlicePersistenceConfig,
  type StorageOp,
  type SyncConflict,
  type SyncError,
} from '../../src'
import { createRemote, type OutboxRow, type RemoteOptions } from '../../src/remote'
import { createMockSyncServer } from '../../src/testing'
import { readStore } from '../support/instrumentedStore'
import { addItem, filesSlice, removeItem, updateItem, type FileItem } from '../support/store'

const BASE = 'http://crash.test/api'
const DB = 'crash'
const DEBOUNCE_MS = 100

// ------------------------------------------------------------------ the server and its ledger

const server = createMockSyncServer({ baseUrl: BASE })
const msw = setupServer(...server.handlers)

/** Every operation the server was sent, in order, with what it answered. */
const ledger: Array<{ clientId: string; opId: string; status: string }> = []
/** Called after the server applied a push request, before its answer leaves. */
let afterPush: (() => void) | null = null
/** Called when the server is asked for a page of changes. */
let onChanges: ((since: string | null) => void) | null = null

const realPush = server.model.push
server.model.push = (body) => {
  const answer = realPush(body)
  if (answer.status === 200) {
    const { clientId } = body as { clientId: string }
    for (const r of (answer.body as { results: Array<{ opId: string; status: string }> }).results) {
      ledger.push({ clientId, opId: r.opId, status: r.status })
    }
  }
  afterPush?.()
  return answer
}
const realChanges = server.model.changes
server.model.changes = (since, limit, collections) => {
  onChanges?.(since)
  return realChanges(since, limit, collections)
}

/** What the server answered, in order, for one opId. */
const statusesOf = (opId: string): string[] => ledger.filter((e) => e.opId === opId).map((e) => e.status)
const pushedBy = (clientId: string): string[] => ledger.filter((e) => e.clientId === clientId).map((e) => e.opId)
const serverLive = (): Record<string, unknown> =>
  Object.fromEntries(
    server.model
      .records()
      .filter((r) => r.collection === 'files' && !r.deleted)
      .map((r) => [r.id, r.value]),
  )
const serverRecord = (id: string) => server.model.records().find((r) => r.collection === 'files' && r.id === id)

/** Another device writes straight into the server's model (no HTTP, so no injected fault is used up). */
function otherDevice(items: FileItem[]): void {
  const answer = server.model.push({
    clientId: 'other-device',
    ops: items.map((value) => ({ opId: `other-${value.id}`, collection: 'files', id: value.id, type: 'put', value, baseVersion: null, clientTime: 1 })),
  })
  expect(answer.status).toBe(200)
}

// ------------------------------------------------------------------ a storage that can die

/** A put IndexedDB refuses synchronously (NaN is not a valid key): the library aborts the transaction. */
const POISON: StorageOp = { type: 'put', store: 'files', key: Number.NaN, value: null }
/** `store:key` of an op, for naming what a transaction wrote. */
const where = (op: StorageOp): string => `${op.store}:${op.type === 'clear' ? '*' : String(op.key)}`

interface CrashableStore extends LocalStore {
  /**
   * The process dies at the first commit `match` accepts. `'abort'`: the transaction is really
   * aborted in IndexedDB (its writes are issued, then a poisoned put makes the library abort it,
   * so everything it issued is rolled back); `'after'`: it commits. Either way the process is
   * gone right there: the commit never returns to the library. `'fail'`: aborted like
   * `'abort'`, but the process lives on and the library gets the error.
   */
  crashAt(match: (ops: readonly StorageOp[]) => boolean, mode: 'abort' | 'after' | 'fail'): void
  /** The process dies now: every storage call from here on never returns. */
  kill(): void
  readonly dead: boolean
  /** The ops of the commit the process died in. */
  readonly diedIn: readonly StorageOp[] | null
}

function crashableStore(factory: IDBFactory): CrashableStore {
  const inner = createIdbStore({ dbName: DB, openTimeoutMs: 2000, factory, durability: 'default' })
  let dead = false
  let diedIn: readonly StorageOp[] | null = null
  let armed: { match: (ops: readonly StorageOp[]) => boolean; mode: 'abort' | 'after' | 'fail' } | null = null
  const frozen = <T>(): Promise<T> => new Promise<T>(() => undefined)
  const guard = <T>(work: () => Promise<T>): Promise<T> => (dead ? frozen<T>() : work())
  const kill = (): void => {
    dead = true
    inner.close()
  }
  return {
    kind: inner.kind,
    persistent: inner.persistent,
    ensureStores: (names) => guard(() => inner.ensureStores(names)),
    readAll: (store) => guard(() => inner.readAll(store)),
    get: (store, key) => guard(() => inner.get(store, key)),
    getMany: (store, keys) => guard(() => inner.getMany(store, keys)),
    close: () => inner.close(),
    async commit(ops) {
      if (dead) return frozen()
      const crash = armed?.match(ops) ? armed : null
      if (!crash) return inner.commit(ops)
      armed = null
      if (crash.mode !== 'fail') diedIn = [...ops]
      if (crash.mode === 'after') {
        await inner.commit(ops)
      } else {
        const failure = await inner.commit([...ops, POISON]).then(
          () => null,
          (error: unknown) => error,
        )
        // The injected abort must really have happened, or the test would prove nothing.
        expect(isSyncError(failure), 'the poisoned transaction aborted').toBe(true)
        if (crash.mode === 'fail') throw failure
      }
      kill()
      return frozen()
    },
    crashAt(match, mode) {
      armed = { match, mode }
    },
    kill,
    get dead() {
      return dead
    },
    get diedIn() {
      return diedIn
    },
  }
}

// ------------------------------------------------------------------ clients

interface Client {
  readonly clientId: string
  readonly persistence: PersistenceMiddleware
  readonly store: ReturnType<typeof makeStore>
  readonly storage: CrashableStore
  readonly errors: SyncError[]
  readonly conflicts: SyncConflict[]
}

function makeStore(persistence: PersistenceMiddleware) {
  return configureStore({
    reducer: { files: filesSlice.reducer, sync: syncReducer },
    middleware: (g) => g().concat(persistence),
    enhancers: (g) => g().concat(persistence.enhancer),
  })
}

const live: PersistenceMiddleware[] = []
let generation = 0

/** A store + middleware on the test's database; each one is a new "process" with its own client id. */
function open(factory: IDBFactory, remote: Partial<RemoteOptions> = {}, files: SlicePersistenceConfig = {}): Client {
  const clientId = `tab-${++generation}`
  const storage = crashableStore(factory)
  const errors: SyncError[] = []
  const conflicts: SyncConflict[] = []
  const persistence = createPersistenceMiddleware({
    dbName: DB,
    storage,
    onError: (e) => errors.push(e),
    retry: { initialDelayMs: 50, maxDelayMs: 200 },
    slices: { files: { debounceMs: DEBOUNCE_MS, batchSize: 10, ...files } },
    remote: createRemote({
      baseUrl: BASE,
      clientId,
      timeoutMs: 1000,
      retry: { initialDelayMs: 50, maxDelayMs: 400 },
      onConflict: (c) => conflicts.push(c),
      ...remote,
    }),
  })
  live.push(persistence)
  return { clientId, persistence, store: makeStore(persistence), storage, errors, conflicts }
}

/**
 * The process dies: its storage freezes and the instance is dropped without writing anything.
 * Its dispose is not awaited: a dead process waits for nothing, and work it had under way stays
 * frozen in the dead storage.
 */
async function crash(c: Client): Promise<void> {
  c.storage.kill()
  void c.persistence.dispose({ flush: false })
  live.splice(live.indexOf(c.persistence), 1)
  await settle()
}

// ------------------------------------------------------------------ time

/** Lets IndexedDB (setImmediate) and fetch settle without moving the fake clock. */
async function settle(rounds = 30): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((r) => setImmediate(r))
}
async function advance(ms: number): Promise<void> {
  await vi.advanceTimersByTimeAsync(ms)
  await settle()
}
/** Moves fake time in 10 ms steps until `check` holds. */
async function waitFor(check: () => boolean, what: string, limitMs = 10_000): Promise<void> {
  for (let elapsed = 0; elapsed <= limitMs; elapsed += 10) {
    if (check()) return
    await advance(10)
  }
  throw new Error(`${what}: not within ${limitMs} ms of fake time`)
}
/** Awaits `work` while moving fake time, so the timers it waits for can fire. */
async function run<T>(work: Promise<T>, what: string): Promise<T> {
  let done = false
  const result = work.finally(() => {
    done = true
  })
  await waitFor(() => done, what)
  return result
}

async function ready(c: Client, connect = true): Promise<void> {
  await run(c.persistence.whenHydrated(), 'hydration')
  if (connect) await waitFor(() => c.store.getState().sync.status.flaskConnected, 'the connection')
}

// ------------------------------------------------------------------ reading state

const local = (c: Client): Record<string, unknown> => {
  const { ids, entities } = c.store.getState().files
  return Object.fromEntries(ids.map((id) => [id, entities[id]]))
}
const outboxDepth = (c: Client): number => c.store.getState().sync.outboxDepth
let factory: IDBFactory
const stored = async (store: string): Promise<Record<string, unknown>> => Object.fromEntries(await readStore(factory, store, DB))
const storedOutbox = async (): Promise<Record<string, OutboxRow>> => (await stored('__ris_outbox')) as Record<string, OutboxRow>
/** The opId a row's push sends (its first op). */
const firstOpId = (row: OutboxRow | undefined): string | undefined => row?.ops[0]?.opId

/**
 * The end state every crash must reach: after a flush IndexedDB equals the Redux state, the
 * queue and the outbox (memory and IndexedDB) are empty, the server equals the Redux state,
 * nothing was dead-lettered, and the server applied no opId twice.
 */
async function expectConverged(c: Client): Promise<void> {
  await run(c.persistence.flush(), 'the flush')
  const state = local(c)
  expect(await stored('files'), 'IndexedDB equals the Redux state').toEqual(state)
  expect(c.persistence.getStatus().pendingOperations, 'queue empty').toBe(0)
  expect(outboxDepth(c), 'outbox empty').toBe(0)
  expect(await stored('__ris_outbox'), 'stored outbox empty').toEqual({})
  expect(serverLive(), 'the server equals the Redux state').toEqual(state)
  expect(c.store.getState().sync.deadLetters).toEqual([])
  const applied = ledger.filter((e) => e.status === 'applied').map((e) => e.opId)
  expect(new Set(applied).size, 'no opId applied twice').toBe(applied.length)
  expect(server.model.appliedOps, 'the ledger saw every applied operation').toBe(applied.length)
}

// ------------------------------------------------------------------ lifecycle

/** mulberry32: seeded jitter, so every run takes the same path. */
function seeded(seed: number): () => number {
  let a = seed
  return () => {
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

beforeAll(() => msw.listen({ onUnhandledRequest: 'error' }))
beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date', 'performance'] })
  let n = 0
  vi.spyOn(globalThis.crypto, 'randomUUID').mockImplementation(() => `op-${++n}` as ReturnType<typeof crypto.randomUUID>)
  vi.spyOn(Math, 'random').mockImplementation(seeded(42))
  factory = new IDBFactory()
  generation = 0
})
afterEach(async () => {
  for (const p of live.splice(0)) await p.dispose({ flush: false })
  vi.useRealTimers()
  afterPush = null
  onChanges = null
  ledger.length = 0
  server.reset()
  msw.resetHandlers()
})
afterAll(() => msw.close())

const A1 = { id: 'a', name: 'A1' }
const B1 = { id: 'b', name: 'B1' }
const C1 = { id: 'c', name: 'C1' }
const E1 = { id: 'e', name: 'E1' }

// ------------------------------------------------------------------ 1. before the commit

describe('crash point 1: before the IndexedDB commit', () => {
  test('only the edits still inside the debounce window are lost; everything committed before survives and is pushed once', async () => {
    const first = open(factory)
    await ready(first)
    first.store.dispatch(addItem(A1))
    first.store.dispatch(addItem(B1))
    first.store.dispatch(addItem(C1))
    await waitFor(() => outboxDepth(first) === 0 && server.model.appliedOps === 3, 'a, b, c committed and pushed')

    // e changes at t, a/b/d at t+60; the process dies at t+120: e is past its 100 ms debounce
    // (committed), the other three are still inside theirs.
    first.store.dispatch(addItem(E1))
    await advance(60)
    first.store.dispatch(updateItem({ id: 'a', name: 'A2' }))
    first.store.dispatch(removeItem('b'))
    first.store.dispatch(addItem({ id: 'd', name: 'D1' }))
    await advance(60)
    expect(await stored('files'), 'e committed').toEqual({ a: A1, b: B1, c: C1, e: E1 })
    expect(first.persistence.getStatus().pendingOperations, 'a, b, d still in the debounce window').toBe(3)
    await crash(first)

    // Exactly the three debounced edits are gone (a→A2, delete b, add d); nothing committed is.
    expect(await stored('files')).toEqual({ a: A1, b: B1, c: C1, e: E1 })
    const second = open(factory)
    await ready(second)
    expect(local(second)).toEqual({ a: A1, b: B1, c: C1, e: E1 })
    await waitFor(() => outboxDepth(second) === 0, 'the outbox to drain')
    await expectConverged(second)
    // The server never saw the lost edits, and holds each committed operation exactly once.
    expect(server.model.appliedOps).toBe(4)
    expect(ledger.map((e) => e.status)).toEqual(['applied', 'applied', 'applied', 'applied'])
    expect(serverRecord('a')).toMatchObject({ version: 1, value: A1 })
    expect(serverRecord('b')).toMatchObject({ version: 1, deleted: false })
    expect(serverRecord('d')).toBeUndefined()
    expect(second.conflicts).toEqual([])
  })

  test('flushPersistence() before the crash (what a page-hide handler does) leaves nothing to lose', async () => {
    const first = open(factory)
    await ready(first)
    first.store.dispatch(addItem(A1))
    first.store.dispatch(addItem(B1))
    await waitFor(() => outboxDepth(first) === 0 && server.model.appliedOps === 2, 'a, b pushed')
    server.down() // the process dies before it can push the flushed edits
    first.store.dispatch(updateItem({ id: 'a', name: 'A2' }))
    first.store.dispatch(removeItem('b'))
    first.store.dispatch(addItem({ id: 'd', name: 'D1' }))
    await flushPersistence()
    await crash(first)

    const expected = { a: { id: 'a', name: 'A2' }, d: { id: 'd', name: 'D1' } }
    expect(await stored('files')).toEqual(expected)
    expect(Object.keys(await storedOutbox()).sort()).toEqual(['files:a', 'files:b', 'files:d'])
    server.up()
    const second = open(factory)
    await ready(second)
    expect(local(second)).toEqual(expected)
    await waitFor(() => outboxDepth(second) === 0, 'the outbox to drain')
    await expectConverged(second)
    expect(server.model.appliedOps).toBe(5)
    expect(serverRecord('b')).toMatchObject({ version: 2, deleted: true })
  })

  test('a commit whose transaction aborts, then the process dies: neither the items nor their outbox entries are written', async () => {
    const first = open(factory)
    await ready(first)
    first.store.dispatch(addItem(A1))
    await waitFor(() => outboxDepth(first) === 0 && server.model.appliedOps === 1, 'a pushed')
    first.storage.crashAt((ops) => ops.some((op) => op.store === 'files'), 'abort')
    first.store.dispatch(updateItem({ id: 'a', name: 'A2' }))
    first.store.dispatch(addItem(C1))
    await waitFor(() => first.storage.dead, 'the crash')
    // The aborted transaction carried both halves: the items and their outbox entries.
    expect(first.storage.diedIn!.map(where).sort()).toEqual(['__ris_outbox:files:a', '__ris_outbox:files:c', 'files:a', 'files:c'])
    await crash(first)

    expect(await stored('files')).toEqual({ a: A1 })
    expect(await stored('__ris_outbox')).toEqual({})
    const second = open(factory)
    await ready(second)
    expect(local(second)).toEqual({ a: A1 })
    await expectConverged(second)
    expect(server.model.appliedOps).toBe(1)
    expect(pushedBy('tab-2')).toEqual([])
  })
})

// ------------------------------------------------------------------ 2. after the commit, before the push

describe('crash point 2: after the commit, before the push', () => {
  test('the outbox holds the operations; the next process pushes each exactly once', async () => {
    const first = open(factory)
    await ready(first)
    first.store.dispatch(addItem({ id: 'x', name: 'X1' }))
    first.store.dispatch(addItem({ id: 'y', name: 'Y1' }))
    await waitFor(() => outboxDepth(first) === 0 && server.model.appliedOps === 2, 'x, y pushed')

    first.storage.crashAt((ops) => ops.some((op) => op.store === 'files'), 'after')
    first.store.dispatch(addItem({ id: 'n', name: 'N1' }))
    first.store.dispatch(updateItem({ id: 'x', name: 'X2' }))
    first.store.dispatch(removeItem('y'))
    await waitFor(() => first.storage.dead, 'the crash')
    await crash(first)

    const expected = { n: { id: 'n', name: 'N1' }, x: { id: 'x', name: 'X2' } }
    expect(await stored('files')).toEqual(expected)
    const outbox = await storedOutbox()
    // Each row holds its operation, value included.
    expect(Object.values(outbox).map((row) => [row.key, row.ops.map((op) => [op.type, op.value])])).toEqual([
      ['files:n', [['put', { id: 'n', name: 'N1' }]]],
      ['files:x', [['put', { id: 'x', name: 'X2' }]]],
      ['files:y', [['delete', undefined]]],
    ])
    // In outbox order (seq), which is the order they must reach the server in.
    const opIds = Object.values(outbox)
      .sort((l, r) => l.ops[0]!.seq - r.ops[0]!.seq)
      .map((row) => row.ops[0]!.opId)
    expect(
      ledger.filter((e) => opIds.includes(e.opId)),
      'nothing of it reached the server',
    ).toEqual([])

    const second = open(factory)
    await ready(second)
    expect(local(second)).toEqual(expected)
    await waitFor(() => outboxDepth(second) === 0, 'the outbox to drain')
    for (const opId of opIds) expect(statusesOf(opId), opId).toEqual(['applied'])
    expect(pushedBy('tab-2')).toEqual(opIds)
    expect(serverRecord('n')).toMatchObject({ version: 1, opId: firstOpId(outbox['files:n']) })
    expect(serverRecord('x')).toMatchObject({ version: 2, value: { id: 'x', name: 'X2' }, opId: firstOpId(outbox['files:x']) })
    expect(serverRecord('y')).toMatchObject({ version: 2, deleted: true, opId: firstOpId(outbox['files:y']) })
    expect(await stored('__ris_versions')).toEqual({ 'files:n': 1, 'files:x': 2, 'files:y': 2 })
    await expectConverged(second)
    expect(second.conflicts).toEqual([])
    // And never again: more time passes, no further push.
    const seen = ledger.length
    await advance(5000)
    expect(ledger.length).toBe(seen)
  })
})

// ------------------------------------------------------------------ 3. applied on the server, ack not stored

describe('crash point 3: the server applied the push, the acknowledgement is not stored', () => {
  async function pushAndDie(first: Client, how: 'answer lost' | 'ack aborted'): Promise<string[]> {
    if (how === 'answer lost') {
      server.fail({ kind: 'lose-answer' })
      afterPush = () => first.storage.kill() // dies while the answer is on its way
    } else {
      first.storage.crashAt((ops) => ops.some((op) => op.store === '__ris_versions'), 'abort')
    }
    first.store.dispatch(addItem({ id: 'p', name: 'P1' }))
    first.store.dispatch(addItem({ id: 'q', name: 'Q1' }))
    await waitFor(() => first.storage.dead, 'the crash')
    if (how === 'ack aborted') {
      expect(first.storage.diedIn!.map((op) => `${op.type} ${where(op)}`)).toEqual([
        'delete __ris_outbox:files:p',
        'put __ris_versions:files:p',
        'delete __ris_outbox:files:q',
        'put __ris_versions:files:q',
      ])
    }
    await crash(first)
    // The server has both; the client still has both in its outbox, under the same opIds.
    const outbox = await storedOutbox()
    const opIds = [firstOpId(outbox['files:p']), firstOpId(outbox['files:q'])]
    for (const opId of opIds) expect(statusesOf(opId!)).toEqual(['applied'])
    expect(server.model.appliedOps).toBe(2)
    expect(await stored('__ris_versions')).toEqual({})
    return opIds as string[]
  }

  /**
   * After the restart the client either pushes first (it replays the opIds; the server answers
   * `duplicate`) or pulls first (it meets its own writes in the change feed, recognises their
   * opIds, and settles the outbox without pushing).
   */
  async function restart(first: 'push' | 'pull'): Promise<Client> {
    const second = open(factory, first === 'pull' ? { connectOnStart: false } : {})
    await ready(second, first === 'push')
    if (first === 'pull') {
      const pulled = await run(second.store.dispatch(pullFlaskChanges()), 'the pull')
      expect(pulled.type).toBe('redux-idb-sync/pullFlaskChanges/fulfilled')
    }
    await waitFor(() => outboxDepth(second) === 0, 'the outbox to drain')
    return second
  }

  test.each([
    ['answer lost', 'push'],
    ['ack aborted', 'push'],
    ['answer lost', 'pull'],
    ['ack aborted', 'pull'],
  ] as const)('%s, the restart does a %s first: same opIds, recognised as already applied, nothing applied twice', async (how, move) => {
    const first = open(factory)
    await ready(first)
    const opIds = await pushAndDie(first, how)

    const second = await restart(move)
    if (move === 'push') {
      expect(pushedBy('tab-2')).toEqual(opIds)
      for (const opId of opIds) expect(statusesOf(opId), opId).toEqual(['applied', 'duplicate'])
    } else {
      expect(pushedBy('tab-2'), 'nothing to push again').toEqual([])
      for (const opId of opIds) expect(statusesOf(opId), opId).toEqual(['applied'])
    }
    expect(server.model.appliedOps).toBe(2)
    expect(serverRecord('p')).toMatchObject({ version: 1, opId: opIds[0] })
    expect(serverRecord('q')).toMatchObject({ version: 1, opId: opIds[1] })
    expect(await stored('__ris_versions')).toEqual({ 'files:p': 1, 'files:q': 1 })
    expect(local(second)).toEqual({ p: { id: 'p', name: 'P1' }, q: { id: 'q', name: 'Q1' } })
    await expectConverged(second)
    expect(second.conflicts, 'no false conflict').toEqual([])
    expect(second.store.getState().sync.conflicts).toEqual([])
  })

  test.each(['push', 'pull'] as const)(
    'an edit of the same key after the lost answer, the restart does a %s first: the client recognises its own earlier write, no false conflict',
    async (move) => {
      const first = open(factory, { retry: { initialDelayMs: 60_000, maxDelayMs: 60_000 } })
      await ready(first)
      server.fail({ kind: 'lose-answer' })
      first.store.dispatch(addItem({ id: 'p', name: 'P1' }))
      first.store.dispatch(addItem({ id: 'q', name: 'Q1' }))
      await waitFor(() => ledger.length === 2 && !first.store.getState().sync.status.flaskConnected, 'the lost answer')
      const [pOld, q] = ledger.map((e) => e.opId)
      server.down()
      first.store.dispatch(updateItem({ id: 'p', name: 'P2' }))
      await run(first.persistence.flush(), 'the flush')
      await crash(first)

      const outbox = await storedOutbox()
      // P1 may have been applied (its answer was lost), so it stays, as sent; P2 waits behind it.
      expect(outbox['files:p']!.ops.map((op) => [op.opId, op.sent, op.value])).toEqual([
        [pOld, true, { id: 'p', name: 'P1' }],
        [expect.any(String), false, { id: 'p', name: 'P2' }],
      ])
      const pNew = outbox['files:p']!.ops[1]!.opId
      expect(firstOpId(outbox['files:q'])).toBe(q)
      server.up()

      const second = await restart(move)
      if (move === 'push') {
        // P1 is replayed first and answered as a duplicate; P2 goes out on top of its version.
        expect(statusesOf(pOld!)).toEqual(['applied', 'duplicate'])
        expect(statusesOf(q!)).toEqual(['applied', 'duplicate'])
      } else {
        // The pull taught it the version its own P1 made: P1 is settled without a push.
        expect(statusesOf(pOld!)).toEqual(['applied'])
        expect(statusesOf(q!)).toEqual(['applied'])
      }
      // Either way P2 is pushed once, on top of P1's version, never as a conflict.
      expect(statusesOf(pNew)).toEqual(['applied'])
      expect(server.model.appliedOps).toBe(3)
      expect(serverRecord('p')).toMatchObject({ version: 2, value: { id: 'p', name: 'P2' }, opId: pNew })
      expect(await stored('__ris_versions')).toEqual({ 'files:p': 2, 'files:q': 1 })
      expect(local(second)).toEqual({ p: { id: 'p', name: 'P2' }, q: { id: 'q', name: 'Q1' } })
      await expectConverged(second)
      expect(second.conflicts, 'no false conflict').toEqual([])
      expect(second.store.getState().sync.conflicts).toEqual([])
    },
  )
})

// ------------------------------------------------------------------ 4. during a pull

describe('crash point 4: while a pull is applied', () => {
  const remote = [1, 2, 3, 4, 5].map((i) => ({ id: `r${i}`, name: `remote-${i}` }))
  const byId = (items: FileItem[]): Record<string, FileItem> => Object.fromEntries(items.map((i) => [i.id, i]))
  const MINE = { id: 'mine', name: 'M1' }
  const R4_LOCAL = { id: 'r4', name: 'local edit' }

  test.each(['page commit aborted', 'died between pages'] as const)(
    '%s: the cursor never passes unstored data; a re-pull converges and keeps local pending edits',
    async (how) => {
      // Pages of 2: [r1 r2] [r3 r4] [r5]. The process dies on the second page.
      const options = { connectOnStart: false, pullPageSize: 2 }
      const first = open(factory, options, { conflict: 'client-wins' })
      await ready(first, false)
      otherDevice(remote)
      // Local edits waiting in the outbox: one of a key the server does not have, one of a key
      // the other device also wrote (a real conflict, which client-wins settles for us).
      first.store.dispatch(addItem(MINE))
      first.store.dispatch(addItem(R4_LOCAL))
      await run(first.persistence.flush(), 'the flush')
      expect(Object.keys(await storedOutbox())).toEqual(['files:mine', 'files:r4'])

      if (how === 'page commit aborted') {
        // The commit that stores page 2's data (r3); the cursor must be in the same transaction.
        first.storage.crashAt((ops) => ops.some((op) => op.store === 'files' && op.type === 'put' && op.key === 'r3'), 'abort')
      } else {
        onChanges = (since) => {
          if (since === '2') first.storage.kill() // dies while the second page is on its way
        }
      }
      void first.store.dispatch(pullFlaskChanges())
      await waitFor(() => first.storage.dead, 'the crash')
      if (how === 'page commit aborted') {
        const cursorWrite = first.storage.diedIn!.find((op) => op.store === '__ris_meta')
        expect(cursorWrite, 'the cursor rode with its page').toMatchObject({ type: 'put', key: '__cursor', value: { cursor: '4' } })
      }
      await crash(first)

      // The cursor covers exactly the data stored with it: page 1, and the local edits untouched.
      const meta = await stored('__ris_meta')
      expect(meta.__cursor).toEqual({ cursor: '2', collections: ['files'], epoch: server.model.epoch })
      expect(await stored('files')).toEqual({ ...byId(remote.slice(0, 2)), mine: MINE, r4: R4_LOCAL })
      expect(await stored('__ris_versions')).toEqual({ 'files:r1': 1, 'files:r2': 1 })
      for (const record of server.model.records()) {
        if (record.seq > 2 || (await storedOutbox())[`files:${record.id}`]) continue
        expect((await stored('files'))[record.id], `${record.id} is covered by the cursor`).toEqual(record.value)
      }
      expect(pushedBy('tab-1'), 'the dead process pushed nothing').toEqual([])
      const outbox = await storedOutbox()

      const second = open(factory, options, { conflict: 'client-wins' })
      await ready(second, false)
      expect(local(second)).toEqual({ ...byId(remote.slice(0, 2)), mine: MINE, r4: R4_LOCAL })
      const pulled = await run(second.store.dispatch(pullFlaskChanges()), 'the re-pull')
      expect(pulled.type).toBe('redux-idb-sync/pullFlaskChanges/fulfilled')
      await waitFor(() => outboxDepth(second) === 0, 'the outbox to drain')

      const expected = { ...byId(remote), mine: MINE, r4: R4_LOCAL }
      expect(local(second), 'the local pending edits were not overwritten').toEqual(expected)
      // One conflict, the real one (the other device wrote r4), settled once; none for `mine`.
      expect(second.conflicts.map((c) => [c.key, c.resolution])).toEqual([['files:r4', 'client']])
      for (const key of ['files:mine', 'files:r4']) expect(statusesOf(firstOpId(outbox[key])!), key).toEqual(['applied'])
      expect(server.model.appliedOps).toBe(7)
      expect(serverRecord('r4')).toMatchObject({ version: 2, value: R4_LOCAL })
      // Pulling again only brings our own two writes back, which are skipped; the cursor reaches the end.
      await run(second.store.dispatch(pullFlaskChanges()), 'the second pull')
      expect((await stored('__ris_meta')).__cursor).toEqual({ cursor: '7', collections: ['files'], epoch: server.model.epoch })
      expect(await stored('__ris_versions')).toEqual({
        'files:r1': 1,
        'files:r2': 1,
        'files:r3': 1,
        'files:r4': 2,
        'files:r5': 1,
        'files:mine': 1,
      })
      await expectConverged(second)
      expect(second.conflicts).toHaveLength(1)
    },
  )

  test('the commit of a pulled page fails and the process lives on: the Redux state never shows what is not stored, the cursor stays, a re-pull converges', async () => {
    const c = open(factory, { connectOnStart: false, pullPageSize: 2 })
    await ready(c, false)
    otherDevice(remote.slice(0, 3)) // pages [r1 r2] [r3]
    c.storage.crashAt((ops) => ops.some((op) => op.store === 'files' && op.type === 'put' && op.key === 'r3'), 'fail')
    const failed = await run(c.store.dispatch(pullFlaskChanges()), 'the failing pull')
    expect(failed.type).toBe('redux-idb-sync/pullFlaskChanges/rejected')
    expect(c.storage.dead).toBe(false)
    expect((await stored('__ris_meta')).__cursor).toEqual({ cursor: '2', collections: ['files'], epoch: server.model.epoch })
    await run(c.persistence.flush(), 'the flush')
    // Page 1 is stored and shown; r3 is neither. Had the state kept r3, an edit of it would be
    // pushed with no base version and lose to the server as a (false) conflict.
    expect(await stored('files')).toEqual(byId(remote.slice(0, 2)))
    expect(local(c), 'IndexedDB equals the Redux state').toEqual(byId(remote.slice(0, 2)))

    const pulled = await run(c.store.dispatch(pullFlaskChanges()), 'the re-pull')
    expect(pulled.type).toBe('redux-idb-sync/pullFlaskChanges/fulfilled')
    expect(local(c)).toEqual(byId(remote.slice(0, 3)))
    c.store.dispatch(updateItem({ id: 'r3', name: 'edited' }))
    await waitFor(() => outboxDepth(c) === 0 && server.model.appliedOps === 4, 'the edit to be pushed')
    expect(serverRecord('r3')).toMatchObject({ version: 2, value: { id: 'r3', name: 'edited' } })
    await expectConverged(c)
    expect(c.conflicts).toEqual([])
  })
})
