import { spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterEach, describe, expect, test } from 'vitest'

// `npm run demo:web` as a new user meets it: a busy port, a missing flask-cors, Ctrl+C.
const root = resolve(import.meta.dirname, '..', '..')
const dirs: string[] = []
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})
const freshDir = (): string => {
  const dir = mkdtempSync(join(tmpdir(), 'ris-demo-web-test-'))
  dirs.push(dir)
  return dir
}

function occupy(): Promise<{ server: Server; port: number }> {
  return new Promise((done) => {
    const server = createServer()
    server.listen(0, '127.0.0.1', () => done({ server, port: (server.address() as { port: number }).port }))
  })
}

interface Run {
  code: number | null
  stdout: string
  stderr: string
}
function serve(env: Record<string, string>, onLine?: (line: string, kill: () => void) => void): Promise<Run> {
  return new Promise((done) => {
    const child = spawn(process.execPath, ['examples/web/serve.mjs'], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    const timer = setTimeout(() => child.kill('SIGKILL'), 50_000)
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString()
      onLine?.(stdout, () => child.kill('SIGINT'))
    })
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    child.on('exit', (code) => {
      clearTimeout(timer)
      done({ code, stdout, stderr })
    })
  })
}

describe('npm run demo:web', () => {
  test('API_PORT taken: a one-line reason naming API_PORT, no stack trace, exit 1, no temporary directory left', async () => {
    const busy = await occupy()
    const tmp = freshDir()
    try {
      const run = await serve({ API_PORT: String(busy.port), TMPDIR: tmp })
      expect(run.code).toBe(1)
      expect(run.stderr).toContain(`port ${busy.port} is already in use: set API_PORT to a free port`)
      expect(run.stderr).not.toMatch(/Traceback|\n\s+at /)
      expect(readdirSync(tmp)).toEqual([])
    } finally {
      busy.server.close()
    }
  })

  test('without flask-cors: a warning that says how to install it', async () => {
    const busy = await occupy() // ends the run right after the check
    const tmp = freshDir()
    const stub = join(freshDir(), 'flask_cors')
    mkdirSync(stub)
    writeFileSync(join(stub, '__init__.py'), 'raise ImportError("hidden by the test")\n')
    try {
      const run = await serve({ API_PORT: String(busy.port), TMPDIR: tmp, PYTHONPATH: join(stub, '..') })
      expect(run.stderr).toMatch(/warning: flask-cors is not installed[\s\S]*pip install flask-cors/)
      expect(readdirSync(tmp)).toEqual([])
    } finally {
      busy.server.close()
    }
  })

  test('free ports by default: the page and the API answer; Ctrl+C stops both and deletes the temporary directory', async () => {
    const tmp = freshDir()
    let url: URL | null = null
    const checks: Promise<void>[] = []
    const run = await serve({ TMPDIR: tmp }, (out, interrupt) => {
      const match = /notes example: (\S+)/.exec(out)
      if (!match || url) return
      url = new URL(match[1]!)
      const api = url.searchParams.get('api')!
      checks.push(
        (async () => {
          expect(readdirSync(tmp)).toHaveLength(1) // the SQLite directory, while running
          expect((await fetch(url!)).status).toBe(200)
          expect(await (await fetch(`${api}/health`)).json()).toMatchObject({ status: 'ok' })
        })().finally(interrupt),
      )
    })
    await Promise.all(checks)
    expect(url).not.toBeNull()
    expect(url!.port).not.toBe('5173')
    expect(run.code).toBe(0)
    expect(readdirSync(tmp)).toEqual([])
  })
})
