// npm run demo: a Redux store with redux-idb-sync's middleware, driven against the reference
// Flask server (started here on 127.0.0.1 with SQLite in a temporary directory). Prints what
// the library does at each step, then stops everything it started and exits 0.
//
// IndexedDB comes from fake-indexeddb (this runs in Node); the library is the built dist/.
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { configureStore, createEntityAdapter, createSlice } from '@reduxjs/toolkit'
import * as fake from 'fake-indexeddb'
import {
  createAutoSyncMiddleware,
  createIdbStore,
  createPersistenceMiddleware,
  createSyncMonitorMiddleware,
  syncFromFlaskBulk,
  syncReducer,
  syncToFlaskBulk,
} from '../dist/index.js'
import { createRemote } from '../dist/remote.js'

// idb recognises IndexedDB objects by their global classes, as in a browser.
for (const name of [
  'IDBCursor',
  'IDBCursorWithValue',
  'IDBDatabase',
  'IDBIndex',
  'IDBKeyRange',
  'IDBObjectStore',
  'IDBOpenDBRequest',
  'IDBRequest',
  'IDBTransaction',
  'IDBVersionChangeEvent',
]) {
  globalThis[name] = fake[name]
}

const started = Date.now()
const c = (code) => (text) => (process.stdout.isTTY ? `\x1b[${code}m${text}\x1b[0m` : text)
const bold = c('1')
const dim = c('2')
const green = c('32')
const yellow = c('33')
/** Seconds since the demo started, to the millisecond: live progress lines show their real spacing. */
const t = () => dim(`[${((Date.now() - started) / 1000).toFixed(3).padStart(6)} s]`)
const log = (...parts) => console.log(t(), ...parts)
const step = (title) => console.log(`\n${bold(`== ${title}`)}`)
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
/**
 * Waits until `check()` (which may be async) holds. The story waits on conditions, never on
 * fixed delays, and the limit is generous: a loaded machine (npm test beside it) is slow, not wrong.
 */
async function until(check, what, timeoutMs = 60_000) {
  const end = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`)
    await sleep(20)
  }
}

// ------------------------------------------------------------------ the server

function hasFlask() {
  return spawnSync(process.env.PYTHON ?? 'python3', ['-c', 'import flask'], { stdio: 'ignore' }).status === 0
}

async function startFlask() {
  const dir = mkdtempSync(join(tmpdir(), 'ris-demo-'))
  const args = ['server/app.py', '--host', '127.0.0.1', '--db', join(dir, 'demo.sqlite3'), '--testing-endpoints']
  let child = null
  let port = 0
  const launch = () =>
    new Promise((resolve, reject) => {
      const proc = spawn(process.env.PYTHON ?? 'python3', [...args, '--port', String(port)], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, PYTHONUNBUFFERED: '1' },
      })
      let out = ''
      proc.stdout.on('data', (d) => {
        out += d
        const m = /LISTENING http:\/\/127\.0\.0\.1:(\d+)/.exec(out)
        if (m) {
          port = Number(m[1])
          child = proc
          resolve()
        }
      })
      proc.stderr.on('data', () => {})
      proc.on('exit', (code) => reject(new Error(`Flask exited with ${code}`)))
    })
  await launch()
  const baseUrl = () => `http://127.0.0.1:${port}/api`
  return {
    kind: 'Flask (server/app.py, SQLite)',
    baseUrl: baseUrl(),
    async down() {
      const proc = child
      child = null
      await new Promise((r) => {
        proc.once('exit', r)
        proc.kill('SIGTERM')
      })
    },
    up: launch,
    async stats() {
      const r = await fetch(`${baseUrl()}/_test/stats`)
      return r.json()
    },
    async close() {
      if (child) await this.down()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

async function startMock() {
  const { setupServer } = await import('msw/node')
  const { createMockSyncServer } = await import('../dist/testing.js')
  const baseUrl = 'http://sync.demo/api'
  const server = createMockSyncServer({ baseUrl, latencyMs: 2 })
  const msw = setupServer(...server.handlers)
  msw.listen({ onUnhandledRequest: 'error' })
  return {
    kind: 'in-memory mock server (redux-idb-sync/testing over msw)',
    baseUrl,
    down: async () => server.down(),
    up: async () => server.up(),
    stats: async () => ({ appliedOps: server.model.appliedOps, requests: server.requests }),
    close: async () => msw.close(),
  }
}

// ------------------------------------------------------------------ the app

const files = createEntityAdapter()
const filesSlice = createSlice({
  name: 'files',
  initialState: files.getInitialState(),
  reducers: { saveFile: files.upsertOne, deleteFile: files.removeOne, setFiles: files.setAll },
})
const { saveFile } = filesSlice.actions

/** Bob's merge: both versions survive, the server's body first. */
const mergeBodies = (ctx) => (ctx.local && ctx.server ? { ...ctx.server, body: `${ctx.server.body} + ${ctx.local.body}` } : (ctx.local ?? ctx.server))

function makeClient(name, baseUrl, extra = {}) {
  const factory = new fake.IDBFactory()
  const commits = []
  // A LocalStore wrapper that reports each IndexedDB transaction, to show the batching.
  const idb = createIdbStore({ dbName: 'demo', openTimeoutMs: 5000, factory, durability: 'default' })
  const storage = {
    ...idb,
    kind: idb.kind,
    persistent: idb.persistent,
    async commit(ops) {
      await idb.commit(ops)
      const local = ops.filter((op) => !op.store.startsWith('__ris_')).length
      if (local > 0) commits.push({ local, outbox: 0 })
    },
    // Local writes of synced slices are one transaction that reads and writes (items and their
    // outbox rows): count what it wrote once it committed.
    async transact(stores, work) {
      let local = 0
      let outbox = 0
      const result = await idb.transact(stores, (tx) =>
        work({
          get: (store, key) => tx.get(store, key),
          put(store, key, value, ref) {
            tx.put(store, key, value, ref)
            if (store === '__ris_outbox') outbox++
            else if (!store.startsWith('__ris_')) local++
          },
          delete(store, key) {
            tx.delete(store, key)
            if (!store.startsWith('__ris_')) local++
          },
        }),
      )
      if (local > 0) commits.push({ local, outbox })
      return result
    },
  }
  // This client's network: while `net.offline`, every request fails as a dropped connection.
  const net = { offline: false }
  const persistence = createPersistenceMiddleware({
    dbName: 'demo',
    slices: { files: { debounceMs: 300, batchSize: 10, ...extra.slice } },
    storage,
    onError: (e) => log(yellow(`${name} onError: ${e.name}: ${e.message.length > 160 ? `${e.message.slice(0, 157)}…` : e.message}`)),
    remote: createRemote({
      baseUrl,
      clientId: name,
      retry: { initialDelayMs: 200, maxDelayMs: 1000 },
      fetch: (input, init) => (net.offline ? Promise.reject(new TypeError(`fetch failed: ${name} is offline`)) : fetch(input, init)),
      onConflict: (conflict) =>
        log(
          yellow(
            `${name} conflict on ${conflict.key}, found while ${conflict.phase === 'push' ? 'pushing' : 'pulling'}: strategy ${conflict.strategy} → ${conflict.resolution}`,
          ),
        ),
      ...extra.remote,
    }),
  })
  // Bulk progress (state.sync.progress), printed the moment it changes.
  const progressLog = () => (next) => (action) => {
    if (action.type === 'redux-idb-sync/sync/progressChanged' && action.payload) {
      const { operation, done, total } = action.payload
      log(`${name} ${operation === 'push' ? 'push' : 'pull'} ${bar(done, total)}`)
    }
    return next(action)
  }
  // Alice runs all three middleware; the others only persistence (each works alone too).
  const monitor = extra.companions ? createSyncMonitorMiddleware({ default: name === 'alice' }) : null
  const autoSync = extra.companions
    ? createAutoSyncMiddleware({
        intervalMs: 2000,
        syncOnChange: true,
        settleMs: 150,
        maxQueueSize: 50,
        leader: 'always',
        default: name === 'alice',
        onError: () => {},
      })
    : null
  const store = configureStore({
    reducer: { files: filesSlice.reducer, sync: syncReducer },
    middleware: (g) =>
      g({
        // What RTK's docs advise for a big slice: both development checks walk the whole state on
        // every dispatch, which for 1,000 files costs up to ~150 ms each ("took 155ms" warnings).
        // The files slice is plain data, and the library checks everything it persists itself.
        // Both checks stay on for the rest of the state (the sync slice).
        immutableCheck: { ignoredPaths: ['files'] },
        serializableCheck: { ignoredPaths: ['files'] },
      }).concat(persistence, ...(monitor ? [monitor, autoSync] : []), ...(extra.showProgress ? [progressLog] : [])),
    enhancers: (g) => g().concat(persistence.enhancer),
  })
  if (autoSync) {
    let last = autoSync.getAutoSyncStatus()
    let runs = 0
    autoSync.subscribeAutoSyncStatus((status) => {
      if (status.lastSyncTime !== last.lastSyncTime) {
        runs += 1
        // changeCounter counts local changes not yet synced: before the run it held what the run
        // synced plus what was made while it ran; after it, only the latter.
        const synced = last.changeCounter - status.changeCounter
        log(
          dim(
            `${name} auto-sync run ${runs}: pushed, then pulled; ` +
              `${synced > 0 ? `${synced} local change(s) synced` : 'no local change was waiting'}` +
              `${status.changeCounter > 0 ? `, ${status.changeCounter} made meanwhile wait for the next run` : ''}`,
          ),
        )
      }
      last = status
    })
  }
  return { name, store, persistence, commits, monitor, autoSync, net }
}

const state = (client) => client.store.getState()
/** What the server holds for a file (GET /items/files/:id), or undefined. */
async function serverBody(id) {
  const response = await fetch(`${server.baseUrl}/items/files/${encodeURIComponent(id)}`)
  return response.ok ? (await response.json()).value?.body : undefined
}
const body = (client, id) => state(client).files.entities[id]?.body

function metricsLine(client) {
  const m = client.monitor.getSyncMetrics()
  const a = client.autoSync.getAutoSyncStatus()
  return (
    `monitor: ${m.totalOperations} operations (IndexedDB batches, hydrations, push requests, pull pages, health checks), ` +
    `${m.successfulOperations} ok and ${m.failedOperations} failed (${(m.successRate * 100).toFixed(0)}% success); ` +
    `duration average ${m.averageOperationTime.toFixed(1)} ms, median ${m.p50OperationTime} ms, 95th percentile ${m.p95OperationTime} ms\n` +
    `           waiting: ${m.pendingOperations} key(s) in the local debounce queue, ${m.outboxDepth} operation(s) in the outbox for the server, ${m.deadLetterCount} dead letter(s) | ` +
    `auto-sync: ${a.enabled ? 'on' : 'off'}, ${a.changeCounter} local change(s) since its last run, last run at ${a.lastSyncTime ? new Date(a.lastSyncTime).toISOString().slice(11, 23) : '-'}`
  )
}

function bar(done, total, width = 30) {
  const filled = total === 0 ? width : Math.round((done / total) * width)
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(done).padStart(4)}/${total}`
}

// ------------------------------------------------------------------ the run

let server = null
const flask = process.env.DEMO_SERVER !== 'mock' && hasFlask()
if (!flask) console.log(yellow('Python with Flask was not found (python3 -c "import flask" failed): using the in-memory mock server instead.'))
server = flask ? await startFlask() : await startMock()
let exitCode = 0
const clients = []
try {
  console.log(bold(`redux-idb-sync demo — server: ${server.kind} at ${server.baseUrl}`))
  console.log(dim('Each line starts with the seconds since the demo started. IndexedDB is fake-indexeddb (this is Node); each client has its own.'))
  const a = makeClient('alice', server.baseUrl, { companions: true, showProgress: true })
  clients.push(a)
  await a.persistence.whenHydrated()
  await until(() => state(a).sync.status.flaskConnected, 'the first health check')
  log(`alice hydrated (an empty database: nothing to load) and the health check answered; flaskConnected=${state(a).sync.status.flaskConnected}`)

  step('1. Edits are debounced per key and batched into IndexedDB, then pushed')
  for (let round = 1; round <= 5; round++) {
    for (let i = 1; i <= 12; i++) a.store.dispatch(saveFile({ id: `file-${i}`, name: `file-${i}.txt`, body: `draft ${round}` }))
  }
  log(`60 dispatches (5 rounds over 12 files) → ${a.persistence.getStatus().pendingOperations} keys pending: each key keeps only its latest change`)
  await until(() => a.persistence.getStatus().pendingOperations === 0 && a.commits.length > 0, 'the debounced write')
  log(
    `300 ms after the last change, IndexedDB transactions: ${a.commits.map((x) => `${x.local} items (+${x.outbox} outbox entries, in the same transaction)`).join(', ')} — at most batchSize 10 per transaction`,
  )
  await until(() => state(a).sync.outboxDepth === 0, 'the push')
  log(green(`pushed: alice's outbox is empty; the server has applied ${(await server.stats()).appliedOps} operations (one per file)`))
  log(metricsLine(a))

  step('2. The server goes down; the app carries on locally and the outbox grows')
  await server.down()
  for (let i = 1; i <= 8; i++) {
    a.store.dispatch(saveFile({ id: `file-${i}`, name: `file-${i}.txt`, body: `offline edit ${i}` }))
    await sleep(40)
  }
  await a.persistence.flush()
  await until(() => !state(a).sync.status.flaskConnected && state(a).sync.outboxDepth === 8, 'the failed push')
  const down = state(a).sync
  log(`flaskConnected=${down.status.flaskConnected}, syncStatus=${down.status.syncStatus}, error="${down.status.error}"`)
  log(yellow(`outbox: ${down.outboxDepth} operations (one per edited file), durable in IndexedDB: written in the same transactions as the local edits`))
  log(metricsLine(a))

  step('3. The server comes back; health checks notice and the outbox drains')
  await server.up()
  const back = Date.now()
  await until(() => state(a).sync.outboxDepth === 0 && state(a).sync.status.flaskConnected, 'the drain')
  log(
    green(
      `reconnected and drained ${Date.now() - back} ms after the server was back (health checks back off from 200 ms to 1 s); the server has applied ${(await server.stats()).appliedOps} operations in total (12 + 8)`,
    ),
  )
  log(metricsLine(a))

  step('4. Two clients edit the same file: a conflict, settled by the strategy')
  const b = makeClient('bob', server.baseUrl, { slice: { conflict: mergeBodies } })
  clients.push(b)
  await b.persistence.whenHydrated()
  await b.store.dispatch(syncFromFlaskBulk())
  log(`bob pulled ${state(b).files.ids.length} files from the server`)

  // Alice loses her network, so she cannot see bob's edit before hers: the conflict is certain.
  a.net.offline = true
  a.store.dispatch(saveFile({ id: 'file-1', name: 'file-1.txt', body: "alice's offline edit" }))
  await a.persistence.flush()
  await until(() => !state(a).sync.status.flaskConnected, "alice's failed push")
  log(`alice is offline and edits file-1: "${body(a, 'file-1')}" (in her IndexedDB and outbox: ${state(a).sync.outboxDepth} operation)`)
  b.store.dispatch(saveFile({ id: 'file-1', name: 'file-1.txt', body: "bob's edit" }))
  await b.persistence.flush()
  await until(async () => (await serverBody('file-1')) === "bob's edit" && state(b).sync.outboxDepth === 0, "bob's push")
  log(`bob edits file-1 too and pushes it: the server now has "bob's edit"`)
  a.net.offline = false
  await until(() => state(a).sync.conflicts.some((c) => c.key === 'files:file-1') && state(a).sync.outboxDepth === 0, "alice's conflict")
  const conflict = state(a).sync.conflicts.find((c) => c.key === 'files:file-1')
  log(`alice is back online; her push was based on a version the server no longer has, so the server refused it as a conflict`)
  log(`alice uses server-wins (the default): she now shows "${body(a, 'file-1')}" (server version ${conflict.server?.version})`)
  log(
    yellow(
      `her own version is not lost: state.sync.conflicts holds it (key ${conflict.key}, resolution "${conflict.resolution}", local.body "${conflict.local?.body}")`,
    ),
  )
  log(
    dim(
      `  with conflict: 'manual' she would keep "${conflict.local?.body}" on screen until resolveConflict({ key, resolution: 'local' | 'server' | 'merged', value });`,
    ),
  )
  log(dim('  with a merge function, both are combined and pushed. Bob uses one: (ctx) => ({ ...ctx.server, body: `${ctx.server.body} + ${ctx.local.body}` })'))

  b.net.offline = true
  b.store.dispatch(saveFile({ id: 'file-2', name: 'file-2.txt', body: "bob's offline line" }))
  await b.persistence.flush()
  await until(() => !state(b).sync.status.flaskConnected && state(b).sync.outboxDepth === 1, "bob's failed push")
  a.store.dispatch(saveFile({ id: 'file-2', name: 'file-2.txt', body: "alice's line" }))
  await a.persistence.flush()
  await until(async () => (await serverBody('file-2')) === "alice's line", "alice's push of file-2")
  log(`now bob is offline and edits file-2 ("bob's offline line") while alice pushes her own ("alice's line")`)
  b.net.offline = false
  const merged = "alice's line + bob's offline line"
  await until(async () => state(b).sync.conflicts.some((c) => c.key === 'files:file-2') && (await serverBody('file-2')) === merged, "bob's merged push")
  log(green(`bob is back: his merge ran and was pushed; he shows "${body(b, 'file-2')}"`))
  await until(() => body(a, 'file-2') === merged, "alice's pull of the merge")
  log(green(`alice's auto-sync pulled the merge: she shows "${body(a, 'file-2')}"`))

  step('5. Bulk sync with live progress: 988 new files pushed, then a new device pulls all 1,000')
  const pushesBefore = (await server.stats()).requests?.push ?? 0
  for (let i = 13; i <= 1000; i++) a.store.dispatch(saveFile({ id: `file-${i}`, name: `file-${i}.txt`, body: `generated ${i}` }))
  log('alice creates 988 files and dispatches syncToFlaskBulk(); progress counts operations acknowledged by the server.')
  log(dim('  her auto-sync runs alongside (maxQueueSize 50 starts a run once 50 changes are committed); both push from one outbox, so nothing is sent twice'))
  await a.store.dispatch(syncToFlaskBulk())
  await until(() => state(a).sync.outboxDepth === 0, 'pushing 988 files')
  const pushRequests = ((await server.stats()).requests?.push ?? 0) - pushesBefore
  log(green(`988 files pushed in ${pushRequests} push requests (remote.batchSize: 100 operations per request)`))
  const c3 = makeClient('carol', server.baseUrl, { showProgress: true })
  clients.push(c3)
  await c3.persistence.whenHydrated()
  log('carol, a new device, dispatches syncFromFlaskBulk(): one download, then applied to her store and IndexedDB in chunks of 500:')
  await c3.store.dispatch(syncFromFlaskBulk())
  await until(() => c3.persistence.getStatus().pendingOperations === 0, "carol's local writes")
  log(
    green(
      `carol has ${state(c3).files.ids.length} files, in her IndexedDB too (pulled data is written directly, never queued: pending writes ${c3.persistence.getStatus().pendingOperations})`,
    ),
  )

  step('6. What the metrics say now')
  log(`alice ${metricsLine(a)}`)
  const recent = a.monitor
    .getSyncMetrics()
    .operationHistory.slice(-6)
    .map((o) => `${o.kind} ${o.items} item(s) in ${o.durationMs} ms${o.ok ? '' : ' (failed)'}`)
  log(`alice's last 6 operations (of the monitor's history of 100): ${recent.join('; ')}`)
  log(dim('  a pull lists every change on the server since her last pull, her own pushes included (500 + 488 = her 988 files); a pull of 0 found nothing new'))
  for (const client of clients) {
    const s = state(client).sync
    const p = client.persistence.getStatus()
    log(
      `${client.name.padEnd(6)} syncStatus=${s.status.syncStatus} flaskConnected=${s.status.flaskConnected} lastSync=${s.status.lastSyncTime ? new Date(s.status.lastSyncTime).toISOString().slice(11, 23) : '-'} ` +
        `outbox=${s.outboxDepth} deadLetters=${s.deadLetters.length} conflicts=${s.conflicts.length} ` +
        `pending=${p.pendingOperations} errors=${p.errorCount} idbTransactions=${client.commits.length}`,
    )
  }
  log(dim('  outbox: operations not yet acknowledged by the server; conflicts: entries in state.sync.conflicts; pending: keys in the local debounce queue;'))
  log(dim('  errors: failures reported to onError (the offline pushes above); idbTransactions: IndexedDB write transactions of local items'))
  const final = await server.stats()
  log(`server: ${final.appliedOps} operations applied; requests by endpoint ${JSON.stringify(final.requests)}`)

  step('7. Bad input is refused with a typed error; logout deletes everything local')
  let deep = { level: 0 }
  for (let i = 1; i <= 150; i++) deep = { level: i, inner: deep }
  a.store.dispatch(saveFile({ id: 'good', name: 'good.txt', body: 'dispatched next to a bad one' }))
  a.store.dispatch(saveFile({ id: 'bad', name: 'bad.txt', body: 'nested 150 levels', meta: deep }))
  const failure = await a.persistence.flush().then(
    () => null,
    (error) => error,
  )
  log(
    `flush() rejected with ${failure?.name}: ${failure?.errors?.map((e) => e.name).join(', ')}; status.lastError = ${a.persistence.getStatus().lastError?.name}`,
  )
  await until(async () => (await server.stats()).appliedOps > final.appliedOps && state(a).sync.outboxDepth === 0, 'the good file on the server')
  log(
    green(
      `the good file is in IndexedDB and on the server; the bad one stays in the Redux state only (pending writes: ${a.persistence.getStatus().pendingOperations})`,
    ),
  )
  await a.persistence.clear()
  log(`alice logs out: persistence.clear() dropped the outbox, disposed (${a.persistence.getStatus().disposed}) and deleted her database`)
} catch (error) {
  exitCode = 1
  console.error(error)
} finally {
  for (const client of clients) {
    client.autoSync?.dispose()
    client.monitor?.dispose()
    await client.persistence.dispose().catch(() => {})
  }
  await server.close()
  console.log(`\n${exitCode === 0 ? green('demo finished') : 'demo FAILED'} in ${((Date.now() - started) / 1000).toFixed(1)} s`)
  process.exit(exitCode)
}
