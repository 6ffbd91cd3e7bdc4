// Model-based randomized test of the "nothing lost, nothing applied twice" promise. Each run is a
// random sequence of 50 to 200 steps: local edits, time, flushes, server faults (500, 503,
// network errors, timeouts, lost answers), token rotations (a 401, then a refresh), writes from
// another device (conflicts), edits the server refuses for good (rolled back), incremental
// pulls, IndexedDB transaction aborts and restarts, under
// a conflict strategy drawn per run (client-wins, server-wins or last-write-wins). Then the faults
// stop, the client converges, and the invariants are checked against a model of what must have won.
// docs/reliability.md ("Model-based randomized tests") lists the steps, weights and invariants.
//
// Runs: `npm run test:model` (100, in CI), `npm run test:soak` (1,000); FC_RUNS overrides both.
// Every run prints its seed. Replay a failure with FC_SEED=<seed> FC_PATH=<path> from the
// report; FC_NO_SHRINK=1 reports the first failing run without shrinking it (shrinking a long
// run can take minutes). FC_TRACE=1 prints every step and push.
import { configureStore, isDraft, type Middleware, type UnknownAction } from '@reduxjs/toolkit'
import fc from 'fast-check'
import { IDBFactory } from 'fake-indexeddb'
import { setupServer } from 'msw/node'
import { afterAll, beforeAll, expect, test, vi } from 'vitest'
import {
  TransactionAbortedError,
  createPersistenceMiddleware,
  pullFlaskChanges,
  rolledBack,
  syncReducer,
  syncToFlaskBulk,
  type PersistenceMiddleware,
} from '../../src'
import { createRemote } from '../../src/remote'
import { OUTBOX_STORE, type StorageOp } from '../../src/storage/types'
import type { OutboxRow } from '../../src/remote/outbox'
import { createMockSyncServer } from '../../src/testing'
import { instrumentedStore, readStore, type InstrumentedStore } from '../support/instrumentedStore'
import { filesSlice, removeItem, saveFile } from '../support/store'

const BASE = 'http://model.test/api'
const server = createMockSyncServer({ baseUrl: BASE })
const msw = setupServer(...server.handlers)
beforeAll(() => msw.listen({ onUnhandledRequest: 'error' }))
afterAll(() => msw.close())

const RUNS = Number(process.env.FC_RUNS ?? 100)
const SEED = Number(process.env.FC_SEED ?? Math.floor(Math.random() * 2 ** 31))
const TRACE = process.env.FC_TRACE === '1'
const KEYS = ['k0', 'k1', 'k2', 'k3', 'k4', 'k5']
const FILES = 'files'
/** Each run draws one conflict strategy for the slice; the model's rules depend on it. */
const STRATEGIES = ['client-wins', 'server-wins', 'last-write-wins'] as const
type Strategy = (typeof STRATEGIES)[number]

/**
 * What the server did with each pushed operation. The client may never learn it (lost answers),
 * so the test wraps the mock server's `model.push`, which its msw handler calls.
 */
interface PushResult {
  readonly opId: string | null
  readonly status: string
  readonly record?: { readonly id: string }
}
const pushResults: PushResult[] = []
/** Ids the patch tracker did not name, as verifyChangedIds reports them: there must be none. */
const trackerMisses: string[] = []
const countingDrafts =
  (reducer: typeof filesSlice.reducer): typeof filesSlice.reducer =>
  (state, action) => {
    if (state !== undefined && isDraft(state)) coverage.draftedReductions++
    return reducer(state, action)
  }
const push = server.model.push
/** A value the server refuses for good (a validation error): its name starts with this. */
const BAD = 'bad-'
const isBad = (value: unknown): boolean => typeof (value as { name?: unknown } | null)?.name === 'string' && (value as { name: string }).name.startsWith(BAD)
server.model.push = (body) => {
  // The server refuses every op of a bad value on its own; the other ops of the push apply.
  const ops = ((body as { ops?: Array<{ opId?: string; value?: unknown }> } | null)?.ops ?? []) as Array<{ opId?: string; value?: unknown }>
  const good = ops.filter((op) => !isBad(op.value))
  const inner =
    good.length > 0 || ops.length === 0
      ? push({ ...(body as object), ops: good })
      : { status: 200, body: { results: [], cursor: '0', epoch: server.model.epoch } }
  const answer =
    inner.status !== 200 || good.length === ops.length
      ? inner
      : (() => {
          const applied = [...((inner.body as { results: PushResult[] }).results ?? [])]
          const results = ops.map((op) =>
            isBad(op.value)
              ? { opId: op.opId ?? null, status: 'rejected', error: { error: 'validation', message: 'name must not start with bad-' } }
              : applied.shift()!,
          )
          coverage.rejections += ops.length - good.length
          const cursor = good.length > 0 ? (inner.body as { cursor: string }).cursor : String(server.model.records().reduce((m, r) => Math.max(m, r.seq), 0))
          return { status: 200, body: { results, cursor, epoch: server.model.epoch } }
        })()
  const results = (answer.body as { results?: PushResult[] } | null)?.results ?? []
  pushResults.push(...results)
  if (TRACE) console.log('push', Date.now(), JSON.stringify(body), JSON.stringify(results.map((r) => r.status)))
  return answer
}

/**
 * How often each fault really hit the client, over all runs. A command that never takes effect
 * would make the test pass without testing anything, so with 100 runs or more every counter
 * must be above zero.
 */
const coverage = {
  status500: 0,
  status503: 0,
  networkErrors: 0,
  timeouts: 0,
  lostAnswersReplayed: 0,
  tokenRefreshes: 0,
  conflicts: 0,
  aborts: 0,
  restarts: 0,
  flushesChecked: 0,
  pulls: 0,
  /** Reductions of the files slice that the enhancer's patch tracking handed a draft. */
  draftedReductions: 0,
  /** Runs per strategy, and conflicts each strategy settled for the server (a local change lost). */
  runsClientWins: 0,
  runsServerWins: 0,
  runsLastWriteWins: 0,
  serverWinsLostLocal: 0,
  lastWriteWinsLostLocal: 0,
  lastWriteWinsKeptLocal: 0,
  /** Keys the server-wins model could require a reported conflict for (a local change that lost). */
  silentLossChecks: 0,
  /** Final checks the model could decide: server-wins keys with a local last word, last-write-wins races. */
  serverWinsLocalChecked: 0,
  racesLocalChecked: 0,
  serverWinsOverPending: 0,
  racesRemoteChecked: 0,
  /** Ops the server refused for good, and the rollbacks the client announced. */
  rejections: 0,
  rollbacks: 0,
}
msw.events.on('response:mocked', ({ response }) => {
  if (response.status === 500) coverage.status500++
  if (response.status === 503) coverage.status503++
})

type Command =
  | { t: 'put'; key: string; v: number }
  | { t: 'del'; key: string }
  | { t: 'wait'; ms: number }
  | { t: 'flush' }
  | { t: 'fault'; kind: '500' | '503' | 'network' | 'hang' | 'lose-answer' }
  | { t: 'auth' }
  | { t: 'remote'; key: string; v: number }
  | { t: 'abort' }
  | { t: 'restart' }
  | { t: 'pull' }
  | { t: 'bad'; key: string; v: number }

const key = fc.constantFrom(...KEYS)
// Weights: docs/reliability.md. 'hang' is a timeout (the client gives up after timeoutMs).
const command: fc.Arbitrary<Command> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ t: fc.constant('put' as const), key, v: fc.nat(1000) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('del' as const), key }) },
  { weight: 4, arbitrary: fc.record({ t: fc.constant('wait' as const), ms: fc.integer({ min: 1, max: 400 }) }) },
  { weight: 1, arbitrary: fc.constant({ t: 'flush' as const }) },
  {
    weight: 1,
    arbitrary: fc.record({
      t: fc.constant('fault' as const),
      kind: fc.constantFrom('500' as const, '503' as const, 'network' as const, 'hang' as const, 'lose-answer' as const),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ t: 'auth' as const }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('remote' as const), key, v: fc.nat(1000) }) },
  { weight: 1, arbitrary: fc.constant({ t: 'abort' as const }) },
  { weight: 1, arbitrary: fc.constant({ t: 'restart' as const }) },
  { weight: 1, arbitrary: fc.constant({ t: 'pull' as const }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('bad' as const), key, v: fc.nat(1000) }) },
)
const MIN_STEPS = 50
const MAX_STEPS = 200

async function settle(rounds = 20): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((r) => setImmediate(r))
}
async function advance(ms: number): Promise<void> {
  await vi.advanceTimersByTimeAsync(ms)
  await settle()
}
/** Awaits `work` while moving the fake clock, so timeouts and backoffs it waits for can fire. */
async function withTime<T>(work: Promise<T>, limitMs = Number(process.env.FC_LIMIT_MS ?? 60_000)): Promise<T | undefined> {
  let done = false
  const result = work.then(
    (value) => {
      done = true
      return value
    },
    () => {
      done = true
      return undefined
    },
  )
  for (let elapsed = 0; !done && elapsed < limitMs; elapsed += 50) await advance(50)
  if (!done) throw new Error(`an operation did not settle within ${limitMs} ms of fake time`)
  return result
}

type Value = { id: string; name: string } | null
/** Another device's write of a key: its value and its `clientTime` (the server's clock). */
interface RemoteWrite {
  readonly value: Value
  readonly time: number
}
/**
 * What the server and the app must end with for a key; `null` when either side may rightly win.
 * `race` (last-write-wins only): a local change (`value`) and another device's write, where the
 * `clientTime` the library stamped on the local change decides; the model reads it from the
 * outbox entry committed with the change, at the end. `first`: which of the two was made first;
 * `committedFirst`: the local change was committed (so it may have been pushed) before the
 * other device wrote.
 */
type Expectation =
  | { readonly source: 'local' | 'remote'; readonly value: Value }
  | { readonly source: 'race'; readonly value: Value; readonly remote: RemoteWrite; readonly first: 'local' | 'remote'; readonly committedFirst: boolean }
  | null
/** The model of one key. */
interface KeyModel {
  readonly expectation: Expectation
  /** For a local (or race) expectation: whether its write is known to be committed (it survives a crash). */
  readonly durable: boolean
  /** How many transactions the current instance had committed when the local change was made. */
  readonly changedAt: number
  /** Which instance (index into the run's stores) made the local change. */
  readonly instance: number
  /**
   * server-wins: a local change made while the server held a version the client had not seen
   * (the expectation is then `null`). If it lost, a conflict must have been reported for the key
   * after `event` (the model's event counter when the change was made).
   */
  readonly mayLose?: { readonly value: Value; readonly event: number }
}

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a ?? null) === JSON.stringify(b ?? null)

/** The last write of item `id` to the slice's store in these committed transactions. */
function lastWrite(commits: readonly StorageOp[][], id: string): StorageOp | null {
  for (let i = commits.length - 1; i >= 0; i--) {
    const ops = commits[i]!
    for (let j = ops.length - 1; j >= 0; j--) {
      const op = ops[j]!
      if (op.store === FILES && (op.type === 'put' || op.type === 'delete') && op.key === id) return op
    }
  }
  return null
}

/**
 * The local write of `id` with `value` and the outbox entry committed with it, from commit `from`
 * on. Writes of other values are skipped: server data the engine showed before the change was
 * made may commit after it.
 */
function localCommit(commits: readonly StorageOp[][], from: number, id: string, value: Value): { index: number; clientTime: number } | null {
  for (let i = from; i < commits.length; i++) {
    const ops = commits[i]!
    const write = ops.find((op) => op.store === FILES && (op.type === 'put' || op.type === 'delete') && op.key === id)
    if (!write) continue
    if (!same(write.type === 'put' ? write.value : null, value)) continue
    const entry = ops.find((op) => op.type === 'put' && op.store === OUTBOX_STORE && (op.value as { key: string }).key === `${FILES}:${id}`)
    if (entry && entry.type === 'put') {
      const row = entry.value as OutboxRow
      return { index: i, clientTime: row.ops[row.ops.length - 1]!.clientTime }
    }
  }
  return null
}

async function runScenario(strategy: Strategy, commands: Command[]): Promise<void> {
  server.reset()
  pushResults.length = 0
  let token = 'token-0'
  server.setToken(token)
  const factory = new IDBFactory()
  const storages: InstrumentedStore[] = []

  // The model. Every key starts absent everywhere.
  const model = new Map<string, KeyModel>(KEYS.map((k) => [k, { expectation: { source: 'remote', value: null }, durable: true, changedAt: 0, instance: 0 }]))
  // The latest write of each key by another device.
  const lastRemote = new Map<string, RemoteWrite>()
  // Every value another device wrote, per key (a conflict the server won may bring any of them).
  const remoteValues = new Map<string, Value[]>()
  const wasRemote = (k: string, value: unknown): boolean => (remoteValues.get(k) ?? []).some((v) => same(v, value))
  // server-wins: keys another device wrote that the client has not seen yet (no successful pull since).
  const unseen = new Set<string>()
  // A counter ordering local changes and reported conflicts.
  let event = 0
  const reports: Array<{ readonly key: string; readonly resolution: string; readonly event: number }> = []
  // Keys changed since the last successful flush: a crash may or may not have committed them.
  const unsure = new Set<string>()
  // Keys changed since the middleware last diffed the state (it diffs once per tick). Adding and
  // removing an item between two diffs changes nothing the library can see, so the model must
  // not count it as a local delete: a remote value the app never saw may rightly arrive later.
  const segment = new Map<string, { present: boolean; before: KeyModel | undefined }>()

  const open = () => {
    const storage = instrumentedStore(factory, 'model')
    storages.push(storage)
    const persistence: PersistenceMiddleware = createPersistenceMiddleware({
      dbName: 'model',
      storage,
      // verifyChangedIds runs the full diff beside every diff the patch tracker made, and
      // reports each id the patches did not name.
      slices: { [FILES]: { debounceMs: 50, batchSize: 3, conflict: strategy, verifyChangedIds: true } },
      retry: { initialDelayMs: 20, maxDelayMs: 200 },
      onError: (error) => {
        if (error.name === 'TransactionAbortedError') coverage.aborts++
        if (error.name === 'InvalidOptionError') trackerMisses.push(error.message)
      },
      remote: createRemote({
        baseUrl: BASE,
        timeoutMs: 300,
        batchSize: 4,
        retry: { initialDelayMs: 50, maxDelayMs: 400 },
        getToken: ({ refresh }) => {
          if (refresh) coverage.tokenRefreshes++
          return token
        },
        onConflict: (c) => {
          coverage.conflicts++
          reports.push({ key: c.key, resolution: c.resolution, event: ++event })
          if (strategy === 'server-wins' && c.resolution === 'server') coverage.serverWinsLostLocal++
          if (strategy === 'last-write-wins' && c.resolution === 'server') coverage.lastWriteWinsLostLocal++
          if (strategy === 'last-write-wins' && c.resolution === 'client') coverage.lastWriteWinsKeptLocal++
        },
      }),
    })
    persistence.subscribeEvents((event) => {
      if (event.type !== 'operation' || event.operation.ok) return
      if (event.operation.error?.name === 'NetworkError') coverage.networkErrors++
      if (event.operation.error?.name === 'RequestTimeoutError') coverage.timeouts++
    })
    const countRollbacks: Middleware = () => (next) => (action) => {
      if (rolledBack.match(action as UnknownAction)) {
        coverage.rollbacks++
        rejectedSomething = true
      }
      return next(action)
    }
    const store = configureStore({
      reducer: { files: countingDrafts(filesSlice.reducer), sync: syncReducer },
      middleware: (g) => g().concat(persistence, countRollbacks),
      enhancers: (g) => g().concat(persistence.enhancer),
    })
    return { storage, persistence, store }
  }
  const present = (k: string): boolean => app.store.getState().files.entities[k] !== undefined
  const stateAsObject = () => {
    const files = app.store.getState().files
    return Object.fromEntries(files.ids.map((id) => [id, files.entities[id]]))
  }
  /** Dispatches a local change of `k` and records it in the model. */
  const localChange = (k: string, value: Value): void => {
    // Whether the key existed when the segment began: before the segment's first change of it.
    if (!segment.has(k)) segment.set(k, { present: present(k), before: model.get(k) })
    app.store.dispatch(value ? saveFile(value) : removeItem(k))
    const at = { durable: false, changedAt: app.storage.commits.length, instance: storages.length - 1 }
    const remote = lastRemote.get(k)
    if (strategy === 'server-wins' && unseen.has(k)) {
      // The server holds a version the client has not seen: the change is based on an older one,
      // meets a conflict, and may rightly lose (but not silently).
      model.set(k, { ...at, expectation: null, mayLose: { value, event: ++event } })
    } else if (strategy === 'last-write-wins' && remote) {
      // Made after another device's write: it wins if the library stamped it later (always,
      // unless the clocks tie); a tie is open (no conflict at all if the client saw that write).
      model.set(k, { ...at, expectation: { source: 'race', value, remote, first: 'remote', committedFirst: false } })
    } else {
      model.set(k, { ...at, expectation: { source: 'local', value } })
    }
    unsure.add(k)
  }
  /** Call before anything that lets the middleware diff (an await, getStatus()). */
  const endSegment = (): void => {
    for (const [k, { present: was, before }] of segment) if (!was && !present(k) && before) model.set(k, before)
    segment.clear()
  }

  // Set once a rollback happened: like a conflict the server won, it shows in the state right after its commit.
  let rejectedSomething = false
  let app = open()
  await withTime(app.persistence.whenHydrated())

  for (const c of commands) {
    if (TRACE) console.log('step', Date.now(), JSON.stringify(c), JSON.stringify(stateAsObject()), app.store.getState().sync.outboxDepth)
    switch (c.t) {
      case 'put':
        localChange(c.key, { id: c.key, name: `local-${c.v}` })
        break
      case 'del':
        if (present(c.key)) localChange(c.key, null)
        break
      case 'bad': {
        // An edit the server refuses for good: it rolls back to the last value the server
        // accepted, or a newer pending change of the key wins. Either may be last: the final
        // checks below hold the key to "never a rejected value", and to the server's value.
        localChange(c.key, { id: c.key, name: `${BAD}${c.v}` })
        model.set(c.key, { expectation: null, durable: true, changedAt: 0, instance: 0 })
        break
      }
      case 'wait':
        endSegment()
        await advance(c.ms)
        break
      case 'flush': {
        endSegment()
        if (!(await withTime(app.persistence.flush().then(() => true)))) break
        unsure.clear()
        // Invariant: after a flush, IndexedDB equals the Redux state. Except under client-wins, a
        // conflict the server won may have been settled meanwhile: the engine shows the server's
        // version first and commits it right after (putting the old one back if that fails), so
        // give that commit a moment (no timer fires: only IndexedDB's own callbacks run).
        let stored = Object.fromEntries(await readStore(factory, FILES, 'model'))
        for (let i = 0; i < 5 && (strategy !== 'client-wins' || rejectedSomething) && !same(stored, stateAsObject()); i++) {
          await settle(50)
          stored = Object.fromEntries(await readStore(factory, FILES, 'model'))
        }
        expect(stored, 'after a flush, IndexedDB equals the Redux state').toEqual(stateAsObject())
        coverage.flushesChecked++
        break
      }
      case 'fault':
        server.fail(c.kind === 'network' || c.kind === 'hang' || c.kind === 'lose-answer' ? { kind: c.kind } : { kind: 'status', status: Number(c.kind) })
        break
      case 'auth':
        // The client keeps using the token it has: its next request gets a 401, then it refreshes.
        token = `token-${Math.random()}`
        server.setToken(token)
        break
      case 'remote': {
        // Another device writes the key (force: it does not care about our version). Straight
        // into the server's model, so the injected faults stay for our client.
        endSegment()
        // Its clientTime is the fake clock, which is also the server's clock (the mock server's
        // health check reports Date.now()), so last-write-wins compares real write times.
        const value = { id: c.key, name: `remote-${c.v}` }
        const remote: RemoteWrite = { value, time: Date.now() }
        const answer = server.model.writeItem('PUT', FILES, c.key, {
          opId: `remote-${Math.random()}`,
          value,
          baseVersion: 0,
          clientTime: remote.time,
          force: true,
        })
        expect(answer.status).toBe(200)
        lastRemote.set(c.key, remote)
        remoteValues.set(c.key, [...(remoteValues.get(c.key) ?? []), value])
        unseen.add(c.key)
        // With nothing of ours pending, the other device's write is the last word on the key
        // (until the app changes it again), whatever the strategy. With something pending,
        // client-wins lets ours win if it was not yet acknowledged, and the remote one if it was;
        // server-wins lets ours win if it was still in the debounce queue when the conflict was
        // settled: either is right. last-write-wins: the clientTimes decide (a race, see above).
        const idle = app.persistence.getStatus().pendingOperations === 0 && app.store.getState().sync.outboxDepth === 0
        const m = model.get(c.key)!
        const e = m.expectation
        if (idle) {
          model.set(c.key, { expectation: { source: 'remote', value }, durable: true, changedAt: 0, instance: 0 })
        } else if (strategy === 'last-write-wins' && e && e.source !== 'remote') {
          const committedFirst = m.durable || localCommit(storages[m.instance]!.commits, m.changedAt, c.key, e.value) !== null
          model.set(c.key, { ...m, expectation: { source: 'race', value: e.value, remote, first: 'local', committedFirst } })
        } else if (
          strategy === 'server-wins' &&
          ((e?.source === 'local' && (m.durable || localCommit(storages[m.instance]!.commits, m.changedAt, c.key, e.value))) ||
            (e === null && m.mayLose && (m.durable || localCommit(storages[m.instance]!.commits, m.changedAt, c.key, m.mayLose.value))))
        ) {
          // server-wins: the latest local change of the key is committed (no longer in the debounce
          // queue). Acknowledged, the other device's write overwrites it; pending, it meets that
          // write as a conflict and loses: either way the other device has the last word.
          coverage.serverWinsOverPending++
          model.set(c.key, { expectation: { source: 'remote', value }, durable: true, changedAt: 0, instance: 0 })
        } else {
          model.set(c.key, { expectation: null, durable: true, changedAt: 0, instance: 0 })
        }
        break
      }
      case 'abort':
        app.storage.failNext(new TransactionAbortedError('injected abort', { stores: [FILES] }))
        break
      case 'pull': {
        // An incremental pull in the middle of everything: it meets pending pushes, conflicts and
        // the injected faults. The model needs no change: a pulled value of a key nothing of ours
        // touches is already its remote expectation, and a key we changed stays ours (client-wins).
        endSegment()
        const result = await withTime(app.store.dispatch(pullFlaskChanges()))
        if (result && pullFlaskChanges.fulfilled.match(result)) {
          coverage.pulls++
          // The pull flushed the queue first, then applied every newer server version or settled
          // it as a conflict: the client has seen every write made before it (server-wins).
          unseen.clear()
        }
        break
      }
      case 'restart': {
        // A crash: pending (uncommitted) writes are lost; what was committed must come back.
        endSegment()
        coverage.restarts++
        await withTime(app.persistence.dispose({ flush: false }))
        const committed = new Map(await readStore(factory, FILES, 'model'))
        const commits = app.storage.commits
        app = open()
        await withTime(app.persistence.whenHydrated())
        const state = app.store.getState().files
        // Hydration shows what IndexedDB holds. Except under client-wins, a conflict settled while
        // the new instance starts (it pushes once connected) may already show the server's version;
        // and a refused value stored before the crash may already be rolled back.
        for (const k of KEYS) {
          const shown = state.entities[k] ?? null
          const replaced = (strategy !== 'client-wins' && wasRemote(k, shown)) || (isBad(committed.get(k)) && !isBad(shown))
          if (!replaced) expect(shown, `hydrated ${k}`).toEqual(committed.get(k) ?? null)
        }
        expect(
          state.ids.filter((id) => !KEYS.includes(String(id))),
          'hydrated items of unknown keys',
        ).toEqual([])
        for (const k of KEYS) {
          const m = model.get(k)
          const e = m?.expectation
          const value = e && e.source !== 'remote' ? e.value : m?.mayLose?.value
          if (!m || value === undefined) continue
          // Whether the latest local change of the key reached IndexedDB before the crash. When it
          // may lose a conflict (a race, or server-wins), the server's version may have replaced
          // it since: its own commit is the first write of the key after it was made.
          const mayBeReplaced = e?.source !== 'local'
          const op = lastWrite(commits.slice(m.changedAt), k)
          const durable =
            m.durable ||
            (mayBeReplaced
              ? localCommit(storages[m.instance]!.commits, m.changedAt, k, value) !== null
              : op !== null && same(op.type === 'put' ? op.value : null, value))
          const survived = committed.get(k) ?? null
          // Invariant: a local change acknowledged by a flush survives a crash.
          if (!unsure.has(k)) expect(durable, `flushed write of ${k} was committed`).toBe(true)
          if (durable && !mayBeReplaced) expect(survived, `committed write of ${k} survives a restart`).toEqual(e!.value)
          if (durable && mayBeReplaced && !wasRemote(k, survived))
            expect(survived, `committed write of ${k} survives a restart (or the server's replaced it)`).toEqual(value)
          // A change lost with the crash: what survived may or may not still be pending.
          model.set(k, durable ? { ...m, durable } : { expectation: null, durable: true, changedAt: 0, instance: 0 })
        }
        unsure.clear()
        break
      }
    }
  }
  endSegment()

  // Faults stop. Everything must converge within the bound.
  server.clearFaults()
  server.up()
  // Done only after a round in which the flush, the push and the pull all succeeded: an empty
  // outbox alone says nothing about a pull that failed (an abort left over from the steps).
  for (let round = 0; round < Number(process.env.FC_ROUNDS ?? 40); round++) {
    const flushed = await withTime(app.persistence.flush().then(() => true))
    const pushed = await withTime(
      app.store
        .dispatch(syncToFlaskBulk())
        .unwrap()
        .then(() => true),
    )
    const pulled = await withTime(
      app.store
        .dispatch(pullFlaskChanges())
        .unwrap()
        .then(() => true),
    )
    await advance(500)
    const empty = app.store.getState().sync.outboxDepth === 0 && app.persistence.getStatus().pendingOperations === 0
    if (flushed && pushed && pulled && empty) break
  }
  await advance(100)

  const local = stateAsObject()
  const sync = app.store.getState().sync
  const stored = Object.fromEntries(await readStore(factory, FILES, 'model'))
  const serverLive = Object.fromEntries(
    server.model
      .records()
      .filter((r) => !r.deleted)
      .map((r) => [r.id, r.value]),
  )
  const diagnosis = `sync: ${JSON.stringify(sync)}; server: ${JSON.stringify(server.model.records().map((r) => [r.id, r.version, r.deleted, r.value]))}`

  // Invariant: at the end, the queue and the outbox are empty, and nothing was given up on.
  expect(app.persistence.getStatus().pendingOperations, 'queue empty').toBe(0)
  expect(sync.outboxDepth, `outbox empty (${diagnosis}; ${JSON.stringify(app.persistence.getStatus().lastError)})`).toBe(0)
  expect((await readStore(factory, OUTBOX_STORE, 'model')).size, 'stored outbox empty').toBe(0)
  // Invariant: only the refused edits are in the dead-letter list, and each was rolled back (or
  // superseded by a newer change of its key).
  expect(
    sync.deadLetters.filter((letter) => letter.code !== 'validation'),
    'no operation in the dead-letter list but the refused ones',
  ).toEqual([])
  // Invariant: after settling, no key holds a rejected value (onReject: 'rollback', the default):
  // each holds its last accepted value or a newer change that was accepted since.
  for (const k of KEYS) {
    expect(isBad(local[k]), `${k} holds a rejected value in the state (${diagnosis})`).toBe(false)
    expect(isBad(stored[k]), `${k} holds a rejected value in IndexedDB (${diagnosis})`).toBe(false)
  }
  expect(
    sync.conflicts.filter((x) => x.resolution === 'pending'),
    'no conflict left pending',
  ).toEqual([])
  // Invariant: after the final flush, IndexedDB equals the Redux state; once faults stopped,
  // the server does too.
  expect(stored, 'IndexedDB equals the Redux state').toEqual(local)
  expect(trackerMisses.splice(0), 'verifyChangedIds found no id the patch tracker missed').toEqual([])
  expect(serverLive, `the server equals the Redux state (${diagnosis})`).toEqual(local)
  // Invariant: the server equals the model. Where the model knows who had the last word (a
  // local change, acknowledged or not, or another device's write while nothing of ours was
  // pending), that value won: no acknowledged local operation was lost.
  const commitsOf = storages.map((s) => s.commits)
  for (const k of KEYS) {
    const m = model.get(k)!
    const e = m.expectation
    if (e?.source === 'race') {
      // last-write-wins: the library compares the clientTime of the local change's outbox entry
      // with the other device's. Later: ours wins, unless it may have been pushed before the other
      // device wrote over it. Earlier or equal (a tie goes to the server): theirs wins if ours was
      // made first; if ours was made after it, the client may have seen theirs and pushed ours
      // without a conflict, so either may win.
      const stamped = localCommit(commitsOf[m.instance]!, m.changedAt, k, e.value)
      if (!stamped) continue
      const winner = stamped.clientTime > e.remote.time ? (e.committedFirst ? null : 'local') : e.first === 'local' ? 'remote' : null
      if (!winner) continue
      const value = winner === 'local' ? e.value : e.remote.value
      if (winner === 'local') coverage.racesLocalChecked++
      else coverage.racesRemoteChecked++
      expect(
        serverLive[k] ?? null,
        `${k}: the ${winner} write must win (last-write-wins, local at ${stamped.clientTime}, remote at ${e.remote.time}; ${diagnosis})`,
      ).toEqual(value)
    } else if (e) {
      if (strategy === 'server-wins' && e.source === 'local' && lastRemote.has(k)) coverage.serverWinsLocalChecked++
      expect(serverLive[k] ?? null, `${k}: the ${e.source} write must win (${strategy}; ${diagnosis})`).toEqual(e.value)
    } else if (m.mayLose && !same(serverLive[k], m.mayLose.value)) {
      // server-wins: a local change that lost must have been reported as a conflict.
      coverage.silentLossChecks++
      const reported = reports.some((r) => r.key === `${FILES}:${k}` && r.resolution === 'server' && r.event > m.mayLose!.event)
      expect(reported, `${k}: the local change lost without a reported conflict (${diagnosis}; ${JSON.stringify(reports)})`).toBe(true)
    }
  }
  // Invariant: nothing applied twice. The server applies an opId at most once (the contract
  // tests hold it to that), so each operation it applied from us must be an outbox entry written
  // in the same transaction as one local change. A change sent again under a new opId (a retry
  // or a rebase that re-created its entry) or sent without being stored fails here.
  const commits = storages.flatMap((s) => s.commits)
  // The op a local write adds is the newest of its key's row, written in the same transaction.
  const entryOf = (op: StorageOp): { key: string; opId: string } | null => {
    if (op.type !== 'put' || op.store !== OUTBOX_STORE) return null
    const row = op.value as OutboxRow
    const newest = row.ops[row.ops.length - 1]
    return newest ? { key: row.key, opId: newest.opId } : null
  }
  const withLocalChange = new Set<string>()
  for (const ops of commits) {
    const writtenKeys = new Set<string>()
    for (const op of ops) if (op.store === FILES && (op.type === 'put' || op.type === 'delete')) writtenKeys.add(`${FILES}:${op.key}`)
    for (const op of ops) {
      const entry = entryOf(op)
      if (entry && writtenKeys.has(entry.key)) withLocalChange.add(entry.opId)
    }
  }
  const applied = pushResults.filter((r) => r.status === 'applied')
  for (const result of applied)
    expect(withLocalChange.has(result.opId ?? ''), `applied ${result.opId} (${result.record?.id}) comes from a stored local change`).toBe(true)
  coverage.lostAnswersReplayed += pushResults.filter((r) => r.status === 'duplicate').length

  await withTime(app.persistence.dispose({ flush: false }))
}

test(`model: ${RUNS} random runs of ${MIN_STEPS} to ${MAX_STEPS} steps (seed ${SEED})`, async () => {
  console.log(`[model test] fast-check seed ${SEED}, ${RUNS} runs; replay with FC_SEED=${SEED}`)
  const started = Date.now()
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date', 'performance'] })
  try {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...STRATEGIES), fc.array(command, { minLength: MIN_STEPS, maxLength: MAX_STEPS }), (strategy, commands) => {
        if (!process.env.FC_PATH) {
          if (strategy === 'client-wins') coverage.runsClientWins++
          else if (strategy === 'server-wins') coverage.runsServerWins++
          else coverage.runsLastWriteWins++
        }
        if (TRACE) console.log('strategy', strategy)
        return runScenario(strategy, commands)
      }),
      {
        numRuns: RUNS,
        seed: SEED,
        endOnFailure: process.env.FC_NO_SHRINK === '1',
        ...(process.env.FC_PATH ? { path: process.env.FC_PATH } : {}),
      },
    )
  } finally {
    vi.useRealTimers()
  }
  console.log(`[model test] ${RUNS} runs in ${((Date.now() - started) / 1000).toFixed(1)} s; faults that took effect: ${JSON.stringify(coverage)}`)
  // Every kind of step must really have happened: a fault that never reaches the client tests nothing.
  if (RUNS >= 100 && !process.env.FC_PATH) {
    for (const [name, count] of Object.entries(coverage)) expect(count, `${name} over ${RUNS} runs`).toBeGreaterThan(0)
  }
}, 900_000)
