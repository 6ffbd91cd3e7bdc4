import { HttpError, isHttpError, toSyncError, type SyncError } from '../errors'
import { backoffDelay } from '../utils/backoff'
import { reportOperation, type EngineContext } from './engineContext'
import { syncActions } from './redux/syncSlice'

/** Health checks, the server's clock offset and the server's epoch. */
export interface Connection {
  /** Asks the server's health endpoint; resolves with whether it answered. */
  check(): Promise<boolean>
  /** Records what a request found out about the server. */
  set(connected: boolean, error?: SyncError): void
  /** What the last failed health check found (`null` after a good one). */
  readonly lastError: SyncError | null
  /** Runs `work` after a backoff delay (one pending retry at a time). */
  retryLater(work: () => void): void
  dispose(): void
}

/** A health round trip at most this long gives the server's clock offset to within half of it. */
const GOOD_ROUND_TRIP_MS = 50
/** At most this many extra health checks to measure the offset better. */
const REFINEMENTS = 3

/** A 404 from the health endpoint is a misconfigured `baseUrl`, not an unreachable server: say so. */
function explain(error: SyncError): SyncError {
  if (!isHttpError(error) || error.status !== 404) return error
  return new HttpError(
    `${error.url} answered 404: remote.baseUrl must be the API's URL including its prefix (e.g. http://127.0.0.1:5000/api), and remote.paths.health its health path`,
    { status: 404, code: error.code, method: error.method, url: error.url, cause: error },
  )
}

/** Timers the library owns must never keep a Node process alive on their own. */
export function unrefTimer(timer: ReturnType<typeof setTimeout>): ReturnType<typeof setTimeout> {
  ;(timer as { unref?: () => void }).unref?.()
  return timer
}

/**
 * `onUp` runs when the server became reachable (push what waits); `onEpoch` when an answer
 * named a server database other than the one this client synced with.
 */
export function createConnection(ctx: EngineContext, hooks: { onUp(): void; onEpoch(epoch: string): void }): Connection {
  let healthTimer: ReturnType<typeof setTimeout> | null = null
  let retryTimer: ReturnType<typeof setTimeout> | null = null
  let refineTimer: ReturnType<typeof setTimeout> | null = null
  let refinements = 0
  let bestRoundTrip = Infinity
  let lastError: SyncError | null = null
  /** What reached onError last, so a server that stays down is reported once, not every backoff. */
  let reported: string | null = null
  const { initialDelayMs, maxDelayMs } = ctx.options.retry
  const delay = (): number => backoffDelay(++ctx.failures, initialDelayMs, maxDelayMs)

  function set(connected: boolean, error?: SyncError): void {
    if (ctx.disposed) return
    const changed = connected !== ctx.connected
    ctx.connected = connected
    // Connected and an error only together: the server answers, but not with success.
    if (changed || error) ctx.host.dispatch(syncActions.connectionChanged({ connected, error: error ? error.message : null }))
    if (error && !connected) ctx.host.dispatch(syncActions.syncActivity({ phase: 'error', error: error.message }))
    if (changed) ctx.host.emit({ type: 'connection', connected })
    if (connected) {
      // A healthy answer alone does not reset the backoff while pushes keep failing (a proxy
      // answering health but mangling pushes must not be hammered); a successful push does.
      if (ctx.rows.size === 0) ctx.failures = 0
      if (healthTimer) clearTimeout(healthTimer)
      healthTimer = null
      if (changed) hooks.onUp()
    } else {
      scheduleCheck()
    }
  }

  function scheduleCheck(): void {
    if (ctx.disposed || healthTimer) return
    healthTimer = unrefTimer(
      setTimeout(() => {
        healthTimer = null
        void check()
      }, delay()),
    )
  }

  async function check(): Promise<boolean> {
    const started = Date.now()
    try {
      const sent = ctx.options.now()
      const health = await ctx.client.health()
      const received = ctx.options.now()
      // The estimate is off by at most half the round trip; a faster round trip is a better one,
      // but a newer one wins after a while (the device clock may have been corrected).
      const roundTrip = received - sent
      if (Number.isFinite(health.serverTime) && roundTrip >= 0 && (roundTrip <= bestRoundTrip * 2 || roundTrip < 1000)) {
        ctx.clockOffset = health.serverTime - (sent + received) / 2
        bestRoundTrip = Math.min(bestRoundTrip, roundTrip)
      }
      refine()
      reportOperation(ctx, 'health', 0, started, null)
      ctx.serverProtocol = health.protocol
      if (health.epoch !== undefined) hooks.onEpoch(health.epoch)
      lastError = reported = null
      set(true)
      return true
    } catch (caught) {
      const error = explain(toSyncError(caught, 'health check failed'))
      lastError = error
      reportOperation(ctx, 'health', 0, started, error)
      if (reported !== error.message && !ctx.disposed) {
        reported = error.message
        ctx.host.reportError(error)
      }
      set(false, error)
      return false
    }
  }

  /**
   * The first health check often runs while the page loads (a preflight, a new connection, a
   * busy main thread): a round trip of a second or more leaves the offset up to half of it
   * wrong, and the server's clock is what the real-time latency metric and last-write-wins
   * compare. While the best round trip is slow, measure again a few times (1, 2, 4 s later);
   * the fastest round trip wins.
   */
  function refine(): void {
    if (ctx.disposed || refineTimer || bestRoundTrip <= GOOD_ROUND_TRIP_MS || refinements >= REFINEMENTS) return
    refineTimer = unrefTimer(
      setTimeout(
        () => {
          refineTimer = null
          refinements++
          if (ctx.connected) void check()
        },
        1000 * 2 ** refinements,
      ),
    )
  }

  // `online` is a hint to look again, never the truth (navigator.onLine lies).
  const onOnline = (): void => {
    void check()
  }
  const target = globalThis as { addEventListener?: (t: string, l: () => void) => void; removeEventListener?: (t: string, l: () => void) => void }
  target.addEventListener?.('online', onOnline)

  return {
    check,
    set,
    get lastError() {
      return lastError
    },
    retryLater(work) {
      if (ctx.disposed || retryTimer) return
      retryTimer = unrefTimer(
        setTimeout(() => {
          retryTimer = null
          work()
        }, delay()),
      )
    },
    dispose() {
      for (const timer of [healthTimer, retryTimer, refineTimer]) if (timer) clearTimeout(timer)
      healthTimer = retryTimer = refineTimer = null
      target.removeEventListener?.('online', onOnline)
    },
  }
}
