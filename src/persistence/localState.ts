import type { UnknownAction } from '@reduxjs/toolkit'
import { remoteApplied } from '../core/actions'
import type { ChangeSet } from '../core/events'
import { itemKey, validId } from '../core/ids'
import type { HostSlice, SyncHost } from '../core/ports'
import type { ItemId } from '../storage/types'
import { stripDangerousKeys } from '../utils/serializable'
import { emitOperation, reportError, type PersistenceContext } from './instanceContext'
import { entriesOf, getAt } from './shapes'
import type { SliceTracker } from './sliceTracker'
import { validationError } from './validate'

/**
 * Reading items from the Redux state and applying items from elsewhere (the server, other tabs)
 * without queueing them to be written back. `host` is the sync engine's port into this instance.
 */
export interface LocalState {
  readonly host: SyncHost
  /** Applies items another tab committed to the same database (read from storage, never written back). */
  applyExternalChanges(changes: readonly ChangeSet[]): Promise<void>
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

  async function applyExternalChanges(changes: readonly ChangeSet[]): Promise<void> {
    for (const { slice, puts, deletes } of changes) {
      const s = ctx.slices.get(slice)
      if (!s || !live() || s.hydration !== 'done') continue
      const values = puts.length > 0 ? await ctx.storage.getMany(s.config.storeName, puts) : []
      tracker.processDiffs()
      // A key changed here and not yet written keeps this tab's value: it is newer.
      const keep = (id: ItemId): boolean => !ctx.queue.has(itemKey(slice, id))
      const put: Array<[ItemId, unknown]> = []
      puts.forEach((id, i) => {
        const value = values[i]
        if (value !== undefined && keep(id)) put.push([id, stripDangerousKeys(value)])
      })
      const removed = deletes.filter(keep)
      if (put.length === 0 && removed.length === 0) continue
      ctx.api!.dispatch(remoteApplied({ slice, puts: put, deletes: removed }, ctx.instanceId))
    }
  }

  return { host, applyExternalChanges }
}
