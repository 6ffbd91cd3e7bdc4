// The Node entry of `node bench/profile/profile.mjs` (see there): fake-indexeddb, and an
// in-process inspector session whose Profiler records each timed phase of the case.
import 'fake-indexeddb/auto' // a global indexedDB for idb-keyval (redux-persist's storage); ours gets its own factory
import { IDBFactory } from 'fake-indexeddb'
import { writeFileSync } from 'node:fs'
import { Session, type Profiler } from 'node:inspector'
import { profileCases, profiler } from './cases'

const [id, out] = process.argv.slice(2)
const quick = process.argv.includes('--quick')
const run = profileCases[id ?? '']
if (!run || !out) throw new Error(`usage: node <bundle> <${Object.keys(profileCases).join('|')}> <out.json> [--quick]`)
const session = new Session()
session.connect()
/** The session's answers come back synchronously on the main thread: assert it, never assume it. */
function post(method: string, params?: object): unknown {
  let answer: { error: Error | null; result: unknown } | null = null
  session.post(method, params, (error: Error | null, result: unknown) => void (answer = { error, result }))
  const got = answer as { error: Error | null; result: unknown } | null
  if (!got) throw new Error(`inspector: ${method} did not answer synchronously`)
  if (got.error) throw got.error
  return got.result
}
/** One profile per loop of phases, with the windows of its phases on the profile's clock (µs). */
const profiles: Array<{ profile: Profiler.Profile; windows: Array<{ title: string; from: number; to: number }> }> = []
let windows: Array<{ title: string; from: number; to: number }> = []
// hrtime is CLOCK_MONOTONIC, the clock of V8's profile timestamps on Linux (checked below).
const now = (): number => Number(process.hrtime.bigint() / 1000n)
post('Profiler.enable')
post('Profiler.setSamplingInterval', { interval: Number(process.env.PROFILE_INTERVAL_US ?? 50) })
profiler.session = async (loop) => {
  windows = []
  const before = now()
  post('Profiler.start')
  try {
    await loop()
  } finally {
    profiles.push({ profile: (post('Profiler.stop') as { profile: Profiler.Profile }).profile, windows })
  }
  if (Math.abs(profiles[profiles.length - 1]!.profile.startTime - before) > 100_000)
    throw new Error('the profile clock is not hrtime: the windows would not match')
}
profiler.start = (title) => void windows.push({ title, from: now(), to: Infinity })
profiler.stop = () => void (windows[windows.length - 1]!.to = now())
const report = await run({ quick, factory: () => new IDBFactory(), browser: false })
session.disconnect()
writeFileSync(out, JSON.stringify({ ...report, profiles }))
