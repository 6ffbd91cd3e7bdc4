import { DEAD_LETTER_STORE, META_STORE, OUTBOX_STORE } from '../storage/types'
import {
  CURSOR_KEY,
  followLocalChange,
  publishDeadLetters,
  publishOutbox,
  sliceByName,
  transact,
  type EngineContext,
  type StoredCursor,
  type StoredDeadLetter,
} from './engineContext'
import { fromLegacy, isLegacyEntry, isRow } from './outbox'
import { newEffects, readVersion, writeRow } from './effects'
import { applyEffects } from './serverChanges'

/**
 * Reads what the engine keeps in storage into memory: the outbox rows, the dead letters and the
 * pull cursor (with the server's epoch). Rows an older version stored are converted first.
 */
export async function loadOutbox(ctx: EngineContext): Promise<void> {
  const storage = ctx.host.storage()
  const [stored, dead, cursor] = await Promise.all([storage.readAll(OUTBOX_STORE), storage.readAll(DEAD_LETTER_STORE), storage.get(META_STORE, CURSOR_KEY)])
  ctx.rows.clear()
  const legacy = stored.filter(([, value]) => !isRow(value) && isLegacyEntry(value))
  if (legacy.length > 0) await convertLegacy(ctx, legacy.map(([, value]) => value).filter(isLegacyEntry))
  for (const [key, value] of stored) {
    if (!isRow(value) || value.ops.length === 0) continue
    ctx.rows.set(String(key), value)
    for (const op of value.ops) ctx.seq = Math.max(ctx.seq, op.seq)
  }
  // Another tab's edit of a key with an open conflict is what the app now decides about.
  for (const key of ctx.parked.keys()) followLocalChange(ctx, ctx.rows.get(key))
  ctx.deadLetters.clear()
  for (const [opId, value] of dead) {
    const letter = value as Partial<StoredDeadLetter> | undefined
    if (letter?.letter && letter.op) ctx.deadLetters.set(String(opId), letter as StoredDeadLetter)
  }
  const saved = cursor as StoredCursor | undefined
  if (saved && typeof saved.cursor === 'string') {
    ctx.cursor = saved
    if (typeof saved.epoch === 'string') ctx.epoch = saved.epoch
  }
  publishOutbox(ctx)
  if (ctx.deadLetters.size > 0) publishDeadLetters(ctx)
}

/** Entries an older version stored (without their values) become rows holding the local item. */
async function convertLegacy(ctx: EngineContext, entries: ReadonlyArray<Parameters<typeof fromLegacy>[0]>): Promise<void> {
  const effects = newEffects()
  await transact(ctx, async (tx) => {
    for (const entry of entries) {
      const slice = sliceByName(ctx, entry.slice)
      if (!slice) continue
      const [local, known] = await Promise.all([tx.get(slice.storeName, entry.id), readVersion(tx, entry.key)])
      writeRow(tx, effects, entry.key, fromLegacy(entry, local, known ?? null))
    }
  })
  applyEffects(ctx, effects)
}
