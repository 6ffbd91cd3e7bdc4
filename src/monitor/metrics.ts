import type { OperationRecord } from '../core/events'
import type { RealtimeState } from '../core/ports'

/** The sync metrics: counts, timings, depths and history. Snapshots are frozen and never change. */
export interface SyncMetrics {
  /** Operations recorded: IndexedDB batches, hydrations, pushes, pulls and health checks. */
  readonly totalOperations: number
  readonly successfulOperations: number
  readonly failedOperations: number
  /** When the last operation finished (ms since epoch); 0 before the first. */
  readonly lastOperationTime: number
  /** Mean duration of all recorded operations, in ms. */
  readonly averageOperationTime: number
  /** The last 100 operations, oldest first. */
  readonly operationHistory: readonly OperationRecord[]
  /** Median and 95th percentile duration over `operationHistory`, in ms. */
  readonly p50OperationTime: number
  readonly p95OperationTime: number
  /** `successfulOperations / totalOperations`, 1 before the first operation. */
  readonly successRate: number
  /** When the last successful operation finished; `null` before the first. */
  readonly lastSuccessTime: number | null
  /** `now - lastSuccessTime` when this snapshot was taken; `null` before the first success. */
  readonly timeSinceLastSuccess: number | null
  /** Distinct keys waiting in the local debounce queue. */
  readonly pendingOperations: number
  /** Operations stored locally and not yet acknowledged by the server. */
  readonly outboxDepth: number
  /** Operations the server rejected permanently. */
  readonly deadLetterCount: number
  /** The real-time channel's state (`off` without `remote.realtime`, or in a tab that does not lead). */
  readonly realtimeState: RealtimeState
  /** Pokes received over the real-time channel (each says the server's feed advanced). */
  readonly pokes: number
  /** Incremental pulls the pokes led to: fewer than `pokes` when pokes were coalesced. */
  readonly pokePulls: number
  /**
   * Over the last 100 poke pulls: how long after the server published a write its change was in
   * this store (ms, server clock), median and 95th percentile; 0 before the first.
   */
  readonly p50VisibleLatency: number
  readonly p95VisibleLatency: number
}

export const HISTORY_SIZE = 100

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[index]!
}
