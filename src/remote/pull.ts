import { isHttpError, toSyncError } from '../errors'
import { VERSIONS_STORE, type ItemId } from '../storage/types'
import type { Connection } from './connection'
import { keyOf, randomId, reportOperation, sliceByCollection, syncedSlices, transact, type EngineContext, type StoredCursor } from './engineContext'
import { isOwn, acknowledged, rebased, withLocalChange } from './outbox'
import type { PullResponse, RemoteRecord } from './protocol'
import { applyEffects, newEffects, readRow, readVersion, receiveRecord, writeCursor, writeItem, writeRow, writeVersion } from './serverChanges'
import { syncActions } from './syncSlice'

/** Thrown inside a pull when the server's answer shows it is another database than the one synced with. */
export class EpochChanged extends Error {
  constructor(readonly epoch: string | null) {
    super('the server database changed')
  }
}

export const collectionsOf = (ctx: EngineContext): string[] => syncedSlices(ctx).map((s) => s.storeName).sort()

/** Whether an answer's epoch is another server database than the one this client synced with. */
export function isNewEpoch(ctx: EngineContext, epoch: string | undefined): boolean {
  return epoch !== undefined && ctx.epoch !== null && epoch !== ctx.epoch
}

const cursorFor = (ctx: EngineContext, cursor: string, epoch: string | undefined): StoredCursor => ({
  cursor,
  collections: collectionsOf(ctx),
  epoch: epoch ?? ctx.epoch ?? undefined,
})

async function request<T>(ctx: EngineContext, connection: Connection, items: (answer: T) => number, send: () => Promise<T>): Promise<T> {
  const started = Date.now()
  let answer: T
  try {
    answer = await send()
  } catch (caught) {
    const error = toSyncError(caught, 'pull failed')
    reportOperation(ctx, 'pull', 0, started, error)
    // A cursor ahead of the feed: the server lost what this client saw (restored from a backup).
    if (isHttpError(caught) && caught.status === 410) throw new EpochChanged(null)
    throw caught
  }
  reportOperation(ctx, 'pull', items(answer), started, null)
  if (!ctx.connected) connection.set(true)
  return answer
}

/**
 * Pulls what changed since the stored cursor, page by page. Each page and the cursor it reached
 * are committed in one transaction that also reads every key's outbox row, so the cursor never
 * runs ahead of its data and no pending local change is overwritten. Runs under the lock.
 */
export async function pullChanges(ctx: EngineContext, connection: Connection): Promise<void> {
  const wanted = collectionsOf(ctx)
  // A new synced collection was never pulled: start from the beginning.
  let since = ctx.cursor && ctx.cursor.collections.join(',') === wanted.join(',') ? ctx.cursor.cursor : '0'
  for (;;) {
    const from = since
    const page = await request(ctx, connection, (p) => p.changes.length, () => ctx.client.changes(from, { limit: ctx.options.pullPageSize, collections: wanted }))
    if (isNewEpoch(ctx, page.epoch)) throw new EpochChanged(page.epoch ?? null)
    const effects = newEffects()
    await transact(ctx, async (tx) => {
      for (const record of page.changes) await receiveRecord(ctx, tx, effects, record)
      await writeCursor(tx, effects, from, cursorFor(ctx, page.cursor, page.epoch))
    })
    if (page.epoch !== undefined) ctx.epoch = page.epoch
    applyEffects(ctx, effects)
    since = page.cursor
    if (!page.hasMore) break
  }
}

/**
 * Pulls every live item. Server records go through the same per-key rule as incremental pulls;
 * afterwards, items this client synced before that the server no longer lists are deleted
 * locally (unless a local change of them waits). Runs under the lock.
 */
export async function pullEverything(ctx: EngineContext, connection: Connection, fetched?: PullResponse): Promise<void> {
  const wanted = collectionsOf(ctx)
  const full = fetched ?? (await request(ctx, connection, (p) => p.items.length, () => ctx.client.pull(wanted)))
  if (isNewEpoch(ctx, full.epoch)) throw new EpochChanged(full.epoch ?? null)
  const total = full.items.length
  ctx.host.dispatch(syncActions.progressChanged({ operation: 'pull', done: 0, total }))
  const chunk = 500
  for (let done = 0; done < total || done === 0; done += chunk) {
    const part = full.items.slice(done, done + chunk)
    const last = done + chunk >= total
    const effects = newEffects()
    await transact(ctx, async (tx) => {
      for (const record of part) await receiveRecord(ctx, tx, effects, record)
      if (!last) return
      await deleteUnlisted(ctx, tx, effects, full.items)
      await writeCursor(tx, effects, ctx.cursor?.cursor ?? '0', cursorFor(ctx, full.cursor, full.epoch))
    })
    if (last && full.epoch !== undefined) ctx.epoch = full.epoch
    applyEffects(ctx, effects)
    ctx.host.dispatch(syncActions.progressChanged({ operation: 'pull', done: Math.min(total, done + chunk), total }))
    if (last) break
  }
}

type Tx = Parameters<Parameters<typeof transact>[1]>[0]

/** The full pull's deletion pass: synced items (a known version) the server no longer has, with no pending change. */
async function deleteUnlisted(ctx: EngineContext, tx: Tx, effects: ReturnType<typeof newEffects>, everything: readonly RemoteRecord[]): Promise<void> {
  const listed = new Set<string>()
  for (const record of everything) {
    const slice = sliceByCollection(ctx, record.collection)
    if (slice) listed.add(keyOf(slice.name, ctx.host.localId(slice.name, record.id, record.value)))
  }
  for (const slice of syncedSlices(ctx)) {
    for (const [id] of ctx.host.localEntries(slice.name)) {
      const key = keyOf(slice.name, id)
      if (listed.has(key) || ctx.host.isQueued(key)) continue
      const [known, row] = await Promise.all([readVersion(tx, key), readRow(tx, key)])
      if (known === undefined || row) continue
      writeVersion(tx, key, undefined)
      writeItem(tx, effects, slice, id, undefined)
    }
  }
}

/**
 * The server is another database than the one this client synced with (restored from a
 * backup, or replaced): every known version and the cursor are void. Pulls everything, and:
 * - a key with pending ops keeps them, based on the server's version now (they are pushed
 *   again; their opIds keep them idempotent);
 * - an item this client knew at a higher version than the server now has, or that the server
 *   lacks, is pushed again (the server lost it);
 * - everything else takes the server's version.
 */
export async function resync(ctx: EngineContext, connection: Connection): Promise<void> {
  const wanted = collectionsOf(ctx)
  const full = await request(ctx, connection, (p) => p.items.length, () => ctx.client.pull(wanted))
  const before = new Map<string, number>()
  for (const [key, version] of await ctx.host.storage().readAll(VERSIONS_STORE)) if (typeof version === 'number') before.set(String(key), version)
  const effects = newEffects()
  const epoch = full.epoch ?? null
  await transact(ctx, async (tx) => {
    for (const key of before.keys()) tx.delete(VERSIONS_STORE, key)
    const listed = new Set<string>()
    for (const record of full.items) {
      const slice = sliceByCollection(ctx, record.collection)
      if (!slice) continue
      const id = ctx.host.localId(slice.name, record.id, record.value)
      const key = keyOf(slice.name, id)
      listed.add(key)
      tx.put(VERSIONS_STORE, key, record.version)
      const row = await readRow(tx, key)
      if (row && isOwn(row, record.opId)) writeRow(tx, effects, key, acknowledged(row, record.opId!, record.version))
      else if (row) writeRow(tx, effects, key, rebased(row, record.version))
      else if (ctx.host.isQueued(key)) continue
      else if ((before.get(key) ?? -1) > record.version) {
        const local = await tx.get(slice.storeName, id)
        if (local !== undefined) requeue(ctx, tx, effects, slice.name, slice.storeName, id, local, record.version)
      } else writeItem(tx, effects, slice, id, record.value)
    }
    for (const slice of syncedSlices(ctx)) {
      for (const [id, item] of ctx.host.localEntries(slice.name)) {
        const key = keyOf(slice.name, id)
        if (listed.has(key) || ctx.host.isQueued(key)) continue
        const row = await readRow(tx, key)
        if (row) writeRow(tx, effects, key, rebased(row, null))
        else requeue(ctx, tx, effects, slice.name, slice.storeName, id, item, null)
      }
    }
    await writeCursor(tx, effects, '0', { cursor: full.cursor, collections: wanted, epoch: epoch ?? undefined })
  })
  ctx.epoch = epoch
  applyEffects(ctx, effects)
  ctx.host.reportError(toSyncError(new Error('the server is a different database than the one this client synced with (restored or replaced); everything was pulled again and local data the server lacks is pushed again'), 'resync'))
}

function requeue(ctx: EngineContext, tx: Tx, effects: ReturnType<typeof newEffects>, slice: string, collection: string, id: ItemId, value: unknown, base: number | null): void {
  const key = keyOf(slice, id)
  const row = withLocalChange(undefined, { key, slice, collection, id, type: 'put', value, clientTime: Math.round(ctx.options.now() + ctx.clockOffset) }, base, randomId(), ++ctx.seq)
  writeRow(tx, effects, key, row)
}
