import type { LockManagerLike } from '../core/ports'

export type { ChannelLike, LockManagerLike } from '../core/ports'

/** How a leader is chosen among tabs sharing one database. */
export type LeaderMode =
  /** Web Locks where they exist; where they do not: lead in a non-browser runtime (one process, no tabs), never in a browser. */
  | 'auto'
  /** This instance always leads (single-tab apps, Node). */
  | 'always'
  /** This instance never runs auto-sync (manual `syncNow()` still works). */
  | 'never'

/**
 * Runs `onLead` while this instance holds the leader lock; resolves `stop` to give it up.
 *
 * Why Web Locks: message-based elections produced several leaders under CPU load
 * (broadcast-channel #385). A lock has exactly one holder, and when the holder's tab dies the
 * browser releases it and the next waiting tab takes over. Without locks we fail closed in
 * browsers: no tab leads, rather than every tab leading.
 */
export function electLeader(options: {
  name: string
  mode: LeaderMode
  locks: LockManagerLike | null
  onLead: () => void
  onError: (error: unknown) => void
}): { stop(): void; readonly mechanism: 'web-locks' | 'always' | 'none' } {
  const { name, mode, locks, onLead, onError } = options
  const browser = typeof (globalThis as { document?: unknown }).document !== 'undefined'
  if (mode === 'never' || (mode === 'auto' && !locks && browser)) return { stop() {}, mechanism: 'none' }
  if (mode === 'always' || !locks) {
    queueMicrotask(onLead)
    return { stop() {}, mechanism: 'always' }
  }
  const abort = typeof AbortController === 'function' ? new AbortController() : null
  let release: (() => void) | null = null
  let stopped = false
  locks
    .request(name, { mode: 'exclusive', ...(abort ? { signal: abort.signal } : {}) }, () => {
      if (stopped) return Promise.resolve()
      onLead()
      // Hold the lock until stop(): the promise settles only then.
      return new Promise<void>((resolve) => {
        release = resolve
      })
    })
    .catch((error: unknown) => {
      if (!stopped) onError(error)
    })
  return {
    stop() {
      stopped = true
      if (release) release()
      else abort?.abort()
    },
    mechanism: 'web-locks',
  }
}
