import { SyncError, type SyncErrorContext } from './SyncError'

/** The request never got an answer: the server is down, unreachable, or the connection broke. Retryable. */
export class NetworkError extends SyncError {
  override name = 'NetworkError' as const
  readonly method: string
  readonly url: string

  constructor(message: string, context: SyncErrorContext & { method: string; url: string }) {
    super(message, context)
    this.method = context.method
    this.url = context.url
  }
}
