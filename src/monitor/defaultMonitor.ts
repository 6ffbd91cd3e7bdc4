import type { SyncMonitorMiddleware } from './createSyncMonitorMiddleware'
import { createEmitter } from '../utils/emitter'
import { sharedSlot } from '../utils/sharedRegistry'
import type { SyncMetrics } from './metrics'

// `@__PURE__` (here and on EMPTY): an app that never uses the default monitor does not bundle it.
/**
 * The module-level functions act on the *default monitor*: the most recently created live
 * monitor (one created with `default: false` never is). Listeners subscribed here follow the
 * default monitor, even one created after they subscribed.
 */
const registry = /* @__PURE__ */ sharedSlot('monitor.default.2', () => ({
  current: null as SyncMonitorMiddleware | null,
  hubListeners: createEmitter<SyncMetrics>((error) => console.warn('[redux-idb-sync] a sync metrics listener threw:', error)),
  detach: null as (() => void) | null,
}))

const EMPTY: SyncMetrics = /* @__PURE__ */ Object.freeze({
  totalOperations: 0,
  successfulOperations: 0,
  failedOperations: 0,
  lastOperationTime: 0,
  averageOperationTime: 0,
  operationHistory: /* @__PURE__ */ Object.freeze([]),
  p50OperationTime: 0,
  p95OperationTime: 0,
  successRate: 1,
  lastSuccessTime: null,
  timeSinceLastSuccess: null,
  pendingOperations: 0,
  outboxDepth: 0,
  deadLetterCount: 0,
  realtimeState: 'off',
  pokes: 0,
  pokePulls: 0,
  p50VisibleLatency: 0,
  p95VisibleLatency: 0,
})

const relay = (metrics: SyncMetrics): void => registry.hubListeners.emit(metrics)

export function setDefaultMonitor(monitor: SyncMonitorMiddleware): void {
  registry.detach?.()
  registry.current = monitor
  registry.detach = monitor.subscribeSyncMetrics(relay)
}

export function unsetDefaultMonitor(monitor: SyncMonitorMiddleware): void {
  if (registry.current !== monitor) return
  registry.detach?.()
  registry.detach = null
  registry.current = null
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
  return registry.current ? registry.current.getSyncMetrics() : EMPTY
}

/**
 * Calls `listener` whenever the default monitor's metrics change (at most once per batch).
 * Returns an unsubscribe function.
 */
export function subscribeSyncMetrics(listener: (metrics: SyncMetrics) => void): () => void {
  return registry.hubListeners.subscribe(listener)
}

/** Zeroes the default monitor's metrics. */
export function resetSyncMetrics(): void {
  registry.current?.resetSyncMetrics()
}
