import { delay, http, HttpResponse, type HttpHandler, type WebSocketHandler } from 'msw'
import { createContractModel, parseStrictJson, type ContractModel, type ModelAnswer } from './contractModel'
import { createMockRealtime, type MockRealtime } from './mockRealtime'
import { gunzip, gzip } from '../utils/gzip'

/** Options of {@link createMockSyncServer}. */
export interface MockSyncServerOptions {
  /**
   * The API base URL the handlers answer, as given to `remote.baseUrl`.
   * @example 'http://localhost/api'
   */
  baseUrl: string
  /**
   * Latency added to every answer, in ms.
   * @default 0
   */
  latencyMs?: number
  /** When set, every endpoint except health requires `Authorization: Bearer <token>`. */
  token?: string
  /**
   * Larger request bodies get 413.
   * @default 2 MiB
   */
  maxBodyBytes?: number
  /**
   * Serve the real-time channel (docs/protocol.md, "Real-time channel") on this WebSocket URL,
   * through msw's `ws` API: `ready` after an accepted `hello`, a `poke` after every write that
   * advanced the feed, `pong` to each `ping`, and the protocol's close codes.
   * @default undefined (no real-time channel)
   * @example { baseUrl: 'http://localhost/api', realtime: { url: 'ws://localhost/realtime', heartbeatMs: 1000 } }
   */
  realtime?: { url: string; heartbeatMs?: number }
}

/** One injected failure, used by the next matching request (health checks included only with `includeHealth`). */
export type InjectedFault =
  | { kind: 'status'; status: number; includeHealth?: boolean }
  | { kind: 'network'; includeHealth?: boolean }
  | { kind: 'hang'; includeHealth?: boolean }
  | { kind: 'html'; includeHealth?: boolean }
  | { kind: 'truncated'; includeHealth?: boolean }
  | { kind: 'wrong-shape'; includeHealth?: boolean }
  /** Applies the request, then fails as a network error: the answer is lost on the way back. */
  | { kind: 'lose-answer'; includeHealth?: boolean }

/** A mock server: msw handlers over an in-memory implementation of docs/protocol.md. */
export interface MockSyncServer {
  /** Pass to `setupServer(...server.handlers)` or `worker.use(...)` (with `realtime`, the last one is the WebSocket handler). */
  readonly handlers: ReadonlyArray<HttpHandler | WebSocketHandler>
  /**
   * The real-time channel's controls when `realtime` is set, else `null`: `poke()`, `dropAll(code)`,
   * `pause()`/`resume()` (lost pokes), `silence(true)` (a dead server), `openClients`.
   */
  readonly realtime: MockRealtime | null
  /** The in-memory state: `records()`, `appliedOps`, `epoch`. */
  readonly model: ContractModel
  /**
   * Gives the server a new epoch and keeps its data, as an operator does after restoring a
   * backup (`python3 server/app.py --rotate-epoch`). Health, push, pull and changes answers carry
   * the new `epoch` from then on. Returns it. (`reset()` also makes a new epoch, with no data.)
   * @example
   * ```ts
   * const before = server.model.epoch
   * server.rotateEpoch() // clients that stored `before` must now pull in full
   * ```
   */
  rotateEpoch(): string
  /** Fails the next `count` requests with `fault`. */
  fail(fault: InjectedFault, count?: number): void
  /** Drops every injected fault not yet used. */
  clearFaults(): void
  /** Makes every request fail as a network error until `up()` (the server is down). */
  down(): void
  up(): void
  /** Changes the accepted token (simulates a rotation: the old token now gets 401). */
  setToken(token: string | undefined): void
  /** Requests seen, per endpoint name (`health`, `item`, `push`, `pull`, `changes`, `_test`). */
  readonly requests: Readonly<Record<string, number>>
  /** Wipes the data (with a new epoch), the faults, the token and the request counts. */
  reset(): void
}

const json = (answer: ModelAnswer): Response => HttpResponse.json(answer.body as never, { status: answer.status })

/** Answers of at least this many bytes are gzip-compressed for a request that accepts gzip (as the reference server does). */
const MIN_COMPRESSED_ANSWER = 1024

/** Whether an Accept-Encoding header allows gzip (q > 0). */
function acceptsGzip(header: string | null): boolean {
  if (!header) return false
  const allowed = new Map<string, number>()
  for (const part of header.split(',')) {
    const [name = '', ...params] = part.split(';').map((p) => p.trim())
    const q = params.find((p) => p.toLowerCase().startsWith('q='))
    allowed.set(name.toLowerCase(), q ? Number(q.slice(2)) || 0 : 1)
  }
  const gz = allowed.get('gzip') ?? allowed.get('x-gzip')
  return gz !== undefined ? gz > 0 : (allowed.get('*') ?? 0) > 0
}

/** The answer as JSON, gzip-compressed when the request accepts it and it is large enough. */
async function answerFor(request: Request, answer: ModelAnswer): Promise<Response> {
  const text = JSON.stringify(answer.body)
  const bytes = new TextEncoder().encode(text)
  const headers: Record<string, string> = { 'content-type': 'application/json', vary: 'Accept-Encoding' }
  if (bytes.byteLength >= MIN_COMPRESSED_ANSWER && acceptsGzip(request.headers.get('accept-encoding'))) {
    const packed = await gzip(bytes)
    if (packed) return new HttpResponse(packed as BodyInit, { status: answer.status, headers: { ...headers, 'content-encoding': 'gzip' } })
  }
  return new HttpResponse(text, { status: answer.status, headers })
}

/**
 * In-memory sync server for tests, as msw handlers. Implements the same contract as the
 * reference Flask server, protocol 4 of docs/protocol.md (the contract tests run one suite against
 * both), with latency and injectable faults. Like the reference server with testing endpoints on,
 * it answers `GET /_test/history` (`{"ops": [record, ...]}`, without auth or faults).
 *
 * @example
 * ```ts
 * const server = createMockSyncServer({ baseUrl: 'http://localhost/api' })
 * const msw = setupServer(...server.handlers)
 * msw.listen({ onUnhandledRequest: 'error' })
 * server.fail({ kind: 'status', status: 503 }, 2)
 * ```
 */
export function createMockSyncServer(options: MockSyncServerOptions): MockSyncServer {
  const base = options.baseUrl.replace(/\/+$/, '')
  const basePath = new URL(base).pathname.replace(/\/+$/, '')
  const maxBody = options.maxBodyBytes ?? 2 * 1024 * 1024
  const model = createContractModel()
  let token = options.token
  let isDown = false
  const faults: InjectedFault[] = []
  const requests: Record<string, number> = {}
  const realtime = options.realtime
    ? createMockRealtime(
        options.realtime.url,
        { token: () => token, head: () => model.head, now: () => Date.now(), changes: (params) => model.changesByPost(params) },
        options.realtime.heartbeatMs ?? 15_000,
      )
    : null

  const endpointOf = (segments: string[]): string => {
    if (segments[0] === 'health') return 'health'
    if (segments[0] === 'items') return 'item'
    if (segments[0] === 'sync') return segments[1] ?? 'unknown'
    if (segments[0] === '_test') return '_test'
    return 'unknown'
  }

  async function route(method: string, segments: string[], url: URL, body: unknown): Promise<ModelAnswer> {
    const [head, a, ...rest] = segments
    if (head === 'health' && segments.length === 1 && method === 'GET') return model.health()
    if (head === 'items' && a !== undefined && rest.length > 0) {
      const id = rest.join('/')
      if (method === 'GET') return model.getItem(a, id)
      if (method === 'PUT' || method === 'DELETE') return model.writeItem(method, a, id, body)
      return { status: 405, body: { error: 'method_not_allowed', message: 'method not allowed' } }
    }
    const collections = url.searchParams.get('collections')
    const list = collections ? collections.split(',').filter(Boolean) : null
    if (head === 'sync' && a === 'push' && method === 'POST') return model.push(body)
    if (head === 'sync' && a === 'pull' && method === 'GET') return model.pull(list, url.searchParams.get('limit'))
    if (head === 'sync' && a === 'changes' && method === 'GET') {
      return model.changes(url.searchParams.get('since'), url.searchParams.get('limit'), list)
    }
    if (head === 'sync' && a === 'changes' && method === 'POST') return model.changesByPost(body)
    if (head === '_test' && a === 'history' && segments.length === 2 && method === 'GET') return model.history()
    return { status: 404, body: { error: 'not_found', message: 'no such endpoint' } }
  }

  const handler = http.all(`${base}/*`, async ({ request }) => {
    const url = new URL(request.url)
    // Percent-decoding per segment keeps an id containing "/" (sent as %2F) in one piece.
    const raw = url.pathname
      .slice(basePath.length)
      .split('/')
      .filter((s) => s !== '')
    let segments: string[]
    try {
      segments = raw.map((s) => decodeURIComponent(s))
    } catch {
      return json({ status: 400, body: { error: 'bad_request', message: 'the path is not valid percent-encoded UTF-8' } })
    }
    const endpoint = endpointOf(segments)
    // Exempt from faults and auth: exactly the health endpoint (faults only when asked) and the
    // testing endpoints.
    const exempt = endpoint === 'health' || endpoint === '_test'
    requests[endpoint] = (requests[endpoint] ?? 0) + 1
    if (options.latencyMs) await delay(options.latencyMs)
    if (isDown) return HttpResponse.error()
    const faultIndex = endpoint === '_test' ? -1 : faults.findIndex((f) => endpoint !== 'health' || f.includeHealth)
    const fault = faultIndex >= 0 ? faults.splice(faultIndex, 1)[0] : undefined
    if (fault?.kind === 'network') return HttpResponse.error()
    if (fault?.kind === 'hang') {
      await delay('infinite')
    }
    if (fault?.kind === 'status') return json({ status: fault.status, body: { error: 'injected', message: `injected ${fault.status}` } })
    if (fault?.kind === 'html') return new HttpResponse('<html><body>Gateway</body></html>', { status: 200, headers: { 'content-type': 'text/html' } })
    if (fault?.kind === 'truncated') return new HttpResponse('{"results": [', { status: 200, headers: { 'content-type': 'application/json' } })
    if (fault?.kind === 'wrong-shape') return HttpResponse.json({ unexpected: true })
    if (token && !exempt && request.headers.get('authorization') !== `Bearer ${token}`) {
      return json({ status: 401, body: { error: 'unauthorized', message: 'missing or invalid bearer token' } })
    }
    let bytes: Uint8Array = request.method === 'GET' ? new Uint8Array(0) : new Uint8Array(await request.arrayBuffer())
    if (bytes.length > maxBody) {
      return json({ status: 413, body: { error: 'payload_too_large', message: `body larger than ${maxBody} bytes` } })
    }
    const encoding = (request.headers.get('content-encoding') ?? '').trim().toLowerCase()
    if (encoding === 'gzip' || encoding === 'x-gzip') {
      // Inflated to at most the body limit: a zip bomb is a 413, never a full inflation.
      const inflated = await gunzip(bytes, maxBody)
      if (inflated === 'too-large') {
        return json({ status: 413, body: { error: 'payload_too_large', message: `body larger than ${maxBody} bytes once decompressed` } })
      }
      if (inflated === 'corrupt' || inflated === 'unsupported') {
        return json({ status: 400, body: { error: 'bad_request', message: 'body is not valid gzip' } })
      }
      bytes = inflated
    } else if (encoding !== '' && encoding !== 'identity') {
      return HttpResponse.json(
        { error: 'unsupported_media_type', message: 'Content-Encoding must be gzip or identity' },
        { status: 415, headers: { 'accept-encoding': 'gzip' } },
      )
    }
    let body: unknown
    if (bytes.length > 0) {
      if (!(request.headers.get('content-type') ?? '').includes('application/json')) {
        return json({ status: 415, body: { error: 'unsupported_media_type', message: 'send application/json' } })
      }
      let text: string
      try {
        text = new TextDecoder('utf-8', { fatal: true }).decode(bytes)
      } catch {
        return json({ status: 400, body: { error: 'bad_request', message: 'body is not valid UTF-8' } })
      }
      const parsed = parseStrictJson(text)
      if (!parsed.ok) return json({ status: 400, body: { error: 'bad_request', message: parsed.problem } })
      body = parsed.value
    }
    const head = model.head
    const answer = await route(request.method, segments, url, body)
    // Every write that advanced the feed is announced (a reset is a new feed, not an advance).
    if (model.head !== head && endpoint !== '_test') realtime?.poke()
    if (fault?.kind === 'lose-answer') return HttpResponse.error()
    return answerFor(request, answer)
  })

  return {
    handlers: realtime ? [handler, realtime.handler] : [handler],
    realtime,
    model,
    rotateEpoch: () => model.rotateEpoch(),
    fail(fault, count = 1) {
      for (let i = 0; i < count; i++) faults.push(fault)
    },
    clearFaults() {
      faults.length = 0
    },
    down() {
      isDown = true
    },
    up() {
      isDown = false
    },
    setToken(next) {
      token = next
      // Sockets authenticated with the old token are told it expired, as the real server does.
      realtime?.expireStale()
    },
    get requests() {
      return { ...requests }
    },
    reset() {
      model.reset()
      faults.length = 0
      isDown = false
      token = options.token
      realtime?.reset()
      for (const key of Object.keys(requests)) delete requests[key]
    },
  }
}
