import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { applyMergePatch, fieldPatch, malformedPatch, mergePatchOnto, pointer, threeWayMerge, type FieldPath } from '../../src/utils/fieldPatch'

const runs = Number(process.env.FC_RUNS ?? 200)

describe('fieldPatch', () => {
  it('holds only the changed fields, and the base values of those fields', () => {
    const body = 'x'.repeat(10_000)
    expect(fieldPatch({ id: 'a', title: 'x', body }, { id: 'a', title: 'y', body })).toEqual({ patch: { title: 'y' }, base: { title: 'x' } })
  })

  it('recurses into objects, replaces arrays whole, and writes a removed field as null', () => {
    const base = { meta: { tags: ['a'], color: 'red', size: 1 }, gone: 1 }
    const next = { meta: { tags: ['a', 'b'], color: 'red', size: 2 } }
    expect(fieldPatch(base, next)).toEqual({
      patch: { meta: { tags: ['a', 'b'], size: 2 }, gone: null },
      base: { meta: { tags: ['a'], size: 1 }, gone: 1 },
    })
  })

  it('skips reference-equal subtrees without looking inside', () => {
    const shared = new Proxy(
      { deep: 1 },
      {
        ownKeys() {
          throw new Error('a shared subtree was walked')
        },
      },
    )
    expect(fieldPatch({ shared, t: 1 }, { shared, t: 2 })).toEqual({ patch: { t: 2 }, base: { t: 1 } })
  })

  it('is null for what Merge Patch cannot say: a field set to null, from null, or a null inside a new object', () => {
    expect(fieldPatch({ a: 1 }, { a: null })).toBeNull()
    expect(fieldPatch({ a: null }, { a: 1 })).toBeNull()
    expect(fieldPatch({}, { a: { b: null } })).toBeNull()
    expect(fieldPatch({ a: 1 }, [1])).toBeNull()
    // A null inside an array is carried: arrays are leaves.
    expect(fieldPatch({}, { a: [null] })).toEqual({ patch: { a: [null] }, base: { a: null } })
  })

  it('refuses the keys that could pollute a prototype', () => {
    expect(fieldPatch({}, JSON.parse('{"__proto__": {"x": 1}}'))).toBeNull()
    expect(applyMergePatch({}, JSON.parse('{"__proto__": {"polluted": 1}}'))).toEqual({})
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
  })
})

describe('malformedPatch', () => {
  it('accepts what fieldPatch makes and names what is wrong otherwise', () => {
    expect(malformedPatch({ a: { b: 1 } }, { a: { b: 2 } })).toBeNull()
    expect(malformedPatch([], {})).toMatch(/patch must be a JSON object/)
    expect(malformedPatch({}, null)).toMatch(/base must be a JSON object/)
    expect(malformedPatch({ a: 1 }, {})).toMatch(/same fields/)
    expect(malformedPatch({ a: { b: 1 } }, { a: { c: 1 } })).toMatch(/same fields at \/a/)
  })
})

describe('mergePatchOnto', () => {
  it('applies cleanly onto the base, merges fields the server changed meanwhile, and names a field changed on both sides', () => {
    const base = { title: 'x', body: 'b', n: 1 }
    const fp = fieldPatch(base, { ...base, title: 'mine' })!
    expect(mergePatchOnto(base, fp)).toEqual({ value: { title: 'mine', body: 'b', n: 1 }, conflicts: [] })
    expect(mergePatchOnto({ ...base, body: 'theirs' }, fp)).toEqual({ value: { title: 'mine', body: 'theirs', n: 1 }, conflicts: [] })
    expect(mergePatchOnto({ ...base, title: 'theirs' }, fp)).toEqual({ value: { ...base, title: 'theirs' }, conflicts: [['title']] })
    expect(mergePatchOnto({ ...base, title: 'mine' }, fp).conflicts).toEqual([])
    expect(mergePatchOnto({ ...base, title: 'theirs' }, fp, true).value).toEqual({ ...base, title: 'mine' })
  })

  it('is a conflict on the container when the server removed or replaced what this side changed inside', () => {
    const base = { meta: { a: 1, b: 1 } }
    const fp = fieldPatch(base, { meta: { a: 2, b: 1 } })!
    expect(mergePatchOnto({}, fp).conflicts).toEqual([['meta']])
    expect(mergePatchOnto({ meta: 5 }, fp).conflicts).toEqual([['meta']])
    expect(pointer(['a/b', '~c'])).toBe('/a~1b/~0c')
  })
})

// Items of a few fields: leaves, arrays, a nested object. Edits set, change or remove fields.
const leaf = fc.oneof(fc.integer({ min: 0, max: 3 }), fc.constantFrom('a', 'b', 'c'), fc.array(fc.integer({ min: 0, max: 2 }), { maxLength: 2 }))
const nested = fc.record({ x: leaf, y: leaf }, { requiredKeys: [] })
const item = fc.record({ id: fc.constant('k'), t: leaf, b: leaf, c: leaf, m: nested }, { requiredKeys: ['id'] })
const edit = (base: Record<string, unknown>) =>
  fc.record({ t: fc.option(leaf), b: fc.option(leaf), c: fc.option(leaf), m: fc.option(nested) }, { requiredKeys: [] }).map((changes) => {
    const next: Record<string, unknown> = { ...base }
    for (const [k, v] of Object.entries(changes)) {
      if (v === null) delete next[k]
      else next[k] = v
    }
    return next
  })
const scenario = item.chain((base) => fc.tuple(fc.constant(base), edit(base), edit(base), fc.boolean()))

/** Every path to a leaf of `value` (an empty object counts as a leaf only at the root). */
const leafPaths = (value: unknown, at: string[] = [], out: string[][] = []): string[][] => {
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) leafPaths(v, [...at, k], out)
  } else if (at.length > 0) out.push(at)
  return out
}
/** The value at `path`, `undefined` when absent (or when something on the way is not an object). */
const at = (value: unknown, path: readonly string[]): unknown => {
  let v = value
  for (const k of path) {
    if (typeof v !== 'object' || v === null || Array.isArray(v) || !Object.prototype.hasOwnProperty.call(v, k)) return undefined
    v = (v as Record<string, unknown>)[k]
  }
  return v
}

describe('two clients editing one item concurrently, either arriving first', () => {
  it('ends as the reference three-way merge, and never loses a field edit only one side made', () => {
    fc.assert(
      fc.property(scenario, ([base, a, b, aFirst]) => {
        const [first, second] = aFirst ? [a, b] : [b, a]
        const p1 = fieldPatch(base, first)!
        const p2 = fieldPatch(base, second)!
        expect(p1).not.toBeNull()
        const afterFirst = mergePatchOnto(base, p1)
        expect(afterFirst).toEqual({ value: first, conflicts: [] })
        const merged = mergePatchOnto(afterFirst.value, p2)
        // The server keeps its value on a conflicting path: the reference with "server" chosen.
        const reference = threeWayMerge(base, second, first, () => 'server')
        expect(merged.value).toEqual(reference.value)
        expect(merged.conflicts.map(pointer).sort()).toEqual(reference.conflicts.map(pointer).sort())
        const under = (path: readonly string[], c: FieldPath): boolean => c.every((k, i) => path[i] === k)
        const paths = [...leafPaths(base), ...leafPaths(first), ...leafPaths(second)]
        for (const path of paths) {
          if (merged.conflicts.some((c) => under(path, c))) continue
          const was = at(base, path)
          for (const [side, other] of [
            [first, second],
            [second, first],
          ]) {
            const mine = at(side, path)
            const changed = JSON.stringify(mine) !== JSON.stringify(was)
            const otherChanged = JSON.stringify(at(other, path)) !== JSON.stringify(was)
            if (changed && !otherChanged) expect(at(merged.value, path), `the one-sided edit at ${pointer(path)}`).toEqual(mine)
          }
        }
      }),
      { numRuns: runs },
    )
  })

  it('a patch from the base, applied to the base, gives the new item', () => {
    fc.assert(
      fc.property(scenario, ([base, a]) => {
        const fp = fieldPatch(base, a)!
        expect(applyMergePatch(base, fp.patch)).toEqual(a)
        expect(malformedPatch(fp.patch, fp.base)).toBeNull()
      }),
      { numRuns: runs },
    )
  })
})
