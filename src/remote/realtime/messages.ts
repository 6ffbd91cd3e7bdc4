/**
 * The real-time channel's messages and close codes (docs/protocol.md, "Real-time channel").
 * JSON text frames, each a small object with a `type`; no message ever carries item data, so a
 * lost one loses nothing: the client pulls the feed incrementally after every poke and after
 * every (re)connect.
 */

/** The channel protocol's version, sent in `hello` and answered in `ready`. */
export const REALTIME_PROTOCOL = 1

/** Close codes. 1000/1001/1011/1013 are the standard ones; 4000-4005 are this protocol's. */
export const CloseCode = {
  /** The client stopped (a tab lost the lead, a dispose). */
  normal: 1000,
  /** The server is shutting down or restarting: reconnect with backoff. */
  goingAway: 1001,
  /** The connection broke without a close frame (set by the WebSocket API, never sent). */
  abnormal: 1006,
  /** The server failed internally: reconnect with backoff. */
  internalError: 1011,
  /** The server is overloaded: reconnect with backoff. */
  tryAgainLater: 1013,
  /** A message was not JSON, not an object, of an unknown type, or `hello` came twice or not first. */
  badMessage: 4000,
  /** `hello` had no token, or one the server does not know: refresh the token once, then back off. */
  unauthorized: 4001,
  /** The token expired while the socket was open: refresh it through `getToken` and reconnect at once. */
  tokenExpired: 4002,
  /** No `hello` within the server's limit (10 s), or no `ready` within the client's `connectTimeoutMs`. */
  helloTimeout: 4003,
  /** Nothing arrived for two heartbeat intervals: the other side is gone. */
  heartbeatTimeout: 4004,
  /** The client asked for a protocol version the server does not speak. */
  unsupportedProtocol: 4005,
} as const

/** The reason string each of this protocol's close codes is sent with. */
export const CLOSE_REASONS: Readonly<Record<number, string>> = {
  4000: 'bad_message',
  4001: 'unauthorized',
  4002: 'token_expired',
  4003: 'hello_timeout',
  4004: 'heartbeat_timeout',
  4005: 'unsupported_protocol',
}

/** The `features` of `ready` this client uses: `pull`, the incremental pull over the socket. */
export const PULL_FEATURE = 'pull'

/** An incremental pull over the socket: the parameters of `POST /sync/changes`, and an id its answer carries. */
export interface PullMessage {
  readonly type: 'pull'
  readonly id: string
  readonly since: string
  readonly limit?: number
  readonly collections?: readonly string[]
}

/** Client to server. */
export type ClientMessage =
  | { readonly type: 'hello'; readonly protocol: number; readonly token: string | null }
  | { readonly type: 'ping'; readonly t: number }
  | { readonly type: 'pong'; readonly t: number }
  | PullMessage

/** Server to client. */
export type ServerMessage =
  /** `hello` was accepted: `cursor` is the tenant's feed head now, `heartbeatMs` how often to ping. */
  | {
      readonly type: 'ready'
      readonly protocol: number
      readonly cursor: string
      readonly heartbeatMs: number
      readonly serverTime: number
      /** What the server offers beyond pokes (`pull`); empty from servers that offer nothing more. */
      readonly features: readonly string[]
    }
  /** The tenant's feed advanced to `cursor` (a write committed at `at`, server ms). */
  | { readonly type: 'poke'; readonly cursor: string; readonly at: number }
  | { readonly type: 'ping'; readonly t: number }
  | { readonly type: 'pong'; readonly t: number }
  /** The answer to pull `id`: `body` is what `POST /sync/changes` answers (checked by whoever asked, who knows its `since`). */
  | { readonly type: 'changes'; readonly id: string; readonly body: Readonly<Record<string, unknown>> }
  /** Pull `id` failed with what the HTTP route would have answered: its status, error code and message. */
  | { readonly type: 'pullFailed'; readonly id: string; readonly status: number; readonly error: string; readonly message: string; readonly epoch?: string }

const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v)
const cursorLike = (v: unknown): v is string => typeof v === 'string' && v.length <= 128
/** A pull's id: 1 to 64 characters. */
export const pullIdLike = (v: unknown): v is string => typeof v === 'string' && v.length >= 1 && v.length <= 64
/** Every message but `changes` is small; a larger frame of another type is not one of this protocol. */
const MAX_SMALL_FRAME = 4096

/** Parses one server frame; `null` for anything that is not a message of this protocol. */
export function parseServerMessage(data: unknown): ServerMessage | null {
  if (typeof data !== 'string') return null
  let value: unknown
  try {
    value = JSON.parse(data)
  } catch {
    return null
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null
  const m = value as Record<string, unknown>
  if (m.type === 'changes') return pullIdLike(m.id) ? { type: 'changes', id: m.id, body: m } : null
  if (data.length > MAX_SMALL_FRAME) return null
  switch (m.type) {
    case 'ready':
      return finite(m.protocol) && cursorLike(m.cursor) && finite(m.heartbeatMs) && m.heartbeatMs > 0 && finite(m.serverTime)
        ? {
            type: 'ready',
            protocol: m.protocol,
            cursor: m.cursor,
            heartbeatMs: m.heartbeatMs,
            serverTime: m.serverTime,
            features: Array.isArray(m.features) ? m.features.filter((f): f is string => typeof f === 'string') : [],
          }
        : null
    case 'pullFailed':
      return pullIdLike(m.id) && Number.isInteger(m.status) && typeof m.error === 'string'
        ? {
            type: 'pullFailed',
            id: m.id,
            status: m.status as number,
            error: m.error,
            message: typeof m.message === 'string' ? m.message.slice(0, 500) : m.error,
            ...(typeof m.epoch === 'string' && m.epoch.length > 0 && m.epoch.length <= 128 ? { epoch: m.epoch } : {}),
          }
        : null
    case 'poke':
      return cursorLike(m.cursor) && finite(m.at) ? { type: 'poke', cursor: m.cursor, at: m.at } : null
    case 'ping':
    case 'pong':
      return { type: m.type, t: finite(m.t) ? m.t : 0 }
    default:
      return null
  }
}

/** A client frame as a server receives it: a pull's parameters are not checked yet. */
export type ReceivedClientMessage =
  Exclude<ClientMessage, PullMessage> | { readonly type: 'pull'; readonly id: string; readonly params: Readonly<Record<string, unknown>> }

/** Parses one client frame (the msw handlers and tests use it); `null` when it is not one. */
export function parseClientMessage(data: unknown): ReceivedClientMessage | null {
  if (typeof data !== 'string' || data.length > 16384) return null
  let value: unknown
  try {
    value = JSON.parse(data)
  } catch {
    return null
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null
  const m = value as Record<string, unknown>
  if (m.type === 'hello') {
    if (!finite(m.protocol) || !(m.token === null || typeof m.token === 'string')) return null
    return { type: 'hello', protocol: m.protocol, token: m.token }
  }
  if (m.type === 'ping' || m.type === 'pong') return { type: m.type, t: finite(m.t) ? m.t : 0 }
  // Its parameters are checked as the body of `POST /sync/changes` is, by whoever answers it.
  if (m.type === 'pull') return pullIdLike(m.id) ? { type: 'pull', id: m.id, params: m } : null
  return null
}
