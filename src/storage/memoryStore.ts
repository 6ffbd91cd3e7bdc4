import type { ItemId, StorageOp, StoreTransaction, TransactionalStore } from './types'

const clone: <T>(value: T) => T = typeof structuredClone === 'function' ? (value) => structuredClone(value) : (value) => value

function compareKeys(a: ItemId, b: ItemId): number {
  // IndexedDB orders numbers before strings; mirror that so both backends hydrate alike.
  if (typeof a !== typeof b) return typeof a === 'number' ? -1 : 1
  return a < b ? -1 : a > b ? 1 : 0
}

/**
 * A non-persistent store with IndexedDB's semantics (atomic batches, cloned values). Used where
 * IndexedDB is missing, e.g. during server-side rendering, and by tests that need no database.
 */
export function createMemoryStore(): TransactionalStore {
  const stores = new Map<string, Map<ItemId, unknown>>()
  const storeFor = (name: string): Map<ItemId, unknown> => {
    let store = stores.get(name)
    if (!store) stores.set(name, (store = new Map()))
    return store
  }
  // Transactions run one at a time, as fake-indexeddb runs them, so a `transact` that reads and
  // then writes is atomic against every other commit.
  let turn: Promise<unknown> = Promise.resolve()
  const serial = <T>(run: () => Promise<T>): Promise<T> => {
    const next = turn.then(run, run)
    turn = next.catch(() => undefined)
    return next
  }
  function apply(ops: readonly StorageOp[]): void {
    // Clone everything first so a failing clone leaves the store untouched (atomicity).
    const prepared = ops.map((op) => (op.type === 'put' ? { ...op, value: clone(op.value) } : op))
    for (const op of prepared) {
      const store = storeFor(op.store)
      if (op.type === 'put') store.set(op.key, op.value)
      else if (op.type === 'delete') store.delete(op.key)
      else if (op.type === 'deleteIf') {
        const current = store.get(op.key) as Record<string, unknown> | undefined
        if (current?.[op.field] === op.equals) store.delete(op.key)
      } else store.clear()
    }
  }
  return {
    kind: 'memory',
    persistent: false,
    async ensureStores(names) {
      for (const name of names) storeFor(name)
    },
    commit(ops: readonly StorageOp[]) {
      return serial(async () => apply(ops))
    },
    transact(_stores, work) {
      return serial(async () => {
        // Writes are staged and applied only when `work` finished without throwing.
        const staged: StorageOp[] = []
        const overlay = new Map<string, Map<ItemId, { value: unknown } | null>>()
        const layer = (store: string): Map<ItemId, { value: unknown } | null> => {
          let map = overlay.get(store)
          if (!map) overlay.set(store, (map = new Map()))
          return map
        }
        const view: StoreTransaction = {
          async get(store, key) {
            const own = overlay.get(store)?.get(key)
            if (own !== undefined) return own === null ? undefined : clone(own.value)
            const value = storeFor(store).get(key)
            return value === undefined ? undefined : clone(value)
          },
          put(store, key, value) {
            const copy = clone(value)
            staged.push({ type: 'put', store, key, value: copy })
            layer(store).set(key, { value: copy })
          },
          delete(store, key) {
            staged.push({ type: 'delete', store, key })
            layer(store).set(key, null)
          },
        }
        const result = await work(view)
        apply(staged)
        return result
      })
    },
    async readAll(name) {
      const entries = [...storeFor(name).entries()].map(([k, v]): [ItemId, unknown] => [k, clone(v)])
      return entries.sort((a, b) => compareKeys(a[0], b[0]))
    },
    async get(name, key) {
      const value = storeFor(name).get(key)
      return value === undefined ? undefined : clone(value)
    },
    async getMany(name, keys) {
      const store = storeFor(name)
      return keys.map((key) => {
        const value = store.get(key)
        return value === undefined ? undefined : clone(value)
      })
    },
    close() {},
    async destroy() {
      stores.clear()
    },
  }
}
