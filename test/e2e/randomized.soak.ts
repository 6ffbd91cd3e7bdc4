// Randomized, adversarial, multi-client end-to-end test of the promise "an operation the app
// made is either on the server or still queued durably, never lost and never applied twice",
// against the REAL Flask server (server/app.py) and the BUILT library (dist/).
//
// Each run: a reset server and a fresh collection; 2 or 3 devices, each with its own
// fake-indexeddb (one device has two tabs sharing its database, coordinated by auto-sync over
// linked channels and an in-memory lock manager); a conflict strategy drawn per run; then 10 to
// 30 random steps: edits (put/delete, unique values) of shared keys (every tab edits them) and
// private keys (one tab slot only), bursts of edits of one key, explicit syncs (awaited or in the
// background), lost answers (the server processed the request, the client gets a TypeError),
// slow commits (the continuation after a commit resolves runs late), dispose-and-re-create of a
// tab, server stops and starts on the same SQLite file, injected 5xx, and device clock jumps.
// Then the faults stop, every tab syncs until quiescent, and the invariants are checked
// (test/e2e/harness/invariants.ts): settled, a converged, b applied once, c latest edit wins /
// client-wins kept, d conflicts announced once, e private keys kept, g no write after dispose.
//
// Runs: `npm run test:random` (50 runs, CI), `npm run test:random:soak` (1,000); FC_RUNS overrides.
// Every run prints its seed; a failure prints the replay command (FC_SEED=<seed> FC_PATH=<path>).
// FC_NO_SHRINK=1 reports the first failing run without shrinking it (each shrink step replays a
// whole run against the server; shrinking can take minutes). FC_TRACE=1 prints every step.
// FC_SURVEY=1 never fails: it runs all FC_RUNS runs and prints which invariants failed in which
// run, each with its replay command. Replays are deterministic as far as the real server and the
// real timers allow: the steps and every random choice follow the seed, the timing does not.
import fc from 'fast-check'
import { afterAll, beforeAll, expect, test } from 'vitest'
import type { ConflictStrategy, SyncConflict } from '../../src'
import { startFlaskServer, type FlaskServer } from './flaskServer'
import {
  EditLog,
  NOT_HEALTH,
  PULL,
  PUSH,
  addDevice,
  checkAppliedOnce,
  checkConflicts,
  checkConverged,
  checkLatestEdits,
  checkNoWriteAfterDispose,
  checkPrivateKeys,
  checkSettled,
  createWorld,
  disposeWorld,
  liveTabs,
  recreateTab,
  seededRandom,
  settle,
  snapshot,
  type ManualAnswer,
  type Tab,
  type Violation,
  type World,
} from './harness'
import { lib } from './lib'

const RUNS = Number(process.env.FC_RUNS ?? 50)
const SEED = Number(process.env.FC_SEED ?? Math.floor(Math.random() * 2 ** 31))
const PATH = process.env.FC_PATH
const NO_SHRINK = process.env.FC_NO_SHRINK === '1'
const TRACE = process.env.FC_TRACE === '1'
const SURVEY = process.env.FC_SURVEY === '1'
const MIN_STEPS = Number(process.env.FC_MIN_STEPS ?? 10)
const MAX_STEPS = Number(process.env.FC_MAX_STEPS ?? 30)

const STRATEGIES = ['client-wins', 'server-wins', 'last-write-wins', 'manual'] as const
type Strategy = (typeof STRATEGIES)[number]
const SHARED = ['s0', 's1', 's2'] as const
const PRIVATE_PER_TAB = 2

type SyncHow = 'push' | 'pull' | 'push+pull' | 'drain' | 'syncNow' | 'full-pull'
type Command =
  | { t: 'put' | 'del'; tab: number; key: number }
  | { t: 'burst'; tab: number; key: number; count: number }
  /** The device's next push answer is lost; the tab edits the key; the server stops; a burst of edits of that key while it is down. */
  | { t: 'lost-then-offline'; tab: number; key: number; count: number }
  | { t: 'wait'; ms: number }
  | { t: 'sync'; tab: number; how: SyncHow; background: boolean }
  | { t: 'lose'; device: number; count: number; what: 'push' | 'pull' | 'any' }
  | { t: 'slow'; device: number; maxMs: number }
  | { t: 'recreate'; tab: number }
  | { t: 'stop' }
  | { t: 'start' }
  | { t: 'clock'; device: number; minutes: number }
  | { t: 'fail'; count: number; status: 500 | 503 }

interface Params {
  readonly strategy: Strategy
  readonly devices: 2 | 3
  /** Which device has two tabs. */
  readonly twoTabs: number
  readonly debounceMs: number
  readonly pushBatchSize: number
  readonly queueBatchSize: number
  readonly autoSyncSingleTab: boolean
  readonly settleMs: number
  readonly rngSeed: number
  /**
   * How the app syncs explicitly (steps and settle). 'thunks': any tab dispatches
   * syncToFlaskBulk / pullFlaskChanges / syncFromFlaskBulk or drains. 'autoSync': a tab with
   * auto-sync only calls its syncNow() (it reloads what other tabs stored first); single-tab
   * devices without auto-sync use the thunks. Both are ways the documented API is used.
   */
  readonly syncApi: 'thunks' | 'autoSync'
  /** Answers to manual conflicts, used in turn. */
  readonly manual: ReadonlyArray<'local' | 'server' | 'merged'>
}

const tabIndex = fc.nat(7)
// Keys 0..2 are shared, 3..4 the tab's private ones; shared ones are drawn more often.
const keyIndex = fc.oneof({ weight: 3, arbitrary: fc.integer({ min: 0, max: 2 }) }, { weight: 2, arbitrary: fc.integer({ min: 3, max: 4 }) })
const command: fc.Arbitrary<Command> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ t: fc.constant('put' as const), tab: tabIndex, key: keyIndex }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('del' as const), tab: tabIndex, key: keyIndex }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('burst' as const), tab: tabIndex, key: keyIndex, count: fc.integer({ min: 3, max: 8 }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('lost-then-offline' as const), tab: tabIndex, key: keyIndex, count: fc.integer({ min: 4, max: 8 }) }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('wait' as const), ms: fc.integer({ min: 1, max: 80 }) }) },
  {
    weight: 4,
    arbitrary: fc.record({
      t: fc.constant('sync' as const),
      tab: tabIndex,
      how: fc.constantFrom<SyncHow>('push', 'pull', 'push+pull', 'drain', 'syncNow', 'full-pull'),
      background: fc.boolean(),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant('lose' as const),
      device: fc.nat(2),
      count: fc.integer({ min: 1, max: 2 }),
      what: fc.constantFrom('push' as const, 'pull' as const, 'any' as const),
    }),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('slow' as const), device: fc.nat(2), maxMs: fc.constantFrom(0, 3, 8, 15) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('recreate' as const), tab: tabIndex }) },
  { weight: 1, arbitrary: fc.constant({ t: 'stop' as const }) },
  { weight: 1, arbitrary: fc.constant({ t: 'start' as const }) },
  {
    weight: 1,
    arbitrary: fc.record({ t: fc.constant('clock' as const), device: fc.nat(2), minutes: fc.integer({ min: -10, max: 10 }).filter((m) => m !== 0) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ t: fc.constant('fail' as const), count: fc.integer({ min: 1, max: 2 }), status: fc.constantFrom(500 as const, 503 as const) }),
  },
)
const params: fc.Arbitrary<Params> = fc.record({
  strategy: fc.constantFrom(...STRATEGIES),
  devices: fc.constantFrom(2 as const, 3 as const),
  twoTabs: fc.nat(2),
  debounceMs: fc.integer({ min: 5, max: 20 }),
  pushBatchSize: fc.constantFrom(1, 2, 4, 100),
  queueBatchSize: fc.constantFrom(1, 3, 100),
  autoSyncSingleTab: fc.boolean(),
  // 0: auto-sync's leader pushes at once, and its changes are marked sent by the transaction that writes them.
  settleMs: fc.oneof(fc.constant(0), fc.integer({ min: 5, max: 30 })),
  rngSeed: fc.integer(),
  syncApi: fc.constantFrom('thunks' as const, 'autoSync' as const),
  manual: fc.array(fc.constantFrom('local' as const, 'server' as const, 'merged' as const), { minLength: 1, maxLength: 8 }),
})

/** How often each kind of step really took effect, over all runs: a fault that never hits tests nothing. */
const coverage = {
  runs: 0,
  edits: 0,
  lostAnswers: 0,
  lostThenOffline: 0,
  serverStops: 0,
  editsWhileDown: 0,
  recreates: 0,
  clockJumps: 0,
  backwardJumps: 0,
  injected5xx: 0,
  backgroundSyncs: 0,
  conflicts: 0,
  slowWrites: 0,
  manualResolved: 0,
}
const perStrategy: Record<string, number> = {}
/** Which invariants failed in which run (survey mode, and the final summary). */
const failures: Array<{ run: number; strategy: Strategy; syncApi: Params['syncApi']; invariants: string[] }> = []

let flask: FlaskServer
let serverUp = true
beforeAll(async () => {
  flask = await startFlaskServer()
}, 30_000)
afterAll(async () => {
  await flask?.close()
})

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))
/** Lets the middleware diff and IndexedDB callbacks run, without moving time much. */
const ticks = async (n = 3): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve))
}

function keyFor(tab: Tab, index: number): string {
  return index < SHARED.length ? SHARED[index]! : `p-${tab.name}-${index - SHARED.length}`
}

let runCounter = 0

async function runScenario(p: Params, commands: readonly Command[]): Promise<Violation[]> {
  const run = runCounter++
  const trace = (...parts: unknown[]): void => {
    if (TRACE) console.log(`[run ${run}]`, ...parts)
  }
  await flask.start()
  serverUp = true
  await flask.reset()
  const rng = seededRandom(p.rngSeed)
  const collection = `docs_${run}_${Math.floor(rng() * 1e9).toString(36)}`
  const slowRngs = new Map<string, () => number>()
  const world: World = createWorld({
    flask,
    collection,
    strategy: p.strategy as ConflictStrategy,
    debounceMs: p.debounceMs,
    pushBatchSize: p.pushBatchSize,
    queueBatchSize: p.queueBatchSize,
    timeoutMs: 3000,
    autoSync: { settleMs: p.settleMs, intervalMs: 300 },
    autoSyncSingleTab: p.autoSyncSingleTab,
    slowDelay: (device) => {
      if (device.slowMaxMs <= 0) return 0
      coverage.slowWrites++
      let r = slowRngs.get(device.name)
      if (!r) slowRngs.set(device.name, (r = seededRandom(p.rngSeed ^ device.name.charCodeAt(1))))
      return Math.floor(r() * (device.slowMaxMs + 1))
    },
  })
  const edits = new EditLog()
  const owners = new Map<string, string>()
  const background: Array<Promise<unknown>> = []
  const twoTabs = p.twoTabs % p.devices
  try {
    for (let d = 0; d < p.devices; d++) {
      const device = await addDevice(world, d === twoTabs ? 2 : 1)
      for (const tab of device.tabs) for (let i = 0; i < PRIVATE_PER_TAB; i++) owners.set(`p-${tab.name}-${i}`, tab.name)
    }
    trace('params', JSON.stringify(p))
    const pickTab = (i: number): Tab => {
      const tabs = liveTabs(world)
      return tabs[i % tabs.length]!
    }
    const edit = (tab: Tab, key: string, op: 'put' | 'delete'): void => {
      edits.apply(tab, key, op)
      coverage.edits++
      if (!serverUp) coverage.editsWhileDown++
    }
    for (const c of commands) {
      trace(JSON.stringify(c))
      switch (c.t) {
        case 'put':
        case 'del': {
          const tab = pickTab(c.tab)
          edit(tab, keyFor(tab, c.key), c.t === 'put' ? 'put' : 'delete')
          await ticks()
          break
        }
        case 'burst': {
          // A user typing: each edit commits on its own (past the debounce) before the next.
          const tab = pickTab(c.tab)
          const key = keyFor(tab, c.key)
          for (let i = 0; i < c.count; i++) {
            edit(tab, key, 'put')
            await pause(p.debounceMs + 5)
          }
          break
        }
        case 'lost-then-offline': {
          const tab = pickTab(c.tab)
          const key = keyFor(tab, c.key)
          tab.device.net.loseNext(1, PUSH)
          coverage.lostThenOffline++
          edit(tab, key, 'put')
          // Long enough for the debounce and a push (auto-sync or the engine's own), whose answer is lost.
          await pause(p.debounceMs + p.settleMs + 60)
          if (serverUp) {
            coverage.serverStops++
            await flask.stop()
            serverUp = false
          }
          for (let i = 0; i < c.count; i++) {
            edit(tab, key, 'put')
            await pause(p.debounceMs + 5)
          }
          break
        }
        case 'wait':
          await pause(c.ms)
          break
        case 'sync': {
          const tab = pickTab(c.tab)
          const work = p.syncApi === 'autoSync' && tab.autoSync ? tab.autoSync.syncNow().catch(() => undefined) : syncStep(tab, c.how)
          if (c.background) {
            coverage.backgroundSyncs++
            background.push(work)
            await ticks()
          } else {
            await work
          }
          break
        }
        case 'lose': {
          const device = world.devices[c.device % world.devices.length]!
          device.net.loseNext(c.count, c.what === 'push' ? PUSH : c.what === 'pull' ? PULL : NOT_HEALTH)
          break
        }
        case 'slow':
          world.devices[c.device % world.devices.length]!.slowMaxMs = c.maxMs
          break
        case 'recreate': {
          const tab = pickTab(c.tab)
          coverage.recreates++
          await recreateTab(tab)
          break
        }
        case 'stop':
          if (serverUp) {
            coverage.serverStops++
            await flask.stop()
            serverUp = false
          }
          break
        case 'start':
          if (!serverUp) {
            await flask.start()
            serverUp = true
          }
          break
        case 'clock': {
          const device = world.devices[c.device % world.devices.length]!
          device.clock.jump(c.minutes * 60_000)
          coverage.clockJumps++
          if (c.minutes < 0) coverage.backwardJumps++
          break
        }
        case 'fail':
          if (serverUp) {
            await flask.failNext(c.count, c.status)
            coverage.injected5xx += c.count
          }
          break
      }
    }
    // The app's own background syncs finish (each request is bounded by timeoutMs).
    await Promise.race([Promise.allSettled(background), pause(15_000)])
    serverUp = true
    let choice = 0
    const resolve = (tab: Tab, conflict: SyncConflict): ManualAnswer => {
      coverage.manualResolved++
      const answer = p.manual[choice++ % p.manual.length]!
      // A private key stays one tab's: another tab (which should never have met a conflict on it,
      // see e:no-conflict-on-private) takes the server's version rather than writing its own.
      const owner = owners.get(String(conflict.id))
      if (owner !== undefined && owner !== tab.name) return { resolution: 'server' }
      if (answer === 'merged') return { resolution: 'merged', value: edits.mergeValue(tab, String(conflict.id)) }
      return { resolution: answer }
    }
    const report = await settle(world, { timeoutMs: 30_000, via: p.syncApi, ...(p.strategy === 'manual' ? { resolve } : {}) })
    trace('settled', JSON.stringify(report))
    const s = await snapshot(world)
    const calls = world.instances.flatMap((t) => t.conflicts)
    coverage.conflicts += calls.length
    coverage.lostAnswers += world.devices.reduce((n, d) => n + d.net.lost.length, 0)
    const violations = [
      ...checkSettled(report),
      ...checkConverged(s),
      ...checkAppliedOnce(s, edits),
      ...checkLatestEdits(s, edits, SHARED, p.strategy as ConflictStrategy),
      ...checkConflicts(world, s),
      ...checkPrivateKeys(s, edits, owners, calls),
    ]
    await disposeWorld(world)
    // Give a disposed instance's in-flight work the chance to write (it must not).
    await pause(50)
    violations.push(...checkNoWriteAfterDispose(world))
    if (violations.length > 0 && TRACE) {
      trace('edits', edits.edits.map((e) => `#${e.seq} ${e.tab} ${e.key}=${e.value?.v ?? '∅'}`).join(' | '))
      trace('history', s.history.map((r) => `${r.id} v${r.version} ${r.deleted ? '∅' : (r.value as { v: string }).v} seq ${r.seq}`).join(' | '))
    }
    return violations
  } finally {
    await disposeWorld(world).catch(() => undefined)
  }
}

async function syncStep(tab: Tab, how: SyncHow): Promise<void> {
  try {
    switch (how) {
      case 'push':
        await tab.store.dispatch(lib.syncToFlaskBulk())
        break
      case 'pull':
        await tab.store.dispatch(lib.pullFlaskChanges())
        break
      case 'push+pull':
        await tab.store.dispatch(lib.syncToFlaskBulk())
        await tab.store.dispatch(lib.pullFlaskChanges())
        break
      case 'drain':
        await tab.persistence.sync?.drain()
        break
      case 'syncNow':
        await (tab.autoSync ? tab.autoSync.syncNow() : tab.persistence.sync?.drain())
        break
      case 'full-pull':
        await tab.store.dispatch(lib.syncFromFlaskBulk())
        break
    }
  } catch {
    // A sync failing while faults are on is expected; settle() must recover from it.
  }
}

function describeFailure(strategy: Strategy, violations: readonly Violation[]): string {
  const ids = [...new Set(violations.map((v) => v.invariant))]
  return [`${violations.length} violation(s) under ${strategy}: ${ids.join(', ')}`, ...violations.map((v) => `  [${v.invariant}] ${v.message}`)].join('\n')
}

test(
  `randomized e2e: ${RUNS} runs of ${MIN_STEPS} to ${MAX_STEPS} steps against the real Flask server (seed ${SEED})`,
  async () => {
    console.log(`[random e2e] fast-check seed ${SEED}, ${RUNS} runs; replay with FC_SEED=${SEED}${PATH ? ` FC_PATH=${PATH}` : ''}`)
    const started = Date.now()
    let index = 0
    const property = fc.asyncProperty(params, fc.array(command, { minLength: MIN_STEPS, maxLength: MAX_STEPS }), async (p, commands) => {
      const runIndex = index++
      coverage.runs++
      perStrategy[p.strategy] = (perStrategy[p.strategy] ?? 0) + 1
      const violations = await runScenario(p, commands)
      if (violations.length === 0) return
      const invariants = [...new Set(violations.map((v) => v.invariant))]
      if (SURVEY) {
        failures.push({ run: runIndex, strategy: p.strategy, syncApi: p.syncApi, invariants })
        console.log(`[random e2e] run ${runIndex} (FC_SEED=${SEED} FC_PATH=${runIndex}, ${p.syncApi}) failed: ${describeFailure(p.strategy, violations)}`)
        return
      }
      throw new Error(describeFailure(p.strategy, violations))
    })
    const details = await fc.check(property, {
      numRuns: RUNS,
      seed: SEED,
      endOnFailure: NO_SHRINK,
      ...(PATH ? { path: PATH } : {}),
    })
    const seconds = ((Date.now() - started) / 1000).toFixed(1)
    console.log(`[random e2e] ${details.numRuns} runs in ${seconds} s; per strategy ${JSON.stringify(perStrategy)}; coverage ${JSON.stringify(coverage)}`)
    if (SURVEY) {
      const byInvariant: Record<string, number[]> = {}
      for (const f of failures) for (const id of f.invariants) (byInvariant[`${id} (${f.strategy}, ${f.syncApi})`] ??= []).push(f.run)
      console.log(
        `[random e2e] survey: ${failures.length}/${details.numRuns} runs failed; by invariant (run indexes, replay with FC_SEED=${SEED} FC_PATH=<index>): ${JSON.stringify(byInvariant)}`,
      )
      return
    }
    if (details.failed) {
      const path = details.counterexamplePath ?? ''
      const message = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance)
      throw new Error(
        [
          `randomized e2e failed after ${details.numRuns} run(s) (${details.numShrinks} shrink(s)), seed ${details.seed}, path ${path}`,
          `replay: FC_SEED=${details.seed} FC_PATH=${path} FC_RUNS=1 npm run test:random`,
          `counterexample: ${JSON.stringify(details.counterexample)}`,
          message,
        ].join('\n'),
      )
    }
    // Every kind of step must really have happened: a fault that never reaches a client tests nothing.
    if (RUNS >= 50 && !PATH) {
      for (const name of ['lostAnswers', 'serverStops', 'editsWhileDown', 'recreates', 'clockJumps', 'conflicts', 'slowWrites', 'backgroundSyncs'] as const) {
        expect(coverage[name], `${name} over ${RUNS} runs`).toBeGreaterThan(0)
      }
    }
  },
  24 * 3600_000,
)
