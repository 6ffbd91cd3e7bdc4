// npm run demo:web: starts the reference Flask server (SQLite in a temporary directory), builds
// the example and serves the page on 127.0.0.1. Ctrl+C stops both and deletes the directory.
//
// Ports: free ones unless PORT (the page) or API_PORT (the Flask server) is set. The page calls
// the API on another port, so the browser needs CORS from the server: flask-cors.
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:http'
import { tmpdir } from 'node:os'
import { extname, join, normalize } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'vite'

const here = fileURLToPath(new URL('.', import.meta.url))
const root = join(here, '..', '..')
const python = process.env.PYTHON ?? 'python3'

export async function buildExample() {
  await build({ configFile: join(here, 'vite.config.ts') })
  return join(here, 'dist')
}

const types = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.map': 'application/json' }

/** A tiny static server for the built page, on 127.0.0.1 and a free port (or `port`). */
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
  return new Promise((resolve, reject) => {
    server.once('error', (error) =>
      reject(error.code === 'EADDRINUSE' ? new Error(`port ${port} is already in use: set PORT to a free port, or leave PORT unset to pick one`) : error),
    )
    server.listen(port, '127.0.0.1', () => resolve(server))
  })
}

/** Starts server/app.py on 127.0.0.1 (`port` 0: a free one). Rejects with a readable message when it cannot. */
export function startFlask(port = 0, db = join(mkdtempSync(join(tmpdir(), 'ris-web-')), 'notes.sqlite3')) {
  return new Promise((resolve, reject) => {
    const child = spawn(python, [join(root, 'server', 'app.py'), '--host', '127.0.0.1', '--port', String(port), '--db', db, '--testing-endpoints'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, PYTHONUNBUFFERED: '1' },
    })
    let out = ''
    let err = ''
    let started = false
    child.stdout.on('data', (chunk) => {
      out += chunk
      const match = /LISTENING http:\/\/127\.0\.0\.1:(\d+)/.exec(out)
      if (match && !started) {
        started = true
        resolve({ child, port: Number(match[1]), db })
      }
    })
    // Flask's request log goes to stderr; before it listens, stderr is why it could not start.
    child.stderr.on('data', (chunk) => {
      if (!started) err += chunk
    })
    child.on('error', (error) => reject(new Error(`cannot run ${python}: ${error.message}`)))
    child.on('exit', (code) => {
      if (started) return
      if (/Address already in use/i.test(err))
        reject(new Error(`port ${port} is already in use: set API_PORT to a free port, or leave API_PORT unset to pick one`))
      else reject(new Error(`the Flask server exited with ${code} before listening:\n${err.trim().split('\n').slice(-3).join('\n')}`))
    })
  })
}

const hasModule = (name) => spawnSync(python, ['-c', `import ${name}`], { stdio: 'ignore' }).status === 0

/** PORT / API_PORT: an integer from 0 (a free port) to 65535. */
function portFrom(name) {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return 0
  const port = Number(raw)
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`${name}=${raw} is not a port number (0 to 65535; 0 or unset picks a free one)`)
  return port
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const tmp = mkdtempSync(join(tmpdir(), 'ris-web-'))
  let flask = null
  let web = null
  let stopping = false
  // Whatever ends the process (Ctrl+C, an error, Flask dying), the temporary directory goes too.
  process.on('exit', () => {
    flask?.child.kill('SIGTERM')
    rmSync(tmp, { recursive: true, force: true })
  })
  const stop = (code) => {
    stopping = true
    web?.close()
    process.exit(code)
  }
  process.on('SIGINT', () => stop(0))
  process.on('SIGTERM', () => stop(0))
  try {
    if (!hasModule('flask')) throw new Error(`npm run demo:web needs Python 3 with Flask (${python} -c 'import flask' failed)`)
    if (!hasModule('flask_cors')) {
      console.warn(
        'warning: flask-cors is not installed, so the browser may not call the API (it is on another port) and the page will show the server as offline.\n' +
          '         Install it: pip install flask-cors  (Debian: apt-get install python3-flask-cors)',
      )
    }
    flask = await startFlask(portFrom('API_PORT'), join(tmp, 'notes.sqlite3'))
    flask.child.on('exit', (code) => {
      if (stopping) return
      console.error(`the Flask server stopped unexpectedly (exit code ${code})`)
      stop(1)
    })
    const dist = await buildExample()
    web = await serveStatic(dist, portFrom('PORT'))
    const url = `http://127.0.0.1:${web.address().port}/?api=${encodeURIComponent(`http://127.0.0.1:${flask.port}/api`)}`
    console.log(`notes example: ${url}\n(reference Flask server on port ${flask.port}; Ctrl+C to stop)`)
  } catch (error) {
    console.error(`npm run demo:web: ${error instanceof Error ? error.message : String(error)}`)
    stop(1)
  }
}
