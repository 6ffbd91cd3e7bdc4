import type { SerializedSyncError } from '../errors'
import type { ItemId } from '../storage/types'
import type { RealtimeState } from './ports'

/** What kind of work an operation record describes. */
export type OperationKind = 'write' | 'hydrate' | 'push' | 'pull' | 'health'

/** One finished unit of work: an IndexedDB batch, a push request, a pull page, a health check. */
export interface OperationRecord {
  readonly kind: OperationKind
  /** The slice, for single-slice work; `null` for work spanning slices (pushes, pulls, health). */
  readonly slice: string | null
  /** Items written, pushed or pulled (0 for health checks). */
  readonly items: number
  readonly durationMs: number
  readonly ok: boolean
  readonly error: SerializedSyncError | null
  /** When it finished (ms since epoch). */
  readonly at: number
}

/** Which items of one slice a committed batch wrote (`puts`) and removed (`deletes`). */
export interface ChangeSet {
  readonly slice: string
  readonly puts: readonly ItemId[]
  readonly deletes: readonly ItemId[]
  /**
   * Local changes only: when each was made (by `String(id)`, on the clock the tabs of one browser
   * share). Another tab drops its own queued change of such a key if it was made earlier.
   */
  readonly orderedAt?: Readonly<Record<string, number>>
}

/** Events a persistence instance emits to its companions (monitor, auto-sync, other tabs). */
export type PersistenceEvent =
  | { readonly type: 'operation'; readonly operation: OperationRecord }
  /** Local writes of synced slices were committed (with their outbox entries). */
  | { readonly type: 'local-change'; readonly count: number }
  /** A batch committed locally (local writes or applied server data): which ids of which slices, for other tabs. */
  | { readonly type: 'committed'; readonly changes: readonly ChangeSet[] }
  /** The local queue or the outbox changed size. */
  | { readonly type: 'depth' }
  /** The server became reachable or unreachable. */
  | { readonly type: 'connection'; readonly connected: boolean }
  /** The real-time channel changed state. */
  | { readonly type: 'realtime'; readonly state: RealtimeState }
  /**
   * A poke (the server's feed advanced) was pulled: `visibleAfterMs` is how long after the
   * server published the write its change was in this store (on the server's clock, so device
   * clock skew does not count); `pokes` is how many pokes that one pull covered; `pulled` is false
   * when this client already held the poked cursor and fetched nothing.
   */
  | { readonly type: 'poke'; readonly cursor: string; readonly pokes: number; readonly pulled: boolean; readonly visibleAfterMs: number | null }
