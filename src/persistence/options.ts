import type { UnknownAction } from '@reduxjs/toolkit'
import { InvalidOptionError, type SyncError } from '../errors'
import type { ItemId, LocalStore } from '../storage/types'
import { RESERVED_PREFIX } from '../storage/types'
import type { ConflictStrategy } from '../core/conflicts'
import type { ChannelLike } from '../core/ports'
import { REMOTE_OPTION_KEYS, REMOTE_PATH_KEYS, type RemoteOptions } from '../remote/options'
import { checkOptionKeys } from '../utils/optionKeys'
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
   * Also runs the full diff after each diff that used `changedIds`, persists whatever the hint
   * missed, and reports each miss as an `InvalidOptionError` naming the action type.
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
   * Sync with a server that speaks docs/protocol.md (the reference Flask server in server/).
   * Without it the instance is local-only.
   * @example
   * ```ts
   * remote: { baseUrl: 'http://127.0.0.1:5000/api', getToken: () => session.token }
   * ```
   */
  remote?: RemoteOptions
}

/** A slice's configuration with every default filled in. */
export interface ResolvedSliceConfig {
  readonly storeName: string
  enabled: boolean
  syncToFlask: boolean
  debounceMs: number
  batchSize: number
  readonly getId: (item: unknown) => unknown
  readonly path: readonly string[]
  readonly shape: 'auto' | ShapeKind
  readonly sortComparer: ((a: unknown, b: unknown) => number) | undefined
  readonly version: number
  readonly migrate: ((items: unknown[], fromVersion: number) => unknown[] | Promise<unknown[]>) | undefined
  readonly conflict: ConflictStrategy | undefined
  readonly idType: 'auto' | 'string' | 'number'
  readonly changedIds: ((action: UnknownAction) => Iterable<ItemId> | undefined) | undefined
  readonly verifyChangedIds: boolean
  readonly validate: ItemValidator | undefined
}

export interface ResolvedOptions {
  readonly slices: ReadonlyMap<string, ResolvedSliceConfig>
  readonly dbName: string
  readonly openTimeoutMs: number
  readonly retry: { readonly baseMs: number; readonly maxMs: number }
  readonly maxDepth: number
  readonly durability: IDBTransactionDurability
  readonly onError: (error: SyncError) => void
  readonly indexedDB: IDBFactory | undefined
  readonly storage: LocalStore | undefined
  readonly logoutChannel: ChannelLike | null | undefined
  readonly remote: RemoteOptions | undefined
}

/** Every key of {@link PersistenceOptions}, {@link SlicePersistenceConfig} and `retry`: plain-JS typos are refused by name. */
const optionKeys: Record<keyof PersistenceOptions, true> = {
  slices: true,
  dbName: true,
  openTimeoutMs: true,
  retry: true,
  maxDepth: true,
  durability: true,
  onError: true,
  indexedDB: true,
  storage: true,
  logoutChannel: true,
  remote: true,
}
const sliceKeys: Record<keyof SlicePersistenceConfig, true> = {
  storeName: true,
  enabled: true,
  syncToFlask: true,
  debounceMs: true,
  batchSize: true,
  getId: true,
  path: true,
  shape: true,
  sortComparer: true,
  version: true,
  migrate: true,
  conflict: true,
  idType: true,
  changedIds: true,
  verifyChangedIds: true,
  validate: true,
}
const retryKeys: Record<keyof NonNullable<PersistenceOptions['retry']>, true> = { initialDelayMs: true, maxDelayMs: true }
const runtimeKeys: Record<keyof RuntimeSliceConfig, true> = { enabled: true, syncToFlask: true, debounceMs: true, batchSize: true }
export const SLICE_OPTION_KEYS: readonly string[] = Object.keys(sliceKeys)

/**
 * Checks the keys given to `configure(slice, config)`: a typo gets the closest runtime setting;
 * a real slice option that is fixed at creation is refused as such.
 */
export function checkRuntimeKeys(prefix: string, config: object): void {
  const runtime = Object.keys(runtimeKeys)
  const fixed = Object.keys(config).find((key) => !runtime.includes(key) && SLICE_OPTION_KEYS.includes(key))
  if (fixed) throw new InvalidOptionError(`${prefix}.${fixed}`, 'cannot change after the instance is created')
  checkOptionKeys(config, runtime, `${prefix}.`)
}

const defaultGetId = (item: unknown): unknown =>
  typeof item === 'object' && item !== null ? (item as { id?: unknown }).id : undefined

const defaultOnError = (error: SyncError): void => {
  // Only the name and message: payloads are never logged.
  console.warn(`[redux-idb-sync] ${error.name}: ${error.message}`)
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)

function check(condition: boolean, option: string, message: string): void {
  if (!condition) throw new InvalidOptionError(option, message)
}

const nonNegative = (value: unknown): boolean => typeof value === 'number' && Number.isFinite(value) && value >= 0
const positiveInt = (value: unknown): boolean => typeof value === 'number' && Number.isInteger(value) && value >= 1
const optional = (value: unknown, test: (v: unknown) => boolean): boolean => value === undefined || test(value)

/** Checks the runtime-changeable fields of a slice config. */
export function checkRuntimeConfig(prefix: string, config: RuntimeSliceConfig): void {
  check(isRecord(config), prefix, 'must be an object')
  check(optional(config.enabled, (v) => typeof v === 'boolean'), `${prefix}.enabled`, 'must be a boolean')
  check(optional(config.syncToFlask, (v) => typeof v === 'boolean'), `${prefix}.syncToFlask`, 'must be a boolean')
  check(optional(config.debounceMs, nonNegative), `${prefix}.debounceMs`, 'must be a finite number >= 0')
  check(optional(config.batchSize, positiveInt), `${prefix}.batchSize`, 'must be an integer >= 1')
}

function resolveSlice(name: string, config: unknown): ResolvedSliceConfig {
  const prefix = `slices.${name}`
  check(isRecord(config), prefix, 'must be an object')
  checkOptionKeys(config as object, SLICE_OPTION_KEYS, `${prefix}.`)
  const c = config as SlicePersistenceConfig
  checkRuntimeConfig(prefix, c)
  const storeName = c.storeName ?? name
  check(typeof storeName === 'string' && storeName.length > 0, `${prefix}.storeName`, 'must be a non-empty string')
  check(!storeName.startsWith(RESERVED_PREFIX), `${prefix}.storeName`, `must not start with "${RESERVED_PREFIX}"`)
  check(optional(c.getId, (v) => typeof v === 'function'), `${prefix}.getId`, 'must be a function')
  check(
    optional(c.path, (v) => Array.isArray(v) && v.every((k) => typeof k === 'string' && k.length > 0)),
    `${prefix}.path`,
    'must be an array of non-empty strings',
  )
  check(optional(c.shape, (v) => v === 'auto' || v === 'entities' || v === 'record' || v === 'array'), `${prefix}.shape`, "must be 'auto', 'entities', 'record' or 'array'")
  check(optional(c.sortComparer, (v) => typeof v === 'function'), `${prefix}.sortComparer`, 'must be a function')
  check(optional(c.version, positiveInt), `${prefix}.version`, 'must be an integer >= 1')
  check(optional(c.migrate, (v) => typeof v === 'function'), `${prefix}.migrate`, 'must be a function')
  check(
    optional(c.conflict, (v) => typeof v === 'function' || v === 'server-wins' || v === 'client-wins' || v === 'last-write-wins' || v === 'manual'),
    `${prefix}.conflict`,
    "must be 'server-wins', 'client-wins', 'last-write-wins', 'manual' or a function",
  )
  check(optional(c.idType, (v) => v === 'auto' || v === 'string' || v === 'number'), `${prefix}.idType`, "must be 'auto', 'string' or 'number'")
  check(optional(c.changedIds, (v) => typeof v === 'function'), `${prefix}.changedIds`, 'must be a function')
  check(
    optional(c.validate, (v) => typeof v === 'function' || (typeof v === 'object' && v !== null && typeof (v as { '~standard'?: { validate?: unknown } })['~standard']?.validate === 'function')),
    `${prefix}.validate`,
    'must be a function or a Standard Schema (an object with ~standard.validate)',
  )
  check(optional(c.verifyChangedIds, (v) => typeof v === 'boolean'), `${prefix}.verifyChangedIds`, 'must be a boolean')
  return {
    storeName,
    enabled: c.enabled ?? true,
    syncToFlask: c.syncToFlask ?? true,
    debounceMs: c.debounceMs ?? 300,
    batchSize: c.batchSize ?? 100,
    getId: (c.getId as ((item: unknown) => unknown) | undefined) ?? defaultGetId,
    path: [...(c.path ?? [])],
    shape: c.shape ?? 'auto',
    sortComparer: c.sortComparer as ResolvedSliceConfig['sortComparer'],
    version: c.version ?? 1,
    migrate: c.migrate as ResolvedSliceConfig['migrate'],
    conflict: c.conflict as ConflictStrategy | undefined,
    idType: c.idType ?? 'auto',
    changedIds: c.changedIds,
    verifyChangedIds: c.verifyChangedIds ?? false,
    validate: c.validate as ItemValidator | undefined,
  }
}

/** Validates every option once, up front, and fills in defaults. Throws `InvalidOptionError`. */
export function resolveOptions(options: PersistenceOptions): ResolvedOptions {
  check(isRecord(options), 'options', 'must be an object')
  checkOptionKeys(options, Object.keys(optionKeys))
  check(isRecord(options.slices) && Object.keys(options.slices).length > 0, 'slices', 'must name at least one slice')
  const slices = new Map<string, ResolvedSliceConfig>()
  const stores = new Set<string>()
  for (const [name, config] of Object.entries(options.slices)) {
    const resolved = resolveSlice(name, config)
    check(!stores.has(resolved.storeName), `slices.${name}.storeName`, `"${resolved.storeName}" is used by two slices`)
    stores.add(resolved.storeName)
    slices.set(name, resolved)
  }
  check(optional(options.dbName, (v) => typeof v === 'string' && v.length > 0), 'dbName', 'must be a non-empty string')
  check(optional(options.openTimeoutMs, (v) => nonNegative(v) && (v as number) > 0), 'openTimeoutMs', 'must be a number > 0')
  check(optional(options.retry, isRecord), 'retry', 'must be an object')
  if (isRecord(options.retry)) checkOptionKeys(options.retry, Object.keys(retryKeys), 'retry.')
  check(optional(options.retry?.initialDelayMs, nonNegative), 'retry.initialDelayMs', 'must be a finite number >= 0')
  check(optional(options.retry?.maxDelayMs, nonNegative), 'retry.maxDelayMs', 'must be a finite number >= 0')
  check(optional(options.maxDepth, positiveInt), 'maxDepth', 'must be an integer >= 1')
  check(optional(options.durability, (v) => v === 'default' || v === 'strict' || v === 'relaxed'), 'durability', "must be 'default', 'strict' or 'relaxed'")
  check(optional(options.onError, (v) => typeof v === 'function'), 'onError', 'must be a function')
  check(optional(options.remote, isRecord), 'remote', 'must be an object')
  if (options.remote) {
    checkOptionKeys(options.remote, REMOTE_OPTION_KEYS, 'remote.')
    if (isRecord(options.remote.paths)) checkOptionKeys(options.remote.paths, REMOTE_PATH_KEYS, 'remote.paths.')
    if (isRecord(options.remote.retry)) checkOptionKeys(options.remote.retry, Object.keys(retryKeys), 'remote.retry.')
  }
  check(
    optional(options.remote?.conflict, (v) => typeof v === 'function' || v === 'server-wins' || v === 'client-wins' || v === 'last-write-wins' || v === 'manual'),
    'remote.conflict',
    "must be 'server-wins', 'client-wins', 'last-write-wins', 'manual' or a function",
  )
  check(optional(options.remote?.now, (v) => typeof v === 'function'), 'remote.now', 'must be a function returning milliseconds')
  check(optional(options.indexedDB, (v) => isRecord(v) || typeof v === 'object'), 'indexedDB', 'must be an IDBFactory')
  const baseMs = options.retry?.initialDelayMs ?? 250
  return {
    slices,
    dbName: options.dbName ?? 'redux-idb-sync',
    openTimeoutMs: options.openTimeoutMs ?? 10_000,
    retry: { baseMs, maxMs: Math.max(baseMs, options.retry?.maxDelayMs ?? 30_000) },
    maxDepth: options.maxDepth ?? 100,
    durability: options.durability ?? 'default',
    onError: options.onError ?? defaultOnError,
    indexedDB: options.indexedDB,
    storage: options.storage,
    logoutChannel: options.logoutChannel,
    remote: options.remote,
  }
}
