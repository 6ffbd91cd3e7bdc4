#!/usr/bin/env node
// `npm run bench [-- --quick] [-- --write] [-- --node-only|--browser-only] [-- B1 B3 S1 ...]`
//
// Bundles the TypeScript benchmarks with esbuild (the library from src/, as the tests use it),
// runs the Node half (fake-indexeddb) in a child process, then the Chromium half (real
// IndexedDB) in Debian's /usr/bin/chromium through playwright-core, and prints one table.
// --write puts the table, with the machine, Node and Chromium versions, into
// docs/benchmarks.md and README.md between their `bench:results` markers.
// --quick (CI) runs every case with small N and few rounds; it checks that they run, not timings.
/* global window -- the two page.evaluate callbacks run in the page */
import { build } from 'esbuild'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { cpus, loadavg, totalmem } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const out = join(root, 'node_modules', '.cache', 'redux-idb-sync-bench')
mkdirSync(out, { recursive: true })
const args = process.argv.slice(2)
const quick = args.includes('--quick')
// B<n>: timings and counts; S<n>: sizes (S1 builds the package and runs size-limit on it).
const only = args.filter((a) => /^[BS]\d+$/.test(a))
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const common = {
  bundle: true,
  format: 'esm',
  alias: { 'redux-idb-sync': join(root, 'src') },
  define: { 'process.env.NODE_ENV': '"production"' },
  logLevel: 'warning',
}

const rows = []
let chromiumVersion = null

if (!args.includes('--browser-only')) {
  await build({
    ...common,
    entryPoints: [join(root, 'bench/node/index.ts')],
    outfile: join(out, 'node.mjs'),
    platform: 'node',
    target: 'node20',
    packages: 'external',
  })
  const json = join(out, 'node-results.json')
  // Production mode for the packages left external (redux, immer), as an app ships them;
  // the bundled code gets the same through `define`.
  const nodeArgs = ['--expose-gc', join(out, 'node.mjs'), ...(quick ? ['--quick'] : []), ...only]
  const node = spawnSync(process.execPath, nodeArgs, {
    stdio: 'inherit',
    env: { ...process.env, NODE_ENV: 'production', RIS_REPO_ROOT: root, BENCH_JSON: json },
  })
  if (node.status !== 0) process.exit(node.status ?? 1)
  rows.push(...JSON.parse(readFileSync(json, 'utf8')).rows.map((row) => row.replace(/^\| (B\d+) \|/, '| $1 (Node) |')))
}

const browserCases = ['B2', 'B3', 'B5', 'B7', 'B16']
const wantBrowser = !args.includes('--node-only') && (only.length === 0 || only.some((id) => browserCases.includes(id)))
if (wantBrowser) {
  if (!existsSync(CHROMIUM)) {
    console.error(`bench: ${CHROMIUM} is missing (apt-get install chromium); the Chromium cases did not run`)
    if (!quick) process.exit(1)
  } else {
    await build({ ...common, entryPoints: [join(root, 'bench/browser/index.ts')], outfile: join(out, 'browser.js'), platform: 'browser', target: 'chrome120' })
    const bundle = readFileSync(join(out, 'browser.js'))
    // Cross-origin isolation gives performance.now() 5 µs resolution instead of 100 µs.
    const isolated = { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' }
    const server = createServer((req, res) => {
      if (req.url === '/browser.js') {
        res.writeHead(200, { 'content-type': 'text/javascript', ...isolated })
        res.end(bundle)
      } else {
        res.writeHead(200, { 'content-type': 'text/html', ...isolated })
        res.end('<!doctype html><meta charset="utf-8"><title>bench</title><script type="module" src="/browser.js"></script>')
      }
    })
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { chromium } = await import('playwright-core')
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--js-flags=--expose-gc'],
    })
    try {
      chromiumVersion = browser.version()
      const page = await browser.newPage()
      page.on('console', (message) => console.error(`[chromium] ${message.text()}`))
      await page.goto(`http://127.0.0.1:${server.address().port}/`)
      await page.waitForFunction(() => typeof window.runBench === 'function')
      const browserOnly = only.filter((id) => browserCases.includes(id))
      const started = Date.now()
      const { rows: browserRows } = await page.evaluate((options) => window.runBench(options), { quick, only: browserOnly })
      console.error(`Chromium cases took ${((Date.now() - started) / 1000).toFixed(1)} s`)
      for (const row of browserRows) console.log(row)
      rows.push(...browserRows.map((row) => row.replace(/^\| (B\d+) \|/, '| $1 (Chromium) |')))
    } finally {
      await browser.close()
      server.close()
    }
  }
}

const machine = `${cpus()[0]?.model.trim() ?? 'unknown CPU'}, ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB; Node ${process.version}${chromiumVersion ? `; Chromium ${chromiumVersion}` : ''}${quick ? '; QUICK MODE (small N, 2 rounds: not for claims)' : ''}`
const table = [
  `Measured ${new Date().toISOString().slice(0, 10)} on ${machine}.`,
  '',
  '| # | case | ours (median) | baseline (median) | ratio, median (min–max over rounds) | target | |',
  '| --- | --- | --- | --- | --- | --- | --- |',
  ...rows,
].join('\n')
console.log(`\n${table}`)

if (args.includes('--write')) {
  if (quick) throw new Error('--write refuses quick-mode numbers')
  for (const file of ['docs/benchmarks.md', 'README.md']) {
    const path = join(root, file)
    const text = readFileSync(path, 'utf8')
    const begin = '<!-- bench:results:begin -->'
    const end = '<!-- bench:results:end -->'
    const a = text.indexOf(begin)
    const b = text.indexOf(end)
    if (a < 0 || b < a) throw new Error(`${file} has no ${begin} … ${end} markers`)
    let block = table
    if (only.length > 0) {
      // A subset run replaces only its cases' rows and says when they were measured.
      const kept = text
        .slice(a + begin.length, b)
        .trim()
        .split('\n')
      const ours = new Set(only)
      const idOf = (row) => /^\| ([BS]\d+)/.exec(row)?.[1]
      const isCase = (row) => /^\| [BS]\d+/.test(row)
      const head = kept.filter((row) => !isCase(row) && !row.startsWith(`${only.join(', ')} measured`))
      const body = kept.filter((row) => isCase(row) && !ours.has(idOf(row)))
      // The notes ("Measured …", "B10, B12 measured …") stay together above the table.
      const notes = head.filter((row) => row !== '' && !row.startsWith('|'))
      const tableHead = head.filter((row) => row.startsWith('|'))
      block = [
        notes[0] ?? '',
        `${only.join(', ')} measured ${new Date().toISOString().slice(0, 10)} on ${machine}, load average ${loadavg()[0].toFixed(1)} (other work shared the machine)`,
        ...notes.slice(1),
        '',
        ...tableHead,
        ...body,
        ...rows,
      ].join('\n')
    }
    writeFileSync(path, `${text.slice(0, a + begin.length)}\n${block}\n${text.slice(b)}`)
    console.error(`bench: wrote ${file}`)
  }
}
