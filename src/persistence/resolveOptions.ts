import type { UnknownAction } from '@reduxjs/toolkit'
import type { ConflictStrategy } from '../core/conflicts'
import { MAX_VALUE_DEPTH } from '../core/depth'
import { REMOTE_PLUGIN, type ChannelLike, type ItemRef, type RemotePlugin } from '../core/ports'
import { InvalidOptionError, type SyncError } from '../errors'
import type { SyncEngine } from '../remote/createSyncEngine'
import { RESERVED_PREFIX, type ItemId, type LocalStore } from '../storage/types'
import { isObject } from '../utils/isObject'
import { checkOptionKeys } from '../utils/optionKeys'
import type { PersistenceOptions, RuntimeSliceConfig, SlicePersistenceConfig } from './options'
import type { ShapeKind } from './shapes'
import type { ItemValidator } from './validate'

/** A slice's configuration with every default filled in. */
export interface ResolvedSliceConfig {
  readonly storeName: string
  enabled: boolean
  syncToFlask: boolean
  readonly syncDirection: 'both' | 'push-only' | 'pull-only'
  readonly pushFilter: ((item: unknown) => boolean) | undefined
  readonly initialPull: number | undefined
  debounceMs: number
  batchSize: number
  readonly getId: (item: unknown) => unknown
  readonly path: readonly string[]
  readonly shape: 'auto' | ShapeKind
  readonly sortComparer: ((a: unknown, b: unknown) => number) | undefined
  readonly version: number
  readonly migrate: ((items: unknown[], fromVersion: number) => unknown[] | Promise<unknown[]>) | undefined
  readonly conflict: ConflictStrategy | undefined
  readonly fieldMerge: boolean
  readonly onReject: 'rollback' | 'keep'
  readonly dependsOn: ((item: unknown) => Iterable<ItemRef>) | undefined
  readonly idType: 'auto' | 'string' | 'number'
  readonly changedIds: ((action: UnknownAction) => Iterable<ItemId> | undefined) | undefined
  readonly verifyChangedIds: boolean
  readonly track: boolean
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
  readonly remote: RemotePlugin<SyncEngine> | undefined
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
  syncDirection: true,
  pushFilter: true,
  initialPull: true,
  debounceMs: true,
  batchSize: true,
  getId: true,
  path: true,
  shape: true,
  sortComparer: true,
  version: true,
  migrate: true,
  conflict: true,
  fieldMerge: true,
  onReject: true,
  dependsOn: true,
  idType: true,
  changedIds: true,
  verifyChangedIds: true,
  track: true,
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

const defaultGetId = (item: unknown): unknown => (typeof item === 'object' && item !== null ? (item as { id?: unknown }).id : undefined)

const defaultOnError = (error: SyncError): void => {
  // Only the name and message: payloads are never logged.
  console.warn(`[redux-idb-sync] ${error.name}: ${error.message}`)
}

function check(condition: boolean, option: string, message: string): void {
  if (!condition) throw new InvalidOptionError(option, message)
}

const nonNegative = (value: unknown): boolean => typeof value === 'number' && Number.isFinite(value) && value >= 0
const positiveInt = (value: unknown): boolean => typeof value === 'number' && Number.isInteger(value) && value >= 1
const optional = (value: unknown, test: (v: unknown) => boolean): boolean => value === undefined || test(value)
const isConflictStrategy = (v: unknown): boolean =>
  typeof v === 'function' || v === 'server-wins' || v === 'client-wins' || v === 'last-write-wins' || v === 'manual'
const CONFLICT_STRATEGY_MESSAGE = "must be 'server-wins', 'client-wins', 'last-write-wins', 'manual' or a function"
const isRemotePlugin = (v: unknown): boolean =>
  isObject(v) && v.kind === REMOTE_PLUGIN && typeof v.create === 'function' && isObject(v.options) && typeof v.options.now === 'function'

/** Checks the runtime-changeable fields of a slice config. */
export function checkRuntimeConfig(prefix: string, config: RuntimeSliceConfig): void {
  check(isObject(config), prefix, 'must be an object')
  check(
    optional(config.enabled, (v) => typeof v === 'boolean'),
    `${prefix}.enabled`,
    'must be a boolean',
  )
  check(
    optional(config.syncToFlask, (v) => typeof v === 'boolean'),
    `${prefix}.syncToFlask`,
    'must be a boolean',
  )
  check(optional(config.debounceMs, nonNegative), `${prefix}.debounceMs`, 'must be a finite number >= 0')
  check(optional(config.batchSize, positiveInt), `${prefix}.batchSize`, 'must be an integer >= 1')
}

function resolveSlice(name: string, config: unknown): ResolvedSliceConfig {
  const prefix = `slices.${name}`
  check(isObject(config), prefix, 'must be an object')
  checkOptionKeys(config as object, SLICE_OPTION_KEYS, `${prefix}.`)
  const c = config as SlicePersistenceConfig
  checkRuntimeConfig(prefix, c)
  const storeName = c.storeName ?? name
  check(typeof storeName === 'string' && storeName.length > 0, `${prefix}.storeName`, 'must be a non-empty string')
  check(!storeName.startsWith(RESERVED_PREFIX), `${prefix}.storeName`, `must not start with "${RESERVED_PREFIX}"`)
  check(
    optional(c.getId, (v) => typeof v === 'function'),
    `${prefix}.getId`,
    'must be a function',
  )
  check(
    optional(c.path, (v) => Array.isArray(v) && v.every((k) => typeof k === 'string' && k.length > 0)),
    `${prefix}.path`,
    'must be an array of non-empty strings',
  )
  check(
    optional(c.shape, (v) => v === 'auto' || v === 'entities' || v === 'record' || v === 'array'),
    `${prefix}.shape`,
    "must be 'auto', 'entities', 'record' or 'array'",
  )
  check(
    optional(c.sortComparer, (v) => typeof v === 'function'),
    `${prefix}.sortComparer`,
    'must be a function',
  )
  check(optional(c.version, positiveInt), `${prefix}.version`, 'must be an integer >= 1')
  check(
    optional(c.migrate, (v) => typeof v === 'function'),
    `${prefix}.migrate`,
    'must be a function',
  )
  check(optional(c.conflict, isConflictStrategy), `${prefix}.conflict`, CONFLICT_STRATEGY_MESSAGE)
  check(
    optional(c.syncDirection, (v) => v === 'both' || v === 'push-only' || v === 'pull-only'),
    `${prefix}.syncDirection`,
    "must be 'both', 'push-only' or 'pull-only'",
  )
  check(
    optional(c.pushFilter, (v) => typeof v === 'function'),
    `${prefix}.pushFilter`,
    'must be a function',
  )
  check(
    optional(c.initialPull, (v) => typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 1000),
    `${prefix}.initialPull`,
    'must be an integer from 1 to 1000',
  )
  check(
    optional(c.fieldMerge, (v) => typeof v === 'boolean'),
    `${prefix}.fieldMerge`,
    'must be a boolean',
  )
  check(
    optional(c.onReject, (v) => v === 'rollback' || v === 'keep'),
    `${prefix}.onReject`,
    "must be 'rollback' or 'keep'",
  )
  check(
    optional(c.dependsOn, (v) => typeof v === 'function'),
    `${prefix}.dependsOn`,
    'must be a function',
  )
  check(
    optional(c.idType, (v) => v === 'auto' || v === 'string' || v === 'number'),
    `${prefix}.idType`,
    "must be 'auto', 'string' or 'number'",
  )
  check(
    optional(c.changedIds, (v) => typeof v === 'function'),
    `${prefix}.changedIds`,
    'must be a function',
  )
  check(
    optional(
      c.validate,
      (v) =>
        typeof v === 'function' ||
        (typeof v === 'object' && v !== null && typeof (v as { '~standard'?: { validate?: unknown } })['~standard']?.validate === 'function'),
    ),
    `${prefix}.validate`,
    'must be a function or a Standard Schema (an object with ~standard.validate)',
  )
  check(
    optional(c.verifyChangedIds, (v) => typeof v === 'boolean'),
    `${prefix}.verifyChangedIds`,
    'must be a boolean',
  )
  check(
    optional(c.track, (v) => typeof v === 'boolean'),
    `${prefix}.track`,
    'must be a boolean',
  )
  return {
    storeName,
    enabled: c.enabled ?? true,
    syncToFlask: c.syncToFlask ?? true,
    syncDirection: c.syncDirection ?? 'both',
    pushFilter: c.pushFilter as ((item: unknown) => boolean) | undefined,
    initialPull: c.initialPull,
    debounceMs: c.debounceMs ?? 300,
    batchSize: c.batchSize ?? 100,
    getId: (c.getId as ((item: unknown) => unknown) | undefined) ?? defaultGetId,
    path: [...(c.path ?? [])],
    shape: c.shape ?? 'auto',
    sortComparer: c.sortComparer as ResolvedSliceConfig['sortComparer'],
    version: c.version ?? 1,
    migrate: c.migrate as ResolvedSliceConfig['migrate'],
    conflict: c.conflict as ConflictStrategy | undefined,
    fieldMerge: c.fieldMerge ?? false,
    onReject: c.onReject ?? 'rollback',
    dependsOn: c.dependsOn as ResolvedSliceConfig['dependsOn'],
    idType: c.idType ?? 'auto',
    changedIds: c.changedIds,
    verifyChangedIds: c.verifyChangedIds ?? false,
    track: c.track ?? true,
    validate: c.validate as ItemValidator | undefined,
  }
}

/** Validates every option once, up front, and fills in defaults. Throws `InvalidOptionError`. */
export function resolveOptions(options: PersistenceOptions): ResolvedOptions {
  check(isObject(options), 'options', 'must be an object')
  checkOptionKeys(options, Object.keys(optionKeys))
  check(isObject(options.slices) && Object.keys(options.slices).length > 0, 'slices', 'must name at least one slice')
  const slices = new Map<string, ResolvedSliceConfig>()
  const stores = new Set<string>()
  for (const [name, config] of Object.entries(options.slices)) {
    const resolved = resolveSlice(name, config)
    check(!stores.has(resolved.storeName), `slices.${name}.storeName`, `"${resolved.storeName}" is used by two slices`)
    stores.add(resolved.storeName)
    slices.set(name, resolved)
  }
  check(
    optional(options.dbName, (v) => typeof v === 'string' && v.length > 0),
    'dbName',
    'must be a non-empty string',
  )
  check(
    optional(options.openTimeoutMs, (v) => nonNegative(v) && (v as number) > 0),
    'openTimeoutMs',
    'must be a number > 0',
  )
  check(optional(options.retry, isObject), 'retry', 'must be an object')
  if (isObject(options.retry)) checkOptionKeys(options.retry, Object.keys(retryKeys), 'retry.')
  check(optional(options.retry?.initialDelayMs, nonNegative), 'retry.initialDelayMs', 'must be a finite number >= 0')
  check(optional(options.retry?.maxDelayMs, nonNegative), 'retry.maxDelayMs', 'must be a finite number >= 0')
  check(optional(options.maxDepth, positiveInt), 'maxDepth', 'must be an integer >= 1')
  check(
    optional(options.durability, (v) => v === 'default' || v === 'strict' || v === 'relaxed'),
    'durability',
    "must be 'default', 'strict' or 'relaxed'",
  )
  check(
    optional(options.onError, (v) => typeof v === 'function'),
    'onError',
    'must be a function',
  )
  // The remote's own options were checked by createRemote; here only that it is one (0.1 took a
  // plain options object, which would otherwise be silently ignored or half-read).
  check(
    optional(options.remote, isRemotePlugin),
    'remote',
    "must be created with createRemote({ baseUrl, ... }) from 'redux-idb-sync/remote'; a plain options object is no longer accepted",
  )
  check(
    optional(options.indexedDB, (v) => isObject(v) || typeof v === 'object'),
    'indexedDB',
    'must be an IDBFactory',
  )
  const baseMs = options.retry?.initialDelayMs ?? 250
  return {
    slices,
    dbName: options.dbName ?? 'redux-idb-sync',
    openTimeoutMs: options.openTimeoutMs ?? 10_000,
    retry: { baseMs, maxMs: Math.max(baseMs, options.retry?.maxDelayMs ?? 30_000) },
    maxDepth: options.maxDepth ?? MAX_VALUE_DEPTH,
    durability: options.durability ?? 'default',
    onError: options.onError ?? defaultOnError,
    indexedDB: options.indexedDB,
    storage: options.storage,
    logoutChannel: options.logoutChannel,
    remote: options.remote,
  }
}
