import type { RolledBackPayload } from '../core/actions'
import type { SyncConflict } from '../core/conflicts'
import type { SyncError } from '../errors'
import { META_STORE, OUTBOX_STORE, VERSIONS_STORE, type ItemId, type StoreTransaction } from '../storage/types'
import { CURSOR_KEY, type HostSlice, type ParkedConflict, type StoredCursor, type StoredDeadLetter } from './engineContext'
import { isRow, type OutboxRow } from './outbox'

/**
 * What one transaction decided, applied to memory, the Redux state and the app only after it
 * committed: if the commit fails, none of it happened.
 */
export interface Effects {
  /** Server data for the Redux state, by slice. */
  readonly state: Map<string, { puts: Array<[ItemId, unknown]>; deletes: ItemId[] }>
  /** The outbox rows as the transaction left them (`null`: gone). */
  readonly rows: Map<string, OutboxRow | null>
  /** Conflicts decided now: shown in the sync slice and announced once. */
  readonly decided: SyncConflict[]
  /** `manual` conflicts to park (announced once, when parked). */
  readonly parked: Array<[string, ParkedConflict]>
  readonly buried: StoredDeadLetter[]
  readonly unburied: string[]
  readonly errors: SyncError[]
  /** Items returned to their confirmed value: announced with `rolledBack` after the commit. */
  readonly rolledBack: RolledBackPayload[]
  cursor: StoredCursor | null
  /** Something new waits to be pushed. */
  pushAgain: boolean
}

export const newEffects = (): Effects => ({
  state: new Map(),
  rows: new Map(),
  decided: [],
  parked: [],
  buried: [],
  unburied: [],
  errors: [],
  rolledBack: [],
  cursor: null,
  pushAgain: false,
})

const stateOf = (effects: Effects, slice: string): { puts: Array<[ItemId, unknown]>; deletes: ItemId[] } => {
  let group = effects.state.get(slice)
  if (!group) effects.state.set(slice, (group = { puts: [], deletes: [] }))
  return group
}

/** Writes the row (or its removal) and remembers it for the mirror. */
export function writeRow(tx: StoreTransaction, effects: Effects, key: string, row: OutboxRow | null): void {
  if (row) tx.put(OUTBOX_STORE, key, row)
  else tx.delete(OUTBOX_STORE, key)
  effects.rows.set(key, row)
}

export function writeVersion(tx: StoreTransaction, key: string, version: number | null | undefined): void {
  if (typeof version === 'number') tx.put(VERSIONS_STORE, key, version)
  else tx.delete(VERSIONS_STORE, key)
}

/** Writes server data into the slice's store, and into the Redux state after the commit. */
export function writeItem(tx: StoreTransaction, effects: Effects, slice: HostSlice, id: ItemId, value: unknown): void {
  const group = stateOf(effects, slice.name)
  if (value === undefined || value === null) {
    tx.delete(slice.storeName, id)
    group.deletes.push(id)
  } else {
    tx.put(slice.storeName, id, value)
    group.puts.push([id, value])
  }
}

export async function readRow(tx: StoreTransaction, key: string): Promise<OutboxRow | undefined> {
  const stored = await tx.get(OUTBOX_STORE, key)
  return isRow(stored) ? stored : undefined
}

export async function readVersion(tx: StoreTransaction, key: string): Promise<number | undefined> {
  const stored = await tx.get(VERSIONS_STORE, key)
  return typeof stored === 'number' ? stored : undefined
}
/**
 * Writes the cursor a pull reached. Another tab may have moved the stored cursor back (a lost
 * answer found after the fact): then it stays there, so what lies after it is pulled again.
 */
export async function writeCursor(tx: StoreTransaction, effects: Effects, from: string, next: StoredCursor, read?: Promise<unknown>): Promise<void> {
  const stored = (await (read ?? tx.get(META_STORE, CURSOR_KEY))) as StoredCursor | undefined
  if (stored && typeof stored.cursor === 'string' && stored.epoch === next.epoch && Number(stored.cursor) < Number(from)) {
    effects.cursor = stored
    return
  }
  tx.put(META_STORE, CURSOR_KEY, next)
  effects.cursor = next
}

/** Starts reading the stored cursor for {@link writeCursor} (with the other reads of a transaction: one round trip less). */
export function readCursor(tx: StoreTransaction): Promise<unknown> {
  const read = tx.get(META_STORE, CURSOR_KEY)
  read.catch(() => undefined) // an aborted transaction rejects it; whoever awaits it hears why
  return read
}

/** Moves the stored cursor back to just before `seq`, so the next pull returns what follows it. */
export async function cursorBackTo(tx: StoreTransaction, effects: Effects, seq: number): Promise<void> {
  const stored = (await tx.get(META_STORE, CURSOR_KEY)) as StoredCursor | undefined
  if (!stored || typeof stored.cursor !== 'string' || !(Number(stored.cursor) > seq)) return
  const back: StoredCursor = { ...stored, cursor: String(seq) }
  tx.put(META_STORE, CURSOR_KEY, back)
  effects.cursor = back
}
