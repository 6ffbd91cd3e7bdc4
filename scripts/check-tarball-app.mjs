// A user's app, from the packed tarball: installs it into a temporary app (offline), compiles
// every TypeScript example of the README with strict settings under moduleResolution node10,
// node16 and bundler, and runs the Quick start in Node as ESM and as CommonJS (each must end by
// itself), plus an injected IDBFactory without IndexedDB globals and the ESM and CJS builds
// controlling each other's instances in one process.
//
// Usage: node scripts/check-tarball-app.mjs <tarball>   (scripts/check-package.mjs calls it)
//
// Offline and quick: the library's dependencies (idb, ky: no dependencies of their own) are
// `file:` links into this repository's node_modules, so npm fetches nothing; the peers and
// fake-indexeddb are symlinked from there after the install.
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const modules = join(root, 'node_modules')
const tarball = resolve(process.argv[2] ?? '')
if (!process.argv[2]) throw new Error('usage: node scripts/check-tarball-app.mjs <tarball>')

const started = Date.now()
const failures = []
const say = (line) => console.log(`[tarball app] ${line}`)

// ------------------------------------------------------------------ the README's examples

const readme = readFileSync(join(root, 'README.md'), 'utf8')
/** Every ```ts / ```tsx block, unless the line before it is `<!-- readme-check: skip ... -->`. */
function readmeBlocks() {
  const blocks = []
  const lines = readme.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(ts|tsx)\s*$/.exec(lines[i])
    if (!open) continue
    const end = lines.indexOf('```', i + 1)
    const heading =
      lines
        .slice(0, i)
        .reverse()
        .find((l) => l.startsWith('## ')) ?? '## (top)'
    if (!/readme-check: skip/.test(lines[i - 1] ?? '') && !/readme-check: skip/.test(lines[i - 2] ?? '')) {
      blocks.push({ lang: open[1], line: i + 1, section: heading.slice(3), code: lines.slice(i + 1, end).join('\n') })
    }
    i = end
  }
  return blocks
}

// ------------------------------------------------------------------ the app

const app = mkdtempSync(join(tmpdir(), 'ris-app-'))
try {
  writeFileSync(
    join(app, 'package.json'),
    JSON.stringify(
      { name: 'ris-readme-app', private: true, type: 'module', dependencies: { idb: `file:${join(modules, 'idb')}`, ky: `file:${join(modules, 'ky')}` } },
      null,
      2,
    ),
  )
  execFileSync('npm', ['install', '--offline', '--no-audit', '--no-fund', '--legacy-peer-deps', '--ignore-scripts', '--loglevel=error', tarball], {
    cwd: app,
    stdio: ['ignore', 'ignore', 'inherit'],
  })
  for (const name of ['@reduxjs/toolkit', 'immer', 'fake-indexeddb', 'msw', 'react', 'react-dom', 'react-redux', '@types/react', '@types/node', 'vitest']) {
    mkdirSync(dirname(join(app, 'node_modules', name)), { recursive: true })
    symlinkSync(join(modules, name), join(app, 'node_modules', name), 'dir')
  }
  say(`installed ${tarball.split('/').pop()} offline (${Date.now() - started} ms)`)

  // What the README's fragments take from the surrounding app.
  writeFileSync(
    join(app, 'app-globals.d.ts'),
    `import type { Reducer, Store, ThunkDispatch, UnknownAction } from '@reduxjs/toolkit'
import type { AutoSyncMiddleware, PersistenceMiddleware, SyncMonitorMiddleware } from 'redux-idb-sync'
declare global {
  const store: Store<unknown, UnknownAction> & { dispatch: ThunkDispatch<unknown, unknown, UnknownAction> }
  const persistence: PersistenceMiddleware
  const monitor: SyncMonitorMiddleware
  const autoSync: AutoSyncMiddleware
  const filesReducer: Reducer<{ ids: string[]; entities: Record<string, { id: string }> }>
  const settingsReducer: Reducer<Record<string, { id: string }>>
  const session: { token: string | null }
  function renewSession(): Promise<string>
  function toast(message: string): void
  function saveFile(file: { id: string; name: string }): UnknownAction
}
export {}
`,
  )
  // Every package our .d.ts files import must be a dependency or peer: an inferred type naming
  // `redux` or `redux-thunk` (RTK's own dependencies) resolves under npm's hoisting only.
  const installed = join(app, 'node_modules', 'redux-idb-sync')
  const manifest = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8'))
  const declared = new Set([...Object.keys(manifest.dependencies ?? {}), ...Object.keys(manifest.peerDependencies ?? {})])
  for (const file of readdirSync(join(installed, 'dist')).filter((f) => /\.d\.c?ts$/.test(f))) {
    // Without the comments: a JSDoc @example may import the package itself ('redux-idb-sync/remote').
    const text = readFileSync(join(installed, 'dist', file), 'utf8').replace(/\/\*[\s\S]*?\*\//g, '')
    for (const [, a, b] of text.matchAll(/(?:from|import)\s*['"]([^'"]+)['"]|import\(['"]([^'"]+)['"]\)/g)) {
      const spec = a ?? b
      if (spec.startsWith('.')) continue
      const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]
      if (!declared.has(name)) failures.push(`dist/${file} imports "${spec}", which is neither a dependency nor a peer dependency`)
    }
  }
  const exported = Object.keys(await import(join(app, 'node_modules', 'redux-idb-sync', 'dist', 'index.js')))
  const exportedRemote = Object.keys(await import(join(app, 'node_modules', 'redux-idb-sync', 'dist', 'remote.js')))
  const files = ['app-globals.d.ts']
  for (const [n, block] of readmeBlocks().entries()) {
    let code = block.code
    // A fragment without imports uses the library's names as the sections above introduced them.
    if (!/^import /m.test(code)) {
      const uses = (name) => new RegExp(`\\b${name}\\b`).test(code)
      const used = exported.filter(uses)
      const usedRemote = exportedRemote.filter(uses)
      code =
        `${used.length ? `import { ${used.join(', ')} } from 'redux-idb-sync'\n` : ''}` +
        `${usedRemote.length ? `import { ${usedRemote.join(', ')} } from 'redux-idb-sync/remote'\n` : ''}${code}\nexport {}\n`
    }
    const file = `readme-${String(n + 1).padStart(2, '0')}-line${block.line}.${block.lang}`
    writeFileSync(join(app, file), `// README.md line ${block.line} (${block.section})\n${code}\n`)
    files.push(file)
  }
  const compilerOptions = {
    strict: true,
    noUncheckedIndexedAccess: true,
    exactOptionalPropertyTypes: false,
    noEmit: true,
    target: 'es2022',
    lib: ['es2022', 'dom'],
    jsx: 'react-jsx',
    types: ['node'],
    // Checking every .d.ts of react, msw and @types/node takes ~25 s per run; what matters of
    // ours in them, unresolved imports, is checked directly below.
    skipLibCheck: true,
  }
  const resolutions = {
    node10: { module: 'es2022', moduleResolution: 'node10' },
    node16: { module: 'node16', moduleResolution: 'node16' },
    bundler: { module: 'esnext', moduleResolution: 'bundler' },
  }
  for (const [name, options] of Object.entries(resolutions)) {
    writeFileSync(join(app, `tsconfig.${name}.json`), JSON.stringify({ compilerOptions: { ...compilerOptions, ...options }, files }, null, 2))
    const t0 = Date.now()
    const result = spawnSync(process.execPath, [join(modules, 'typescript', 'bin', 'tsc'), '-p', `tsconfig.${name}.json`], { cwd: app, encoding: 'utf8' })
    if (result.status === 0) say(`README examples (${files.length - 1} blocks) compile under moduleResolution ${name} (${Date.now() - t0} ms)`)
    else failures.push(`README examples do not compile under moduleResolution ${name}:\n${result.stdout}${result.stderr}`)
  }

  // ------------------------------------------------------------------ running the Quick start

  const quickStart = readmeBlocks().find((b) => b.section === 'Quick start')
  if (!quickStart) throw new Error('the README has no Quick start block')
  // Local-only, as the README says: "Leave out for local-only" (the remote option, its comment
  // and the import of redux-idb-sync/remote).
  const localOnly = quickStart.code
    .split('\n')
    .filter((l) => !/^\s*(remote:|\/\/ Optional: sync|\/\/ sync engine and ky|import \{ createRemote \})/.test(l))
    .join('\n')
  if (/createRemote|redux-idb-sync\/remote/.test(localOnly)) throw new Error('the local-only Quick start still names the remote entry')
  const epilogue = `
console.log(JSON.stringify({ files: store.getState().files.ids, pending: persistence.getStatus().pendingOperations, errors: persistence.getStatus().errorCount }))
`
  const js = (source, module) =>
    ts.transpileModule(source, { compilerOptions: { module, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: false } }).outputText
  const imports = localOnly.split('\n').filter((l) => l.startsWith('import '))
  const body = localOnly
    .split('\n')
    .filter((l) => !l.startsWith('import '))
    .join('\n')
  const scripts = {
    'quick-start.mjs': js(`import 'fake-indexeddb/auto'\n${localOnly}\n${epilogue}`, ts.ModuleKind.ES2022),
    // CommonJS has no top-level await: the same code in an async main().
    'quick-start.cjs': js(
      `import 'fake-indexeddb/auto'\n${imports.join('\n')}\nasync function main() {\n${body.replace(/^export /gm, '')}\n${epilogue}}\nvoid main()\n`,
      ts.ModuleKind.CommonJS,
    ),
    // The `indexedDB` option alone: fake-indexeddb's factory, no IndexedDB globals at all.
    'injected-factory.mjs': js(
      `import { IDBFactory } from 'fake-indexeddb'\n${localOnly.replace("dbName: 'my-app',", "dbName: 'my-app', indexedDB: new IDBFactory(),")}\n` +
        `if (typeof globalThis.IDBRequest !== 'undefined') throw new Error('IndexedDB globals present')\n${epilogue}`,
      ts.ModuleKind.ES2022,
    ),
    // Created through import (ESM), controlled through require (CJS), in one process.
    'esm-and-cjs.mjs': `
import 'fake-indexeddb/auto'
import { createRequire } from 'node:module'
import { configureStore, createEntityAdapter, createSlice } from '@reduxjs/toolkit'
import { createAutoSyncMiddleware, createPersistenceMiddleware, createSyncMonitorMiddleware, disablePersistence as esmDisable } from 'redux-idb-sync'
const cjs = createRequire(import.meta.url)('redux-idb-sync')
if (cjs.disablePersistence === esmDisable) throw new Error('require() returned the ESM build')
// A remote from the CJS copy plugs into an ESM instance (the plugin is recognised by a string brand).
const { createRemote: cjsCreateRemote } = createRequire(import.meta.url)('redux-idb-sync/remote')
const synced = createPersistenceMiddleware({ dbName: 'both-synced', slices: { files: {} }, remote: cjsCreateRemote({ baseUrl: 'http://127.0.0.1:9/api', connectOnStart: false }) })
if (!synced.sync) throw new Error('the ESM instance built no engine from the CJS createRemote')
await synced.dispose()
const files = createEntityAdapter()
const filesSlice = createSlice({ name: 'files', initialState: files.getInitialState(), reducers: { saveFile: files.upsertOne } })
const persistence = createPersistenceMiddleware({ dbName: 'both', slices: { files: {} } })
const monitor = createSyncMonitorMiddleware()
const autoSync = createAutoSyncMiddleware({ leader: 'never' })
const store = configureStore({
  reducer: { files: filesSlice.reducer },
  middleware: (g) => g().concat(persistence, monitor, autoSync),
  enhancers: (g) => g().concat(persistence.enhancer),
})
await persistence.whenHydrated()
cjs.disablePersistence('files')
if (persistence.getStatus().slices.files.enabled !== false) throw new Error('CJS disablePersistence did not reach the ESM instance')
cjs.enablePersistence('files')
store.dispatch(filesSlice.actions.saveFile({ id: 'a' }))
await cjs.flushPersistence()
if (cjs.getSyncMetrics() !== monitor.getSyncMetrics()) throw new Error('CJS getSyncMetrics is not the ESM monitor')
cjs.configureAutoSync({ intervalMs: 4321 })
if (autoSync.getAutoSyncConfig().intervalMs !== 4321) throw new Error('CJS configureAutoSync did not reach the ESM auto-sync')
console.log(JSON.stringify({ files: store.getState().files.ids, pending: persistence.getStatus().pendingOperations, errors: persistence.getStatus().errorCount }))
`,
  }
  const expected = JSON.stringify({ files: ['a'], pending: 0, errors: 0 })
  for (const [file, source] of Object.entries(scripts)) {
    writeFileSync(join(app, file), source)
    const t0 = Date.now()
    // A script that does not end by itself is killed: the library must not hold the event loop.
    const result = spawnSync(process.execPath, [file], { cwd: app, encoding: 'utf8', timeout: 10_000, killSignal: 'SIGKILL' })
    const ms = Date.now() - t0
    const out = result.stdout.trim().split('\n').pop()
    if (result.signal) failures.push(`${file} did not exit by itself within 10 s (killed)\n${result.stdout}${result.stderr}`)
    else if (result.status !== 0 || out !== expected || result.stderr.trim() !== '') {
      failures.push(`${file} exited ${result.status}, printed ${out} (expected ${expected})\n${result.stderr}`)
    } else say(`${file} ran and exited by itself in ${ms} ms`)
  }
} finally {
  rmSync(app, { recursive: true, force: true })
}

if (failures.length > 0) {
  for (const failure of failures) console.error(`[tarball app] FAILED: ${failure}`)
  process.exit(1)
}
say(`all checks passed in ${((Date.now() - started) / 1000).toFixed(1)} s`)
