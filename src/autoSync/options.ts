import { InvalidOptionError, type SyncError } from '../errors'
import type { ChannelLike, LockManagerLike } from '../core/ports'
import type { LeaderMode } from '../tabs/leader'
import { checkOptionKeys } from '../utils/optionKeys'

/** Auto-sync's runtime settings (`configureAutoSync` changes them). */
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
  /**
   * Receives failed syncs and other auto-sync errors.
   * @default the persistence instance's error path: its `onError` (console.warn by default), its
   * status (`lastError`, `errorCount`) and a `persistenceFailed` action; console.warn before an
   * instance is attached
   */
  onError?: (error: SyncError) => void
  /**
   * Whether module-level `configureAutoSync()` acts on this instance (the most recent default wins).
   * @default true
   */
  default?: boolean
}

/** Auto-sync's status. */
export interface AutoSyncStatus {
  readonly enabled: boolean
  /** When the last auto or manual sync finished successfully (ms since epoch); 0 before the first. */
  readonly lastSyncTime: number
  /** Local changes since the last sync. */
  readonly changeCounter: number
  /** Ms until the interval fires next; `null` when disabled or not the leader. */
  readonly nextSyncIn: number | null
}

/** Every key of the options and of the runtime settings: plain-JS typos (`interval`) are refused by name. */
export const configKeys: Record<keyof AutoSyncConfig, true> = { enabled: true, intervalMs: true, syncOnChange: true, maxQueueSize: true }
// Listed, not spread from configKeys: a spread keeps this object (and the module) in bundles that never use it.
const optionKeys: Record<keyof AutoSyncOptions, true> = {
  enabled: true,
  intervalMs: true,
  syncOnChange: true,
  maxQueueSize: true,
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

export function checkConfig(config: Partial<AutoSyncConfig>, prefix: string): void {
  if (typeof config !== 'object' || config === null) throw new InvalidOptionError(prefix, 'must be an object')
  if (config.enabled !== undefined && typeof config.enabled !== 'boolean') throw new InvalidOptionError(`${prefix}.enabled`, 'must be a boolean')
  if (config.syncOnChange !== undefined && typeof config.syncOnChange !== 'boolean') throw new InvalidOptionError(`${prefix}.syncOnChange`, 'must be a boolean')
  if (config.intervalMs !== undefined && !isPositive(config.intervalMs)) throw new InvalidOptionError(`${prefix}.intervalMs`, 'must be a number > 0')
  if (config.maxQueueSize !== undefined && !(Number.isInteger(config.maxQueueSize) && config.maxQueueSize >= 1)) {
    throw new InvalidOptionError(`${prefix}.maxQueueSize`, 'must be an integer >= 1')
  }
}

/** Checks the options and fills in the defaults. Throws `InvalidOptionError` naming the option. */
export function resolveAutoSyncOptions(options: AutoSyncOptions): { config: AutoSyncConfig; settleMs: number; pullWhenIdle: boolean } {
  checkConfig(options, 'options')
  checkOptionKeys(options, Object.keys(optionKeys), 'options.')
  if (options.settleMs !== undefined && !(typeof options.settleMs === 'number' && options.settleMs >= 0)) {
    throw new InvalidOptionError('options.settleMs', 'must be a number >= 0')
  }
  return {
    config: {
      enabled: options.enabled ?? true,
      intervalMs: options.intervalMs ?? 30_000,
      syncOnChange: options.syncOnChange ?? true,
      maxQueueSize: options.maxQueueSize ?? 50,
    },
    settleMs: options.settleMs ?? 1000,
    pullWhenIdle: options.pullWhenIdle ?? true,
  }
}
