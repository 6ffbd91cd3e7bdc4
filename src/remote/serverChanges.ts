import type { ChangeSet } from '../core/events'
import { itemKey } from '../core/ids'
import { HttpError, toSyncError } from '../errors'
import type { ItemId, StoreTransaction } from '../storage/types'
import { plainEqual } from '../utils/equal'
import type { ConflictStrategy, ServerVersion, SyncConflict } from '../core/conflicts'
import {
  announceConflict,
  localSide,
  publishDeadLetters,
  publishItemStates,
  publishOutbox,
  randomId,
  sliceByCollection,
  type EngineContext,
  type HostSlice,
} from './engineContext'
import {
  acknowledged,
  confirmedOf,
  isConfirmedDeleted,
  isOwn,
  latestOp,
  rebased,
  withConfirmed,
  withoutCovered,
  type Confirmed,
  type OutboxOp,
  type OutboxRow,
} from './outbox'
import { threeWayMerge } from '../utils/fieldPatch'
import { isObject } from '../utils/isObject'
import { rolledBack } from '../core/actions'
import type { RemoteRecord } from './http/protocol'
import { syncActions } from './redux/syncSlice'
import { readRow, readVersion, writeItem, writeRow, writeVersion, type Effects } from './effects'

const serverVersion = (record: RemoteRecord | null): ServerVersion | null =>
  record ? { value: record.value, version: record.version, deleted: record.deleted, updatedAt: record.updatedAt, clientTime: record.clientTime } : null

const serverValue = (record: RemoteRecord | null): unknown => (record && !record.deleted ? record.value : undefined)

/** Whether the local change and the server's version say the same: then there is nothing to decide. */
function sameContent(op: OutboxOp, server: RemoteRecord | null): boolean {
  const value = serverValue(server)
  if (op.type === 'delete') return value === undefined
  return value !== undefined && plainEqual(op.value, value)
}

/**
 * A server record for one key, inside the transaction that also reads the key's outbox row and
 * known version, so a pending change written by any tab is seen:
 * - known already (its version is not newer): nothing;
 * - our own write (its opId is in the row): the acknowledgement that was lost;
 * - the row's first op is on the wire (or its answer was lost): its answer decides, unless
 *   the decision would be for the server whichever came first;
 * - other pending changes: a conflict, decided by the slice's strategy;
 * - no pending change: the record is applied, unless a newer local change is still queued.
 */
export async function receiveRecord(ctx: EngineContext, tx: StoreTransaction, effects: Effects, record: RemoteRecord): Promise<void> {
  const slice = sliceByCollection(ctx, record.collection)
  if (!slice) return
  const id = ctx.host.localId(slice.name, record.id, record.value)
  const key = itemKey(slice.name, id)
  const [known, row] = await Promise.all([readVersion(tx, key), readRow(tx, key)])
  if (known !== undefined && record.version <= known) return
  if (row && row.ops.length > 0) {
    if (isOwn(row, record.opId)) {
      writeRow(tx, effects, key, acknowledged(row, record.opId!, record))
      writeVersion(tx, key, record.version)
      effects.pushAgain = true
      return
    }
    // The server's record is the confirmed value from now on, whatever is decided below; what
    // the pending change started from is kept for a field-level merge.
    const start = row.confirmed
    const fresh = withConfirmed(row, confirmedOf(record))
    if (fresh !== row) writeRow(tx, effects, key, fresh)
    // The first op may have been applied (its answer is unknown): was the server's version
    // written before it or after it? Only a decision for the server is the same either way
    // (server-wins, or a later server write under last-write-wins); anything else waits for
    // that op's answer.
    const parked = ctx.parked.get(key)
    if (parked) {
      // Still the same open conflict, now against a newer server version.
      parked.server = record
      parked.conflict = { ...parked.conflict, server: serverVersion(record) }
      ctx.host.dispatch(syncActions.conflictChanged(parked.conflict))
      return
    }
    // Under fieldMerge nothing is the same either way: the op on the wire may have been merged.
    if (fresh.ops[0]!.sent && (slice.fieldMerge || !serverWinsEitherWay(ctx, slice, fresh, record))) return
    await decideConflict(ctx, tx, effects, slice, id, fresh, record, 'pull', start)
    return
  }
  if (ctx.host.isQueued(key)) return // a newer local change: its push meets this version as a conflict
  const value = serverValue(record)
  if (value !== undefined) {
    const invalid = ctx.host.validate(slice.name, id, value)
    if (invalid) {
      effects.errors.push(invalid)
      return
    }
  }
  writeItem(tx, effects, slice, id, value)
  writeVersion(tx, key, record.version)
}

function serverWinsEitherWay(ctx: EngineContext, slice: HostSlice, row: OutboxRow, record: RemoteRecord): boolean {
  const strategy = strategyOf(ctx, slice)
  if (strategy === 'server-wins') return true
  return strategy === 'last-write-wins' && !(latestOp(row)!.clientTime > record.clientTime)
}

export function strategyOf(ctx: EngineContext, slice: HostSlice): ConflictStrategy {
  return slice.conflict ?? ctx.options.conflict ?? 'server-wins'
}

/**
 * Decides a conflict between the key's pending ops and the server's version, inside the
 * transaction that read them. Equal content is no conflict. A decision for the server drops
 * every op it saw and writes the server's version; for the client, the first op is based on
 * the server's version and pushed again; a merge replaces the ops with one op of the merged
 * value, written locally too. `manual` parks the key until the app decides.
 */
export async function decideConflict(
  ctx: EngineContext,
  tx: StoreTransaction,
  effects: Effects,
  slice: HostSlice,
  id: ItemId,
  row: OutboxRow,
  server: RemoteRecord | null,
  phase: 'push' | 'pull',
  start: Confirmed | undefined = row.confirmed,
): Promise<void> {
  const key = row.key
  const latest = latestOp(row)!
  const base = server ? server.version : null
  if (sameContent(latest, server)) {
    writeRow(tx, effects, key, withoutCovered(row, latest.seq, base, confirmedOf(server)))
    writeVersion(tx, key, base)
    return
  }
  const strategy = strategyOf(ctx, slice)
  const local = latest.type === 'put' ? latest.value : undefined
  const record = (resolution: SyncConflict['resolution']): SyncConflict => ({
    key,
    slice: slice.name,
    id,
    phase,
    strategy: typeof strategy === 'function' ? 'custom' : strategy,
    ...localSide(latest),
    server: serverVersion(server),
    detectedAt: Date.now(),
    resolution,
  })
  if (strategy === 'manual') {
    // A conflict answer proves the op was not applied: it is no longer "sent", so pulls keep
    // the parked conflict's server version current while the app decides.
    const known = withConfirmed(row, confirmedOf(server))
    const parkedRow = row.ops[0]!.sent && phase === 'push' ? { ...known, ops: [{ ...row.ops[0]!, sent: false }, ...row.ops.slice(1)] } : known
    if (parkedRow !== row) writeRow(tx, effects, key, parkedRow)
    effects.parked.push([key, { conflict: record('pending'), server, throughSeq: latest.seq }])
    return
  }
  const startValue = startOf(row, start)
  const fields = fieldDecision(slice, strategy, startValue, latest, server)
  if (fields && server) {
    const invalid = ctx.host.validate(slice.name, id, fields.value)
    if (!invalid) {
      // Fields changed on one side only are merged; only a field changed on both sides is a
      // conflict, and only then is one announced.
      const resolution = plainEqual(fields.value, server.value) ? 'server' : plainEqual(fields.value, local) ? 'client' : 'merged'
      // Every local edit lost to the server's (only possible when the strategy picks the server
      // for every clashing field): the whole-value decision below takes it, and announces the
      // rollback of the local change.
      const lostEverything = resolution === 'server' && fields.conflicts > 0
      if (!lostEverything) {
        if (resolution === 'server') takeServer(tx, effects, slice, id, row, latest.seq, server)
        else if (resolution === 'client') {
          writeRow(tx, effects, key, rebased(row, base, confirmedOf(server)))
          writeVersion(tx, key, base)
          effects.pushAgain = true
        } else takeMerged(ctx, tx, effects, slice, id, withConfirmed(row, confirmedOf(server)), latest.seq, base, fields.value)
        if (fields.conflicts > 0) effects.decided.push(record(resolution))
        return
      }
    } else {
      // A merge that fails the slice's schema is not kept: the whole-value strategy decides.
      effects.errors.push(invalid)
    }
  }
  let resolution: 'server' | 'client' | 'merged'
  if (strategy === 'server-wins') resolution = 'server'
  else if (strategy === 'client-wins') resolution = 'client'
  else if (strategy === 'last-write-wins') resolution = latest.clientTime > (server?.clientTime ?? 0) ? 'client' : 'server'
  else resolution = 'merged'
  if (resolution === 'server') {
    const value = serverValue(server)
    const invalid = value === undefined ? null : ctx.host.validate(slice.name, id, value)
    if (invalid) {
      // Server data that fails the slice's schema is never written: the local change stays and goes out again.
      effects.errors.push(invalid)
      resolution = 'client'
    }
  }
  if (resolution === 'server') {
    if (takeServer(tx, effects, slice, id, row, latest.seq, server)) {
      effects.rolledBack.push({
        key,
        slice: slice.name,
        id,
        opId: null,
        reason: {
          cause: 'conflict',
          status: null,
          code: 'conflict',
          message: `the server's version ${server?.version ?? '(none)'} was kept (${record('server').strategy})`,
        },
        rejected: { type: latest.type, value: local ?? null },
        restored: { value: serverValue(server) ?? null, version: base },
      })
    }
  } else if (resolution === 'client') {
    writeRow(tx, effects, key, rebased(row, base, confirmedOf(server)))
    writeVersion(tx, key, base)
    effects.pushAgain = true
  } else {
    let merged: unknown
    try {
      merged = (strategy as Exclude<ConflictStrategy, string>)({
        slice: slice.name,
        id,
        local: local === undefined ? null : local,
        server: serverValue(server) ?? null,
        ...(startValue === undefined ? {} : { base: startValue }),
        serverVersion: server?.version ?? 0,
        localTime: latest.clientTime,
        serverTime: server?.clientTime ?? 0,
      })
    } catch (caught) {
      effects.errors.push(toSyncError(caught, `the merge function for slice "${slice.name}" threw; the server's version is kept`))
      takeServer(tx, effects, slice, id, row, latest.seq, server)
      effects.decided.push(record('server'))
      return
    }
    takeMerged(ctx, tx, effects, slice, id, withConfirmed(row, confirmedOf(server)), latest.seq, base, merged === undefined ? null : merged)
  }
  effects.decided.push(record(resolution))
}

/**
 * The server's version wins over every op up to `throughSeq`; a newer op is based on it.
 * Returns whether the item was set to the server's version (nothing newer was pending).
 */
export function takeServer(
  tx: StoreTransaction,
  effects: Effects,
  slice: HostSlice,
  id: ItemId,
  row: OutboxRow | undefined,
  throughSeq: number,
  server: RemoteRecord | null,
): boolean {
  const key = itemKey(slice.name, id)
  const base = server ? server.version : null
  const next = row ? withoutCovered(row, throughSeq, base, confirmedOf(server)) : null
  if (row) writeRow(tx, effects, key, next)
  writeVersion(tx, key, base)
  // A newer local change stays what the store shows; it goes out on top of the server's version.
  if (!next) writeItem(tx, effects, slice, id, serverValue(server))
  else effects.pushAgain = true
  return !next
}

/** A merged value (`null`: deleted) replaces every op up to `throughSeq`, locally and as the next push on top of `base`. */
export function takeMerged(
  ctx: EngineContext,
  tx: StoreTransaction,
  effects: Effects,
  slice: HostSlice,
  id: ItemId,
  row: OutboxRow,
  throughSeq: number,
  base: number | null,
  merged: unknown,
): void {
  const newer = row.ops.filter((op) => op.seq > throughSeq)
  const op: OutboxOp = {
    opId: randomId(),
    type: merged === null ? 'delete' : 'put',
    ...(merged === null ? {} : { value: merged }),
    baseVersion: base,
    clientTime: Math.round(ctx.options.now() + ctx.clockOffset),
    seq: throughSeq,
    sent: false,
  }
  // A newer op stays behind the merge, based on the merge's result.
  const ops = [op, ...newer.map((o, i) => (i === 0 ? { ...o, baseVersion: undefined } : o))]
  writeRow(tx, effects, row.key, { ...row, ops })
  writeVersion(tx, row.key, base)
  if (newer.length === 0) writeItem(tx, effects, slice, id, merged)
  effects.pushAgain = true
}

/**
 * After the transaction committed: memory mirrors, the Redux state (keys with a queued local
 * change keep it: it is newer), the sync slice, announcements, other tabs.
 */
export function applyEffects(ctx: EngineContext, effects: Effects): void {
  if (ctx.silenced) return
  for (const [key, row] of effects.rows) {
    if (row) ctx.rows.set(key, row)
    else ctx.rows.delete(key)
  }
  if (effects.cursor) ctx.cursor = effects.cursor
  const changes: ChangeSet[] = []
  for (const [slice, group] of effects.state) {
    const puts = group.puts.filter(([id]) => !ctx.host.isQueued(itemKey(slice, id)))
    const deletes = group.deletes.filter((id) => !ctx.host.isQueued(itemKey(slice, id)))
    if (puts.length > 0 || deletes.length > 0) ctx.host.applyToState(slice, puts, deletes)
    if (group.puts.length > 0 || group.deletes.length > 0) changes.push({ slice, puts: group.puts.map(([id]) => id), deletes: group.deletes })
  }
  for (const stored of effects.buried) {
    ctx.deadLetters.set(stored.op.opId, stored)
    ctx.host.reportError(
      new HttpError(`the server rejected ${stored.row.key} permanently (${stored.letter.code}); it moved to the dead-letter list`, {
        status: stored.letter.status ?? 400,
        code: stored.letter.code,
        method: 'POST',
        url: ctx.options.baseUrl,
        slice: stored.row.slice,
        key: stored.row.key,
      }),
    )
  }
  for (const opId of effects.unburied) ctx.deadLetters.delete(opId)
  if (effects.buried.length > 0 || effects.unburied.length > 0) publishDeadLetters(ctx)
  if (effects.rows.size > 0) publishOutbox(ctx)
  for (const error of effects.errors) ctx.host.reportError(error)
  for (const payload of effects.rolledBack) ctx.host.dispatch(rolledBack(payload))
  for (const [key, parked] of effects.parked) {
    ctx.parked.set(key, parked)
    announceConflict(ctx, parked.conflict)
  }
  for (const conflict of effects.decided) announceConflict(ctx, conflict)
  if (effects.parked.length > 0 || effects.decided.length > 0) publishItemStates(ctx)
  if (changes.length > 0) ctx.host.emit({ type: 'committed', changes })
}

/**
 * What the pending change started from (`null`: the item did not exist), when known: the
 * confirmed value at the first op's base version. `undefined` when the row does not know it.
 */
function startOf(row: OutboxRow, start: Confirmed | undefined): unknown {
  const first = row.ops[0]
  if (!start || !first || first.baseVersion === undefined || start.version !== first.baseVersion) return undefined
  return isConfirmedDeleted(start) ? null : start.value
}

/**
 * A field-level decision for a `fieldMerge` slice: the three-way merge of what the change
 * started from, the local item and the server's, with a field changed on both sides decided by
 * the strategy (`server-wins`: the server's field, `client-wins`: the local one,
 * `last-write-wins`: the later change's). `null` when the whole-value strategy decides: no
 * known start, a delete on either side, or a custom merge function (it gets `base` itself).
 */
function fieldDecision(
  slice: HostSlice,
  strategy: ConflictStrategy,
  start: unknown,
  latest: OutboxOp,
  server: RemoteRecord | null,
): { value: unknown; conflicts: number } | null {
  if (!slice.fieldMerge || typeof strategy === 'function' || !isObject(start)) return null
  if (latest.type !== 'put' || !isObject(latest.value) || !server || server.deleted || !isObject(server.value)) return null
  const localWins = strategy === 'client-wins' || (strategy === 'last-write-wins' && latest.clientTime > server.clientTime)
  const merged = threeWayMerge(start, latest.value, server.value, () => (localWins ? 'local' : 'server'))
  return { value: merged.value, conflicts: merged.conflicts.length }
}
