import type { Middleware, UnknownAction } from '@reduxjs/toolkit'
import {
  ACTION_PREFIX,
  discardDeadLetter,
  getPersistenceInstance,
  getSyncEngine,
  hydrateSlice,
  remoteApplied,
  resolveConflict,
  retryDeadLetter,
} from '../core/actions'
import {
  DatabaseDeletedError,
  DisposedError,
  FlushError,
  HydrationError,
  InvalidOptionError,
  StorageError,
  StorageUnavailableError,
  isMigrationError,
  isStorageUnavailableError,
  toSyncError,
  type SyncError,
} from '../errors'
import { REPORT_ERROR } from '../core/ports'
import type { SyncEngine } from '../remote/createSyncEngine'
import { createMemoryStore } from '../storage/memoryStore'
import { DEAD_LETTER_STORE, META_STORE, OUTBOX_STORE, VERSIONS_STORE } from '../storage/types'
import { createLogoutBroadcast } from '../tabs/logout'
import { chooseStorage } from './chooseStorage'
import { createEnhancer } from './enhancer'
import { createHydration } from './hydration'
import {
  createPersistenceContext,
  createSliceRuntime,
  refreshWatched,
  reportError as report,
  setSliceHydration,
  type SliceRuntime,
  type StoreApi,
} from './instanceContext'
import { addLiveInstance, removeLiveInstance } from './liveInstances'
import { createLocalState } from './localState'
import { createLocalWriter } from './localWriter'
import type { PersistenceOptions } from './options'
import { checkRuntimeConfig, checkRuntimeKeys, resolveOptions } from './resolveOptions'
import { createSliceTracker } from './sliceTracker'
import { createStatusStore, initialStatus } from './status'
import { storeWiringErrors } from './storeWiring'
import type { PersistenceMiddleware } from './types'
import { createOperationQueue } from './writeQueue'

export type { PersistenceMiddleware } from './types'

let nextInstanceId = 1

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
  const { dbName } = resolved
  const reportError = (error: SyncError): void => report(ctx, error)
  const chosen = chooseStorage(resolved, reportError, () => ctx.disposed)
  const { factory, usesGlobalIndexedDB } = chosen

  const slices = new Map<string, SliceRuntime>()
  for (const [name, config] of resolved.slices) slices.set(name, createSliceRuntime(name, config))

  const ctx = createPersistenceContext({
    options: resolved,
    instanceId: nextInstanceId++,
    dbName,
    slices,
    storage: chosen.storage,
    status: createStatusStore(initialStatus(dbName, resolved.storage ? 'custom' : chosen.storage.kind, chosen.storage.persistent, [...slices.values()])),
  })
  const { status, events, instanceId } = ctx

  // The parts, in the order data flows through them: change detection feeds the queue, the
  // queue's batches go to the local writer, hydration and the local state read back.
  const tracker = createSliceTracker(ctx)
  const writer = createLocalWriter(ctx)
  ctx.queue = createOperationQueue({
    debounceFor: (slice) => slices.get(slice)!.config.debounceMs,
    batchSizeFor: (slice) => slices.get(slice)!.config.batchSize,
    canWrite: (slice) => slices.get(slice)!.hydration === 'done',
    write: writer.write,
    wallClock: resolved.remote?.options.now ?? Date.now,
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
    onBatch: (batch) => {
      writer.report(batch)
      // Another tab's change of a key this batch wrote: IndexedDB now says which came last.
      if (!batch.error) localState.settled(batch.entries, batch.superseded)
    },
  })
  const { queue } = ctx
  const hydration = createHydration(ctx, tracker)
  const { hydrateOnce } = hydration
  const localState = createLocalState(ctx, tracker, () => flush())
  // The engine comes from the remote plugin (redux-idb-sync/remote): nothing here imports it.
  const engine: SyncEngine | null = resolved.remote ? resolved.remote.create(localState.host) : null
  ctx.engine = engine

  let started: Promise<void> | null = null

  async function start(): Promise<void> {
    const stores = [...slices.values()].map((s) => s.config.storeName)
    try {
      await ctx.storage.ensureStores([...stores, META_STORE, OUTBOX_STORE, VERSIONS_STORE, DEAD_LETTER_STORE])
    } catch (error) {
      if (!isStorageUnavailableError(error) || resolved.storage) throw error
      // Private modes may refuse IndexedDB: keep working in memory and say so.
      ctx.storage = createMemoryStore()
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
        for (const s of ctx.watched) setSliceHydration(ctx, s, 'error', error)
        started = null // the next flush or enable tries again
        return
      }
      await Promise.all(ctx.watched.map(hydrateOnce))
      // Connect after hydration: pulls and conflict checks need the hydrated state. The outbox
      // is loaded before hydration counts as done, so the status shows what waits for the server.
      if (engine && !ctx.disposed) {
        await engine.load().catch((error: unknown) => reportError(toSyncError(error, 'loading the outbox failed')))
        engine.start().catch((error: unknown) => reportError(toSyncError(error, 'starting remote sync failed')))
      }
    })()
    return started
  }

  // ---------------------------------------------------------------- the middleware

  const middleware = ((storeApi: StoreApi) => {
    if (ctx.api) {
      throw new InvalidOptionError('middleware', 'one persistence instance serves one store; create another for the second store')
    }
    ctx.api = storeApi
    for (const s of slices.values()) tracker.resetBaseline(s)
    hydration.block(
      storeWiringErrors(
        ctx.enhancerInstalled,
        ctx.watched.map((s) => s.name),
        storeApi.getState(),
      ),
    )
    void startOnce()
    return (next: (action: unknown) => unknown) => {
      /** Dispatches an action of the app (or a library action that is no command) and notes what it changed. */
      const reduce = (action: UnknownAction): unknown => {
        const result = next(action)
        // Hot path: one reference comparison per persisted slice, nothing else.
        const state = storeApi.getState() as Record<string, unknown> | null
        if (state !== null && typeof state === 'object') tracker.afterAction(state, action)
        return result
      }

      return (action: unknown) => {
        if (ctx.disposed || !isTypedAction(action)) return next(action)
        // The library's actions all share one prefix: one check instead of eight matches for
        // the app's actions, which are nearly all of them.
        if (!action.type.startsWith(ACTION_PREFIX)) return reduce(action)
        if ((hydrateSlice.match(action) || remoteApplied.match(action)) && action.meta.instanceId === instanceId) {
          // Loaded or pulled data: diff what is pending first, then adopt the result without
          // queueing it, so it is never written back.
          tracker.processDiffs()
          const result = next(action)
          const s = slices.get(action.payload.slice)
          if (s) tracker.resetBaseline(s)
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
      s.patched = null
      refreshWatched(ctx)
      if (ctx.api) {
        if (s.hydration === 'disabled') {
          s.touched = new Set()
          tracker.resetBaseline(s)
          hydration.block(storeWiringErrors(ctx.enhancerInstalled, [s.name], ctx.api.getState()))
          void hydrateOnce(s)
        } else {
          tracker.processDiffs()
        }
      }
    } else {
      tracker.processDiffs()
      s.config.enabled = false
    }
    refreshWatched(ctx)
    status.slice(s.name, { enabled })
  }

  async function flush(): Promise<void> {
    if (ctx.disposed) throw new DisposedError(`persistence instance "${dbName}" is disposed`)
    tracker.processDiffs()
    if (ctx.api) {
      await startOnce()
      await Promise.all(ctx.watched.filter((s) => s.hydration !== 'done' && !isMigrationError(s.error)).map(hydrateOnce))
    }
    const { held } = await queue.flush()
    if (held.length > 0) {
      const errors = [...new Set(held.map((e) => e.slice))].map(
        (slice) => slices.get(slice)?.error ?? new HydrationError(`slice "${slice}" is not hydrated yet; its operations stay queued`, { slice }),
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
      if (ctx.api) await startOnce()
      await Promise.all(ctx.watched.map((s) => s.hydrating))
      const failed = ctx.watched.find((s) => s.hydration === 'error')
      if (failed?.error) throw failed.error
    },
    getStatus() {
      // Changes dispatched in this tick are diffed lazily; count them before answering.
      tracker.processDiffs()
      return status.get()
    },
    subscribe: status.subscribe,
    hasSlice: (slice) => slices.has(slice),
    subscribeEvents: events.subscribe,
    applyExternalChanges: localState.applyExternalChanges,
    async dispose(options = {}) {
      if (ctx.disposed) return
      if (options.flush !== false) {
        try {
          await flush()
        } catch (error) {
          reportError(toSyncError(error, 'flush during dispose failed'))
        }
      }
      ctx.disposed = true
      queue.dispose()
      // The engine stops at once (requests aborted, nothing dispatched); its work already under
      // way settles before the database is closed, and commits nothing after this resolves.
      const stopping = engine?.dispose()
      logout?.close()
      removeLiveInstance(instance)
      status.update({ disposed: true })
      await stopping
      ctx.storage.close()
    },
    async clear() {
      // Logout: nothing pending may reach the disk or the server afterwards, so nothing is
      // flushed. The other tabs are told first (they dispose rather than write the rest of the
      // session into a new database), then this instance is disposed and the database deleted.
      if (logout && !ctx.disposed) {
        try {
          logout.announce()
        } catch (error) {
          reportError(toSyncError(error, 'announcing the logout to other tabs failed'))
        }
      }
      await controls.dispose({ flush: false })
      const { storage } = ctx
      if (!storage.destroy) throw new StorageError(`the custom storage of "${dbName}" has no destroy(); nothing was deleted`)
      await storage.destroy()
    },
  }

  // Another tab's clear(): drop what is pending and stop, so nothing of the session that was
  // just logged out is written into a new database.
  const logout = createLogoutBroadcast({
    dbName,
    channel: resolved.logoutChannel,
    sharedDatabase: usesGlobalIndexedDB,
    onLogout() {
      if (ctx.disposed) return
      reportError(
        new DatabaseDeletedError(`database "${dbName}" was cleared by a logout in another tab; this instance dropped what was pending and stopped`, {
          dbName,
          reason: 'logout',
        }),
      )
      void controls.dispose({ flush: false })
    },
  })

  const enhancer = createEnhancer(ctx)
  const instance = Object.assign(middleware, controls, { dbName, enhancer, sync: engine, usesGlobalIndexedDB })
  Object.defineProperty(instance, REPORT_ERROR, { value: reportError })
  addLiveInstance(instance)
  return instance
}

/** Runs a sync command action; returns undefined for every other action. */
function commandFor(target: SyncEngine, action: UnknownAction): Promise<void> | undefined {
  if (resolveConflict.match(action)) {
    const p = action.payload
    return target.resolve(p.key, p.resolution, p.resolution === 'merged' ? p.value : undefined)
  }
  if (retryDeadLetter.match(action)) return target.retryDeadLetter(action.payload.opId, 'value' in action.payload ? { value: action.payload.value } : undefined)
  if (discardDeadLetter.match(action)) return target.discardDeadLetter(action.payload.opId)
  return undefined
}
