import { StorageError } from './StorageError'

/** The browser refused a write because the origin's storage quota is exhausted. The operations stay queued and are retried with backoff. */
export class StorageQuotaError extends StorageError {
  override name = 'StorageQuotaError' as const
}
