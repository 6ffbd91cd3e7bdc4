import { itemKey } from '../core/ids'
import { FlushError, toSyncError, type SyncError } from '../errors'
import type { ItemId } from '../storage/types'
import { backoffDelay } from '../utils/backoff'

/** One coalesced operation: the latest change of one key. */
export interface QueueEntry {
  /** `<slice>:<id>` */
  readonly key: string
  readonly slice: string
  readonly id: ItemId
  readonly op: 'put' | 'delete'
  /** The item for a put; `undefined` for a delete. */
  readonly value: unknown
  /** Increases with every enqueue; tells a superseded entry from the current one. */
  readonly seq: number
  /** When the change was observed (ms since epoch, on the wall clock): the edit's time, not the commit's. */
  readonly observedAt: number
  /**
   * When the change was observed, on a clock the tabs of one browser share and that jumps of the
   * wall clock do not move (`performance.timeOrigin + performance.now()`): orders the changes of
   * different tabs.
   */
  readonly orderedAt: number
  /** Failed attempts so far. */
  attempts: number
  state: 'pending' | 'ready' | 'inflight' | 'retry'
  /** When the debounce of a pending entry ends, or when a retrying entry may go again (monotonic clock). */
  dueAt: number
}

/** What a writer reports for a batch it wrote. */
export interface WriteResult {
  /** Entries that can never be written (e.g. non-serializable); they are dropped and reported. */
  readonly rejected: ReadonlyArray<{ readonly entry: QueueEntry; readonly error: SyncError }>
  /** Entries not written because storage held a later change of their key (another tab's). */
  readonly superseded?: readonly QueueEntry[]
}

/** Reported after every batch attempt, for status and metrics. */
export interface BatchReport {
  readonly entries: readonly QueueEntry[]
  readonly durationMs: number
  readonly error: SyncError | null
  readonly rejected: WriteResult['rejected']
  readonly superseded: readonly QueueEntry[]
}

/** Options of {@link createOperationQueue}. */
export interface OperationQueueOptions {
  /** Debounce per slice, read at enqueue time. */
  debounceFor(slice: string): number
  /** Max operations per transaction for a slice; a batch takes the smallest limit of its slices. */
  batchSizeFor(slice: string): number
  /** Whether entries of a slice may be written now (false while it hydrates or after a failed migration). */
  canWrite(slice: string): boolean
  /** Writes one batch in one transaction. Resolves after commit; rejects with a SyncError. */
  write(batch: readonly QueueEntry[]): Promise<WriteResult>
  /** Called after every batch attempt. Must not throw (it is guarded anyway). */
  onBatch(report: BatchReport): void
  /** Called whenever the number of queued entries changes. */
  onSizeChange?(size: number): void
  /** Called when a drain finished: nothing writable is ready any more. */
  onIdle?(): void
  /** Backoff for failed batches: `min(maxMs, baseMs * 2^(attempts-1))`, with full jitter above half. */
  readonly retry: { readonly baseMs: number; readonly maxMs: number }
  readonly random?: () => number
  /** The wall clock for `observedAt`. @default Date.now */
  readonly wallClock?: () => number
}

/**
 * Deadlines use a monotonic clock: after the wall clock jumps back an hour, a debounce still
 * ends on time instead of an hour later.
 */
const monotonic: () => number = typeof performance !== 'undefined' && typeof performance.now === 'function' ? () => performance.now() : () => Date.now()

/** Milliseconds since the epoch as of this page's start, plus the monotonic time since: comparable across tabs. */
export const crossTabClock: () => number =
  typeof performance !== 'undefined' && typeof performance.now === 'function' && typeof performance.timeOrigin === 'number'
    ? () => performance.timeOrigin + performance.now()
    : () => Date.now()

/** Milliseconds since `started` on the monotonic clock, to 0.1 ms. */
const elapsed = (started: number): number => Math.round((monotonic() - started) * 10) / 10

/** Keys due within this window of each other are written in the same batch. */
const BATCH_WINDOW_MS = 10

/** The per-key debounced, coalescing, batching write queue. */
export interface OperationQueue {
  /** Queues the latest operation for a key, replacing any earlier one and restarting only its debounce. */
  enqueue(slice: string, id: ItemId, op: 'put' | 'delete', value: unknown): void
  /**
   * Writes everything queued now. Resolves after commit with the keys it could not write because
   * their slice is not writable; rejects with `FlushError` if a write failed.
   */
  flush(): Promise<{ readonly held: readonly QueueEntry[] }>
  /** Starts writing entries that are due (call after a slice becomes writable). */
  kick(): void
  /** Re-sorts a slice's pending entries after its debounce changed. */
  reschedule(slice: string): void
  /** Whether an operation for this key is queued and not yet written. */
  has(key: string): boolean
  /**
   * Drops the key's queued operation if it was observed before `orderedAt` (another tab's
   * change of the key, already committed, is newer) and is not being written. Whether the key
   * has no queued operation now.
   */
  supersede(key: string, orderedAt: number): boolean
  /** Number of distinct keys queued (pending, ready, retrying or in flight). */
  readonly size: number
  /** Clears every timer. Queued entries stay in memory but are not written any more. */
  dispose(): void
}

/**
 * Memory is bounded by the number of distinct dirty keys: `entries` holds one entry per key, and
 * every structure below holds a subset of it. A batch in flight keeps its own references, so a
 * key changed during a write costs at most one extra entry until that write settles.
 *
 * Instead of one timer per key, each slice keeps its pending keys in a Map ordered by their
 * last change (re-touching moves a key to the end). With one debounce per slice that is also
 * deadline order, so one timer per slice, armed for the first key, gives every key its own
 * debounce: a change restarts only that key's deadline.
 */
export function createOperationQueue(options: OperationQueueOptions): OperationQueue {
  const random = options.random ?? Math.random
  const wallClock = options.wallClock ?? Date.now
  const entries = new Map<string, QueueEntry>()
  const pending = new Map<string, Map<string, QueueEntry>>()
  const sliceTimers = new Map<string, ReturnType<typeof setTimeout>>()
  const ready = new Map<string, QueueEntry>()
  const retrying = new Map<string, QueueEntry>()
  let retryTimer: ReturnType<typeof setTimeout> | null = null
  let retryAt = Infinity
  let draining: Promise<void> | null = null
  let drainAgain = false
  let seq = 0
  let disposed = false
  const failureSinks = new Set<(error: SyncError, keys: readonly string[]) => void>()

  const sizeChanged = (): void => options.onSizeChange?.(entries.size)

  function unlink(entry: QueueEntry): void {
    if (entry.state === 'pending') pending.get(entry.slice)?.delete(entry.key)
    else if (entry.state === 'ready') ready.delete(entry.key)
    else if (entry.state === 'retry') retrying.delete(entry.key)
    // 'inflight' entries belong to their batch; the batch checks supersession when it settles.
  }

  function armSlice(slice: string): void {
    if (disposed || sliceTimers.has(slice)) return
    const first = pending.get(slice)?.values().next().value
    if (!first) return
    const delay = Math.max(0, first.dueAt - monotonic())
    sliceTimers.set(
      slice,
      setTimeout(() => {
        sliceTimers.delete(slice)
        // Keys that fall due within the next few ms join this batch instead of waking a timer of
        // their own: one transaction instead of two, at most BATCH_WINDOW_MS early.
        promoteDue(slice, monotonic() + Math.min(BATCH_WINDOW_MS, options.debounceFor(slice) / 10))
        armSlice(slice)
      }, delay),
    )
  }

  function promoteDue(slice: string, now: number): void {
    const map = pending.get(slice)
    if (!map) return
    for (const entry of map.values()) {
      if (entry.dueAt > now) break
      map.delete(entry.key)
      entry.state = 'ready'
      ready.set(entry.key, entry)
    }
    scheduleDrain()
  }

  function promoteAll(): void {
    for (const [slice, timer] of sliceTimers) {
      clearTimeout(timer)
      sliceTimers.delete(slice)
    }
    for (const map of pending.values()) {
      for (const entry of map.values()) {
        entry.state = 'ready'
        ready.set(entry.key, entry)
      }
      map.clear()
    }
    if (retryTimer) clearTimeout(retryTimer)
    retryTimer = null
    retryAt = Infinity
    for (const entry of retrying.values()) {
      entry.state = 'ready'
      ready.set(entry.key, entry)
    }
    retrying.clear()
  }

  function armRetry(): void {
    if (disposed || retrying.size === 0) return
    let earliest = Infinity
    for (const entry of retrying.values()) earliest = Math.min(earliest, entry.dueAt)
    if (retryTimer && earliest >= retryAt) return
    if (retryTimer) clearTimeout(retryTimer)
    retryAt = earliest
    retryTimer = setTimeout(
      () => {
        retryTimer = null
        retryAt = Infinity
        const now = monotonic()
        for (const entry of retrying.values()) {
          if (entry.dueAt > now) continue
          retrying.delete(entry.key)
          entry.state = 'ready'
          ready.set(entry.key, entry)
        }
        armRetry()
        scheduleDrain()
      },
      Math.max(0, earliest - monotonic()),
    )
  }

  const backoff = (attempts: number): number => backoffDelay(attempts, options.retry.baseMs, options.retry.maxMs, random)

  /** FIFO batch of writable ready entries, at most the smallest batchSize of the slices in it. */
  function takeBatch(): QueueEntry[] {
    const batch: QueueEntry[] = []
    let limit = Infinity
    for (const entry of ready.values()) {
      if (!options.canWrite(entry.slice)) continue
      const nextLimit = Math.min(limit, options.batchSizeFor(entry.slice))
      if (batch.length >= nextLimit) break
      limit = nextLimit
      batch.push(entry)
    }
    for (const entry of batch) {
      ready.delete(entry.key)
      entry.state = 'inflight'
    }
    return batch
  }

  function report(batch: BatchReport): void {
    try {
      options.onBatch(batch)
    } catch {
      // A reporting failure must never stall the queue.
    }
  }

  async function drainLoop(): Promise<void> {
    for (;;) {
      drainAgain = false
      const batch = takeBatch()
      if (batch.length === 0) {
        if (drainAgain) continue
        return
      }
      const started = monotonic()
      try {
        const result = await options.write(batch)
        // Written or permanently rejected: either way the entry leaves the queue, unless a
        // newer operation for its key arrived meanwhile.
        for (const entry of batch) if (entries.get(entry.key) === entry) entries.delete(entry.key)
        for (const { entry, error } of result.rejected) for (const sink of failureSinks) sink(error, [entry.key])
        report({ entries: batch, durationMs: elapsed(started), error: null, rejected: result.rejected, superseded: result.superseded ?? [] })
      } catch (caught) {
        // `write` rejects with SyncErrors only; the mapping guards a broken promise of that rule.
        const error = toSyncError(caught, 'writing a batch failed')
        const keys: string[] = []
        for (const entry of batch) {
          keys.push(entry.key)
          // A newer operation for the key supersedes the failed one; only the latest is kept.
          if (entries.get(entry.key) !== entry) continue
          entry.attempts += 1
          entry.state = 'retry'
          entry.dueAt = monotonic() + backoff(entry.attempts)
          retrying.set(entry.key, entry)
        }
        for (const sink of failureSinks) sink(error, keys)
        report({ entries: batch, durationMs: elapsed(started), error, rejected: [], superseded: [] })
        armRetry()
      }
      sizeChanged()
    }
  }

  function scheduleDrain(): Promise<void> {
    if (disposed) return Promise.resolve()
    if (draining) {
      drainAgain = true
      return draining
    }
    draining = drainLoop().finally(() => {
      draining = null
      try {
        options.onIdle?.()
      } catch {
        // A listener failure must never stall the queue.
      }
    })
    return draining
  }

  return {
    enqueue(slice, id, op, value) {
      if (disposed) return
      const key = itemKey(slice, id)
      const previous = entries.get(key)
      if (previous) unlink(previous)
      const entry: QueueEntry = {
        key,
        slice,
        id,
        op,
        value,
        seq: ++seq,
        observedAt: wallClock(),
        orderedAt: crossTabClock(),
        attempts: 0,
        state: 'pending',
        dueAt: monotonic() + options.debounceFor(slice),
      }
      entries.set(key, entry)
      let map = pending.get(slice)
      if (!map) pending.set(slice, (map = new Map()))
      map.set(key, entry)
      armSlice(slice)
      if (!previous) sizeChanged()
    },
    async flush() {
      if (disposed) return { held: [] }
      const targets = new Map(entries)
      const failures: SyncError[] = []
      const sink = (error: SyncError, keys: readonly string[]): void => {
        if (keys.some((key) => targets.has(key))) failures.push(error)
      }
      failureSinks.add(sink)
      try {
        promoteAll()
        // Loop: a batch already in flight when flush began must settle, then the rest is written.
        while (draining) await draining
        await scheduleDrain()
        while (draining) await draining
      } finally {
        failureSinks.delete(sink)
      }
      if (failures.length > 0) throw new FlushError(failures)
      // Entries of slices that may not be written yet (hydrating, failed migration).
      const held = [...targets].filter(([key, entry]) => entries.get(key) === entry && entry.state === 'ready')
      return { held: held.map(([, entry]) => entry) }
    },
    kick() {
      void scheduleDrain()
    },
    reschedule(slice) {
      const map = pending.get(slice)
      if (!map) return
      const sorted = [...map.values()].sort((a, b) => a.dueAt - b.dueAt)
      map.clear()
      for (const entry of sorted) map.set(entry.key, entry)
      const timer = sliceTimers.get(slice)
      if (timer) clearTimeout(timer)
      sliceTimers.delete(slice)
      armSlice(slice)
    },
    has(key) {
      return entries.has(key)
    },
    supersede(key, orderedAt) {
      const entry = entries.get(key)
      if (!entry) return true
      if (entry.state === 'inflight' || entry.orderedAt >= orderedAt) return false
      unlink(entry)
      entries.delete(key)
      sizeChanged()
      return true
    },
    get size() {
      return entries.size
    },
    dispose() {
      disposed = true
      for (const timer of sliceTimers.values()) clearTimeout(timer)
      sliceTimers.clear()
      if (retryTimer) clearTimeout(retryTimer)
      retryTimer = null
    },
  }
}
