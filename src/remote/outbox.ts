import type { ItemId } from '../storage/types'
import type { RemoteRecord } from './http/protocol'

/*
 * The confirmed value of a key (`OutboxRow.confirmed`): the last value the server acknowledged
 * or sent for it, as far as this client knows.
 *
 * Shape: `{ value, version }` (the server holds `value` as `version`) or
 * `{ deleted: true, version }` (the server holds a tombstone as `version`; `version: null`: the
 * item was never on the server). Absent when unknown (a row written by an older version).
 *
 * Semantics:
 * - It lives in the outbox row, so it is stored exactly for keys with pending or failed
 *   operations and costs nothing for synced keys (their item in the slice's store IS the
 *   confirmed value, and `__ris_versions` holds its version).
 * - It is set when a row is created (from the item as stored before the change and the known
 *   version), and replaced on every acknowledgement (the acknowledged op's stored record) and on
 *   every newer server record a pull, a conflict answer or a decision brings for the key. It
 *   never moves backwards (a record with a lower version is ignored).
 * - It can be newer than the first op's `baseVersion`: a pull brought a newer server version
 *   while the op was out. That op then meets a conflict; `baseVersion` stays what the change was
 *   made on, `confirmed` is what the server has now.
 * - A rejection rolls the item back to it (`onReject: 'rollback'`); a differential push patches
 *   against it. It survives reloads with the row; the dead-letter record keeps a copy.
 */
/** The last value the server acknowledged or sent for a key (see the note above). */
export type Confirmed = { readonly value: unknown; readonly version: number } | { readonly deleted: true; readonly version: number | null }

/** The confirmed value a server record stands for. */
export function confirmedOf(record: RemoteRecord | null): Confirmed {
  if (!record) return { deleted: true, version: null }
  return record.deleted || record.value === undefined || record.value === null
    ? { deleted: true, version: record.version }
    : { value: record.value, version: record.version }
}

/** The confirmed value of a local item read from storage (`undefined`: no item) at a known version. */
export function confirmedFromLocal(item: unknown, version: number | null): Confirmed {
  return item === undefined || item === null || version === null ? { deleted: true, version } : { value: item, version }
}

/** Whether the confirmed value says the server holds no item (never created, or deleted). */
export function isConfirmedDeleted(confirmed: Confirmed): confirmed is { readonly deleted: true; readonly version: number | null } {
  return 'deleted' in confirmed
}

/** The row with `confirmed` taken over, unless the row already knows a newer server version. */
export function withConfirmed(row: OutboxRow, confirmed: Confirmed): OutboxRow {
  const current = row.confirmed
  if (current && current.version !== null && (confirmed.version === null || confirmed.version < current.version)) return row
  return { ...row, confirmed }
}

/**
 * One operation waiting for the server. It IS the operation: its type, value, opId, base
 * version and the edit's time are fixed when it is written (in the same transaction as the
 * local item), and a push sends exactly what it holds.
 */
export interface OutboxOp {
  readonly opId: string
  readonly type: 'put' | 'delete'
  /** The item, for a put. */
  readonly value?: unknown
  /**
   * The server version the change was made on (`null`: the item was never on the server).
   * `undefined` while the op before it in its row awaits the server's answer: it is based on
   * that op's result, and gets its version when that op is acknowledged or rejected.
   */
  readonly baseVersion: number | null | undefined
  /** When the change was made (observed in the store), on the server's clock as best known. */
  readonly clientTime: number
  /**
   * When the change was made, on the clock the tabs of one browser share (local changes only):
   * a tab's earlier change of the key is not written over it.
   */
  readonly orderedAt?: number
  /** Orders operations across keys (first written, first pushed). */
  readonly seq: number
  /**
   * May have reached the server: a push of it started. A sent op is never replaced, and stays
   * until the server's answer about it is known, so its opId always recognises its own result.
   */
  readonly sent: boolean
  /**
   * The push attempt that sent it last (a random id per attempt). Tabs may both send an op; the
   * answer of the latest attempt alone decides a conflict or a rejection, so one is decided once.
   */
  readonly attempt?: string
}

/**
 * Everything waiting for the server for one key, oldest first. Only `ops[0]` is ever sent; a
 * change made while it is out is a new op behind it (at most one unsent op: a newer change
 * replaces it, with a new opId). So a row holds at most two ops, and the outbox is bounded by
 * the number of keys.
 */
export interface OutboxRow {
  readonly format: 2
  readonly key: string
  readonly slice: string
  readonly collection: string
  readonly id: ItemId
  readonly ops: readonly OutboxOp[]
  /**
   * opIds that may have reached the server without a known answer, from a row written by an
   * older version of the library (which coalesced sent entries). A server version carrying one
   * of them is this client's own write.
   */
  readonly lostOpIds?: readonly string[]
  /**
   * The last value the server acknowledged or sent for this key (see the note at the top of
   * this file). Absent when unknown: a row written by an older version of the library.
   */
  readonly confirmed?: Confirmed
}

/** A local change as the writer hands it to the outbox. */
export interface LocalChange {
  readonly key: string
  readonly slice: string
  readonly collection: string
  readonly id: ItemId
  readonly type: 'put' | 'delete'
  readonly value?: unknown
  readonly clientTime: number
  readonly orderedAt?: number
}

// An item stored as `undefined` cannot be held by the server: it is a delete there.
const typeOf = (change: LocalChange): 'put' | 'delete' => (change.type === 'put' && change.value !== undefined ? 'put' : 'delete')

const opOf = (change: LocalChange, opId: string, seq: number, baseVersion: number | null | undefined): OutboxOp => ({
  opId,
  type: typeOf(change),
  ...(typeOf(change) === 'put' ? { value: change.value } : {}),
  baseVersion,
  clientTime: change.clientTime,
  ...(change.orderedAt !== undefined ? { orderedAt: change.orderedAt } : {}),
  seq,
  sent: false,
})

/**
 * The row after a local change. A new row is based on `known` (the server version last seen)
 * and starts from `confirmed` (what the server holds as far as known); an unsent last op is
 * replaced (keeping its base); behind a sent op the change becomes a new op.
 */
export function withLocalChange(
  row: OutboxRow | undefined,
  change: LocalChange,
  known: number | null,
  opId: string,
  seq: number,
  confirmed?: Confirmed,
): OutboxRow {
  if (!row || row.ops.length === 0) {
    const kept = confirmed ?? row?.confirmed
    return {
      format: 2,
      key: change.key,
      slice: change.slice,
      collection: change.collection,
      id: change.id,
      ops: [opOf(change, opId, seq, known)],
      ...(row?.lostOpIds ? { lostOpIds: row.lostOpIds } : {}),
      ...(kept ? { confirmed: kept } : {}),
    }
  }
  const last = row.ops[row.ops.length - 1]!
  // Within a row, a later op has a higher seq, whichever tab's counter wrote it.
  const next = Math.max(seq, last.seq + 1)
  if (!last.sent) return { ...row, ops: [...row.ops.slice(0, -1), opOf(change, opId, next, last.baseVersion)] }
  return { ...row, ops: [...row.ops, opOf(change, opId, next, undefined)] }
}

/** The op a push of this row sends, or `null` when it has none ready. */
export function nextToSend(row: OutboxRow): OutboxOp | null {
  const first = row.ops[0]
  return first && first.baseVersion !== undefined ? first : null
}

/** The row with its first op marked as sent by `attempt`. */
export function markedSent(row: OutboxRow, attempt: string): OutboxRow {
  const [first, ...rest] = row.ops
  if (!first) return row
  return { ...row, ops: [{ ...first, sent: true, attempt }, ...rest] }
}

/** Whether `opId` is one of this row's own operations (sent or not, or lost by an older version). */
export function isOwn(row: OutboxRow | undefined, opId: string | undefined): boolean {
  if (!row || opId === undefined) return false
  return row.ops.some((op) => op.opId === opId) || (row.lostOpIds?.includes(opId) ?? false)
}

const rebaseFirst = (ops: readonly OutboxOp[], version: number | null): OutboxOp[] => {
  const [first, ...rest] = ops
  if (!first) return []
  return [{ ...first, baseVersion: version }, ...rest]
}

const orNull = (row: OutboxRow, ops: readonly OutboxOp[], lostOpIds = row.lostOpIds): OutboxRow | null => {
  if (ops.length === 0) return null
  return { ...row, ops, ...(lostOpIds && lostOpIds.length > 0 ? { lostOpIds } : {}) }
}

/**
 * The server applied `opId` as `record` (or had applied it before): that op, and any op before
 * it, leave the row; the op behind it is now based on the record's version, and the record is
 * the confirmed value. `null` when nothing is left.
 */
export function acknowledged(row: OutboxRow, opId: string, record: RemoteRecord): OutboxRow | null {
  const version = record.version
  const at = row.ops.findIndex((op) => op.opId === opId)
  const lost = row.lostOpIds?.filter((id) => id !== opId)
  if (at < 0) {
    // A lost opId of an older version: the first op is based on that write now.
    if (!row.lostOpIds?.includes(opId)) return row
    const [first] = row.ops
    return orNull(withConfirmed(row, confirmedOf(record)), first && !first.sent ? rebaseFirst(row.ops, version) : row.ops, lost)
  }
  const rest = row.ops.slice(at + 1)
  const [next] = rest
  return orNull(withConfirmed(row, confirmedOf(record)), next && next.baseVersion === undefined ? rebaseFirst(rest, version) : rest, lost)
}

/**
 * The server refused `opId` for good (it never applied it): it leaves the row, and the op
 * behind it is based on what the server has, `known`. The confirmed value stays: the server
 * still holds it.
 */
export function withoutRejected(row: OutboxRow, opId: string, known: number | null): OutboxRow | null {
  const at = row.ops.findIndex((op) => op.opId === opId)
  if (at < 0) return row
  const rest = [...row.ops.slice(0, at), ...row.ops.slice(at + 1)]
  const [next] = rest
  return orNull(row, at === 0 && next && next.baseVersion === undefined ? rebaseFirst(rest, known) : rest)
}

/**
 * The local side is pushed again on top of `version` (a conflict decided for the client): the
 * first op was refused as a conflict (so it was never applied), and is now based on `version`
 * and free to be replaced by a newer change. `confirmed`, when given, is the server's side.
 */
export function rebased(row: OutboxRow, version: number | null, confirmed?: Confirmed): OutboxRow {
  const [first, ...rest] = row.ops
  if (!first) return row
  const base = confirmed ? withConfirmed(row, confirmed) : row
  return { ...base, ops: [{ ...first, baseVersion: version, sent: false }, ...rest] }
}

/**
 * A decision for the server's version: every op up to `throughSeq` (what the decision saw)
 * leaves the row; a newer op is based on the server's `version` now, and `confirmed` (when
 * given) is the server's side.
 */
export function withoutCovered(row: OutboxRow, throughSeq: number, version: number | null, confirmed?: Confirmed): OutboxRow | null {
  const rest = row.ops.filter((op) => op.seq > throughSeq)
  return orNull(confirmed ? withConfirmed(row, confirmed) : row, rest.length > 0 ? rebaseFirst(rest, version) : rest)
}

/** The newest op: what the local store holds for the key. */
export function latestOp(row: OutboxRow): OutboxOp | undefined {
  return row.ops[row.ops.length - 1]
}

/** A stored outbox value in the format this version writes. */
export function isRow(value: unknown): value is OutboxRow {
  return typeof value === 'object' && value !== null && (value as { format?: unknown }).format === 2 && Array.isArray((value as { ops?: unknown }).ops)
}

/** The entry an older version of the library stored: one per key, without its value. */
export interface LegacyEntry {
  readonly key: string
  readonly slice: string
  readonly collection: string
  readonly id: ItemId
  readonly type: 'put' | 'delete'
  readonly opId: string
  readonly clientTime: number
  readonly seq: number
  readonly prevOpIds?: readonly string[]
}

export function isLegacyEntry(value: unknown): value is LegacyEntry {
  const v = value as Partial<LegacyEntry> | null
  return typeof v === 'object' && v !== null && typeof v.key === 'string' && typeof v.opId === 'string' && typeof v.slice === 'string'
}

/**
 * A row for an older version's entry. That entry did not hold its value, so the value is the
 * local item now (`undefined`: deleted); its opId may have been sent, so it stays as sent.
 */
export function fromLegacy(entry: LegacyEntry, local: unknown, known: number | null): OutboxRow {
  return {
    format: 2,
    key: entry.key,
    slice: entry.slice,
    collection: entry.collection,
    id: entry.id,
    ops: [
      {
        opId: entry.opId,
        type: local === undefined ? 'delete' : 'put',
        ...(local === undefined ? {} : { value: local }),
        baseVersion: known,
        clientTime: entry.clientTime,
        seq: entry.seq,
        sent: true,
      },
    ],
    ...(entry.prevOpIds && entry.prevOpIds.length > 0 ? { lostOpIds: [...entry.prevOpIds] } : {}),
  }
}
