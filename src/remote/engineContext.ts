import { DisposedError, toSyncError, type SyncError } from '../errors'
import type { HostSlice, SyncHost } from '../core/ports'
import { DEAD_LETTER_STORE, META_STORE, OUTBOX_STORE, VERSIONS_STORE, type ItemId, type StoreTransaction } from '../storage/types'
import type { ApiClient } from './http/client'
import type { SyncConflict } from '../core/conflicts'

export type { HostSlice, SyncHost }
import type { EngineOptions } from './options'
import { latestOp, type Confirmed, type OutboxOp, type OutboxRow } from './outbox'
import type { ChangesResponse, RemoteRecord } from './http/protocol'
import { syncActions, type DeadLetter, type ItemStateChange, type ItemSyncState } from './redux/syncSlice'

/** A `manual` conflict waiting for the app; its key is not pushed meanwhile. */
export interface ParkedConflict {
  conflict: SyncConflict
  server: RemoteRecord | null
  /** The newest op the conflict covers (it follows newer local edits): a decision for the server drops it and older ones. */
  throughSeq: number
}

export interface StoredDeadLetter {
  readonly row: { readonly key: string; readonly slice: string; readonly collection: string; readonly id: ItemId }
  readonly op: OutboxOp
  readonly letter: DeadLetter
  /** The key's confirmed value when the op was refused (absent: unknown, a row of an older version). */
  readonly confirmed?: Confirmed
}

/** The pull cursor, the collections it covers and the server database (epoch) it belongs to. */
export interface StoredCursor {
  readonly cursor: string
  readonly collections: readonly string[]
  readonly epoch?: string | undefined
}

export const CURSOR_KEY = '__cursor'

/** The engine's shared state. Memory mirrors change only after the transaction storing them committed. */
export interface EngineContext {
  readonly host: SyncHost
  readonly options: EngineOptions
  readonly client: ApiClient
  /**
   * An incremental pull over the real-time socket (see `RealtimeChannel.changes`), or `null`
   * without a channel; it answers `null` itself while the socket cannot take one.
   */
  changesOverSocket: ((since: string, query: { readonly limit?: number; readonly collections?: readonly string[] }) => Promise<ChangesResponse> | null) | null
  /** The outbox, by key, as this instance last read or wrote it (other tabs may have changed it). */
  readonly rows: Map<string, OutboxRow>
  readonly parked: Map<string, ParkedConflict>
  readonly deadLetters: Map<string, StoredDeadLetter>
  /** Keys whose first op is on the wire from this instance. */
  readonly inflight: Set<string>
  /**
   * Ops this instance marked sent in the transaction that wrote them (a push follows at once),
   * by key: the push takes them as claimed without a transaction of its own.
   */
  readonly claimedAtWrite: Map<string, OutboxOp>
  cursor: StoredCursor | null
  /** The server database this client last synced with; a new one means a resync. */
  epoch: string | null
  connected: boolean
  /** Set by dispose(): nothing new starts and no transaction commits any more. */
  disposed: boolean
  /**
   * Set once dispose() has let the work under way finish: from then on nothing is reported or
   * dispatched. (A transaction that committed before dispose() still announces what it decided.)
   */
  silenced: boolean
  /** How far the server's clock is ahead of this device's (ms). */
  clockOffset: number
  /** The protocol version the server's last health answer named (0: not known yet). Patches and gzip bodies need 3. */
  serverProtocol: number
  /** Consecutive failures, for backoff. */
  failures: number
  seq: number
  /** Aborted by dispose(): every request of this engine carries its signal. */
  readonly abort: AbortController
  /** Set while a bulk push reports progress. */
  pushProgress: ((count: number) => void) | null
  /** The item states last dispatched to the sync slice (only items that are not synced). */
  readonly published: Map<string, PublishedState>
  /** What changed in `rows`, `parked` and `deadLetters` since the item states were last published. */
  readonly touched: Touched
}

/**
 * The item keys whose sync state may have changed since `publishItemStates` last ran, as the
 * maps it derives from (`rows`, `parked`, `deadLetters`) note them on every change; publishing
 * looks at those keys only, so it costs O(keys changed), not O(outbox), per commit.
 */
interface Touched {
  readonly keys: Set<string>
  /** A map was cleared: every key is looked at again. */
  all: boolean
  /** The dead letters per item key (a key may have several). */
  readonly rejected: Map<string, { readonly slice: string; count: number }>
}

/** A map that reports each change of an entry to `note` (its values are never `undefined`), and a clear to `cleared`. */
class NotingMap<K, V> extends Map<K, V> {
  constructor(
    private readonly note: (key: K, removed: V | undefined, added: V | undefined) => void,
    private readonly cleared: () => void,
  ) {
    super()
  }
  override set(key: K, value: V): this {
    this.note(key, super.get(key), value)
    return super.set(key, value)
  }
  override delete(key: K): boolean {
    this.note(key, super.get(key), undefined)
    return super.delete(key)
  }
  override clear(): void {
    this.cleared()
    super.clear()
  }
}

/** The maps item states derive from, each noting the keys it changes in `touched`. */
export function itemStateMaps(): Pick<EngineContext, 'rows' | 'parked' | 'deadLetters' | 'touched'> {
  const touched: Touched = { keys: new Set(), all: false, rejected: new Map() }
  const noteKey = (key: string): void => void touched.keys.add(key)
  const all = (): void => void (touched.all = true)
  const count = (stored: StoredDeadLetter | undefined, by: number): void => {
    if (!stored) return
    const { key, slice } = stored.row
    touched.keys.add(key)
    const dead = touched.rejected.get(key) ?? { slice, count: 0 }
    dead.count += by
    if (dead.count > 0) touched.rejected.set(key, dead)
    else touched.rejected.delete(key)
  }
  return {
    rows: new NotingMap<string, OutboxRow>(noteKey, all),
    parked: new NotingMap<string, ParkedConflict>(noteKey, all),
    deadLetters: new NotingMap<string, StoredDeadLetter>(
      (_, removed, added) => {
        count(removed, -1)
        count(added, 1)
      },
      () => {
        touched.rejected.clear()
        all()
      },
    ),
    touched,
  }
}

interface PublishedState {
  readonly slice: string
  readonly state: Exclude<ItemSyncState, 'synced'>
}

/** The stores of one transaction that may touch any synced item and the engine's own records. */
export function engineStores(ctx: EngineContext): string[] {
  const stores = new Set<string>([OUTBOX_STORE, VERSIONS_STORE, DEAD_LETTER_STORE, META_STORE])
  for (const slice of ctx.host.slices()) if (slice.syncToFlask) stores.add(slice.storeName)
  return [...stores]
}

/**
 * Runs `work` in one transaction of the engine's stores. After `dispose()` nothing starts, and
 * a transaction that began before it commits nothing: `work` is checked again before it writes.
 */
export async function transact<T>(ctx: EngineContext, work: (tx: StoreTransaction) => Promise<T>): Promise<T> {
  if (ctx.disposed) throw new DisposedError('the sync engine was disposed')
  return ctx.host.storage().transact(engineStores(ctx), async (tx) => {
    const result = await work(tx)
    if (ctx.disposed) throw new DisposedError('the sync engine was disposed')
    return result
  })
}

/** The slices whose collections are pulled (synced, and not `push-only`). */
export const syncedSlices = (ctx: EngineContext): HostSlice[] => ctx.host.slices().filter((s) => s.syncToFlask && s.pull)
/** The pulled slice a server record belongs to; records of other collections are ignored. */
export const sliceByCollection = (ctx: EngineContext, collection: string): HostSlice | undefined =>
  ctx.host.slices().find((s) => s.storeName === collection && s.syncToFlask && s.pull)

/**
 * Whether a local change of `slice` is pushed: the slice pushes, and its `pushFilter` (if any)
 * lets a put's item through. A filter that throws keeps the item local, and is reported.
 */
export function isPushed(ctx: EngineContext, slice: HostSlice, type: 'put' | 'delete', value: unknown): boolean {
  if (!slice.syncToFlask || !slice.push) return false
  if (type === 'delete' || value === undefined || !slice.pushFilter) return true
  try {
    return slice.pushFilter(value) !== false
  } catch (caught) {
    ctx.host.reportError(toSyncError(caught, `the pushFilter of slice "${slice.name}" threw; the item stays local`))
    return false
  }
}
export const sliceByName = (ctx: EngineContext, name: string): HostSlice | undefined => ctx.host.slices().find((s) => s.name === name)

export function publishOutbox(ctx: EngineContext): void {
  if (ctx.silenced) return
  ctx.host.dispatch(syncActions.outboxChanged(outboxDepth(ctx)))
  ctx.host.emit({ type: 'depth' })
  publishItemStates(ctx)
}

/**
 * Dispatches the items whose sync state changed since the last call (none: nothing is
 * dispatched). A parked conflict outranks a pending op, which outranks a dead letter (a newer
 * change of a rejected key is what the store shows). Looks only at the keys the outbox, the
 * parked conflicts and the dead letters changed since (see `Touched`); no item bodies.
 */
export function publishItemStates(ctx: EngineContext): void {
  if (ctx.silenced) return
  const { touched } = ctx
  const keys = touched.all ? new Set([...ctx.published.keys(), ...ctx.rows.keys(), ...ctx.parked.keys(), ...touched.rejected.keys()]) : touched.keys
  const changes: ItemStateChange[] = []
  for (const key of keys) {
    const now = itemState(ctx, key)
    const was = ctx.published.get(key)
    if (now) {
      if (was?.state === now.state) continue
      changes.push({ key, ...now })
      ctx.published.set(key, now)
    } else if (was) {
      changes.push({ key, slice: was.slice, state: 'synced' })
      ctx.published.delete(key)
    }
  }
  touched.keys.clear()
  touched.all = false
  if (changes.length > 0) ctx.host.dispatch(syncActions.itemStatesChanged(changes))
}

/** A key's sync state now (`null`: synced). */
function itemState(ctx: EngineContext, key: string): PublishedState | null {
  const parked = ctx.parked.get(key)
  if (parked) return { slice: parked.conflict.slice, state: 'conflict' }
  const row = ctx.rows.get(key)
  if (row && row.ops.length > 0) return { slice: row.slice, state: 'pending' }
  const dead = ctx.touched.rejected.get(key)
  return dead ? { slice: dead.slice, state: 'rejected' } : null
}

/**
 * Keys with operations stored and not yet acknowledged. A key counts once, although it may hold
 * two ops for a moment (one whose answer is unknown, and the newest change behind it).
 */
export function outboxDepth(ctx: EngineContext): number {
  return ctx.rows.size
}

export function publishDeadLetters(ctx: EngineContext): void {
  if (ctx.silenced) return
  ctx.host.dispatch(syncActions.deadLettersChanged([...ctx.deadLetters.values()].map((d) => d.letter)))
  publishItemStates(ctx)
}

/** Reports a finished request (push, pull page, health check) to the monitor. */
export function reportOperation(ctx: EngineContext, kind: 'push' | 'pull' | 'health', items: number, started: number, error: SyncError | null): void {
  if (ctx.silenced) return
  ctx.host.emit({
    type: 'operation',
    operation: { kind, slice: null, items, durationMs: Date.now() - started, ok: error === null, error: error ? error.toJSON() : null, at: Date.now() },
  })
}

/** A conflict's local side: what `op` writes (`null` when it deletes) and when it was made. */
export const localSide = (op: OutboxOp): Pick<SyncConflict, 'local' | 'localDeleted' | 'localTime'> => ({
  local: op.type === 'put' && op.value !== undefined ? op.value : null,
  localDeleted: op.type !== 'put' || op.value === undefined,
  localTime: op.clientTime,
})

/**
 * Keeps a parked conflict's local side the key's newest pending change: an edit committed while
 * the app decides (in this tab or another) is what the app sees, and what its decision settles.
 * Announced as a change of the open conflict (not a new one).
 */
export function followLocalChange(ctx: EngineContext, row: OutboxRow | undefined): void {
  if (!row) return
  const parked = ctx.parked.get(row.key)
  const latest = latestOp(row)
  if (!parked || !latest || latest.seq <= parked.throughSeq) return
  parked.throughSeq = latest.seq
  parked.conflict = { ...parked.conflict, ...localSide(latest) }
  if (!ctx.silenced) ctx.host.dispatch(syncActions.conflictChanged(parked.conflict))
}

export function announceConflict(ctx: EngineContext, record: SyncConflict): void {
  if (ctx.silenced) return
  ctx.host.dispatch(syncActions.conflictChanged(record))
  try {
    ctx.options.onConflict?.(record)
  } catch (caught) {
    ctx.host.reportError(toSyncError(caught, 'onConflict threw'))
  }
}

export function randomId(): string {
  const c = globalThis.crypto
  if (c && typeof c.randomUUID === 'function') return c.randomUUID()
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}-${Math.random().toString(36).slice(2)}`
}
