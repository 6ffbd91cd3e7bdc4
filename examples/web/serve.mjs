// npm run demo:web: builds the example, starts the reference Flask server (SQLite in a
// temporary directory) and serves the page on 127.0.0.1. Ctrl+C stops both.
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:http'
import { tmpdir } from 'node:os'
import { extname, join, normalize } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'vite'

const here = fileURLToPath(new URL('.', import.meta.url))
const root = join(here, '..', '..')

export async function buildExample() {
  await build({ configFile: join(here, 'vite.config.ts') })
  return join(here, 'dist')
}

const types = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.map': 'application/json' }

/** A tiny static server for the built page, on 127.0.0.1 and a free port. */
export function serveStatic(dir, port = 0) {
  const server = createServer((request, response) => {
    const path = normalize(new URL(request.url, 'http://x').pathname).replace(/^(\.\.[/\\])+/, '')
    const file = join(dir, path === '/' ? 'index.html' : path)
    try {
      const body = readFileSync(file)
      response.writeHead(200, { 'content-type': types[extname(file)] ?? 'application/octet-stream' })
      response.end(body)
    } catch {
      response.writeHead(404).end('not found')
    }
  })
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve(server)))
}

export function startFlask(port = 0, db = join(mkdtempSync(join(tmpdir(), 'ris-web-')), 'notes.sqlite3')) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.env.PYTHON ?? 'python3', [join(root, 'server', 'app.py'), '--host', '127.0.0.1', '--port', String(port), '--db', db, '--testing-endpoints'], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, PYTHONUNBUFFERED: '1' },
    })
    let out = ''
    child.stdout.on('data', (chunk) => {
      out += chunk
      const match = /LISTENING http:\/\/127\.0\.0\.1:(\d+)/.exec(out)
      if (match) resolve({ child, port: Number(match[1]), db })
    })
    child.on('exit', (code) => reject(new Error(`Flask exited with ${code}`)))
  })
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const dist = await buildExample()
  const flask = await startFlask(Number(process.env.API_PORT ?? 5000))
  const web = await serveStatic(dist, Number(process.env.PORT ?? 5173))
  const url = `http://127.0.0.1:${web.address().port}/?api=${encodeURIComponent(`http://127.0.0.1:${flask.port}/api`)}`
  console.log(`notes example: ${url}\n(reference Flask server on port ${flask.port}; Ctrl+C to stop)`)
  const stop = () => {
    flask.child.kill('SIGTERM')
    web.close()
    rmSync(join(flask.db, '..'), { recursive: true, force: true })
    process.exit(0)
  }
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
}
