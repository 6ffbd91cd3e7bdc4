import { SyncError, type SyncErrorContext } from './SyncError'

/**
 * The server's answer is not the JSON the protocol describes: HTML with status 200, truncated
 * JSON, or the wrong shape. Nothing of it is applied. Retryable (a proxy error page is usually
 * temporary), with backoff.
 */
export class MalformedResponseError extends SyncError {
  override name = 'MalformedResponseError' as const
  readonly status: number
  readonly url: string
  /** What did not match, e.g. `results[3].status`. */
  readonly problem: string

  constructor(message: string, context: SyncErrorContext & { status: number; url: string; problem: string }) {
    super(message, context)
    this.status = context.status
    this.url = context.url
    this.problem = context.problem
  }
}
