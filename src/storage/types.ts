/** An item id, as stored: the IndexedDB key of the item in its slice's object store. */
export type ItemId = string | number

/** Which queued operation an op belongs to, so storage errors can name the slice and key. */
export interface OpRef {
  readonly slice: string
  readonly key: string
}

/** One write inside a batch. A batch is always applied in one readwrite transaction. */
export type StorageOp =
  | { readonly type: 'put'; readonly store: string; readonly key: ItemId; readonly value: unknown; readonly ref?: OpRef }
  | { readonly type: 'delete'; readonly store: string; readonly key: ItemId; readonly ref?: OpRef }
  | { readonly type: 'clear'; readonly store: string; readonly ref?: OpRef }
  /**
   * Deletes the record only if its `field` still equals `equals`, decided inside the transaction.
   * The outbox uses it to remove an acknowledged entry without deleting a newer one that a
   * concurrent local write put under the same key.
   */
  | { readonly type: 'deleteIf'; readonly store: string; readonly key: ItemId; readonly field: string; readonly equals: unknown; readonly ref?: OpRef }

/**
 * The view of one readwrite transaction that `LocalStore.transact` hands its work. Writes are
 * issued at once and take effect only if the whole transaction commits.
 */
export interface StoreTransaction {
  /** One value, or `undefined`; sees this transaction's own earlier writes. */
  get(store: string, key: ItemId): Promise<unknown>
  /** Writes a value. A value that cannot be cloned throws here; `ref` names the op in that error. */
  put(store: string, key: ItemId, value: unknown, ref?: OpRef): void
  delete(store: string, key: ItemId): void
}

/** A store's items as one read returns them, without a `[key, value]` pair per item. */
export interface StoredItems {
  /** The value stored under the asked-for key in the library's meta store, read in the same transaction. */
  readonly meta: unknown
  readonly size: number
  keyAt(index: number): ItemId
  valueAt(index: number): unknown
}

/**
 * The local storage boundary. The default is IndexedDB through idb; tests, SSR and other
 * backends plug in here without touching the queue.
 *
 * Rules every implementation keeps:
 * - `commit` applies all ops in ONE transaction and resolves only after it committed; it
 *   rejects with a `SyncError` subclass if anything failed, and then nothing was applied.
 * - Reads never return half of a concurrent commit.
 */
export interface LocalStore {
  /** `'indexeddb'` for real persistence, `'memory'` when data only lives as long as the page. */
  readonly kind: 'indexeddb' | 'memory' | 'custom'
  /** Whether data survives a reload. */
  readonly persistent: boolean
  /** Makes sure these object stores exist, upgrading the database if needed. */
  ensureStores(names: readonly string[]): Promise<void>
  /** Applies the ops in one readwrite transaction; resolves after commit. */
  commit(ops: readonly StorageOp[]): Promise<void>
  /**
   * Runs `work` inside ONE readwrite transaction over `stores` and resolves with its result once
   * the transaction committed. `work` may await only the transaction's own `get`s (awaiting
   * anything else, a fetch or a timer, would end the transaction early). If `work` throws or
   * anything fails, nothing it wrote is applied and the promise rejects with a `SyncError`.
   * This is how the outbox reads a key's row and writes its new state atomically, whichever tab
   * wrote the row before.
   *
   * Optional for custom backends: without it, the library runs `work` against `get` and applies
   * its writes with one `commit`, one such transaction at a time per instance. That is atomic
   * against the instance's own writes, not against another tab's.
   */
  transact?<T>(stores: readonly string[], work: (tx: StoreTransaction) => Promise<T>): Promise<T>
  /** Every `[key, value]` of a store, in key order, from one readonly transaction. */
  readAll(store: string): Promise<Array<[ItemId, unknown]>>
  /**
   * Every item of `store`, in key order, and the meta store's value at `metaKey`, from ONE
   * readonly transaction (hydration). Optional: without it, hydration reads them with `get` and
   * `readAll`.
   */
  readItems?(store: string, metaKey: string): Promise<StoredItems>
  /** One value, or `undefined`. */
  get(store: string, key: ItemId): Promise<unknown>
  /** Several values of one store from one readonly transaction, `undefined` where missing. */
  getMany(store: string, keys: readonly ItemId[]): Promise<unknown[]>
  /** Closes connections. The store can still be used afterwards; it reopens on demand. */
  close(): void
  /**
   * Deletes everything this store holds (for IndexedDB: the whole database), closing its own
   * connections first. Afterwards every call rejects. Optional for custom backends;
   * `clearPersistence()` reports a `StorageError` for a backend without it.
   */
  destroy?(): Promise<void>
}

/** A `LocalStore` whose `transact` is there (the built-in ones, and every guarded custom one). */
export type TransactionalStore = LocalStore & Required<Pick<LocalStore, 'transact'>>

/** Object stores the library reserves for itself inside the database. */
export const META_STORE = '__ris_meta'
/** Operations waiting for the server, keyed by queue key. */
export const OUTBOX_STORE = '__ris_outbox'
/** The server version last seen per queue key. */
export const VERSIONS_STORE = '__ris_versions'
/** Operations the server rejected permanently, keyed by opId. */
export const DEAD_LETTER_STORE = '__ris_dead'

/** The prefix user store names may not use. */
export const RESERVED_PREFIX = '__ris_'
