import type { Middleware } from '@reduxjs/toolkit'
import { companionMiddleware } from '../core/companion'
import { REPORT_ERROR, type LockManagerLike, type PersistenceInstancePort } from '../core/ports'
import { toSyncError, type SyncError } from '../errors'
import { electLeader } from '../tabs/leader'
import { createChangeRelay, type ChangeRelay } from '../tabs/relay'
import { createEmitter } from '../utils/emitter'
import { checkOptionKeys } from '../utils/optionKeys'
import { onPageHide } from '../utils/pageHide'
import { singleFlight } from '../utils/singleFlight'
import { unref } from '../utils/unref'
import { setDefaultAutoSync, unsetDefaultAutoSync } from './defaultAutoSync'
import { checkConfig, configKeys, resolveAutoSyncOptions, type AutoSyncConfig, type AutoSyncOptions, type AutoSyncStatus } from './options'

export type { AutoSyncConfig, AutoSyncOptions, AutoSyncStatus } from './options'

/** The auto-sync middleware and its controls. */
export interface AutoSyncMiddleware extends Middleware {
  /** Pushes the outbox, then pulls incrementally. Never overlaps another sync: a call during one returns that one. */
  syncNow(): Promise<void>
  /** Changes settings at runtime. */
  configureAutoSync(config: Partial<AutoSyncConfig>): void
  getAutoSyncStatus(): AutoSyncStatus
  /** Called after every status change (and not for the `nextSyncIn` countdown). Returns an unsubscribe function. */
  subscribeAutoSyncStatus(listener: (status: AutoSyncStatus) => void): () => void
  /** Whether this instance currently leads (runs the interval). */
  isLeader(): boolean
  /** When the interval fires next (ms since epoch); `null` when disabled or not the leader. */
  nextSyncAt(): number | null
  /** The current settings. */
  getAutoSyncConfig(): Readonly<AutoSyncConfig>
  /** Stops every timer, gives up leadership and closes the channel. */
  dispose(): void
}

/**
 * Creates the auto-sync middleware: syncs with the server every `intervalMs` when changes are
 * pending, soon after changes settle (`syncOnChange`), or at once when `maxQueueSize` changes
 * piled up. It drives the persistence instance of the same store (its outbox and engine); only
 * the leader tab runs it, and committed changes reach the other tabs' stores.
 *
 * @example
 * ```ts
 * const autoSync = createAutoSyncMiddleware({ intervalMs: 30000, syncOnChange: true, maxQueueSize: 50 })
 * configureStore({ reducer, middleware: (g) => g().concat(persistence, monitor, autoSync), enhancers: (g) => g().concat(persistence.enhancer) })
 * ```
 */
export function createAutoSyncMiddleware(options: AutoSyncOptions = {}): AutoSyncMiddleware {
  const { config, settleMs, pullWhenIdle } = resolveAutoSyncOptions(options)

  let instance: PersistenceInstancePort | null = null
  let leader = false
  let disposed = false
  let changeCounter = 0
  let lastSyncTime = 0
  let nextAt: number | null = null
  let intervalTimer: ReturnType<typeof setTimeout> | null = null
  let settleTimer: ReturnType<typeof setTimeout> | null = null
  let snapshot: AutoSyncStatus | null = null
  let relay: ChangeRelay | null = null
  /**
   * Whether another tab may have changed the stored outbox since this one last read it: true
   * until the first read, after a message from another tab, and at every interval tick. A sync
   * re-reads the outbox only then (or always, without a relay to hear the other tabs on): this
   * tab's own rows are in memory already, and the read costs three IndexedDB transactions on
   * the way from an edit to its push.
   */
  let outboxStale = true
  /** `syncNow()` asked for a pull, whatever the real-time channel says. */
  let pullWanted = false
  const cleanups: Array<() => void> = []

  /** `onError`, else the attached instance's error path; a throwing reporter never stops the timers. */
  const report = (error: SyncError): void => {
    try {
      const viaInstance = instance?.[REPORT_ERROR]
      if (options.onError) options.onError(error)
      else if (viaInstance) viaInstance(error)
      else console.warn(`[redux-idb-sync] auto-sync: ${error.name}: ${error.message}`)
    } catch {
      // A throwing onError must not stop the timers.
    }
  }

  const listeners = createEmitter<AutoSyncStatus>((error) => report(toSyncError(error, 'an auto-sync status listener threw')))

  function changed(): void {
    snapshot = null
    listeners.emit(getStatus())
  }

  function getStatus(): AutoSyncStatus {
    // nextSyncIn counts down, so it is computed per call; the rest is cached.
    const nextSyncIn = config.enabled && leader && nextAt !== null ? Math.max(0, nextAt - Date.now()) : null
    if (!snapshot || snapshot.nextSyncIn !== nextSyncIn) {
      snapshot = Object.freeze({ enabled: config.enabled, lastSyncTime, changeCounter, nextSyncIn })
    }
    return snapshot
  }

  function armInterval(): void {
    if (intervalTimer) clearTimeout(intervalTimer)
    intervalTimer = null
    nextAt = null
    if (disposed || !config.enabled || !leader) return
    nextAt = Date.now() + config.intervalMs
    intervalTimer = unref(
      setTimeout(() => {
        intervalTimer = null
        void tick()
      }, config.intervalMs),
    )
  }

  async function tick(): Promise<void> {
    const engine = instance?.sync
    const pending = changeCounter > 0 || (engine?.outboxDepth ?? 0) > 0
    // While the server is down the engine's health checks back off on their own; the interval
    // does not hammer it. Recovery triggers a sync (see the 'connection' event).
    // While the real-time channel is open, pokes pull what changed; the interval only pushes.
    // When the socket is down, the idle pull takes over again.
    const live = engine?.realtime?.state === 'open'
    if (engine?.connected && (pending || (pullWhenIdle && !live))) {
      outboxStale = true // the interval re-reads the outbox in any case: the safety net for changes no tab announced
      await runSync().catch(() => undefined)
    }
    armInterval()
    changed()
  }

  async function sync(): Promise<void> {
    const target = instance
    const engine = target?.sync
    if (!target || !engine) return
    if (settleTimer) clearTimeout(settleTimer)
    settleTimer = null
    const counted = changeCounter
    const wantsPull = pullWanted
    pullWanted = false
    try {
      await target.flush()
      // Another tab may have written outbox entries (the leader pushes them) or acknowledged ours.
      if (outboxStale || !relay) {
        outboxStale = false
        try {
          await engine.reload()
        } catch (caught) {
          outboxStale = true
          throw caught
        }
      }
      await engine.drain()
      // While the real-time channel is open, the poke that this push (or any other write)
      // caused pulls: pulling here as well would fetch the same records twice. syncNow() and
      // a sync without an open socket pull.
      if (engine.connected && (wantsPull || engine.realtime?.state !== 'open')) await engine.pullChanges()
      if (engine.connected && engine.outboxDepth === 0) {
        lastSyncTime = Date.now()
        changeCounter = Math.max(0, changeCounter - counted)
      }
    } catch (caught) {
      const error = toSyncError(caught, 'auto-sync failed')
      report(error)
      throw error
    } finally {
      changed()
    }
  }

  /** Two syncs never run at the same time; one asked for during a sync runs after it. */
  const runSync = singleFlight(sync, () => !disposed)

  function onLocalChange(count: number): void {
    changeCounter += count
    changed()
    if (!leader || !config.enabled) return
    if (changeCounter >= config.maxQueueSize) {
      void runSync().catch(() => undefined)
      return
    }
    if (config.syncOnChange) {
      if (settleTimer) clearTimeout(settleTimer)
      settleTimer = setTimeout(() => {
        settleTimer = null
        void runSync().catch(() => undefined)
      }, settleMs)
    }
  }

  function attach(found: PersistenceInstancePort): void {
    instance = found
    if (found.sync) {
      found.sync.autoPush = false // pushes are ours to schedule now
      // A change is pushed at once by the leader with settleMs 0: the engine may mark it sent as it writes it.
      found.sync.pushesAtOnce = () => leader && !disposed && config.enabled && config.syncOnChange && settleMs === 0
    }
    // The persistence instance is gone for good (a logout, a test's teardown): so is our work.
    cleanups.push(
      found.subscribe((status) => {
        if (status.disposed) autoSync.dispose()
      }),
    )
    cleanups.push(
      found.subscribeEvents((event) => {
        if (event.type === 'local-change') onLocalChange(event.count)
        else if (event.type === 'connection' && event.connected && leader && (changeCounter > 0 || (found.sync?.outboxDepth ?? 0) > 0)) {
          void runSync().catch(() => undefined)
        } else if (event.type === 'committed' && relay) {
          try {
            relay.post(event.changes)
          } catch (error) {
            report(toSyncError(error, 'posting to other tabs failed'))
          }
        }
      }),
    )
    const locks = options.locks !== undefined ? options.locks : ((globalThis as { navigator?: { locks?: LockManagerLike } }).navigator?.locks ?? null)
    const election = electLeader({
      name: `redux-idb-sync:${found.dbName}:auto-sync`,
      mode: options.leader ?? 'auto',
      locks,
      onLead: () => {
        if (disposed) return
        leader = true
        if (found.sync) {
          void found.sync.reload().then(() => found.sync?.drain())
          // Only the leader tab holds the socket; the others get the changes through the relay.
          found.sync.realtime?.start()
        }
        armInterval()
        changed()
      },
      onError: (error) => report(toSyncError(error, 'leader election failed')),
    })
    cleanups.push(() => election.stop())
    if (options.flushOnHide !== false) {
      cleanups.push(
        onPageHide(() => {
          found
            .flush()
            .then(() => found.sync?.drain())
            .catch((error: unknown) => report(toSyncError(error, 'flush on page hide failed')))
        }),
      )
    }
  }

  const reloadEngine = singleFlight(
    () => instance?.sync?.reload().catch((error: unknown) => report(toSyncError(error, 'reading the outbox another tab changed failed'))) ?? Promise.resolve(),
    () => !disposed,
  )

  const middleware = companionMiddleware(
    (persistence) => {
      relay = createChangeRelay({
        dbName: persistence.dbName,
        channel: options.channel,
        sharedDatabase: persistence.usesGlobalIndexedDB,
        onChanges: (changes) => {
          outboxStale = true
          persistence.applyExternalChanges(changes).catch((error: unknown) => report(toSyncError(error, 'applying changes from another tab failed')))
          // Another tab's committed change may be an outbox entry only the leader pushes: it
          // counts like a change of this tab's (sync on change, maxQueueSize).
          if (leader && persistence.sync) onLocalChange(changes.reduce((n, c) => n + c.puts.length + c.deletes.length, 0))
          // The leader's engine acknowledged, rejected or rolled back items: a follower re-reads
          // the outbox and dead letters so its per-item sync states follow.
          if (!leader && persistence.sync) void reloadEngine()
        },
      })
      attach(persistence)
    },
    () => disposed,
  )

  const autoSync: AutoSyncMiddleware = Object.assign(middleware, {
    syncNow: () => {
      pullWanted = true
      return runSync()
    },
    configureAutoSync(next: Partial<AutoSyncConfig>) {
      checkConfig(next, 'configureAutoSync')
      checkOptionKeys(next, Object.keys(configKeys), 'configureAutoSync.')
      const intervalChanged =
        (next.intervalMs !== undefined && next.intervalMs !== config.intervalMs) || (next.enabled !== undefined && next.enabled !== config.enabled)
      Object.assign(config, next)
      if (intervalChanged) armInterval()
      changed()
    },
    getAutoSyncStatus: getStatus,
    subscribeAutoSyncStatus: (listener: (status: AutoSyncStatus) => void) => listeners.subscribe(listener),
    isLeader: () => leader,
    nextSyncAt: () => (config.enabled && leader ? nextAt : null),
    getAutoSyncConfig: () => ({ ...config }),
    dispose() {
      if (disposed) return
      disposed = true
      if (intervalTimer) clearTimeout(intervalTimer)
      if (settleTimer) clearTimeout(settleTimer)
      intervalTimer = settleTimer = null
      nextAt = null
      leader = false
      for (const cleanup of cleanups.splice(0)) cleanup()
      instance?.sync?.realtime?.stop()
      if (instance?.sync) {
        instance.sync.autoPush = true
        instance.sync.pushesAtOnce = null
      }
      relay?.close()
      relay = null
      unsetDefaultAutoSync(autoSync)
      listeners.clear()
    },
  })
  if (options.default !== false) setDefaultAutoSync(autoSync)
  return autoSync
}
