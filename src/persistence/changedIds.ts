import type { UnknownAction } from '@reduxjs/toolkit'
import type { ItemId } from '../storage/types'
import { validId } from '../core/ids'

const idOf = (value: unknown): ItemId | undefined => {
  if (validId(value)) return value
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const id = (value as { id?: unknown }).id
    if (validId(id)) return id
  }
  return undefined
}

/**
 * A `changedIds` for slices updated by RTK entity-adapter reducers and reducers in their style:
 * the payload is an id, an item with an `id`, an update `{ id, changes }`, or an array of those
 * (`addOne`, `setOne`, `upsertOne`, `updateOne`, `removeOne` and their `Many` forms). Any other
 * payload (none, as in `removeAll`; a dictionary; a number of unrelated fields) returns
 * `undefined`, and the slice is diffed in full.
 *
 * @example
 * ```ts
 * slices: { files: { changedIds: idsFromPayload } }
 * ```
 */
export function idsFromPayload(action: UnknownAction): ItemId[] | undefined {
  const payload = (action as { payload?: unknown }).payload
  const single = idOf(payload)
  if (single !== undefined) return [single]
  if (!Array.isArray(payload) || payload.length === 0) return undefined
  const ids: ItemId[] = []
  for (const element of payload) {
    const id = idOf(element)
    if (id === undefined) return undefined
    ids.push(id)
  }
  return ids
}
