import type { SyncMonitorMiddleware } from './createSyncMonitorMiddleware'
import type { SyncMetrics } from './metrics'

/**
 * The module-level functions act on the *default monitor*: the most recently created live
 * monitor (one created with `default: false` never is). Listeners subscribed here follow the
 * default monitor, even one created after they subscribed.
 */
let current: SyncMonitorMiddleware | null = null
const hubListeners = new Set<(metrics: SyncMetrics) => void>()
let detach: (() => void) | null = null

const EMPTY: SyncMetrics = Object.freeze({
  totalOperations: 0,
  successfulOperations: 0,
  failedOperations: 0,
  lastOperationTime: 0,
  averageOperationTime: 0,
  operationHistory: Object.freeze([]),
  p50OperationTime: 0,
  p95OperationTime: 0,
  successRate: 1,
  lastSuccessTime: null,
  timeSinceLastSuccess: null,
  pendingOperations: 0,
  outboxDepth: 0,
  deadLetterCount: 0,
})

function relay(metrics: SyncMetrics): void {
  for (const listener of [...hubListeners]) {
    try {
      listener(metrics)
    } catch (error) {
      console.warn('[redux-idb-sync] a sync metrics listener threw:', error)
    }
  }
}

export function setDefaultMonitor(monitor: SyncMonitorMiddleware): void {
  detach?.()
  current = monitor
  detach = monitor.subscribeSyncMetrics(relay)
}

export function unsetDefaultMonitor(monitor: SyncMonitorMiddleware): void {
  if (current !== monitor) return
  detach?.()
  detach = null
  current = null
}

/**
 * The default monitor's current metrics (all zero when there is none).
 *
 * @example
 * ```ts
 * const { successfulOperations, totalOperations } = getSyncMetrics()
 * ```
 */
export function getSyncMetrics(): SyncMetrics {
  return current ? current.getSyncMetrics() : EMPTY
}

/**
 * Calls `listener` whenever the default monitor's metrics change (at most once per batch).
 * Returns an unsubscribe function.
 */
export function subscribeSyncMetrics(listener: (metrics: SyncMetrics) => void): () => void {
  hubListeners.add(listener)
  return () => {
    hubListeners.delete(listener)
  }
}

/** Zeroes the default monitor's metrics. */
export function resetSyncMetrics(): void {
  current?.resetSyncMetrics()
}
