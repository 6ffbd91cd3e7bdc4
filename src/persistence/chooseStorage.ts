import { DatabaseDeletedError, type SyncError } from '../errors'
import { guardLocalStore } from '../storage/guard'
import { createIdbStore } from '../storage/idbStore'
import { createMemoryStore } from '../storage/memoryStore'
import type { TransactionalStore } from '../storage/types'
import type { ResolvedOptions } from './resolveOptions'

/** The storage an instance writes to, and what it tells about the environment. */
export interface StorageChoice {
  readonly storage: TransactionalStore
  /** The IndexedDB factory in use (`undefined`: none here, so memory). */
  readonly factory: IDBFactory | undefined
  /** Whether the instance uses the page's own `indexedDB`, which other tabs share. */
  readonly usesGlobalIndexedDB: boolean
}

/**
 * A custom `storage` (guarded), else IndexedDB (the injected factory or the global one), else
 * memory. `onError` hears a database deleted while open, as long as `isDisposed()` is false.
 */
export function chooseStorage(options: ResolvedOptions, onError: (error: SyncError) => void, isDisposed: () => boolean): StorageChoice {
  const { dbName } = options
  const factory: IDBFactory | undefined = options.indexedDB ?? (typeof indexedDB === 'undefined' ? undefined : indexedDB)
  const usesGlobalIndexedDB = !options.storage && factory !== undefined && typeof indexedDB !== 'undefined' && factory === indexedDB
  const storage: TransactionalStore =
    (options.storage && guardLocalStore(options.storage)) ??
    (factory
      ? createIdbStore({
          dbName,
          openTimeoutMs: options.openTimeoutMs,
          factory,
          durability: options.durability,
          onConnectionEvent: (event) => {
            if (event !== 'deleted' || isDisposed()) return
            onError(
              new DatabaseDeletedError(
                `database "${dbName}" was deleted while open; what was committed before is no longer on disk (it is still in the Redux state), later changes go to a new database`,
                { dbName, reason: 'deleted' },
              ),
            )
          },
        })
      : createMemoryStore())
  return { storage, factory, usesGlobalIndexedDB }
}
