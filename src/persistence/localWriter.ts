import type { ChangeSet } from '../core/events'
import { NonSerializableError, isNonSerializableError, type SyncError } from '../errors'
import type { Staged, StagedChange } from '../remote/createSyncEngine'
import type { ItemId, StorageOp, StoreTransaction } from '../storage/types'
import { findNonSerializable } from '../utils/serializable'
import { emitOperation, reportError, type PersistenceContext } from './instanceContext'
import type { BatchReport, QueueEntry, WriteResult } from './writeQueue'

const NOTHING_STAGED: Staged = { rows: [], superseded: new Set() }

/** The write path: what the queue calls to commit a batch, and what it reports afterwards. */
export interface LocalWriter {
  /**
   * Commits a batch. Values that cannot be stored are rejected one by one; the rest is written,
   * items and the outbox rows of synced slices in one transaction.
   */
  write(batch: readonly QueueEntry[]): Promise<WriteResult>
  /** After a batch: status, errors, the operation record and the `committed` change sets. */
  report(report: BatchReport): void
}

/** Whether a slice's writes also go to the server (it is synced and enabled). */
export function isSyncedSlice(ctx: PersistenceContext, name: string): boolean {
  const config = ctx.slices.get(name)?.config
  return config !== undefined && config.syncToFlask && config.enabled
}

export function createLocalWriter(ctx: PersistenceContext): LocalWriter {
  const storeOf = (entry: QueueEntry): string => ctx.slices.get(entry.slice)!.config.storeName

  async function write(batch: readonly QueueEntry[]): Promise<WriteResult> {
    const rejected: Array<{ entry: QueueEntry; error: SyncError }> = []
    let writable: QueueEntry[] = []
    for (const entry of batch) {
      const problem = entry.op === 'put' ? findNonSerializable(entry.value, ctx.options.maxDepth) : null
      if (!problem) {
        writable.push(entry)
        continue
      }
      const where = problem.path.length ? ` at ${problem.path.join('.')}` : ''
      rejected.push({
        entry,
        error: new NonSerializableError(`${entry.key} cannot be persisted: ${problem.reason}${where}`, {
          slice: entry.slice,
          key: entry.key,
          path: problem.path,
          reason: problem.reason,
        }),
      })
    }
    // A clone failure our own check missed aborts the whole transaction: drop that one op (and
    // its outbox row) and write the rest again, so one bad value never holds back the others.
    let staged: Staged = NOTHING_STAGED
    for (;;) {
      try {
        staged = await writeItems(writable)
        break
      } catch (error) {
        const entry = isNonSerializableError(error) && error.key !== undefined ? writable.find((e) => e.key === error.key) : undefined
        if (!entry || !isNonSerializableError(error)) throw error
        rejected.push({ entry, error })
        writable = writable.filter((e) => e !== entry)
      }
    }
    const { rows, superseded } = staged
    ctx.engine?.committed(rows)
    if (rows.length > 0 && ctx.events.size > 0) ctx.events.emit({ type: 'local-change', count: rows.length })
    return superseded.size > 0 ? { rejected, superseded: writable.filter((entry) => superseded.has(entry.key)) } : { rejected }
  }

  /**
   * Writes the items, and the outbox rows of synced slices, in ONE transaction: an item and the
   * operation standing for it commit together or not at all.
   */
  async function writeItems(entries: readonly QueueEntry[]): Promise<Staged> {
    if (entries.length === 0) return NOTHING_STAGED
    const { engine, storage } = ctx
    const synced = engine ? entries.filter((entry) => isSyncedSlice(ctx, entry.slice)) : []
    if (!engine || synced.length === 0) {
      await storage.commit(
        entries.map((entry): StorageOp => {
          const storeName = storeOf(entry)
          const ref = { slice: entry.slice, key: entry.key }
          return entry.op === 'delete'
            ? { type: 'delete', store: storeName, key: entry.id, ref }
            : { type: 'put', store: storeName, key: entry.id, value: entry.value, ref }
        }),
      )
      return NOTHING_STAGED
    }
    const stores = new Set(entries.map(storeOf))
    for (const store of engine.stagingStores) stores.add(store)
    const changes: StagedChange[] = synced.map((entry) => ({
      key: entry.key,
      slice: entry.slice,
      id: entry.id,
      type: entry.op,
      value: entry.value,
      observedAt: entry.observedAt,
      orderedAt: entry.orderedAt,
    }))
    return storage.transact([...stores], async (tx: StoreTransaction) => {
      // The rows first: a new row records the item as stored before this change.
      const staged = await engine.stage(tx, changes)
      for (const entry of entries) {
        if (staged.superseded.has(entry.key)) continue
        if (entry.op === 'delete') tx.delete(storeOf(entry), entry.id)
        else tx.put(storeOf(entry), entry.id, entry.value, { slice: entry.slice, key: entry.key })
      }
      return staged
    })
  }

  function report(batch: BatchReport): void {
    if (!batch.error) ctx.status.update({ lastCommitTime: Date.now() })
    else reportError(ctx, batch.error)
    for (const { error } of batch.rejected) reportError(ctx, error)
    if (ctx.events.size === 0) return
    const sliceNames = new Set(batch.entries.map((e) => e.slice))
    emitOperation(ctx, {
      kind: 'write',
      slice: sliceNames.size === 1 ? [...sliceNames][0]! : null,
      items: batch.entries.length - batch.rejected.length,
      durationMs: batch.durationMs,
      ok: batch.error === null,
      error: batch.error ? batch.error.toJSON() : null,
    })
    for (const { entry, error } of batch.rejected) {
      emitOperation(ctx, { kind: 'write', slice: entry.slice, items: 0, durationMs: 0, ok: false, error: error.toJSON() })
    }
    if (!batch.error) {
      const unwritten = new Set([...batch.rejected.map((r) => r.entry), ...batch.superseded])
      ctx.events.emit({ type: 'committed', changes: changeSets(batch.entries.filter((entry) => !unwritten.has(entry))) })
    }
  }

  return { write, report }
}

/** Groups written entries by slice, in the order their slices first appear. */
function changeSets(entries: readonly QueueEntry[]): ChangeSet[] {
  const bySlice = new Map<string, { slice: string; puts: ItemId[]; deletes: ItemId[]; orderedAt: Record<string, number> }>()
  for (const entry of entries) {
    let group = bySlice.get(entry.slice)
    if (!group) bySlice.set(entry.slice, (group = { slice: entry.slice, puts: [], deletes: [], orderedAt: {} }))
    if (entry.op === 'put') group.puts.push(entry.id)
    else group.deletes.push(entry.id)
    group.orderedAt[String(entry.id)] = entry.orderedAt
  }
  return [...bySlice.values()]
}
