import { createAsyncThunk, type AsyncThunk } from '@reduxjs/toolkit'
import { getSyncEngine } from '../../core/actions'
import type { SyncEngineHandle } from '../../core/ports'
import { RemoteNotConfiguredError, toSyncError, type SerializedSyncError } from '../../errors'

type Dispatch = (action: unknown) => unknown

type ThunkConfig = { rejectValue: SerializedSyncError }

function engineOf(dispatch: Dispatch): SyncEngineHandle {
  const answer = dispatch(getSyncEngine()) as Partial<SyncEngineHandle> | undefined
  if (!answer || answer.isSyncEngine !== true) {
    throw new RemoteNotConfiguredError('no persistence middleware with a `remote` option is installed in this store')
  }
  return answer as SyncEngineHandle
}

/**
 * A thunk that runs one engine call. Every failure (no engine, or the call's) is wrapped once
 * and rejects with its serialized form, so the sync slice and `unwrap()` see the same error.
 */
function engineThunk<T>(type: string, work: (engine: SyncEngineHandle) => Promise<T>, what: string): AsyncThunk<T, void, ThunkConfig> {
  return createAsyncThunk<T, void, ThunkConfig>(type, async (_, { dispatch, rejectWithValue }) => {
    try {
      return await work(engineOf(dispatch))
    } catch (error) {
      return rejectWithValue(toSyncError(error, what).toJSON())
    }
  })
}

// `@__PURE__` on each module-level call: a bundler drops the thunks an app never uses (a
// local-only app uses none), which it cannot prove of a call by itself.

/** Pushes everything not yet on the server: the outbox, plus items that were never synced. */
export const syncToFlaskBulk: AsyncThunk<void, void, ThunkConfig> = /* @__PURE__ */ engineThunk(
  'redux-idb-sync/syncToFlaskBulk',
  (engine) => engine.pushAll(),
  'push failed',
)

/** Pulls everything from the server into IndexedDB and the store (local unsynced changes are kept and conflict-checked). */
export const syncFromFlaskBulk: AsyncThunk<void, void, ThunkConfig> = /* @__PURE__ */ engineThunk(
  'redux-idb-sync/syncFromFlaskBulk',
  (engine) => engine.pullAll(),
  'pull failed',
)

/** Pulls only what changed on the server since the last pull (tombstones included). */
export const pullFlaskChanges: AsyncThunk<void, void, ThunkConfig> = /* @__PURE__ */ engineThunk(
  'redux-idb-sync/pullFlaskChanges',
  (engine) => engine.pullChanges(),
  'pull failed',
)

/** Asks the server's health endpoint; resolves with whether it answered. */
export const checkFlaskConnection: AsyncThunk<boolean, void, ThunkConfig> = /* @__PURE__ */ engineThunk(
  'redux-idb-sync/checkFlaskConnection',
  (engine) => engine.checkConnection(),
  'health check failed',
)
