// Model-based randomized test of the "nothing lost, nothing applied twice" promise. Each run is a
// random sequence of 50 to 200 steps: local edits, time, flushes, server faults (500, 503,
// network errors, timeouts, lost answers), token rotations (a 401, then a refresh), writes from
// another device (conflicts), incremental pulls, IndexedDB transaction aborts and restarts. Then
// the faults stop, the client converges, and the invariants are checked against a model of what
// must have won.
// docs/reliability.md ("Model-based randomized tests") lists the steps, weights and invariants.
//
// Runs: `npm run test:model` (100, in CI), `npm run test:soak` (1,000); FC_RUNS overrides both.
// Every run prints its seed. Replay a failure with FC_SEED=<seed> FC_PATH=<path> from the
// report; FC_NO_SHRINK=1 reports the first failing run without shrinking it (shrinking a long
// run can take minutes). FC_TRACE=1 prints every step and push.
import { configureStore } from '@reduxjs/toolkit'
import fc from 'fast-check'
import { IDBFactory } from 'fake-indexeddb'
import { setupServer } from 'msw/node'
import { afterAll, beforeAll, expect, test, vi } from 'vitest'
import {
  TransactionAbortedError,
  createPersistenceMiddleware,
  pullFlaskChanges,
  syncReducer,
  syncToFlaskBulk,
  type PersistenceMiddleware,
} from '../../src'
import { OUTBOX_STORE, type StorageOp } from '../../src/storage/types'
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
const push = server.model.push
server.model.push = (body) => {
  const answer = push(body)
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

const key = fc.constantFrom(...KEYS)
// Weights: docs/reliability.md. 'hang' is a timeout (the client gives up after timeoutMs).
const command: fc.Arbitrary<Command> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ t: fc.constant('put' as const), key, v: fc.nat(1000) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('del' as const), key }) },
  { weight: 4, arbitrary: fc.record({ t: fc.constant('wait' as const), ms: fc.integer({ min: 1, max: 400 }) }) },
  { weight: 1, arbitrary: fc.constant({ t: 'flush' as const }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('fault' as const), kind: fc.constantFrom('500' as const, '503' as const, 'network' as const, 'hang' as const, 'lose-answer' as const) }) },
  { weight: 1, arbitrary: fc.constant({ t: 'auth' as const }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('remote' as const), key, v: fc.nat(1000) }) },
  { weight: 1, arbitrary: fc.constant({ t: 'abort' as const }) },
  { weight: 1, arbitrary: fc.constant({ t: 'restart' as const }) },
  { weight: 1, arbitrary: fc.constant({ t: 'pull' as const }) },
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
/** What the server and the app must end with for a key; `null` when either side may rightly win. */
type Expectation = { readonly source: 'local' | 'remote'; readonly value: Value } | null
/** The model of one key. */
interface KeyModel {
  readonly expectation: Expectation
  /** For a local expectation: whether its write is known to be committed (it survives a crash). */
  readonly durable: boolean
  /** How many transactions the current instance had committed when the local change was made. */
  readonly changedAt: number
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

async function runScenario(commands: Command[]): Promise<void> {
  server.reset()
  pushResults.length = 0
  let token = 'token-0'
  server.setToken(token)
  const factory = new IDBFactory()
  const storages: InstrumentedStore[] = []

  // The model. Every key starts absent everywhere.
  const model = new Map<string, KeyModel>(KEYS.map((k) => [k, { expectation: { source: 'remote', value: null }, durable: true, changedAt: 0 }]))
  const expectationOf = (k: string): Expectation => model.get(k)?.expectation ?? null
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
      slices: { [FILES]: { debounceMs: 50, batchSize: 3, conflict: 'client-wins' } },
      retry: { initialDelayMs: 20, maxDelayMs: 200 },
      onError: (error) => {
        if (error.name === 'TransactionAbortedError') coverage.aborts++
      },
      remote: {
        baseUrl: BASE,
        timeoutMs: 300,
        batchSize: 4,
        retry: { initialDelayMs: 50, maxDelayMs: 400 },
        getToken: ({ refresh }) => {
          if (refresh) coverage.tokenRefreshes++
          return token
        },
        onConflict: () => {
          coverage.conflicts++
        },
      },
    })
    persistence.subscribeEvents((event) => {
      if (event.type !== 'operation' || event.operation.ok) return
      if (event.operation.error?.name === 'NetworkError') coverage.networkErrors++
      if (event.operation.error?.name === 'RequestTimeoutError') coverage.timeouts++
    })
    const store = configureStore({
      reducer: { files: filesSlice.reducer, sync: syncReducer },
      middleware: (g) => g().concat(persistence),
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
    model.set(k, { expectation: { source: 'local', value }, durable: false, changedAt: app.storage.commits.length })
    unsure.add(k)
  }
  /** Call before anything that lets the middleware diff (an await, getStatus()). */
  const endSegment = (): void => {
    for (const [k, { present: was, before }] of segment) if (!was && !present(k) && before) model.set(k, before)
    segment.clear()
  }

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
      case 'wait':
        endSegment()
        await advance(c.ms)
        break
      case 'flush': {
        endSegment()
        if (!(await withTime(app.persistence.flush().then(() => true)))) break
        unsure.clear()
        // Invariant: after a flush, IndexedDB equals the Redux state.
        expect(Object.fromEntries(await readStore(factory, FILES, 'model')), 'after a flush, IndexedDB equals the Redux state').toEqual(stateAsObject())
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
        const value = { id: c.key, name: `remote-${c.v}` }
        const answer = server.model.writeItem('PUT', FILES, c.key, {
          opId: `remote-${Math.random()}`,
          value,
          baseVersion: 0,
          clientTime: 0,
          force: true,
        })
        expect(answer.status).toBe(200)
        // With nothing of ours pending, the other device's write is the last word on the key
        // (until the app changes it again). With something pending, client-wins lets ours win if
        // it was not yet acknowledged, and the remote one if it was: either is right.
        const idle = app.persistence.getStatus().pendingOperations === 0 && app.store.getState().sync.outboxDepth === 0
        model.set(c.key, { expectation: idle ? { source: 'remote', value } : null, durable: true, changedAt: 0 })
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
        if (result && pullFlaskChanges.fulfilled.match(result)) coverage.pulls++
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
        for (const [id, value] of committed) expect(state.entities[String(id)], `hydrated ${String(id)}`).toEqual(value)
        expect(state.ids.length, 'hydrated item count').toBe(committed.size)
        for (const k of KEYS) {
          const m = model.get(k)
          const e = m?.expectation
          if (!m || e?.source !== 'local') continue
          // Whether the latest local change of the key reached IndexedDB before the crash.
          const op = lastWrite(commits.slice(m.changedAt), k)
          const durable = m.durable || (op !== null && same(op.type === 'put' ? op.value : null, e.value))
          const survived = committed.get(k) ?? null
          // Invariant: a local change acknowledged by a flush survives a crash.
          if (!unsure.has(k)) expect(durable, `flushed write of ${k} was committed`).toBe(true)
          if (durable) expect(survived, `committed write of ${k} survives a restart`).toEqual(e.value)
          // A change lost with the crash: what survived may or may not still be pending.
          model.set(k, durable ? { ...m, durable } : { expectation: null, durable: true, changedAt: 0 })
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
    const pushed = await withTime(app.store.dispatch(syncToFlaskBulk()).unwrap().then(() => true))
    const pulled = await withTime(app.store.dispatch(pullFlaskChanges()).unwrap().then(() => true))
    await advance(500)
    const empty = app.store.getState().sync.outboxDepth === 0 && app.persistence.getStatus().pendingOperations === 0
    if (flushed && pushed && pulled && empty) break
  }
  await advance(100)

  const local = stateAsObject()
  const sync = app.store.getState().sync
  const stored = Object.fromEntries(await readStore(factory, FILES, 'model'))
  const serverLive = Object.fromEntries(server.model.records().filter((r) => !r.deleted).map((r) => [r.id, r.value]))
  const diagnosis = `sync: ${JSON.stringify(sync)}; server: ${JSON.stringify(server.model.records().map((r) => [r.id, r.version, r.deleted, r.value]))}`

  // Invariant: at the end, the queue and the outbox are empty, and nothing was given up on.
  expect(app.persistence.getStatus().pendingOperations, 'queue empty').toBe(0)
  expect(sync.outboxDepth, `outbox empty (${diagnosis}; ${JSON.stringify(app.persistence.getStatus().lastError)})`).toBe(0)
  expect((await readStore(factory, OUTBOX_STORE, 'model')).size, 'stored outbox empty').toBe(0)
  expect(sync.deadLetters, 'no operation in the dead-letter list').toEqual([])
  expect(sync.conflicts.filter((x) => x.resolution === 'pending'), 'no conflict left pending').toEqual([])
  // Invariant: after the final flush, IndexedDB equals the Redux state; once faults stopped,
  // the server does too.
  expect(stored, 'IndexedDB equals the Redux state').toEqual(local)
  expect(serverLive, `the server equals the Redux state (${diagnosis})`).toEqual(local)
  // Invariant: the server equals the model. Where the model knows who had the last word (a
  // local change, acknowledged or not, or another device's write while nothing of ours was
  // pending), that value won: no acknowledged local operation was lost.
  for (const k of KEYS) {
    const e = expectationOf(k)
    if (e) expect(serverLive[k] ?? null, `${k}: the ${e.source} write must win (${diagnosis})`).toEqual(e.value)
  }
  // Invariant: nothing applied twice. The server applies an opId at most once (the contract
  // tests hold it to that), so each operation it applied from us must be an outbox entry written
  // in the same transaction as one local change. A change sent again under a new opId (a retry
  // or a rebase that re-created its entry) or sent without being stored fails here.
  const commits = storages.flatMap((s) => s.commits)
  const entryOf = (op: StorageOp): { key: string; opId: string } | null =>
    op.type === 'put' && op.store === OUTBOX_STORE ? (op.value as { key: string; opId: string }) : null
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
  for (const result of applied) expect(withLocalChange.has(result.opId ?? ''), `applied ${result.opId} (${result.record?.id}) comes from a stored local change`).toBe(true)
  coverage.lostAnswersReplayed += pushResults.filter((r) => r.status === 'duplicate').length

  await withTime(app.persistence.dispose({ flush: false }))
}

test(`model: ${RUNS} random runs of ${MIN_STEPS} to ${MAX_STEPS} steps (seed ${SEED})`, async () => {
  console.log(`[model test] fast-check seed ${SEED}, ${RUNS} runs; replay with FC_SEED=${SEED}`)
  const started = Date.now()
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] })
  try {
    await fc.assert(
      fc.asyncProperty(fc.array(command, { minLength: MIN_STEPS, maxLength: MAX_STEPS }), (commands) => runScenario(commands)),
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
