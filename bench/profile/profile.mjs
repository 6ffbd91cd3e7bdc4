#!/usr/bin/env node
// CPU profiles of OUR side of the benchmark cases that miss a target, by module.
//
//   node bench/profile/profile.mjs B1 [B3 B5 B7 B16] [--chromium] [--quick] [--top 15] [--save DIR]
//
// Bundles bench/profile/{node,browser}.ts with esbuild as bench/run.mjs does (the library from
// src/, production builds of redux and immer, plus a source map), then runs each case:
// - Node (default): `node --expose-gc` on the bundle, fake-indexeddb as the IndexedDB. The bundle
//   opens an in-process inspector session and profiles each loop of the case (`--cpu-prof`'s
//   profiler, started and stopped around the loop); each timed phase marks its window on the
//   profile's clock (process.hrtime).
// - Chromium (`--chromium`; B1 is then B2, B3 covers B4): Debian's /usr/bin/chromium through
//   playwright-core, launched as bench/run.mjs launches it; the page profiles each loop with
//   `console.profile()`, received through CDP's Profiler domain, and runs a marker function
//   around each phase, by which the page's clock is aligned with the profile's.
// The cases (bench/profile/cases.ts) time what the benchmark times (e.g. `flush()` after the
// dispatch returned); only the samples inside those windows count, so the app's reducer and the
// setup are in no share. Sampling: every 50 µs in Node, 100 µs in Chromium (PROFILE_INTERVAL_US).
// Printed per phase: self time by module (our files resolved through the source map: tracker +
// enhancer, write queue, local writer, IndexedDB wrapper, …; fake-indexeddb, immer, redux,
// structured clone, IndexedDB natives, GC, idle, timers and microtasks), over all runs and over
// the middle half of the runs by duration (what a median sees), and the top functions; then the
// limits the case measured side by side, alternating (bench/lib/harness.ts `compare`).
// --save DIR writes every profile as a .cpuprofile (DevTools → Performance → Load profile).
/* global window -- the page.evaluate callbacks run in the page */
import { build } from 'esbuild'
import { spawnSync } from 'node:child_process'
import { mkdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { SourceMap } from 'node:module'
import { basename, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
// Keyed by checkout: worktrees share node_modules, and each bundles its own src/.
const out = join(root, 'node_modules', '.cache', `redux-idb-sync-profile-${basename(root)}`)
mkdirSync(out, { recursive: true })
const args = process.argv.slice(2)
const quick = args.includes('--quick')
const chromium = args.includes('--chromium')
const valueOf = (flag, fallback) => (args.includes(flag) ? args[args.indexOf(flag) + 1] : fallback)
const top = Number(valueOf('--top', 15))
const saveDir = valueOf('--save', null)
const ids = args.filter((a) => /^B\d+$/.test(a)).map((id) => (id === 'B2' ? 'B1' : id === 'B4' ? 'B3' : id))
if (ids.length === 0) throw new Error('name the cases to profile: B1 (B2 with --chromium), B3 (B4), B5, B7, B16')
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const common = {
  bundle: true,
  format: 'esm',
  sourcemap: 'external',
  alias: { 'redux-idb-sync': join(root, 'src') },
  define: { 'process.env.NODE_ENV': '"production"' },
  logLevel: 'warning',
}

// ------------------------------------------------------------------------------ attribution

/** The module a source file belongs to, for the shares. */
function bucketOf(source, fn) {
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(source)
  if (nm) {
    const pkg = nm[1]
    if (pkg === 'redux' || pkg === '@reduxjs/toolkit' || pkg === 'reselect' || pkg === 'redux-thunk') return 'redux / RTK'
    return pkg
  }
  if (/\/src\/persistence\/(enhancer|sliceTracker|shapes|changedIds)\.ts$/.test(source)) return 'ours: tracker + enhancer'
  if (source.endsWith('/src/persistence/writeQueue.ts')) return 'ours: write queue'
  if (source.endsWith('/src/persistence/localWriter.ts')) return 'ours: local writer'
  if (source.endsWith('/src/utils/serializable.ts')) {
    if (fn === 'findNonSerializable' || fn === 'isPlainObject') return 'ours: serializability check (findNonSerializable)'
    if (fn === 'defineData') return 'ours: hydration (building the collection)'
    return 'ours: stripDangerousKeys'
  }
  if (source.endsWith('/src/persistence/hydration.ts')) return 'ours: hydration'
  if (source.includes('/src/storage/')) return 'ours: IndexedDB wrapper (src/storage)'
  if (source.endsWith('/src/persistence/createPersistenceMiddleware.ts')) return 'ours: middleware (flush, startOnce)'
  const ours = /\/(src\/.*)$/.exec(source)
  if (ours) return `ours: ${ours[1]}`
  if (source.includes('/bench/')) return 'bench harness'
  if (/^node:internal\/(process\/task_queues|timers)/.test(source)) return 'node: microtasks + timers'
  if (source.startsWith('node:')) return 'node: other'
  return source || '(unknown)'
}

/** Natives of the platform that get a bucket of their own; other natives go to their caller's. */
const PLATFORM = {
  structuredClone: 'structured clone',
  put: 'IndexedDB natives (Chromium: incl. serialization)',
  get: 'IndexedDB natives (Chromium: incl. serialization)',
  getAll: 'IndexedDB natives (Chromium: incl. serialization)',
  getAllKeys: 'IndexedDB natives (Chromium: incl. serialization)',
  getAllRecords: 'IndexedDB natives (Chromium: incl. serialization)',
  transaction: 'IndexedDB natives (Chromium: incl. serialization)',
  objectStore: 'IndexedDB natives (Chromium: incl. serialization)',
  open: 'IndexedDB natives (Chromium: incl. serialization)',
}
const SPECIAL = { '(garbage collector)': 'GC', '(program)': 'V8 / runtime (program)', '(idle)': 'idle (waiting)', '(root)': '(root)' }

function makeResolver(bundleUrl, mapFile) {
  const map = new SourceMap(JSON.parse(readFileSync(mapFile, 'utf8')))
  const cache = new Map()
  return (frame) => {
    if (frame.url !== bundleUrl) return { source: frame.url.replace(/^file:\/\//, ''), line: frame.lineNumber + 1 }
    const key = `${frame.lineNumber}:${frame.columnNumber}`
    let hit = cache.get(key)
    if (!hit) {
      const entry = map.findEntry(frame.lineNumber, frame.columnNumber)
      hit = { source: entry?.originalSource?.replace(/^file:\/\//, '') ?? frame.url, line: (entry?.originalLine ?? frame.lineNumber) + 1 }
      cache.set(key, hit)
    }
    return hit
  }
}

/**
 * Chromium: the page's clock (performance.now(), ms) is not the profile's (µs), so the page runs a
 * marker function before and after each phase (bench/profile/cases.ts) and records when. The
 * offset between the clocks is the one that puts the most marker samples inside their markers'
 * intervals (then narrowed to what all of those allow), and each phase's window follows from it.
 */
function alignPhases(report) {
  const starts = report.phases.map((p) => [p.s0 * 1000, p.s1 * 1000])
  const ends = report.phases.map((p) => [p.e0 * 1000, p.e1 * 1000])
  const samples = []
  for (const { profile } of report.profiles) {
    const byId = new Map(profile.nodes.map((n) => [n.id, n]))
    const parent = new Map()
    for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
    const kinds = new Map()
    const kind = (id) => {
      if (!kinds.has(id)) {
        // The nearest JavaScript frame (the spin's leaf may be the native `now`).
        let at = id
        while (byId.get(at).callFrame.url === '' && parent.has(at) && !byId.get(at).callFrame.functionName.startsWith('(')) at = parent.get(at)
        const name = byId.get(at).callFrame.functionName
        kinds.set(id, name === 'phaseStartMarker' ? starts : name === 'phaseEndMarker' ? ends : null)
      }
      return kinds.get(id)
    }
    let ts = profile.startTime
    for (let i = 0; i < profile.samples.length; i++) {
      ts += profile.timeDeltas[i]
      const intervals = kind(profile.samples[i])
      if (intervals) samples.push({ ts, intervals })
    }
  }
  if (samples.length === 0) throw new Error('no marker samples: cannot align the page clock with the profile')
  // The interval of a sorted list that contains t, or null.
  const inside = (intervals, t) => {
    let lo = 0
    let hi = intervals.length - 1
    while (lo <= hi) {
      const mid = (lo + hi) >> 1
      if (intervals[mid][1] < t) lo = mid + 1
      else if (intervals[mid][0] > t) hi = mid - 1
      else return intervals[mid]
    }
    return null
  }
  const score = (c) => samples.reduce((n, s) => n + (inside(s.intervals, s.ts - c) ? 1 : 0), 0)
  let best = { c: 0, n: -1 }
  const probes = samples.filter((_, i) => i % Math.max(1, Math.floor(samples.length / 12)) === 0)
  for (const probe of probes) {
    for (const [a, b] of probe.intervals) {
      const c = probe.ts - (a + b) / 2
      const n = score(c)
      if (n > best.n) best = { c, n }
    }
  }
  let lo = -Infinity
  let hi = Infinity
  for (const s of samples) {
    const hit = inside(s.intervals, s.ts - best.c)
    if (!hit) continue
    lo = Math.max(lo, s.ts - hit[1])
    hi = Math.min(hi, s.ts - hit[0])
  }
  const c = lo <= hi ? (lo + hi) / 2 : best.c
  console.error(
    `profile: page clock aligned with the profile's: ${best.n} of ${samples.length} marker samples inside their markers, offset known to ±${lo <= hi ? ((hi - lo) / 2).toFixed(0) : '?'} µs`,
  )
  return report.phases.map((p) => ({ title: p.label, from: p.s1 * 1000 + c, to: p.e0 * 1000 + c }))
}

/**
 * The runs of a report: one profile per loop, with the phases' windows (Node: on the profile's
 * clock; Chromium: from the page's clock, aligned). Each run: its phase, its profile, the window
 * to count, and its duration as the case timed it.
 */
function runsOf(report) {
  const runs = []
  const seen = new Map()
  const duration = (title) => {
    const k = seen.get(title) ?? 0
    seen.set(title, k + 1)
    return report.timings[title]?.[k] ?? NaN
  }
  const aligned = report.profiles.some((entry) => !entry.windows) ? alignPhases(report) : []
  for (const entry of report.profiles) {
    const { startTime, endTime } = entry.profile
    const windows = entry.windows ?? aligned.filter((w) => w.from >= startTime && w.to <= endTime)
    for (const w of windows) runs.push({ title: w.title, profile: entry.profile, from: w.from, to: w.to, ms: duration(w.title) })
  }
  if (runs.length !== report.phases.length) console.error(`profile: found ${runs.length} phases in the profiles, the case ran ${report.phases.length}`)
  return runs
}

/** Per profile: where each node's self time goes, and the samples' timestamps (computed once). */
const prepared = new WeakMap()
function prepare(profile, resolve) {
  let p = prepared.get(profile)
  if (p) return p
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const where = new Map()
  const place = (id) => {
    if (where.has(id)) return where.get(id)
    const f = byId.get(id).callFrame
    let result
    if (SPECIAL[f.functionName] && !f.url) result = { bucket: SPECIAL[f.functionName], fn: f.functionName }
    else if (!f.url) {
      // A native: its own bucket if it is the platform's (clone, IndexedDB), else its caller's.
      const platform = Object.hasOwn(PLATFORM, f.functionName) ? PLATFORM[f.functionName] : null
      const caller = parent.has(id) ? place(parent.get(id)) : { bucket: '(unknown)', fn: '?' }
      result = { bucket: platform ?? caller.bucket, fn: `${f.functionName || '(anonymous)'} [native, in ${caller.fn}]`, profiler: caller.profiler }
    } else {
      const { source, line } = resolve(f)
      const short = source.replace(/^.*node_modules\//, '').replace(/^.*?\/(src|bench)\//, '$1/')
      result = { bucket: bucketOf(source, f.functionName), fn: `${f.functionName || '(anonymous)'} ${short}:${line}` }
    }
    // Starting and stopping the profiler is not the case's: `start`/`stop` (and in Node `post`,
    // the call into the inspector) with all they call, and the self time of the timer's `run`
    // (it runs no code of its own besides; what it calls is the phase).
    const own = /^(start|stop|post|profiler\.start|profiler\.stop) bench\/profile\/(cases|node)\.ts:/.test(result.fn)
    result.profiler = own || (parent.has(id) && place(parent.get(id)).profiler) || false
    result.self = result.profiler || /^run bench\/profile\/cases\.ts:/.test(result.fn)
    where.set(id, result)
    return result
  }
  let ts = profile.startTime
  const stamps = profile.timeDeltas.map((d) => (ts += d))
  p = { place, stamps }
  prepared.set(profile, p)
  return p
}

/** Self time (µs) per bucket and per function of one run. */
function measureRun(run, resolve) {
  const { profile, from, to } = run
  const { place, stamps } = prepare(profile, resolve)
  const buckets = new Map()
  const functions = new Map()
  let total = 0
  // The first sample in the window (binary search: a loop's profile holds many windows).
  let lo = 0
  let hi = stamps.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (stamps[mid] < from) lo = mid + 1
    else hi = mid
  }
  // A sample stands for the time since the one before it (V8's timeDeltas), clipped to the
  // window; the last one in the window also for the rest of it.
  for (let i = lo; i < stamps.length && stamps[i] < to; i++) {
    const last = i + 1 >= stamps.length || stamps[i + 1] >= to
    const since = i > 0 ? Math.max(stamps[i - 1], from) : Math.max(profile.startTime, from)
    const weight = stamps[i] - since + (last ? Math.min(to, profile.endTime) - stamps[i] : 0)
    if (weight <= 0) continue
    const { bucket, fn, self } = place(profile.samples[i])
    if (bucket === '(root)' || self) continue
    total += weight
    buckets.set(bucket, (buckets.get(bucket) ?? 0) + weight)
    const key = `${bucket}\u0000${fn}`
    functions.set(key, (functions.get(key) ?? 0) + weight)
  }
  return { total, buckets, functions, ms: run.ms }
}

function sum(measured) {
  const buckets = new Map()
  const functions = new Map()
  let total = 0
  let ms = 0
  for (const m of measured) {
    total += m.total
    ms += m.ms
    for (const [k, v] of m.buckets) buckets.set(k, (buckets.get(k) ?? 0) + v)
    for (const [k, v] of m.functions) functions.set(k, (functions.get(k) ?? 0) + v)
  }
  // Per run: each bucket's share of the samples times the runs' mean duration as timed.
  return { total, buckets, functions, count: measured.length, perRun: ms / measured.length }
}

const pct = (part, whole) => `${((100 * part) / whole).toFixed(1).padStart(5)}%`
const ms = (us) => `${(us / 1000).toFixed(3).padStart(7)} ms`

function print(id, report, resolve, where) {
  const byTitle = new Map()
  for (const run of runsOf(report)) {
    if (!byTitle.has(run.title)) byTitle.set(run.title, [])
    byTitle.get(run.title).push(measureRun(run, resolve))
  }
  for (const [title, measured] of byTitle) {
    // All runs (the mean, rare long GCs included) and the middle half of the runs by their timed
    // duration (what a median sees; the benchmark reports medians).
    const all = sum(measured)
    const sorted = [...measured].sort((a, b) => a.ms - b.ms)
    const middle = sum(sorted.slice(Math.floor(sorted.length / 4), Math.ceil((3 * sorted.length) / 4)))
    const msOf = (part, of) => ms((1000 * of.perRun * part) / of.total)
    const median = sorted[sorted.length >> 1].ms
    console.log(
      `\n## ${id} (${where}) — phase "${title}": ${all.count} runs, timed (profiler on): median ${median.toFixed(3)} ms, mean ${all.perRun.toFixed(3)} ms; ${Math.round((all.total / 1000 / all.count / (all.perRun || 1)) * 100)}% of the time sampled`,
    )
    console.log(`\nself time by module (share of the samples × the runs' mean time):   all runs           middle half by time`)
    for (const [bucket, us] of [...middle.buckets].sort((a, b) => b[1] - a[1])) {
      const a = all.buckets.get(bucket) ?? 0
      console.log(`  ${bucket.padEnd(46)} ${msOf(a, all)} ${pct(a, all.total)}    ${msOf(us, middle)} ${pct(us, middle.total)}`)
    }
    for (const [bucket, a] of all.buckets) if (!middle.buckets.has(bucket)) console.log(`  ${bucket.padEnd(46)} ${msOf(a, all)} ${pct(a, all.total)}`)
    console.log(`\ntop ${top} functions by self time, middle half:`)
    for (const [key, us] of [...middle.functions].sort((a, b) => b[1] - a[1]).slice(0, top)) {
      const [bucket, fn] = key.split('\u0000')
      console.log(`  ${pct(us, middle.total)} ${msOf(us, middle)}  ${fn}  (${bucket})`)
    }
  }
  if (report.limits.length > 0) console.log(`\nlimits (${where}, side by side, alternating; ratio = median of the per-round ratios):`)
  for (const r of report.limits) {
    const f = (x) => (x >= 1 ? x.toFixed(2) : x.toFixed(3))
    console.log(
      `  ${r.title}: ${r.ours} ${f(r.oursMedianMs)} ms vs ${r.baseline} ${f(r.baselineMedianMs)} ms = ${r.ratio.toFixed(2)}× (${r.ratioMin.toFixed(2)}–${r.ratioMax.toFixed(2)}×)`,
    )
  }
  if (saveDir) {
    mkdirSync(saveDir, { recursive: true })
    report.profiles.forEach(({ title, profile }, i) =>
      writeFileSync(join(saveDir, `${id}-${where}-${(title ?? 'loop').replace(/\W+/g, '_')}-${i}.cpuprofile`), JSON.stringify(profile)),
    )
  }
}

// ---------------------------------------------------------------------------------------- runs

if (!chromium) {
  const bundle = join(out, 'profile-node.mjs')
  await build({ ...common, entryPoints: [join(root, 'bench/profile/node.ts')], outfile: bundle, platform: 'node', target: 'node20', packages: 'external' })
  const resolve = makeResolver(new URL(`file://${realpathSync(bundle)}`).href, `${bundle}.map`)
  for (const id of ids) {
    const json = join(out, `profile-${id}.json`)
    const child = spawnSync(process.execPath, ['--expose-gc', bundle, id, json, ...(quick ? ['--quick'] : [])], {
      stdio: 'inherit',
      env: { ...process.env, NODE_ENV: 'production' },
    })
    if (child.status !== 0) process.exit(child.status ?? 1)
    print(id, JSON.parse(readFileSync(json, 'utf8')), resolve, 'Node')
  }
} else {
  const bundlePath = join(out, 'profile-browser.js')
  await build({ ...common, entryPoints: [join(root, 'bench/profile/browser.ts')], outfile: bundlePath, platform: 'browser', target: 'chrome120' })
  const bundle = readFileSync(bundlePath)
  const isolated = { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' }
  const server = createServer((req, res) => {
    if (req.url === '/profile-browser.js') {
      res.writeHead(200, { 'content-type': 'text/javascript', ...isolated })
      res.end(bundle)
    } else {
      res.writeHead(200, { 'content-type': 'text/html', ...isolated })
      res.end('<!doctype html><meta charset="utf-8"><title>profile</title><script type="module" src="/profile-browser.js"></script>')
    }
  })
  await new Promise((done) => server.listen(0, '127.0.0.1', done))
  const origin = `http://127.0.0.1:${server.address().port}`
  const resolve = makeResolver(`${origin}/profile-browser.js`, `${bundlePath}.map`)
  const { chromium: launcher } = await import('playwright-core')
  const browser = await launcher.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--js-flags=--expose-gc'],
  })
  try {
    const page = await browser.newPage()
    page.on('console', (message) => {
      if (message.type() === 'error' || message.type() === 'warning') console.error(`[chromium] ${message.text()}`)
    })
    await page.goto(`${origin}/`)
    await page.waitForFunction(() => typeof window.runProfile === 'function')
    const cdp = await page.context().newCDPSession(page)
    let profiles = []
    cdp.on('Profiler.consoleProfileFinished', (event) => profiles.push({ title: event.title ?? '', profile: event.profile }))
    await cdp.send('Profiler.enable')
    await cdp.send('Profiler.setSamplingInterval', { interval: Number(process.env.PROFILE_INTERVAL_US ?? 100) })
    for (const id of ids) {
      profiles = []
      const report = await page.evaluate(([which, q]) => window.runProfile(which, q), [id, quick])
      await new Promise((done) => setTimeout(done, 200)) // the last events
      print(id === 'B1' ? 'B2' : id, { ...report, profiles }, resolve, 'Chromium')
    }
  } finally {
    await browser.close()
    server.close()
  }
}
