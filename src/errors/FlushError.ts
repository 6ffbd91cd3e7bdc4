import { SyncError } from './SyncError'

/**
 * `flush()` could not write everything that was pending. `errors` holds each failure; the
 * failed operations stay queued (except non-serializable ones, which can never be written).
 */
export class FlushError extends SyncError {
  override name = 'FlushError' as const
  readonly errors: readonly SyncError[]

  constructor(errors: readonly SyncError[]) {
    const first = errors[0]
    super(`flush failed: ${errors.length} error(s)${first ? `; first: ${first.name}: ${first.message}` : ''}`, { cause: first })
    this.errors = errors
  }
}
