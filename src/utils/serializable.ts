/** Where and why a value cannot be persisted. */
export interface SerializationProblem {
  readonly path: readonly (string | number)[]
  readonly reason: string
}

const isPlainObject = (value: object): boolean => {
  const proto: unknown = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

/**
 * Finds the first part of `value` that is not plain data: what Redux Toolkit's serializability
 * check accepts (primitives, arrays, plain objects), which is also what survives both
 * IndexedDB's structured clone and JSON to the server. We check ourselves rather than trust
 * one runtime's clone (fake-indexeddb and Chrome differ on class instances).
 *
 * Iterative, so a 10,000-level nesting is reported as too deep instead of overflowing the stack.
 * Cost is linear in the size of the one item being written, never of the slice.
 */
export function findNonSerializable(value: unknown, maxDepth: number): SerializationProblem | null {
  const onPath = new Set<object>()
  // Depth-first with explicit exit markers, so "circular" means "on the current path"
  // (a shared, non-circular reference is fine).
  const work: Array<{ value: unknown; path: (string | number)[] } | { exit: object }> = [{ value, path: [] }]
  while (work.length > 0) {
    const item = work.pop()!
    if ('exit' in item) {
      onPath.delete(item.exit)
      continue
    }
    const { value: current, path } = item
    // The depth rule of core/depth.ts, checked inside this walk: the steps from the item to
    // anything in it, a primitive leaf included, are at most maxDepth.
    if (path.length > maxDepth) return { path, reason: `nested deeper than maxDepth (${maxDepth})` }
    switch (typeof current) {
      case 'string':
      case 'boolean':
      case 'number':
      case 'undefined':
        continue
      case 'function':
        return { path, reason: 'function' }
      case 'symbol':
        return { path, reason: 'symbol' }
      case 'bigint':
        return { path, reason: 'BigInt (not representable in JSON)' }
    }
    if (current === null) continue
    const object = current as object
    if (onPath.has(object)) return { path, reason: 'circular reference' }
    if (!Array.isArray(object) && !isPlainObject(object)) {
      const name = (object as { constructor?: { name?: unknown } }).constructor?.name
      return { path, reason: `instance of ${typeof name === 'string' && name ? name : 'a class'}` }
    }
    for (const key of Object.getOwnPropertySymbols(object)) {
      return { path: [...path, String(key)], reason: 'symbol key' }
    }
    onPath.add(object)
    work.push({ exit: object })
    if (Array.isArray(object)) {
      for (let i = object.length - 1; i >= 0; i--) work.push({ value: object[i], path: [...path, i] })
    } else {
      const keys = Object.keys(object)
      for (let i = keys.length - 1; i >= 0; i--) {
        const key = keys[i]!
        let child: unknown
        try {
          child = (object as Record<string, unknown>)[key]
        } catch (error) {
          // A throwing getter would throw again inside IndexedDB's structured clone and
          // JSON.stringify; report it like any other value we cannot persist.
          return { path: [...path, key], reason: `a getter that throws (${error instanceof Error ? error.message : String(error)})` }
        }
        work.push({ value: child, path: [...path, key] })
      }
    }
  }
  return null
}

const dangerous = new Set(['__proto__', 'constructor', 'prototype'])

/**
 * Returns `value` without `__proto__`, `constructor` and `prototype` keys at any depth, copying
 * only the objects that contain one. Applied to everything read from storage or the server, so a
 * later merge by assignment can never reach a prototype (overmind #654, graphql-tools #8423).
 */
export function stripDangerousKeys<T>(value: T): T {
  if (value === null || typeof value !== 'object') return value
  if (Array.isArray(value)) {
    let copy: unknown[] | null = null
    for (let i = 0; i < value.length; i++) {
      const next = stripDangerousKeys(value[i] as unknown)
      if (next !== value[i]) (copy ??= value.slice())[i] = next
    }
    return (copy ?? value) as T
  }
  let copy: Record<string, unknown> | null = null
  const source = value as Record<string, unknown>
  for (const key of Object.keys(source)) {
    if (dangerous.has(key)) {
      copy ??= copyOwn(source)
      delete copy[key]
      continue
    }
    const next = stripDangerousKeys(source[key])
    if (next !== source[key]) (copy ??= copyOwn(source))[key] = next
  }
  return (copy ?? value) as T
}

function copyOwn(source: Record<string, unknown>): Record<string, unknown> {
  const copy: Record<string, unknown> = {}
  for (const key of Object.keys(source)) defineData(copy, key, source[key])
  return copy
}

/** Sets an own data property without ever invoking the `__proto__` setter. */
export function defineData(target: Record<string, unknown>, key: string, value: unknown): void {
  // `__proto__` is the one accessor plain objects inherit; every other key assigns as a data
  // property, and assignment is several times faster than defineProperty on large records.
  if (key === '__proto__') Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true })
  else target[key] = value
}
