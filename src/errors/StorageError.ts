import { SyncError, type SyncErrorContext } from './SyncError'

/** Context of a failed storage operation. */
export interface StorageErrorContext extends SyncErrorContext {
  /** The object stores the failed transaction touched. */
  readonly stores?: readonly string[]
}

/** A storage (IndexedDB) operation failed for a reason without a more specific class. */
export class StorageError extends SyncError {
  override name: string = 'StorageError'
  readonly stores: readonly string[]

  constructor(message: string, context: StorageErrorContext = {}) {
    super(message, context)
    this.stores = context.stores ?? []
  }
}
