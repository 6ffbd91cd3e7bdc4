import ky, { isTimeoutError, type KyInstance } from 'ky'
import { AuthError, HttpError, MalformedResponseError, NetworkError, RequestTimeoutError, isNetworkError, type SyncError } from '../../errors'
import type { ChangesResponse, HealthResponse, ItemWriteResult, PullResponse, PushResponse, RemoteOperation } from './protocol'
import { canGzip } from '../../utils/gzip'
import { gzipped, refusalWarning, refusesGzip, type Payload } from './body'
import { checkClientOptions, type ApiClientOptions } from './clientOptions'

export { checkClientOptions, type ApiClientOptions, type ApiPaths, type HeadersOption } from './clientOptions'
import { ShapeError, conflictCurrent, errorCode, errorMessage, parseChangesPage, parseHealth, parsePull, parsePush, parseRecord } from './parse'

/** The protocol's endpoints, typed. Every method rejects with a `SyncError` subclass. */
export interface ApiClient {
  health(): Promise<HealthResponse>
  putItem(op: RemoteOperation): Promise<ItemWriteResult>
  deleteItem(op: RemoteOperation): Promise<ItemWriteResult>
  /**
   * `compress`: the server speaks protocol 3, so a large body may go out gzip-compressed.
   *
   * A gzip body that fails without an answer, or is answered 415 or 400, is sent again at once
   * plain (the same ops under the same opIds: the server applies each at most once). When the
   * plain one goes through (and, after a failure without an answer, a gzip replay of the ops it
   * applied fails again: a connection that dropped once is not a refusal), compressed requests
   * are refused on the way: this client sends plain bodies from then on and calls
   * `onCompressionRefused` once, with the error the gzip body got, re-worded to name the cause
   * and the fix. When the plain one fails too, that failure is thrown (an outage, or a request
   * the server refuses either way) and compression stays on. A 413 is never taken for this.
   */
  push(
    clientId: string,
    ops: readonly RemoteOperation[],
    options?: { compress?: boolean; onCompressionRefused?: (warning: SyncError) => void },
  ): Promise<PushResponse>
  /** `limit` (protocol 3): only the `limit` most recently written items, newest first. */
  pull(collections?: readonly string[], options?: { limit?: number }): Promise<PullResponse>
  /**
   * `post` (the server speaks protocol 4): ask with `POST` and the parameters in a JSON body
   * when a browser would preflight the `GET` (a page calling an API on another origin). The
   * `GET`'s URL changes with every cursor and a preflight is cached per URL, so each incremental
   * pull would cost two round trips; the `POST`'s URL never changes, so it is preflighted once.
   */
  changes(since: string, options?: { limit?: number; collections?: readonly string[]; post?: boolean }): Promise<ChangesResponse>
  /**
   * The bearer token requests carry (`null` without `getToken`). With `refresh: true` it asks
   * `getToken({ refresh: true })` once, shared with every request that got a 401 meanwhile: the
   * real-time channel uses it so a socket whose token expired refreshes like a request does.
   */
  bearer(options: { refresh: boolean }): Promise<string | null>
}

interface Answer {
  readonly status: number
  readonly body: unknown
  readonly url: string
}

const INVALID_JSON = Symbol('invalid json')

/**
 * The HTTP client, through one ky instance. ky never retries (`retry: 0`): the outbox owns
 * retries, so a request is never retried in two places. The only retries here are the single
 * one after a token refresh on 401, and a refused gzip push sent again plain (see `push`).
 * Payloads and headers are never logged.
 */
export function createApiClient(options: ApiClientOptions): ApiClient {
  checkClientOptions(options)
  const timeoutMs = options.timeoutMs ?? 10_000
  const compressOver = options.compressRequestsOver ?? 1024
  const base = options.baseUrl.replace(/\/+$/, '')
  // Where requests are cross-origin (a page or worker whose origin is not the API's), the
  // browser preflights each distinct URL: the incremental pull then goes by POST (protocol 4).
  const pageOrigin = (globalThis as { location?: { origin?: unknown } }).location?.origin
  const preflighted = typeof pageOrigin === 'string' && pageOrigin !== new URL(base).origin
  const paths = {
    health: '/health',
    item: '/items/:collection/:id',
    push: '/sync/push',
    pull: '/sync/pull',
    changes: '/sync/changes',
    ...options.paths,
  }
  const http: KyInstance = ky.create({
    timeout: timeoutMs,
    retry: 0,
    throwHttpErrors: false,
    ...(options.fetch ? { fetch: options.fetch } : {}),
  })

  let token: string | null | undefined
  let refreshing: Promise<string | null> | null = null

  async function currentToken(): Promise<string | null> {
    if (!options.getToken) return null
    if (refreshing) return refreshing
    token ??= await options.getToken({ refresh: false })
    return token
  }

  /** One refresh for however many requests got a 401 at the same time. */
  function refreshToken(): Promise<string | null> {
    refreshing ??= Promise.resolve(options.getToken!({ refresh: true }))
      .then((fresh) => (token = fresh))
      .finally(() => {
        refreshing = null
      })
    return refreshing
  }

  /** Set once compressed pushes turned out to be refused on the way: push bodies go plain from then on. */
  let gzipRefused = false

  /** The request body: JSON, gzip-compressed when asked and large enough (and the runtime can). */
  async function bodyOf(json: unknown, compress: boolean): Promise<Payload> {
    if (json === undefined) return {}
    if (!compress || compressOver === false || !canGzip()) return { json }
    return (await gzipped(json, compressOver)) ?? { json }
  }

  async function send(method: string, path: string, json: unknown, isRetry: boolean, compress = false): Promise<Answer> {
    return sendPayload(method, path, await bodyOf(json, compress), isRetry)
  }

  async function sendPayload(method: string, path: string, payload: Payload, isRetry: boolean): Promise<Answer> {
    const url = `${base}${path}`
    const headers: Record<string, string> = {
      accept: 'application/json',
      ...(typeof options.headers === 'function' ? await options.headers() : options.headers),
    }
    const bearer = await currentToken()
    if (bearer) headers.authorization = `Bearer ${bearer}`
    let response: Response
    let text: string
    try {
      const { headers: extra, ...rest } = payload
      response = await http(url, { method, headers: { ...headers, ...extra }, ...(options.signal ? { signal: options.signal } : {}), ...rest })
      text = await response.text()
    } catch (error) {
      if (isTimeoutError(error)) {
        throw new RequestTimeoutError(`${method} ${url} timed out after ${timeoutMs} ms`, { method, url, timeoutMs, cause: error })
      }
      throw new NetworkError(`${method} ${url} failed: no answer from the server`, { method, url, cause: error })
    }
    if (response.status === 401 && options.getToken && !isRetry) {
      await refreshToken()
      return sendPayload(method, path, payload, true)
    }
    let body: unknown
    try {
      body = text === '' ? undefined : JSON.parse(text)
    } catch {
      body = INVALID_JSON
    }
    if (response.status === 409) return { status: 409, body, url }
    if (!response.ok) {
      const code = errorCode(body)
      const message = `${method} ${url} answered ${response.status}${code ? ` (${code})` : ''}`
      const context = { status: response.status, code, serverMessage: errorMessage(body), method, url }
      throw response.status === 401 ? new AuthError(message, context) : new HttpError(message, context)
    }
    if (body === INVALID_JSON || body === undefined) {
      const type = response.headers.get('content-type') ?? 'no content type'
      throw new MalformedResponseError(`${method} ${url} answered ${response.status} with a body that is not JSON (${type})`, {
        status: response.status,
        url,
        problem: 'body is not JSON',
      })
    }
    return { status: response.status, body, url }
  }

  /** A push answer, parsed (a 409 is not one the endpoint gives). */
  function pushAnswer(answer: Answer, ops: readonly RemoteOperation[]): PushResponse {
    if (answer.status === 409) unexpected409(answer, 'POST push')
    const opIds = ops.map((op) => op.opId)
    return parse(answer, 'POST push', (body) => parsePush(body, opIds))
  }

  /**
   * Sends a gzip push; when the body is refused on the way, the same push plain (see `push`).
   * Resolves with the answer that went through; rejects with the plain push's failure.
   */
  async function pushGzip(
    clientId: string,
    ops: readonly RemoteOperation[],
    payload: Payload,
    onRefused: ((warning: SyncError) => void) | undefined,
  ): Promise<PushResponse> {
    let refused: SyncError
    try {
      return pushAnswer(await sendPayload('POST', paths.push, payload, false), ops)
    } catch (error) {
      if (!refusesGzip(error) || options.signal?.aborted) throw error
      refused = error
    }
    // The same ops under the same opIds: whichever copy reached the server, each applies once.
    const response = pushAnswer(await sendPayload('POST', paths.push, { json: { clientId, ops } }, false), ops)
    if (isNetworkError(refused)) {
      // Without an answer, a connection that dropped looks like a refusal. The plain push just
      // went through, so the path is up: one more compressed push tells. It carries only ops the
      // server now holds by opId, so it changes nothing there (each is answered `duplicate`); a
      // conflict is not held, and its replay might apply after this client decided it.
      const held = ops.filter((_, i) => {
        const status = response.results[i]?.status
        return status === 'applied' || status === 'duplicate'
      })
      const probe = held.length === ops.length ? payload : held.length > 0 ? await gzipped({ clientId, ops: held }, 0) : null
      // Nothing to replay safely: no verdict yet (a later compressed push that fails asks again).
      if (!probe) return response
      try {
        await sendPayload('POST', paths.push, probe, false)
        return response
      } catch (again) {
        if (!refusesGzip(again)) return response
      }
    }
    if (!gzipRefused) {
      gzipRefused = true
      onRefused?.(refusalWarning(refused, `${base}${paths.push}`))
    }
    return response
  }

  /** Runs a parser, turning a shape mismatch into a typed error that names what did not match. */
  function parse<T>(answer: Answer, method: string, parser: (body: unknown) => T): T {
    try {
      return parser(answer.body)
    } catch (error) {
      if (!(error instanceof ShapeError)) throw error
      const malformed: SyncError = new MalformedResponseError(`${method} answered with an unexpected shape: ${error.problem}`, {
        status: answer.status,
        url: answer.url,
        problem: error.problem,
      })
      throw malformed
    }
  }

  const itemPath = (collection: string, id: string): string =>
    paths.item.replace(':collection', encodeURIComponent(collection)).replace(':id', encodeURIComponent(id))

  async function writeItem(method: 'PUT' | 'DELETE', op: RemoteOperation): Promise<ItemWriteResult> {
    const { collection, id, type: _type, ...rest } = op
    void _type
    const answer = await send(method, itemPath(collection, id), rest, false)
    if (answer.status === 409) {
      if (answer.body === INVALID_JSON) {
        throw new MalformedResponseError(`${method} answered 409 without a JSON body`, { status: 409, url: answer.url, problem: 'body is not JSON' })
      }
      return { status: 'conflict', current: parse(answer, method, conflictCurrent) }
    }
    return parse(answer, method, (body) => {
      const b = body as { status?: unknown; record?: unknown; duplicate?: unknown }
      const record = parseRecord(b?.record, 'record')
      return { status: b.duplicate === true ? 'duplicate' : 'applied', record }
    })
  }

  const query = (params: Record<string, string | undefined>): string => {
    const search = new URLSearchParams()
    for (const [key, value] of Object.entries(params)) if (value !== undefined && value !== '') search.set(key, value)
    const text = search.toString()
    return text ? `?${text}` : ''
  }

  const unexpected409 = (answer: Answer, method: string): never => {
    throw new HttpError(`${method} answered 409`, { status: 409, code: errorCode(answer.body), method, url: answer.url })
  }

  return {
    async bearer({ refresh }) {
      if (!options.getToken) return null
      return refresh ? refreshToken() : currentToken()
    },
    async health() {
      const answer = await send('GET', paths.health, undefined, false)
      if (answer.status === 409) unexpected409(answer, 'GET health')
      return parse(answer, 'GET health', parseHealth)
    },
    putItem: (op) => writeItem('PUT', op),
    deleteItem: (op) => writeItem('DELETE', op),
    async push(clientId, ops, opts = {}) {
      const payload = await bodyOf({ clientId, ops }, opts.compress === true && !gzipRefused)
      if (payload.body !== undefined) return pushGzip(clientId, ops, payload, opts.onCompressionRefused)
      return pushAnswer(await sendPayload('POST', paths.push, payload, false), ops)
    },
    async pull(collections, opts = {}) {
      const params = { collections: collections?.join(','), limit: opts.limit === undefined ? undefined : String(opts.limit) }
      const answer = await send('GET', `${paths.pull}${query(params)}`, undefined, false)
      if (answer.status === 409) unexpected409(answer, 'GET pull')
      return parse(answer, 'GET pull', parsePull)
    },
    async changes(since, opts = {}) {
      const byPost = opts.post === true && preflighted
      const method = byPost ? 'POST' : 'GET'
      const answer = byPost
        ? await send(
            'POST',
            paths.changes,
            { since, ...(opts.limit === undefined ? {} : { limit: opts.limit }), ...(opts.collections ? { collections: [...opts.collections] } : {}) },
            false,
          )
        : await send(
            'GET',
            `${paths.changes}${query({
              since,
              limit: opts.limit === undefined ? undefined : String(opts.limit),
              collections: opts.collections?.join(','),
            })}`,
            undefined,
            false,
          )
      if (answer.status === 409) unexpected409(answer, `${method} changes`)
      return parse(answer, `${method} changes`, (body) => parseChangesPage(body, since))
    },
  }
}
