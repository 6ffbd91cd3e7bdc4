import type { UnknownAction } from '@reduxjs/toolkit'
import { persistenceFailed } from '../core/actions'
import type { OperationRecord, PersistenceEvent } from '../core/events'
import type { SyncError } from '../errors'
import type { SyncEngine } from '../remote/createSyncEngine'
import type { ItemId, TransactionalStore } from '../storage/types'
import { createEmitter, type Emitter } from '../utils/emitter'
import type { ResolvedOptions, ResolvedSliceConfig } from './resolveOptions'
import type { ShapeKind } from './shapes'
import type { createStatusStore, SliceStatus } from './status'
import type { OperationQueue } from './writeQueue'

/** Mutable runtime state of one persisted slice. */
export interface SliceRuntime {
  readonly name: string
  readonly config: ResolvedSliceConfig
  kind: ShapeKind | undefined
  /** The slice state the last diff saw; a different reference means "changed since". */
  lastSeen: unknown
  /** The slice state after the last action, to tell which actions changed it. */
  current: unknown
  /** Ids the actions since the last diff said they changed (`changedIds`); `null`: diff in full. */
  hinted: Set<ItemId> | null
  /**
   * Ids immer's patches named since the last diff (the enhancer's patch tracking); `null` when
   * some change since then could not be named, and the next diff is a full one.
   */
  patched: Set<string> | null
  /** The slice state the enhancer last saw come out of the reducer; another one voids `patched`. */
  patchedState: unknown
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

export function createSliceRuntime(name: string, config: ResolvedSliceConfig): SliceRuntime {
  return {
    name,
    config,
    kind: config.shape === 'auto' ? undefined : config.shape,
    lastSeen: undefined,
    current: undefined,
    hinted: null,
    patched: null,
    patchedState: undefined,
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
  }
}

/** The store's API as the instance uses it. */
export interface StoreApi {
  getState(): unknown
  dispatch(action: UnknownAction): unknown
}

/**
 * What the parts of one persistence instance share (slice tracker, local writer, hydration,
 * local state, enhancer). The assembly in createPersistenceMiddleware owns its lifecycle; the
 * parts read it and change only the fields their concern owns.
 */
export interface PersistenceContext {
  readonly options: ResolvedOptions
  readonly instanceId: number
  readonly dbName: string
  readonly slices: ReadonlyMap<string, SliceRuntime>
  /** Enabled slices, as an array: the dispatch path walks it on every action. */
  watched: SliceRuntime[]
  /** Replaced once when IndexedDB is refused at start (memory fallback). */
  storage: TransactionalStore
  readonly status: ReturnType<typeof createStatusStore>
  readonly events: Emitter<PersistenceEvent>
  /** Set when the middleware is installed in a store. */
  api: StoreApi | null
  enhancerInstalled: boolean
  disposed: boolean
  /** Set once, right after the context is made (the queue's writer needs the context). */
  queue: OperationQueue
  /** The remote sync engine, or `null` for a local-only instance. Set once, after the queue. */
  engine: SyncEngine | null
}

/** Builds the shared context; `queue` and `engine` are filled in by the assembly. */
export function createPersistenceContext(
  init: Omit<PersistenceContext, 'events' | 'api' | 'enhancerInstalled' | 'disposed' | 'queue' | 'engine' | 'watched'>,
): PersistenceContext {
  return {
    ...init,
    watched: [...init.slices.values()].filter((s) => s.config.enabled),
    events: createEmitter<PersistenceEvent>(),
    api: null,
    enhancerInstalled: false,
    disposed: false,
    queue: null as unknown as OperationQueue,
    engine: null,
  }
}

/** Recomputes the enabled slices after `enabled` changed. */
export function refreshWatched(ctx: PersistenceContext): void {
  ctx.watched = [...ctx.slices.values()].filter((x) => x.config.enabled)
}

/**
 * A background failure: counted in the status, passed to `onError` (a throwing `onError` never
 * breaks the queue), and announced with `persistenceFailed` outside any dispatch.
 */
export function reportError(ctx: PersistenceContext, error: SyncError): void {
  const { status } = ctx
  status.update({ lastError: error.toJSON(), errorCount: status.get().errorCount + 1 })
  try {
    ctx.options.onError(error)
  } catch {
    // A throwing onError must not break the queue.
  }
  const target = ctx.api
  if (target) {
    // Deferred: never dispatch from inside another dispatch or a reducer.
    queueMicrotask(() => {
      if (!ctx.disposed) target.dispatch(persistenceFailed({ error: error.toJSON() }))
    })
  }
}

/** Emits a finished operation (timestamped now), only when someone listens. */
export function emitOperation(ctx: PersistenceContext, operation: Omit<OperationRecord, 'at'>): void {
  if (ctx.events.size > 0) ctx.events.emit({ type: 'operation', operation: { ...operation, at: Date.now() } })
}

/** Sets a slice's hydration state, and the instance's `hydrated` once every enabled slice is settled. */
export function setSliceHydration(ctx: PersistenceContext, s: SliceRuntime, hydration: SliceStatus['hydration'], error: SyncError | null): void {
  s.hydration = hydration
  s.error = error
  ctx.status.slice(s.name, { hydration, error: error ? error.toJSON() : null })
  const allDone = [...ctx.slices.values()].every((x) => !x.config.enabled || x.hydration === 'done' || x.hydration === 'error')
  if (allDone !== ctx.status.get().hydrated) ctx.status.update({ hydrated: allDone })
}
