import { mapStorageError } from './mapError'
import type { LocalStore, StorageOp } from './types'

/**
 * Holds a user-supplied `LocalStore` to the boundary's rule that every failure is a `SyncError`:
 * whatever it throws or rejects with (a raw `DOMException('QuotaExceededError')`, a `TypeError`)
 * is mapped the way the idb store maps IndexedDB's errors. Synchronous throws become rejections,
 * so a faulty backend can never throw into the queue or `dispatch`.
 */
export function guardLocalStore(inner: LocalStore): LocalStore {
  const guard = async <T>(stores: readonly string[], run: () => Promise<T>): Promise<T> => {
    try {
      return await run()
    } catch (error) {
      throw mapStorageError(error, { stores })
    }
  }
  const storesOf = (ops: readonly StorageOp[]): string[] => [...new Set(ops.map((op) => op.store))]
  const guarded: LocalStore = {
    kind: inner.kind,
    persistent: inner.persistent,
    ensureStores: (names) => guard(names, () => inner.ensureStores(names)),
    commit: (ops) => guard(storesOf(ops), () => inner.commit(ops)),
    readAll: (store) => guard([store], () => inner.readAll(store)),
    get: (store, key) => guard([store], () => inner.get(store, key)),
    getMany: (store, keys) => guard([store], () => inner.getMany(store, keys)),
    close: () => inner.close(),
  }
  const destroy = inner.destroy
  if (destroy) guarded.destroy = () => guard([], () => destroy.call(inner))
  return guarded
}
