import { InvalidOptionError } from '../errors'
import type { ApiClientOptions, ApiPaths } from './http/client'
import type { ConflictStrategy, SyncConflict } from '../core/conflicts'

/** The `remote` option of `createPersistenceMiddleware`: where and how to sync. */
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
}

/** {@link RemoteOptions} with every default filled in, checked once. */
export interface CheckedRemoteOptions extends RemoteOptions {
  readonly batchSize: number
  readonly pullPageSize: number
  readonly retry: { readonly initialDelayMs: number; readonly maxDelayMs: number }
  readonly clientId: string
  readonly now: () => number
}

const STRATEGIES = ['server-wins', 'client-wins', 'last-write-wins', 'manual']

/**
 * Checks every option the engine reads (the HTTP client checks `baseUrl`, `paths`, `timeoutMs`
 * itself) and fills in the defaults. A bad value throws an `InvalidOptionError` naming it.
 */
export function checkRemoteOptions(options: RemoteOptions, randomId: () => string): CheckedRemoteOptions {
  const check = (ok: boolean, name: string, rule: string): void => {
    if (!ok) throw new InvalidOptionError(`remote.${name}`, rule)
  }
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
  const clientId = options.clientId ?? randomId()
  check(typeof clientId === 'string' && clientId.length >= 1 && clientId.length <= 128, 'clientId', 'must be a string of 1 to 128 characters')
  check(options.onConflict === undefined || typeof options.onConflict === 'function', 'onConflict', 'must be a function')
  check(
    options.conflict === undefined || typeof options.conflict === 'function' || STRATEGIES.includes(options.conflict),
    'conflict',
    "must be 'server-wins', 'client-wins', 'last-write-wins', 'manual' or a function",
  )
  check(options.now === undefined || typeof options.now === 'function', 'now', 'must be a function returning milliseconds')
  check(options.connectOnStart === undefined || typeof options.connectOnStart === 'boolean', 'connectOnStart', 'must be a boolean')
  return {
    ...options,
    batchSize,
    pullPageSize,
    retry: { initialDelayMs, maxDelayMs: Math.max(initialDelayMs, maxDelayMs) },
    clientId,
    now: options.now ?? Date.now,
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
}
export const REMOTE_OPTION_KEYS: readonly string[] = Object.keys(remoteKeys)

const pathKeys: Record<keyof ApiPaths, true> = { health: true, item: true, push: true, pull: true, changes: true }
export const REMOTE_PATH_KEYS: readonly string[] = Object.keys(pathKeys)
