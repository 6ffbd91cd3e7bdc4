import { SyncError, type SyncErrorContext } from './SyncError'

/**
 * No persistent storage is available: `indexedDB` does not exist (server-side rendering, old
 * runtimes) or refuses to open (some private modes). The instance keeps working in memory, and
 * its status says `persistent: false`.
 */
export class StorageUnavailableError extends SyncError {
  override name = 'StorageUnavailableError' as const

  constructor(message: string, context: SyncErrorContext = {}) {
    super(message, context)
  }
}
