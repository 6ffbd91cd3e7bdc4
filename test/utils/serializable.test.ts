import { describe, expect, test } from 'vitest'
import { findNonSerializable, stripDangerousKeys } from '../../src/utils/serializable'

describe('findNonSerializable', () => {
  test('plain data passes, including shared (non-circular) references and null prototypes', () => {
    const shared = { x: 1 }
    expect(findNonSerializable({ a: [1, 'two', null, undefined, true, { b: shared }], c: shared, d: Object.create(null) }, 100)).toBeNull()
  })

  test.each<[string, unknown, string, (string | number)[]]>([
    ['function', { a: { b: () => 1 } }, 'function', ['a', 'b']],
    ['symbol', [0, Symbol('x')], 'symbol', [1]],
    ['BigInt', { n: BigInt(2) }, 'BigInt (not representable in JSON)', ['n']],
    ['Date', { when: new Date(0) }, 'instance of Date', ['when']],
    ['Map', { m: new Map() }, 'instance of Map', ['m']],
  ])('%s is found with its path', (_name, value, reason, path) => {
    expect(findNonSerializable(value, 100)).toEqual({ reason, path })
  })

  test('a circular reference', () => {
    const a: Record<string, unknown> = {}
    a.self = { back: a }
    expect(findNonSerializable(a, 100)).toEqual({ reason: 'circular reference', path: ['self', 'back'] })
  })

  test('10,000 levels of nesting are reported as too deep, without overflowing the stack', () => {
    let deep: Record<string, unknown> = {}
    for (let i = 0; i < 10_000; i++) deep = { deep }
    const problem = findNonSerializable(deep, 100)
    expect(problem?.reason).toBe('nested deeper than maxDepth (100)')
    expect(problem?.path).toHaveLength(101)
  })

  test('symbol keys are refused', () => {
    expect(findNonSerializable({ [Symbol('k')]: 1 }, 100)?.reason).toBe('symbol key')
  })
})

describe('stripDangerousKeys', () => {
  test('removes __proto__, constructor and prototype at any depth, copying only what changes', () => {
    const clean = { a: { b: 1 } }
    expect(stripDangerousKeys(clean)).toBe(clean)
    const parsed = JSON.parse('{"ok":1,"__proto__":{"polluted":true},"nested":[{"constructor":{"prototype":{"x":1}},"keep":2}]}') as unknown
    const stripped = stripDangerousKeys(parsed) as Record<string, unknown>
    expect(stripped).toEqual({ ok: 1, nested: [{ keep: 2 }] })
    expect(Object.prototype.hasOwnProperty.call(stripped, '__proto__')).toBe(false)
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
  })
})
