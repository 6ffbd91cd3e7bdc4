import { DEAD_LETTER_STORE } from '../storage/types'
import type { SyncConflict } from '../core/conflicts'
import { randomId, sliceByName, transact, type EngineContext, type StoredDeadLetter } from './engineContext'
import { rebased, withLocalChange, withoutCovered, type OutboxRow } from './outbox'
import { newEffects, readRow, readVersion, writeRow, writeVersion } from './effects'
import { applyEffects, takeMerged, takeServer } from './serverChanges'
import { syncActions } from './redux/syncSlice'

/**
 * Settles a parked `manual` conflict. `'server'` drops the ops the conflict saw and writes the
 * server's version (a change made since stays, based on it); `'local'` pushes the local side
 * on top of the server's version; `'merged'` writes `value` locally and pushes it. Under the lock.
 */
export async function resolveParked(ctx: EngineContext, key: string, resolution: 'local' | 'server' | 'merged', value: unknown): Promise<boolean> {
  const parked = ctx.parked.get(key)
  if (!parked) return false
  const slice = sliceByName(ctx, parked.conflict.slice)
  if (!slice) return false
  const { server, throughSeq } = parked
  const id = parked.conflict.id
  const base = server ? server.version : null
  const effects = newEffects()
  await transact(ctx, async (tx) => {
    const [row, known] = await Promise.all([readRow(tx, key), readVersion(tx, key)])
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
  const settled: SyncConflict = { ...parked.conflict, resolution: resolution === 'local' ? 'client' : resolution }
  // Announced when it was parked; settling only updates what the sync slice shows.
  if (!ctx.silenced) ctx.host.dispatch(syncActions.conflictChanged(settled))
  return true
}

/**
 * Puts a dead letter's op back into the outbox, based on what the server has now, unless a
 * newer local change of the key waits there already (it supersedes the rejected one). Under the lock.
 */
export async function retryDeadLetter(ctx: EngineContext, opId: string): Promise<boolean> {
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
    const known = await readVersion(tx, key)
    const change = { key, slice, collection, id, type: stored.op.type, value: stored.op.value, clientTime: stored.op.clientTime }
    writeRow(tx, effects, key, withLocalChange(undefined, change, known ?? null, randomId(), ++ctx.seq))
    effects.pushAgain = true
  })
  applyEffects(ctx, effects)
  return true
}

/** Forgets a dead letter for good. Under the lock. */
export async function discardDeadLetter(ctx: EngineContext, opId: string): Promise<void> {
  if (!ctx.deadLetters.has(opId)) return
  const effects = newEffects()
  await transact(ctx, async (tx) => {
    tx.delete(DEAD_LETTER_STORE, opId)
    effects.unburied.push(opId)
  })
  applyEffects(ctx, effects)
}
