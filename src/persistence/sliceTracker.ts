import type { UnknownAction } from '@reduxjs/toolkit'
import { InvalidItemError, InvalidOptionError, toSyncError } from '../errors'
import type { ItemId } from '../storage/types'
import { reportError, type PersistenceContext, type SliceRuntime } from './instanceContext'
import { detectShape, diffCollection, diffIds, getAt, type DiffSink } from './shapes'

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
    if (sliceState === s.lastSeen) return
    const collection = getAt(sliceState, s.config.path)
    const previous = s.lastCollection
    s.lastSeen = sliceState
    s.lastCollection = collection
    if (collection === previous) return
    s.kind ??= detectShape(collection) ?? detectShape(previous)
    if (!s.kind) return
    const sink = sinkFor(s)
    if (hinted && s.kind !== 'array' && diffIds(s.kind, previous, collection, hinted, sink)) {
      if (s.config.verifyChangedIds) verifyHint(s, previous, collection, hinted, sink)
      return
    }
    s.arrayIndex = diffCollection(s.kind, previous, collection, s.config.getId, sink, s.arrayIndex)
  }

  /** `verifyChangedIds`: the full diff, to persist and report what a `changedIds` hint missed. */
  function verifyHint(s: SliceRuntime, previous: unknown, collection: unknown, hinted: ReadonlySet<ItemId>, sink: DiffSink): void {
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
        new InvalidOptionError(
          `slices.${s.name}.changedIds`,
          `left out ${missed.length} changed id(s) (${lastHintedAction ?? 'unknown action'}); they were persisted by the full diff`,
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
    s.lastCollection = getAt(sliceState, s.config.path)
    s.arrayIndex = null
    s.kind ??= detectShape(s.lastCollection)
  }

  return { afterAction, processDiffs, resetBaseline }
}
