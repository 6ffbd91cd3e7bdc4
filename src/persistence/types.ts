import type { Middleware, StoreEnhancer } from '@reduxjs/toolkit'
import type { ChangeSet, PersistenceEvent } from '../core/events'
import type { SyncEngine } from '../remote/createSyncEngine'
import type { RuntimeSliceConfig } from './options'
import type { PersistenceStatus } from './status'

/**
 * A persistence instance: a Redux middleware (pass it to `configureStore`) carrying its controls.
 */
export interface PersistenceMiddleware extends Middleware {
  /** The database this instance writes to. */
  readonly dbName: string
  /**
   * A store enhancer that lets hydration replace slice collections. Add it with
   * `enhancers: (getDefault) => getDefault().concat(persistence.enhancer)`.
   */
  readonly enhancer: StoreEnhancer
  /**
   * Writes every pending operation now. Resolves after IndexedDB committed; rejects with
   * `FlushError` (the failed operations stay queued, except non-serializable ones).
   */
  flush(): Promise<void>
  /** Changes `enabled`, `syncToFlask`, `debounceMs` or `batchSize` of a slice at runtime. */
  configure(slice: string, config: RuntimeSliceConfig): void
  /** Resumes persisting a slice; changes made while it was disabled are written too. */
  enable(slice: string): void
  /** Stops persisting a slice. Operations already queued are still written. */
  disable(slice: string): void
  /** Resolves when every enabled slice is hydrated; rejects with the first hydration error. */
  whenHydrated(): Promise<void>
  /** The current status snapshot (stable while unchanged). */
  getStatus(): PersistenceStatus
  /** Calls `listener` after status changes (at most once per microtask). Returns an unsubscribe function. */
  subscribe(listener: (status: PersistenceStatus) => void): () => void
  /** Whether this instance persists a slice of that name. */
  hasSlice(slice: string): boolean
  /**
   * Flushes what is pending (errors go to `onError`), clears every timer and closes the database.
   * With `{ flush: false }` pending writes are dropped instead (what a crash or a logout does).
   */
  dispose(options?: { flush?: boolean }): Promise<void>
  /**
   * Operation and change events, for the sync monitor, auto-sync and multi-tab coordination.
   * Returns an unsubscribe function.
   */
  subscribeEvents(listener: (event: PersistenceEvent) => void): () => void
  /**
   * Logout: drops what is pending (local writes and the outbox, unsent), disposes the instance
   * and deletes its database, closing its connections first. Other tabs running this library
   * close theirs on `versionchange`, so the delete is not blocked by them; a connection that
   * never closes ends in `StorageBlockedError` after `openTimeoutMs`. Reset or reload the app's
   * state afterwards; the instance cannot be used again.
   */
  clear(): Promise<void>
  /** The remote sync engine, or `null` for a local-only instance. */
  readonly sync: SyncEngine | null
  /** Whether this instance uses the page's own `indexedDB` (so other tabs share its database). */
  readonly usesGlobalIndexedDB: boolean
  /** Applies items another tab committed to the same database (read from IndexedDB, never written back). */
  applyExternalChanges(changes: readonly ChangeSet[]): Promise<void>
}
