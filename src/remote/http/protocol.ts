/**
 * The wire types of docs/protocol.md. Server-assigned `version`s are the truth for conflict
 * detection; `clientTime` is informational and only breaks ties under `last-write-wins`.
 */

/** An item as the server stores it. Tombstones have `deleted: true` and `value: null`. */
export interface RemoteRecord {
  readonly collection: string
  readonly id: string
  readonly version: number
  readonly updatedAt: number
  readonly clientTime: number
  readonly deleted: boolean
  readonly value: unknown
  readonly seq: number
  /** The operation that produced this version, when the server reports it. */
  readonly opId?: string
}

/** One operation pushed to the server. `opId` makes a replay idempotent. */
export interface RemoteOperation {
  readonly opId: string
  readonly collection: string
  readonly id: string
  /** `patch` (protocol 3): `patch` and `base` instead of `value`, merged at field level. */
  readonly type: 'put' | 'delete' | 'patch'
  readonly value?: unknown
  /** An RFC 7396 merge patch from the base version's value to the new one (`type: 'patch'`). */
  readonly patch?: Readonly<Record<string, unknown>>
  /** The base version's values of the fields `patch` changes (`null`: absent). */
  readonly base?: Readonly<Record<string, unknown>>
  /** The server version this change was based on; `null` when the client never saw the item. */
  readonly baseVersion: number | null
  readonly clientTime: number
  /** Apply even if `baseVersion` is stale (used after a conflict was resolved for the client). */
  readonly force?: boolean
}

/** The server's verdict on one pushed operation. */
export type PushResult =
  | { readonly opId: string; readonly status: 'applied' | 'duplicate'; readonly record: RemoteRecord }
  | { readonly opId: string; readonly status: 'conflict'; readonly current: RemoteRecord | null; readonly fields?: readonly string[] }
  | { readonly opId: string; readonly status: 'rejected'; readonly error: { readonly error: string; readonly message: string } }

export interface PushResponse {
  readonly results: readonly PushResult[]
  readonly cursor: string
  /**
   * The server's epoch (protocol 2): names the history the cursors belong to. A different epoch
   * than before means the server was wiped or restored from a backup. Absent from protocol 1 servers.
   */
  readonly epoch?: string
}

export interface PullResponse {
  readonly items: readonly RemoteRecord[]
  /** The feed's head. After a limited pull it does not cover the items left out: not a feed cursor then. */
  readonly cursor: string
  /** Protocol 3, limited pulls only: how many live items there are, and whether some were left out. */
  readonly total?: number
  readonly hasMore?: boolean
  /**
   * The server's epoch (protocol 2): names the history the cursors belong to. A different epoch
   * than before means the server was wiped or restored from a backup. Absent from protocol 1 servers.
   */
  readonly epoch?: string
}

export interface ChangesResponse {
  readonly changes: readonly RemoteRecord[]
  readonly cursor: string
  readonly hasMore: boolean
  /**
   * The server's epoch (protocol 2): names the history the cursors belong to. A different epoch
   * than before means the server was wiped or restored from a backup. Absent from protocol 1 servers.
   */
  readonly epoch?: string
}

export interface HealthResponse {
  readonly status: 'ok'
  readonly serverTime: number
  readonly protocol: number
  /**
   * The server's epoch (protocol 2): names the history the cursors belong to. A different epoch
   * than before means the server was wiped or restored from a backup. Absent from protocol 1 servers.
   */
  readonly epoch?: string
}

/** What a single-item PUT or DELETE returns. */
export type ItemWriteResult =
  { readonly status: 'applied' | 'duplicate'; readonly record: RemoteRecord } | { readonly status: 'conflict'; readonly current: RemoteRecord | null }
