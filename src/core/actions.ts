import { createAction } from '@reduxjs/toolkit'
import type { SerializedSyncError } from '../errors'

/** Every action type of the library starts with this; the middleware's hot path checks it once. */
export const ACTION_PREFIX = 'redux-idb-sync/'

/**
 * Replaces a slice's collection with what was loaded from storage (merged with whatever actions
 * changed before loading finished). Applied by `persistence.enhancer`; slices may also observe
 * it in `extraReducers`. Serializable: its payload is plain data.
 */
export const hydrateSlice = createAction('redux-idb-sync/hydrate', (payload: { slice: string; collection: unknown; count: number }, instanceId: number) => ({
  payload,
  meta: { instanceId },
}))

/** Announces a background persistence failure, so it is visible in Redux DevTools and reducers. */
export const persistenceFailed = createAction<{ error: SerializedSyncError }>('redux-idb-sync/persistenceFailed')

/**
 * Applies items that came from the server to a slice's collection. Like `hydrateSlice`, it is
 * applied by `persistence.enhancer` and never written back to IndexedDB or the server.
 */
export const remoteApplied = createAction(
  'redux-idb-sync/remoteApplied',
  (payload: { slice: string; puts: Array<[string | number, unknown]>; deletes: Array<string | number> }, instanceId: number) => ({
    payload,
    meta: { instanceId },
  }),
)

/** Returns the store's persistence instance from `dispatch` (handled by the middleware). Used by companions. */
export const getPersistenceInstance = createAction('redux-idb-sync/getPersistenceInstance')

/** Returns the sync engine of the store's persistence middleware, or undefined. Handled by the middleware. */
export const getSyncEngine = createAction('redux-idb-sync/getSyncEngine')

/**
 * Settles a `manual` conflict: keep the local version, take the server's, or write a merge. It
 * settles every change of the key pending when it is dispatched (the conflict's `local` side
 * follows newer edits while it is open); a change made after it goes out on top of the decision.
 */
export const resolveConflict = createAction<{ key: string; resolution: 'local' | 'server' } | { key: string; resolution: 'merged'; value: unknown }>(
  'redux-idb-sync/resolveConflict',
)
/**
 * Moves a dead letter back into the outbox: as it was, or with `value` (edit and resend; a put).
 * The value goes into the state and IndexedDB too, since a rolled-back item shows the server's
 * value meanwhile. A newer pending change of the key supersedes it: then it is only forgotten.
 */
export const retryDeadLetter = createAction<{ opId: string; value?: unknown }>('redux-idb-sync/retryDeadLetter')
/** Forgets a dead letter for good. An item that kept the rejected value (`onReject: 'keep'`) returns to its confirmed value. */
export const discardDeadLetter = createAction<{ opId: string }>('redux-idb-sync/discardDeadLetter')

/** Why an item returned to its confirmed value. */
export interface RollbackReason {
  /**
   * `'rejected'`: the server refused the change for good; `'conflict'`: a conflict was decided
   * for the server; `'discarded'`: the app discarded a dead letter that kept its value
   * (`onReject: 'keep'`); `'dependency'`: the create of an item it depends on was rejected.
   */
  readonly cause: 'rejected' | 'conflict' | 'discarded' | 'dependency'
  /** The HTTP status of a rejected request, or `null` (a per-operation rejection, a conflict). */
  readonly status: number | null
  /** A short machine-readable code: the server's error code, `conflict`, `dependency_rejected`. */
  readonly code: string
  /** The server's message, or one naming the conflict or the rejected dependency: readable for a user. */
  readonly message: string
}

/** The payload of `rolledBack`. */
export interface RolledBackPayload {
  readonly key: string
  readonly slice: string
  readonly id: string | number
  /** The refused operation (`null` for a conflict decided for the server). */
  readonly opId: string | null
  readonly reason: RollbackReason
  /** The local change that was undone: its type and value (`null` for a delete). */
  readonly rejected: { readonly type: 'put' | 'delete'; readonly value: unknown }
  /** What the item holds now: the server's value (`null`: no item) at its version (`null`: never on the server). */
  readonly restored: { readonly value: unknown; readonly version: number | null }
}

/**
 * Announces that an item returned to its confirmed value (the last value the server
 * acknowledged or sent), in the state and in IndexedDB, because the server refused a change for
 * good or a conflict was decided for the server. Dispatched once, by the tab that received the
 * answer, after the rollback committed; other tabs see the item change. Serializable: keep a copy
 * of `rejected.value` to offer "try again".
 * @example
 * ```ts
 * listener.startListening({ actionCreator: rolledBack, effect: ({ payload }) => toast(`${payload.id}: ${payload.reason.message}`) })
 * ```
 */
export const rolledBack = createAction<RolledBackPayload>('redux-idb-sync/rolledBack')
