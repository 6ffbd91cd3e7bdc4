import type { DiffSink, ShapeKind } from '../../src/persistence/shapes'
import type { ItemId } from '../../src/storage/types'

export interface Item {
  id: ItemId
  name: string
}

/** A collection of `kind` holding `items`, built by hand the way a reducer's state looks. */
export function collectionOf(kind: ShapeKind, items: readonly Item[]): unknown {
  if (kind === 'array') return [...items]
  const record: Record<string, Item> = {}
  for (const item of items) record[String(item.id)] = item
  if (kind === 'record') return record
  return { ids: items.map((item) => item.id), entities: record }
}

/** Reads the id the way a slice's `getId` would: `item.id`. */
export const byId = (item: unknown): unknown => (item as { id?: unknown } | null)?.id

/** A DiffSink that records what it is told, in order. */
export function recordingSink(): DiffSink & { puts: Array<[ItemId, unknown]>; deletes: ItemId[]; invalids: unknown[] } {
  const puts: Array<[ItemId, unknown]> = []
  const deletes: ItemId[] = []
  const invalids: unknown[] = []
  return {
    puts,
    deletes,
    invalids,
    put: (id, item) => void puts.push([id, item]),
    delete: (id) => void deletes.push(id),
    invalid: (item) => void invalids.push(item),
  }
}
