import type { SyncError } from '../errors'
import type { ItemId, TransactionalStore } from '../storage/types'
import type { ConflictStrategy } from './conflicts'
import type { PersistenceEvent } from './events'

/** The part of the Web Locks API leader election uses (`navigator.locks`). */
export interface LockManagerLike {
  request(name: string, options: { mode?: 'exclusive' | 'shared'; signal?: AbortSignal }, callback: (lock: unknown) => Promise<unknown>): Promise<unknown>
}

/** The part of BroadcastChannel cross-tab updates use. */
export interface ChannelLike {
  postMessage(message: unknown): void
  addEventListener(type: 'message', listener: (event: { data: unknown }) => void): void
  removeEventListener(type: 'message', listener: (event: { data: unknown }) => void): void
  close(): void
}

/** One slice as the sync engine sees it. */
export interface HostSlice {
  readonly name: string
  readonly storeName: string
  readonly syncToFlask: boolean
  readonly conflict: ConflictStrategy | undefined
}

/**
 * What the sync engine needs from the persistence instance it belongs to: a port into the
 * local state. Data flows one way through it: the engine reads items and applies server data;
 * it never reaches into the instance otherwise.
 */
export interface SyncHost {
  storage(): TransactionalStore
  slices(): readonly HostSlice[]
  dispatch(action: { type: string }): void
  /** Applies server items to the Redux state without queueing them to be written back. */
  applyToState(slice: string, puts: ReadonlyArray<readonly [ItemId, unknown]>, deletes: readonly ItemId[]): void
  /** Every `[id, item]` of a slice's collection in the Redux state. */
  localEntries(slice: string): Array<[ItemId, unknown]>
  /** Turns a server id (always a string) into the slice's id (a number for numeric-id slices). */
  localId(slice: string, remoteId: string, value?: unknown): ItemId
  /** Writes the local queue now. */
  flushLocal(): Promise<void>
  /** Whether a local change of this key is queued and not yet committed: it is newer than anything stored. */
  isQueued(key: string): boolean
  reportError(error: SyncError): void
  /** The slice's `validate` verdict on a server item: a `ValidationError`, or `null` when valid. */
  validate(slice: string, id: ItemId, value: unknown): SyncError | null
  /** Reports operations (pushes, pulls, health checks), depth and connection changes. */
  emit(event: PersistenceEvent): void
}

/** What the sync thunks need of the engine (`getSyncEngine` answers with it); implemented by the sync engine. */
export interface SyncEngineHandle {
  readonly isSyncEngine: true
  pushAll(): Promise<void>
  pullAll(): Promise<void>
  pullChanges(): Promise<void>
  checkConnection(): Promise<boolean>
}
