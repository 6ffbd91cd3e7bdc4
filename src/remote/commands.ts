import { DEAD_LETTER_STORE } from '../storage/types'
import type { SyncConflict } from '../core/conflicts'
import { publishItemStates, randomId, sliceByName, transact, type EngineContext, type StoredDeadLetter } from './engineContext'
import { confirmedFromLocal, latestOp, rebased, withLocalChange, withoutCovered, type Confirmed, type OutboxRow } from './outbox'
import { newEffects, readRow, readVersion, writeItem, writeRow, writeVersion } from './effects'
import { restore } from './rejection'
import { applyEffects, takeMerged, takeServer } from './serverChanges'
import { syncActions } from './redux/syncSlice'

/**
 * Settles a parked `manual` conflict, with every change of the key pending when it is settled
 * (the conflict's local side follows newer edits, see `followLocalChange`). `'server'` drops
 * them and writes the server's version; `'local'` pushes the newest on top of the server's
 * version; `'merged'` writes `value` locally and pushes it instead of them. A change committed
 * after the decision goes out on top of it. Under the lock.
 */
export async function resolveParked(ctx: EngineContext, key: string, resolution: 'local' | 'server' | 'merged', value: unknown): Promise<boolean> {
  const parked = ctx.parked.get(key)
  if (!parked) return false
  const slice = sliceByName(ctx, parked.conflict.slice)
  if (!slice) return false
  const { server } = parked
  const id = parked.conflict.id
  const base = server ? server.version : null
  const effects = newEffects()
  await transact(ctx, async (tx) => {
    const [row, known] = await Promise.all([readRow(tx, key), readVersion(tx, key)])
    const throughSeq = Math.max(parked.throughSeq, (row && latestOp(row)?.seq) ?? 0)
    // The server moved on since the conflict was parked (another tab pushed this key, or a pull
    // brought a newer version): the parked version is stale and must not be written back.
    const stale = known !== undefined && known > (base ?? 0)
    const current = stale ? known : base
    if (resolution === 'server') {
      if (!stale) takeServer(tx, effects, slice, id, row, throughSeq, server)
      else if (row) writeRow(tx, effects, key, withoutCovered(row, throughSeq, current))
    } else if (resolution === 'local') {
      if (row) writeRow(tx, effects, key, rebased(row, current))
      writeVersion(tx, key, current)
      effects.pushAgain = true
    } else {
      const target: OutboxRow = row ?? { format: 2, key, slice: slice.name, collection: slice.storeName, id, ops: [] }
      takeMerged(ctx, tx, effects, slice, id, target, throughSeq, current, value === undefined ? null : value)
    }
  })
  ctx.parked.delete(key)
  applyEffects(ctx, effects)
  publishItemStates(ctx)
  const settled: SyncConflict = { ...parked.conflict, resolution: resolution === 'local' ? 'client' : resolution }
  // Announced when it was parked; settling only updates what the sync slice shows.
  if (!ctx.silenced) ctx.host.dispatch(syncActions.conflictChanged(settled))
  return true
}

/** The dead letter's confirmed value if the server has not moved on since (else `undefined`). */
const stillConfirmed = (stored: StoredDeadLetter, known: number | undefined): Confirmed | undefined =>
  stored.confirmed && stored.confirmed.version === (known ?? null) ? stored.confirmed : undefined

/**
 * Puts a dead letter's op back into the outbox, based on what the server has now, unless a
 * newer local change of the key waits there already (it supersedes the rejected one). With
 * `edited`, a put of that value is sent instead (edit and resend). A rolled-back item shows the
 * value it sends again, in the store and the state. Under the lock.
 */
export async function retryDeadLetter(ctx: EngineContext, opId: string, edited?: { value: unknown }): Promise<boolean> {
  if (!ctx.deadLetters.has(opId)) return false
  const effects = newEffects()
  await transact(ctx, async (tx) => {
    const stored = (await tx.get(DEAD_LETTER_STORE, opId)) as StoredDeadLetter | undefined
    tx.delete(DEAD_LETTER_STORE, opId)
    effects.unburied.push(opId)
    if (!stored?.op || !stored.row) return
    const { key, slice, collection, id } = stored.row
    const row = await readRow(tx, key)
    if (row && row.ops.length > 0) return
    const target = sliceByName(ctx, slice)
    const known = await readVersion(tx, key)
    const type = edited ? (edited.value === undefined || edited.value === null ? 'delete' : 'put') : stored.op.type
    const value = edited ? edited.value : stored.op.value
    // What the server holds: the letter's copy, unless a pull replaced the item since.
    const confirmed = stillConfirmed(stored, known) ?? (target ? confirmedFromLocal(await tx.get(target.storeName, id), known ?? null) : undefined)
    const change = { key, slice, collection, id, type, value, clientTime: edited ? Math.round(ctx.options.now() + ctx.clockOffset) : stored.op.clientTime }
    writeRow(tx, effects, key, withLocalChange(undefined, change, known ?? null, randomId(), ++ctx.seq, confirmed))
    if (target && (stored.letter.rolledBack || edited)) writeItem(tx, effects, target, id, type === 'put' ? value : undefined)
    effects.pushAgain = true
  })
  applyEffects(ctx, effects)
  return true
}

/**
 * Forgets a dead letter for good. An item that kept the rejected value (`onReject: 'keep'`)
 * returns to its confirmed value, unless a newer change of it is pending or the server's value
 * changed since (a pull wrote it already). Under the lock.
 */
export async function discardDeadLetter(ctx: EngineContext, opId: string): Promise<void> {
  if (!ctx.deadLetters.has(opId)) return
  const effects = newEffects()
  await transact(ctx, async (tx) => {
    const stored = (await tx.get(DEAD_LETTER_STORE, opId)) as StoredDeadLetter | undefined
    tx.delete(DEAD_LETTER_STORE, opId)
    effects.unburied.push(opId)
    if (!stored?.op || !stored.row || stored.letter.rolledBack) return
    const { key, slice, id } = stored.row
    const target = sliceByName(ctx, slice)
    const [row, known] = await Promise.all([readRow(tx, key), readVersion(tx, key)])
    const confirmed = stillConfirmed(stored, known)
    if (!target || (row && row.ops.length > 0) || !confirmed) return
    restore(
      tx,
      effects,
      target,
      key,
      id,
      confirmed,
      { opId, type: stored.op.type, value: stored.op.value },
      { cause: 'discarded', status: stored.letter.status, code: stored.letter.code, message: stored.letter.message },
    )
  })
  applyEffects(ctx, effects)
}
