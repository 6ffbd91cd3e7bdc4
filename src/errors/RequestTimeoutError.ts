import { SyncError, type SyncErrorContext } from './SyncError'

/** The server did not answer within `timeoutMs`. Retryable. */
export class RequestTimeoutError extends SyncError {
  override name = 'RequestTimeoutError' as const
  readonly method: string
  readonly url: string
  readonly timeoutMs: number

  constructor(message: string, context: SyncErrorContext & { method: string; url: string; timeoutMs: number }) {
    super(message, context)
    this.method = context.method
    this.url = context.url
    this.timeoutMs = context.timeoutMs
  }
}
