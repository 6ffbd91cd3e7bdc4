import {
  HttpError,
  InvalidOptionError,
  isAuthError,
  isHttpError,
  toSyncError,
  type SyncError,
} from '../errors'
import type { QueueEntry } from '../queue'
import {
  DEAD_LETTER_STORE,
  META_STORE,
  OUTBOX_STORE,
  VERSIONS_STORE,
  type ItemId,
  type LocalStore,
  type StorageOp,
} from '../storage/types'
import { createApiClient, type ApiClient } from './client'
import type { ConflictStrategy, ServerVersion, SyncConflict } from './conflicts'
import type { RemoteOptions } from './options'
import type { PersistenceEvent } from '../persistence/events'
import type { RemoteOperation, RemoteRecord } from './protocol'
import { syncActions, type DeadLetter, type SyncEngineHandle } from './syncSlice'

/** An operation waiting for the server. Its value is read from the slice's store at push time. */
export interface OutboxEntry {
  readonly key: string
  readonly slice: string
  readonly collection: string
  readonly id: ItemId
  readonly type: 'put' | 'delete'
  readonly opId: string
  readonly clientTime: number
  /** Orders the outbox across restarts. */
  readonly seq: number
  /**
   * opIds this entry superseded by coalescing. One of them may have reached the server without
   * its acknowledgement being stored (a crash, a timeout); a conflict caused by it is ours, not
   * another client's.
   */
  readonly prevOpIds: readonly string[]
  /** Parked by a `manual` conflict: not pushed until the conflict is resolved. */
  readonly parked?: boolean
}

/** One slice as the engine sees it. */
export interface HostSlice {
  readonly name: string
  readonly storeName: string
  readonly syncToFlask: boolean
  readonly conflict: ConflictStrategy | undefined
}

/** What the sync engine needs from the persistence instance it belongs to. */
export interface SyncHost {
  storage(): LocalStore
  slices(): readonly HostSlice[]
  dispatch(action: { type: string }): void
  /** Applies server items to the Redux state without queueing them to be written back. */
  applyToState(slice: string, puts: ReadonlyArray<readonly [ItemId, unknown]>, deletes: readonly ItemId[]): void
  /** The item as it is in the Redux state now; `undefined` if absent. */
  readLocal(slice: string, id: ItemId): unknown
  /** Every `[id, item]` of a slice's collection in the Redux state. */
  localEntries(slice: string): Array<[ItemId, unknown]>
  /** These items as they are in the Redux state now, keyed by `String(id)` (absent ones are left out). O(ids) except in array slices. */
  readLocalMany(slice: string, ids: readonly ItemId[]): Map<string, unknown>
  /** Turns a server id (always a string) into the slice's id (a number for numeric-id slices). */
  localId(slice: string, remoteId: string, value?: unknown): ItemId
  /** Writes the local queue now. */
  flushLocal(): Promise<void>
  /** Whether a local change of this key waits in the debounce queue. */
  isQueued(key: string): boolean
  reportError(error: SyncError): void
  /** The slice's `validate` verdict on a server item: a `ValidationError`, or `null` when valid. */
  validate(slice: string, id: ItemId, value: unknown): SyncError | null
  /** Reports operations (pushes, pulls, health checks) and depth changes. */
  emit(event: PersistenceEvent): void
}

/** The remote half of an instance. */
export interface SyncEngine extends SyncEngineHandle {
  /** Loads the outbox, versions and cursor; then checks the connection (which drains the outbox). */
  start(): Promise<void>
  /** Outbox writes for a batch of local writes, to go into the same transaction. */
  outboxOpsFor(batch: readonly QueueEntry[]): { ops: StorageOp[]; entries: OutboxEntry[] }
  /** Tells the engine those entries are committed. The host calls `drain()` once its local queue is idle. */
  committed(entries: readonly OutboxEntry[]): void
  /** Pushes the outbox now (no-op while disconnected). */
  drain(): Promise<void>
  /** Re-reads the outbox, versions and cursor from storage (another tab may have changed them). */
  reload(): Promise<void>
  resolve(key: string, resolution: 'local' | 'server' | 'merged', value?: unknown): Promise<void>
  retryDeadLetter(opId: string): Promise<void>
  discardDeadLetter(opId: string): Promise<void>
  readonly connected: boolean
  readonly outboxDepth: number
  /** How far the server's clock is ahead of this device's (ms), as the last good health check measured. */
  readonly clockOffsetMs: number
  readonly deadLetterCount: number
  /**
   * Whether committed local changes are pushed as soon as the local queue is idle (default), or
   * only when `drain()` is called (auto-sync with `syncOnChange: false` turns it off).
   */
  autoPush: boolean
  dispose(): void
}

const CURSOR_KEY = '__cursor'

/** Writes for one transaction, and the in-memory changes to make once it committed. */
interface Step {
  readonly writes: StorageOp[]
  readonly after: Array<() => void>
}

const newStep = (): Step => ({ writes: [], after: [] })

interface StoredDeadLetter {
  readonly entry: OutboxEntry
  readonly letter: DeadLetter
}

interface StoredCursor {
  readonly cursor: string
  readonly collections: readonly string[]
}

function randomId(): string {
  const c = globalThis.crypto
  if (c && typeof c.randomUUID === 'function') return c.randomUUID()
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}-${Math.random().toString(36).slice(2)}`
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null

/**
 * The sync engine: a durable outbox pushed in batches, incremental and full pulls, conflict
 * resolution, health checks with backoff.
 *
 * Rules it keeps:
 * - An outbox entry is written in the same transaction as its local write (see `outboxOpsFor`)
 *   and removed only after the server acknowledged it, by a conditional delete that leaves a
 *   newer entry for the same key alone.
 * - The cursor moves only in the transaction that commits the changes it covers.
 * - Retries live here, nowhere else: the HTTP client never retries (except once after a 401 refresh).
 * - A transient failure halts the outbox and keeps everything; a permanent rejection moves that
 *   one operation to the dead-letter list; nothing is dropped silently.
 * - Network work never happens inside a transaction.
 */
export function createSyncEngine(host: SyncHost, options: RemoteOptions): SyncEngine {
  const client: ApiClient = createApiClient(options)
  const batchSize = options.batchSize ?? 100
  const pageSize = options.pullPageSize ?? 500
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 500) {
    throw new InvalidOptionError('remote.batchSize', 'must be an integer from 1 to 500')
  }
  if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > 1000) {
    throw new InvalidOptionError('remote.pullPageSize', 'must be an integer from 1 to 1000')
  }
  const retryBase = options.retry?.initialDelayMs ?? 1000
  const retryMax = Math.max(retryBase, options.retry?.maxDelayMs ?? 60_000)
  const clientId = options.clientId ?? randomId()

  /** Insertion order is seq order: a coalesced entry is deleted and re-inserted at the end. */
  const outbox = new Map<string, OutboxEntry>()
  const versions = new Map<string, number>()
  const deadLetters = new Map<string, StoredDeadLetter>()
  const conflicts = new Map<string, { conflict: SyncConflict; entry: OutboxEntry | null; server: RemoteRecord | null }>()
  const inflight = new Set<string>()
  let cursor: StoredCursor | null = null
  let seq = 0
  let connected = false
  let disposed = false
  let loaded: Promise<void> | null = null
  let draining: Promise<void> | null = null
  let drainAgain = false
  let failures = 0
  let healthTimer: ReturnType<typeof setTimeout> | null = null
  let pushRetryTimer: ReturnType<typeof setTimeout> | null = null
  let pulling: Promise<void> | null = null
  const appliedSinceCommit: Array<{ slice: string; puts: ItemId[]; deletes: ItemId[] }> = []
  /** What server data replaced in the Redux state since the last commit, put back if that commit fails. */
  const replacedSinceCommit: Array<{ slice: string; id: ItemId; before: unknown; applied: unknown }> = []
  /**
   * Pushing and pulling never interleave: a pull deciding a conflict while a push sends the same
   * key (with the version the pull just learned) would overwrite the server's version silently.
   * Everything that reads or changes the outbox against the server runs through this lock.
   */
  let lock: Promise<unknown> = Promise.resolve()
  function exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = lock.then(work, work)
    lock = run.catch(() => undefined)
    return run
  }

  /** Set while a bulk push reports progress; counts batches pushed by any drain. */
  let pushProgress: ((count: number) => void) | null = null

  const syncedSlices = (): HostSlice[] => host.slices().filter((s) => s.syncToFlask)
  const sliceByCollection = (collection: string): HostSlice | undefined =>
    host.slices().find((s) => s.storeName === collection && s.syncToFlask)
  const sliceByName = (name: string): HostSlice | undefined => host.slices().find((s) => s.name === name)

  const backoff = (attempt: number): number => {
    const ceiling = Math.min(retryMax, retryBase * 2 ** Math.min(attempt, 30))
    return ceiling / 2 + Math.random() * (ceiling / 2)
  }

  const publishOutbox = (): void => {
    host.dispatch(syncActions.outboxChanged(outbox.size))
    host.emit({ type: 'depth' })
  }
  const operation = (kind: 'push' | 'pull' | 'health', items: number, started: number, error: SyncError | null): void =>
    host.emit({
      type: 'operation',
      operation: { kind, slice: null, items, durationMs: Date.now() - started, ok: error === null, error: error ? error.toJSON() : null, at: Date.now() },
    })
  const publishDeadLetters = (): void => host.dispatch(syncActions.deadLettersChanged([...deadLetters.values()].map((d) => d.letter)))

  // ------------------------------------------------------------ loading

  async function load(): Promise<void> {
    const storage = host.storage()
    const [entries, known, dead, stored] = await Promise.all([
      storage.readAll(OUTBOX_STORE),
      storage.readAll(VERSIONS_STORE),
      storage.readAll(DEAD_LETTER_STORE),
      storage.get(META_STORE, CURSOR_KEY),
    ])
    const sorted = entries.map(([, v]) => v as OutboxEntry).filter(isObject).sort((a, b) => a.seq - b.seq)
    for (const entry of sorted) {
      // Conflicts live in memory only; a parked entry goes out again and is re-detected.
      outbox.set(entry.key, entry.parked ? { ...entry, parked: false } : entry)
      seq = Math.max(seq, entry.seq)
    }
    for (const [key, version] of known) if (typeof version === 'number') versions.set(String(key), version)
    for (const [, value] of dead) {
      const stored = value as StoredDeadLetter | undefined
      if (isObject(stored?.letter)) deadLetters.set(stored.letter.opId, stored)
    }
    if (isObject(stored) && typeof stored.cursor === 'string') cursor = stored as unknown as StoredCursor
    publishOutbox()
    if (deadLetters.size > 0) publishDeadLetters()
  }

  /** Re-reads the outbox, versions, dead letters and cursor: other tabs may have changed them. */
  async function reload(): Promise<void> {
    await ensureLoaded()
    await exclusive(() => reloadUnlocked())
  }

  async function reloadUnlocked(): Promise<void> {
    outbox.clear()
    versions.clear()
    deadLetters.clear()
    await load()
    // Conflicts live in memory: keep the entries of open ones parked.
    for (const [key, open] of conflicts) {
      const entry = outbox.get(key)
      if (entry && open.conflict.resolution === 'pending') outbox.set(key, { ...entry, parked: true })
    }
  }

  function ensureLoaded(): Promise<void> {
    loaded ??= load().catch((error: unknown) => {
      loaded = null
      throw error
    })
    return loaded
  }

  // ------------------------------------------------------------ connection

  function setConnected(value: boolean, error?: SyncError): void {
    const changed = value !== connected
    connected = value
    if (changed || error) host.dispatch(syncActions.connectionChanged({ connected: value, error: error ? error.message : null }))
    if (changed) host.emit({ type: 'connection', connected: value })
    if (value) {
      // A healthy answer alone does not reset the backoff while pushes keep failing (a proxy
      // answering health but mangling pushes must not be hammered); a successful push does.
      if (outbox.size === 0) failures = 0
      if (healthTimer) clearTimeout(healthTimer)
      healthTimer = null
      if (changed) void drain()
    } else {
      scheduleHealthCheck()
    }
  }

  function scheduleHealthCheck(): void {
    if (disposed || healthTimer) return
    const delay = backoff(failures++)
    healthTimer = setTimeout(() => {
      healthTimer = null
      void checkConnection()
    }, delay)
  }

  /** The device clock, and how far the server's clock is ahead of it (learned from health checks). */
  const now = options.now ?? Date.now
  let clockOffset = 0
  let bestRoundTrip = Infinity

  async function checkConnection(): Promise<boolean> {
    const started = Date.now()
    try {
      const sent = now()
      const health = await client.health()
      const received = now()
      // The estimate is off by at most half the round trip; a faster round trip is a better one,
      // but a newer one wins after a while (the device clock may have been corrected).
      const roundTrip = received - sent
      if (Number.isFinite(health.serverTime) && roundTrip >= 0 && (roundTrip <= bestRoundTrip * 2 || roundTrip < 1000)) {
        clockOffset = health.serverTime - (sent + received) / 2
        bestRoundTrip = Math.min(bestRoundTrip, roundTrip)
      }
      operation('health', 0, started, null)
      setConnected(true)
      return true
    } catch (caught) {
      const error = toSyncError(caught, 'health check failed')
      operation('health', 0, started, error)
      setConnected(false, error)
      return false
    }
  }

  // `online` is a hint to look again, never the truth (FIELD-NOTES: navigator.onLine lies).
  const onOnline = (): void => {
    void checkConnection()
  }
  const target = globalThis as { addEventListener?: (t: string, l: () => void) => void; removeEventListener?: (t: string, l: () => void) => void }
  target.addEventListener?.('online', onOnline)

  // ------------------------------------------------------------ outbox writes (same tx as local)

  function outboxOpsFor(batch: readonly QueueEntry[]): { ops: StorageOp[]; entries: OutboxEntry[] } {
    const ops: StorageOp[] = []
    const entries: OutboxEntry[] = []
    for (const item of batch) {
      const slice = sliceByName(item.slice)
      if (!slice?.syncToFlask) continue
      const entry = nextEntry(item.key, slice, item.id, item.op)
      entries.push(entry)
      ops.push({ type: 'put', store: OUTBOX_STORE, key: entry.key, value: entry, ref: { slice: item.slice, key: item.key } })
    }
    return { ops, entries }
  }

  function nextEntry(key: string, slice: HostSlice, id: ItemId, type: 'put' | 'delete'): OutboxEntry {
    const previous = outbox.get(key)
    return {
      key,
      slice: slice.name,
      collection: slice.storeName,
      id,
      type,
      opId: randomId(),
      // On the server's clock, so last-write-wins compares two devices fairly.
      clientTime: Math.round(now() + clockOffset),
      seq: ++seq,
      prevOpIds: previous ? [previous.opId, ...previous.prevOpIds].slice(0, 5) : [],
    }
  }

  function remember(entry: OutboxEntry): void {
    outbox.delete(entry.key)
    outbox.set(entry.key, entry)
  }

  function committed(entries: readonly OutboxEntry[]): void {
    if (entries.length === 0) return
    for (const entry of entries) remember(entry)
    publishOutbox()
  }

  // ------------------------------------------------------------ pushing

  function drain(): Promise<void> {
    if (draining) {
      drainAgain = true
      return draining
    }
    draining = (async () => {
      try {
        await ensureLoaded()
        let pushed = 0
        const pushable = (): boolean => [...outbox.values()].some((e) => !e.parked)
        if (connected && pushable()) host.dispatch(syncActions.syncActivity({ phase: 'start' }))
        do {
          drainAgain = false
          await exclusive(() =>
            drainLoop((count) => {
              pushed += count
            }),
          )
        } while (drainAgain && connected && !disposed)
        // A background push is a sync too: report it like the thunks do.
        if (pushed > 0 && connected && !pushable()) host.dispatch(syncActions.syncActivity({ phase: 'success', time: Date.now() }))
      } catch (caught) {
        host.reportError(toSyncError(caught, 'pushing the outbox failed'))
      }
    })().finally(() => {
      draining = null
    })
    return draining
  }

  async function drainLoop(onBatch?: (count: number) => void): Promise<void> {
    let limit = batchSize
    for (;;) {
      if (disposed || !connected) return
      const batch: OutboxEntry[] = []
      for (const entry of outbox.values()) {
        if (batch.length >= limit) break
        if (!entry.parked && !inflight.has(entry.key)) batch.push(entry)
      }
      if (batch.length === 0) return
      const outcome = await pushBatch(batch)
      if (outcome === 'stop') return
      limit = outcome === 'split' ? Math.max(1, Math.ceil(batch.length / 2)) : batchSize
      if (outcome === 'ok') {
        onBatch?.(batch.length)
        pushProgress?.(batch.length)
      }
    }
  }

  async function readValues(batch: readonly OutboxEntry[]): Promise<Map<string, unknown>> {
    const values = new Map<string, unknown>()
    const byStore = new Map<string, OutboxEntry[]>()
    // Deletes too: what is pushed is what the local store holds now (see toOperation).
    for (const entry of batch) {
      const list = byStore.get(entry.collection) ?? []
      list.push(entry)
      byStore.set(entry.collection, list)
    }
    for (const [store, entries] of byStore) {
      const found = await host.storage().getMany(store, entries.map((e) => e.id))
      entries.forEach((entry, i) => values.set(entry.key, found[i]))
    }
    return values
  }

  function toOperation(entry: OutboxEntry, values: Map<string, unknown>): RemoteOperation {
    const value = values.get(entry.key)
    // The local store is the truth, not the entry's type: a local write and its entry commit
    // together, but an entry written by another path (a merged conflict, a retried dead letter,
    // another tab) can race a newer local change of the key and carry a stale type. So an item
    // that exists locally is put, a missing one deleted, whatever the entry says.
    const type = value !== undefined ? 'put' : 'delete'
    return {
      opId: entry.opId,
      collection: entry.collection,
      id: String(entry.id),
      type,
      ...(type === 'put' ? { value } : {}),
      baseVersion: versions.get(entry.key) ?? null,
      clientTime: entry.clientTime,
    }
  }

  async function pushBatch(batch: readonly OutboxEntry[]): Promise<'ok' | 'split' | 'stop'> {
    for (const entry of batch) inflight.add(entry.key)
    try {
      const values = await readValues(batch)
      const ops = batch.map((entry) => toOperation(entry, values))
      let response
      const started = Date.now()
      try {
        response = await client.push(clientId, ops)
      } catch (caught) {
        const error = toSyncError(caught, 'push failed')
        operation('push', batch.length, started, error)
        return await pushFailed(error, batch)
      }
      operation('push', batch.length, started, null)
      failures = 0
      if (!connected) setConnected(true)
      const step = newStep()
      const later: Array<() => Promise<void>> = []
      response.results.forEach((result, i) => {
        const entry = batch[i]!
        if (result.status === 'duplicate' && result.record.version <= (ops[i]!.baseVersion ?? 0)) {
          superseded(entry, result.record, step)
        } else if (result.status === 'applied' || result.status === 'duplicate') {
          acknowledge(entry, result.record.version, step)
        } else if (result.status === 'rejected') {
          bury(entry, { status: null, code: result.error.error, message: result.error.message }, step)
        } else if (result.status === 'conflict') {
          const current = result.current
          later.push(() => conflict(entry, current, 'push'))
        }
      })
      await commitStep(step)
      publishOutbox()
      for (const run of later) await run()
      return 'ok'
    } catch (caught) {
      // A local storage failure: keep everything and try again later.
      host.reportError(toSyncError(caught, 'storing push results failed'))
      schedulePushRetry()
      return 'stop'
    } finally {
      for (const entry of batch) inflight.delete(entry.key)
    }
  }

  function acknowledge(entry: OutboxEntry, version: number, step: Step): void {
    step.writes.push({ type: 'put', store: VERSIONS_STORE, key: entry.key, value: version })
    step.writes.push({ type: 'deleteIf', store: OUTBOX_STORE, key: entry.key, field: 'opId', equals: entry.opId })
    step.after.push(() => {
      versions.set(entry.key, version)
      if (outbox.get(entry.key)?.opId === entry.opId) outbox.delete(entry.key)
    })
  }

  /**
   * A replayed opId whose stored result is older than the version it was rebased on: the server
   * applied it once, its answer was lost, and another client wrote over it since. A pull then
   * met that newer version while the entry still waited, and took it for a conflict that was
   * none (the model test found it: the entry was acknowledged with its old version, and the
   * newer value, already behind the cursor, never came). Acknowledge it as the lost answer it
   * was, so nothing is applied twice, and move the cursor back to it: the next pull brings the
   * newer version, as it would have without the lost answer.
   */
  function superseded(entry: OutboxEntry, record: RemoteRecord, step: Step): void {
    acknowledge(entry, record.version, step)
    // Cursors are the seq of the last change returned (docs/protocol.md).
    if (!cursor || !(Number(cursor.cursor) > record.seq)) return
    const back: StoredCursor = { cursor: String(record.seq), collections: cursor.collections }
    step.writes.push({ type: 'put', store: META_STORE, key: CURSOR_KEY, value: back })
    step.after.push(() => {
      cursor = back
    })
  }

  function bury(entry: OutboxEntry, reason: { status: number | null; code: string; message: string }, step: Step): void {
    const letter: DeadLetter = {
      opId: entry.opId,
      key: entry.key,
      slice: entry.slice,
      id: entry.id,
      type: entry.type,
      ...reason,
      at: Date.now(),
    }
    step.writes.push({ type: 'put', store: DEAD_LETTER_STORE, key: entry.opId, value: { entry, letter } })
    step.writes.push({ type: 'deleteIf', store: OUTBOX_STORE, key: entry.key, field: 'opId', equals: entry.opId })
    step.after.push(() => {
      deadLetters.set(entry.opId, { entry, letter })
      if (outbox.get(entry.key)?.opId === entry.opId) outbox.delete(entry.key)
      publishDeadLetters()
      host.reportError(
      new HttpError(`the server rejected ${entry.key} permanently (${reason.code}); it moved to the dead-letter list`, {
        status: reason.status ?? 400,
        code: reason.code,
        method: 'POST',
        url: 'push',
          slice: entry.slice,
          key: entry.key,
        }),
      )
    })
  }

  async function pushFailed(error: SyncError, batch: readonly OutboxEntry[]): Promise<'ok' | 'split' | 'stop'> {
    host.dispatch(syncActions.syncActivity({ phase: 'error', error: error.message }))
    if (isHttpError(error) && !error.retryable && !isAuthError(error) && error.status !== 409) {
      // Permanent for this request. Split the batch to find the one operation the server refuses;
      // only that one goes to the dead-letter list.
      if (batch.length > 1) return 'split'
      const step = newStep()
      bury(batch[0]!, { status: error.status, code: error.code ?? `http_${error.status}`, message: error.message }, step)
      await commitStep(step)
      publishOutbox()
      return 'ok'
    }
    host.reportError(error)
    if (isAuthError(error) || isHttpError(error)) {
      // The server answers, but not with success: keep the outbox and try again with backoff.
      schedulePushRetry()
      return 'stop'
    }
    setConnected(false, error)
    return 'stop'
  }

  function schedulePushRetry(): void {
    if (disposed || pushRetryTimer) return
    pushRetryTimer = setTimeout(() => {
      pushRetryTimer = null
      void drain()
    }, backoff(failures++))
  }

  // ------------------------------------------------------------ conflicts

  function strategyOf(slice: string): ConflictStrategy {
    return sliceByName(slice)?.conflict ?? options.conflict ?? 'server-wins'
  }

  function serverVersion(record: RemoteRecord | null): ServerVersion | null {
    if (!record) return null
    return { value: record.value, version: record.version, deleted: record.deleted, updatedAt: record.updatedAt, clientTime: record.clientTime }
  }

  async function conflict(entry: OutboxEntry, server: RemoteRecord | null, phase: 'push' | 'pull'): Promise<void> {
    if (server?.opId !== undefined && (server.opId === entry.opId || entry.prevOpIds.includes(server.opId))) {
      // The server's version was written by one of our own operations whose acknowledgement was
      // lost (a crash or a timeout after the server applied it): not a conflict. Rebase and push.
      await host.storage().commit([{ type: 'put', store: VERSIONS_STORE, key: entry.key, value: server.version }])
      versions.set(entry.key, server.version)
      if (server.opId === entry.opId && outbox.get(entry.key)?.opId === entry.opId) {
        await host.storage().commit([{ type: 'deleteIf', store: OUTBOX_STORE, key: entry.key, field: 'opId', equals: entry.opId }])
        if (outbox.get(entry.key)?.opId === entry.opId) outbox.delete(entry.key)
        publishOutbox()
      } else {
        drainAgain = true
      }
      return
    }
    const strategy = strategyOf(entry.slice)
    const local = host.readLocal(entry.slice, entry.id)
    // When the local change was made: that of the key's latest entry. A local change that
    // committed while `entry` was on the wire replaced it in the outbox, and `local` is that
    // change; judging it by the older entry's time let an earlier write of another device beat
    // it under last-write-wins (the model test found it).
    const localTime = (outbox.get(entry.key) ?? entry).clientTime
    let resolution: SyncConflict['resolution']
    if (strategy === 'manual') {
      resolution = 'pending'
      // Parked in memory only: `load()` unparks stored entries anyway (conflicts live in memory),
      // and storing a parked copy of `entry` could overwrite a newer entry that a local change
      // committed meanwhile, so that change would never be pushed. A newer entry stays
      // unparked: it goes out, meets the same conflict and is parked then.
      const current = outbox.get(entry.key)
      if (current?.opId === entry.opId) remember({ ...current, parked: true })
    } else if (strategy === 'server-wins') {
      resolution = 'server'
    } else if (strategy === 'client-wins') {
      resolution = 'client'
    } else if (strategy === 'last-write-wins') {
      resolution = localTime > (server?.clientTime ?? 0) ? 'client' : 'server'
    } else {
      resolution = 'merged'
    }
    const record: SyncConflict = {
      key: entry.key,
      slice: entry.slice,
      id: entry.id,
      phase,
      strategy: typeof strategy === 'function' ? 'custom' : strategy,
      local: local === undefined ? null : local,
      localDeleted: local === undefined,
      localTime,
      server: serverVersion(server),
      detectedAt: Date.now(),
      resolution,
    }
    conflicts.set(entry.key, { conflict: record, entry, server })
    if (resolution === 'pending') {
      // Parked: it stays in state until the app resolves it.
      host.dispatch(syncActions.conflictChanged(record))
      notifyConflict(record)
      return
    }
    if (resolution === 'merged' && typeof strategy === 'function') {
      let merged: unknown
      try {
        merged = strategy({
          slice: entry.slice,
          id: entry.id,
          local: local === undefined ? null : local,
          server: server && !server.deleted ? server.value : null,
          serverVersion: server?.version ?? 0,
          localTime,
          serverTime: server?.clientTime ?? 0,
        })
      } catch (caught) {
        host.reportError(toSyncError(caught, `the merge function for slice "${entry.slice}" threw; the server's version is kept`))
        await settle(entry.key, 'server')
        return
      }
      await settle(entry.key, 'merged', merged)
      return
    }
    await settle(entry.key, resolution)
  }

  function notifyConflict(record: SyncConflict): void {
    try {
      options.onConflict?.(record)
    } catch (caught) {
      host.reportError(toSyncError(caught, 'onConflict threw'))
    }
  }

  /** Applies a decision to a recorded conflict. */
  async function settle(key: string, resolution: 'server' | 'client' | 'merged', merged?: unknown): Promise<void> {
    const open = conflicts.get(key)
    if (!open) return
    const { entry, server } = open
    const slice = sliceByName(open.conflict.slice)
    if (!slice) return
    const step = newStep()
    const { writes, after } = step
    const serverVersionNumber = server?.version
    writes.push(
      serverVersionNumber === undefined
        ? { type: 'delete', store: VERSIONS_STORE, key }
        : { type: 'put', store: VERSIONS_STORE, key, value: serverVersionNumber },
    )
    after.push(() => {
      if (serverVersionNumber === undefined) versions.delete(key)
      else versions.set(key, serverVersionNumber)
    })
    if (resolution === 'server') {
      if (entry) {
        writes.push({ type: 'deleteIf', store: OUTBOX_STORE, key, field: 'opId', equals: entry.opId })
        after.push(() => {
          if (outbox.get(key)?.opId === entry.opId) outbox.delete(key)
        })
      }
      applyRecords(slice, server && !server.deleted ? [[open.conflict.id, server.value]] : [], server && !server.deleted ? [] : [open.conflict.id], writes)
    } else if (resolution === 'client') {
      // The latest entry of the key goes out again, based on the server's version (above). It
      // is not written back: `parked` is never read from storage, and a copy read before this
      // commit would overwrite a newer entry that a local change commits meanwhile (a delete
      // re-created by the app was pushed as the delete: FC_SEED=3 of the model test).
      if (outbox.has(key)) {
        after.push(() => {
          const latest = outbox.get(key)
          if (latest?.parked) remember({ ...latest, parked: false })
        })
      } else if (entry) {
        // The entry is gone from the outbox (another tab reloaded it away): store it again so
        // the local version is still pushed, unless a local change stored a newer one by then.
        const copy = { ...entry, parked: false }
        writes.push({ type: 'put', store: OUTBOX_STORE, key, value: copy })
        after.push(() => {
          if (!outbox.has(key)) remember(copy)
        })
      }
    } else {
      const id = open.conflict.id
      const fresh = nextEntry(key, slice, id, merged === null ? 'delete' : 'put')
      writes.push({ type: 'put', store: OUTBOX_STORE, key, value: fresh })
      after.push(() => remember(fresh))
      if (merged === null) applyRecords(slice, [], [id], writes)
      else applyRecords(slice, [[id, merged]], [], writes)
    }
    await commitStep(step)
    conflicts.delete(key)
    const settled: SyncConflict = { ...open.conflict, resolution }
    host.dispatch(syncActions.conflictChanged(settled))
    // A parked conflict was announced when it was detected; others are announced once settled.
    if (open.conflict.resolution !== 'pending') notifyConflict(settled)
    publishOutbox()
    if (resolution !== 'server') void drain()
  }

  /**
   * Applies server items to the Redux state now and adds their local writes to `writes`, so the
   * caller commits them with whatever else belongs to the same step (versions, the cursor).
   * Keys with a local change still in the debounce queue are left alone: that change is newer,
   * and its push will meet the server's version as a conflict.
   */
  function applyRecords(slice: HostSlice, puts: Array<[ItemId, unknown]>, deletes: ItemId[], writes: StorageOp[]): void {
    const keyOf = (id: ItemId): string => `${slice.name}:${id}`
    const p = puts.filter(([id, value]) => {
      if (host.isQueued(keyOf(id))) return false
      // Server data that fails the slice's schema is neither merged nor written.
      const invalid = host.validate(slice.name, id, value)
      if (invalid) host.reportError(invalid)
      return invalid === null
    })
    const d = deletes.filter((id) => !host.isQueued(keyOf(id)))
    if (p.length === 0 && d.length === 0) return
    const shown = host.readLocalMany(slice.name, [...p.map(([id]) => id), ...d])
    for (const [id, value] of p) replacedSinceCommit.push({ slice: slice.name, id, before: shown.get(String(id)), applied: value })
    for (const id of d) replacedSinceCommit.push({ slice: slice.name, id, before: shown.get(String(id)), applied: undefined })
    host.applyToState(slice.name, p, d)
    for (const [id, value] of p) writes.push({ type: 'put', store: slice.storeName, key: id, value })
    for (const id of d) writes.push({ type: 'delete', store: slice.storeName, key: id })
    appliedSinceCommit.push({ slice: slice.name, puts: p.map(([id]) => id), deletes: d })
  }

  /**
   * Commits a step's writes in one transaction, and only then updates the in-memory mirrors
   * (outbox, versions, dead letters): if the commit fails, memory still matches storage and
   * the step is simply tried again. Then tells other tabs which items server data changed.
   */
  async function commitStep(step: Step): Promise<void> {
    const changes = appliedSinceCommit.splice(0)
    const replaced = replacedSinceCommit.splice(0)
    try {
      await host.storage().commit(step.writes)
    } catch (error) {
      restoreState(replaced)
      throw error
    }
    for (const apply of step.after) apply()
    if (changes.length > 0) host.emit({ type: 'committed', changes })
  }

  /**
   * The commit of server data failed: put back what the state showed before, so it never shows
   * data that neither IndexedDB nor the known versions have (an edit of it would be pushed
   * without its base version and lose as a false conflict). An item changed since is left alone.
   */
  function restoreState(replaced: ReadonlyArray<{ slice: string; id: ItemId; before: unknown; applied: unknown }>): void {
    // The first record of a key knows what the state showed before the step began.
    const bySlice = new Map<string, Map<string, (typeof replaced)[number]>>()
    for (const record of replaced) {
      const keys = bySlice.get(record.slice) ?? new Map<string, (typeof replaced)[number]>()
      if (!keys.has(String(record.id))) keys.set(String(record.id), record)
      bySlice.set(record.slice, keys)
    }
    for (const [slice, keys] of bySlice) {
      const records = [...keys.values()]
      const shown = host.readLocalMany(slice, records.map((r) => r.id))
      const puts: Array<[ItemId, unknown]> = []
      const deletes: ItemId[] = []
      for (const { id, before, applied } of records) {
        if (host.isQueued(`${slice}:${id}`) || shown.get(String(id)) !== applied) continue
        if (before === undefined) deletes.push(id)
        else puts.push([id, before])
      }
      if (puts.length > 0 || deletes.length > 0) host.applyToState(slice, puts, deletes)
    }
  }

  // ------------------------------------------------------------ pulling

  /**
   * Applies server records, then commits them with `extra` (the cursor) in one transaction.
   * With `everything` (the complete list of a full pull), local items the server no longer has
   * are deleted, unless they are local-only.
   */
  async function applyPulled(records: readonly RemoteRecord[], extra: Step | null, everything: readonly RemoteRecord[] | null): Promise<void> {
    const step = newStep()
    const { writes, after } = step
    const pending: Array<[OutboxEntry, RemoteRecord]> = []
    const bySlice = new Map<HostSlice, { puts: Array<[ItemId, unknown]>; deletes: ItemId[] }>()
    for (const record of records) {
      const slice = sliceByCollection(record.collection)
      if (!slice) continue
      const id = host.localId(slice.name, record.id, record.value)
      const key = `${slice.name}:${id}`
      const known = versions.get(key)
      if (known !== undefined && record.version <= known) continue // already have it (often our own push)
      if (host.isQueued(key)) continue // a newer local change; its push decides
      const entry = outbox.get(key)
      if (entry) {
        if (!inflight.has(key)) pending.push([entry, record])
        continue
      }
      writes.push({ type: 'put', store: VERSIONS_STORE, key, value: record.version })
      after.push(() => versions.set(key, record.version))
      const group = bySlice.get(slice) ?? { puts: [], deletes: [] }
      if (record.deleted) group.deletes.push(id)
      else group.puts.push([id, record.value])
      bySlice.set(slice, group)
    }
    if (everything) {
      const seen = new Set<string>()
      for (const record of everything) {
        const slice = sliceByCollection(record.collection)
        if (slice) seen.add(`${slice.name}:${host.localId(slice.name, record.id, record.value)}`)
      }
      // Items synced before (we know their version) that the server no longer lists were deleted there.
      for (const slice of syncedSlices()) {
        for (const [id] of host.localEntries(slice.name)) {
          const key = `${slice.name}:${id}`
          if (seen.has(key) || !versions.has(key) || outbox.has(key) || host.isQueued(key)) continue
          writes.push({ type: 'delete', store: VERSIONS_STORE, key })
          after.push(() => versions.delete(key))
          const group = bySlice.get(slice) ?? { puts: [], deletes: [] }
          group.deletes.push(id)
          bySlice.set(slice, group)
        }
      }
    }
    for (const [slice, group] of bySlice) applyRecords(slice, group.puts, group.deletes, writes)
    // The cursor is committed with the data it covers, never ahead of it.
    if (extra) {
      writes.push(...extra.writes)
      after.push(...extra.after)
    }
    await commitStep(step)
    for (const [entry, record] of pending) await conflict(entry, record, 'pull')
  }

  const collections = (): string[] => syncedSlices().map((s) => s.storeName).sort()

  /** The cursor's write, plus moving the in-memory cursor, which happens only after the commit. */
  const cursorStep = (value: string): Step => {
    const next: StoredCursor = { cursor: value, collections: collections() }
    return {
      writes: [{ type: 'put', store: META_STORE, key: CURSOR_KEY, value: next }],
      after: [
        () => {
          cursor = next
        },
      ],
    }
  }

  async function pullChanges(): Promise<void> {
    pulling ??= (async () => {
      await ensureLoaded()
      await host.flushLocal()
      await exclusive(pullChangesUnlocked)
    })().finally(() => {
      pulling = null
    })
    return pulling
  }

  async function pullChangesUnlocked(): Promise<void> {
    const wanted = collections()
    // A new synced collection was never pulled: start from the beginning.
    let since = cursor && cursor.collections.join(',') === wanted.join(',') ? cursor.cursor : '0'
    for (;;) {
      const started = Date.now()
      let page
      try {
        page = await client.changes(since, { limit: pageSize, collections: wanted })
      } catch (caught) {
        operation('pull', 0, started, toSyncError(caught, 'pull failed'))
        throw caught
      }
      operation('pull', page.changes.length, started, null)
      if (!connected) setConnected(true)
      await applyPulled(page.changes, cursorStep(page.cursor), null)
      since = page.cursor
      if (!page.hasMore) break
    }
  }

  async function pullAll(): Promise<void> {
    await ensureLoaded()
    host.dispatch(syncActions.syncActivity({ phase: 'start' }))
    try {
      await host.flushLocal()
      await exclusive(() => pullAllUnlocked())
      host.dispatch(syncActions.syncActivity({ phase: 'success', time: Date.now() }))
    } finally {
      host.dispatch(syncActions.progressChanged(null))
    }
  }

  async function pullAllUnlocked(): Promise<void> {
    const wanted = collections()
    const started = Date.now()
    let pulled
    try {
      pulled = await client.pull(wanted)
    } catch (caught) {
      operation('pull', 0, started, toSyncError(caught, 'pull failed'))
      throw caught
    }
    operation('pull', pulled.items.length, started, null)
    const { items, cursor: next } = pulled
    if (!connected) setConnected(true)
    const total = items.length
    host.dispatch(syncActions.progressChanged({ operation: 'pull', done: 0, total }))
    const chunk = 500
    for (let done = 0; done < total || done === 0; done += chunk) {
      const part = items.slice(done, done + chunk)
      const last = done + chunk >= total
      // The deletion pass (and the cursor) come with the last chunk.
      await applyPulled(part, last ? cursorStep(next) : null, last ? items : null)
      host.dispatch(syncActions.progressChanged({ operation: 'pull', done: Math.min(total, done + chunk), total }))
      if (last) break
    }
  }

  async function pushAll(): Promise<void> {
    await ensureLoaded()
    host.dispatch(syncActions.syncActivity({ phase: 'start' }))
    try {
      await host.flushLocal()
      // Items that never reached the server (persisted before sync was configured, or whose
      // slice just turned syncToFlask on) join the outbox first.
      const writes: StorageOp[] = []
      const added: OutboxEntry[] = []
      for (const slice of syncedSlices()) {
        for (const [id] of host.localEntries(slice.name)) {
          const key = `${slice.name}:${id}`
          if (versions.has(key) || outbox.has(key)) continue
          const entry = nextEntry(key, slice, id, 'put')
          added.push(entry)
          writes.push({ type: 'put', store: OUTBOX_STORE, key, value: entry })
        }
      }
      await host.storage().commit(writes)
      for (const entry of added) remember(entry)
      publishOutbox()
      const total = [...outbox.values()].filter((e) => !e.parked).length
      let done = 0
      host.dispatch(syncActions.progressChanged({ operation: 'push', done, total }))
      // A drain started by the reconnect below (or already running) counts towards progress too.
      pushProgress = (count) => {
        done = Math.min(total, done + count)
        host.dispatch(syncActions.progressChanged({ operation: 'push', done, total }))
      }
      if (!connected && !(await checkConnection())) {
        throw toSyncError(new Error('the server is unreachable; the outbox is kept'), 'push failed')
      }
      await exclusive(() => drainLoop())
      const left = [...outbox.values()].filter((e) => !e.parked).length
      if (left > 0) throw toSyncError(new Error(`${left} operation(s) are still in the outbox`), 'push incomplete')
      host.dispatch(syncActions.syncActivity({ phase: 'success', time: Date.now() }))
    } finally {
      pushProgress = null
      host.dispatch(syncActions.progressChanged(null))
    }
  }

  // ------------------------------------------------------------ dead letters

  async function retryDeadLetter(opId: string): Promise<void> {
    const dead = deadLetters.get(opId)
    if (!dead) return
    const slice = sliceByName(dead.entry.slice)
    if (!slice) return
    const writes: StorageOp[] = [{ type: 'delete', store: DEAD_LETTER_STORE, key: opId }]
    const fresh = outbox.has(dead.entry.key) ? null : nextEntry(dead.entry.key, slice, dead.entry.id, dead.entry.type)
    if (fresh) writes.push({ type: 'put', store: OUTBOX_STORE, key: fresh.key, value: fresh })
    await host.storage().commit(writes)
    deadLetters.delete(opId)
    if (fresh) remember(fresh)
    publishDeadLetters()
    publishOutbox()
    void drain()
  }

  async function discardDeadLetter(opId: string): Promise<void> {
    if (!deadLetters.has(opId)) return
    await host.storage().commit([{ type: 'delete', store: DEAD_LETTER_STORE, key: opId }])
    deadLetters.delete(opId)
    publishDeadLetters()
  }

  return {
    isSyncEngine: true,
    async start() {
      host.dispatch(syncActions.remoteEnabled(true))
      await ensureLoaded()
      if (options.connectOnStart !== false) await checkConnection()
    },
    outboxOpsFor,
    committed,
    drain,
    reload,
    pushAll,
    pullAll,
    pullChanges,
    checkConnection,
    async resolve(key, resolution, value) {
      const open = conflicts.get(key)
      if (!open || open.conflict.resolution !== 'pending') return
      await exclusive(() => settle(key, resolution === 'local' ? 'client' : resolution, value))
    },
    retryDeadLetter,
    discardDeadLetter,
    get connected() {
      return connected
    },
    get clockOffsetMs() {
      return clockOffset
    },
    get outboxDepth() {
      return outbox.size
    },
    get deadLetterCount() {
      return deadLetters.size
    },
    autoPush: true,
    dispose() {
      disposed = true
      if (healthTimer) clearTimeout(healthTimer)
      if (pushRetryTimer) clearTimeout(pushRetryTimer)
      healthTimer = pushRetryTimer = null
      target.removeEventListener?.('online', onOnline)
    },
  }
}
