import { vi } from 'vitest'

/**
 * The clocks the library schedules with. fake-indexeddb completes requests on `setImmediate`
 * and fetch/msw on microtasks, so those stay real: faking them would stall every transaction.
 */
export const FAKE_CLOCKS = ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date', 'performance'] as const

/** Fakes the timers the library uses (see FAKE_CLOCKS); undo with `vi.useRealTimers()`. */
export function useFakeClock(): void {
  vi.useFakeTimers({ toFake: [...FAKE_CLOCKS] })
}

/** Lets IndexedDB (setImmediate) and fetch settle without moving the fake clock. */
export async function settle(rounds = 30): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((resolve) => setImmediate(resolve))
}

/** Moves the fake clock by `ms` (in steps, so work each timer starts can run), then settles. */
export async function advance(ms: number, stepMs = 50): Promise<void> {
  for (let left = ms; left > 0; left -= stepMs) {
    await vi.advanceTimersByTimeAsync(Math.min(stepMs, left))
    await settle(5)
  }
  await settle()
}

/** Moves fake time in `stepMs` steps until `check` holds; fails after `limitMs` of fake time. */
export async function untilFake(check: () => boolean | Promise<boolean>, what = 'condition', limitMs = 10_000, stepMs = 10): Promise<void> {
  for (let elapsed = 0; elapsed <= limitMs; elapsed += stepMs) {
    if (await check()) return
    await advance(stepMs, stepMs)
  }
  throw new Error(`timed out waiting for ${what} (${limitMs} ms of fake time)`)
}

/** Awaits `work` while moving fake time, so the timers it waits for can fire. */
export async function whileAdvancing<T>(work: Promise<T>, what = 'work', limitMs = 10_000): Promise<T> {
  let done = false
  const result = work.finally(() => {
    done = true
  })
  await untilFake(() => done, what, limitMs)
  return result
}
