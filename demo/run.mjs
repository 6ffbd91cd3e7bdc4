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
} from '../dist/index.js'

// idb recognises IndexedDB objects by their global classes, as in a browser.
for (const name of ['IDBCursor', 'IDBCursorWithValue', 'IDBDatabase', 'IDBIndex', 'IDBKeyRange', 'IDBObjectStore', 'IDBOpenDBRequest', 'IDBRequest', 'IDBTransaction', 'IDBVersionChangeEvent']) {
  globalThis[name] = fake[name]
}

const started = Date.now()
const c = (code) => (text) => (process.stdout.isTTY ? `\x1b[${code}m${text}\x1b[0m` : text)
const bold = c('1')
const dim = c('2')
const green = c('32')
const yellow = c('33')
const t = () => dim(`[${((Date.now() - started) / 1000).toFixed(1).padStart(4)}s]`)
const log = (...parts) => console.log(t(), ...parts)
const step = (title) => console.log(`\n${bold(`== ${title}`)}`)
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
async function until(check, what, timeoutMs = 15_000) {
  const end = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
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
      const proc = spawn(process.env.PYTHON ?? 'python3', [...args, '--port', String(port)], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PYTHONUNBUFFERED: '1' } })
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
      const outbox = ops.filter((op) => op.store === '__ris_outbox' && op.type === 'put').length
      if (local > 0) commits.push({ local, outbox })
    },
  }
  const persistence = createPersistenceMiddleware({
    dbName: 'demo',
    slices: { files: { debounceMs: 300, batchSize: 10, ...extra.slice } },
    storage,
    onError: (e) => log(yellow(`${name} onError: ${e.name}: ${e.message.length > 160 ? `${e.message.slice(0, 157)}…` : e.message}`)),
    remote: {
      baseUrl,
      clientId: name,
      retry: { initialDelayMs: 200, maxDelayMs: 1000 },
      onConflict: (conflict) =>
        log(yellow(`${name} conflict on ${conflict.key} (${conflict.phase}): strategy ${conflict.strategy} → ${conflict.resolution}`)),
      ...extra.remote,
    },
  })
  const progress = []
  const progressLog = () => (next) => (action) => {
    if (action.type === 'redux-idb-sync/sync/progressChanged' && action.payload) progress.push(action.payload)
    return next(action)
  }
  // Alice runs all three middleware; the others only persistence (each works alone too).
  const monitor = extra.companions ? createSyncMonitorMiddleware({ default: name === 'alice' }) : null
  const autoSync = extra.companions
    ? createAutoSyncMiddleware({ intervalMs: 2000, syncOnChange: true, settleMs: 150, maxQueueSize: 50, leader: 'always', default: name === 'alice', onError: () => {} })
    : null
  const store = configureStore({
    reducer: { files: filesSlice.reducer, sync: syncReducer },
    middleware: (g) => g().concat(persistence, ...(monitor ? [monitor, autoSync] : []), progressLog),
    enhancers: (g) => g().concat(persistence.enhancer),
  })
  if (autoSync) {
    let last = autoSync.getAutoSyncStatus()
    autoSync.subscribeAutoSyncStatus((status) => {
      if (status.lastSyncTime !== last.lastSyncTime) {
        log(dim(`${name} auto-sync: synced (changeCounter ${last.changeCounter} → ${status.changeCounter}), next interval in ${status.nextSyncIn} ms`))
      }
      last = status
    })
  }
  return { name, store, persistence, commits, progress, monitor, autoSync }
}

function metricsLine(client) {
  const m = client.monitor.getSyncMetrics()
  const a = client.autoSync.getAutoSyncStatus()
  return (
    `metrics: ${m.totalOperations} ops (${m.successfulOperations} ok, ${m.failedOperations} failed, success ${(m.successRate * 100).toFixed(0)}%), ` +
    `avg ${m.averageOperationTime.toFixed(1)} ms, p50 ${m.p50OperationTime} ms, p95 ${m.p95OperationTime} ms, queue ${m.pendingOperations}, outbox ${m.outboxDepth}, dead ${m.deadLetterCount} | ` +
    `auto-sync: enabled=${a.enabled} changeCounter=${a.changeCounter} nextSyncIn=${a.nextSyncIn} lastSync=${a.lastSyncTime ? new Date(a.lastSyncTime).toISOString().slice(11, 23) : '-'}`
  )
}

function bar(done, total, width = 30) {
  const filled = total === 0 ? width : Math.round((done / total) * width)
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(done).padStart(4)}/${total}`
}

// ------------------------------------------------------------------ the run

const flask = process.env.DEMO_SERVER !== 'mock' && hasFlask()
if (!flask) console.log(yellow('Python with Flask was not found (python3 -c "import flask" failed): using the in-memory mock server instead.'))
const server = flask ? await startFlask() : await startMock()
let exitCode = 0
const clients = []
try {
  console.log(bold(`redux-idb-sync demo — server: ${server.kind} at ${server.baseUrl}`))
  const a = makeClient('alice', server.baseUrl, { companions: true })
  clients.push(a)
  await a.persistence.whenHydrated()
  await until(() => a.store.getState().sync.status.flaskConnected, 'the first health check')
  log(`alice hydrated; flaskConnected=${a.store.getState().sync.status.flaskConnected}`)

  step('1. Edits are debounced per key and batched into IndexedDB, then pushed')
  for (let round = 1; round <= 5; round++) {
    for (let i = 1; i <= 12; i++) a.store.dispatch(saveFile({ id: `file-${i}`, name: `file-${i}.txt`, body: `draft ${round}` }))
  }
  log(`60 dispatches on 12 files → ${a.persistence.getStatus().pendingOperations} keys pending (each key keeps only its latest change)`)
  await until(() => a.persistence.getStatus().pendingOperations === 0 && a.commits.length > 0, 'the debounced write')
  log(`IndexedDB transactions: ${a.commits.map((x) => `${x.local} items (+${x.outbox} outbox entries)`).join(', ')} — batchSize 10`)
  await until(() => a.store.getState().sync.outboxDepth === 0, 'the push')
  log(green(`pushed: outbox empty, server applied ${(await server.stats()).appliedOps} operations`))
  log(metricsLine(a))

  step('2. The server goes down; the app carries on locally and the outbox grows')
  await server.down()
  for (let i = 1; i <= 8; i++) {
    a.store.dispatch(saveFile({ id: `file-${i}`, name: `file-${i}.txt`, body: `offline edit ${i}` }))
    await sleep(40)
  }
  await a.persistence.flush()
  await until(() => !a.store.getState().sync.status.flaskConnected, 'the failed push')
  const down = a.store.getState().sync
  log(`flaskConnected=${down.status.flaskConnected}, syncStatus=${down.status.syncStatus}, error="${down.status.error}"`)
  log(yellow(`outbox depth ${down.outboxDepth}: durable in IndexedDB, in the same transactions as the local writes`))
  log(metricsLine(a))

  step('3. The server comes back; health checks notice and the outbox drains')
  await server.up()
  const back = Date.now()
  await until(() => a.store.getState().sync.outboxDepth === 0 && a.store.getState().sync.status.flaskConnected, 'the drain')
  log(green(`reconnected and drained in ${Date.now() - back} ms; server applied ${(await server.stats()).appliedOps} operations in total`))
  log(metricsLine(a))

  step('4. Two clients edit the same file: a conflict is detected and resolved')
  const b = makeClient('bob', server.baseUrl, { remote: { conflict: 'last-write-wins' } })
  clients.push(b)
  await b.persistence.whenHydrated()
  await b.store.dispatch(syncFromFlaskBulk())
  log(`bob pulled ${b.store.getState().files.ids.length} files`)
  b.store.dispatch(saveFile({ id: 'file-1', name: 'file-1.txt', body: 'bob was here' }))
  await b.persistence.flush()
  await until(() => b.store.getState().sync.outboxDepth === 0, "bob's push")
  a.store.dispatch(saveFile({ id: 'file-1', name: 'file-1.txt', body: 'alice edited offline-stale copy' }))
  await a.persistence.flush()
  await until(() => a.store.getState().sync.conflicts.length > 0 && a.store.getState().sync.outboxDepth === 0, 'the conflict')
  const conflict = a.store.getState().sync.conflicts.at(-1)
  log(`alice's state.sync.conflicts: ${conflict.key}, server version ${conflict.server?.version}, resolution "${conflict.resolution}" (server-wins is the default)`)
  log(`alice now shows: "${a.store.getState().files.entities['file-1'].body}"`)

  step('5. A bulk sync with progress: a new device pulls 1,000 files')
  for (let i = 13; i <= 1000; i++) a.store.dispatch(saveFile({ id: `file-${i}`, name: `file-${i}.txt`, body: `generated ${i}` }))
  await a.persistence.flush()
  await until(() => a.store.getState().sync.outboxDepth === 0, 'pushing 988 files')
  const stats = await server.stats()
  log(`alice pushed 988 new files in ${stats.requests?.push ?? '?'} push requests so far (batches of 100)`)
  const c3 = makeClient('carol', server.baseUrl)
  clients.push(c3)
  await c3.persistence.whenHydrated()
  await c3.store.dispatch(syncFromFlaskBulk())
  for (const p of c3.progress) if (p.operation === 'pull') log(`pull ${bar(p.done, p.total)}`)
  log(green(`carol has ${c3.store.getState().files.ids.length} files, in IndexedDB too (pending writes: ${c3.persistence.getStatus().pendingOperations})`))

  step('6. What the metrics say now')
  log(`alice ${metricsLine(a)}`)
  const recent = a.monitor.getSyncMetrics().operationHistory.slice(-6).map((o) => `${o.kind}(${o.items})${o.ok ? '' : '✗'} ${o.durationMs}ms`)
  log(`alice's last operations: ${recent.join(', ')}`)
  for (const client of clients) {
    const s = client.store.getState().sync
    const p = client.persistence.getStatus()
    log(
      `${client.name.padEnd(6)} syncStatus=${s.status.syncStatus} flaskConnected=${s.status.flaskConnected} lastSync=${s.status.lastSyncTime ? new Date(s.status.lastSyncTime).toISOString() : '-'} ` +
        `outbox=${s.outboxDepth} deadLetters=${s.deadLetters.length} conflicts=${s.conflicts.length} ` +
        `pending=${p.pendingOperations} errors=${p.errorCount} idbTransactions=${client.commits.length}`,
    )
  }
  const final = await server.stats()
  log(`server: ${final.appliedOps} operations applied; requests ${JSON.stringify(final.requests)}`)

  step('7. Bad input is refused with a typed error; logout deletes everything local')
  let deep = { level: 0 }
  for (let i = 1; i <= 150; i++) deep = { level: i, inner: deep }
  a.store.dispatch(saveFile({ id: 'good', name: 'good.txt', body: 'dispatched next to a bad one' }))
  a.store.dispatch(saveFile({ id: 'bad', name: 'bad.txt', body: 'nested 150 levels', meta: deep }))
  const failure = await a.persistence.flush().then(
    () => null,
    (error) => error,
  )
  log(`flush() rejected with ${failure?.name}: ${failure?.errors?.map((e) => e.name).join(', ')}; status.lastError = ${a.persistence.getStatus().lastError?.name}`)
  await until(async () => (await server.stats()).appliedOps > final.appliedOps && a.store.getState().sync.outboxDepth === 0, 'the good file on the server')
  log(green(`the good file is in IndexedDB and on the server; the bad one stays in the Redux state only (pending writes: ${a.persistence.getStatus().pendingOperations})`))
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
