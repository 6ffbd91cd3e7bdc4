import { itemKey } from '../core/ids'
import { isHttpError, toSyncError } from '../errors'
import { VERSIONS_STORE } from '../storage/types'
import type { Connection } from './connection'
import { reportOperation, sliceByCollection, syncedSlices, transact, type EngineContext, type StoredCursor } from './engineContext'
import { isOwn, acknowledged, confirmedOf, rebased } from './outbox'
import type { ChangesResponse, PullResponse, RemoteRecord } from './http/protocol'
import { newEffects, readCursor, readRow, readVersion, writeCursor, writeItem, writeRow, writeVersion } from './effects'
import { applyEffects, receiveRecord } from './serverChanges'
import { syncActions } from './redux/syncSlice'

/** Thrown inside a pull when the server's answer shows it is another database than the one synced with. */
export class EpochChanged extends Error {
  constructor(readonly epoch: string | null) {
    super('the server database changed')
  }
}

export const collectionsOf = (ctx: EngineContext): string[] =>
  syncedSlices(ctx)
    .map((s) => s.storeName)
    .sort()

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
 * One page of the feed: over the real-time socket when it is open and the server offers pulls
 * there (one socket round trip instead of an HTTP request), else over HTTP. A socket that does
 * not answer (closed, timed out, a malformed answer, a server failure) leaves the page to HTTP;
 * a definite refusal (`410` and other 4xx) is the answer, as it would be over HTTP.
 */
async function changesPage(
  ctx: EngineContext,
  since: string,
  query: { readonly limit: number; readonly collections: readonly string[] },
): Promise<ChangesResponse> {
  const overSocket = ctx.changesOverSocket?.(since, query)
  if (overSocket) {
    try {
      return await overSocket
    } catch (caught) {
      if (isHttpError(caught) && caught.status < 500) throw caught
    }
  }
  return ctx.client.changes(since, { ...query, post: ctx.serverProtocol >= 4 })
}

/**
 * Pulls what changed since the stored cursor, page by page. Each page and the cursor it reached
 * are committed in one transaction that also reads every key's outbox row, so the cursor never
 * runs ahead of its data and no pending local change is overwritten. Runs under the lock.
 */
export async function pullChanges(ctx: EngineContext, connection: Connection): Promise<void> {
  const wanted = collectionsOf(ctx)
  // A new synced collection was never pulled: start from the beginning.
  const since = ctx.cursor && ctx.cursor.collections.join(',') === wanted.join(',') ? ctx.cursor.cursor : '0'
  const fill = since === '0' && ctx.cursor === null ? await pullRecentFirst(ctx, connection) : null
  try {
    await followFeed(ctx, connection, wanted, since, fill)
  } finally {
    if (fill) ctx.host.dispatch(syncActions.progressChanged(null))
  }
}

interface Fill {
  readonly collections: ReadonlySet<string>
  readonly total: number
  done: number
}

/**
 * A new device's first pull, for slices with `initialPull`: their most recent items, applied
 * at once (through the same per-key rule as every pulled record) so the app shows them, while
 * the cursor stays where it is. The feed is then read from the beginning as usual; the records
 * already applied are skipped there (their versions are known), so the cursor still advances
 * only with the feed and never covers an item it did not bring.
 */
async function pullRecentFirst(ctx: EngineContext, connection: Connection): Promise<Fill | null> {
  const slices = syncedSlices(ctx).filter((s) => s.initialPull !== undefined)
  if (slices.length === 0 || ctx.serverProtocol < 3) return null
  let total = 0
  for (const slice of slices) {
    const recent = await request(
      ctx,
      connection,
      (p) => p.items.length,
      () => ctx.client.pull([slice.storeName], { limit: slice.initialPull! }),
    )
    if (isNewEpoch(ctx, recent.epoch)) throw new EpochChanged(recent.epoch ?? null)
    total += recent.total ?? recent.items.length
    const effects = newEffects()
    await transact(ctx, async (tx) => {
      for (const record of recent.items) await receiveRecord(ctx, tx, effects, record)
    })
    applyEffects(ctx, effects)
  }
  const fill: Fill = { collections: new Set(slices.map((s) => s.storeName)), total, done: 0 }
  ctx.host.dispatch(syncActions.progressChanged({ operation: 'pull', done: 0, total }))
  return fill
}

async function followFeed(ctx: EngineContext, connection: Connection, wanted: string[], start: string, fill: Fill | null): Promise<void> {
  let since = start
  for (;;) {
    const from = since
    const page = await request(
      ctx,
      connection,
      (p) => p.changes.length,
      () => changesPage(ctx, from, { limit: ctx.options.pullPageSize, collections: wanted }),
    )
    if (isNewEpoch(ctx, page.epoch)) throw new EpochChanged(page.epoch ?? null)
    const effects = newEffects()
    await transact(ctx, async (tx) => {
      const stored = readCursor(tx)
      for (const record of page.changes) await receiveRecord(ctx, tx, effects, record)
      await writeCursor(tx, effects, from, cursorFor(ctx, page.cursor, page.epoch), stored)
    })
    if (page.epoch !== undefined) ctx.epoch = page.epoch
    applyEffects(ctx, effects)
    if (fill) {
      fill.done = Math.min(fill.total, fill.done + page.changes.filter((r) => !r.deleted && fill.collections.has(r.collection)).length)
      ctx.host.dispatch(syncActions.progressChanged({ operation: 'pull', done: fill.done, total: fill.total }))
    }
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
  const full =
    fetched ??
    (await request(
      ctx,
      connection,
      (p) => p.items.length,
      () => ctx.client.pull(wanted),
    ))
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
    if (slice) listed.add(itemKey(slice.name, ctx.host.localId(slice.name, record.id, record.value)))
  }
  for (const slice of syncedSlices(ctx)) {
    for (const [id] of ctx.host.localEntries(slice.name)) {
      const key = itemKey(slice.name, id)
      if (listed.has(key) || ctx.host.isQueued(key)) continue
      const [known, row] = await Promise.all([readVersion(tx, key), readRow(tx, key)])
      if (known === undefined || row) continue
      writeVersion(tx, key, undefined)
      writeItem(tx, effects, slice, id, undefined)
    }
  }
}

/**
 * The server is another database than the one this client synced with (wiped, replaced, or
 * restored from a backup): every known version and the cursor are void. Everything is pulled
 * again and the server's data is taken as the truth, except for changes still pending here:
 * those stay, based on the server's version now, and are pushed again (their opIds keep them
 * idempotent). An item this client synced before that the server no longer has is deleted
 * locally, as a full pull would; one it never synced stays for a bulk push.
 */
export async function resync(ctx: EngineContext, connection: Connection): Promise<void> {
  const wanted = collectionsOf(ctx)
  const full = await request(
    ctx,
    connection,
    (p) => p.items.length,
    () => ctx.client.pull(wanted),
  )
  const before = new Set<string>()
  for (const [key, version] of await ctx.host.storage().readAll(VERSIONS_STORE)) if (typeof version === 'number') before.add(String(key))
  const effects = newEffects()
  const epoch = full.epoch ?? null
  await transact(ctx, async (tx) => {
    for (const key of before) tx.delete(VERSIONS_STORE, key)
    const listed = new Set<string>()
    for (const record of full.items) {
      const slice = sliceByCollection(ctx, record.collection)
      if (!slice) continue
      const id = ctx.host.localId(slice.name, record.id, record.value)
      const key = itemKey(slice.name, id)
      listed.add(key)
      tx.put(VERSIONS_STORE, key, record.version)
      const row = await readRow(tx, key)
      // Another database: its record is the confirmed value, whatever the old versions said.
      if (row && isOwn(row, record.opId)) {
        const left = acknowledged(row, record.opId!, record)
        writeRow(tx, effects, key, left && { ...left, confirmed: confirmedOf(record) })
      } else if (row) writeRow(tx, effects, key, { ...rebased(row, record.version), confirmed: confirmedOf(record) })
      else if (!ctx.host.isQueued(key)) writeItem(tx, effects, slice, id, record.value)
    }
    for (const slice of syncedSlices(ctx)) {
      for (const [id] of ctx.host.localEntries(slice.name)) {
        const key = itemKey(slice.name, id)
        if (listed.has(key) || ctx.host.isQueued(key)) continue
        const row = await readRow(tx, key)
        if (row) writeRow(tx, effects, key, { ...rebased(row, null), confirmed: confirmedOf(null) })
        else if (before.has(key)) writeItem(tx, effects, slice, id, undefined)
      }
    }
    await writeCursor(tx, effects, '0', { cursor: full.cursor, collections: wanted, epoch: epoch ?? undefined })
  })
  ctx.epoch = epoch
  applyEffects(ctx, effects)
  ctx.host.reportError(
    toSyncError(
      new Error(
        'the server is another database than the one this client synced with (wiped, replaced or restored); everything was pulled again and pending changes are pushed again',
      ),
      'resync',
    ),
  )
}
