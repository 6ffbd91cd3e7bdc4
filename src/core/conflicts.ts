import type { ItemId } from '../storage/types'

/** What the server holds for a conflicting item (`null`: the server has no such item). */
export interface ServerVersion {
  readonly value: unknown
  readonly version: number
  readonly deleted: boolean
  readonly updatedAt: number
  readonly clientTime: number
}

/** What a custom merge function receives. */
export interface ConflictContext<Item = unknown> {
  readonly slice: string
  readonly id: ItemId
  /** The local item, or `null` when it was deleted locally. */
  readonly local: Item | null
  /** The server's item, or `null` when it is deleted (or unknown) on the server. */
  readonly server: Item | null
  /**
   * What both sides started from: the last server value this client knew when the local change
   * was made (`null`: the item did not exist). `undefined` when the client does not know it.
   */
  readonly base?: Item | null
  readonly serverVersion: number
  /** When the local change was made (client clock) and when the server's was (its client's clock). */
  readonly localTime: number
  readonly serverTime: number
}

/**
 * How a conflict is settled. A custom function returns the merged item (or `null` to delete);
 * the result is written locally and pushed on top of the server's version.
 *
 * - `'server-wins'` (default): the server's version replaces the local change.
 * - `'client-wins'`: the local change is pushed again on top of the server's version.
 * - `'last-write-wins'`: the change with the later `clientTime` wins; a tie goes to the server.
 *   Client clocks drift, so use it only where that is acceptable.
 * - `'manual'`: both versions stay in `state.sync.conflicts` until the app dispatches
 *   `resolveConflict`. The local change is not pushed meanwhile.
 */
export type ConflictStrategy<Item = unknown> = 'server-wins' | 'client-wins' | 'last-write-wins' | 'manual' | MergeFunction<Item>

/**
 * A custom merge. Declared as a method so a typed merge (`MergeFunction<FileItem>`) fits a slice
 * map of mixed item types (method parameters are bivariant, as React's event handlers use).
 */
export type MergeFunction<Item = unknown> = {
  bivarianceHack(context: ConflictContext<Item>): Item | null
}['bivarianceHack']

/** A detected conflict, as it appears in the sync slice and in `onConflict`. Plain data. */
export interface SyncConflict {
  /** `<slice>:<id>`; at most one open conflict per key. */
  readonly key: string
  readonly slice: string
  readonly id: ItemId
  /** Detected while pushing local changes, or while pulling the server's. */
  readonly phase: 'push' | 'pull'
  /** The strategy's name, or `'custom'` for a merge function. */
  readonly strategy: 'server-wins' | 'client-wins' | 'last-write-wins' | 'manual' | 'custom'
  /** The local side (`null` when deleted). While a `manual` conflict is open, its newest pending edit. */
  readonly local: unknown
  readonly localDeleted: boolean
  readonly localTime: number
  /** The server's side; while a `manual` conflict is open, its newest version. */
  readonly server: ServerVersion | null
  readonly detectedAt: number
  /** `'pending'` until settled (only `manual` conflicts stay pending). */
  readonly resolution: 'pending' | 'server' | 'client' | 'merged'
}
