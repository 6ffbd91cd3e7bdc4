import { useCallback, useEffect, useMemo, useState, useSyncExternalStore } from 'react'
import type { ThunkDispatch, UnknownAction } from '@reduxjs/toolkit'
import { useDispatch, useSelector } from 'react-redux'
import type { AutoSyncConfig, AutoSyncMiddleware, AutoSyncStatus } from '../autoSync/createAutoSyncMiddleware'
import { configureAutoSync as configureDefaultAutoSync } from '../autoSync/defaultAutoSync'
import type { SyncMetrics } from '../monitor/metrics'
import { getSyncMetrics, resetSyncMetrics, subscribeSyncMetrics } from '../monitor/defaultMonitor'
import type { RuntimeSliceConfig } from '../persistence/options'
import { pullFlaskChanges, syncToFlaskBulk } from '../remote/redux/thunks'
import type { ItemSyncState, SliceSyncCounts, SyncStatus } from '../remote/redux/syncSlice'
import { selectItemSyncState, selectSliceSyncCounts } from '../remote/redux/selectors'
import type { ItemId } from '../storage/types'
import { usePersistenceContext } from './context'

/** What `usePersistence()` returns. */
export interface UsePersistenceResult {
  /** The sync slice's status: `{ enabled, lastSyncTime, syncStatus, error, flaskConnected }`. */
  status: SyncStatus
  /** The monitor's metrics (counts and times, p50/p95, depths, success rate, history). */
  metrics: SyncMetrics
  /** `{ enabled, lastSyncTime, changeCounter, nextSyncIn }`; `nextSyncIn` counts down live. */
  autoSyncStatus: AutoSyncStatus
  /** Writes everything pending now; resolves after IndexedDB committed. */
  flush: () => Promise<void>
  configure: (sliceName: string, config: RuntimeSliceConfig) => void
  enable: (sliceName: string) => void
  disable: (sliceName: string) => void
  resetMetrics: () => void
  configureAutoSync: (config: Partial<AutoSyncConfig>) => void
  /** Pushes the outbox and pulls what changed. Resolves when done; rejects with a SyncError. */
  syncNow: () => Promise<void>
}

const NO_AUTO_SYNC: AutoSyncStatus = Object.freeze({ enabled: false, lastSyncTime: 0, changeCounter: 0, nextSyncIn: null })

/**
 * Everything about persistence for a component: status, metrics, auto-sync status and the controls.
 * Metrics are read through `useSyncExternalStore` (the monitor's snapshots are stable, so a
 * component re-renders only when they change).
 *
 * @example
 * ```tsx
 * const { status, metrics, syncNow } = usePersistence()
 * ```
 */
export function usePersistence(): UsePersistenceResult {
  const { persistence, monitor, autoSync, selectSync } = usePersistenceContext()
  const dispatch = useDispatch<ThunkDispatch<unknown, unknown, UnknownAction>>()
  const status = useSelector((state: unknown) => selectSync(state).status)

  const metrics = useSyncExternalStore(
    monitor ? monitor.subscribeSyncMetrics : subscribeSyncMetrics,
    monitor ? monitor.getSyncMetrics : getSyncMetrics,
    monitor ? monitor.getSyncMetrics : getSyncMetrics,
  )

  const autoSyncStatus = useAutoSyncStatus(autoSync)

  const flush = useCallback(() => persistence.flush(), [persistence])
  const configure = useCallback((slice: string, config: RuntimeSliceConfig) => persistence.configure(slice, config), [persistence])
  const enable = useCallback((slice: string) => persistence.enable(slice), [persistence])
  const disable = useCallback((slice: string) => persistence.disable(slice), [persistence])
  const resetMetrics = useCallback(() => (monitor ? monitor.resetSyncMetrics() : resetSyncMetrics()), [monitor])
  const configureAutoSync = useCallback(
    (config: Partial<AutoSyncConfig>) => (autoSync ? autoSync.configureAutoSync(config) : configureDefaultAutoSync(config)),
    [autoSync],
  )
  const syncNow = useCallback(async () => {
    if (autoSync) return autoSync.syncNow()
    await dispatch(syncToFlaskBulk()).unwrap()
    await dispatch(pullFlaskChanges()).unwrap()
  }, [autoSync, dispatch])

  return useMemo(
    () => ({ status, metrics, autoSyncStatus, flush, configure, enable, disable, resetMetrics, configureAutoSync, syncNow }),
    [status, metrics, autoSyncStatus, flush, configure, enable, disable, resetMetrics, configureAutoSync, syncNow],
  )
}

/** The auto-sync status, re-read on every change and once a second while a sync is scheduled. */
function useAutoSyncStatus(autoSync: AutoSyncMiddleware | null): AutoSyncStatus {
  const [status, setStatus] = useState<AutoSyncStatus>(() => autoSync?.getAutoSyncStatus() ?? NO_AUTO_SYNC)
  useEffect(() => {
    if (!autoSync) return undefined
    setStatus(autoSync.getAutoSyncStatus())
    return autoSync.subscribeAutoSyncStatus(setStatus)
  }, [autoSync])
  const counting = status.nextSyncIn !== null
  useEffect(() => {
    if (!autoSync || !counting) return undefined
    const timer = setInterval(() => setStatus(autoSync.getAutoSyncStatus()), 1000)
    return () => clearInterval(timer)
  }, [autoSync, counting])
  return status
}

/**
 * One item's sync state (`'synced' | 'pending' | 'conflict' | 'rejected'`) for a badge. The
 * component re-renders only when that item's state changes, not when other items' do.
 * @example
 * ```tsx
 * function Badge({ id }: { id: string }) {
 *   const state = useItemSyncState('notes', id)
 *   return <span className={`badge ${state}`}>{state}</span>
 * }
 * ```
 */
export function useItemSyncState(slice: string, id: ItemId): ItemSyncState {
  const { selectSync } = usePersistenceContext()
  return useSelector((state: unknown) => selectItemSyncState(state, slice, id, selectSync))
}

/**
 * A slice's counts of pending, conflicting and rejected items; re-renders only when they change.
 * @example
 * ```tsx
 * const { pending, rejected } = useSliceSyncCounts('notes')
 * ```
 */
export function useSliceSyncCounts(slice: string): SliceSyncCounts {
  const { selectSync } = usePersistenceContext()
  return useSelector((state: unknown) => selectSliceSyncCounts(state, slice, selectSync))
}
