import { afterEach, describe, expect, test, vi } from 'vitest'
import { electLeader, type LeaderMode, type LockManagerLike } from '../../src/tabs/leader'
import { memoryLocks } from '../support/coordination'

const NAME = 'redux-idb-sync:leader:test'

/** Lets queued microtasks and promise callbacks run. */
const flush = async (): Promise<void> => {
  for (let i = 0; i < 10; i++) await Promise.resolve()
}

/** A tab taking part in the election; `leads` counts its onLead calls. */
function candidate(mode: LeaderMode, locks: LockManagerLike | null) {
  const state = { leads: 0, errors: [] as unknown[] }
  const election = electLeader({
    name: NAME,
    mode,
    locks,
    onLead: () => state.leads++,
    onError: (error) => state.errors.push(error),
  })
  return Object.assign(state, { election })
}

afterEach(() => {
  vi.unstubAllGlobals()
})

describe('electLeader with a lock manager (Web Locks)', () => {
  test('of three tabs exactly one leads, and it holds the lock', async () => {
    const locks = memoryLocks()
    const tabs = [candidate('auto', locks), candidate('auto', locks), candidate('auto', locks)]
    await flush()
    expect(tabs.map((t) => t.leads)).toEqual([1, 0, 0])
    expect(tabs.every((t) => t.election.mechanism === 'web-locks')).toBe(true)
    expect(locks.holder(NAME)).not.toBeNull()
  })

  test('stop() hands the lead over to the next waiting tab, in order, one at a time', async () => {
    const locks = memoryLocks()
    const [first, second, third] = [candidate('auto', locks), candidate('auto', locks), candidate('auto', locks)]
    await flush()
    first!.election.stop()
    await flush()
    expect([first!.leads, second!.leads, third!.leads]).toEqual([1, 1, 0])
    second!.election.stop()
    await flush()
    expect([first!.leads, second!.leads, third!.leads]).toEqual([1, 1, 1])
    third!.election.stop()
    await flush()
    expect(locks.holder(NAME)).toBeNull()
  })

  test('a waiting tab that stops never leads, and its aborted request is not reported as an error', async () => {
    const locks = memoryLocks()
    const leader = candidate('auto', locks)
    const waiting = candidate('auto', locks)
    const next = candidate('auto', locks)
    await flush()
    waiting.election.stop()
    await flush()
    leader.election.stop()
    await flush()
    expect([leader.leads, waiting.leads, next.leads]).toEqual([1, 0, 1])
    expect(waiting.errors).toEqual([])
  })

  test('a lock granted after stop() (a manager that ignores the abort) is given back at once without leading', async () => {
    let grant: (() => void) | null = null
    let released = false
    const lateLocks: LockManagerLike = {
      request: (_name, _options, callback) =>
        new Promise((resolve) => {
          grant = () => {
            void callback({ name: NAME })
              .then(() => {
                released = true
              })
              .then(resolve)
          }
        }),
    }
    const tab = candidate('auto', lateLocks)
    tab.election.stop()
    grant!()
    await flush()
    expect(tab.leads).toBe(0)
    expect(released).toBe(true)
  })

  test('a lock request that fails is reported through onError; nobody leads', async () => {
    const refused = new DOMException('not allowed', 'SecurityError')
    const tab = candidate('auto', { request: () => Promise.reject(refused) })
    await flush()
    expect(tab.leads).toBe(0)
    expect(tab.errors).toEqual([refused])
  })
})

describe('electLeader without a lock manager', () => {
  test('in a browser, auto fails closed: no tab leads', async () => {
    vi.stubGlobal('document', {})
    const tabs = [candidate('auto', null), candidate('auto', null)]
    await flush()
    expect(tabs.map((t) => t.leads)).toEqual([0, 0])
    expect(tabs[0]!.election.mechanism).toBe('none')
  })

  test('outside a browser (one process, no tabs), auto leads, in a microtask, not during the call', async () => {
    expect(typeof (globalThis as { document?: unknown }).document).toBe('undefined')
    const tab = candidate('auto', null)
    expect(tab.leads).toBe(0)
    await flush()
    expect(tab.leads).toBe(1)
    expect(tab.election.mechanism).toBe('always')
  })
})

describe('electLeader, fixed modes', () => {
  test('always leads (once, in a microtask) without touching the lock, also in a browser', async () => {
    vi.stubGlobal('document', {})
    const locks = memoryLocks()
    const request = vi.spyOn(locks, 'request')
    const tab = candidate('always', locks)
    expect(tab.leads).toBe(0)
    await flush()
    expect(tab.leads).toBe(1)
    expect(tab.election.mechanism).toBe('always')
    expect(request).not.toHaveBeenCalled()
  })

  test('never never leads, even as the only tab with a free lock', async () => {
    const locks = memoryLocks()
    const request = vi.spyOn(locks, 'request')
    const tab = candidate('never', locks)
    await flush()
    expect(tab.leads).toBe(0)
    expect(tab.election.mechanism).toBe('none')
    expect(request).not.toHaveBeenCalled()
  })
})
