import type { UnknownAction } from '@reduxjs/toolkit'
import { remoteApplied } from '../core/actions'
import type { ChangeSet } from '../core/events'
import { toSyncError } from '../errors'
import { itemKey, validId } from '../core/ids'
import type { HostSlice, SyncHost } from '../core/ports'
import type { ItemId } from '../storage/types'
import { stripDangerousKeys } from '../utils/serializable'
import { emitOperation, reportError, type PersistenceContext } from './instanceContext'
import { entriesOf, getAt } from './shapes'
import type { SliceTracker } from './sliceTracker'
import { validationError } from './validate'
import type { QueueEntry } from './writeQueue'

/**
 * Reading items from the Redux state and applying items from elsewhere (the server, other tabs)
 * without queueing them to be written back. `host` is the sync engine's port into this instance.
 */
export interface LocalState {
  readonly host: SyncHost
  /** Applies items another tab committed to the same database (read from storage, never written back). */
  applyExternalChanges(changes: readonly ChangeSet[]): Promise<void>
  /**
   * After a batch of this tab's writes settled: re-reads the keys another tab changed while they
   * were queued here, and those not written because storage held another tab's later change.
   */
  settled(written: readonly QueueEntry[], superseded: readonly QueueEntry[]): void
}

export function createLocalState(ctx: PersistenceContext, tracker: SliceTracker, flush: () => Promise<void>): LocalState {
  const live = (): boolean => ctx.api !== null && !ctx.disposed

  const host: SyncHost = {
    storage: () => ctx.storage,
    slices: (): HostSlice[] =>
      [...ctx.slices.values()].map((s) => ({
        name: s.name,
        storeName: s.config.storeName,
        syncToFlask: s.config.syncToFlask && s.config.enabled,
        conflict: s.config.conflict,
        fieldMerge: s.config.fieldMerge,
        push: s.config.syncDirection !== 'pull-only',
        pull: s.config.syncDirection !== 'push-only',
        pushFilter: s.config.pushFilter,
        initialPull: s.config.initialPull,
        onReject: s.config.onReject,
        dependsOn: s.config.dependsOn,
      })),
    dispatch(action) {
      if (live()) ctx.api!.dispatch(action as UnknownAction)
    },
    validate(slice, id, value) {
      return validationError(ctx.slices.get(slice)?.config.validate, slice, id, value, 'server')
    },
    applyToState(slice, puts, deletes) {
      if (!live()) return
      ctx.api!.dispatch(remoteApplied({ slice, puts: puts.map(([id, item]) => [id, item]), deletes: [...deletes] }, ctx.instanceId))
    },
    localEntries(slice) {
      const s = ctx.slices.get(slice)
      if (!s || !s.kind || !ctx.api) return []
      tracker.processDiffs()
      return entriesOf(s.kind, getAt((ctx.api.getState() as Record<string, unknown>)[slice], s.config.path), s.config.getId)
    },
    localId(slice, remoteId, value) {
      const s = ctx.slices.get(slice)
      // The item itself knows its id's type best (an entity or array item carries its id).
      if (s && s.kind !== 'record' && value !== null && value !== undefined) {
        try {
          const own = s.config.getId(value)
          if (validId(own) && String(own) === remoteId) {
            s.numericIds ??= typeof own === 'number'
            return own
          }
        } catch {
          // fall back to what the slice told us about its ids
        }
      }
      const numeric = s?.config.idType === 'number' || (s?.config.idType === 'auto' && s.numericIds === true)
      return numeric && remoteId.trim() !== '' && Number.isFinite(Number(remoteId)) ? Number(remoteId) : remoteId
    },
    flushLocal: flush,
    isQueued(key) {
      // A change dispatched in this tick is diffed lazily: count it before answering, or
      // server data applied now would replace it in the state before it is ever queued.
      tracker.processDiffs()
      return ctx.queue.has(key)
    },
    reportError: (error) => reportError(ctx, error),
    emit(event) {
      if (event.type === 'operation') emitOperation(ctx, event.operation)
      else if (ctx.events.size > 0) ctx.events.emit(event)
    },
  }

  /**
   * Keys another tab changed while this tab's own change of them was queued or being written.
   * Which of the two IndexedDB holds is known only once this tab's write settled: it may have
   * committed before the other tab's (which then holds), or after it.
   */
  const contested = new Map<string, { readonly slice: string; readonly id: ItemId }>()

  /**
   * Applies what storage holds for `ids` (absent: deleted), except for keys this tab has queued:
   * those keep this tab's value until its write settles, and are read again then.
   */
  async function applyStored(slice: string, ids: readonly ItemId[], deleted: readonly ItemId[], orderedAt?: ChangeSet['orderedAt']): Promise<void> {
    const s = ctx.slices.get(slice)
    if (!s || !live() || s.hydration !== 'done') return
    const values = ids.length > 0 ? await ctx.storage.getMany(s.config.storeName, ids) : []
    if (!live()) return
    tracker.processDiffs()
    const keep = (id: ItemId): boolean => {
      const key = itemKey(slice, id)
      // This tab's change of the key, still waiting to be written, was made before the other
      // tab's: the other tab's is the newer one, and stays.
      const theirs = orderedAt?.[String(id)]
      if (theirs !== undefined ? ctx.queue.supersede(key, theirs) : !ctx.queue.has(key)) return true
      contested.set(key, { slice, id })
      return false
    }
    const put: Array<[ItemId, unknown]> = []
    const removed = deleted.filter(keep)
    ids.forEach((id, i) => {
      const value = values[i]
      if (!keep(id)) return
      if (value !== undefined) put.push([id, stripDangerousKeys(value)])
      else removed.push(id)
    })
    if (put.length === 0 && removed.length === 0) return
    ctx.api!.dispatch(remoteApplied({ slice, puts: put, deletes: removed }, ctx.instanceId))
  }

  async function applyExternalChanges(changes: readonly ChangeSet[]): Promise<void> {
    // A put announced and deleted again before this read finds nothing: the item is gone.
    for (const { slice, puts, deletes, orderedAt } of changes) await applyStored(slice, puts, deletes, orderedAt)
  }

  function settled(written: readonly QueueEntry[], superseded: readonly QueueEntry[]): void {
    for (const entry of superseded) contested.set(entry.key, { slice: entry.slice, id: entry.id })
    if (contested.size === 0) return
    const bySlice = new Map<string, ItemId[]>()
    for (const { key } of written) {
      const item = contested.get(key)
      if (!item || ctx.queue.has(key)) continue
      contested.delete(key)
      const ids = bySlice.get(item.slice)
      if (ids) ids.push(item.id)
      else bySlice.set(item.slice, [item.id])
    }
    for (const [slice, ids] of bySlice) {
      applyStored(slice, ids, []).catch((error: unknown) => reportError(ctx, toSyncError(error, 'reading items another tab changed failed')))
    }
  }

  return { host, applyExternalChanges, settled }
}
