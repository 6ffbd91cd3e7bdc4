import { SyncError, type SyncErrorContext } from './SyncError'

/**
 * A slice's stored data has another `version` and could not be migrated. The stored data is
 * left untouched, the slice is not hydrated, and its writes are held so nothing is overwritten.
 */
export class MigrationError extends SyncError {
  override name = 'MigrationError' as const
  readonly fromVersion: number
  readonly toVersion: number

  constructor(message: string, context: SyncErrorContext & { fromVersion: number; toVersion: number }) {
    super(message, context)
    this.fromVersion = context.fromVersion
    this.toVersion = context.toVersion
  }
}
