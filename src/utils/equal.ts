/**
 * Structural equality of plain data (what JSON and IndexedDB carry): same primitives, arrays of
 * equal items in order, objects with the same own keys and equal values. Iterative, so deep
 * values cannot overflow the stack.
 */
export function plainEqual(a: unknown, b: unknown): boolean {
  const stack: Array<[unknown, unknown]> = [[a, b]]
  while (stack.length > 0) {
    const [x, y] = stack.pop()!
    if (Object.is(x, y)) continue
    if (typeof x !== 'object' || typeof y !== 'object' || x === null || y === null) return false
    if (Array.isArray(x) !== Array.isArray(y)) return false
    const xs = Object.keys(x)
    const ys = Object.keys(y)
    if (xs.length !== ys.length) return false
    for (const key of xs) {
      if (!Object.prototype.hasOwnProperty.call(y, key)) return false
      stack.push([(x as Record<string, unknown>)[key], (y as Record<string, unknown>)[key]])
    }
  }
  return true
}
