import { mapStorageError } from './mapError'
import type { ItemId, LocalStore, StorageOp, StoreTransaction, TransactionalStore } from './types'

/**
 * Holds a user-supplied `LocalStore` to the boundary's rule that every failure is a `SyncError`:
 * whatever it throws or rejects with (a raw `DOMException('QuotaExceededError')`, a `TypeError`)
 * is mapped the way the idb store maps IndexedDB's errors. Synchronous throws become rejections,
 * so a faulty backend can never throw into the queue or `dispatch`.
 */
export function guardLocalStore(inner: LocalStore): TransactionalStore {
  const guard = async <T>(stores: readonly string[], run: () => Promise<T>): Promise<T> => {
    try {
      return await run()
    } catch (error) {
      throw mapStorageError(error, { stores })
    }
  }
  const storesOf = (ops: readonly StorageOp[]): string[] => [...new Set(ops.map((op) => op.store))]
  // Without a native `transact`, commits and emulated transactions take turns, so a read-then-
  // write of this instance never interleaves with another of its writes.
  let turn: Promise<unknown> = Promise.resolve()
  const serial = <T>(run: () => Promise<T>): Promise<T> => {
    const next = turn.then(run, run)
    turn = next.catch(() => undefined)
    return next
  }
  const native = inner.transact?.bind(inner)
  const emulated = <T>(work: (tx: StoreTransaction) => Promise<T>): Promise<T> =>
    serial(async () => {
      const staged: StorageOp[] = []
      const own = new Map<string, { value: unknown } | null>()
      const slot = (store: string, key: ItemId): string => `${store}\u0000${typeof key}:${String(key)}`
      const view: StoreTransaction = {
        async get(store, key) {
          const mine = own.get(slot(store, key))
          if (mine !== undefined) return mine === null ? undefined : mine.value
          return inner.get(store, key)
        },
        put(store, key, value, ref) {
          staged.push({ type: 'put', store, key, value, ...(ref ? { ref } : {}) })
          own.set(slot(store, key), { value })
        },
        delete(store, key) {
          staged.push({ type: 'delete', store, key })
          own.set(slot(store, key), null)
        },
      }
      const result = await work(view)
      if (staged.length > 0) await inner.commit(staged)
      return result
    })
  const guarded: TransactionalStore = {
    kind: inner.kind,
    persistent: inner.persistent,
    ensureStores: (names) => guard(names, () => inner.ensureStores(names)),
    commit: (ops) => guard(storesOf(ops), () => (native ? inner.commit(ops) : serial(() => inner.commit(ops)))),
    transact: (stores, work) => guard(stores, () => (native ? native(stores, work) : emulated(work))),
    readAll: (store) => guard([store], () => inner.readAll(store)),
    get: (store, key) => guard([store], () => inner.get(store, key)),
    getMany: (store, keys) => guard([store], () => inner.getMany(store, keys)),
    close: () => inner.close(),
  }
  const destroy = inner.destroy
  if (destroy) guarded.destroy = () => guard([], () => destroy.call(inner))
  return guarded
}
