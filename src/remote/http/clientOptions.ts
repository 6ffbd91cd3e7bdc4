import { InvalidOptionError } from '../../errors'

/** Paths of the endpoints, relative to `baseUrl`. `:collection` and `:id` are filled in, percent-encoded. */
export interface ApiPaths {
  /** @default '/health' */
  health?: string
  /** @default '/items/:collection/:id' */
  item?: string
  /** @default '/sync/push' */
  push?: string
  /** @default '/sync/pull' */
  pull?: string
  /** @default '/sync/changes' */
  changes?: string
}

/** Headers, or a function returning them (called before every request). */
export type HeadersOption = Record<string, string> | (() => Record<string, string> | Promise<Record<string, string>>)

/** Options of the HTTP client, also accepted by `createRemote`. */
export interface ApiClientOptions {
  /**
   * Where the API lives, including its prefix.
   * @example 'https://example.com/api'
   */
  baseUrl: string
  /** Endpoint paths. @default see {@link ApiPaths} */
  paths?: ApiPaths
  /** Extra headers for every request (never logged). */
  headers?: HeadersOption
  /**
   * Returns the bearer token. Called with `refresh: false` before the first request, and with
   * `refresh: true` once after a 401 (single-flight: concurrent 401s share one refresh), after
   * which the request is retried once. Return `null` for no token.
   * @example
   * ```ts
   * getToken: async ({ refresh }) => (refresh ? await renewSession() : session.token)
   * ```
   */
  getToken?: (context: { refresh: boolean }) => string | null | Promise<string | null>
  /**
   * Per-request timeout.
   * @default 10000
   */
  timeoutMs?: number
  /**
   * Push bodies of at least this many bytes are sent gzip-compressed (`Content-Encoding: gzip`),
   * where the runtime has `CompressionStream` and the server speaks protocol 3 (older servers
   * get plain bodies). `false`: never. Answers are compressed by the server whenever the
   * runtime accepts gzip, which browsers and Node's fetch always do. When compressed pushes turn
   * out to be refused on the way (a CORS preflight without `Content-Encoding`, a proxy) while
   * the same push plain goes through, the client sends plain bodies from then on (see `push`).
   * @default 1024
   * @example
   * ```ts
   * createRemote({ baseUrl, compressRequestsOver: 16 * 1024 })
   * ```
   */
  compressRequestsOver?: number | false
  /** The fetch implementation. @default globalThis.fetch */
  fetch?: typeof fetch
  /** Aborts every request of this client (the sync engine's `dispose()` uses it). */
  signal?: AbortSignal
}

/** Checks the client's options (`createRemote` checks them up front, `createApiClient` again); throws an `InvalidOptionError` naming the bad one. */
export function checkClientOptions(options: ApiClientOptions): void {
  if (typeof options.baseUrl !== 'string' || !/^https?:\/\//.test(options.baseUrl)) {
    throw new InvalidOptionError('remote.baseUrl', 'must be an absolute http(s) URL')
  }
  if (!((options.timeoutMs ?? 10_000) > 0)) throw new InvalidOptionError('remote.timeoutMs', 'must be a number > 0')
  const compressOver = options.compressRequestsOver ?? 1024
  if (compressOver !== false && !(typeof compressOver === 'number' && compressOver >= 0)) {
    throw new InvalidOptionError('remote.compressRequestsOver', 'must be a number of bytes >= 0, or false')
  }
}
