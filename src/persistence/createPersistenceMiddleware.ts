import { type Middleware, type Reducer, type StoreEnhancer, type UnknownAction } from '@reduxjs/toolkit'
import {
  DatabaseDeletedError,
  DisposedError,
  FlushError,
  HydrationError,
  InvalidItemError,
  InvalidOptionError,
  MigrationError,
  NonSerializableError,
  StorageError,
  StorageUnavailableError,
  isMigrationError,
  isNonSerializableError,
  isStorageUnavailableError,
  toSyncError,
  type SyncError,
} from '../errors'
import { createOperationQueue, type QueueEntry, type WriteResult } from './writeQueue'
import { createIdbStore } from '../storage/idbStore'
import { guardLocalStore } from '../storage/guard'
import { createMemoryStore } from '../storage/memoryStore'
import { createSyncEngine, type HostSlice, type StagedChange, type SyncEngine } from '../remote/createSyncEngine'
import type { OutboxRow } from '../remote/outbox'
import {
  DEAD_LETTER_STORE,
  META_STORE,
  OUTBOX_STORE,
  VERSIONS_STORE,
  type ItemId,
  type StoreTransaction,
  type TransactionalStore,
  type StorageOp,
} from '../storage/types'
import { findNonSerializable, stripDangerousKeys } from '../utils/serializable'
import { createEmitter } from '../utils/emitter'
import { unref } from '../utils/unref'
import type { ChannelLike } from '../core/ports'
import {
  ACTION_PREFIX,
  discardDeadLetter,
  getPersistenceInstance,
  getSyncEngine,
  hydrateSlice,
  persistenceFailed,
  remoteApplied,
  resolveConflict,
  retryDeadLetter,
} from '../core/actions'
import type { ChangeSet, OperationRecord, PersistenceEvent } from '../core/events'
import { itemKey } from '../core/ids'
import {
  checkRuntimeConfig,
  checkRuntimeKeys,
  resolveOptions,
  type PersistenceOptions,
  type ResolvedSliceConfig,
  type RuntimeSliceConfig,
} from './options'
import { register, unregister } from './registry'
import {
  applyChanges,
  buildCollection,
  detectShape,
  diffCollection,
  diffIds,
  entriesOf,
  getAt,
  setAt,
  validId,
  type DiffSink,
  type ShapeKind,
} from './shapes'
import { storeWiringErrors } from './storeWiring'
import { validationError } from './validate'
import { createStatusStore, type PersistenceStatus, type SliceStatus } from './status'

/** What the library stores per slice in its meta store. */
interface SliceMeta {
  readonly version: number
}

/** Mutable runtime state of one persisted slice. */
interface SliceRuntime {
  readonly name: string
  readonly config: ResolvedSliceConfig
  kind: ShapeKind | undefined
  /** The slice state the last diff saw; a different reference means "changed since". */
  lastSeen: unknown
  /** The slice state after the last action, to tell which actions changed it. */
  current: unknown
  /** Ids the actions since the last diff said they changed (`changedIds`); `null`: diff in full. */
  hinted: Set<ItemId> | null
  lastCollection: unknown
  arrayIndex: Map<ItemId, unknown> | null
  dirty: boolean
  hydration: SliceStatus['hydration']
  /** Ids changed by actions while hydration runs; hydration keeps their state, not storage's. */
  touched: Set<ItemId> | null
  error: SyncError | null
  hydrating: Promise<void> | null
  /** Whether ids are numbers, learned from the first id seen (for ids coming back from the server). */
  numericIds: boolean | undefined
  /** Items loaded by the last hydration. */
  hydratedCount: number
  /** Why this slice cannot work in this store (no enhancer, not in the root state); it never hydrates. */
  blocked: SyncError | null
}

/**
 * A persistence instance: a Redux middleware (pass it to `configureStore`) carrying its controls.
 */
export interface PersistenceMiddleware extends Middleware {
  /** The database this instance writes to. */
  readonly dbName: string
  /**
   * A store enhancer that lets hydration replace slice collections. Add it with
   * `enhancers: (getDefault) => getDefault().concat(persistence.enhancer)`.
   */
  readonly enhancer: StoreEnhancer
  /**
   * Writes every pending operation now. Resolves after IndexedDB committed; rejects with
   * `FlushError` (the failed operations stay queued, except non-serializable ones).
   */
  flush(): Promise<void>
  /** Changes `enabled`, `syncToFlask`, `debounceMs` or `batchSize` of a slice at runtime. */
  configure(slice: string, config: RuntimeSliceConfig): void
  /** Resumes persisting a slice; changes made while it was disabled are written too. */
  enable(slice: string): void
  /** Stops persisting a slice. Operations already queued are still written. */
  disable(slice: string): void
  /** Resolves when every enabled slice is hydrated; rejects with the first hydration error. */
  whenHydrated(): Promise<void>
  /** The current status snapshot (stable while unchanged). */
  getStatus(): PersistenceStatus
  /** Calls `listener` after status changes (at most once per microtask). Returns an unsubscribe function. */
  subscribe(listener: (status: PersistenceStatus) => void): () => void
  /** Whether this instance persists a slice of that name. */
  hasSlice(slice: string): boolean
  /**
   * Flushes what is pending (errors go to `onError`), clears every timer and closes the database.
   * With `{ flush: false }` pending writes are dropped instead (what a crash or a logout does).
   */
  dispose(options?: { flush?: boolean }): Promise<void>
  /**
   * Operation and change events, for the sync monitor, auto-sync and multi-tab coordination.
   * Returns an unsubscribe function.
   */
  subscribeEvents(listener: (event: PersistenceEvent) => void): () => void
  /**
   * Logout: drops what is pending (local writes and the outbox, unsent), disposes the instance
   * and deletes its database, closing its connections first. Other tabs running this library
   * close theirs on `versionchange`, so the delete is not blocked by them; a connection that
   * never closes ends in `StorageBlockedError` after `openTimeoutMs`. Reset or reload the app's
   * state afterwards; the instance cannot be used again.
   */
  clear(): Promise<void>
  /** The remote sync engine, or `null` for a local-only instance. */
  readonly sync: SyncEngine | null
  /** Whether this instance uses the page's own `indexedDB` (so other tabs share its database). */
  readonly usesGlobalIndexedDB: boolean
  /** Applies items another tab committed to the same database (read from IndexedDB, never written back). */
  applyExternalChanges(changes: readonly ChangeSet[]): Promise<void>
}

let nextInstanceId = 1

/** What `clear()` posts on the logout channel. */
interface LogoutMessage {
  readonly type: 'logout'
  readonly dbName: string
}

/**
 * RTK's `isAction` without its plain-object check: `dispatch` itself rejects anything else that
 * reaches the reducers, and this runs for every action of the app. Thunks and other functions
 * fall through to `next` untouched.
 */
const isTypedAction = (action: unknown): action is UnknownAction =>
  typeof action === 'object' && action !== null && typeof (action as { type?: unknown }).type === 'string'

/**
 * Creates the persistence middleware: it finds the items each action added, changed or removed
 * in the configured slices, and writes them to IndexedDB through a debounced, per-key, batching
 * queue. On start it hydrates the slices from IndexedDB.
 *
 * @example
 * ```ts
 * const persistence = createPersistenceMiddleware({ slices: { files: {} } })
 * const store = configureStore({
 *   reducer: { files: filesReducer },
 *   middleware: (getDefault) => getDefault().concat(persistence),
 *   enhancers: (getDefault) => getDefault().concat(persistence.enhancer),
 * })
 * await persistence.whenHydrated()
 * ```
 */
export function createPersistenceMiddleware(options: PersistenceOptions): PersistenceMiddleware {
  const resolved = resolveOptions(options)
  const instanceId = nextInstanceId++
  const { dbName } = resolved
  const factory: IDBFactory | undefined =
    resolved.indexedDB ?? (typeof indexedDB === 'undefined' ? undefined : indexedDB)
  /** Whether this instance uses the page's own `indexedDB`, which other tabs share. */
  const usesGlobalIndexedDB = !resolved.storage && factory !== undefined && typeof indexedDB !== 'undefined' && factory === indexedDB

  let storage: TransactionalStore =
    (resolved.storage && guardLocalStore(resolved.storage)) ??
    (factory
      ? createIdbStore({
          dbName,
          openTimeoutMs: resolved.openTimeoutMs,
          factory,
          durability: resolved.durability,
          onConnectionEvent: (event) => {
            if (event !== 'deleted' || disposed) return
            reportError(
              new DatabaseDeletedError(
                `database "${dbName}" was deleted while open; what was committed before is no longer on disk (it is still in the Redux state), later changes go to a new database`,
                { dbName, reason: 'deleted' },
              ),
            )
          },
        })
      : createMemoryStore())

  const slices = new Map<string, SliceRuntime>()
  for (const [name, config] of resolved.slices) {
    slices.set(name, {
      name,
      config,
      kind: config.shape === 'auto' ? undefined : config.shape,
      lastSeen: undefined,
      current: undefined,
      hinted: null,
      lastCollection: undefined,
      arrayIndex: null,
      dirty: false,
      hydration: config.enabled ? 'pending' : 'disabled',
      // Tracked from the very first action: hydration starts only after the database opened,
      // and a change made before that must still win over storage.
      touched: config.enabled ? new Set() : null,
      error: null,
      hydrating: null,
      numericIds: config.idType === 'auto' ? undefined : config.idType === 'number',
      hydratedCount: 0,
      blocked: null,
    })
  }
  /** Enabled slices, as an array: the dispatch path walks it on every action. */
  let watched: SliceRuntime[] = [...slices.values()].filter((s) => s.config.enabled)

  const status = createStatusStore({
    dbName,
    storage: resolved.storage ? 'custom' : storage.kind,
    persistent: storage.persistent,
    hydrated: watched.length === 0,
    slices: Object.fromEntries(
      [...slices.values()].map((s): [string, SliceStatus] => [
        s.name,
        { storeName: s.config.storeName, enabled: s.config.enabled, hydration: s.hydration, version: s.config.version, error: null },
      ]),
    ),
    pendingOperations: 0,
    lastCommitTime: null,
    lastError: null,
    errorCount: 0,
    disposed: false,
  })

  const events = createEmitter<PersistenceEvent>()
  const emitOperation = (operation: Omit<OperationRecord, 'at'>): void => {
    if (events.size > 0) events.emit({ type: 'operation', operation: { ...operation, at: Date.now() } })
  }

  type Api = { getState(): unknown; dispatch(action: UnknownAction): unknown }
  let api: Api | null = null
  let enhancerInstalled = false
  let disposed = false
  let diffScheduled = false
  /** The type of the last action whose hint was used, for `verifyChangedIds` reports. */
  let lastHintedAction: string | null = null
  let started: Promise<void> | null = null

  function reportError(error: SyncError): void {
    status.update({ lastError: error.toJSON(), errorCount: status.get().errorCount + 1 })
    try {
      resolved.onError(error)
    } catch {
      // A throwing onError must not break the queue.
    }
    const target = api
    if (target) {
      // Deferred: never dispatch from inside another dispatch or a reducer.
      queueMicrotask(() => {
        if (!disposed) target.dispatch(persistenceFailed({ error: error.toJSON() }))
      })
    }
  }

  const setSliceHydration = (s: SliceRuntime, hydration: SliceStatus['hydration'], error: SyncError | null): void => {
    s.hydration = hydration
    s.error = error
    status.slice(s.name, { hydration, error: error ? error.toJSON() : null })
    const allDone = [...slices.values()].every((x) => !x.config.enabled || x.hydration === 'done' || x.hydration === 'error')
    if (allDone !== status.get().hydrated) status.update({ hydrated: allDone })
  }

  // ---------------------------------------------------------------- writing

  async function writeBatch(batch: readonly QueueEntry[]): Promise<WriteResult> {
    const rejected: Array<{ entry: QueueEntry; error: SyncError }> = []
    let writable: QueueEntry[] = []
    for (const entry of batch) {
      const problem = entry.op === 'put' ? findNonSerializable(entry.value, resolved.maxDepth) : null
      if (!problem) {
        writable.push(entry)
        continue
      }
      const where = problem.path.length ? ` at ${problem.path.join('.')}` : ''
      rejected.push({
        entry,
        error: new NonSerializableError(`${entry.key} cannot be persisted: ${problem.reason}${where}`, {
          slice: entry.slice,
          key: entry.key,
          path: problem.path,
          reason: problem.reason,
        }),
      })
    }
    // A clone failure our own check missed aborts the whole transaction: drop that one op (and
    // its outbox row) and write the rest again, so one bad value never holds back the others.
    let rows: OutboxRow[] = []
    for (;;) {
      try {
        rows = await writeItems(writable)
        break
      } catch (error) {
        const entry = isNonSerializableError(error) && error.key !== undefined ? writable.find((e) => e.key === error.key) : undefined
        if (!entry || !isNonSerializableError(error)) throw error
        rejected.push({ entry, error })
        writable = writable.filter((e) => e !== entry)
      }
    }
    engine?.committed(rows)
    if (rows.length > 0 && events.size > 0) events.emit({ type: 'local-change', count: rows.length })
    return { rejected }
  }

  /**
   * Writes the items, and the outbox rows of synced slices, in ONE transaction: an item and the
   * operation standing for it commit together or not at all.
   */
  async function writeItems(entries: readonly QueueEntry[]): Promise<OutboxRow[]> {
    if (entries.length === 0) return []
    const put = (tx: StoreTransaction): void => {
      for (const entry of entries) {
        const { storeName } = slices.get(entry.slice)!.config
        if (entry.op === 'delete') tx.delete(storeName, entry.id)
        else tx.put(storeName, entry.id, entry.value, { slice: entry.slice, key: entry.key })
      }
    }
    const synced = engine ? entries.filter((entry) => hostSliceSynced(entry.slice)) : []
    const stores = new Set(entries.map((entry) => slices.get(entry.slice)!.config.storeName))
    if (!engine || synced.length === 0) {
      await storage.commit(
        entries.map((entry): StorageOp => {
          const { storeName } = slices.get(entry.slice)!.config
          const ref = { slice: entry.slice, key: entry.key }
          return entry.op === 'delete' ? { type: 'delete', store: storeName, key: entry.id, ref } : { type: 'put', store: storeName, key: entry.id, value: entry.value, ref }
        }),
      )
      return []
    }
    for (const store of engine.stagingStores) stores.add(store)
    const changes: StagedChange[] = synced.map((entry) => ({ key: entry.key, slice: entry.slice, id: entry.id, type: entry.op, value: entry.value, observedAt: entry.observedAt }))
    return storage.transact([...stores], async (tx) => {
      put(tx)
      return engine.stage(tx, changes)
    })
  }

  const queue = createOperationQueue({
    debounceFor: (slice) => slices.get(slice)!.config.debounceMs,
    batchSizeFor: (slice) => slices.get(slice)!.config.batchSize,
    canWrite: (slice) => slices.get(slice)!.hydration === 'done',
    write: writeBatch,
    wallClock: resolved.remote?.now ?? Date.now,
    retry: resolved.retry,
    onSizeChange: (size) => {
      status.update({ pendingOperations: size })
      if (events.size > 0) events.emit({ type: 'depth' })
    },
    // Push once the local burst is written, so the outbox goes out in full batches rather than
    // one request per IndexedDB transaction.
    onIdle: () => {
      if (engine?.autoPush && engine.outboxDepth > 0) void engine.drain()
    },
    onBatch(report) {
      if (!report.error) status.update({ lastCommitTime: Date.now() })
      else reportError(report.error)
      for (const { error } of report.rejected) reportError(error)
      if (events.size === 0) return
      const sliceNames = new Set(report.entries.map((e) => e.slice))
      emitOperation({
        kind: 'write',
        slice: sliceNames.size === 1 ? [...sliceNames][0]! : null,
        items: report.entries.length - report.rejected.length,
        durationMs: report.durationMs,
        ok: report.error === null,
        error: report.error ? report.error.toJSON() : null,
      })
      for (const { entry, error } of report.rejected) {
        emitOperation({ kind: 'write', slice: entry.slice, items: 0, durationMs: 0, ok: false, error: error.toJSON() })
      }
      if (!report.error) {
        const rejected = new Set(report.rejected.map((r) => r.entry))
        const bySlice = new Map<string, { slice: string; puts: ItemId[]; deletes: ItemId[] }>()
        for (const entry of report.entries) {
          if (rejected.has(entry)) continue
          const group = bySlice.get(entry.slice) ?? { slice: entry.slice, puts: [], deletes: [] }
          if (entry.op === 'put') group.puts.push(entry.id)
          else group.deletes.push(entry.id)
          bySlice.set(entry.slice, group)
        }
        events.emit({ type: 'committed', changes: [...bySlice.values()] })
      }
    },
  })

  // ---------------------------------------------------------------- remote sync

  const hostSliceSynced = (name: string): boolean => {
    const config = slices.get(name)?.config
    return config !== undefined && config.syncToFlask && config.enabled
  }

  const hostSlices = (): HostSlice[] =>
    [...slices.values()].map((s) => ({
      name: s.name,
      storeName: s.config.storeName,
      syncToFlask: s.config.syncToFlask && s.config.enabled,
      conflict: s.config.conflict,
    }))

  const engine: SyncEngine | null = resolved.remote
    ? createSyncEngine(
        {
          storage: () => storage,
          slices: hostSlices,
          dispatch: (action) => {
            if (api && !disposed) api.dispatch(action as UnknownAction)
          },
          validate(slice, id, value) {
            return validationError(slices.get(slice)?.config.validate, slice, id, value, 'server')
          },
          applyToState(slice, puts, deletes) {
            if (!api || disposed) return
            api.dispatch(remoteApplied({ slice, puts: puts.map(([id, item]) => [id, item]), deletes: [...deletes] }, instanceId))
          },
          localEntries(slice) {
            const s = slices.get(slice)
            if (!s || !s.kind || !api) return []
            processDiffs()
            return entriesOf(s.kind, getAt((api.getState() as Record<string, unknown>)[slice], s.config.path), s.config.getId)
          },
          localId(slice, remoteId, value) {
            const s = slices.get(slice)
            // The item itself knows its id's type best (an entity or array item carries its id).
            if (s && s.kind !== 'record' && value !== null && value !== undefined) {
              try {
                const own = s.config.getId(value)
                if (validId(own) && String(own) === remoteId) {
                  s.numericIds ??= typeof own === 'number'
                  return own
                }
              } catch {
                // fall back to what the slice told us about its ids
              }
            }
            const numeric = s?.config.idType === 'number' || (s?.config.idType === 'auto' && s.numericIds === true)
            return numeric && remoteId.trim() !== '' && Number.isFinite(Number(remoteId)) ? Number(remoteId) : remoteId
          },
          flushLocal: () => flush(),
          isQueued(key) {
            // A change dispatched in this tick is diffed lazily: count it before answering, or
            // server data applied now would replace it in the state before it is ever queued.
            processDiffs()
            return queue.has(key)
          },
          reportError,
          emit: (event) => {
            if (event.type === 'operation') emitOperation(event.operation)
            else if (events.size > 0) events.emit(event)
          },
        },
        resolved.remote,
      )
    : null

  /** Runs a sync command action; returns undefined for every other action. */
  function commandFor(target: SyncEngine, action: UnknownAction): Promise<void> | undefined {
    if (resolveConflict.match(action)) {
      const p = action.payload
      return target.resolve(p.key, p.resolution, p.resolution === 'merged' ? p.value : undefined)
    }
    if (retryDeadLetter.match(action)) return target.retryDeadLetter(action.payload.opId)
    if (discardDeadLetter.match(action)) return target.discardDeadLetter(action.payload.opId)
    return undefined
  }

  // ---------------------------------------------------------------- change detection

  function sinkFor(s: SliceRuntime): DiffSink {
    return {
      put(id, item) {
        s.numericIds ??= typeof id === 'number'
        s.touched?.add(id)
        queue.enqueue(s.name, id, 'put', item)
      },
      delete(id) {
        s.touched?.add(id)
        queue.enqueue(s.name, id, 'delete', undefined)
      },
      invalid(_item, reason) {
        const why = reason ?? 'has no valid id (a non-empty, well-formed string or a finite number)'
        reportError(new InvalidItemError(`an item in slice "${s.name}" ${why}; it is not persisted`, { slice: s.name }))
      },
    }
  }

  function diffSlice(s: SliceRuntime, state: unknown): void {
    s.dirty = false
    const hinted = s.hinted
    s.hinted = null
    const sliceState = (state as Record<string, unknown> | undefined)?.[s.name]
    s.current = sliceState
    if (sliceState === s.lastSeen) return
    const collection = getAt(sliceState, s.config.path)
    const previous = s.lastCollection
    s.lastSeen = sliceState
    s.lastCollection = collection
    if (collection === previous) return
    s.kind ??= detectShape(collection) ?? detectShape(previous)
    if (!s.kind) return
    const sink = sinkFor(s)
    if (hinted && s.kind !== 'array' && diffIds(s.kind, previous, collection, hinted, sink)) {
      if (s.config.verifyChangedIds) verifyHint(s, previous, collection, hinted, sink)
      return
    }
    s.arrayIndex = diffCollection(s.kind, previous, collection, s.config.getId, sink, s.arrayIndex)
  }

  /** `verifyChangedIds`: the full diff, to persist and report what a `changedIds` hint missed. */
  function verifyHint(s: SliceRuntime, previous: unknown, collection: unknown, hinted: ReadonlySet<ItemId>, sink: DiffSink): void {
    const missed: ItemId[] = []
    const check = (id: ItemId, write: () => void): void => {
      if (hinted.has(id) || hinted.has(String(id))) return
      missed.push(id)
      write()
    }
    diffCollection(s.kind!, previous, collection, s.config.getId, {
      put: (id, item) => check(id, () => sink.put(id, item)),
      delete: (id) => check(id, () => sink.delete(id)),
      invalid: (item) => sink.invalid(item),
    }, null)
    if (missed.length > 0) {
      reportError(
        new InvalidOptionError(
          `slices.${s.name}.changedIds`,
          `left out ${missed.length} changed id(s) (${lastHintedAction ?? 'unknown action'}); they were persisted by the full diff`,
        ),
      )
    }
  }

  /**
   * Diffs every slice marked dirty. Runs once per microtask, so a burst of dispatches in one tick
   * costs one diff per slice, and always before anything that needs an exact queue (flush,
   * hydration, enable).
   */
  function processDiffs(): void {
    diffScheduled = false
    if (!api || disposed) return
    const state = api.getState()
    for (const s of watched) {
      if (!s.dirty) continue
      try {
        diffSlice(s, state)
      } catch (error) {
        reportError(toSyncError(error, `finding changes in slice "${s.name}" failed`))
      }
    }
  }

  function remember(s: SliceRuntime): void {
    const sliceState = (api?.getState() as Record<string, unknown> | undefined)?.[s.name]
    s.lastSeen = sliceState
    s.current = sliceState
    s.hinted = null
    s.lastCollection = getAt(sliceState, s.config.path)
    s.arrayIndex = null
    s.kind ??= detectShape(s.lastCollection)
  }

  // ---------------------------------------------------------------- hydration

  async function migrate(s: SliceRuntime, fromVersion: number, records: Array<[ItemId, unknown]>): Promise<Array<[ItemId, unknown]>> {
    const { version: toVersion, migrate: run, storeName, getId } = s.config
    const context = { slice: s.name, fromVersion, toVersion }
    if (!run || fromVersion > toVersion) {
      throw new MigrationError(
        `slice "${s.name}" is stored at version ${fromVersion} but configured as ${toVersion}${run ? ' (downgrades are not supported)' : ' and has no migrate function'}`,
        context,
      )
    }
    let items: unknown
    try {
      items = await run(records.map(([, value]) => value), fromVersion)
    } catch (error) {
      throw new MigrationError(`migrate of slice "${s.name}" from ${fromVersion} to ${toVersion} threw`, { ...context, cause: error })
    }
    if (!Array.isArray(items)) throw new MigrationError(`migrate of slice "${s.name}" did not return an array`, context)
    const out: Array<[ItemId, unknown]> = []
    const ops: StorageOp[] = [{ type: 'clear', store: storeName }]
    for (const item of items) {
      const id = s.kind === 'record' ? (item as { id?: unknown } | null)?.id ?? getId(item) : getId(item)
      if (!validId(id)) throw new MigrationError(`migrate of slice "${s.name}" returned an item without a valid id`, context)
      const problem = findNonSerializable(item, resolved.maxDepth)
      if (problem) throw new MigrationError(`migrate of slice "${s.name}" returned a non-serializable item: ${problem.reason}`, context)
      out.push([id, item])
      ops.push({ type: 'put', store: storeName, key: id, value: item })
    }
    ops.push({ type: 'put', store: META_STORE, key: storeName, value: { version: toVersion } satisfies SliceMeta })
    // One transaction: the stored data is replaced entirely or not at all.
    await storage.commit(ops)
    return out
  }

  /** First run for a slice: its initial state becomes the stored state, meta in the same transaction. */
  async function seed(s: SliceRuntime): Promise<void> {
    processDiffs()
    const { storeName, getId, version } = s.config
    const ops: StorageOp[] = []
    if (s.kind) {
      for (const [id, item] of entriesOf(s.kind, s.lastCollection, getId)) {
        if (findNonSerializable(item, resolved.maxDepth)) continue // reported when it is next written
        ops.push({ type: 'put', store: storeName, key: id, value: item })
      }
    }
    ops.push({ type: 'put', store: META_STORE, key: storeName, value: { version } satisfies SliceMeta })
    await storage.commit(ops)
  }

  function applyHydration(s: SliceRuntime, records: Array<[ItemId, unknown]>): void {
    processDiffs()
    const target = api!
    const sliceState = (target.getState() as Record<string, unknown> | undefined)?.[s.name]
    const current = getAt(sliceState, s.config.path)
    const kind = s.kind ?? detectShape(current)
    if (!kind) {
      throw new HydrationError(`cannot tell the shape of slice "${s.name}"; set slices.${s.name}.shape`, { slice: s.name })
    }
    s.kind = kind
    if (records.length > 0) s.numericIds ??= typeof records[0]![0] === 'number'
    const touched = s.touched ?? new Set<ItemId>()
    const merged: Array<[ItemId, unknown]> = []
    for (const [id, value] of records) {
      if (touched.has(id)) continue
      const invalid = validationError(s.config.validate, s.name, id, value, 'hydration')
      if (invalid) reportError(invalid)
      else merged.push([id, stripDangerousKeys(value)])
    }
    if (touched.size > 0) {
      for (const [id, item] of entriesOf(kind, current, s.config.getId)) if (touched.has(id)) merged.push([id, item])
    }
    const compare = s.config.sortComparer
    if (compare && kind !== 'record') merged.sort((a, b) => compare(a[1], b[1]))
    const collection = buildCollection(kind, merged, current)
    if (!enhancerInstalled) {
      throw new HydrationError(
        `slice "${s.name}" cannot be hydrated: add persistence.enhancer to configureStore's enhancers`,
        { slice: s.name },
      )
    }
    s.hydratedCount = merged.length
    target.dispatch(hydrateSlice({ slice: s.name, collection, count: merged.length }, instanceId))
  }

  /** Slices the store cannot serve: each reports its error once and never hydrates (so writes stay held). */
  function block(errors: ReadonlyMap<string, SyncError>): void {
    for (const error of new Set(errors.values())) reportError(error)
    for (const [name, error] of errors) {
      const s = slices.get(name)!
      s.blocked = error
      s.touched = null
      setSliceHydration(s, 'error', error)
    }
  }

  async function hydrate(s: SliceRuntime): Promise<void> {
    if (s.blocked) return setSliceHydration(s, 'error', s.blocked)
    setSliceHydration(s, 'pending', null)
    s.touched ??= new Set()
    const started = Date.now()
    try {
      // Both reads at once: two readonly transactions in parallel, not one after the other.
      const [metaValue, stored] = await Promise.all([storage.get(META_STORE, s.config.storeName), storage.readAll(s.config.storeName)])
      const meta = metaValue as SliceMeta | undefined
      if (disposed) return
      if (!meta && stored.length === 0) {
        await seed(s)
      } else if (!meta) {
        // Items without the slice's meta record: the database was deleted while an instance had
        // it open and that instance went on writing into a new one (DatabaseDeletedError). They
        // were written by this version of the app, so they hydrate as they are.
        applyHydration(s, stored)
        await storage.commit([{ type: 'put', store: META_STORE, key: s.config.storeName, value: { version: s.config.version } satisfies SliceMeta }])
      } else {
        let records = stored
        if (meta.version !== s.config.version) records = await migrate(s, meta.version, records)
        if (disposed) return
        applyHydration(s, records)
      }
      setSliceHydration(s, 'done', null)
      emitOperation({ kind: 'hydrate', slice: s.name, items: s.hydratedCount, durationMs: Date.now() - started, ok: true, error: null })
    } catch (caught) {
      const error = toSyncError(caught, `hydrating slice "${s.name}" failed`)
      setSliceHydration(s, 'error', error)
      reportError(error)
      emitOperation({ kind: 'hydrate', slice: s.name, items: 0, durationMs: Date.now() - started, ok: false, error: error.toJSON() })
    } finally {
      s.touched = null
    }
    queue.kick()
  }

  function hydrateOnce(s: SliceRuntime): Promise<void> {
    s.hydrating ??= hydrate(s).finally(() => {
      s.hydrating = null
    })
    return s.hydrating
  }

  async function start(): Promise<void> {
    const stores = [...slices.values()].map((s) => s.config.storeName)
    try {
      await storage.ensureStores([...stores, META_STORE, OUTBOX_STORE, VERSIONS_STORE, DEAD_LETTER_STORE])
    } catch (error) {
      if (!isStorageUnavailableError(error) || resolved.storage) throw error
      // Private modes may refuse IndexedDB: keep working in memory and say so.
      storage = createMemoryStore()
      status.update({ storage: 'memory', persistent: false })
      reportError(error)
    }
  }

  function startOnce(): Promise<void> {
    started ??= (async () => {
      if (!factory && !resolved.storage) {
        reportError(new StorageUnavailableError('indexedDB is not available here; persisting in memory only'))
      }
      try {
        await start()
      } catch (caught) {
        const error = toSyncError(caught, 'opening storage failed')
        reportError(error)
        for (const s of watched) setSliceHydration(s, 'error', error)
        started = null // the next flush or enable tries again
        return
      }
      await Promise.all(watched.map(hydrateOnce))
      // Connect after hydration: pulls and conflict checks need the hydrated state. The outbox
      // is loaded before hydration counts as done, so the status shows what waits for the server.
      if (engine && !disposed) {
        await engine.load().catch((error: unknown) => reportError(toSyncError(error, 'loading the outbox failed')))
        engine.start().catch((error: unknown) => reportError(toSyncError(error, 'starting remote sync failed')))
      }
    })()
    return started
  }

  // ---------------------------------------------------------------- the middleware

  const middleware = ((storeApi: Api) => {
    if (api) {
      throw new InvalidOptionError('middleware', 'one persistence instance serves one store; create another for the second store')
    }
    api = storeApi
    for (const s of slices.values()) remember(s)
    block(storeWiringErrors(enhancerInstalled, watched.map((s) => s.name), storeApi.getState()))
    void startOnce()
    return (next: (action: unknown) => unknown) => {
      /** Dispatches an action of the app (or a library action that is no command) and notes what it changed. */
      const reduce = (action: UnknownAction): unknown => {
        const result = next(action)
        // Hot path: one reference comparison per persisted slice, nothing else.
        const state = storeApi.getState() as Record<string, unknown> | null
        if (state === null || typeof state !== 'object') return result
        let now = false
        for (const s of watched) {
          const current = state[s.name]
          if (current === s.current) continue
          s.current = current
          if (s.config.changedIds) hint(s, action)
          if (!s.dirty && current !== s.lastSeen) {
            s.dirty = true
            // While a slice hydrates, every intermediate state counts (an item added and removed
            // in one tick was still touched, and must not come back from storage): diff at once.
            if (s.touched) now = true
            else if (!diffScheduled) {
              diffScheduled = true
              queueMicrotask(processDiffs)
            }
          }
        }
        if (now) processDiffs()
        return result
      }

      return (action: unknown) => {
        if (disposed || !isTypedAction(action)) return next(action)
        // The library's actions all share one prefix: one check instead of eight matches for
        // the app's actions, which are nearly all of them.
        if (!action.type.startsWith(ACTION_PREFIX)) return reduce(action)
        if ((hydrateSlice.match(action) || remoteApplied.match(action)) && action.meta.instanceId === instanceId) {
          // Loaded or pulled data: diff what is pending first, then adopt the result without
          // queueing it, so it is never written back.
          processDiffs()
          const result = next(action)
          const s = slices.get(action.payload.slice)
          if (s) remember(s)
          return result
        }
        if (getSyncEngine.match(action)) return engine ?? next(action)
        if (getPersistenceInstance.match(action)) return instance
        if (engine) {
          const command = commandFor(engine, action)
          if (command) command.catch((error: unknown) => reportError(toSyncError(error, `${action.type} failed`)))
        }
        return reduce(action)
      }
    }
  }) as PersistenceMiddleware

  /**
   * Collects the ids an action changed, per its slice's `changedIds`. The first action that
   * changed the slice since the last diff starts the set; one that cannot tell voids it.
   */
  function hint(s: SliceRuntime, action: UnknownAction): void {
    const fresh = !s.dirty
    if (!fresh && s.hinted === null) return
    let ids: Iterable<ItemId> | undefined
    try {
      ids = s.config.changedIds!(action)
    } catch (error) {
      reportError(toSyncError(error, `slices.${s.name}.changedIds threw`))
      ids = undefined
    }
    if (ids === undefined || ids === null) {
      s.hinted = null
      return
    }
    const set = fresh || !s.hinted ? new Set<ItemId>() : s.hinted
    for (const id of ids) set.add(id)
    s.hinted = set
    lastHintedAction = action.type
  }

  const enhancer: StoreEnhancer = (createStore) => (reducer, preloadedState) => {
    enhancerInstalled = true
    const wrapped = ((state: Record<string, unknown> | undefined, action: UnknownAction) => {
      const next = (reducer as Reducer)(state, action) as Record<string, unknown>
      if (typeof action.type !== 'string' || !action.type.startsWith(ACTION_PREFIX)) return next
      if (remoteApplied.match(action) && action.meta.instanceId === instanceId) {
        const s = slices.get(action.payload.slice)
        if (!s?.kind) return next
        const { puts, deletes } = action.payload
        const collection = applyChanges(s.kind, getAt(next[s.name], s.config.path), puts, deletes, s.config.getId)
        return { ...next, [s.name]: setAt(next[s.name], s.config.path, collection) }
      }
      if (!hydrateSlice.match(action) || action.meta.instanceId !== instanceId) return next
      const s = slices.get(action.payload.slice)
      if (!s) return next
      return { ...next, [s.name]: setAt(next[s.name], s.config.path, action.payload.collection) }
    }) as typeof reducer
    return createStore(wrapped, preloadedState)
  }

  function sliceOrThrow(name: string): SliceRuntime {
    const s = slices.get(name)
    if (!s) throw new InvalidOptionError('slice', `"${name}" is not a persisted slice of database "${dbName}"`)
    return s
  }

  function setEnabled(s: SliceRuntime, enabled: boolean): void {
    if (s.config.enabled === enabled) return
    if (enabled) {
      // Catch up: the diff against the last state seen writes what changed while disabled.
      // `watched` first: processDiffs only walks watched slices, and a slice left dirty but
      // unwatched would never be diffed again.
      s.config.enabled = true
      s.dirty = true
      s.hinted = null // no action was watched while disabled: the catch-up diff is a full one
      watched = [...slices.values()].filter((x) => x.config.enabled)
      if (api) {
        if (s.hydration === 'disabled') {
          s.touched = new Set()
          remember(s)
          block(storeWiringErrors(enhancerInstalled, [s.name], api.getState()))
          void hydrateOnce(s)
        } else {
          processDiffs()
        }
      }
    } else {
      processDiffs()
      s.config.enabled = false
    }
    watched = [...slices.values()].filter((x) => x.config.enabled)
    status.slice(s.name, { enabled })
  }

  async function flush(): Promise<void> {
    if (disposed) throw new DisposedError(`persistence instance "${dbName}" is disposed`)
    processDiffs()
    if (api) {
      await startOnce()
      await Promise.all(watched.filter((s) => s.hydration !== 'done' && !isMigrationError(s.error)).map(hydrateOnce))
    }
    const { held } = await queue.flush()
    if (held.length > 0) {
      const errors = [...new Set(held.map((e) => e.slice))].map(
        (slice) =>
          slices.get(slice)?.error ??
          new HydrationError(`slice "${slice}" is not hydrated yet; its operations stay queued`, { slice }),
      )
      throw new FlushError(errors)
    }
  }

  const controls: Omit<PersistenceMiddleware, keyof Middleware | 'dbName' | 'enhancer' | 'sync' | 'usesGlobalIndexedDB'> = {
    flush,
    configure(slice, config) {
      const s = sliceOrThrow(slice)
      checkRuntimeConfig(`configure("${slice}")`, config)
      checkRuntimeKeys(`configure("${slice}")`, config)
      if (config.syncToFlask !== undefined) s.config.syncToFlask = config.syncToFlask
      if (config.batchSize !== undefined) s.config.batchSize = config.batchSize
      if (config.debounceMs !== undefined && config.debounceMs !== s.config.debounceMs) {
        s.config.debounceMs = config.debounceMs
        queue.reschedule(slice)
      }
      if (config.enabled !== undefined) setEnabled(s, config.enabled)
    },
    enable(slice) {
      setEnabled(sliceOrThrow(slice), true)
    },
    disable(slice) {
      setEnabled(sliceOrThrow(slice), false)
    },
    async whenHydrated() {
      if (api) await startOnce()
      await Promise.all(watched.map((s) => s.hydrating))
      const failed = watched.find((s) => s.hydration === 'error')
      if (failed?.error) throw failed.error
    },
    getStatus() {
      // Changes dispatched in this tick are diffed lazily; count them before answering.
      processDiffs()
      return status.get()
    },
    subscribe: status.subscribe,
    hasSlice: (slice) => slices.has(slice),
    subscribeEvents: events.subscribe,
    async applyExternalChanges(changes) {
      for (const { slice, puts, deletes } of changes) {
        const s = slices.get(slice)
        if (!s || !api || disposed || s.hydration !== 'done') continue
        const values = puts.length > 0 ? await storage.getMany(s.config.storeName, puts) : []
        processDiffs()
        // A key changed here and not yet written keeps this tab's value: it is newer.
        const keep = (id: ItemId): boolean => !queue.has(itemKey(slice, id))
        const put: Array<[ItemId, unknown]> = []
        puts.forEach((id, i) => {
          const value = values[i]
          if (value !== undefined && keep(id)) put.push([id, stripDangerousKeys(value)])
        })
        const removed = deletes.filter(keep)
        if (put.length === 0 && removed.length === 0) continue
        api.dispatch(remoteApplied({ slice, puts: put, deletes: removed }, instanceId))
      }
    },
    async dispose(options = {}) {
      if (disposed) return
      if (options.flush !== false) {
        try {
          await flush()
        } catch (error) {
          reportError(toSyncError(error, 'flush during dispose failed'))
        }
      }
      disposed = true
      queue.dispose()
      // The engine stops at once (requests aborted, nothing dispatched); its work already under
      // way settles before the database is closed, and commits nothing after this resolves.
      const stopping = engine?.dispose()
      logoutChannel?.removeEventListener('message', onLogout)
      if (ownsLogoutChannel) logoutChannel?.close()
      unregister(instance)
      status.update({ disposed: true })
      await stopping
      storage.close()
    },
    async clear() {
      // Logout: nothing pending may reach the disk or the server afterwards, so nothing is
      // flushed. The other tabs are told first (they dispose rather than write the rest of the
      // session into a new database), then this instance is disposed and the database deleted.
      if (logoutChannel && !disposed) {
        try {
          logoutChannel.postMessage({ type: 'logout', dbName } satisfies LogoutMessage)
        } catch (error) {
          reportError(toSyncError(error, 'announcing the logout to other tabs failed'))
        }
      }
      await controls.dispose({ flush: false })
      if (!storage.destroy) throw new StorageError(`the custom storage of "${dbName}" has no destroy(); nothing was deleted`)
      await storage.destroy()
    },
  }

  // Another tab's clear(): drop what is pending and stop, so nothing of the session that was
  // just logged out is written into a new database.
  function onLogout(event: { data: unknown }): void {
    const message = event.data as Partial<LogoutMessage> | null
    if (disposed || message?.type !== 'logout' || message.dbName !== dbName) return
    reportError(
      new DatabaseDeletedError(`database "${dbName}" was cleared by a logout in another tab; this instance dropped what was pending and stopped`, {
        dbName,
        reason: 'logout',
      }),
    )
    void controls.dispose({ flush: false })
  }
  // A channel the app passed in is the app's to close; one made here is ours.
  const ownsLogoutChannel = resolved.logoutChannel === undefined
  const logoutChannel: ChannelLike | null = !ownsLogoutChannel
    ? (resolved.logoutChannel ?? null)
    : usesGlobalIndexedDB && typeof BroadcastChannel === 'function'
      ? (unref(new BroadcastChannel(`redux-idb-sync:logout:${dbName}`)) as unknown as ChannelLike)
      : null
  logoutChannel?.addEventListener('message', onLogout)

  const instance = Object.assign(middleware, controls, { dbName, enhancer, sync: engine, usesGlobalIndexedDB })
  register(instance)
  return instance
}
