import { unwrap as idbUnwrap, wrap as idbWrap, type IDBPDatabase } from 'idb'

/** The idb-shaped connection the idb store works with. */
export type Database = IDBPDatabase<unknown>

/**
 * Wraps a raw connection the way idb does, also where the IndexedDB classes are not globals.
 *
 * Why two paths: idb recognises requests, transactions and stores with `instanceof IDBRequest`,
 * `IDBTransaction`, ... on the *global* classes. A factory injected with the `indexedDB` option
 * (fake-indexeddb's `new IDBFactory()` in Node, without `fake-indexeddb/auto`) has no such
 * globals, and idb then throws `ReferenceError: IDBRequest is not defined` from inside its event
 * handlers, where nothing can catch it. A connection of the global classes goes through idb;
 * any other gets the small wrapper below, which covers exactly what the idb store calls:
 * `version`, `objectStoreNames`, `close`, `get`, `transaction(...)` with `objectStore`, `store`,
 * `done`, `error`, `abort`, and the store requests `put`, `delete`, `clear`, `get`, `getAll`,
 * `getAllKeys`. Rules it keeps from idb: a request's promise rejects with `request.error`;
 * `done` is created with the transaction (before any event can fire), resolves on `complete`
 * and rejects on `error` or `abort` with `tx.error` (or an `AbortError`).
 */
export function wrapDatabase(raw: IDBDatabase): Database {
  const globalClass = (globalThis as { IDBDatabase?: unknown }).IDBDatabase
  if (typeof globalClass === 'function' && raw instanceof globalClass) return idbWrap(raw)
  return plainDatabase(raw) as unknown as Database
}

/** The raw object behind a wrapped store (either path). */
export function unwrapStore(store: unknown): IDBObjectStore {
  return rawStores.get(store as object) ?? (idbUnwrap(store as never) as unknown as IDBObjectStore)
}

/** A request's result as a promise, without touching the global classes. */
export function requestResult<T>(request: IDBRequest<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const done = (): void => {
      request.removeEventListener('success', success)
      request.removeEventListener('error', failure)
    }
    const success = (): void => {
      resolve(request.result)
      done()
    }
    const failure = (): void => {
      reject(request.error)
      done()
    }
    request.addEventListener('success', success)
    request.addEventListener('error', failure)
  })
}

const rawStores = new WeakMap<object, IDBObjectStore>()

function plainStore(raw: IDBObjectStore) {
  const store = {
    put: (value: unknown, key?: IDBValidKey) => requestResult(raw.put(value, key)),
    delete: (key: IDBValidKey | IDBKeyRange) => requestResult(raw.delete(key)),
    clear: () => requestResult(raw.clear()),
    get: (key: IDBValidKey | IDBKeyRange) => requestResult(raw.get(key)),
    getAll: () => requestResult(raw.getAll()),
    getAllKeys: () => requestResult(raw.getAllKeys()),
  }
  rawStores.set(store, raw)
  return store
}

function transactionDone(tx: IDBTransaction): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const unlisten = (): void => {
      tx.removeEventListener('complete', complete)
      tx.removeEventListener('error', failure)
      tx.removeEventListener('abort', failure)
    }
    const complete = (): void => {
      resolve()
      unlisten()
    }
    const failure = (): void => {
      reject(tx.error ?? new DOMException('AbortError', 'AbortError'))
      unlisten()
    }
    tx.addEventListener('complete', complete)
    tx.addEventListener('error', failure)
    tx.addEventListener('abort', failure)
  })
}

function plainTransaction(tx: IDBTransaction) {
  const stores = new Map<string, ReturnType<typeof plainStore>>()
  const objectStore = (name: string): ReturnType<typeof plainStore> => {
    let store = stores.get(name)
    if (!store) {
      store = plainStore(tx.objectStore(name))
      stores.set(name, store)
    }
    return store
  }
  const names = tx.objectStoreNames
  return {
    done: transactionDone(tx),
    objectStore,
    get store() {
      return names.length === 1 ? objectStore(names[0]!) : undefined
    },
    get error() {
      return tx.error
    },
    abort: () => tx.abort(),
  }
}

const rawDatabases = new WeakMap<object, IDBDatabase>()

/** The raw connection behind a wrapped one (either path), for work that uses requests directly. */
export function unwrapDatabase(handle: Database): IDBDatabase {
  return rawDatabases.get(handle) ?? (idbUnwrap(handle) as unknown as IDBDatabase)
}

function plainDatabase(raw: IDBDatabase) {
  const database = {
    get version() {
      return raw.version
    },
    get objectStoreNames() {
      return raw.objectStoreNames
    },
    close: () => raw.close(),
    transaction: (stores: string | string[], mode?: IDBTransactionMode, options?: IDBTransactionOptions) =>
      plainTransaction(raw.transaction(stores, mode, options)),
    async get(name: string, key: IDBValidKey | IDBKeyRange) {
      return plainTransaction(raw.transaction(name, 'readonly')).objectStore(name).get(key)
    },
  }
  rawDatabases.set(database, raw)
  return database
}
