import { SyncError, type SyncErrorContext } from './SyncError'

/**
 * The real-time channel (the WebSocket that tells this client the server's feed advanced) closed
 * or misbehaved: `code` is the WebSocket close code (docs/protocol.md, "Real-time channel"),
 * `reason` its machine-readable reason (`unauthorized`, `token_expired`, `heartbeat_timeout`,
 * ...). Nothing is lost: while the channel is down, interval polling pulls instead, and the
 * channel reconnects with backoff.
 */
export class RealtimeError extends SyncError {
  override name = 'RealtimeError' as const
  /** The close code (1006 when the connection broke without one). */
  readonly code: number
  /** The close reason the server (or this client) gave, or `''`. */
  readonly reason: string
  /** The channel's URL (never with a token: tokens travel in the first message). */
  readonly url: string

  constructor(message: string, context: SyncErrorContext & { code: number; reason: string; url: string }) {
    super(message, context)
    this.code = context.code
    this.reason = context.reason
    this.url = context.url
  }
}
