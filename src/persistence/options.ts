import type { UnknownAction } from '@reduxjs/toolkit'
import type { ConflictStrategy } from '../core/conflicts'
import type { ChannelLike, ItemRef, RemotePlugin } from '../core/ports'
import type { SyncError } from '../errors'
import type { SyncEngine } from '../remote/createSyncEngine'
import type { ItemId, LocalStore } from '../storage/types'
import type { ShapeKind } from './shapes'
import type { ItemValidator } from './validate'

/**
 * Per-slice configuration: `{ storeName, enabled, syncToFlask, debounceMs, batchSize }`
 * plus how to find items inside the slice.
 *
 * @example
 * ```ts
 * const files: SlicePersistenceConfig<FileItem> = { storeName: 'files', debounceMs: 300, getId: (f) => f.path }
 * ```
 */
export interface SlicePersistenceConfig<Item = unknown> {
  /**
   * The IndexedDB object store of this slice. Each slice needs its own.
   * @default the slice name
   */
  storeName?: string
  /**
   * Whether changes are persisted and the slice is hydrated on start.
   * @default true
   */
  enabled?: boolean
  /**
   * Whether this slice's operations also go to the server, when a remote is configured.
   * @default true
   */
  syncToFlask?: boolean
  /**
   * Which way a synced slice syncs (`syncToFlask: false` turns both off):
   * - `'both'`: local changes are pushed, server changes pulled;
   * - `'push-only'`: local changes are pushed; the slice's collection is not pulled (a device
   *   that only reports, e.g. telemetry or an outbox of orders);
   * - `'pull-only'`: server changes are pulled; local changes stay local (a read-only catalogue).
   * @default 'both'
   * @example
   * ```ts
   * slices: { catalogue: { syncDirection: 'pull-only' }, events: { syncDirection: 'push-only' } }
   * ```
   */
  syncDirection?: 'both' | 'push-only' | 'pull-only'
  /**
   * Which items are pushed: an item for which it returns `false` stays local (its changes are
   * not pushed; a delete is always pushed). Called with each changed item as it is written.
   * An item pushed before and then filtered keeps the server's last version. If it throws, the
   * item stays local and the error goes to `onError`.
   * @default undefined (every item is pushed)
   * @example
   * ```ts
   * notes: { pushFilter: (note) => !note.draft } // drafts stay on this device
   * ```
   */
  pushFilter?(item: Item): boolean
  /**
   * A new device (no pull cursor yet) first pulls the `initialPull` most recently written items
   * of this slice's collection, shows them, then reads everything from the change feed as usual,
   * with `state.sync.progress` (`{ operation: 'pull', done, total }`) counting this collection's
   * items. Needs a protocol 3 server (older ones: the usual pull).
   * @default undefined (everything is pulled in feed order)
   * @example
   * ```ts
   * notes: { initialPull: 50 } // the 50 newest notes first, the rest in the background
   * ```
   */
  initialPull?: number
  /**
   * Debounce per key: a key is written this long after its last change.
   * @default 300
   */
  debounceMs?: number
  /**
   * Max operations per IndexedDB transaction. Benchmark B3 measured a
   * burst of 1,000 keys in Chromium at 2.5× the one-transaction limit with 10 and 1.26× with
   * 100, so the default is 100 (docs/benchmarks.md). Smaller batches commit sooner each.
   * @default 100
   */
  batchSize?: number
  /**
   * Reads an item's id in `entities` and `array` slices (record slices use their keys).
   * Must return a non-empty string or a finite number.
   * @default (item) => item.id
   */
  getId?(item: Item): ItemId | undefined
  /**
   * Where the collection lives inside the slice state, e.g. `['items']` for `{ items: [...], loading }`.
   * @default [] (the slice state itself)
   */
  path?: readonly string[]
  /**
   * The collection layout: an RTK entity-adapter state `{ ids, entities }`, a record keyed by id,
   * or an array of items. `'auto'` detects it from the state.
   * @default 'auto'
   */
  shape?: 'auto' | ShapeKind
  /**
   * Orders hydrated items in `entities` and `array` slices, e.g. an entity adapter's `sortComparer`.
   * Without it, hydrated items come in key order.
   */
  sortComparer?(a: Item, b: Item): number
  /**
   * Schema version of the stored items. When the stored version differs, `migrate` runs first.
   * @default 1
   */
  version?: number
  /**
   * Turns the items stored at `fromVersion` into items of `version`. Runs before hydration; its
   * result replaces the stored items in one transaction. If it throws, the stored data stays
   * untouched and the slice reports a `MigrationError`.
   */
  migrate?(items: unknown[], fromVersion: number): Item[] | Promise<Item[]>
  /**
   * How conflicts with the server are settled for this slice.
   * @default the `remote.conflict` option, else 'server-wins'
   */
  conflict?: ConflictStrategy<Item>
  /**
   * Differential sync with field-level merge. A put is sent as a patch of the fields that
   * changed against the last server value this client knows (RFC 7396 merge patch plus the old
   * values of those fields), and the server merges it at field level: when another device
   * changed other fields meanwhile, both edits are kept with no conflict; the same field changed
   * on both sides is a conflict, decided per field by `conflict` (a merge function also receives
   * `base`). Needs a protocol 3 server (the client sends whole values to older ones).
   *
   * Costs: the outbox row keeps the last server value beside the pending one, and a push diffs
   * the two (benchmark B13). Opt-in because it changes what a conflict is: a rule that spans
   * fields (e.g. `end` after `start`) can be broken by a merge of two valid edits; check such
   * rules with `validate`.
   * @default false
   * @example
   * ```ts
   * notes: { fieldMerge: true, conflict: 'server-wins' } // one-sided field edits always survive
   * ```
   */
  fieldMerge?: boolean
  /**
   * What happens to the local item when the server refuses a change for good (a 4xx other than
   * 401/409, or a per-operation rejection such as a validation error):
   * - `'rollback'`: the item returns to its confirmed value (the last value the server
   *   acknowledged or sent) in the state and in IndexedDB, in one step, and
   *   `redux-idb-sync/rolledBack` names the key, the reason and the rejected value. A newer
   *   change of the same key made after the rejected one stays and is pushed on top of the
   *   server's version.
   * - `'keep'`: the rejected value stays where it is; discarding the
   *   dead letter rolls it back.
   *
   * Either way the operation is kept in the dead-letter list (retry, edit and resend, or
   * discard) and `selectItemSyncState` says `'rejected'`. The default follows what users of
   * redux-offline (`meta.offline.rollback`) and TanStack Query (`onMutate`/`onError`) write by
   * hand: an optimistic change the server refused is undone.
   * @default 'rollback'
   * @example
   * ```ts
   * notes: { onReject: 'keep' } // a draft editor: keep the text, show the reason
   * ```
   */
  onReject?: 'rollback' | 'keep'
  /**
   * The items an item refers to (a file's folder). A change is not pushed while an item it
   * depends on waits for its create to be acknowledged; when that create is rejected for good,
   * the dependants' pending changes are dead-lettered too (code `dependency_rejected`, naming the
   * rejected key) and rolled back as `onReject` says.
   * @default undefined (no dependencies)
   * @example
   * ```ts
   * files: { dependsOn: (file) => [{ slice: 'folders', id: file.folderId }] }
   * ```
   */
  dependsOn?(item: Item): Iterable<ItemRef>
  /**
   * The type of this slice's ids. The server stores ids as strings; pulled ids are converted back.
   * @default 'auto' (numbers if the slice's ids are numbers, else strings)
   */
  idType?: 'auto' | 'string' | 'number'
  /**
   * Tells the middleware which ids an action changed, so a changed slice costs O(changed ids)
   * instead of one reference comparison per item. Return `undefined` when you cannot tell (the
   * slice is then diffed in full, as without this option). `idsFromPayload` reads the payloads of
   * RTK entity-adapter reducers (`addOne`, `updateOne`, `upsertMany`, `removeOne`, ...).
   *
   * It is a promise you make: an id the action changed but this function leaves out is not
   * persisted. It is used only where it cannot miss additions or removals: in `entities` slices
   * when the `ids` array kept its reference, and in `record` slices. Turn on
   * `verifyChangedIds` in development and tests to check it.
   * @default undefined (every changed slice is diffed in full)
   * @example
   * ```ts
   * files: { changedIds: idsFromPayload, verifyChangedIds: import.meta.env.DEV }
   * ```
   */
  changedIds?(action: UnknownAction): Iterable<ItemId> | undefined
  /**
   * Learns which items an action changed from immer's patches instead of comparing every item
   * of the slice: for an action type already seen to change a persisted slice into a state immer
   * produced (frozen, as RTK's reducers leave it with immer's default auto-freeze), the enhancer
   * hands the slice reducers a draft (RTK's `createReducer` mutates a draft it is given instead of
   * running its own `produce`) and reads the changed ids from the patches, additions and removals
   * included. It falls back to the full diff whenever the patches cannot name the ids: an action
   * type not seen before, a replaced collection, a case reducer that returned a new object (that
   * type is never drafted again), a type that changed a slice whose state is not frozen (a reducer
   * written without immer, or auto-freeze turned off: never drafted, so such a reducer never sees
   * a draft), a dispatch nested inside a store listener, an `array` slice.
   *
   * Set `false` for a slice whose reducer keeps a reference to its state beyond the call (a
   * root reducer that copies this slice's objects into another slice, a memo cache): drafts
   * must not outlive the reducer.
   * @default true
   * @example
   * ```ts
   * files: { track: false } // every change of this slice is found by the full diff
   * ```
   */
  track?: boolean
  /**
   * Also runs the full diff after each diff that used `changedIds` or the patch tracker
   * (`track`), persists whatever they missed, and reports each miss as an `InvalidOptionError`
   * naming the action type (`slices.<name>.changedIds` for a hint, `slices.<name>.track` for the
   * tracker).
   * @default false
   */
  verifyChangedIds?: boolean
  /**
   * Checks items read back from IndexedDB (hydration) and items from the server (pulls, the
   * server's side of a conflict) before they are merged: a Standard Schema (zod, valibot,
   * arktype, ...) or a function returning `true`, or `false`/a message. An invalid item is
   * reported as a `ValidationError`, is not merged and not written; the state keeps its own.
   * Items the app itself dispatches are not checked (they passed the app's reducers).
   * @default undefined (no check)
   * @example
   * ```ts
   * files: { validate: z.object({ id: z.string(), name: z.string() }) }
   * ```
   */
  validate?: ItemValidator<Item>
}

/** The slice settings that may change at runtime through `configurePersistence`. */
export type RuntimeSliceConfig = Pick<SlicePersistenceConfig, 'enabled' | 'syncToFlask' | 'debounceMs' | 'batchSize'>

/** Options of `createPersistenceMiddleware`. */
export interface PersistenceOptions {
  /**
   * The persisted slices, keyed by slice name (the key in the root state).
   * @example
   * ```ts
   * slices: { files: { storeName: 'files' }, settings: { syncToFlask: false, debounceMs: 1000 } }
   * ```
   */
  slices: Record<string, SlicePersistenceConfig>
  /**
   * The IndexedDB database name. Two stores with different names never share data.
   * @default 'redux-idb-sync'
   */
  dbName?: string
  /**
   * How long opening or upgrading the database may take before it fails with `StorageBlockedError`.
   * @default 10000
   */
  openTimeoutMs?: number
  /**
   * Backoff of failed batches: the n-th retry waits between half and all of
   * `min(maxDelayMs, initialDelayMs * 2^(n-1))`.
   * @default { initialDelayMs: 250, maxDelayMs: 30000 }
   */
  retry?: { initialDelayMs?: number; maxDelayMs?: number }
  /**
   * Items nested deeper than this are rejected with `NonSerializableError`.
   * @default 100
   */
  maxDepth?: number
  /**
   * IndexedDB durability for writes. Chromium's default is `'relaxed'`; `'strict'` waits for the disk.
   * @default 'default'
   */
  durability?: IDBTransactionDurability
  /**
   * Receives every background failure (a write, a hydration, a bad item). Never called with payloads.
   * @default logs `name: message` with console.warn
   */
  onError?: (error: SyncError) => void
  /**
   * The IndexedDB factory. Where none exists (SSR), the instance runs in memory with `persistent: false`.
   * @default globalThis.indexedDB
   */
  indexedDB?: IDBFactory
  /** A custom storage backend; replaces IndexedDB entirely. */
  storage?: LocalStore
  /**
   * The channel on which `clear()` (logout) tells the other tabs using the same database to log
   * out too: they drop what is pending, dispose, and report a `DatabaseDeletedError` with
   * `reason: 'logout'`, instead of writing the rest of the session into a new database. `null`
   * turns it off.
   * @default a BroadcastChannel named `redux-idb-sync:logout:<dbName>` when the instance uses the global indexedDB
   */
  logoutChannel?: ChannelLike | null
  /**
   * Sync with a server that speaks docs/protocol.md (the reference Flask server in server/): a
   * remote built by `createRemote` from `redux-idb-sync/remote` (its own entry, so local-only
   * apps do not bundle the sync engine and ky). A plain options object is refused with an
   * `InvalidOptionError` naming `remote`.
   * @default undefined: the instance is local-only
   * @example
   * ```ts
   * // import { createRemote } from 'redux-idb-sync/remote'
   * remote: createRemote({ baseUrl: 'http://127.0.0.1:5000/api', getToken: () => session.token })
   * ```
   */
  remote?: RemotePlugin<SyncEngine>
}
