import type { HostSlice } from '../core/ports'
import { OUTBOX_STORE, type ItemId, type StoreTransaction } from '../storage/types'
import { readVersion } from './effects'
import { isPushed, randomId, sliceByName, type EngineContext } from './engineContext'
import { confirmedFromLocal, fromLegacy, isLegacyEntry, isRow, latestOp, markedSent, nextToSend, withLocalChange, type OutboxRow } from './outbox'

/** A local change as the writer hands it over, inside the transaction that writes the item. */
export interface StagedChange {
  readonly key: string
  readonly slice: string
  readonly id: ItemId
  readonly type: 'put' | 'delete'
  readonly value: unknown
  /** When the change was observed (the action), on this device's clock. */
  readonly observedAt: number
  /** When the change was observed, on the clock the tabs of one browser share: orders two tabs' changes of a key. */
  readonly orderedAt?: number
}

/** What `stage` wrote: the rows, and the keys whose change it skipped because the stored row holds a later one. */
export interface Staged {
  readonly rows: OutboxRow[]
  readonly superseded: ReadonlySet<string>
}

/** A row whose only op is the change just written, free to go out at once (no conflict waiting, no dependency rule to ask first). */
const claimable = (ctx: EngineContext, row: OutboxRow, slice: HostSlice): boolean =>
  row.ops.length === 1 && !row.ops[0]!.sent && nextToSend(row) !== null && !ctx.parked.has(row.key) && !ctx.inflight.has(row.key) && !slice.dependsOn

/** The row with its op marked sent by `attempt`, remembered so the push takes it as claimed. */
function claimedAtWrite(ctx: EngineContext, row: OutboxRow, attempt: string): OutboxRow {
  const marked = markedSent(row, attempt)
  ctx.claimedAtWrite.set(row.key, marked.ops[0]!)
  return marked
}

/**
 * Writes the outbox rows of local changes in the writer's transaction, before it writes the
 * items. A change another tab's later change of the key (already in the row) supersedes is not
 * staged, and the writer skips its item. With `claimOnWrite` (the change is pushed at once), a
 * row whose only op is the change is marked sent here, sparing its push the claim transaction.
 */
export async function stageChanges(ctx: EngineContext, tx: StoreTransaction, changes: readonly StagedChange[], claimOnWrite: boolean): Promise<Staged> {
  const rows: OutboxRow[] = []
  const superseded = new Set<string>()
  const attempt = claimOnWrite ? randomId() : null
  for (const change of changes) {
    const slice = sliceByName(ctx, change.slice)
    if (!slice || !isPushed(ctx, slice, change.type, change.value)) continue
    const [stored, known] = await Promise.all([tx.get(OUTBOX_STORE, change.key), readVersion(tx, change.key)])
    // A row an older version wrote (or this one before loading) keeps its opIds.
    const row = isRow(stored) ? stored : isLegacyEntry(stored) ? fromLegacy(stored, await tx.get(slice.storeName, change.id), known ?? null) : undefined
    // Another tab committed a change of the key made after this one: it stays, this one is
    // not written (the writer skips the item too).
    const newest = row && latestOp(row)?.orderedAt
    if (newest !== undefined && change.orderedAt !== undefined && newest > change.orderedAt) {
      superseded.add(change.key)
      continue
    }
    // A key without a pending op is synced: the item as stored before this change (this
    // runs before the writer writes it) is the server's value at the known version.
    const confirmed =
      row && row.ops.length > 0 ? undefined : confirmedFromLocal(known === undefined ? undefined : await tx.get(slice.storeName, change.id), known ?? null)
    const next = withLocalChange(
      row,
      {
        key: change.key,
        slice: slice.name,
        collection: slice.storeName,
        id: change.id,
        type: change.type,
        value: change.value,
        // On the server's clock, so last-write-wins compares two devices fairly.
        clientTime: Math.round(change.observedAt + ctx.clockOffset),
        ...(change.orderedAt !== undefined ? { orderedAt: change.orderedAt } : {}),
      },
      known ?? null,
      randomId(),
      ++ctx.seq,
      confirmed,
    )
    const written = attempt !== null && claimable(ctx, next, slice) ? claimedAtWrite(ctx, next, attempt) : next
    tx.put(OUTBOX_STORE, change.key, written, { slice: slice.name, key: change.key })
    rows.push(written)
  }
  return { rows, superseded }
}
