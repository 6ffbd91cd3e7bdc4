// Ops the server refused for good: the dead-letter list, the rollback of the item to what the
// server holds, and the unsent changes that referred to a refused create.
import type { RollbackReason } from '../core/actions'
import type { ItemRef } from '../core/ports'
import { toSyncError, type SyncError } from '../errors'
import { DEAD_LETTER_STORE, type ItemId, type StoreTransaction } from '../storage/types'
import { readRow, readVersion, writeItem, writeRow, writeVersion, type Effects } from './effects'
import { sliceByName, type EngineContext, type HostSlice, type StoredDeadLetter } from './engineContext'
import { isConfirmedDeleted, latestOp, withoutRejected, type Confirmed, type OutboxOp, type OutboxRow } from './outbox'
import type { DeadLetter } from './redux/syncSlice'

/** Whether the row stands for an item the server has never held: its ops create it. */
export const createsItem = (row: OutboxRow): boolean => row.confirmed !== undefined && isConfirmedDeleted(row.confirmed) && row.confirmed.version === null

/**
 * Moves an op the server refused for good to the dead-letter list, in the caller's transaction.
 * The op behind it (a newer change of the key) stays, based on what the server has. With
 * `onReject: 'rollback'` and nothing newer pending, the item returns to its confirmed value in
 * the same transaction, and `rolledBack` announces it after the commit. A rejected create takes
 * its dependants' pending changes with it (`dependency_rejected`).
 */
export async function bury(
  ctx: EngineContext,
  tx: StoreTransaction,
  effects: Effects,
  row: OutboxRow,
  op: OutboxOp,
  reason: { status: number | null; code: string; message: string },
  cause: 'rejected' | 'dependency' = 'rejected',
  dependsOn?: string,
): Promise<void> {
  const slice = sliceByName(ctx, row.slice)
  const known = await readVersion(tx, row.key)
  const rest = withoutRejected(row, op.opId, known ?? null)
  const confirmed = row.confirmed
  const rollback = slice !== undefined && slice.onReject === 'rollback' && rest === null && confirmed !== undefined
  const letter: DeadLetter = {
    opId: op.opId,
    key: row.key,
    slice: row.slice,
    id: row.id,
    type: op.type,
    ...reason,
    at: Date.now(),
    rolledBack: rollback,
    ...(dependsOn ? { dependsOn } : {}),
  }
  const stored: StoredDeadLetter = {
    row: { key: row.key, slice: row.slice, collection: row.collection, id: row.id },
    op,
    letter,
    ...(confirmed ? { confirmed } : {}),
  }
  tx.put(DEAD_LETTER_STORE, op.opId, stored)
  writeRow(tx, effects, row.key, rest)
  effects.buried.push(stored)
  if (rollback) restore(tx, effects, slice, row.key, row.id, confirmed, { opId: op.opId, type: op.type, value: op.value }, { cause, ...reason })
  if (createsItem(row)) await buryDependants(ctx, tx, effects, row.key, { slice: row.slice, id: row.id })
}

/**
 * The item returns to `confirmed` in the store (and, after the commit, in the state), and the
 * rollback is announced. The version is the confirmed one: the item is that server value now.
 */
export function restore(
  tx: StoreTransaction,
  effects: Effects,
  slice: HostSlice,
  key: string,
  id: ItemId,
  confirmed: Confirmed,
  undone: { opId: string | null; type: 'put' | 'delete'; value: unknown },
  reason: RollbackReason,
): void {
  const value = isConfirmedDeleted(confirmed) ? undefined : confirmed.value
  writeItem(tx, effects, slice, id, value)
  writeVersion(tx, key, confirmed.version)
  effects.rolledBack.push({
    key,
    slice: slice.name,
    id,
    opId: undone.opId,
    reason,
    rejected: { type: undone.type, value: undone.type === 'put' ? (undone.value ?? null) : null },
    restored: { value: value ?? null, version: confirmed.version },
  })
}

/** Whether `item` of `slice` refers to `target`, by the slice's `dependsOn`. A throwing `dependsOn` is reported and counts as no reference. */
export function refersTo(ctx: EngineContext, slice: HostSlice, item: unknown, target: ItemRef, errors: SyncError[]): boolean {
  if (!slice.dependsOn || item === undefined) return false
  try {
    for (const ref of slice.dependsOn(item)) if (ref.slice === target.slice && String(ref.id) === String(target.id)) return true
  } catch (caught) {
    errors.push(toSyncError(caught, `dependsOn of slice "${slice.name}" threw`))
  }
  return false
}

/** The unsent changes that refer to a rejected create are dead-lettered too (and rolled back as their slice says). */
async function buryDependants(ctx: EngineContext, tx: StoreTransaction, effects: Effects, key: string, target: ItemRef): Promise<void> {
  for (const candidate of [...ctx.rows.values()]) {
    if (candidate.key === key || effects.buried.some((b) => b.row.key === candidate.key)) continue
    const slice = sliceByName(ctx, candidate.slice)
    if (!slice?.dependsOn) continue
    const row = await readRow(tx, candidate.key)
    const latest = row && latestOp(row)
    if (!row || !latest || latest.sent || !refersTo(ctx, slice, latest.value, target, effects.errors)) continue
    await bury(
      ctx,
      tx,
      effects,
      row,
      latest,
      { status: null, code: 'dependency_rejected', message: `${key} was rejected by the server, and this change refers to it` },
      'dependency',
      key,
    )
  }
}
