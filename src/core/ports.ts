import type { SyncError } from '../errors'
import type { ItemId, TransactionalStore } from '../storage/types'
import type { ConflictStrategy } from './conflicts'
import type { ChangeSet, PersistenceEvent } from './events'

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

/**
 * The part of the WebSocket API the real-time channel uses: the browser's `WebSocket`, Node 22's
 * global one, or the `ws` package's class fit it. Injected through `remote.realtime.WebSocket`,
 * so Node tests and server-side rendering need no global.
 */
export interface WebSocketLike {
  readonly readyState: number
  send(data: string): void
  close(code?: number, reason?: string): void
  addEventListener(type: 'open' | 'error', listener: () => void): void
  addEventListener(type: 'message', listener: (event: { data: unknown }) => void): void
  addEventListener(type: 'close', listener: (event: { code: number; reason: string }) => void): void
}

/** A WebSocket constructor (`new WebSocket(url)`), as {@link WebSocketLike} describes it. */
export type WebSocketConstructorLike = new (url: string) => WebSocketLike

/**
 * The real-time channel's state, as the sync status shows it: `off` (not configured, or not
 * this tab's to hold: only the leader tab holds the socket), `connecting` (opening, or
 * authenticating), `open` (the server pokes this client when its feed advances), `down` (closed;
 * interval polling covers the gap while it reconnects with backoff).
 */
export type RealtimeState = 'off' | 'connecting' | 'open' | 'down'

/** What the leader tab does with the real-time channel (auto-sync starts it on taking the lead). */
export interface RealtimeControl {
  /** Opens the socket (and keeps it open, reconnecting with backoff) until `stop()`. */
  start(): void
  /** Closes the socket (code 1000) and stops reconnecting. */
  stop(): void
  readonly state: RealtimeState
}

/** One slice as the sync engine sees it. */
export interface HostSlice {
  readonly name: string
  readonly storeName: string
  readonly syncToFlask: boolean
  readonly conflict: ConflictStrategy | undefined
  /** Pushes patches against the confirmed value and merges conflicts at field level. */
  readonly fieldMerge: boolean
  /** Local changes are pushed (`syncDirection` is not `'pull-only'`). */
  readonly push: boolean
  /** The collection is pulled (`syncDirection` is not `'push-only'`). */
  readonly pull: boolean
  /** Items for which it returns `false` are not pushed. */
  readonly pushFilter: ((item: unknown) => boolean) | undefined
  /** A new device first pulls this many of the most recent items, then the rest. */
  readonly initialPull: number | undefined
  /** What a permanent rejection does to the local item (`SlicePersistenceConfig.onReject`). */
  readonly onReject: 'rollback' | 'keep'
  /** The items an item refers to (`SlicePersistenceConfig.dependsOn`), or `undefined`. */
  readonly dependsOn: ((item: unknown) => Iterable<ItemRef>) | undefined
}

/** Names one item: its slice and its id. */
export interface ItemRef {
  readonly slice: string
  readonly id: ItemId
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

/** The part of the sync engine companions drive and read. */
export interface CompanionEngine {
  /** Whether the engine pushes on its own after local writes; auto-sync turns it off to schedule pushes itself. */
  autoPush: boolean
  /**
   * Set by auto-sync: whether a committed change is pushed at once (by its leader tab, with
   * `syncOnChange` and `settleMs: 0`). The engine then marks the change sent in the transaction
   * that stores it, so its push needs no transaction of its own first.
   */
  pushesAtOnce: (() => boolean) | null
  readonly connected: boolean
  readonly outboxDepth: number
  readonly deadLetterCount: number
  reload(): Promise<void>
  drain(): Promise<void>
  pullChanges(): Promise<void>
  /** The real-time channel, when `remote.realtime` is configured; the leader tab starts it. */
  readonly realtime: RealtimeControl | null
}

/**
 * Where a persistence instance keeps its error reporter for companions: a companion without its
 * own `onError` reports through the instance (its `onError`, status and `persistenceFailed`). A
 * symbol keyed with `Symbol.for`, so the ESM and CJS copies of the library agree on it.
 */
export const REPORT_ERROR: unique symbol = Symbol.for('redux-idb-sync.reportError')

/** What a companion (the monitor, auto-sync) uses of the store's persistence instance. */
export interface PersistenceInstancePort {
  readonly dbName: string
  readonly usesGlobalIndexedDB: boolean
  readonly sync: CompanionEngine | null
  flush(): Promise<void>
  getStatus(): { readonly pendingOperations: number }
  subscribe(listener: (status: { readonly disposed: boolean }) => void): () => void
  subscribeEvents(listener: (event: PersistenceEvent) => void): () => void
  applyExternalChanges(changes: readonly ChangeSet[]): Promise<void>
  readonly [REPORT_ERROR]?: (error: SyncError) => void
}

/** The brand of a {@link RemotePlugin}: a string, so the ESM and CJS copies of the library recognise each other's. */
export const REMOTE_PLUGIN = 'redux-idb-sync/remote' as const

/**
 * A remote to sync with, as `createRemote` (`redux-idb-sync/remote`) builds it: the persistence
 * instance takes it as its `remote` option and calls `create` once, handing the engine the
 * instance's {@link SyncHost}. The core never imports the sync engine (nor ky): an app that
 * passes no remote does not bundle them.
 */
export interface RemotePlugin<Engine = unknown> {
  /** Tells a plugin from a plain options object (the `remote` option of 0.1). */
  readonly kind: typeof REMOTE_PLUGIN
  /** The remote's options, checked, with their defaults filled in; the instance reads the clock. */
  readonly options: {
    /** This device's clock: the write queue stamps local changes with it, as the engine does. */
    readonly now: () => number
  }
  /** Builds the sync engine of one persistence instance; each call is a new engine. */
  create(host: SyncHost): Engine
}
