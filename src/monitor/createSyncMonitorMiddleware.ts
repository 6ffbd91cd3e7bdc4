import type { Middleware } from '@reduxjs/toolkit'
import { InvalidOptionError } from '../errors'
import { companionMiddleware } from '../core/companion'
import type { PersistenceInstancePort, RealtimeState } from '../core/ports'
import type { OperationRecord } from '../core/events'
import { HISTORY_SIZE, percentile, type SyncMetrics } from './metrics'
import { setDefaultMonitor, unsetDefaultMonitor } from './defaultMonitor'
import { createRingBuffer } from './ringBuffer'
import { createEmitter } from '../utils/emitter'
import { checkOptionKeys } from '../utils/optionKeys'

/** Options of {@link createSyncMonitorMiddleware}. */
export interface SyncMonitorOptions {
  /**
   * Called when a metrics listener throws. The other listeners and the queue carry on regardless.
   * @default logs with console.warn
   */
  onListenerError?: (error: unknown) => void
  /**
   * Whether module-level `getSyncMetrics()`, `subscribeSyncMetrics()` and `resetSyncMetrics()`
   * act on this monitor. The most recently created default monitor wins.
   * @default true
   */
  default?: boolean
}

/** Every key of {@link SyncMonitorOptions}: plain-JS typos are refused by name. */
const optionKeys: Record<keyof SyncMonitorOptions, true> = { onListenerError: true, default: true }

/** The sync monitor: a middleware with the metrics API. */
export interface SyncMonitorMiddleware extends Middleware {
  /** The current metrics; the same frozen object while nothing changed. */
  getSyncMetrics(): SyncMetrics
  /** Calls `listener` with new metrics, at most once per recorded batch. Returns an unsubscribe function. */
  subscribeSyncMetrics(listener: (metrics: SyncMetrics) => void): () => void
  /** Zeroes every counter and the history. */
  resetSyncMetrics(): void
  /** Records an operation of your own (the persistence instance's are recorded automatically). */
  record(operation: Omit<OperationRecord, 'at'> & { at?: number }): void
  /** Detaches from the persistence instance and drops listeners. */
  dispose(): void
}

/**
 * Creates the sync monitor. Placed in the same store as `createPersistenceMiddleware`, it
 * observes every IndexedDB batch, hydration, push, pull and health check of that instance
 * (found through the store, so both share one queue and one outbox). Alone it still works:
 * feed it with `record()`.
 *
 * @example
 * ```ts
 * const monitor = createSyncMonitorMiddleware()
 * configureStore({ reducer, middleware: (g) => g().concat(persistence, monitor) })
 * monitor.subscribeSyncMetrics((m) => { if (m.failedOperations > 10) console.warn('High failure rate') })
 * ```
 */
export function createSyncMonitorMiddleware(options: SyncMonitorOptions = {}): SyncMonitorMiddleware {
  if (typeof options !== 'object' || options === null) throw new InvalidOptionError('options', 'must be an object')
  checkOptionKeys(options, Object.keys(optionKeys), 'options.')
  const onListenerError = options.onListenerError ?? ((error: unknown) => console.warn('[redux-idb-sync] a sync metrics listener threw:', error))
  const history = createRingBuffer<OperationRecord>(HISTORY_SIZE)
  let total = 0
  let ok = 0
  let failed = 0
  let durationSum = 0
  let lastOperationTime = 0
  let lastSuccessTime: number | null = null
  const latencies = createRingBuffer<number>(HISTORY_SIZE)
  let pokes = 0
  let pokePulls = 0
  let realtimeState: RealtimeState = 'off'
  let instance: PersistenceInstancePort | null = null
  let unsubscribe: (() => void) | null = null
  let snapshot: SyncMetrics | null = null
  let notifyScheduled = false
  let disposed = false
  const listeners = createEmitter<SyncMetrics>(onListenerError)

  /** The history as an array: the same array until an operation is recorded (a chart memoized on it skips the other updates). */
  let historyView: readonly OperationRecord[] | null = null

  function build(): SyncMetrics {
    const operationHistory = (historyView ??= Object.freeze(history.toArray()))
    const durations = operationHistory.map((o) => o.durationMs).sort((a, b) => a - b)
    const engine = instance?.sync ?? null
    const visible = latencies.toArray().sort((a, b) => a - b)
    return Object.freeze({
      totalOperations: total,
      successfulOperations: ok,
      failedOperations: failed,
      lastOperationTime,
      averageOperationTime: total === 0 ? 0 : durationSum / total,
      operationHistory,
      p50OperationTime: percentile(durations, 50),
      p95OperationTime: percentile(durations, 95),
      successRate: total === 0 ? 1 : ok / total,
      lastSuccessTime,
      timeSinceLastSuccess: lastSuccessTime === null ? null : Date.now() - lastSuccessTime,
      pendingOperations: instance?.getStatus().pendingOperations ?? 0,
      outboxDepth: engine?.outboxDepth ?? 0,
      deadLetterCount: engine?.deadLetterCount ?? 0,
      realtimeState,
      pokes,
      pokePulls,
      p50VisibleLatency: percentile(visible, 50),
      p95VisibleLatency: percentile(visible, 95),
    })
  }

  function get(): SyncMetrics {
    snapshot ??= build()
    return snapshot
  }

  function notify(): void {
    notifyScheduled = false
    if (listeners.size === 0) return
    listeners.emit(get())
  }

  /** Drops the snapshot and notifies once per microtask, i.e. once per recorded batch. */
  function changed(): void {
    snapshot = null
    if (!notifyScheduled && !disposed) {
      notifyScheduled = true
      queueMicrotask(notify)
    }
  }

  function record(operation: Omit<OperationRecord, 'at'> & { at?: number }): void {
    if (disposed) return
    const entry: OperationRecord = Object.freeze({ ...operation, at: operation.at ?? Date.now() })
    history.push(entry)
    historyView = null
    total++
    if (entry.ok) {
      ok++
      lastSuccessTime = entry.at
    } else failed++
    durationSum += entry.durationMs
    lastOperationTime = entry.at
    changed()
  }

  function attach(found: PersistenceInstancePort): void {
    instance = found
    unsubscribe = found.subscribeEvents((event) => {
      if (event.type === 'operation') record(event.operation)
      else if (event.type === 'depth') changed()
      else if (event.type === 'realtime') {
        realtimeState = event.state
        changed()
      } else if (event.type === 'poke') {
        pokes += event.pokes
        if (event.pulled) pokePulls++
        if (event.visibleAfterMs !== null) latencies.push(event.visibleAfterMs)
        changed()
      }
    })
    changed()
  }

  const middleware = companionMiddleware(attach, () => disposed)

  const monitor: SyncMonitorMiddleware = Object.assign(middleware, {
    getSyncMetrics: get,
    subscribeSyncMetrics: (listener: (metrics: SyncMetrics) => void) => listeners.subscribe(listener),
    resetSyncMetrics() {
      history.clear()
      historyView = null
      total = ok = failed = durationSum = lastOperationTime = pokes = pokePulls = 0
      lastSuccessTime = null
      latencies.clear()
      changed()
    },
    record,
    dispose() {
      disposed = true
      unsubscribe?.()
      listeners.clear()
      unsetDefaultMonitor(monitor)
    },
  })
  if (options.default !== false) setDefaultMonitor(monitor)
  return monitor
}
