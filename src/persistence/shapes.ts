import { isObject } from '../utils/isObject'
import type { ItemId } from '../storage/types'
import { validId } from '../core/ids'
import { defineData } from '../utils/serializable'

/** The three collection layouts the middleware understands. */
export type ShapeKind = 'entities' | 'record' | 'array'

/** Receives the operations a diff finds. */
export interface DiffSink {
  put(id: ItemId, item: unknown): void
  delete(id: ItemId): void
  /** An item whose id could not be read, or that cannot be told from another item (`reason`). */
  invalid(item: unknown, reason?: string): void
}

/** Reads an item's id; returns undefined when it has none. */
export type IdReader = (item: unknown) => unknown

type EntityState = { ids: ItemId[]; entities: Record<string, unknown> }
type Collection = unknown

const hasOwn = (object: object, key: PropertyKey): boolean => Object.prototype.hasOwnProperty.call(object, key)

/** Guesses the layout of a collection; `undefined` while there is nothing to guess from. */
export function detectShape(collection: unknown): ShapeKind | undefined {
  if (Array.isArray(collection)) return 'array'
  if (!isObject(collection)) return undefined
  if (Array.isArray(collection.ids) && isObject(collection.entities)) return 'entities'
  return 'record'
}

export { validId }

/**
 * Finds added, changed and removed items by reference, which is exact for immutable updates
 * (Immer keeps every untouched item's reference). The work is one reference comparison per
 * item of a slice that changed; slices whose reference did not change are never walked.
 *
 * `arrayIndex` caches the previous id → item map of an array collection so an array diff needs
 * one pass, not two.
 */
export function diffCollection(
  kind: ShapeKind,
  prev: Collection,
  next: Collection,
  getId: IdReader,
  sink: DiffSink,
  arrayIndex: Map<ItemId, unknown> | null,
): Map<ItemId, unknown> | null {
  if (prev === next) return arrayIndex
  if (kind === 'entities') {
    const p = (isObject(prev) ? prev : { ids: [], entities: {} }) as EntityState
    const n = (isObject(next) ? next : { ids: [], entities: {} }) as EntityState
    if (p.entities !== n.entities) {
      for (const id of n.ids) {
        const item = n.entities[id]
        if (p.entities[id] === item) continue
        // An empty string is a key JavaScript allows and the protocol does not (ids are 1 to
        // 512 characters): refuse it here rather than store what can never sync.
        if (validId(id)) sink.put(id, item)
        else sink.invalid(item)
      }
    }
    if (p.ids !== n.ids) for (const id of p.ids) if (!hasOwn(n.entities, id) && validId(id)) sink.delete(id)
    return null
  }
  if (kind === 'record') {
    const p = isObject(prev) ? prev : {}
    const n = isObject(next) ? next : {}
    for (const id of Object.keys(n)) {
      if (p[id] === n[id] && hasOwn(p, id)) continue
      if (validId(id)) sink.put(id, n[id])
      else sink.invalid(n[id])
    }
    for (const id of Object.keys(p)) if (!hasOwn(n, id) && validId(id)) sink.delete(id)
    return null
  }
  const index = arrayIndex ?? indexArray(prev, getId)
  const nextIndex = new Map<ItemId, unknown>()
  // Keys are `<slice>:<id>`, and the server stores ids as strings: 1 and '1' are one item there.
  const byText = new Map<string, ItemId>()
  for (const item of Array.isArray(next) ? next : []) {
    const id = getId(item)
    if (!validId(id)) {
      sink.invalid(item)
      continue
    }
    const other = byText.get(String(id))
    if (other !== undefined && other !== id) {
      sink.invalid(
        item,
        `has the id ${JSON.stringify(id)}, which cannot be told from the id ${JSON.stringify(other)} of another item (ids of one slice must be all numbers or all strings)`,
      )
      continue
    }
    byText.set(String(id), id)
    nextIndex.set(id, item)
    if (index.get(id) !== item || !index.has(id)) sink.put(id, item)
  }
  for (const id of index.keys()) if (!nextIndex.has(id)) sink.delete(id)
  return nextIndex
}

/**
 * The diff of an action that said which ids it changed: O(ids) instead of O(items). Returns
 * `false` where a hint could miss something, and the caller then diffs in full: in `array`
 * slices (finding an item needs the whole array), and in `entities` slices whose `ids` array
 * changed (an addition or removal, which costs the reducer O(items) anyway).
 */
export function diffIds(kind: ShapeKind, prev: Collection, next: Collection, ids: ReadonlySet<ItemId>, sink: DiffSink): boolean {
  if (prev === next) return true
  let p: Record<string, unknown>
  let n: Record<string, unknown>
  if (kind === 'entities') {
    if (!isObject(prev) || !isObject(next)) return false
    const pe = prev as EntityState
    const ne = next as EntityState
    if (pe.ids !== ne.ids || !isObject(pe.entities) || !isObject(ne.entities)) return false
    if (pe.entities === ne.entities) return true
    p = pe.entities
    n = ne.entities
  } else if (kind === 'record') {
    p = isObject(prev) ? prev : {}
    n = isObject(next) ? next : {}
  } else return false
  for (const id of ids) {
    if (!validId(id)) continue
    if (hasOwn(n, id)) {
      if (p[id] !== n[id] || !hasOwn(p, id)) sink.put(id, n[id])
    } else if (hasOwn(p, id)) sink.delete(id)
  }
  return true
}

/**
 * The diff of ids named by immer's patches: O(ids), additions and removals included. Patch paths
 * name ids as strings; in an `entities` slice whose ids are numbers (its `ids` array says so),
 * they are turned back into numbers, as the full diff would write them.
 */
export function diffNamedIds(kind: Exclude<ShapeKind, 'array'>, prev: Collection, next: Collection, ids: ReadonlySet<string>, sink: DiffSink): void {
  if (prev === next || ids.size === 0) return
  let p: Record<string, unknown>
  let n: Record<string, unknown>
  let numeric = false
  if (kind === 'entities') {
    const pe = (isObject(prev) ? prev : { ids: [], entities: {} }) as EntityState
    const ne = (isObject(next) ? next : { ids: [], entities: {} }) as EntityState
    p = isObject(pe.entities) ? pe.entities : {}
    n = isObject(ne.entities) ? ne.entities : {}
    const sample = (Array.isArray(ne.ids) && ne.ids.length > 0 ? ne.ids[0] : Array.isArray(pe.ids) ? pe.ids[0] : undefined) as unknown
    numeric = typeof sample === 'number'
  } else {
    p = isObject(prev) ? prev : {}
    n = isObject(next) ? next : {}
  }
  for (const key of ids) {
    const id: ItemId = numeric ? Number(key) : key
    if (hasOwn(n, key)) {
      if (p[key] === n[key] && hasOwn(p, key)) continue
      if (validId(id)) sink.put(id, n[key])
      else sink.invalid(n[key])
    } else if (hasOwn(p, key) && validId(id)) sink.delete(id)
  }
}

export function indexArray(collection: Collection, getId: IdReader): Map<ItemId, unknown> {
  const index = new Map<ItemId, unknown>()
  for (const item of Array.isArray(collection) ? collection : []) {
    const id = getId(item)
    if (validId(id)) index.set(id, item)
  }
  return index
}

/** Every `[id, item]` of a collection, in the collection's order. */
export function entriesOf(kind: ShapeKind, collection: Collection, getId: IdReader): Array<[ItemId, unknown]> {
  if (kind === 'entities') {
    const c = collection as EntityState | undefined
    return isObject(c) ? c.ids.map((id): [ItemId, unknown] => [id, c.entities[id]]) : []
  }
  if (kind === 'record') return isObject(collection) ? Object.entries(collection) : []
  return [...indexArray(collection, getId)]
}

/**
 * Builds a collection of the given layout from `[id, item]` pairs. Record keys are defined, not
 * assigned, so an id of `__proto__` can never reach a prototype.
 */
export function buildCollection(kind: ShapeKind, items: ReadonlyArray<readonly [ItemId, unknown]>, template: Collection): Collection {
  if (kind === 'array') return items.map(([, item]) => item)
  const record: Record<string, unknown> = {}
  for (const [id, item] of items) defineData(record, String(id), item)
  if (kind === 'record') return record
  return { ...(isObject(template) ? template : {}), ids: items.map(([id]) => id), entities: record }
}

/** Reads the collection at `path` inside a slice state. */
export function getAt(state: unknown, path: readonly string[]): unknown {
  let current = state
  for (const key of path) {
    if (!isObject(current)) return undefined
    current = current[key]
  }
  return current
}

/** Immutably replaces the value at `path` inside a slice state, copying only the objects on the path. */
export function setAt(state: unknown, path: readonly string[], value: unknown): unknown {
  if (path.length === 0) return value
  const [head, ...rest] = path as [string, ...string[]]
  const base = isObject(state) ? state : {}
  const copy: Record<string, unknown> = { ...base }
  defineData(copy, head, setAt(base[head], rest, value))
  return copy
}

/**
 * Returns a new collection with `puts` set (added at the end when new) and `deletes` removed.
 * Used to apply server changes; costs one copy of the collection per call, so callers batch.
 */
export function applyChanges(
  kind: ShapeKind,
  collection: Collection,
  puts: ReadonlyArray<readonly [ItemId, unknown]>,
  deletes: readonly ItemId[],
  getId: IdReader,
): Collection {
  const removed = new Set<ItemId>(deletes.map((id) => (kind === 'array' ? id : String(id))))
  if (kind === 'array') {
    const replace = new Map<ItemId, unknown>(puts.map(([id, item]) => [id, item]))
    const out: unknown[] = []
    for (const item of Array.isArray(collection) ? collection : []) {
      const id = getId(item)
      if (validId(id) && removed.has(id)) continue
      if (validId(id) && replace.has(id)) {
        out.push(replace.get(id))
        replace.delete(id)
      } else out.push(item)
    }
    for (const item of replace.values()) out.push(item)
    return out
  }
  if (kind === 'record') {
    const out: Record<string, unknown> = {}
    const source = isObject(collection) ? collection : {}
    for (const key of Object.keys(source)) if (!removed.has(key)) defineData(out, key, source[key])
    for (const [id, item] of puts) defineData(out, String(id), item)
    return out
  }
  const state = (isObject(collection) ? collection : { ids: [], entities: {} }) as EntityState
  const entities: Record<string, unknown> = {}
  const ids: ItemId[] = []
  for (const id of state.ids) {
    if (removed.has(String(id))) continue
    ids.push(id)
    defineData(entities, String(id), state.entities[id])
  }
  for (const [id, item] of puts) {
    if (!hasOwn(entities, String(id))) ids.push(id)
    defineData(entities, String(id), item)
  }
  return { ...state, ids, entities }
}
