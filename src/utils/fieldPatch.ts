import { plainEqual } from './equal'
import { isObject } from './isObject'

/**
 * Field patches: RFC 7396 JSON Merge Patch plus the base values of the changed fields, so a
 * server can three-way merge without keeping old versions (docs/protocol.md, "Patches").
 *
 * Rules every function here keeps, on the server (server/redux_idb_sync_server/merge.py) too:
 * - Objects (not arrays) are containers; everything else (primitives, arrays) is a leaf, replaced
 *   whole. A *path* is the list of keys from the item's root to a leaf.
 * - `patch` and `base` have the same keys at every level. Both are objects at a key exactly when
 *   the change is inside that key (recurse); otherwise the key is a leaf: `patch[k]` is the new
 *   value and `base[k]` the old one, `null` standing for "absent" (Merge Patch's delete).
 * - A change Merge Patch cannot express (a value set to `null`, a `null` inside a new object,
 *   or an old value that was `null`) is no patch: the caller sends the whole value.
 */

/** A plain JSON object. */
export type JsonObject = Record<string, unknown>

/** The changed fields of an item against a base, and the base's values of those fields. */
export interface FieldPatch {
  /** RFC 7396 merge patch: applied to the base, gives the new item. */
  readonly patch: JsonObject
  /** The same keys, holding the base's values (`null`: the field was absent). */
  readonly base: JsonObject
}

/** A path of object keys from an item's root to the leaf that differs. */
export type FieldPath = readonly string[]

const UNSAFE_KEYS = new Set(['__proto__', 'constructor', 'prototype'])

/** Whether Merge Patch carries `value` unchanged as a leaf (no `null` that it would read as a delete). */
function expressible(value: unknown): boolean {
  if (value === null) return false
  if (!isObject(value)) return true
  return Object.values(value).every(expressible)
}

/**
 * The patch from `base` to `next`, or `null` when it cannot be expressed (either is not an
 * object, or a changed field involves `null`). Reference-equal subtrees are skipped without a
 * look inside, so a diff of two states that share structure costs what changed.
 * @example
 * ```ts
 * fieldPatch({ id: 'a', title: 'x', body: '...' }, { id: 'a', title: 'y', body: '...' })
 * // { patch: { title: 'y' }, base: { title: 'x' } }
 * ```
 */
export function fieldPatch(base: unknown, next: unknown): FieldPatch | null {
  if (!isObject(base) || !isObject(next)) return null
  return diffObjects(base, next)
}

function diffObjects(base: JsonObject, next: JsonObject): FieldPatch | null {
  const patch: JsonObject = {}
  const old: JsonObject = {}
  const has = (o: JsonObject, k: string): boolean => Object.prototype.hasOwnProperty.call(o, k)
  const keys = new Set([...Object.keys(base), ...Object.keys(next)])
  for (const key of keys) {
    if (UNSAFE_KEYS.has(key)) return null
    const before = has(base, key) ? base[key] : undefined
    const after = has(next, key) ? next[key] : undefined
    if (before === after) continue
    if (isObject(before) && isObject(after)) {
      const inner = diffObjects(before, after)
      if (inner === null) return null
      if (Object.keys(inner.patch).length === 0) continue
      patch[key] = inner.patch
      old[key] = inner.base
      continue
    }
    if (before !== undefined && after !== undefined && plainEqual(before, after)) continue
    // A leaf changed: both sides must be expressible in Merge Patch (absent is null there).
    if (before === null || (after !== undefined && !expressible(after))) return null
    patch[key] = after === undefined ? null : after
    old[key] = before === undefined ? null : before
  }
  return { patch, base: old }
}

/** RFC 7396: applies a merge patch to a target (non-objects are replaced whole). */
export function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return patch
  const result: JsonObject = isObject(target) ? { ...target } : {}
  for (const [key, value] of Object.entries(patch)) {
    if (UNSAFE_KEYS.has(key)) continue
    if (value === null) delete result[key]
    else result[key] = applyMergePatch(result[key], value)
  }
  return result
}

/** Why `patch` and `base` are not a well-formed field patch, or `null`. */
export function malformedPatch(patch: unknown, base: unknown): string | null {
  if (!isObject(patch)) return 'patch must be a JSON object'
  if (!isObject(base)) return 'base must be a JSON object'
  const stack: Array<[JsonObject, JsonObject, string]> = [[patch, base, '']]
  while (stack.length > 0) {
    const [p, b, at] = stack.pop()!
    const pk = Object.keys(p)
    if (pk.length !== Object.keys(b).length || !pk.every((k) => Object.prototype.hasOwnProperty.call(b, k))) {
      return `patch and base must name the same fields${at ? ` at ${at}` : ''}`
    }
    for (const key of pk) {
      if (UNSAFE_KEYS.has(key)) return `patch names a forbidden key "${key}"`
      const pv = p[key]
      const bv = b[key]
      if (isObject(pv) && isObject(bv)) stack.push([pv, bv, `${at}/${key}`])
    }
  }
  return null
}

/** The outcome of merging a field patch onto what the server has. */
export interface PatchMerge {
  /** The merged item (`current` with the patch's clean fields applied). */
  readonly value: JsonObject
  /** Paths changed on both sides to different values; empty when the merge is clean. */
  readonly conflicts: readonly FieldPath[]
}

/**
 * Merges a well-formed field patch onto `current` (the server's item, `undefined` when it has
 * none): a field whose current value is still the base's takes the patch's value; one that
 * already holds the patch's value is agreed; anything else is a conflict at that path.
 * `force` takes the patch's value everywhere. With `current` equal to the base, this is plain
 * RFC 7396 application.
 */
export function mergePatchOnto(current: unknown, fp: FieldPatch, force = false): PatchMerge {
  const conflicts: FieldPath[] = []
  const value = mergeLevel(isObject(current) ? current : {}, fp.patch, fp.base, [], conflicts, force)
  return { value, conflicts }
}

function mergeLevel(current: JsonObject, patch: JsonObject, base: JsonObject, at: string[], conflicts: FieldPath[], force: boolean): JsonObject {
  const result: JsonObject = { ...current }
  for (const [key, change] of Object.entries(patch)) {
    const old = base[key]
    const path = [...at, key]
    const now = Object.prototype.hasOwnProperty.call(current, key) ? current[key] : undefined
    if (isObject(change) && isObject(now)) {
      // Both sides hold an object here: merge inside it. A base that was not an object means
      // every field inside is new on both sides.
      result[key] = mergeLevel(now, change, isObject(old) ? old : absentFields(change), path, conflicts, force)
      continue
    }
    if (isObject(change) && isObject(old)) {
      // The server removed the container, or replaced it with a leaf, while this side changed inside it.
      if (force) result[key] = applyMergePatch(now, change)
      else conflicts.push(path)
      continue
    }
    const wanted = change === null ? undefined : applyMergePatch(undefined, change)
    const unchanged = old === null ? now === undefined : now !== undefined && plainEqual(now, old)
    const agreed = wanted === undefined ? now === undefined : now !== undefined && plainEqual(now, wanted)
    if (force || unchanged || agreed) {
      if (wanted === undefined) delete result[key]
      else result[key] = wanted
    } else conflicts.push(path)
  }
  return result
}

/** A base for `patch` in which every field was absent. */
function absentFields(patch: JsonObject): JsonObject {
  const base: JsonObject = {}
  for (const key of Object.keys(patch)) base[key] = null
  return base
}

/** Which side a conflicting path takes. */
export type PathChoice = 'local' | 'server'

/** The outcome of a three-way merge of whole values. */
export interface ThreeWayMerge {
  readonly value: unknown
  /** Paths both sides changed to different values (decided by `choose`). */
  readonly conflicts: readonly FieldPath[]
}

/**
 * Three-way merge of whole values at field level: a path changed on one side only takes that
 * side's value; changed on both sides to different values, `choose(path)` decides. Objects merge
 * key by key; a leaf (or a value that is not an object on some side) is decided whole. `undefined`
 * is "absent" (a deleted item, a missing field).
 * @example
 * ```ts
 * threeWayMerge({ t: 'a', b: 'x' }, { t: 'b', b: 'x' }, { t: 'a', b: 'y' }, () => 'server').value
 * // { t: 'b', b: 'y' }
 * ```
 */
export function threeWayMerge(base: unknown, local: unknown, server: unknown, choose: (path: FieldPath) => PathChoice): ThreeWayMerge {
  const conflicts: FieldPath[] = []
  const value = merge3(base, local, server, [], conflicts, choose)
  return { value, conflicts }
}

function same(a: unknown, b: unknown): boolean {
  if (a === undefined || b === undefined) return a === b
  return plainEqual(a, b)
}

function merge3(base: unknown, local: unknown, server: unknown, at: string[], conflicts: FieldPath[], choose: (path: FieldPath) => PathChoice): unknown {
  if (same(local, server)) return local
  if (same(base, local)) return server
  if (same(base, server)) return local
  if (isObject(local) && isObject(server)) {
    const b = isObject(base) ? base : {}
    const result: JsonObject = {}
    for (const key of new Set([...Object.keys(server), ...Object.keys(local)])) {
      if (UNSAFE_KEYS.has(key)) continue
      const pick = (o: JsonObject): unknown => (Object.prototype.hasOwnProperty.call(o, key) ? o[key] : undefined)
      const merged = merge3(pick(b), pick(local), pick(server), [...at, key], conflicts, choose)
      if (merged !== undefined) result[key] = merged
    }
    return result
  }
  conflicts.push(at)
  return choose(at) === 'local' ? local : server
}

/** A path as a JSON Pointer (RFC 6901), for messages and the wire. */
export const pointer = (path: FieldPath): string => path.map((k) => `/${k.replace(/~/g, '~0').replace(/\//g, '~1')}`).join('')
