// Model-based randomized test: random sequences of local edits, time, flushes, server faults,
// token rotations, conflicting writes from another device, IndexedDB aborts and restarts; then
// the faults stop and the invariants of the "nothing lost, nothing applied twice" promise are
// checked. Every run prints its seed; replay one with FC_SEED=<seed> (and FC_PATH from the
// failure report). `npm run test:soak` runs 1,000.
//
// Status: work in progress for the reliability issue, so it is not in `npm test` yet. It found
// (and the engine now fixes) in-memory outbox/versions/cursor updates made before their
// transaction committed. Known open case: FC_SEED=3 does not converge within the test's
// bound; under investigation.
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
import { createMockSyncServer } from '../../src/testing'
import { instrumentedStore, readStore } from '../support/instrumentedStore'
import { filesSlice, removeItem, saveFile } from '../support/store'

const BASE = 'http://model.test/api'
const server = createMockSyncServer({ baseUrl: BASE })
const msw = setupServer(...server.handlers)
beforeAll(() => msw.listen({ onUnhandledRequest: 'error' }))
afterAll(() => msw.close())

const RUNS = Number(process.env.FC_RUNS ?? 100)
const SEED = Number(process.env.FC_SEED ?? Math.floor(Math.random() * 2 ** 31))
const KEYS = ['k0', 'k1', 'k2', 'k3', 'k4', 'k5']

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

const key = fc.constantFrom(...KEYS)
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
)

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
  if (!done) throw new Error('an operation did not settle within a minute of fake time')
  return result
}

type Value = { id: string; name: string } | null

async function runScenario(commands: Command[]): Promise<void> {
  server.reset()
  let token = 'token-0'
  server.setToken(token)
  const factory = new IDBFactory()
  let remoteOps = 0
  let localOps = 0
  // What the app last wrote per key, and whether a remote write or a restart came after it.
  const lastLocal = new Map<string, Value>()
  const settledByLocal = new Set<string>()
  // Keys changed since the last successful flush: a crash may or may not have committed them.
  const unsure = new Set<string>()

  const open = () => {
    const storage = instrumentedStore(factory, 'model')
    const persistence: PersistenceMiddleware = createPersistenceMiddleware({
      dbName: 'model',
      storage,
      slices: { files: { debounceMs: 50, batchSize: 3, conflict: 'client-wins' } },
      retry: { initialDelayMs: 20, maxDelayMs: 200 },
      onError: () => {},
      remote: {
        baseUrl: BASE,
        timeoutMs: 300,
        batchSize: 4,
        retry: { initialDelayMs: 50, maxDelayMs: 400 },
        getToken: () => token,
      },
    })
    const store = configureStore({
      reducer: { files: filesSlice.reducer, sync: syncReducer },
      middleware: (g) => g().concat(persistence),
      enhancers: (g) => g().concat(persistence.enhancer),
    })
    return { storage, persistence, store }
  }

  const TRACE = process.env.FC_TRACE === '1'
  const origPush = server.model.push
  server.model.push = (body: unknown) => {
    const a = origPush(body)
    if (TRACE) console.log('PUSH', Date.now(), JSON.stringify((body as {ops: unknown[]}).ops.map((o: any) => [o.id, o.type, o.value?.name, o.baseVersion, o.opId.slice(0,4)])), JSON.stringify((a.body as any).results.map((r: any) => [r.status, r.record?.version ?? r.current?.version])))
    return a
  }
  let app = open()
  await withTime(app.persistence.whenHydrated())

  for (const c of commands) {
    if (TRACE) console.log('CMD', Date.now(), JSON.stringify(c), JSON.stringify(app.store.getState().files.entities), app.store.getState().sync.outboxDepth)
    switch (c.t) {
      case 'put':
        app.store.dispatch(saveFile({ id: c.key, name: `local-${c.v}` }))
        lastLocal.set(c.key, { id: c.key, name: `local-${c.v}` })
        settledByLocal.add(c.key)
        unsure.add(c.key)
        localOps++
        break
      case 'del':
        if (app.store.getState().files.entities[c.key]) {
          app.store.dispatch(removeItem(c.key))
          lastLocal.set(c.key, null)
          settledByLocal.add(c.key)
          unsure.add(c.key)
          localOps++
        }
        break
      case 'wait':
        await advance(c.ms)
        break
      case 'flush':
        if (await withTime(app.persistence.flush().then(() => true))) unsure.clear()
        break
      case 'fault':
        server.fail(c.kind === 'network' || c.kind === 'hang' || c.kind === 'lose-answer' ? { kind: c.kind } : { kind: 'status', status: Number(c.kind) })
        break
      case 'auth':
        token = `token-${Math.random()}`
        server.setToken(token)
        break
      case 'remote': {
        // Another device writes the key (force: it does not care about our version). Straight
        // into the server's model, so the injected faults stay for our client.
        const answer = server.model.writeItem('PUT', 'files', c.key, {
          opId: `remote-${remoteOps}-${Math.random()}`,
          value: { id: c.key, name: `remote-${c.v}` },
          baseVersion: 0,
          clientTime: 0,
          force: true,
        })
        expect(answer.status).toBe(200)
        remoteOps++
        settledByLocal.delete(c.key)
        break
      }
      case 'abort':
        app.storage.failNext(new TransactionAbortedError('injected abort', { stores: ['files'] }))
        break
      case 'restart': {
        // A crash: pending (uncommitted) writes are lost; what was committed must come back.
        await withTime(app.persistence.dispose({ flush: false }))
        const committed = new Map(await readStore(factory, 'files', 'model'))
        app = open()
        await withTime(app.persistence.whenHydrated())
        const state = app.store.getState().files
        for (const [id, value] of committed) expect(state.entities[String(id)]).toEqual(value)
        expect(state.ids.length).toBe(committed.size)
        // Keys whose last local write may not have been committed are no longer known to the model.
        for (const k of KEYS) {
          const survived = (committed.get(k) as Value | undefined) ?? null
          if (unsure.has(k) || JSON.stringify(lastLocal.get(k) ?? null) !== JSON.stringify(survived)) settledByLocal.delete(k)
        }
        unsure.clear()
        break
      }
    }
  }

  // Faults stop. Everything must converge.
  server.clearFaults()
  server.up()
  for (let round = 0; round < Number(process.env.FC_ROUNDS ?? 40); round++) {
    await withTime(app.persistence.flush())
    await withTime(app.store.dispatch(syncToFlaskBulk()))
    await withTime(app.store.dispatch(pullFlaskChanges()))
    await advance(500)
    if (app.store.getState().sync.outboxDepth === 0 && app.persistence.getStatus().pendingOperations === 0) break
  }
  await advance(100)

  const state = app.store.getState().files
  const local = Object.fromEntries(state.ids.map((id) => [id, state.entities[id]]))
  const stored = Object.fromEntries(await readStore(factory, 'files', 'model'))
  const serverLive = Object.fromEntries(server.model.records().filter((r) => !r.deleted).map((r) => [r.id, r.value]))

  // At the end, the queue and the outbox are empty.
  expect(app.persistence.getStatus().pendingOperations, 'queue empty').toBe(0)
  expect(app.store.getState().sync.outboxDepth, `outbox empty (${JSON.stringify(app.store.getState().sync)} ${JSON.stringify(app.persistence.getStatus().lastError)})`).toBe(0)
  expect((await readStore(factory, '__ris_outbox', 'model')).size, 'stored outbox empty').toBe(0)
  // After a flush, IndexedDB equals the Redux state; once faults stop, the server does too.
  expect(stored, 'IndexedDB equals the Redux state').toEqual(local)
  expect(
    serverLive,
    `the server equals the Redux state (sync: ${JSON.stringify(app.store.getState().sync)}; versions: ${JSON.stringify([...(await readStore(factory, '__ris_versions', 'model'))])}; server: ${JSON.stringify(server.model.records().map((r) => [r.id, r.version, r.deleted, r.value]))})`,
  ).toEqual(local)
  // No acknowledged local operation is lost: where the app wrote a value last, its value won.
  // (A local delete is not checked here: deleting an item created in the same tick changes
  // nothing locally, so a remote value the app never saw may rightly arrive afterwards.)
  for (const k of settledByLocal) {
    const last = lastLocal.get(k)
    if (last) expect(local[k], `last local write of ${k}`).toEqual(last)
  }
  // Nothing is applied twice: the server applied at most one operation per local change (they
  // coalesce) plus the other device's writes.
  expect(server.model.appliedOps).toBeLessThanOrEqual(localOps + remoteOps)

  await withTime(app.persistence.dispose({ flush: false }))
}

test(`model: ${RUNS} random runs of 50 to 200 steps (seed ${SEED})`, async () => {
  console.log(`[model test] fast-check seed ${SEED}, ${RUNS} runs; replay with FC_SEED=${SEED}`)
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] })
  try {
    await fc.assert(
      fc.asyncProperty(fc.array(command, { minLength: 50, maxLength: 200 }), (commands) => runScenario(commands)),
      { numRuns: RUNS, seed: SEED, endOnFailure: process.env.FC_NO_SHRINK === '1', ...(process.env.FC_PATH ? { path: process.env.FC_PATH } : {}) },
    )
  } finally {
    vi.useRealTimers()
  }
}, 900_000)
