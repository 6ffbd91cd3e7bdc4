import { SyncError, type SyncErrorContext } from './SyncError'

/**
 * The server answered with an error status. `retryable` is true for 408, 429 and 5xx (the
 * queue retries those with backoff); other 4xx are permanent.
 */
export class HttpError extends SyncError {
  override name: string = 'HttpError'
  readonly status: number
  /** The `error` code of the server's JSON error body, when it had one. */
  readonly code: string | undefined
  /** The `message` of the server's JSON error body, when it had one (for the user: it names no URL). */
  readonly serverMessage: string | undefined
  readonly method: string
  readonly url: string
  readonly retryable: boolean

  constructor(
    message: string,
    context: SyncErrorContext & { status: number; code?: string | undefined; serverMessage?: string | undefined; method: string; url: string },
  ) {
    super(message, context)
    this.status = context.status
    this.code = context.code
    this.serverMessage = context.serverMessage
    this.method = context.method
    this.url = context.url
    this.retryable = context.status === 408 || context.status === 429 || context.status >= 500
  }
}
