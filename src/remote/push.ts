import { isAuthError, isHttpError, toSyncError, type SyncError } from '../errors'
import { type Connection } from './connection'
import { OUTBOX_STORE, type StoreTransaction } from '../storage/types'
import { publishOutbox, randomId, reportOperation, sliceByName, transact, type EngineContext } from './engineContext'
import { syncActions } from './redux/syncSlice'
import { acknowledged, isConfirmedDeleted, isOwn, isRow, markedSent, nextToSend, type OutboxOp, type OutboxRow } from './outbox'
import type { RemoteOperation, RemoteRecord } from './http/protocol'
import { cursorBackTo, newEffects, readRow, writeItem, writeRow, writeVersion, type Effects } from './effects'
import { fieldPatch, type FieldPatch } from '../utils/fieldPatch'
import { plainEqual } from '../utils/equal'
import { bury, createsItem } from './rejection'
import { applyEffects, decideConflict } from './serverChanges'
import { itemKey } from '../core/ids'
import type { ItemRef } from '../core/ports'

type Outcome = 'ok' | 'split' | 'stop'

interface Claimed {
  readonly row: OutboxRow
  readonly op: OutboxOp
}

/** Whether the row's first op is still `op` as this attempt sent it. */
const latestAttempt = (row: OutboxRow, op: OutboxOp): boolean => row.ops[0]?.opId === op.opId && row.ops[0].attempt === op.attempt

/**
 * The wire form of an op: exactly what the entry holds, never a re-read of the local store. For
 * a `fieldMerge` slice talking to a protocol 3 server, a put whose row knows the server's value
 * at the op's base version goes out as the patch between the two (a pure function of the row).
 */
function toRemote(ctx: EngineContext, row: OutboxRow, op: OutboxOp): RemoteOperation {
  const patch = patchOf(ctx, row, op)
  if (patch) {
    return {
      opId: op.opId,
      collection: row.collection,
      id: String(row.id),
      type: 'patch',
      patch: patch.patch,
      base: patch.base,
      baseVersion: op.baseVersion ?? null,
      clientTime: op.clientTime,
    }
  }
  return {
    opId: op.opId,
    collection: row.collection,
    id: String(row.id),
    type: op.type,
    ...(op.type === 'put' ? { value: op.value } : {}),
    baseVersion: op.baseVersion ?? null,
    clientTime: op.clientTime,
  }
}

/**
 * Pushes the outbox in batches of `remote.batchSize` until it is empty, the server is
 * unreachable, or a failure halts it. Runs under the engine's lock.
 *
 * Rules it keeps:
 * - Only the first op of a key is sent, and it is marked as sent (durably, before the request)
 *   so no tab replaces it while its answer is unknown.
 * - The batch is read from storage, not from memory: another tab may have written the rows.
 * - Results are applied in one transaction that reads each row again.
 * - A transient failure keeps everything; a permanent rejection moves that one op to the
 *   dead-letter list (a 4xx for the whole request is split until the one op is found).
 */
export async function pushOutbox(ctx: EngineContext, connection: Connection, again: () => void, onBatch?: (count: number) => void): Promise<void> {
  let limit = ctx.options.batchSize
  let rechecked = false
  for (;;) {
    if (ctx.disposed || !ctx.connected) return
    const ready = [...ctx.rows.values()]
      .filter((row) => !ctx.parked.has(row.key) && !ctx.inflight.has(row.key) && nextToSend(row) !== null)
      .sort((a, b) => a.ops[0]!.seq - b.ops[0]!.seq)
    // Oldest first. The dependency rule (the slice's dependsOn) is asked of the rows this batch
    // takes, not of the whole outbox: this loop runs once per batch.
    const candidates: OutboxRow[] = []
    for (const row of ready) {
      if (candidates.length === limit) break
      if (dependencyOf(ctx, row) !== 'wait') candidates.push(row)
    }
    if (candidates.length === 0) {
      // Before stopping, look at the stored outbox once: the memory copy follows each
      // transaction's effects in the order their continuations ran, which is not always the
      // order they committed in, so a row can be stored and missing here.
      if (rechecked || ctx.disposed) return
      rechecked = true
      await refreshRows(ctx)
      continue
    }
    let claimed: Claimed[]
    try {
      claimed = await claim(ctx, candidates)
    } catch (caught) {
      // A local storage failure before anything was sent: keep everything, try again later.
      if (ctx.disposed) return
      ctx.host.reportError(toSyncError(caught, 'preparing a push failed'))
      connection.retryLater(again)
      return
    }
    if (claimed.length === 0) continue
    const outcome = await pushBatch(ctx, connection, again, claimed)
    if (outcome === 'stop') return
    limit = outcome === 'split' ? Math.max(1, Math.ceil(claimed.length / 2)) : ctx.options.batchSize
    if (outcome === 'ok') {
      onBatch?.(claimed.length)
      ctx.pushProgress?.(claimed.length)
    }
  }
}

/**
 * The dependency rule (`dependsOn`): a change waits while an item it refers to waits for its
 * create to be acknowledged (`'wait'`), and is refused with that create when the create was
 * rejected for good (the rejected key); `null` when nothing holds it.
 */
export function dependencyOf(ctx: EngineContext, row: OutboxRow): 'wait' | string | null {
  const slice = sliceByName(ctx, row.slice)
  const latest = row.ops[row.ops.length - 1]
  if (!slice?.dependsOn || !latest || latest.type !== 'put') return null
  let refs: ItemRef[]
  try {
    refs = [...slice.dependsOn(latest.value)]
  } catch (caught) {
    ctx.host.reportError(toSyncError(caught, `dependsOn of slice "${slice.name}" threw`))
    return null
  }
  for (const ref of refs) {
    const key = itemKey(ref.slice, ref.id)
    if (key === row.key) continue
    const pending = ctx.rows.get(key)
    if (pending && createsItem(pending)) return 'wait'
    if (!pending)
      for (const dead of ctx.deadLetters.values())
        if (dead.row.key === key && dead.confirmed && isConfirmedDeleted(dead.confirmed) && dead.confirmed.version === null) return key
  }
  return null
}

/**
 * Marks each candidate's first op as sent before it goes out: those not marked at write are read
 * in one transaction and marked there. A change that refers to a rejected create is
 * dead-lettered instead (the dependency rule).
 */
async function claim(ctx: EngineContext, candidates: readonly OutboxRow[]): Promise<Claimed[]> {
  // Ops marked sent by the transaction that wrote them are claimed already (see
  // `claimedAtWrite`): they go as the row in memory holds them, without reading it again.
  const atWrite: Claimed[] = []
  const rest: OutboxRow[] = []
  for (const row of candidates) {
    const marked = ctx.claimedAtWrite.get(row.key)
    ctx.claimedAtWrite.delete(row.key)
    if (marked && row.ops[0] === marked) atWrite.push({ row, op: marked })
    else rest.push(row)
  }
  return rest.length === 0 ? atWrite : [...atWrite, ...(await claimStored(ctx, rest))].sort((a, b) => a.op.seq - b.op.seq)
}

async function claimStored(ctx: EngineContext, candidates: readonly OutboxRow[]): Promise<Claimed[]> {
  const effects = newEffects()
  const attempt = randomId()
  const claimed = await transact(ctx, async (tx) => {
    const found: Claimed[] = []
    const rows = await Promise.all(candidates.map((c) => readRow(tx, c.key)))
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i]
      const key = candidates[i]!.key
      if (!row) {
        effects.rows.set(key, null)
        continue
      }
      const op = nextToSend(row)
      if (!op) {
        effects.rows.set(key, row)
        continue
      }
      const dead = op.sent ? null : dependencyOf(ctx, row)
      if (dead !== null && dead !== 'wait') {
        const message = `${dead} was rejected by the server, and this change refers to it`
        await bury(ctx, tx, effects, row, op, { status: null, code: 'dependency_rejected', message }, 'dependency', dead)
        continue
      }
      const marked = markedSent(row, attempt)
      writeRow(tx, effects, key, marked)
      found.push({ row: marked, op: marked.ops[0]! })
    }
    return found
  })
  applyEffects(ctx, effects)
  return claimed
}

async function pushBatch(ctx: EngineContext, connection: Connection, again: () => void, batch: readonly Claimed[]): Promise<Outcome> {
  for (const { row } of batch) ctx.inflight.add(row.key)
  try {
    const ops = batch.map(({ row, op }) => toRemote(ctx, row, op))
    let response
    const started = Date.now()
    try {
      response = await ctx.client.push(ctx.options.clientId, ops, {
        compress: ctx.serverProtocol >= 3,
        // Not a failure of this push (it went through plain): said once, through onError.
        onCompressionRefused: (warning) => {
          if (!ctx.disposed) ctx.host.reportError(warning)
        },
      })
    } catch (caught) {
      const error = toSyncError(caught, 'push failed')
      reportOperation(ctx, 'push', batch.length, started, error)
      return await pushFailed(ctx, connection, again, error, batch)
    }
    reportOperation(ctx, 'push', batch.length, started, null)
    ctx.failures = 0
    if (!ctx.connected) connection.set(true)
    const effects = newEffects()
    await transact(ctx, async (tx) => {
      for (let i = 0; i < batch.length; i++) {
        const { row: sentRow, op } = batch[i]!
        const result = response.results[i]!
        const row = await readRow(tx, sentRow.key)
        if (result.status === 'applied' || result.status === 'duplicate') {
          if (row) writeRow(tx, effects, row.key, adoptMerged(ctx, tx, effects, row, op, result.record))
          writeVersion(tx, sentRow.key, result.record.version)
          // A replay's answer is its stored result: the key may have changed since, and pulls
          // skipped it while this op's answer was unknown. Read the feed again from there.
          if (result.status === 'duplicate') await cursorBackTo(tx, effects, result.record.seq)
        } else if (!row || !latestAttempt(row, op)) {
          // Another tab sent this op since, or settled it: its answer decides.
        } else if (result.status === 'rejected') {
          await bury(ctx, tx, effects, row, op, { status: null, code: result.error.error, message: result.error.message })
        } else if (result.status === 'conflict') {
          await conflicted(ctx, tx, effects, row, result.current)
        }
      }
    })
    applyEffects(ctx, effects)
    return 'ok'
  } catch (caught) {
    // A local storage failure: keep everything and try again later.
    if (ctx.disposed) return 'stop'
    ctx.host.reportError(toSyncError(caught, 'storing push results failed'))
    connection.retryLater(again)
    return 'stop'
  } finally {
    for (const { row } of batch) ctx.inflight.delete(row.key)
  }
}

/** A conflict answer for the row's first op. A server version written by one of our own ops is its lost acknowledgement. */
async function conflicted(ctx: EngineContext, tx: StoreTransaction, effects: Effects, row: OutboxRow, current: RemoteRecord | null): Promise<void> {
  if (current && isOwn(row, current.opId)) {
    writeRow(tx, effects, row.key, acknowledged(row, current.opId!, current))
    writeVersion(tx, row.key, current.version)
    effects.pushAgain = true
    return
  }
  const slice = sliceByName(ctx, row.slice)
  if (!slice) return
  await decideConflict(ctx, tx, effects, slice, row.id, row, current, 'push')
}

async function pushFailed(ctx: EngineContext, connection: Connection, again: () => void, error: SyncError, batch: readonly Claimed[]): Promise<Outcome> {
  if (ctx.disposed) return 'stop'
  if (isHttpError(error) && !error.retryable && !isAuthError(error) && error.status !== 409 && error.status !== 404) {
    // Permanent for this request. Split the batch to find the one operation the server refuses;
    // only that one goes to the dead-letter list.
    if (batch.length > 1) return 'split'
    const { row, op } = batch[0]!
    const effects = newEffects()
    await transact(ctx, async (tx) => {
      const stored = await readRow(tx, row.key)
      if (stored && latestAttempt(stored, op))
        await bury(ctx, tx, effects, stored, op, {
          status: error.status,
          code: error.code ?? `http_${error.status}`,
          // The server's own words when it gave some: a user reads this.
          message: error.serverMessage ?? error.message,
        })
    })
    applyEffects(ctx, effects)
    return 'ok'
  }
  ctx.host.reportError(error)
  if (isAuthError(error) || isHttpError(error)) {
    // The server answers, but not with success: keep the outbox and try again with backoff.
    ctx.host.dispatch(syncActions.syncActivity({ phase: 'error', error: error.message }))
    connection.retryLater(again)
    return 'stop'
  }
  connection.set(false, error)
  return 'stop'
}

/** Replaces the memory copy of the outbox with what is stored (rows on the wire from here stay). */
async function refreshRows(ctx: EngineContext): Promise<void> {
  const stored = await ctx.host.storage().readAll(OUTBOX_STORE)
  const found = new Map<string, OutboxRow>()
  for (const [key, value] of stored) if (isRow(value) && value.ops.length > 0) found.set(String(key), value)
  let changed = false
  for (const key of [...ctx.rows.keys()]) {
    if (found.has(key) || ctx.inflight.has(key)) continue
    ctx.rows.delete(key)
    changed = true
  }
  for (const [key, row] of found) {
    if (ctx.rows.get(key) === row) continue
    if (!ctx.rows.has(key)) changed = true
    ctx.rows.set(key, row)
  }
  if (changed) publishOutbox(ctx)
}

/** The field patch an op is sent as, or `null` for a whole value (see `toRemote`). */
function patchOf(ctx: EngineContext, row: OutboxRow, op: OutboxOp): FieldPatch | null {
  if (op.type !== 'put' || ctx.serverProtocol < 3 || !sliceByName(ctx, row.slice)?.fieldMerge) return null
  const base = row.confirmed
  // The patch must be against the value the server holds as the op's base version, or the
  // server would apply it to something else than what the change was made on.
  if (!base || isConfirmedDeleted(base) || typeof op.baseVersion !== 'number' || base.version !== op.baseVersion) return null
  return fieldPatch(base.value, op.value)
}

/**
 * What JSON makes of a value on its way to the server (NaN and Infinity become null, undefined
 * fields vanish). A record holding that is the op's own value, not a merge: the local item keeps
 * what the app wrote.
 */
function asJson(value: unknown): unknown {
  try {
    return JSON.parse(JSON.stringify(value)) as unknown
  } catch {
    return value
  }
}

/**
 * The row after the server applied `op` as `record`. When the server merged the op with fields
 * another device changed (the record's value is not the op's), the record is what this key now
 * holds, and is written locally, unless a newer local change of the key is pending (staged
 * behind, or still in the write queue). That change was made on `op.value`, not on the merged
 * record: diffed against the record, it would undo the other device's fields. So its row keeps
 * `op.value` as the base to diff against (at the record's version); the server merges that
 * patch onto the record, and the answer to the last pending op brings the merged item home.
 */
function adoptMerged(ctx: EngineContext, tx: StoreTransaction, effects: Effects, row: OutboxRow, op: OutboxOp, record: RemoteRecord): OutboxRow | null {
  const left = acknowledged(row, op.opId, record)
  if (op.type !== 'put' || record.deleted || plainEqual(record.value, op.value) || plainEqual(record.value, asJson(op.value))) return left
  const slice = sliceByName(ctx, row.slice)
  if (!slice) return left
  if (left) return { ...left, confirmed: { value: op.value, version: record.version } }
  if (ctx.host.isQueued(row.key)) return left // its new row starts from the stored item, op.value
  const invalid = ctx.host.validate(slice.name, row.id, record.value)
  if (invalid) {
    // The merged item fails the slice's schema: it is not written; the local item stays.
    effects.errors.push(invalid)
    return left
  }
  writeItem(tx, effects, slice, row.id, record.value)
  return left
}
