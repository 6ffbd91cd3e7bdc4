import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

// The repository root; `npm run bench` runs a bundled copy of this file from elsewhere and says where.
const root = process.env.RIS_REPO_ROOT ?? resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')

/*
 * Which server the tests get (environment variables, read at each start):
 *
 * - `RIS_SERVER_DATABASE=postgres`: PostgreSQL instead of SQLite. Needs `REDUX_IDB_SYNC_PG_URL`,
 *   the URL of a running PostgreSQL that may create databases (`eval "$(scripts/pg-temp.sh start)"`
 *   exports it). Every started server gets a database of its own, dropped by `close()`.
 * - `RIS_SERVER_WORKERS=N`: run the app under gunicorn with N worker processes (gthread, 8
 *   threads each) instead of `server/app.py`'s single Werkzeug process. Needs gunicorn
 *   (`pip install './server[gunicorn]'`).
 *
 *   RIS_SERVER_DATABASE=postgres RIS_SERVER_WORKERS=4 npm run test:e2e
 *
 * With `realtime: true` the real-time socket server runs too (needs the websockets package): on a
 * thread of `server/app.py` (`--realtime-port 0`), or, under gunicorn or with
 * `realtime: 'process'`, as its own process (`python3 -m redux_idb_sync_server.realtime`, LISTEN on
 * PostgreSQL, head polling on SQLite), which `stopRealtime()` / `startRealtime()` kill and restart.
 */

/** Token configuration: token → tenant, or token → `{ tenant, expires_at }` (epoch ms). */
export type TokenMap = Record<string, string | { tenant: string; expires_at?: number }>

/** A running reference Flask server on 127.0.0.1, with SQLite in a temporary directory (or PostgreSQL, see above). */
export interface FlaskServer {
  /** e.g. `http://127.0.0.1:43121/api` */
  readonly baseUrl: string
  readonly port: number
  /** `sqlite` or `postgresql`. */
  readonly backend: 'sqlite' | 'postgresql'
  /** The SQLite path or the `postgresql://` URL the server uses. */
  readonly database: string
  /** gunicorn workers, or 0 for `server/app.py`. */
  readonly workers: number
  /** The real-time channel's URL (`ws://127.0.0.1:<port>`), or `null` without `realtime`. */
  readonly realtimeUrl: string | null
  /** Kills the socket process (SIGKILL: its sockets break without a close frame); `realtime: 'process'` only. */
  stopRealtime(): Promise<void>
  /** Starts it again on the same port. */
  startRealtime(): Promise<void>
  /**
   * POST /api/_test/tokens: a token for `tenant` stored in the database (every worker and the
   * socket process accept it), expiring after `ttlMs` (never when omitted).
   */
  issueToken(tenant: string, ttlMs?: number): Promise<{ token: string; tenant: string; expires_at: number | null }>
  /** Stops the process (the database file stays, as on a real restart). */
  stop(): Promise<void>
  /** Starts it again on the same port and database. */
  start(): Promise<void>
  /** Stops it and deletes the temporary directory. */
  close(): Promise<void>
  /** POST /api/_test/reset */
  reset(): Promise<void>
  /** GET /api/_test/stats */
  stats(): Promise<{ appliedOps: number; requests: Record<string, number> }>
  /** Makes the next `count` requests fail with `status`. */
  failNext(count: number, status: number): Promise<void>
  /**
   * GET /api/_test/history: the record of every APPLIED operation, in apply order (by `seq`).
   * Replays (duplicates) and conflicts add nothing, so a value that appears in two records was
   * applied twice.
   */
  history(): Promise<HistoryRecord[]>
}

/** One applied operation, as `GET /api/_test/history` lists it (the record it produced). */
export interface HistoryRecord {
  readonly opId: string
  readonly collection: string
  readonly id: string
  readonly version: number
  readonly seq: number
  readonly value: unknown
  readonly deleted: boolean
  readonly clientTime: number
  readonly updatedAt: number
}

/** Whether `python3 -c 'import flask'` works here. */
export function hasFlask(): boolean {
  return spawnSync(process.env.PYTHON ?? 'python3', ['-c', 'import flask'], { stdio: 'ignore' }).status === 0
}

const python = (): string => process.env.PYTHON ?? 'python3'

/** Runs one SQL statement on the PostgreSQL at `url` (psycopg, autocommit). */
function postgresExec(url: string, sql: string): void {
  const code = 'import sys, psycopg\nwith psycopg.connect(sys.argv[1], autocommit=True) as c: c.execute(sys.argv[2])'
  const done = spawnSync(python(), ['-c', code, url, sql], { encoding: 'utf8' })
  if (done.status !== 0) throw new Error(`PostgreSQL: ${sql} failed\n${done.stderr}`)
}

interface Launch {
  /** Arguments after the interpreter, with `{port}` where the port goes. */
  args: string[]
  env: Record<string, string>
  /** What the process prints once it listens. */
  ready: RegExp
}

const outputs = new WeakMap<ChildProcess, string>()
const lastOutput = (child: ChildProcess): string => outputs.get(child) ?? ''

function launch(how: Launch, port: number): Promise<{ child: ChildProcess; port: number }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(
      python(),
      how.args.map((a) => a.replace('{port}', String(port))),
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, PYTHONUNBUFFERED: '1', ...how.env },
        cwd: join(root, 'server'),
      },
    )
    let out = ''
    let err = ''
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`the Flask server did not start within 15 s\n${err}`))
    }, 15_000)
    const look = (): void => {
      const match = how.ready.exec(out) ?? how.ready.exec(err)
      if (match) {
        clearTimeout(timer)
        resolvePromise({ child, port: Number(match[1]) })
      }
    }
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString()
      outputs.set(child, out)
      look()
    })
    child.stderr!.on('data', (chunk: Buffer) => {
      err += chunk.toString()
      look()
    })
    child.on('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`the Flask server exited with ${code}\n${err}`))
    })
  })
}

function stopChild(child: ChildProcess | null, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (!child || child.exitCode !== null) return Promise.resolve()
  return new Promise((resolvePromise) => {
    child.once('exit', () => resolvePromise())
    child.kill(signal)
    setTimeout(() => child.kill('SIGKILL'), 3000).unref()
  })
}

export interface FlaskServerOptions {
  /** One bearer token (tenant `"default"`). */
  token?: string
  /** Several tokens and their tenants (`REDUX_IDB_SYNC_TOKENS`). */
  tokens?: TokenMap
  maxBodyBytes?: number
  /** `sqlite` or `postgresql`; default: `RIS_SERVER_DATABASE` (`postgres` selects PostgreSQL), else SQLite. */
  backend?: 'sqlite' | 'postgresql'
  /** gunicorn workers (0: `server/app.py`); default: `RIS_SERVER_WORKERS`, else 0. */
  workers?: number
  /** Run the real-time socket server too: `true` (embedded in app.py, or a process beside gunicorn) or `'process'`. */
  realtime?: boolean | 'process'
  /** The heartbeat interval the socket server asks clients for. @default 15000 */
  realtimeHeartbeatMs?: number
  /**
   * The testing endpoints (`/api/_test/*`: reset, stats, faults, tokens). With them on, the server
   * also counts every request with a write to its database, as production never does: off for a
   * latency measurement (`reset()`, `stats()`, `failNext()`, `history()`, `issueToken()` then
   * answer 404).
   * @default true
   */
  testingEndpoints?: boolean
}

/**
 * Starts the reference server on a free 127.0.0.1 port, with testing endpoints on: by default
 * `server/app.py` on SQLite; PostgreSQL and gunicorn as the options or the environment variables
 * above say. The process is stopped by `close()`; tests call it in `afterAll`.
 */
export async function startFlaskServer(options: FlaskServerOptions = {}): Promise<FlaskServer> {
  const dir = mkdtempSync(join(tmpdir(), 'ris-flask-'))
  const backend = options.backend ?? (/^postgres/.test(process.env.RIS_SERVER_DATABASE ?? '') ? 'postgresql' : 'sqlite')
  const workers = options.workers ?? Number(process.env.RIS_SERVER_WORKERS ?? 0)
  let db = join(dir, 'sync.sqlite3')
  let dropDatabase = (): void => {}
  if (backend === 'postgresql') {
    const admin = process.env.REDUX_IDB_SYNC_PG_URL
    if (!admin) throw new Error('RIS_SERVER_DATABASE=postgres needs REDUX_IDB_SYNC_PG_URL (eval "$(scripts/pg-temp.sh start)")')
    const name = `ris_${process.pid}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`
    postgresExec(admin, `CREATE DATABASE ${name}`)
    const url = new URL(admin)
    url.pathname = `/${name}`
    db = url.toString()
    dropDatabase = () => postgresExec(admin, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
  }
  const settings: Record<string, string> = {
    REDUX_IDB_SYNC_DATABASE: db,
    REDUX_IDB_SYNC_TESTING_ENDPOINTS: options.testingEndpoints === false ? 'false' : 'true',
  }
  if (options.token) settings.REDUX_IDB_SYNC_TOKEN = options.token
  if (options.tokens) settings.REDUX_IDB_SYNC_TOKENS = JSON.stringify(options.tokens)
  if (options.maxBodyBytes) settings.REDUX_IDB_SYNC_MAX_BODY_BYTES = String(options.maxBodyBytes)
  const how: Launch =
    workers > 0
      ? {
          // gunicorn logs "Listening at: http://127.0.0.1:<port>" once its socket is bound; the
          // workers accept what queues on it as soon as they have booted.
          args: [
            '-m',
            'gunicorn',
            '--workers',
            String(workers),
            '--worker-class',
            'gthread',
            '--threads',
            '8',
            '--bind',
            '127.0.0.1:{port}',
            '--graceful-timeout',
            '3',
            // Idle keep-alive longer than Node's fetch keeps idle sockets (4 s), so the client,
            // never the server, closes an idle connection: otherwise a request sent as the server
            // closes it fails with "other side closed".
            '--keep-alive',
            '30',
            '--preload',
            'redux_idb_sync_server.wsgi:app',
          ],
          env: settings,
          ready: /Listening at: http:\/\/127\.0\.0\.1:(\d+)/,
        }
      : { args: [join(root, 'server', 'app.py'), '--host', '127.0.0.1', '--port', '{port}'], env: settings, ready: /LISTENING http:\/\/127\.0\.0\.1:(\d+)/ }
  const heartbeat = String(options.realtimeHeartbeatMs ?? 15_000)
  const separate = options.realtime === 'process' || (options.realtime === true && workers > 0)
  let embeddedWsPort: number | null = null
  if (options.realtime && !separate) {
    how.args.push('--realtime-port', '0', '--realtime-heartbeat-ms', heartbeat)
    // The socket line comes first; the harness waits for the HTTP one and reads both.
    how.ready = /LISTENING ws:\/\/127\.0\.0\.1:\d+\s+LISTENING http:\/\/127\.0\.0\.1:(\d+)/
  }
  const socketHow: Launch = {
    args: ['-m', 'redux_idb_sync_server.realtime', '--host', '127.0.0.1', '--port', '{port}', '--database', db, '--heartbeat-ms', heartbeat],
    env: settings,
    ready: /LISTENING ws:\/\/127\.0\.0\.1:(\d+)/,
  }
  let socketChild: ChildProcess | null = null
  let socketPort = 0
  // gunicorn stops at once on SIGINT (SIGTERM waits for open keep-alive connections).
  const signal: NodeJS.Signals = workers > 0 ? 'SIGINT' : 'SIGTERM'
  let child: ChildProcess
  let port: number
  try {
    ;({ child, port } = await launch(how, 0))
  } catch (error) {
    dropDatabase()
    throw error
  }
  let current: ChildProcess | null = child
  if (options.realtime && !separate) embeddedWsPort = Number(/LISTENING ws:\/\/127\.0\.0\.1:(\d+)/.exec(lastOutput(child))?.[1] ?? 0)
  if (separate) {
    try {
      ;({ child: socketChild, port: socketPort } = await launch(socketHow, 0))
    } catch (error) {
      await stopChild(current, signal)
      dropDatabase()
      throw error
    }
  }
  const realtimeUrl = options.realtime ? `ws://127.0.0.1:${separate ? socketPort : embeddedWsPort}` : null
  const baseUrl = `http://127.0.0.1:${port}/api`
  const auth = (): Record<string, string> => (options.token ? { authorization: `Bearer ${options.token}` } : {})
  const call = async (method: string, path: string, body?: unknown): Promise<unknown> => {
    const response = await fetch(`${baseUrl}${path}`, {
      method,
      headers: { 'content-type': 'application/json', ...auth() },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })
    if (!response.ok) throw new Error(`${method} ${path} answered ${response.status}`)
    return response.json()
  }
  return {
    baseUrl,
    backend,
    database: db,
    workers,
    get port() {
      return port
    },
    async stop() {
      await stopChild(current, signal)
      current = null
    },
    async start() {
      if (current) return
      ;({ child, port } = await launch(how, port))
      current = child
    },
    realtimeUrl,
    async stopRealtime() {
      if (!separate) throw new Error("stopRealtime() needs realtime: 'process'")
      await stopChild(socketChild, 'SIGKILL')
      socketChild = null
    },
    async startRealtime() {
      if (!separate || socketChild) return
      ;({ child: socketChild } = await launch(socketHow, socketPort))
    },
    async close() {
      await stopChild(socketChild, 'SIGTERM')
      socketChild = null
      await stopChild(current, signal)
      current = null
      rmSync(dir, { recursive: true, force: true })
      dropDatabase()
    },
    async issueToken(tenant, ttlMs) {
      return (await call('POST', '/_test/tokens', { tenant, ...(ttlMs === undefined ? {} : { ttl_ms: ttlMs }) })) as {
        token: string
        tenant: string
        expires_at: number | null
      }
    },
    async reset() {
      await call('POST', '/_test/reset', {})
    },
    async stats() {
      return (await call('GET', '/_test/stats')) as { appliedOps: number; requests: Record<string, number> }
    },
    async failNext(count, status) {
      await call('POST', '/_test/faults', { failNext: count, status })
    },
    async history() {
      return ((await call('GET', '/_test/history')) as { ops: HistoryRecord[] }).ops
    },
  }
}
