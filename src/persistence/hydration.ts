import { hydrateSlice } from '../core/actions'
import { validId } from '../core/ids'
import { HydrationError, MigrationError, toSyncError, type SyncError } from '../errors'
import { META_STORE, type ItemId, type StorageOp, type StoredItems } from '../storage/types'
import { findNonSerializable, stripDangerousKeys } from '../utils/serializable'
import { emitOperation, reportError, setSliceHydration, type PersistenceContext, type SliceRuntime } from './instanceContext'
import { detectShape, entriesOf, getAt } from './shapes'
import { defineData } from '../utils/serializable'
import { isObject } from '../utils/isObject'
import type { SliceTracker } from './sliceTracker'
import { validationError } from './validate'

/** `[key, value]` pairs (a custom store's `readAll`, a migration's result) as `StoredItems`. */
function itemsOf(meta: unknown, pairs: ReadonlyArray<readonly [ItemId, unknown]>): StoredItems {
  return { meta, size: pairs.length, keyAt: (i) => pairs[i]![0], valueAt: (i) => pairs[i]![1] }
}

/** What the library stores per slice in its meta store. */
interface SliceMeta {
  readonly version: number
}

/** Loading slices from storage: a first run stores the initial state, a version change migrates, the rest merges. */
export interface Hydration {
  /** Hydrates a slice; concurrent calls share one run. */
  hydrateOnce(s: SliceRuntime): Promise<void>
  /** Slices the store cannot serve: each reports its error once and never hydrates (so writes stay held). */
  block(errors: ReadonlyMap<string, SyncError>): void
}

export function createHydration(ctx: PersistenceContext, tracker: SliceTracker): Hydration {
  const metaOp = (storeName: string, version: number): StorageOp => ({ type: 'put', store: META_STORE, key: storeName, value: { version } satisfies SliceMeta })

  /** Replaces the stored items with what `migrate` returns, and the version, in one transaction. */
  async function migrate(s: SliceRuntime, fromVersion: number, stored: StoredItems): Promise<Array<[ItemId, unknown]>> {
    const { version: toVersion, migrate: run, storeName, getId } = s.config
    const context = { slice: s.name, fromVersion, toVersion }
    if (!run || fromVersion > toVersion) {
      throw new MigrationError(
        `slice "${s.name}" is stored at version ${fromVersion} but configured as ${toVersion}${run ? ' (downgrades are not supported)' : ' and has no migrate function'}`,
        context,
      )
    }
    let items: unknown
    try {
      const values: unknown[] = []
      for (let i = 0; i < stored.size; i++) values.push(stored.valueAt(i))
      items = await run(values, fromVersion)
    } catch (error) {
      throw new MigrationError(`migrate of slice "${s.name}" from ${fromVersion} to ${toVersion} threw`, { ...context, cause: error })
    }
    if (!Array.isArray(items)) throw new MigrationError(`migrate of slice "${s.name}" did not return an array`, context)
    const out: Array<[ItemId, unknown]> = []
    const ops: StorageOp[] = [{ type: 'clear', store: storeName }]
    for (const item of items) {
      const id = s.kind === 'record' ? ((item as { id?: unknown } | null)?.id ?? getId(item)) : getId(item)
      if (!validId(id)) throw new MigrationError(`migrate of slice "${s.name}" returned an item without a valid id`, context)
      const problem = findNonSerializable(item, ctx.options.maxDepth)
      if (problem) throw new MigrationError(`migrate of slice "${s.name}" returned a non-serializable item: ${problem.reason}`, context)
      out.push([id, item])
      ops.push({ type: 'put', store: storeName, key: id, value: item })
    }
    ops.push(metaOp(storeName, toVersion))
    // One transaction: the stored data is replaced entirely or not at all.
    await ctx.storage.commit(ops)
    return out
  }

  /** First run for a slice: its initial state becomes the stored state, meta in the same transaction. */
  async function storeInitialState(s: SliceRuntime): Promise<void> {
    tracker.processDiffs()
    const { storeName, getId, version } = s.config
    const ops: StorageOp[] = []
    if (s.kind) {
      for (const [id, item] of entriesOf(s.kind, s.lastCollection, getId)) {
        if (findNonSerializable(item, ctx.options.maxDepth)) continue // reported when it is next written
        ops.push({ type: 'put', store: storeName, key: id, value: item })
      }
    }
    ops.push(metaOp(storeName, version))
    await ctx.storage.commit(ops)
  }

  /**
   * Merges stored items into the state: ids changed by actions meanwhile keep the state's item.
   * One pass from the stored records to the slice's collection, with no pair per item between.
   */
  function applyHydration(s: SliceRuntime, stored: StoredItems): void {
    tracker.processDiffs()
    const target = ctx.api!
    const sliceState = (target.getState() as Record<string, unknown> | undefined)?.[s.name]
    const current = getAt(sliceState, s.config.path)
    const kind = s.kind ?? detectShape(current)
    if (!kind) {
      throw new HydrationError(`cannot tell the shape of slice "${s.name}"; set slices.${s.name}.shape`, { slice: s.name })
    }
    if (!ctx.enhancerInstalled) {
      throw new HydrationError(`slice "${s.name}" cannot be hydrated: add persistence.enhancer to configureStore's enhancers`, { slice: s.name })
    }
    s.kind = kind
    const { size } = stored
    if (size > 0) s.numericIds ??= typeof stored.keyAt(0) === 'number'
    const touched = s.touched ?? new Set<ItemId>()
    const { validate } = s.config
    // Record and entities slices collect into one record (plus the ids, in order); arrays into a list.
    const record: Record<string, unknown> = {}
    const ids: ItemId[] = []
    const list: unknown[] = []
    const add = (id: ItemId, item: unknown): void => {
      if (kind === 'array') list.push(item)
      else {
        if (kind === 'entities') ids.push(id)
        defineData(record, String(id), item)
      }
    }
    for (let i = 0; i < size; i++) {
      const id = stored.keyAt(i)
      if (touched.has(id)) continue
      const value = stored.valueAt(i)
      const invalid = validate ? validationError(validate, s.name, id, value, 'hydration') : null
      if (invalid) reportError(ctx, invalid)
      else add(id, stripDangerousKeys(value))
    }
    if (touched.size > 0) {
      for (const [id, item] of entriesOf(kind, current, s.config.getId)) if (touched.has(id)) add(id, item)
    }
    const compare = s.config.sortComparer
    if (compare && kind === 'array') list.sort(compare)
    else if (compare && kind === 'entities') ids.sort((a, b) => compare(record[String(a)], record[String(b)]))
    const count = kind === 'array' ? list.length : kind === 'entities' ? ids.length : Object.keys(record).length
    const collection = kind === 'array' ? list : kind === 'record' ? record : { ...(isObject(current) ? current : {}), ids, entities: record }
    s.hydratedCount = count
    target.dispatch(hydrateSlice({ slice: s.name, collection, count }, ctx.instanceId))
  }

  /** Meta and items from one transaction where the store can; else two reads side by side. */
  async function readStored(storeName: string): Promise<StoredItems> {
    const { storage } = ctx
    if (storage.readItems) return storage.readItems(storeName, storeName)
    const [meta, pairs] = await Promise.all([storage.get(META_STORE, storeName), storage.readAll(storeName)])
    return itemsOf(meta, pairs)
  }

  function block(errors: ReadonlyMap<string, SyncError>): void {
    for (const error of new Set(errors.values())) reportError(ctx, error)
    for (const [name, error] of errors) {
      const s = ctx.slices.get(name)!
      s.blocked = error
      s.touched = null
      setSliceHydration(ctx, s, 'error', error)
    }
  }

  async function hydrate(s: SliceRuntime): Promise<void> {
    if (s.blocked) return setSliceHydration(ctx, s, 'error', s.blocked)
    setSliceHydration(ctx, s, 'pending', null)
    s.touched ??= new Set()
    const started = Date.now()
    try {
      const stored = await readStored(s.config.storeName)
      const meta = stored.meta as SliceMeta | undefined
      if (ctx.disposed) return
      if (!meta && stored.size === 0) {
        await storeInitialState(s)
      } else if (!meta) {
        // Items without the slice's meta record: the database was deleted while an instance had
        // it open and that instance went on writing into a new one (DatabaseDeletedError). They
        // were written by this version of the app, so they hydrate as they are.
        applyHydration(s, stored)
        await ctx.storage.commit([metaOp(s.config.storeName, s.config.version)])
      } else {
        let records = stored
        if (meta.version !== s.config.version) records = itemsOf(meta, await migrate(s, meta.version, stored))
        if (ctx.disposed) return
        applyHydration(s, records)
      }
      setSliceHydration(ctx, s, 'done', null)
      emitOperation(ctx, { kind: 'hydrate', slice: s.name, items: s.hydratedCount, durationMs: Date.now() - started, ok: true, error: null })
    } catch (caught) {
      const error = toSyncError(caught, `hydrating slice "${s.name}" failed`)
      setSliceHydration(ctx, s, 'error', error)
      reportError(ctx, error)
      emitOperation(ctx, { kind: 'hydrate', slice: s.name, items: 0, durationMs: Date.now() - started, ok: false, error: error.toJSON() })
    } finally {
      s.touched = null
    }
    ctx.queue.kick()
  }

  function hydrateOnce(s: SliceRuntime): Promise<void> {
    s.hydrating ??= hydrate(s).finally(() => {
      s.hydrating = null
    })
    return s.hydrating
  }

  return { hydrateOnce, block }
}
