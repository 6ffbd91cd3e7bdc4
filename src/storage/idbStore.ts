import { StorageBlockedError, StorageUnavailableError, isConnectionLostError } from '../errors'
import { requestResult, unwrapDatabase, unwrapStore, type Database } from './idbAdapter'
import { openConnection } from './idbOpen'
import { mapStorageError } from './mapError'
import { META_STORE, type ItemId, type OpRef, type StorageOp, type StoredItems, type StoreTransaction, type TransactionalStore } from './types'

/** Options of {@link createIdbStore}. */
export interface IdbStoreOptions {
  /** The database name. */
  readonly dbName: string
  /** How long an open or upgrade may take before it fails with `StorageBlockedError`. */
  readonly openTimeoutMs: number
  /** The IndexedDB factory, `globalThis.indexedDB` unless injected. */
  readonly factory: IDBFactory
  /** Transaction durability hint for writes. */
  readonly durability: IDBTransactionDurability
  /** Told when another connection forced ours closed or our open is blocked. */
  readonly onConnectionEvent?: (event: 'versionchange' | 'deleted' | 'closed' | 'blocked') => void
}

/** `IDBObjectStore.getAllRecords()`, newer than TypeScript's DOM types. */
interface StoredRecord {
  readonly primaryKey: IDBValidKey
  readonly value: unknown
}
interface WithGetAllRecords {
  getAllRecords?(): IDBRequest<StoredRecord[]>
}

/**
 * The IndexedDB backend. One connection per instance, opened lazily, reopened after loss.
 *
 * Rules this file keeps:
 * - Every open has a timeout (`openConnection`, idbOpen.ts): a blocked upgrade otherwise hangs
 *   forever and `blocked` cannot reject the open promise.
 * - On `versionchange` we close at once, so we never block another connection's upgrade.
 * - A handle that reported a lost connection is dropped, never reused for the retry.
 * - Every write awaits `tx.done`; nothing else is awaited inside a transaction.
 */
/** The object stores a batch touches, in first-use order (one pass, no Set for the common single store). */
function storesOf(ops: readonly StorageOp[]): string[] {
  const first = ops[0]!.store
  let many: Set<string> | null = null
  for (const op of ops) if (op.store !== first) (many ??= new Set([first])).add(op.store)
  return many ? [...many] : [first]
}

/** Resolves when the transaction commits, rejects when it aborts; never unhandled. */
function transactionOutcome(tx: IDBTransaction): Promise<void> {
  const done = new Promise<void>((resolve, reject) => {
    tx.oncomplete = () => resolve()
    tx.onabort = () => reject(tx.error ?? new DOMException('the transaction was aborted', 'AbortError'))
  })
  done.catch(() => undefined)
  return done
}

export function createIdbStore(options: IdbStoreOptions): TransactionalStore {
  const { dbName, openTimeoutMs, factory, durability, onConnectionEvent } = options
  const wanted = new Set<string>([META_STORE])
  let db: Database | null = null
  let opening: Promise<Database> | null = null
  let destroyed = false

  const drop = (handle: Database): void => {
    if (db === handle) db = null
    handle.close()
  }

  const openOnce = (version: number | undefined): Promise<Database> =>
    openConnection({
      factory,
      dbName,
      version,
      wanted,
      openTimeoutMs,
      onBlocked: () => onConnectionEvent?.('blocked'),
      onVersionChange(handle, deleted) {
        drop(handle)
        onConnectionEvent?.(deleted && !destroyed ? 'deleted' : 'versionchange')
      },
      onClose(handle) {
        if (db === handle) db = null
        onConnectionEvent?.('closed')
      },
    })

  /** Opens at the current version, then upgrades once if a wanted store is missing. */
  async function open(): Promise<Database> {
    for (let attempt = 0; ; attempt++) {
      const handle = await openOnce(undefined)
      const missing = [...wanted].some((name) => !handle.objectStoreNames.contains(name))
      if (!missing) return handle
      const next = handle.version + 1
      handle.close()
      try {
        return await openOnce(next)
      } catch (error) {
        // Another connection upgraded first; start over from its version.
        if (error instanceof Error && error.name === 'VersionError' && attempt < 5) continue
        throw error
      }
    }
  }

  async function connection(stores: readonly string[]): Promise<Database> {
    // A store asked for is created on demand; without this the loop below would drop and reopen
    // forever, since an upgrade only creates the stores in `wanted`.
    for (const name of stores) wanted.add(name)
    for (;;) {
      // A destroyed store must never reopen: that would create the deleted database again.
      if (destroyed) throw new StorageUnavailableError(`database "${dbName}" was deleted by clearPersistence()`)
      if (!db) {
        opening ??= open().finally(() => {
          opening = null
        })
        db = await opening
      }
      const handle = db
      if (stores.every((name) => handle.objectStoreNames.contains(name))) return handle
      drop(handle) // an upgrade needs every connection closed, ours included
    }
  }

  /** Runs `work` once more on a fresh connection when the first attempt found the connection dead. */
  async function withLiveConnection<T>(stores: readonly string[], work: (handle: Database) => Promise<T>): Promise<T> {
    const handle = await connection(stores)
    try {
      return await work(handle)
    } catch (error) {
      if (!isConnectionLostError(error)) throw error
      drop(handle)
      return work(await connection(stores))
    }
  }

  return {
    kind: 'indexeddb',
    persistent: true,
    async ensureStores(names) {
      for (const name of names) wanted.add(name)
      await connection([...wanted])
    },
    commit(ops: readonly StorageOp[]) {
      if (ops.length === 0) return Promise.resolve()
      const stores = storesOf(ops)
      return withLiveConnection(stores, async (handle) => {
        // The raw API on the hot path: one object store handle per store, no promise per
        // request. The outcome of every request is the transaction's (a failed request aborts it).
        let tx: IDBTransaction
        try {
          tx = unwrapDatabase(handle).transaction(stores, 'readwrite', { durability })
        } catch (error) {
          throw mapStorageError(error, { stores })
        }
        const done = transactionOutcome(tx)
        let current: OpRef | undefined
        try {
          let name: string | undefined
          let store: IDBObjectStore | undefined
          for (const op of ops) {
            if (op.store !== name) {
              name = op.store
              store = tx.objectStore(name)
            }
            const target = store!
            current = op.ref
            if (op.type === 'put') target.put(op.value, op.key)
            else if (op.type === 'delete') target.delete(op.key)
            else if (op.type === 'clear') target.clear()
            else {
              // A request issued from a request's success handler: still inside the transaction.
              const { key, field, equals } = op
              const read = target.get(key)
              read.onsuccess = () => {
                if ((read.result as Record<string, unknown> | undefined)?.[field] === equals) target.delete(key)
              }
            }
          }
          current = undefined
        } catch (error) {
          // Synchronous failures (DataCloneError, DataError) leave the transaction open: abort it.
          try {
            tx.abort()
          } catch {
            // already finished
          }
          throw mapStorageError(error, { stores, ref: current })
        }
        try {
          await done
        } catch (error) {
          throw mapStorageError(error, { stores }, tx.error)
        }
      })
    },
    transact(stores, work) {
      return withLiveConnection(stores, async (handle) => {
        let tx: IDBTransaction
        try {
          tx = unwrapDatabase(handle).transaction(stores, 'readwrite', { durability })
        } catch (error) {
          throw mapStorageError(error, { stores })
        }
        // Raw requests, no promise per write: the outcome of every write is the transaction's.
        const done = transactionOutcome(tx)
        let current: OpRef | undefined
        const view: StoreTransaction = {
          get: (store, key) =>
            new Promise((resolve, reject) => {
              const request = tx.objectStore(store).get(key)
              request.onsuccess = () => resolve(request.result)
              request.onerror = () => reject(request.error)
            }),
          put(store, key, value, ref) {
            current = ref
            tx.objectStore(store).put(value, key)
            current = undefined
          },
          delete(store, key) {
            tx.objectStore(store).delete(key)
          },
        }
        let result: Awaited<ReturnType<typeof work>>
        try {
          result = await work(view)
        } catch (error) {
          try {
            tx.abort()
          } catch {
            // already finished
          }
          throw mapStorageError(error, { stores, ref: current }, tx.error)
        }
        try {
          await done
        } catch (error) {
          throw mapStorageError(error, { stores }, tx.error)
        }
        return result
      })
    },
    readAll(name) {
      return withLiveConnection([name], async (handle) => {
        try {
          const tx = handle.transaction(name, 'readonly')
          const store = unwrapStore(tx.store) as IDBObjectStore & WithGetAllRecords
          // getAllRecords (Chromium 141+, fake-indexeddb 6.1+) reads keys and values in one
          // pass; elsewhere it takes two requests in the same transaction.
          if (typeof store.getAllRecords === 'function') {
            const [records] = await Promise.all([requestResult(store.getAllRecords()), tx.done])
            return records.map((record): [ItemId, unknown] => [record.primaryKey as ItemId, record.value])
          }
          const [keys, values] = await Promise.all([tx.store.getAllKeys(), tx.store.getAll(), tx.done])
          return keys.map((key, i): [ItemId, unknown] => [key as ItemId, values[i]])
        } catch (error) {
          throw mapStorageError(error, { stores: [name] })
        }
      })
    },
    readItems(name, metaKey) {
      const stores = [name, META_STORE]
      return withLiveConnection(stores, async (handle): Promise<StoredItems> => {
        try {
          const tx = unwrapDatabase(handle).transaction(stores, 'readonly')
          const done = transactionOutcome(tx)
          const meta = tx.objectStore(META_STORE).get(metaKey)
          const store = tx.objectStore(name) as IDBObjectStore & WithGetAllRecords
          // getAllRecords (Chromium 141+, fake-indexeddb 6.1+) reads keys and values in one
          // pass; elsewhere it takes two requests in the same transaction. Results are read once
          // the transaction completed, and handed out as they came, without a pair per item.
          if (typeof store.getAllRecords === 'function') {
            const request = store.getAllRecords()
            await done
            const records = request.result
            return {
              meta: meta.result,
              size: records.length,
              keyAt: (i) => records[i]!.primaryKey as ItemId,
              valueAt: (i) => records[i]!.value,
            }
          }
          const keys = store.getAllKeys()
          const values = store.getAll()
          await done
          const k = keys.result
          const v = values.result
          return { meta: meta.result, size: k.length, keyAt: (i) => k[i] as ItemId, valueAt: (i) => v[i] }
        } catch (error) {
          throw mapStorageError(error, { stores })
        }
      })
    },
    get(name, key) {
      return withLiveConnection([name], async (handle) => {
        try {
          return await handle.get(name, key)
        } catch (error) {
          throw mapStorageError(error, { stores: [name] })
        }
      })
    },
    getMany(name, keys) {
      return withLiveConnection([name], async (handle) => {
        try {
          const tx = handle.transaction(name, 'readonly')
          const [values] = await Promise.all([Promise.all(keys.map((key) => tx.store.get(key))), tx.done])
          return values
        } catch (error) {
          throw mapStorageError(error, { stores: [name] })
        }
      })
    },
    close() {
      if (db) drop(db)
    },
    async destroy() {
      destroyed = true
      // An open in progress completes first, then is closed, so it cannot block the delete.
      const pending = opening
      if (pending) await pending.then(drop, () => undefined)
      if (db) drop(db)
      await new Promise<void>((resolve, reject) => {
        let request: IDBOpenDBRequest
        try {
          request = factory.deleteDatabase(dbName)
        } catch (error) {
          reject(new StorageUnavailableError(`indexedDB.deleteDatabase("${dbName}") threw`, { cause: error }))
          return
        }
        let blocked = false
        // Other connections get `versionchange`; ours (in every tab) close at once. One that
        // does not close holds the delete back: after openTimeoutMs we say so instead of hanging.
        // The delete stays queued in the browser and completes once that connection closes.
        const timer = setTimeout(() => {
          reject(
            new StorageBlockedError(
              blocked
                ? `deleting "${dbName}" is blocked by another connection that does not close; it completes once that connection closes`
                : `deleting "${dbName}" did not finish within ${openTimeoutMs} ms`,
              { dbName, timeoutMs: openTimeoutMs, blocked },
            ),
          )
        }, openTimeoutMs)
        request.onblocked = () => {
          blocked = true
          onConnectionEvent?.('blocked')
        }
        request.onsuccess = () => {
          clearTimeout(timer)
          resolve()
        }
        request.onerror = (event) => {
          event.preventDefault()
          clearTimeout(timer)
          reject(new StorageUnavailableError(`deleting "${dbName}" failed: ${request.error?.message ?? 'unknown error'}`, { cause: request.error }))
        }
      })
    },
  }
}
