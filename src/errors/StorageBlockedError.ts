import { StorageError, type StorageErrorContext } from './StorageError'

/**
 * Opening or upgrading the database did not finish within `openTimeoutMs`, usually because
 * another connection (another tab, another store) holds the database and does not close it.
 * Nothing is wiped: queued operations stay queued and the open is retried later.
 */
export class StorageBlockedError extends StorageError {
  override name = 'StorageBlockedError' as const
  readonly dbName: string
  readonly timeoutMs: number
  /** True when the browser reported `blocked`, false when the open just never finished. */
  readonly blocked: boolean

  constructor(message: string, context: StorageErrorContext & { dbName: string; timeoutMs: number; blocked: boolean }) {
    super(message, context)
    this.dbName = context.dbName
    this.timeoutMs = context.timeoutMs
    this.blocked = context.blocked
  }
}
