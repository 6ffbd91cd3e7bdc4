export { createPersistenceMiddleware, type PersistenceMiddleware } from './persistence/createPersistenceMiddleware'
export { clearPersistence, configurePersistence, disablePersistence, enablePersistence, flushPersistence } from './persistence/liveInstances'
export type { PersistenceOptions, RuntimeSliceConfig, SlicePersistenceConfig } from './persistence/options'
export type { PersistenceStatus, SliceStatus } from './persistence/status'
export type { ShapeKind } from './persistence/shapes'
export { hydrateSlice, persistenceFailed } from './core/actions'
export { idsFromPayload } from './persistence/changedIds'
export type { ItemValidator, StandardSchemaLike } from './persistence/validate'
export { createMemoryStore } from './storage/memoryStore'
export { createIdbStore, type IdbStoreOptions } from './storage/idbStore'
export type { ItemId, LocalStore, StorageOp } from './storage/types'
export * from './errors'

// Remote sync: the engine, ky and createRemote are in 'redux-idb-sync/remote' (src/remote/index.ts);
// what works through the instance (the sync slice, selectors, thunks, control actions) is here.
export type { RemotePlugin } from './core/ports'
export type { ConflictContext, ConflictStrategy, MergeFunction, ServerVersion, SyncConflict } from './core/conflicts'
export {
  initialSyncState,
  syncActions,
  syncReducer,
  syncSlice,
  type DeadLetter,
  type RealtimeStatus,
  type ItemStateChange,
  type ItemSyncState,
  type SliceSyncCounts,
  type SyncProgress,
  type SyncState,
  type SyncStatus,
} from './remote/redux/syncSlice'
export { syncActionSanitizer } from './remote/redux/devTools'
export { selectItemRejections, selectItemSyncState, selectSliceSyncCounts, selectSyncAtSync } from './remote/redux/selectors'
export { checkFlaskConnection, pullFlaskChanges, syncFromFlaskBulk, syncToFlaskBulk } from './remote/redux/thunks'
export { discardDeadLetter, resolveConflict, retryDeadLetter, rolledBack, type RollbackReason, type RolledBackPayload } from './core/actions'
export type { ItemRef } from './core/ports'
export { remoteApplied } from './core/actions'

// Sync monitor
export { createSyncMonitorMiddleware, type SyncMonitorMiddleware, type SyncMonitorOptions } from './monitor/createSyncMonitorMiddleware'
export { getSyncMetrics, resetSyncMetrics, subscribeSyncMetrics } from './monitor/defaultMonitor'
export type { SyncMetrics } from './monitor/metrics'
export type { OperationKind, OperationRecord, PersistenceEvent } from './core/events'
export { getPersistenceInstance } from './core/actions'

// Auto-sync
export {
  createAutoSyncMiddleware,
  type AutoSyncConfig,
  type AutoSyncMiddleware,
  type AutoSyncOptions,
  type AutoSyncStatus,
} from './autoSync/createAutoSyncMiddleware'
export { configureAutoSync } from './autoSync/defaultAutoSync'
export type { LeaderMode } from './tabs/leader'
export type { ChannelLike, LockManagerLike, RealtimeControl, RealtimeState, WebSocketConstructorLike, WebSocketLike } from './core/ports'
