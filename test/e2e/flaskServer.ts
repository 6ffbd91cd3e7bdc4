import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

// The repository root; `npm run bench` runs a bundled copy of this file from elsewhere and says where.
const root = process.env.RIS_REPO_ROOT ?? resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')

/** A running reference Flask server on 127.0.0.1, with SQLite in a temporary directory. */
export interface FlaskServer {
  /** e.g. `http://127.0.0.1:43121/api` */
  readonly baseUrl: string
  readonly port: number
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

function launch(args: string[]): Promise<{ child: ChildProcess; port: number }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.env.PYTHON ?? 'python3', [join(root, 'server', 'app.py'), ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, PYTHONUNBUFFERED: '1' },
    })
    let out = ''
    let err = ''
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`the Flask server did not start within 15 s\n${err}`))
    }, 15_000)
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString()
      const match = /LISTENING http:\/\/127\.0\.0\.1:(\d+)/.exec(out)
      if (match) {
        clearTimeout(timer)
        resolvePromise({ child, port: Number(match[1]) })
      }
    })
    child.stderr!.on('data', (chunk: Buffer) => {
      err += chunk.toString()
    })
    child.on('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`the Flask server exited with ${code}\n${err}`))
    })
  })
}

function stopChild(child: ChildProcess | null): Promise<void> {
  if (!child || child.exitCode !== null) return Promise.resolve()
  return new Promise((resolvePromise) => {
    child.once('exit', () => resolvePromise())
    child.kill('SIGTERM')
    setTimeout(() => child.kill('SIGKILL'), 3000).unref()
  })
}

/**
 * Starts `server/app.py` on a free 127.0.0.1 port (`--port 0`), with testing endpoints on.
 * The process is stopped by `close()`; tests call it in `afterAll`.
 */
export async function startFlaskServer(options: { token?: string; maxBodyBytes?: number } = {}): Promise<FlaskServer> {
  const dir = mkdtempSync(join(tmpdir(), 'ris-flask-'))
  const db = join(dir, 'sync.sqlite3')
  const common = ['--host', '127.0.0.1', '--db', db, '--testing-endpoints']
  if (options.token) common.push('--token', options.token)
  if (options.maxBodyBytes) common.push('--max-body-bytes', String(options.maxBodyBytes))
  let { child, port } = await launch([...common, '--port', '0'])
  let current: ChildProcess | null = child
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
    get port() {
      return port
    },
    async stop() {
      await stopChild(current)
      current = null
    },
    async start() {
      if (current) return
      ;({ child, port } = await launch([...common, '--port', String(port)]))
      current = child
    },
    async close() {
      await stopChild(current)
      current = null
      rmSync(dir, { recursive: true, force: true })
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
