import { StorageError } from './StorageError'

/** An IndexedDB transaction aborted. Nothing of it was committed; its operations stay queued and are retried with backoff. */
export class TransactionAbortedError extends StorageError {
  override name = 'TransactionAbortedError' as const
}
