import type { UnknownAction } from '@reduxjs/toolkit'
import { enablePatches, produceWithPatches, type Patch } from 'immer'
import { InvalidItemError, InvalidOptionError, toSyncError } from '../errors'
import type { ItemId } from '../storage/types'
import { reportError, type PersistenceContext, type SliceRuntime } from './instanceContext'
import { detectShape, diffCollection, diffIds, diffNamedIds, getAt, type DiffSink } from './shapes'

let patches: boolean | undefined

/** Whether immer's patches can be had here (its patches plugin, enabled once). */
export function patchesAvailable(): boolean {
  if (patches === undefined) {
    try {
      enablePatches()
      patches = typeof produceWithPatches === 'function'
    } catch {
      patches = false
    }
  }
  return patches
}

/** `produceWithPatches` over the persisted slices (see the enhancer). */
export function producePatches(base: Record<string, unknown>, recipe: (draft: Record<string, unknown>) => void): [Record<string, unknown>, Patch[]] {
  const [next, found] = produceWithPatches(base, recipe)
  return [next as Record<string, unknown>, found]
}

/** Whether patches can name this slice's changed ids: an `entities` or `record` slice that did not opt out. */
export function trackable(s: SliceRuntime): boolean {
  return s.config.track && (s.kind === 'entities' || s.kind === 'record')
}

/** Marks a slice's patch tracking void for the current window: a collection was replaced. */
const REPLACED = Symbol('replaced')

/**
 * The item a patch path points into: `[slice, ...path, 'entities', id, ...]` (entities) or
 * `[slice, ...path, id, ...]` (record). `undefined` for a change beside the collection (a
 * `status` field, the `ids` array), `REPLACED` for one that replaced the collection or a parent.
 */
function idAt(s: SliceRuntime, path: ReadonlyArray<string | number>): string | typeof REPLACED | undefined {
  let i = 1
  for (const key of s.config.path) {
    if (path.length <= i) return REPLACED
    if (path[i] !== key) return undefined
    i++
  }
  if (s.kind === 'entities') {
    if (path.length <= i) return REPLACED
    if (path[i] !== 'entities') return undefined
    i++
  }
  if (path.length <= i) return REPLACED
  return String(path[i])
}

/** Adds the ids immer's patches name to each tracked slice's `patched` set. */
export function notePatches(tracked: readonly SliceRuntime[], found: readonly Patch[]): void {
  for (const patch of found) {
    const name = patch.path[0]
    const s = tracked.length === 1 ? tracked[0]! : tracked.find((x) => x.name === name)
    if (!s || s.name !== name || s.patched === null) continue
    const id = idAt(s, patch.path)
    if (id === REPLACED) s.patched = null
    else if (id !== undefined) s.patched.add(id)
  }
}

/**
 * Change detection: the hot path after each action, `changedIds` hints, and the diff that turns
 * a changed slice into queued puts and deletes.
 */
export interface SliceTracker {
  /** After an action of the app reduced: notes which slices changed (one reference comparison each). */
  afterAction(state: Record<string, unknown>, action: UnknownAction): void
  /**
   * Diffs every slice marked dirty. Runs once per microtask, so a burst of dispatches in one tick
   * costs one diff per slice, and always before anything that needs an exact queue (flush,
   * hydration, enable).
   */
  processDiffs(): void
  /**
   * Takes the slice's current state as the baseline without queueing anything: what is in the
   * state now is already stored (at install, after hydration or applied server data).
   */
  resetBaseline(s: SliceRuntime): void
}

export function createSliceTracker(ctx: PersistenceContext): SliceTracker {
  let diffScheduled = false
  /** The type of the last action whose hint was used, for `verifyChangedIds` reports. */
  let lastHintedAction: string | null = null

  function afterAction(state: Record<string, unknown>, action: UnknownAction): void {
    let now = false
    for (const s of ctx.watched) {
      const current = state[s.name]
      if (current === s.current) continue
      s.current = current
      if (s.config.changedIds) hint(s, action)
      if (!s.dirty && current !== s.lastSeen) {
        s.dirty = true
        // While a slice hydrates, every intermediate state counts (an item added and removed
        // in one tick was still touched, and must not come back from storage): diff at once.
        if (s.touched) now = true
        else if (!diffScheduled) {
          diffScheduled = true
          queueMicrotask(processDiffs)
        }
      }
    }
    if (now) processDiffs()
  }

  /**
   * Collects the ids an action changed, per its slice's `changedIds`. The first action that
   * changed the slice since the last diff starts the set; one that cannot tell voids it.
   */
  function hint(s: SliceRuntime, action: UnknownAction): void {
    const fresh = !s.dirty
    if (!fresh && s.hinted === null) return
    let ids: Iterable<ItemId> | undefined
    try {
      ids = s.config.changedIds!(action)
    } catch (error) {
      reportError(ctx, toSyncError(error, `slices.${s.name}.changedIds threw`))
      ids = undefined
    }
    if (ids === undefined || ids === null) {
      s.hinted = null
      return
    }
    const set = fresh || !s.hinted ? new Set<ItemId>() : s.hinted
    for (const id of ids) set.add(id)
    s.hinted = set
    lastHintedAction = action.type
  }

  function sinkFor(s: SliceRuntime): DiffSink {
    return {
      put(id, item) {
        s.numericIds ??= typeof id === 'number'
        s.touched?.add(id)
        ctx.queue.enqueue(s.name, id, 'put', item)
      },
      delete(id) {
        s.touched?.add(id)
        ctx.queue.enqueue(s.name, id, 'delete', undefined)
      },
      invalid(_item, reason) {
        const why = reason ?? 'has no valid id (a non-empty, well-formed string or a finite number)'
        reportError(ctx, new InvalidItemError(`an item in slice "${s.name}" ${why}; it is not persisted`, { slice: s.name }))
      },
    }
  }

  function diffSlice(s: SliceRuntime, state: unknown): void {
    s.dirty = false
    const hinted = s.hinted
    s.hinted = null
    const sliceState = (state as Record<string, unknown> | undefined)?.[s.name]
    s.current = sliceState
    // The patches name every change since the last diff only if the enhancer saw this very state.
    const patched = s.patched !== null && sliceState === s.patchedState && trackable(s) ? s.patched : null
    s.patched = new Set()
    s.patchedState = sliceState
    if (sliceState === s.lastSeen) return
    const collection = getAt(sliceState, s.config.path)
    const previous = s.lastCollection
    s.lastSeen = sliceState
    s.lastCollection = collection
    if (collection === previous) return
    s.kind ??= detectShape(collection) ?? detectShape(previous)
    if (!s.kind) return
    const sink = sinkFor(s)
    if (patched && s.kind !== 'array') {
      diffNamedIds(s.kind, previous, collection, patched, sink)
      if (s.config.verifyChangedIds) verifyHint(s, previous, collection, patched, sink, 'track')
      return
    }
    if (hinted && s.kind !== 'array' && diffIds(s.kind, previous, collection, hinted, sink)) {
      if (s.config.verifyChangedIds) verifyHint(s, previous, collection, hinted, sink, 'changedIds')
      return
    }
    s.arrayIndex = diffCollection(s.kind, previous, collection, s.config.getId, sink, s.arrayIndex)
  }

  /** `verifyChangedIds`: the full diff, to persist and report what a `changedIds` hint or the patch tracker missed. */
  function verifyHint(
    s: SliceRuntime,
    previous: unknown,
    collection: unknown,
    hinted: ReadonlySet<ItemId>,
    sink: DiffSink,
    source: 'changedIds' | 'track',
  ): void {
    const missed: ItemId[] = []
    const check = (id: ItemId, write: () => void): void => {
      if (hinted.has(id) || hinted.has(String(id))) return
      missed.push(id)
      write()
    }
    diffCollection(
      s.kind!,
      previous,
      collection,
      s.config.getId,
      {
        put: (id, item) => check(id, () => sink.put(id, item)),
        delete: (id) => check(id, () => sink.delete(id)),
        invalid: (item) => sink.invalid(item),
      },
      null,
    )
    if (missed.length > 0) {
      reportError(
        ctx,
        source === 'changedIds'
          ? new InvalidOptionError(
              `slices.${s.name}.changedIds`,
              `left out ${missed.length} changed id(s) (${lastHintedAction ?? 'unknown action'}); they were persisted by the full diff`,
            )
          : new InvalidOptionError(
              `slices.${s.name}.track`,
              `immer's patches did not name ${missed.length} changed id(s) (${missed.slice(0, 5).map(String).join(', ')}); they were persisted by the full diff. Set track: false for this slice if its reducer keeps references to its state`,
            ),
      )
    }
  }

  function processDiffs(): void {
    diffScheduled = false
    const { api } = ctx
    if (!api || ctx.disposed) return
    const state = api.getState()
    for (const s of ctx.watched) {
      if (!s.dirty) continue
      try {
        diffSlice(s, state)
      } catch (error) {
        reportError(ctx, toSyncError(error, `finding changes in slice "${s.name}" failed`))
      }
    }
  }

  function resetBaseline(s: SliceRuntime): void {
    const sliceState = (ctx.api?.getState() as Record<string, unknown> | undefined)?.[s.name]
    s.lastSeen = sliceState
    s.current = sliceState
    s.hinted = null
    s.patched = new Set()
    s.patchedState = sliceState
    s.lastCollection = getAt(sliceState, s.config.path)
    s.arrayIndex = null
    s.kind ??= detectShape(s.lastCollection)
  }

  return { afterAction, processDiffs, resetBaseline }
}
