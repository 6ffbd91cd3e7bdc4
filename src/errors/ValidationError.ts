import { SyncError, type SyncErrorContext } from './SyncError'

/**
 * An item failed its slice's `validate` schema: one read back from IndexedDB during hydration,
 * or one the server sent (a pull, a conflict's server version). It is not merged into the
 * state and not written; what the state had stays.
 */
export class ValidationError extends SyncError {
  override name = 'ValidationError' as const
  /** Where the item came from. */
  readonly source: 'hydration' | 'server'
  /** The schema's messages (never the item itself). */
  readonly issues: readonly string[]

  constructor(message: string, context: SyncErrorContext & { source: 'hydration' | 'server'; issues: readonly string[] }) {
    super(message, context)
    this.source = context.source
    this.issues = context.issues
  }
}
