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

/** Settles a `manual` conflict: keep the local version, take the server's, or write a merge. */
export const resolveConflict = createAction<{ key: string; resolution: 'local' | 'server' } | { key: string; resolution: 'merged'; value: unknown }>(
  'redux-idb-sync/resolveConflict',
)
/** Moves a dead letter back into the outbox. */
export const retryDeadLetter = createAction<{ opId: string }>('redux-idb-sync/retryDeadLetter')
/** Forgets a dead letter for good. */
export const discardDeadLetter = createAction<{ opId: string }>('redux-idb-sync/discardDeadLetter')
