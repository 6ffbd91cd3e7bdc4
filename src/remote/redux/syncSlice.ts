import { createSlice, type PayloadAction, type Reducer } from '@reduxjs/toolkit'
import type { SyncConflict } from '../../core/conflicts'
import type { RealtimeState } from '../../core/ports'
import { pullFlaskChanges, syncFromFlaskBulk, syncToFlaskBulk } from './thunks'

/** The sync status: whether sync is on, the last sync and its outcome, the server's reachability. */
export interface SyncStatus {
  /** Whether remote sync is configured and on. */
  enabled: boolean
  /** When the last push or pull finished successfully (ms since epoch). */
  lastSyncTime: number | null
  syncStatus: 'idle' | 'syncing' | 'success' | 'error'
  /** The last sync error's message, cleared by the next success. */
  error: string | null
  /** What the last health check or request said about the server. */
  flaskConnected: boolean
}

/** The real-time channel (`remote.realtime`), beside the status. */
export interface RealtimeStatus {
  /**
   * `off` when not configured or when another tab holds the socket, `connecting`, `open` (pokes
   * arrive), `down` (interval polling covers the gap while it reconnects).
   */
  state: RealtimeState
  /** Why the channel last went down (its close code and reason), cleared once it is open. */
  error: string | null
}

/** Progress of a bulk operation, for progress bars. */
export interface SyncProgress {
  operation: 'push' | 'pull'
  done: number
  total: number
}

/** An operation the server rejected permanently (a 4xx other than 401/409). Kept until retried or discarded. */
export interface DeadLetter {
  opId: string
  key: string
  slice: string
  id: string | number
  type: 'put' | 'delete'
  /** The HTTP status, or the per-operation rejection's code. */
  status: number | null
  code: string
  message: string
  at: number
  /** Whether the item was returned to its confirmed value (`onReject: 'rollback'`); `false`: it kept the rejected value, or a newer change of it is pending. */
  rolledBack?: boolean
  /** For `dependency_rejected`: the key whose rejected create this op depended on. */
  dependsOn?: string
}

/**
 * Where one item stands with the server:
 * - `'synced'`: the server holds what the store shows (or nothing is known to the contrary);
 * - `'pending'`: a local change is stored and not yet acknowledged;
 * - `'conflict'`: a `manual` conflict waits for the app;
 * - `'rejected'`: the server refused a change for good; it is in the dead-letter list (rolled
 *   back, or kept with `onReject: 'keep'`) until it is retried or discarded.
 */
export type ItemSyncState = 'synced' | 'pending' | 'conflict' | 'rejected'

/** How many items of a slice are in each state other than `'synced'`. */
export interface SliceSyncCounts {
  pending: number
  conflict: number
  rejected: number
}

/** One item's new state, as `itemStatesChanged` carries it (`'synced'`: it leaves `items`). */
export interface ItemStateChange {
  key: string
  slice: string
  state: ItemSyncState
}

export interface SyncState {
  status: SyncStatus
  /** The real-time channel's state. */
  realtime: RealtimeStatus
  progress: SyncProgress | null
  /** Keys with operations stored locally and not yet acknowledged by the server (a key counts once). */
  outboxDepth: number
  deadLetters: DeadLetter[]
  /** Open conflicts, and the last settled ones (at most 50 settled are kept). */
  conflicts: SyncConflict[]
  /**
   * The items that are not synced, by item key (`<slice>:<id>`). Synced items are absent, so
   * the state grows with the outbox and the dead letters, never with the collection. Read it
   * with `selectItemSyncState`.
   */
  items: Record<string, Exclude<ItemSyncState, 'synced'>>
  /** Per slice, how many items are pending, in conflict or rejected (slices with none are absent). */
  counts: Record<string, SliceSyncCounts>
}

const MAX_SETTLED_CONFLICTS = 50

export const initialSyncState: SyncState = {
  status: { enabled: false, lastSyncTime: null, syncStatus: 'idle', error: null, flaskConnected: false },
  realtime: { state: 'off', error: null },
  progress: null,
  outboxDepth: 0,
  deadLetters: [],
  conflicts: [],
  items: {},
  counts: {},
}

const bulkThunks = [syncToFlaskBulk, syncFromFlaskBulk, pullFlaskChanges] as const

/**
 * The sync slice. Mount it under any key (`reducer: { sync: syncReducer }`) and read it with
 * your own selector; its state is plain data, and every action it handles is serializable.
 * (`@__PURE__`: an app that never mounts it, a local-only one, does not bundle it.)
 */
export const syncSlice = /* @__PURE__ */ createSlice({
  name: 'redux-idb-sync/sync',
  initialState: initialSyncState,
  reducers: {
    remoteEnabled(state, action: PayloadAction<boolean>) {
      state.status.enabled = action.payload
    },
    connectionChanged(state, action: PayloadAction<{ connected: boolean; error?: string | null }>) {
      state.status.flaskConnected = action.payload.connected
      if (action.payload.error) state.status.error = action.payload.error
    },
    syncActivity(state, action: PayloadAction<{ phase: 'start' } | { phase: 'success'; time: number } | { phase: 'error'; error: string }>) {
      const p = action.payload
      if (p.phase === 'start') state.status.syncStatus = 'syncing'
      else if (p.phase === 'success') {
        state.status.syncStatus = 'success'
        state.status.lastSyncTime = p.time
        state.status.error = null
      } else {
        state.status.syncStatus = 'error'
        state.status.error = p.error
      }
    },
    realtimeChanged(state, action: PayloadAction<{ state: RealtimeState; error: string | null }>) {
      state.realtime.state = action.payload.state
      if (action.payload.error !== null) state.realtime.error = action.payload.error
      else if (action.payload.state === 'open') state.realtime.error = null
    },
    progressChanged(state, action: PayloadAction<SyncProgress | null>) {
      state.progress = action.payload
    },
    outboxChanged(state, action: PayloadAction<number>) {
      state.outboxDepth = action.payload
    },
    /** Only the items whose state changed: the payload is small and has no item bodies. */
    itemStatesChanged(state, action: PayloadAction<ItemStateChange[]>) {
      for (const { key, slice, state: next } of action.payload) {
        const before = state.items[key]
        if (before === next || (before === undefined && next === 'synced')) continue
        const counts = (state.counts[slice] ??= { pending: 0, conflict: 0, rejected: 0 })
        if (before) counts[before]--
        if (next === 'synced') delete state.items[key]
        else {
          state.items[key] = next
          counts[next]++
        }
        if (counts.pending === 0 && counts.conflict === 0 && counts.rejected === 0) delete state.counts[slice]
      }
    },
    deadLettersChanged(state, action: PayloadAction<DeadLetter[]>) {
      state.deadLetters = action.payload
    },
    conflictChanged(state, action: PayloadAction<SyncConflict>) {
      const index = state.conflicts.findIndex((c) => c.key === action.payload.key && c.resolution === 'pending')
      if (index >= 0) state.conflicts[index] = action.payload
      else state.conflicts.push(action.payload)
      const settled = state.conflicts.filter((c) => c.resolution !== 'pending')
      if (settled.length > MAX_SETTLED_CONFLICTS) {
        const drop = new Set(settled.slice(0, settled.length - MAX_SETTLED_CONFLICTS))
        state.conflicts = state.conflicts.filter((c) => !drop.has(c))
      }
    },
  },
  extraReducers(builder) {
    for (const thunk of bulkThunks) {
      builder.addCase(thunk.pending, (state) => {
        state.status.syncStatus = 'syncing'
      })
      builder.addCase(thunk.rejected, (state, action) => {
        state.status.syncStatus = 'error'
        state.status.error = action.payload?.message ?? action.error.message ?? 'sync failed'
        state.progress = null
      })
    }
  },
})

// Annotated with RTK's own names: an inferred type would name `redux` and `redux-thunk` in the
// published .d.ts, packages a user's app does not depend on directly (pnpm does not hoist them).
// Read through annotated calls: bundlers keep a module-level property read (it might run a
// getter), and with it the whole slice, in apps that never use it (a local-only app).
export const syncReducer: Reducer<SyncState> = /* @__PURE__ */ (() => syncSlice.reducer)()
export const syncActions = /* @__PURE__ */ (() => syncSlice.actions)()
