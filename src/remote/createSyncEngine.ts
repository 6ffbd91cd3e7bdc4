import { itemKey } from '../core/ids'
import { toSyncError } from '../errors'
import { OUTBOX_STORE, VERSIONS_STORE, type StoreTransaction } from '../storage/types'
import { singleFlight } from '../utils/singleFlight'
import { createApiClient } from './http/client'
import { discardDeadLetter, resolveParked, retryDeadLetter } from './commands'
import { createConnection } from './connection'
import { followLocalChange, isPushed, itemStateMaps, outboxDepth, publishOutbox, randomId, transact, type EngineContext, type SyncHost } from './engineContext'
import type { CheckedRemoteOptions, EngineOptions } from './options'
import { confirmedFromLocal, nextToSend, withLocalChange, type OutboxRow } from './outbox'
import { EpochChanged, isNewEpoch, pullChanges, pullEverything, resync } from './pull'
import { dependencyOf, pushOutbox } from './push'
import { loadOutbox } from './loadOutbox'
import { newEffects, readVersion, writeRow } from './effects'
import { applyEffects } from './serverChanges'
import type { RealtimeControl, SyncEngineHandle } from '../core/ports'
import { syncActions } from './redux/syncSlice'
import { createRealtimeChannel, type RealtimeChannel } from './realtime/channel'
import { stageChanges, type Staged, type StagedChange } from './stage'

export type { HostSlice, SyncHost } from './engineContext'
export type { OutboxRow } from './outbox'
export type { Staged, StagedChange } from './stage'

/** The remote half of a persistence instance. */
export interface SyncEngine extends SyncEngineHandle {
  /** Loads the outbox, dead letters and cursor (once). */
  load(): Promise<void>
  /** Loads (if not yet), then checks the connection, which drains the outbox. */
  start(): Promise<void>
  /** The stores `stage` reads and writes, to include in the local write's transaction. */
  readonly stagingStores: readonly string[]
  /**
   * Writes the outbox rows of local changes inside the caller's transaction (the one writing
   * the items), so an item and the operation standing for it commit together or not at all.
   * Call it BEFORE writing the items: a new row records the item as stored before the change
   * (the confirmed value).
   */
  stage(tx: StoreTransaction, changes: readonly StagedChange[]): Promise<Staged>
  /** Tells the engine those rows are committed. The host calls `drain()` once its local queue is idle. */
  committed(rows: readonly OutboxRow[]): void
  /** Pushes the outbox now (no-op while disconnected). */
  drain(): Promise<void>
  /** Re-reads the outbox, dead letters and cursor from storage (another tab may have changed them). */
  reload(): Promise<void>
  resolve(key: string, resolution: 'local' | 'server' | 'merged', value?: unknown): Promise<void>
  /** Puts a dead letter back into the outbox; with `edited`, that value is sent instead (edit and resend). */
  retryDeadLetter(opId: string, edited?: { value: unknown }): Promise<void>
  discardDeadLetter(opId: string): Promise<void>
  readonly connected: boolean
  /** The real-time channel when `remote.realtime` is set (auto-sync's leader tab starts it), else `null`. */
  readonly realtime: RealtimeControl | null
  /** Keys with operations stored and not yet acknowledged (a key counts once). */
  readonly outboxDepth: number
  /** How far the server's clock is ahead of this device's (ms), as the last good health check measured. */
  readonly clockOffsetMs: number
  readonly deadLetterCount: number
  /**
   * Whether committed local changes are pushed as soon as the local queue is idle (default), or
   * only when `drain()` is called (auto-sync with `syncOnChange: false` turns it off).
   */
  autoPush: boolean
  /** Set by auto-sync: whether a committed change is pushed at once (see `CompanionEngine.pushesAtOnce`). */
  pushesAtOnce: (() => boolean) | null
  /**
   * Stops for good: aborts requests, clears timers, and resolves once in-flight work settled.
   * Afterwards the engine writes nothing and dispatches nothing.
   */
  dispose(): Promise<void>
}

/**
 * The sync engine: a durable outbox of operations that own their values, pushed in batches;
 * incremental and full pulls applied in transactions that see every tab's pending changes;
 * conflict strategies; health checks with backoff; resync when the server is another database.
 *
 * Rules it keeps:
 * - An op is written in the same transaction as its local item and holds its value; a push
 *   sends exactly that, under its own opId, and never re-reads the local store.
 * - An op stays until the server's answer about it is known (applied, duplicate, rejected or a
 *   decided conflict), so the server's copy of any of our writes is recognised as ours.
 * - Every decision about a key is made inside one transaction that reads its outbox row.
 * - The cursor moves only in the transaction that commits the changes it covers.
 * - Retries live here: the HTTP client never retries (except once after a 401 refresh, and a
 *   gzip push refused on the way, sent again plain at once: see `ApiClient.push`).
 * - Everything that reads or changes the outbox against the server runs under one lock.
 * - After `dispose()` resolves, nothing is written and nothing dispatched.
 */
export function createSyncEngine(host: SyncHost, remote: CheckedRemoteOptions): SyncEngine {
  // Without a clientId given, each engine (each persistence instance) is its own client.
  const options: EngineOptions = { ...remote, clientId: remote.clientId ?? randomId() }
  const abort = new AbortController()
  const ctx: EngineContext = {
    host,
    options,
    client: createApiClient({ ...options, signal: abort.signal }),
    changesOverSocket: null,
    ...itemStateMaps(),
    inflight: new Set(),
    claimedAtWrite: new Map(),
    cursor: null,
    epoch: null,
    connected: false,
    disposed: false,
    silenced: false,
    clockOffset: 0,
    serverProtocol: 0,
    failures: 0,
    // Ordered across reloads without reading every row first.
    seq: Date.now() * 1000,
    abort,
    pushProgress: null,
    published: new Map(),
  }
  let pendingEpoch = false
  let lock: Promise<unknown> = Promise.resolve()
  function exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = lock.then(work, work)
    lock = run.catch(() => undefined)
    return run
  }

  const connection = createConnection(ctx, {
    onUp: () => void drain(),
    onEpoch(epoch) {
      if (ctx.epoch === null) ctx.epoch = epoch
      else if (isNewEpoch(ctx, epoch)) pendingEpoch = true
    },
  })

  /** Under the lock: a resync first when the server turned out to be another database. */
  async function withEpoch<T>(work: () => Promise<T>): Promise<T> {
    if (pendingEpoch) {
      await resync(ctx, connection)
      pendingEpoch = false
    }
    try {
      return await work()
    } catch (caught) {
      if (!(caught instanceof EpochChanged)) throw caught
      await resync(ctx, connection)
      pendingEpoch = false
      return work()
    }
  }

  // ------------------------------------------------------------ loading

  let loaded: Promise<void> | null = null
  function ensureLoaded(): Promise<void> {
    loaded ??= loadOutbox(ctx).catch((error: unknown) => {
      loaded = null
      throw error
    })
    return loaded
  }

  // ------------------------------------------------------------ pushing

  // A change waiting for its dependency's create is not pushable yet (the push that acknowledges the create sends it).
  const pushable = (): boolean =>
    [...ctx.rows.values()].some((row) => !ctx.parked.has(row.key) && nextToSend(row) !== null && dependencyOf(ctx, row) !== 'wait')

  /** A pull may leave something to push (a conflict decided for the client, a merge). */
  const pushIfAuto = (): void => {
    if (engine.autoPush && pushable()) void drain()
  }

  const drain = singleFlight(async () => {
    try {
      await ensureLoaded()
      if (!ctx.connected || ctx.disposed || !pushable()) return
      host.dispatch(syncActions.syncActivity({ phase: 'start' }))
      let pushed = 0
      await exclusive(() =>
        withEpoch(() =>
          pushOutbox(
            ctx,
            connection,
            () => void drain(),
            (count) => (pushed += count),
          ),
        ),
      )
      // A background push is a sync too: report it like the thunks do.
      if (pushed > 0 && ctx.connected && !pushable() && !ctx.disposed) host.dispatch(syncActions.syncActivity({ phase: 'success', time: Date.now() }))
      if (pushable() && ctx.connected && !ctx.disposed) void Promise.resolve().then(drain)
    } catch (caught) {
      if (!ctx.disposed) host.reportError(toSyncError(caught, 'pushing the outbox failed'))
    }
  })

  /** Runs a bulk operation with the sync slice's start, success and error, and its progress cleared after. */
  async function bulk(work: () => Promise<void>): Promise<void> {
    await ensureLoaded()
    host.dispatch(syncActions.syncActivity({ phase: 'start' }))
    try {
      await work()
      if (!ctx.disposed) host.dispatch(syncActions.syncActivity({ phase: 'success', time: Date.now() }))
    } catch (caught) {
      const error = toSyncError(caught, 'sync failed')
      if (!ctx.disposed) host.dispatch(syncActions.syncActivity({ phase: 'error', error: error.message }))
      throw error
    } finally {
      ctx.pushProgress = null
      if (!ctx.disposed) host.dispatch(syncActions.progressChanged(null))
    }
  }

  /** Connects first if needed; rejects with the health check's own error (an HttpError, a NetworkError), the outbox kept. */
  async function connect(): Promise<void> {
    if (ctx.connected || (await connection.check())) return
    throw connection.lastError ?? toSyncError(new Error('the server is unreachable; the outbox is kept'), 'push failed')
  }

  async function pushAll(): Promise<void> {
    await bulk(async () => {
      await host.flushLocal()
      await exclusive(async () => {
        // Items that never reached the server (persisted before sync was configured, or whose
        // slice just turned syncToFlask on) join the outbox first.
        const effects = newEffects()
        await transact(ctx, async (tx) => {
          for (const slice of host.slices().filter((s) => s.syncToFlask && s.push)) {
            for (const [id, item] of host.localEntries(slice.name)) {
              const key = itemKey(slice.name, id)
              if (ctx.rows.has(key) || host.isQueued(key) || !isPushed(ctx, slice, 'put', item)) continue
              const [known, row] = await Promise.all([readVersion(tx, key), tx.get(OUTBOX_STORE, key)])
              if (known !== undefined || row !== undefined) continue
              const change = {
                key,
                slice: slice.name,
                collection: slice.storeName,
                id,
                type: 'put' as const,
                value: item,
                clientTime: Math.round(options.now() + ctx.clockOffset),
              }
              // Never on the server (no version known): rolling it back removes it.
              writeRow(tx, effects, key, withLocalChange(undefined, change, null, randomId(), ++ctx.seq, confirmedFromLocal(undefined, null)))
            }
          }
        })
        applyEffects(ctx, effects)
      })
      const count = (): number => [...ctx.rows.values()].filter((row) => !ctx.parked.has(row.key)).reduce((n, row) => n + row.ops.length, 0)
      const total = count()
      let done = 0
      host.dispatch(syncActions.progressChanged({ operation: 'push', done, total }))
      ctx.pushProgress = (n) => {
        done = Math.min(total, done + n)
        host.dispatch(syncActions.progressChanged({ operation: 'push', done, total }))
      }
      await connect()
      await exclusive(() => withEpoch(() => pushOutbox(ctx, connection, () => void drain())))
      const left = count()
      if (left > 0) throw toSyncError(new Error(`${left} operation(s) are still in the outbox`), 'push incomplete')
    })
  }

  // ------------------------------------------------------------ claiming at write

  /**
   * Whether the changes written now are pushed at once: the engine's own push after the local
   * queue idles, or auto-sync's leader with `settleMs: 0`, and the server reachable. Marking
   * such a change sent in its own write transaction saves its push the claim transaction
   * (docs/reliability.md): a sent op may or may not have reached the server, and is resent
   * with its opId until answered, so one marked a moment before its request went out is safe.
   * What it gives up: a newer change of the key made before the push answers queues behind it
   * instead of replacing it, which is what happens to every op once its push started.
   */
  const claimsOnWrite = (): boolean => ctx.connected && !ctx.disposed && (engine.autoPush || engine.pushesAtOnce?.() === true)

  // The real-time channel: pokes lead to the same incremental pull as `pullChanges()`.
  const realtime: RealtimeChannel | null = options.realtimeChannel
    ? createRealtimeChannel({
        options: options.realtimeChannel,
        bearer: (refresh) => ctx.client.bearer({ refresh }),
        pull: () => engine.pullChanges(),
        cursor: () => ctx.cursor?.cursor ?? null,
        serverNow: () => options.now() + ctx.clockOffset,
        setState(state, error) {
          if (ctx.silenced) return
          host.dispatch(syncActions.realtimeChanged({ state, error: error ? error.message : null }))
          host.emit({ type: 'realtime', state })
        },
        emit: (event) => {
          if (!ctx.silenced) host.emit(event)
        },
        report: (error) => {
          if (!ctx.disposed) host.reportError(error)
        },
        requestTimeoutMs: options.timeoutMs ?? 10_000,
      })
    : null
  if (realtime) ctx.changesOverSocket = (since, query) => realtime.changes(since, query)

  const engine: SyncEngine = {
    isSyncEngine: true,
    realtime,
    load: ensureLoaded,
    async start() {
      host.dispatch(syncActions.remoteEnabled(true))
      await ensureLoaded()
      if (options.connectOnStart !== false) await connection.check()
    },
    stagingStores: [OUTBOX_STORE, VERSIONS_STORE],
    stage: (tx, changes) => stageChanges(ctx, tx, changes, claimsOnWrite()),
    committed(rows) {
      if (rows.length === 0 || ctx.disposed) return
      for (const row of rows) {
        ctx.rows.set(row.key, row)
        followLocalChange(ctx, row)
      }
      publishOutbox(ctx)
    },
    drain,
    async reload() {
      await ensureLoaded()
      await exclusive(() => loadOutbox(ctx))
    },
    pushAll,
    pullAll: () =>
      bulk(async () => {
        await host.flushLocal()
        await exclusive(() => withEpoch(() => pullEverything(ctx, connection)))
        pushIfAuto()
      }),
    pullChanges: () =>
      bulk(async () => {
        await host.flushLocal()
        await exclusive(() => withEpoch(() => pullChanges(ctx, connection)))
        pushIfAuto()
      }),
    checkConnection: () => connection.check(),
    async resolve(key, resolution, value) {
      await ensureLoaded()
      if (await exclusive(() => resolveParked(ctx, key, resolution, value))) void drain()
    },
    async retryDeadLetter(opId, edited) {
      await ensureLoaded()
      if (await exclusive(() => retryDeadLetter(ctx, opId, edited))) void drain()
    },
    async discardDeadLetter(opId) {
      await ensureLoaded()
      await exclusive(() => discardDeadLetter(ctx, opId))
    },
    get connected() {
      return ctx.connected
    },
    get clockOffsetMs() {
      return ctx.clockOffset
    },
    get outboxDepth() {
      return outboxDepth(ctx)
    },
    get deadLetterCount() {
      return ctx.deadLetters.size
    },
    autoPush: true,
    pushesAtOnce: null,
    async dispose() {
      realtime?.dispose()
      ctx.disposed = true
      abort.abort()
      connection.dispose()
      // Work already under the lock settles (its requests abort; its transactions commit nothing
      // new, and what committed before is still announced), then the engine falls silent.
      await lock
      ctx.silenced = true
    },
  }
  return engine
}
