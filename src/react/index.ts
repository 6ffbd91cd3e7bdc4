export {
  PersistenceProvider,
  selectSyncAtSync,
  useFlushOnHide,
  usePersistenceContext,
  type PersistenceContextValue,
  type PersistenceProviderProps,
} from './context'
export { useItemSyncState, usePersistence, useSliceSyncCounts, type UsePersistenceResult } from './usePersistence'
export { PersistenceDashboard, type PersistenceDashboardProps } from './PersistenceDashboard'
