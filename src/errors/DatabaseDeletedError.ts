import { StorageError, type StorageErrorContext } from './StorageError'

/**
 * The database was deleted while this instance had it open: site data cleared in the browser,
 * an eviction, or `clearPersistence()` in another tab. What was committed before is gone from
 * disk but still in the Redux state; later changes are written to a new, empty database.
 * Deliberately nothing is written back on its own: if the deletion was a logout in another
 * tab, resurrecting the data would undo it. React in `onError` (reset or reload the app, or
 * dispatch the data again to keep it).
 */
export class DatabaseDeletedError extends StorageError {
  override name = 'DatabaseDeletedError' as const
  readonly dbName: string

  constructor(message: string, context: StorageErrorContext & { dbName: string }) {
    super(message, context)
    this.dbName = context.dbName
  }
}
