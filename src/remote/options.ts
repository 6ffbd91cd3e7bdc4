import type { ApiClientOptions, ApiPaths } from './client'
import type { ConflictStrategy, SyncConflict } from './conflicts'

/** The `remote` option of `createPersistenceMiddleware`: where and how to sync. */
export interface RemoteOptions extends ApiClientOptions {
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

/** Every key of {@link RemoteOptions}, so a plain-JS typo (`baseURL`, `timeout`) is refused by name. */
const remoteKeys: Record<keyof RemoteOptions, true> = {
  baseUrl: true,
  paths: true,
  headers: true,
  getToken: true,
  timeoutMs: true,
  fetch: true,
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
