import { StorageError, type StorageErrorContext } from './StorageError'

/**
 * The database was deleted while this instance had it open: site data cleared in the browser,
 * an eviction, or `clearPersistence()` in another tab. What was committed before is gone from
 * disk but still in the Redux state. Deliberately nothing is written back on its own: if the
 * deletion was a logout, resurrecting the data would undo it. React in `onError` (reset or
 * reload the app, or dispatch the data again to keep it).
 */
export class DatabaseDeletedError extends StorageError {
  override name = 'DatabaseDeletedError' as const
  readonly dbName: string
  /**
   * `'logout'`: another tab's `clear()` announced it; this instance dropped what was pending and
   * disposed itself, so nothing of the session is written again. `'deleted'`: the deletion came
   * unannounced (site data cleared, an eviction); later changes go to a new database.
   */
  readonly reason: 'logout' | 'deleted'

  constructor(message: string, context: StorageErrorContext & { dbName: string; reason: 'logout' | 'deleted' }) {
    super(message, context)
    this.dbName = context.dbName
    this.reason = context.reason
  }
}
