import { ws, type WebSocketHandler } from 'msw'
import { CLOSE_REASONS, CloseCode, parseClientMessage, PULL_FEATURE, REALTIME_PROTOCOL, type ServerMessage } from '../remote/realtime/messages'
import type { ModelAnswer } from './contractModel'

/** One connection as the mock real-time server sees it. */
interface MockSocket {
  send(data: string): void
  close(code?: number, reason?: string): void
}

/** What {@link createMockRealtime} needs from the mock sync server it belongs to. */
export interface MockRealtimeHost {
  /** The token a client must present (`undefined`: none needed). */
  token(): string | undefined
  /** The feed head, the cursor `ready` and pokes carry. */
  head(): string
  now(): number
  /** Answers a pull's parameters as `POST /sync/changes` answers its body. */
  changes(params: Readonly<Record<string, unknown>>): ModelAnswer
}

/** How the mock answers pulls over the socket: `unanswered` never, `malformed` with a broken page, `unavailable` with a 503. */
export type MockPullFault = 'unanswered' | 'malformed' | 'unavailable'

/** The real-time half of the mock sync server. */
export interface MockRealtime {
  readonly handler: WebSocketHandler
  /** Sockets that said `hello` and were accepted. */
  readonly openClients: number
  /** Pokes every accepted socket (the mock server calls it after each write that advanced the feed). */
  poke(): void
  /** Closes every socket with `code` (1001 by default: the server went away). */
  dropAll(code?: number): void
  /** Closes every socket whose token is no longer the accepted one with 4002 `token_expired`. */
  expireStale(): void
  /** Pokes are not sent while paused (a lost notification); `resume()` sends nothing either. */
  pause(): void
  resume(): void
  /** Closes every new connection with `code` until `refuse(null)` (a socket server that is down). */
  refuse(code: number | null): void
  /** Stops answering pings and pulls (a dead server the client must detect by its heartbeat). */
  silence(silent: boolean): void
  /** Whether `ready` offers pulls over the socket (`features: ["pull"]`, the default), as a server without them would not. */
  offerPulls(offered: boolean): void
  /** Answers every pull over the socket this way until `failPulls(null)`. */
  failPulls(fault: MockPullFault | null): void
  /** Pulls answered over the socket (failures included). */
  readonly pullsAnswered: number
  reset(): void
}

/**
 * The real-time channel of docs/protocol.md over msw's `ws` API: `hello` with the token, `ready`
 * with the feed head, `poke` after each write, `ping`/`pong`, pulls over the socket, and the
 * protocol's close codes.
 */
export function createMockRealtime(url: string, host: MockRealtimeHost, heartbeatMs: number): MockRealtime {
  const link = ws.link(url)
  const accepted = new Map<MockSocket, string | null>()
  let paused = false
  let silent = false
  let refusing: number | null = null
  let offered = true
  let pullFault: MockPullFault | null = null
  let pullsAnswered = 0
  const frame = (message: ServerMessage): string => JSON.stringify(message)
  const close = (socket: MockSocket, code: number): void => {
    accepted.delete(socket)
    socket.close(code, CLOSE_REASONS[code] ?? '')
  }

  const handler = link.addEventListener('connection', ({ client }) => {
    let greeted = false
    if (refusing !== null) {
      client.close(refusing, 'refused')
      return
    }
    client.addEventListener('message', (event) => {
      const message = parseClientMessage(event.data)
      if (!message || (message.type === 'hello') === greeted) {
        close(client, CloseCode.badMessage)
        return
      }
      if (message.type === 'hello') {
        greeted = true
        if (message.protocol !== REALTIME_PROTOCOL) return close(client, CloseCode.unsupportedProtocol)
        const wanted = host.token()
        if (wanted !== undefined && message.token !== wanted) return close(client, CloseCode.unauthorized)
        accepted.set(client, message.token)
        const features = offered ? [PULL_FEATURE] : []
        client.send(frame({ type: 'ready', protocol: REALTIME_PROTOCOL, cursor: host.head(), heartbeatMs, serverTime: host.now(), features }))
      } else if (message.type === 'ping' && !silent) {
        const wanted = host.token()
        if (wanted !== undefined && accepted.get(client) !== wanted) return close(client, CloseCode.tokenExpired)
        client.send(frame({ type: 'pong', t: message.t }))
      } else if (message.type === 'pull') {
        // Like a ping, every pull checks the token the socket said hello with again.
        const wanted = host.token()
        if (wanted !== undefined && accepted.get(client) !== wanted) return close(client, CloseCode.tokenExpired)
        if (pullFault === 'unanswered' || silent) return
        pullsAnswered++
        const answer: ModelAnswer =
          pullFault === 'unavailable'
            ? { status: 503, body: { error: 'unavailable', message: 'the database is unavailable' } }
            : pullFault === 'malformed'
              ? { status: 200, body: { changes: 'not a list', cursor: host.head(), hasMore: false } }
              : host.changes(message.params)
        const body = answer.body as Record<string, unknown>
        client.send(
          answer.status === 200
            ? JSON.stringify({ ...body, type: 'changes', id: message.id })
            : frame({
                type: 'pullFailed',
                id: message.id,
                status: answer.status,
                error: String(body.error),
                message: String(body.message),
                ...(typeof body.epoch === 'string' ? { epoch: body.epoch } : {}),
              }),
        )
      }
    })
    client.addEventListener('close', () => {
      accepted.delete(client)
    })
  })

  return {
    handler,
    get openClients() {
      return accepted.size
    },
    poke() {
      if (paused) return
      const message = frame({ type: 'poke', cursor: host.head(), at: host.now() })
      for (const socket of accepted.keys()) socket.send(message)
    },
    dropAll(code = CloseCode.goingAway) {
      for (const socket of [...accepted.keys()]) close(socket, code)
    },
    expireStale() {
      const wanted = host.token()
      for (const [socket, token] of [...accepted]) if (wanted !== undefined && token !== wanted) close(socket, CloseCode.tokenExpired)
    },
    pause() {
      paused = true
    },
    resume() {
      paused = false
    },
    refuse(code) {
      refusing = code
    },
    silence(next) {
      silent = next
    },
    offerPulls(next) {
      offered = next
    },
    failPulls(fault) {
      pullFault = fault
    },
    get pullsAnswered() {
      return pullsAnswered
    },
    reset() {
      paused = silent = false
      offered = true
      pullFault = null
      pullsAnswered = 0
      refusing = null
      for (const socket of [...accepted.keys()]) close(socket, CloseCode.goingAway)
    },
  }
}
