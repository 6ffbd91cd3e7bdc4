import { createEmitter } from '../utils/emitter'
import type { SerializedSyncError } from '../errors'

/** Where one slice stands. */
export interface SliceStatus {
  readonly storeName: string
  readonly enabled: boolean
  /** `'disabled'` for a slice that was never enabled, so never loaded. */
  readonly hydration: 'pending' | 'done' | 'error' | 'disabled'
  readonly version: number
  readonly error: SerializedSyncError | null
}

/** A snapshot of a persistence instance. Never mutated; an unchanged status is the same object. */
export interface PersistenceStatus {
  readonly dbName: string
  /** `'memory'` means nothing survives a reload (no IndexedDB, e.g. SSR or a refusing private mode). */
  readonly storage: 'indexeddb' | 'memory' | 'custom'
  readonly persistent: boolean
  /** True once every enabled slice finished hydrating (successfully or not). */
  readonly hydrated: boolean
  readonly slices: Readonly<Record<string, SliceStatus>>
  /** Distinct keys waiting to be written. */
  readonly pendingOperations: number
  /** When the last batch committed (ms since epoch). */
  readonly lastCommitTime: number | null
  readonly lastError: SerializedSyncError | null
  readonly errorCount: number
  readonly disposed: boolean
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] }

/**
 * Holds the status as mutable fields and builds an immutable snapshot lazily, at most once per
 * change, so `useSyncExternalStore` sees a stable object. Listeners are notified once per
 * microtask however many fields changed.
 */
export function createStatusStore(initial: PersistenceStatus) {
  const fields: Mutable<PersistenceStatus> = { ...initial }
  let snapshot: PersistenceStatus = Object.freeze({ ...initial })
  let dirty = false
  let notifyScheduled = false
  // One failing listener must not starve the others.
  const listeners = createEmitter<PersistenceStatus>()

  const get = (): PersistenceStatus => {
    if (dirty) {
      snapshot = Object.freeze({ ...fields, slices: Object.freeze({ ...fields.slices }) })
      dirty = false
    }
    return snapshot
  }

  const notify = (): void => {
    notifyScheduled = false
    listeners.emit(get())
  }

  return {
    get,
    update(patch: Partial<PersistenceStatus>): void {
      Object.assign(fields, patch)
      dirty = true
      if (!notifyScheduled && listeners.size > 0) {
        notifyScheduled = true
        queueMicrotask(notify)
      }
    },
    slice(name: string, patch: Partial<SliceStatus>): void {
      const current = fields.slices[name]
      if (!current) return
      this.update({ slices: { ...fields.slices, [name]: Object.freeze({ ...current, ...patch }) } })
    },
    subscribe: (listener: (status: PersistenceStatus) => void): (() => void) => listeners.subscribe(listener),
  }
}

/** The status of an instance before it started: nothing pending, hydrated only when no slice is enabled. */
export function initialStatus(
  dbName: string,
  storage: PersistenceStatus['storage'],
  persistent: boolean,
  slices: ReadonlyArray<{
    readonly name: string
    readonly hydration: SliceStatus['hydration']
    readonly config: { readonly storeName: string; readonly enabled: boolean; readonly version: number }
  }>,
): PersistenceStatus {
  return {
    dbName,
    storage,
    persistent,
    hydrated: slices.every((s) => !s.config.enabled),
    slices: Object.fromEntries(
      slices.map((s): [string, SliceStatus] => [
        s.name,
        { storeName: s.config.storeName, enabled: s.config.enabled, hydration: s.hydration, version: s.config.version, error: null },
      ]),
    ),
    pendingOperations: 0,
    lastCommitTime: null,
    lastError: null,
    errorCount: 0,
    disposed: false,
  }
}
