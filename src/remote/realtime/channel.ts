import type { PersistenceEvent } from '../../core/events'
import type { RealtimeControl, RealtimeState, WebSocketConstructorLike, WebSocketLike } from '../../core/ports'
import { HttpError, MalformedResponseError, RealtimeError, toSyncError, type SyncError } from '../../errors'
import type { ChangesResponse } from '../http/protocol'
import { parseChangesPage, ShapeError } from '../http/parse'
import { backoffDelay } from '../../utils/backoff'
import { singleFlight } from '../../utils/singleFlight'
import { unref } from '../../utils/unref'
import type { CheckedRealtimeOptions } from '../options'
import { CLOSE_REASONS, CloseCode, parseServerMessage, PULL_FEATURE, REALTIME_PROTOCOL, type ClientMessage, type ServerMessage } from './messages'

/** What the channel needs from its engine: passed in, so the channel knows nothing else of it. */
export interface RealtimeDeps {
  readonly options: CheckedRealtimeOptions
  /** The bearer token; `refresh: true` asks `getToken` for a new one (shared with HTTP 401 refreshes). */
  bearer(refresh: boolean): Promise<string | null>
  /** One incremental pull of the feed. */
  pull(): Promise<void>
  /** The cursor the last committed pull ended at (`null` before the first). */
  cursor(): string | null
  /** Now, on the server's clock (the device clock corrected by the measured offset). */
  serverNow(): number
  /** The channel's state changed (`error`: why it is down, or `null`). */
  setState(state: RealtimeState, error: RealtimeError | null): void
  emit(event: PersistenceEvent): void
  report(error: SyncError): void
  /** How long a pull over the socket may take before the socket counts as dead (the HTTP requests' timeout). */
  readonly requestTimeoutMs: number
  random?: () => number
}

/** The real-time channel of one engine. */
export interface RealtimeChannel extends RealtimeControl {
  /**
   * One incremental pull over the open socket: what `POST /sync/changes` with these parameters
   * answers. `null` when the socket is not open or the server does not offer pulls (`ready`'s
   * `features`): pull over HTTP then. Rejects with an `HttpError` when the server answered the
   * pull with a failure (`pullFailed`), and with a `RealtimeError` or `MalformedResponseError`
   * when the socket did not answer it (closed, timed out, a malformed answer): HTTP may still.
   */
  changes(since: string, options: { readonly limit?: number; readonly collections?: readonly string[] }): Promise<ChangesResponse> | null
  /** Stops for good. */
  dispose(): void
}

interface PendingPull {
  readonly since: string
  readonly resolve: (page: ChangesResponse) => void
  readonly reject: (error: SyncError) => void
  readonly timer: ReturnType<typeof setTimeout>
}

const OPEN = 1

/**
 * The client side of the real-time channel (docs/protocol.md, "Real-time channel").
 *
 * Rules it keeps:
 * - A poke carries no data: every poke, and every (re)connect, leads to an incremental pull, so a
 *   lost message, a dropped socket or a missed notification loses nothing.
 * - Pokes that arrive while a pull runs are coalesced into one more pull (`singleFlight`).
 * - The token travels in the first message, never in the URL. A socket closed because its token
 *   expired (4002) or was refused (4001) asks `getToken({ refresh: true })` and reconnects at
 *   once; a second refusal in a row backs off like any other failure.
 * - Silence for two heartbeat intervals means the connection is dead, whatever TCP says: the
 *   socket is dropped and reopened with backoff and jitter.
 * - Events of a socket that was replaced or dropped are ignored (a generation counter).
 */
export function createRealtimeChannel(deps: RealtimeDeps): RealtimeChannel {
  const { options } = deps
  const { initialDelayMs, maxDelayMs } = options.retry
  let started = false
  let disposed = false
  let generation = 0
  let socket: WebSocketLike | null = null
  let state: RealtimeState = 'off'
  let attempt = 0
  let refreshNext = false
  let refusedOnce = false
  let reported: string | null = null
  let heartbeatMs = options.heartbeatMs
  let lastHeard = 0
  let reconnectTimer: ReturnType<typeof setTimeout> | null = null
  let heartbeatTimer: ReturnType<typeof setTimeout> | null = null
  let connectTimer: ReturnType<typeof setTimeout> | null = null
  let pokes = 0
  let newestPokeAt: number | null = null
  let newestCursor = ''
  /** Whether this socket's server answers pulls (its `ready` offered them, and none came back malformed). */
  let pullsOffered = false
  let pullIds = 0
  const pulls = new Map<string, PendingPull>()

  function setState(next: RealtimeState, error: RealtimeError | null = null): void {
    if (disposed && next !== 'off') return
    if (next === state && error === null) return
    state = next
    deps.setState(next, error)
  }

  function report(error: SyncError): void {
    // A server that stays away is reported once, not at every backoff.
    if (reported === error.message) return
    reported = error.message
    deps.report(error)
  }

  const pullAfterPokes = singleFlight(
    async () => {
      const covered = pokes
      const at = newestPokeAt
      const cursor = newestCursor
      pokes = 0
      newestPokeAt = null
      // This client already holds the feed up to the poked cursor (a pull since, a pushed
      // write pulled by hand with syncNow()): nothing to fetch. Only equality is trusted:
      // cursors are opaque.
      if (covered > 0 && cursor === deps.cursor()) {
        if (!disposed) deps.emit({ type: 'poke', cursor, pokes: covered, pulled: false, visibleAfterMs: null })
        return
      }
      try {
        await deps.pull()
      } catch (caught) {
        // The engine already put the failure into the sync status; the interval retries too.
        report(toSyncError(caught, 'pulling after a real-time poke failed'))
        return
      }
      if (covered > 0 && !disposed) {
        deps.emit({ type: 'poke', cursor, pokes: covered, pulled: true, visibleAfterMs: at === null ? null : Math.max(0, deps.serverNow() - at) })
      }
    },
    () => started && !disposed,
  )
  const pull = (): void => void pullAfterPokes().catch(() => undefined)

  function clearTimers(): void {
    for (const timer of [reconnectTimer, heartbeatTimer, connectTimer]) if (timer) clearTimeout(timer)
    reconnectTimer = heartbeatTimer = connectTimer = null
  }

  function send(ws: WebSocketLike, message: ClientMessage): void {
    try {
      if (ws.readyState === OPEN) ws.send(JSON.stringify(message))
    } catch {
      // A send on a socket that is closing is lost; the close event follows and reconnects.
    }
  }

  function schedule(delayMs: number): void {
    if (!started || disposed || reconnectTimer) return
    reconnectTimer = unref(
      setTimeout(() => {
        reconnectTimer = null
        void connect()
      }, delayMs),
    )
  }

  async function connect(): Promise<void> {
    if (!started || disposed) return
    clearTimers()
    const gen = ++generation
    setState('connecting')
    let token: string | null
    try {
      token = await deps.bearer(refreshNext)
    } catch (caught) {
      if (gen !== generation) return
      closed(gen, CloseCode.unauthorized, 'get_token_failed', caught)
      return
    }
    refreshNext = false
    if (gen !== generation || !started) return
    const Ctor = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructorLike }).WebSocket
    if (typeof Ctor !== 'function') {
      // Server-side rendering, or Node 20 without an injected class: polling does the work.
      started = false
      const error = new RealtimeError('no WebSocket constructor: pass remote.realtime.WebSocket (e.g. the ws package in Node 20)', {
        code: CloseCode.abnormal,
        reason: 'no_websocket',
        url: options.url,
      })
      setState('off', error)
      report(error)
      return
    }
    let ws: WebSocketLike
    try {
      ws = new Ctor(options.url)
    } catch (caught) {
      closed(gen, CloseCode.abnormal, 'constructor_failed', caught)
      return
    }
    socket = ws
    connectTimer = unref(setTimeout(() => abandon(gen, CloseCode.helloTimeout), options.connectTimeoutMs))
    ws.addEventListener('open', () => {
      if (gen === generation) send(ws, { type: 'hello', protocol: REALTIME_PROTOCOL, token })
    })
    ws.addEventListener('message', (event) => onMessage(gen, ws, event.data))
    ws.addEventListener('close', (event) => closed(gen, event.code, event.reason))
    // The close event follows every error; without a listener some implementations throw.
    ws.addEventListener('error', () => undefined)
  }

  function onMessage(gen: number, ws: WebSocketLike, data: unknown): void {
    if (gen !== generation) return
    lastHeard = performance.now()
    const message = parseServerMessage(data)
    if (!message) {
      abandon(gen, CloseCode.badMessage)
      return
    }
    if (message.type === 'changes' || message.type === 'pullFailed') {
      answered(message)
      return
    }
    if (message.type === 'ready') {
      if (connectTimer) clearTimeout(connectTimer)
      connectTimer = null
      pullsOffered = message.features.includes(PULL_FEATURE)
      heartbeatMs = Math.max(10, Math.min(options.heartbeatMs, message.heartbeatMs))
      attempt = 0
      refusedOnce = false
      reported = null
      setState('open')
      armHeartbeat(gen, ws)
      // Whatever was written while this client had no socket: one incremental pull catches up.
      pull()
    } else if (message.type === 'poke') {
      if (state !== 'open') return
      pokes++
      newestCursor = message.cursor
      newestPokeAt = newestPokeAt === null ? message.at : Math.max(newestPokeAt, message.at)
      pull()
    } else if (message.type === 'ping') {
      send(ws, { type: 'pong', t: message.t })
    }
  }

  /** The answer to one of this socket's pulls (one that already timed out is dropped). */
  function answered(message: Extract<ServerMessage, { type: 'changes' | 'pullFailed' }>): void {
    const pending = pulls.get(message.id)
    if (!pending) return
    pulls.delete(message.id)
    clearTimeout(pending.timer)
    const where = `${options.url} (pull ${message.id})`
    if (message.type === 'pullFailed') {
      const text = `the real-time server answered a pull with ${message.status} (${message.error})`
      pending.reject(new HttpError(text, { status: message.status, code: message.error, serverMessage: message.message, method: 'PULL', url: options.url }))
      return
    }
    try {
      pending.resolve(parseChangesPage(message.body, pending.since))
    } catch (caught) {
      if (!(caught instanceof ShapeError)) throw caught
      // A server whose socket answers are broken: its pulls go over HTTP from now on (pokes still count).
      pullsOffered = false
      const error = new MalformedResponseError(`a pull over ${where} answered with an unexpected shape: ${caught.problem}`, {
        status: 200,
        url: options.url,
        problem: caught.problem,
      })
      report(error)
      pending.reject(error)
    }
  }

  function armHeartbeat(gen: number, ws: WebSocketLike): void {
    heartbeatTimer = unref(
      setTimeout(() => {
        heartbeatTimer = null
        if (gen !== generation) return
        if (performance.now() - lastHeard > 2 * heartbeatMs) {
          abandon(gen, CloseCode.heartbeatTimeout)
          return
        }
        send(ws, { type: 'ping', t: Date.now() })
        armHeartbeat(gen, ws)
      }, heartbeatMs),
    )
  }

  /** Drops the socket from this side, without waiting for a close event a dead connection may never deliver. */
  function abandon(gen: number, code: number): void {
    const reason = CLOSE_REASONS[code] ?? ''
    const ws = socket
    closed(gen, code, reason)
    try {
      ws?.close(code, reason)
    } catch {
      // Already closed.
    }
  }

  /** Every pull still waiting for an answer fails (the socket it was asked on is gone): the engine asks over HTTP. */
  function failPulls(error: RealtimeError): void {
    for (const [id, pending] of pulls) {
      clearTimeout(pending.timer)
      pulls.delete(id)
      pending.reject(error)
    }
  }

  function closed(gen: number, code: number, reason: string, cause?: unknown): void {
    if (gen !== generation) return
    generation++
    socket = null
    pullsOffered = false
    clearTimers()
    failPulls(new RealtimeError(`the real-time channel closed: ${code}${reason ? ` ${reason}` : ''}`, { code, reason, url: options.url }))
    if (!started || disposed) {
      setState('off')
      return
    }
    const error = new RealtimeError(`the real-time channel closed: ${code}${reason ? ` ${reason}` : ''}`, {
      code,
      reason,
      url: options.url,
      ...(cause === undefined ? {} : { cause }),
    })
    setState('down', error)
    if (code === CloseCode.tokenExpired || code === CloseCode.unauthorized) {
      // The token, not the server, is the problem: every attempt after a refusal asks for a new
      // one. The first comes straight back; refusals in a row back off like any failure.
      refreshNext = true
      if (code === CloseCode.tokenExpired || !refusedOnce) {
        refusedOnce = code === CloseCode.unauthorized
        schedule(0)
        return
      }
    }
    if (code === CloseCode.unauthorized || code === CloseCode.badMessage || code === CloseCode.unsupportedProtocol) report(error)
    schedule(backoffDelay(++attempt, initialDelayMs, maxDelayMs, deps.random))
  }

  return {
    changes(since, query) {
      const ws = socket
      if (state !== 'open' || !pullsOffered || ws === null || ws.readyState !== OPEN) return null
      const gen = generation
      const id = String(++pullIds)
      return new Promise<ChangesResponse>((resolve, reject) => {
        // No answer in time: the socket is as good as dead. Dropping it fails this pull (and any
        // other waiting), and the engine asks over HTTP.
        const timer = unref(setTimeout(() => abandon(gen, CloseCode.heartbeatTimeout), deps.requestTimeoutMs))
        pulls.set(id, { since, resolve, reject, timer })
        send(ws, {
          type: 'pull',
          id,
          since,
          ...(query.limit === undefined ? {} : { limit: query.limit }),
          ...(query.collections ? { collections: query.collections } : {}),
        })
      })
    },
    start() {
      if (disposed || started) return
      started = true
      void connect()
    },
    stop() {
      if (!started) return
      started = false
      const ws = socket
      generation++
      socket = null
      pullsOffered = false
      clearTimers()
      failPulls(new RealtimeError('the real-time channel stopped', { code: CloseCode.normal, reason: 'stop', url: options.url }))
      try {
        ws?.close(CloseCode.normal, 'stop')
      } catch {
        // Already closed.
      }
      setState('off')
    },
    get state() {
      return state
    },
    dispose() {
      this.stop()
      disposed = true
    },
  }
}
