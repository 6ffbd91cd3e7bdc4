import { hydrateSlice } from '../core/actions'
import { validId } from '../core/ids'
import { HydrationError, MigrationError, toSyncError, type SyncError } from '../errors'
import { META_STORE, type ItemId, type StorageOp } from '../storage/types'
import { findNonSerializable, stripDangerousKeys } from '../utils/serializable'
import { emitOperation, reportError, setSliceHydration, type PersistenceContext, type SliceRuntime } from './instanceContext'
import { buildCollection, detectShape, entriesOf, getAt } from './shapes'
import type { SliceTracker } from './sliceTracker'
import { validationError } from './validate'

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
  async function migrate(s: SliceRuntime, fromVersion: number, records: Array<[ItemId, unknown]>): Promise<Array<[ItemId, unknown]>> {
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
      items = await run(
        records.map(([, value]) => value),
        fromVersion,
      )
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

  /** Merges stored items into the state: ids changed by actions meanwhile keep the state's item. */
  function applyHydration(s: SliceRuntime, records: Array<[ItemId, unknown]>): void {
    tracker.processDiffs()
    const target = ctx.api!
    const sliceState = (target.getState() as Record<string, unknown> | undefined)?.[s.name]
    const current = getAt(sliceState, s.config.path)
    const kind = s.kind ?? detectShape(current)
    if (!kind) {
      throw new HydrationError(`cannot tell the shape of slice "${s.name}"; set slices.${s.name}.shape`, { slice: s.name })
    }
    s.kind = kind
    if (records.length > 0) s.numericIds ??= typeof records[0]![0] === 'number'
    const touched = s.touched ?? new Set<ItemId>()
    const merged: Array<[ItemId, unknown]> = []
    for (const [id, value] of records) {
      if (touched.has(id)) continue
      const invalid = validationError(s.config.validate, s.name, id, value, 'hydration')
      if (invalid) reportError(ctx, invalid)
      else merged.push([id, stripDangerousKeys(value)])
    }
    if (touched.size > 0) {
      for (const [id, item] of entriesOf(kind, current, s.config.getId)) if (touched.has(id)) merged.push([id, item])
    }
    const compare = s.config.sortComparer
    if (compare && kind !== 'record') merged.sort((a, b) => compare(a[1], b[1]))
    const collection = buildCollection(kind, merged, current)
    if (!ctx.enhancerInstalled) {
      throw new HydrationError(`slice "${s.name}" cannot be hydrated: add persistence.enhancer to configureStore's enhancers`, { slice: s.name })
    }
    s.hydratedCount = merged.length
    target.dispatch(hydrateSlice({ slice: s.name, collection, count: merged.length }, ctx.instanceId))
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
      // Both reads at once: two readonly transactions in parallel, not one after the other.
      const [metaValue, stored] = await Promise.all([ctx.storage.get(META_STORE, s.config.storeName), ctx.storage.readAll(s.config.storeName)])
      const meta = metaValue as SliceMeta | undefined
      if (ctx.disposed) return
      if (!meta && stored.length === 0) {
        await storeInitialState(s)
      } else if (!meta) {
        // Items without the slice's meta record: the database was deleted while an instance had
        // it open and that instance went on writing into a new one (DatabaseDeletedError). They
        // were written by this version of the app, so they hydrate as they are.
        applyHydration(s, stored)
        await ctx.storage.commit([metaOp(s.config.storeName, s.config.version)])
      } else {
        let records = stored
        if (meta.version !== s.config.version) records = await migrate(s, meta.version, records)
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
