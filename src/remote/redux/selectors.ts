import { itemKey } from '../../core/ids'
import type { ItemId } from '../../storage/types'
import { initialSyncState, type DeadLetter, type ItemSyncState, type SliceSyncCounts, type SyncState } from './syncSlice'

/** Reads the sync slice of a root state: the one mounted under `sync`, or the initial state when absent. */
export const selectSyncAtSync = (state: unknown): SyncState => ((state as { sync?: SyncState } | null)?.sync ?? initialSyncState) as SyncState

// `@__PURE__`: module-level calls a bundler may drop when no selector is used.
const NO_COUNTS: SliceSyncCounts = /* @__PURE__ */ Object.freeze({ pending: 0, conflict: 0, rejected: 0 })
const NO_LETTERS: readonly DeadLetter[] = /* @__PURE__ */ Object.freeze([])

/**
 * Where one item stands with the server: `'synced'`, `'pending'`, `'conflict'` or `'rejected'`
 * (see {@link ItemSyncState}). O(1): the sync slice holds only items that are not synced.
 * An edit counts as pending once it is stored locally (after the slice's `debounceMs`).
 * @param selectSync where the sync slice is mounted
 * @default selectSync (state) => state.sync
 * @example
 * ```ts
 * const state = selectItemSyncState(store.getState(), 'notes', note.id) // 'pending'
 * ```
 */
export function selectItemSyncState(state: unknown, slice: string, id: ItemId, selectSync: (state: unknown) => SyncState = selectSyncAtSync): ItemSyncState {
  return selectSync(state).items[itemKey(slice, id)] ?? 'synced'
}

/**
 * How many items of a slice are pending, in conflict or rejected. The same object while the
 * counts stay the same (safe for `useSelector`).
 * @example
 * ```ts
 * const { pending, rejected } = selectSliceSyncCounts(store.getState(), 'notes')
 * ```
 */
export function selectSliceSyncCounts(state: unknown, slice: string, selectSync: (state: unknown) => SyncState = selectSyncAtSync): SliceSyncCounts {
  return selectSync(state).counts[slice] ?? NO_COUNTS
}

/**
 * The dead letters of one item (rejected operations with their reasons), oldest first; the
 * same empty array when there are none.
 * @example
 * ```ts
 * const [letter] = selectItemRejections(store.getState(), 'notes', id) // letter?.message
 * ```
 */
export function selectItemRejections(
  state: unknown,
  slice: string,
  id: ItemId,
  selectSync: (state: unknown) => SyncState = selectSyncAtSync,
): readonly DeadLetter[] {
  const sync = selectSync(state)
  const key = itemKey(slice, id)
  if (sync.items[key] === undefined) return NO_LETTERS
  const letters = sync.deadLetters.filter((letter) => letter.key === key)
  return letters.length > 0 ? letters : NO_LETTERS
}
