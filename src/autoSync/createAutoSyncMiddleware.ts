import type { Middleware } from '@reduxjs/toolkit'
import { InvalidOptionError, toSyncError, type SyncError } from '../errors'
import { companionMiddleware } from '../persistence/companion'
import type { PersistenceMiddleware } from '../persistence/createPersistenceMiddleware'
import type { ChangeSet } from '../core/events'
import { checkOptionKeys } from '../utils/optionKeys'
import { unref } from '../utils/unref'
import { setDefaultAutoSync, unsetDefaultAutoSync } from './registry'
import { electLeader, type ChannelLike, type LeaderMode, type LockManagerLike } from '../tabs/leader'

/** The seed's auto-sync settings. */
export interface AutoSyncConfig {
  /**
   * Whether the interval runs.
   * @default true
   */
  enabled: boolean
  /**
   * Sync every this many ms when changes are pending.
   * @default 30000
   */
  intervalMs: number
  /**
   * Sync once local changes have settled (`settleMs` after the last one) instead of waiting for the interval.
   * @default true
   */
  syncOnChange: boolean
  /**
   * This many changes since the last sync force a sync at once.
   * @default 50
   */
  maxQueueSize: number
}

/** Options of {@link createAutoSyncMiddleware}. */
export interface AutoSyncOptions extends Partial<AutoSyncConfig> {
  /**
   * With `syncOnChange`, how long after the last change to sync.
   * @default 1000
   */
  settleMs?: number
  /**
   * When the interval fires without local changes, still pull what changed on the server.
   * @default true
   */
  pullWhenIdle?: boolean
  /**
   * Leader election among tabs sharing the database: only the leader runs auto-sync.
   * @default 'auto' (Web Locks; see LeaderMode)
   */
  leader?: LeaderMode
  /**
   * The lock manager for leader election.
   * @default globalThis.navigator?.locks
   */
  locks?: LockManagerLike | null
  /**
   * The channel that carries committed changes to the other tabs, so their stores update without
   * writing anything back. `null` turns it off.
   * @default a BroadcastChannel named `redux-idb-sync:<dbName>` when the instance uses the global indexedDB
   */
  channel?: ChannelLike | null
  /**
   * Flush and push when the page is hidden or unloaded (`visibilitychange`, `pagehide`).
   * @default true
   */
  flushOnHide?: boolean
  /** Receives failed syncs. @default the persistence instance's onError path (console.warn) */
  onError?: (error: SyncError) => void
  /**
   * Whether module-level `configureAutoSync()` acts on this instance (the most recent default wins).
   * @default true
   */
  default?: boolean
}

/** The seed's auto-sync status. */
export interface AutoSyncStatus {
  readonly enabled: boolean
  /** When the last auto or manual sync finished successfully (ms since epoch); 0 before the first. */
  readonly lastSyncTime: number
  /** Local changes since the last sync. */
  readonly changeCounter: number
  /** Ms until the interval fires next; `null` when disabled or not the leader. */
  readonly nextSyncIn: number | null
}

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

interface ChannelMessage {
  readonly type: 'redux-idb-sync/committed'
  readonly from: string
  readonly changes: readonly ChangeSet[]
}

/** Every key of the options and of the runtime settings: plain-JS typos (`interval`) are refused by name. */
const configKeys: Record<keyof AutoSyncConfig, true> = { enabled: true, intervalMs: true, syncOnChange: true, maxQueueSize: true }
const optionKeys: Record<keyof AutoSyncOptions, true> = {
  ...configKeys,
  settleMs: true,
  pullWhenIdle: true,
  leader: true,
  locks: true,
  channel: true,
  flushOnHide: true,
  onError: true,
  default: true,
}

const isPositive = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v > 0

function checkConfig(config: Partial<AutoSyncConfig>, prefix: string): void {
  if (typeof config !== 'object' || config === null) throw new InvalidOptionError(prefix, 'must be an object')
  if (config.enabled !== undefined && typeof config.enabled !== 'boolean') throw new InvalidOptionError(`${prefix}.enabled`, 'must be a boolean')
  if (config.syncOnChange !== undefined && typeof config.syncOnChange !== 'boolean') throw new InvalidOptionError(`${prefix}.syncOnChange`, 'must be a boolean')
  if (config.intervalMs !== undefined && !isPositive(config.intervalMs)) throw new InvalidOptionError(`${prefix}.intervalMs`, 'must be a number > 0')
  if (config.maxQueueSize !== undefined && !(Number.isInteger(config.maxQueueSize) && config.maxQueueSize >= 1)) {
    throw new InvalidOptionError(`${prefix}.maxQueueSize`, 'must be an integer >= 1')
  }
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
  checkConfig(options, 'options')
  checkOptionKeys(options, Object.keys(optionKeys), 'options.')
  if (options.settleMs !== undefined && !(typeof options.settleMs === 'number' && options.settleMs >= 0)) {
    throw new InvalidOptionError('options.settleMs', 'must be a number >= 0')
  }
  const config: AutoSyncConfig = {
    enabled: options.enabled ?? true,
    intervalMs: options.intervalMs ?? 30_000,
    syncOnChange: options.syncOnChange ?? true,
    maxQueueSize: options.maxQueueSize ?? 50,
  }
  const settleMs = options.settleMs ?? 1000
  const pullWhenIdle = options.pullWhenIdle ?? true
  const tabId = Math.random().toString(36).slice(2)

  let instance: PersistenceMiddleware | null = null
  let leader = false
  let disposed = false
  let changeCounter = 0
  let lastSyncTime = 0
  let nextAt: number | null = null
  let intervalTimer: ReturnType<typeof setTimeout> | null = null
  let settleTimer: ReturnType<typeof setTimeout> | null = null
  let running: Promise<void> | null = null
  let again = false
  let snapshot: AutoSyncStatus | null = null
  const listeners = new Set<(status: AutoSyncStatus) => void>()
  const cleanups: Array<() => void> = []

  const report = (error: SyncError): void => {
    try {
      if (options.onError) options.onError(error)
      else console.warn(`[redux-idb-sync] auto-sync: ${error.name}: ${error.message}`)
    } catch {
      // A throwing onError must not stop the timers.
    }
  }

  function changed(): void {
    snapshot = null
    const current = getStatus()
    for (const listener of [...listeners]) {
      try {
        listener(current)
      } catch (error) {
        report(toSyncError(error, 'an auto-sync status listener threw'))
      }
    }
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
    if (engine?.connected && (pending || pullWhenIdle)) await runSync().catch(() => undefined)
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
    try {
      await target.flush()
      // Another tab may have written outbox entries (the leader pushes them) or acknowledged ours.
      await engine.reload()
      await engine.drain()
      if (engine.connected) await engine.pullChanges()
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

  /** Single flight: two syncs never run at the same time. */
  function runSync(): Promise<void> {
    if (running) {
      again = true
      return running
    }
    running = (async () => {
      try {
        do {
          again = false
          await sync()
        } while (again && !disposed)
      } finally {
        running = null
      }
    })()
    return running
  }

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

  function attach(found: PersistenceMiddleware): void {
    instance = found
    if (found.sync) found.sync.autoPush = false // pushes are ours to schedule now
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
        } else if (event.type === 'committed' && channel) {
          const message: ChannelMessage = { type: 'redux-idb-sync/committed', from: tabId, changes: event.changes }
          try {
            channel.postMessage(message)
          } catch (error) {
            report(toSyncError(error, 'posting to other tabs failed'))
          }
        }
      }),
    )
    const locks =
      options.locks !== undefined ? options.locks : ((globalThis as { navigator?: { locks?: LockManagerLike } }).navigator?.locks ?? null)
    const election = electLeader({
      name: `redux-idb-sync:${found.dbName}:auto-sync`,
      mode: options.leader ?? 'auto',
      locks,
      onLead: () => {
        if (disposed) return
        leader = true
        if (found.sync) {
          void found.sync.reload().then(() => found.sync?.drain())
        }
        armInterval()
        changed()
      },
      onError: (error) => report(toSyncError(error, 'leader election failed')),
    })
    cleanups.push(() => election.stop())
    if (channel) {
      const onMessage = (event: { data: unknown }): void => {
        const data = event.data as Partial<ChannelMessage> | null
        if (!data || data.type !== 'redux-idb-sync/committed' || data.from === tabId || !Array.isArray(data.changes)) return
        found.applyExternalChanges(data.changes).catch((error: unknown) => report(toSyncError(error, 'applying changes from another tab failed')))
      }
      channel.addEventListener('message', onMessage)
      cleanups.push(() => channel?.removeEventListener('message', onMessage))
    }
    if (options.flushOnHide !== false) {
      const doc = (globalThis as { document?: EventTarget & { visibilityState?: string } }).document
      const win = globalThis as { addEventListener?: EventTarget['addEventListener']; removeEventListener?: EventTarget['removeEventListener'] }
      const flushNow = (): void => {
        found
          .flush()
          .then(() => found.sync?.drain())
          .catch((error: unknown) => report(toSyncError(error, 'flush on page hide failed')))
      }
      const onVisibility = (): void => {
        if (doc?.visibilityState === 'hidden') flushNow()
      }
      doc?.addEventListener('visibilitychange', onVisibility)
      win.addEventListener?.('pagehide', flushNow)
      cleanups.push(() => {
        doc?.removeEventListener('visibilitychange', onVisibility)
        win.removeEventListener?.('pagehide', flushNow)
      })
    }
  }

  let channel: ChannelLike | null = null

  const middleware = companionMiddleware((persistence) => {
    if (options.channel !== undefined) channel = options.channel
    else if (typeof BroadcastChannel === 'function' && persistence.usesGlobalIndexedDB) {
      channel = unref(new BroadcastChannel(`redux-idb-sync:${persistence.dbName}`)) as unknown as ChannelLike
    }
    attach(persistence)
  }, () => disposed)

  const autoSync: AutoSyncMiddleware = Object.assign(middleware, {
    syncNow: () => runSync(),
    configureAutoSync(next: Partial<AutoSyncConfig>) {
      checkConfig(next, 'configureAutoSync')
      checkOptionKeys(next, Object.keys(configKeys), 'configureAutoSync.')
      const intervalChanged = (next.intervalMs !== undefined && next.intervalMs !== config.intervalMs) || (next.enabled !== undefined && next.enabled !== config.enabled)
      Object.assign(config, next)
      if (intervalChanged) armInterval()
      changed()
    },
    getAutoSyncStatus: getStatus,
    subscribeAutoSyncStatus(listener: (status: AutoSyncStatus) => void) {
      listeners.add(listener)
      return () => {
        listeners.delete(listener)
      }
    },
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
      if (instance?.sync) instance.sync.autoPush = true
      if (options.channel === undefined) channel?.close()
      channel = null
      unsetDefaultAutoSync(autoSync)
      listeners.clear()
    },
  })
  if (options.default !== false) setDefaultAutoSync(autoSync)
  return autoSync
}
