import { InvalidOptionError } from '../errors'
import { isObject } from '../utils/isObject'
import { checkOptionKeys } from '../utils/optionKeys'
import { checkClientOptions, type ApiClientOptions, type ApiPaths } from './http/client'
import type { ConflictStrategy, SyncConflict } from '../core/conflicts'
import type { WebSocketConstructorLike } from '../core/ports'

/** The real-time channel's settings (docs/protocol.md, "Real-time channel"). */
export interface RealtimeOptions {
  /**
   * The socket server's URL. Never put a token in it (servers and proxies log URLs): the token
   * from `getToken` travels in the first message.
   * @example 'wss://example.com/realtime'
   */
  url: string
  /**
   * The WebSocket constructor. Inject the `ws` package's class in Node 20 (which has no global
   * WebSocket); with none available the channel stays `off` and interval polling does the work.
   * @default globalThis.WebSocket
   * @example
   * ```ts
   * // WebSocket: the class the `ws` package exports (Node 20)
   * createRemote({ baseUrl, realtime: { url: 'ws://127.0.0.1:8765', WebSocket } })
   * ```
   */
  WebSocket?: WebSocketConstructorLike
  /**
   * How often this client pings when the server names no interval in its `ready` message; a
   * connection that brought nothing for twice the interval is dead and is reconnected.
   * @default 15000
   * @example { url, heartbeatMs: 5000 }
   */
  heartbeatMs?: number
  /**
   * How long to wait for the socket to open and the server's `ready` before giving up on the attempt.
   * @default 10000
   * @example { url, connectTimeoutMs: 5000 }
   */
  connectTimeoutMs?: number
  /**
   * Backoff of reconnects (exponential with jitter, as `remote.retry`).
   * @default { initialDelayMs: 500, maxDelayMs: 30000 }
   * @example { url, retry: { initialDelayMs: 1000, maxDelayMs: 60000 } }
   */
  retry?: { initialDelayMs?: number; maxDelayMs?: number }
}

/** {@link RealtimeOptions} with every default filled in, checked once. */
export interface CheckedRealtimeOptions {
  readonly url: string
  readonly WebSocket: WebSocketConstructorLike | null
  readonly heartbeatMs: number
  readonly connectTimeoutMs: number
  readonly retry: { readonly initialDelayMs: number; readonly maxDelayMs: number }
}

/** The options of `createRemote` (`redux-idb-sync/remote`): where and how to sync. */
export interface RemoteOptions extends Omit<ApiClientOptions, 'signal'> {
  /**
   * Max operations per push request.
   * @default 100
   */
  batchSize?: number
  /**
   * Max changes per incremental pull page.
   * @default 500
   */
  pullPageSize?: number
  /**
   * The default conflict strategy; a slice's `conflict` overrides it.
   * @default 'server-wins'
   */
  conflict?: ConflictStrategy
  /** Called for every detected conflict, after the strategy decided (or parked it, for `manual`). */
  onConflict?: (conflict: SyncConflict) => void
  /**
   * Backoff of health checks while the server is unreachable, and of pushes after a failure.
   * @default { initialDelayMs: 1000, maxDelayMs: 60000 }
   */
  retry?: { initialDelayMs?: number; maxDelayMs?: number }
  /**
   * Identifies this client in push requests.
   * @default a random id per instance
   */
  clientId?: string
  /**
   * Whether to check the connection and push as soon as the store starts.
   * @default true
   */
  connectOnStart?: boolean
  /**
   * This device's clock. Device clocks are often minutes off; every health check measures the
   * server's clock against it (`serverTime` at the midpoint of the round trip), and the
   * `clientTime` of each operation is taken on the server's clock, so `last-write-wins` orders
   * the writes of two skewed devices as they really happened. Inject it in tests.
   * @default Date.now
   */
  now?: () => number
  /**
   * Real-time sync: a WebSocket on which the server says when this client's feed advanced, so
   * other devices' changes arrive in milliseconds instead of at the next interval. A URL (or
   * settings with one) turns it on; the leader tab (see auto-sync's `leader`) holds the socket,
   * pokes are coalesced into one incremental pull, and while the socket is down interval
   * polling takes over. Off by default: the plain REST server has no socket.
   * @default false
   * @example
   * ```ts
   * createRemote({ baseUrl: 'https://example.com/api', realtime: 'wss://example.com/realtime' })
   * ```
   */
  realtime?: string | RealtimeOptions | false
}

/**
 * {@link RemoteOptions} with every default filled in, checked once (by `createRemote`). `clientId`
 * stays as given: without one, each engine draws its own ({@link EngineOptions}), so one remote
 * passed to two persistence instances does not make them one client.
 */
export interface CheckedRemoteOptions extends RemoteOptions {
  readonly batchSize: number
  readonly pullPageSize: number
  readonly retry: { readonly initialDelayMs: number; readonly maxDelayMs: number }
  readonly now: () => number
  readonly realtimeChannel: CheckedRealtimeOptions | null
}

/** The options one engine runs with: its client id is settled. */
export interface EngineOptions extends CheckedRemoteOptions {
  readonly clientId: string
}

const STRATEGIES = ['server-wins', 'client-wins', 'last-write-wins', 'manual']

/**
 * Checks every remote option, the HTTP client's included, and fills in the defaults: a bad value
 * or an unknown key throws an `InvalidOptionError` naming it (`remote.batchSize`), when
 * `createRemote` is called rather than when the store starts.
 */
export function checkRemoteOptions(options: RemoteOptions): CheckedRemoteOptions {
  const check = (ok: boolean, name: string, rule: string): void => {
    if (!ok) throw new InvalidOptionError(`remote.${name}`, rule)
  }
  if (!isObject(options)) throw new InvalidOptionError('remote', 'must be an object with at least a baseUrl')
  // Plain-JS typos (`baseURL`, `timeout`) are refused by name.
  checkOptionKeys(options, REMOTE_OPTION_KEYS, 'remote.')
  if (isObject(options.paths)) checkOptionKeys(options.paths, REMOTE_PATH_KEYS, 'remote.paths.')
  if (isObject(options.retry)) checkOptionKeys(options.retry, RETRY_KEYS, 'remote.retry.')
  checkClientOptions(options)
  const intIn = (v: unknown, min: number, max: number): boolean => typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max
  const ms = (v: unknown): boolean => typeof v === 'number' && Number.isFinite(v) && v >= 0
  const batchSize = options.batchSize ?? 100
  const pullPageSize = options.pullPageSize ?? 500
  check(intIn(batchSize, 1, 500), 'batchSize', 'must be an integer from 1 to 500')
  check(intIn(pullPageSize, 1, 1000), 'pullPageSize', 'must be an integer from 1 to 1000')
  check(options.retry === undefined || (typeof options.retry === 'object' && options.retry !== null), 'retry', 'must be an object')
  const initialDelayMs = options.retry?.initialDelayMs ?? 1000
  check(ms(initialDelayMs) && initialDelayMs > 0, 'retry.initialDelayMs', 'must be a finite number > 0')
  const maxDelayMs = options.retry?.maxDelayMs ?? 60_000
  check(ms(maxDelayMs), 'retry.maxDelayMs', 'must be a finite number >= 0')
  const { clientId } = options
  check(
    clientId === undefined || (typeof clientId === 'string' && clientId.length >= 1 && clientId.length <= 128),
    'clientId',
    'must be a string of 1 to 128 characters',
  )
  check(options.onConflict === undefined || typeof options.onConflict === 'function', 'onConflict', 'must be a function')
  check(
    options.conflict === undefined || typeof options.conflict === 'function' || STRATEGIES.includes(options.conflict),
    'conflict',
    "must be 'server-wins', 'client-wins', 'last-write-wins', 'manual' or a function",
  )
  check(options.now === undefined || typeof options.now === 'function', 'now', 'must be a function returning milliseconds')
  check(options.connectOnStart === undefined || typeof options.connectOnStart === 'boolean', 'connectOnStart', 'must be a boolean')
  const realtimeChannel = checkRealtime(options.realtime, check, ms)
  return {
    ...options,
    batchSize,
    pullPageSize,
    retry: { initialDelayMs, maxDelayMs: Math.max(initialDelayMs, maxDelayMs) },
    now: options.now ?? Date.now,
    realtimeChannel,
  }
}

const realtimeKeys: Record<keyof RealtimeOptions, true> = { url: true, WebSocket: true, heartbeatMs: true, connectTimeoutMs: true, retry: true }

function checkRealtime(
  value: RemoteOptions['realtime'],
  check: (ok: boolean, name: string, rule: string) => void,
  ms: (v: unknown) => boolean,
): CheckedRealtimeOptions | null {
  if (value === undefined || value === false) return null
  const settings: RealtimeOptions = typeof value === 'string' ? { url: value } : value
  check(typeof settings === 'object' && settings !== null, 'realtime', 'must be a ws(s) URL, an object with a url, or false')
  for (const key of Object.keys(settings)) check(key in realtimeKeys, `realtime.${key}`, 'is not an option of remote.realtime')
  check(typeof settings.url === 'string' && /^wss?:\/\/[^\s]+$/.test(settings.url), 'realtime.url', 'must be an absolute ws:// or wss:// URL')
  // A token in the URL ends up in access logs; the protocol sends it in the first message.
  check(!/[?&](token|access_token|auth)=/i.test(settings.url), 'realtime.url', 'must not carry a token (it is sent in the first message)')
  check(settings.WebSocket === undefined || typeof settings.WebSocket === 'function', 'realtime.WebSocket', 'must be a WebSocket constructor')
  const heartbeatMs = settings.heartbeatMs ?? 15_000
  check(ms(heartbeatMs) && heartbeatMs >= 10, 'realtime.heartbeatMs', 'must be a finite number >= 10')
  const connectTimeoutMs = settings.connectTimeoutMs ?? 10_000
  check(ms(connectTimeoutMs) && connectTimeoutMs > 0, 'realtime.connectTimeoutMs', 'must be a finite number > 0')
  check(settings.retry === undefined || (typeof settings.retry === 'object' && settings.retry !== null), 'realtime.retry', 'must be an object')
  const initialDelayMs = settings.retry?.initialDelayMs ?? 500
  check(ms(initialDelayMs) && initialDelayMs > 0, 'realtime.retry.initialDelayMs', 'must be a finite number > 0')
  const maxDelayMs = settings.retry?.maxDelayMs ?? 30_000
  check(ms(maxDelayMs), 'realtime.retry.maxDelayMs', 'must be a finite number >= 0')
  return {
    url: settings.url,
    // Looked up when the channel opens a socket, not here: msw (and polyfills) may patch the global later.
    WebSocket: settings.WebSocket ?? null,
    heartbeatMs,
    connectTimeoutMs,
    retry: { initialDelayMs, maxDelayMs: Math.max(initialDelayMs, maxDelayMs) },
  }
}

/** Every key of {@link RemoteOptions}, so a plain-JS typo (`baseURL`, `timeout`) is refused by name. */
const remoteKeys: Record<keyof RemoteOptions, true> = {
  baseUrl: true,
  paths: true,
  headers: true,
  getToken: true,
  timeoutMs: true,
  fetch: true,
  compressRequestsOver: true,
  batchSize: true,
  pullPageSize: true,
  conflict: true,
  onConflict: true,
  retry: true,
  clientId: true,
  connectOnStart: true,
  now: true,
  realtime: true,
}
const REMOTE_OPTION_KEYS: readonly string[] = Object.keys(remoteKeys)

const pathKeys: Record<keyof ApiPaths, true> = { health: true, item: true, push: true, pull: true, changes: true }
const REMOTE_PATH_KEYS: readonly string[] = Object.keys(pathKeys)

const retryKeys: Record<keyof NonNullable<RemoteOptions['retry']>, true> = { initialDelayMs: true, maxDelayMs: true }
const RETRY_KEYS: readonly string[] = Object.keys(retryKeys)
