/**
 * The depth rule of docs/protocol.md, shared by the client, the local checks and the contract
 * model: the depth of a value is the largest number of property/index steps from its root to
 * anything inside it (a primitive, `{}` or `[]` is 0; `{"a":1}` and `[1]` are 1). Values of depth
 * at most MAX_VALUE_DEPTH are accepted.
 */
export const MAX_VALUE_DEPTH = 100

/** Whether the depth of `value` exceeds `limit`. Iterative, so a hostile value cannot overflow the stack. */
export function deeperThan(value: unknown, limit: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 0]]
  while (stack.length > 0) {
    const [current, depth] = stack.pop()!
    if (current === null || typeof current !== 'object') continue
    // Each child is one step further from the root than `current`.
    for (const child of Object.values(current)) {
      if (depth + 1 > limit) return true
      stack.push([child, depth + 1])
    }
  }
  return false
}
