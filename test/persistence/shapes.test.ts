import { describe, expect, test } from 'vitest'
import {
  applyChanges,
  buildCollection,
  detectShape,
  diffCollection,
  diffIds,
  entriesOf,
  getAt,
  indexArray,
  setAt,
  validId,
  type ShapeKind,
} from '../../src/persistence/shapes'
import { byId, collectionOf, recordingSink, type Item } from '../support/collections'

const a: Item = { id: 'a', name: 'A' }
const b: Item = { id: 'b', name: 'B' }
const c: Item = { id: 'c', name: 'C' }

const layouts: ShapeKind[] = ['entities', 'record', 'array']

/** Runs a full diff and returns what the sink heard. */
function diff(kind: ShapeKind, prev: unknown, next: unknown) {
  const sink = recordingSink()
  diffCollection(kind, prev, next, byId, sink, null)
  return sink
}

describe('detectShape', () => {
  test.each<[string, unknown, ShapeKind | undefined]>([
    ['an array', [], 'array'],
    ['an entity state', { ids: [], entities: {} }, 'entities'],
    ['an entity state with extra fields', { ids: [], entities: {}, loading: false }, 'entities'],
    ['a plain object', { a: 1 }, 'record'],
    ['an empty object', {}, 'record'],
    ['ids without entities', { ids: [] }, 'record'],
    ['null', null, undefined],
    ['undefined', undefined, undefined],
    ['a string', 'x', undefined],
  ])('%s is %s', (_name, collection, kind) => {
    expect(detectShape(collection)).toBe(kind)
  })
})

describe('validId', () => {
  test.each<[unknown, boolean]>([
    ['a', true],
    ['', false],
    [0, true],
    [-1.5, true],
    [Number.NaN, false],
    [Number.POSITIVE_INFINITY, false],
    [null, false],
    [undefined, false],
    [{}, false],
    [true, false],
  ])('%j → %s', (id, valid) => {
    expect(validId(id)).toBe(valid)
  })
})

describe.each(layouts)('diffCollection, %s layout', (kind) => {
  test('the same collection reports nothing', () => {
    const collection = collectionOf(kind, [a, b])
    const sink = diff(kind, collection, collection)
    expect([sink.puts, sink.deletes, sink.invalids]).toEqual([[], [], []])
  })

  test('an addition is a put of the new item only', () => {
    const sink = diff(kind, collectionOf(kind, [a, b]), collectionOf(kind, [a, b, c]))
    expect(sink.puts).toEqual([['c', c]])
    expect(sink.deletes).toEqual([])
  })

  test('an update is a put of the new reference; untouched items are not reported', () => {
    const renamed = { ...b, name: 'B2' }
    const sink = diff(kind, collectionOf(kind, [a, b, c]), collectionOf(kind, [a, renamed, c]))
    expect(sink.puts).toEqual([['b', renamed]])
    expect(sink.puts[0]![1]).toBe(renamed)
    expect(sink.deletes).toEqual([])
  })

  test('a removal is a delete', () => {
    const sink = diff(kind, collectionOf(kind, [a, b, c]), collectionOf(kind, [a, c]))
    expect(sink.puts).toEqual([])
    expect(sink.deletes).toEqual(['b'])
  })

  test('an equal copy of an item counts as changed: items are compared by reference', () => {
    const sink = diff(kind, collectionOf(kind, [a]), collectionOf(kind, [{ ...a }]))
    expect(sink.puts).toEqual([['a', a]])
  })

  test('rebuilt containers with the same item references report nothing', () => {
    const sink = diff(kind, collectionOf(kind, [a, b]), collectionOf(kind, [a, b]))
    expect([sink.puts, sink.deletes, sink.invalids]).toEqual([[], [], []])
  })

  test('from nothing (undefined) to items: every item is a put; back to nothing: every item a delete', () => {
    expect(diff(kind, undefined, collectionOf(kind, [a, b])).puts).toEqual([
      ['a', a],
      ['b', b],
    ])
    expect(diff(kind, collectionOf(kind, [a, b]), undefined).deletes.sort()).toEqual(['a', 'b'])
  })

  test('an item whose id is empty is reported invalid, not stored', () => {
    const empty = { id: '', name: 'no id' }
    const sink = diff(kind, collectionOf(kind, [a]), collectionOf(kind, [a, empty]))
    expect(sink.puts).toEqual([])
    expect(sink.invalids).toEqual([empty])
  })
})

describe('diffCollection, layout details', () => {
  test('entities: a reorder of ids with the same entities reports nothing', () => {
    const prev = collectionOf('entities', [a, b]) as { ids: string[]; entities: Record<string, Item> }
    const sink = diff('entities', prev, { ids: ['b', 'a'], entities: prev.entities })
    expect([sink.puts, sink.deletes]).toEqual([[], []])
  })

  test('entities: numeric ids are kept as numbers', () => {
    const one = { id: 1, name: 'one' }
    const two = { id: 2, name: 'two' }
    const sink = diff('entities', collectionOf('entities', [one, two]), collectionOf('entities', [two, { id: 3, name: 'three' }]))
    expect(sink.puts.map(([id]) => id)).toEqual([3])
    expect(sink.deletes).toEqual([1])
  })

  test('record: an own __proto__ key is an ordinary item id', () => {
    const next: Record<string, unknown> = {}
    Object.defineProperty(next, '__proto__', { value: a, enumerable: true, writable: true, configurable: true })
    const sink = diff('record', {}, next)
    expect(sink.puts).toEqual([['__proto__', a]])
    expect(diff('record', next, {}).deletes).toEqual(['__proto__'])
  })

  test('record: an item set to undefined under a new key is still a put (the key exists)', () => {
    const sink = diff('record', {}, { x: undefined })
    expect(sink.puts).toEqual([['x', undefined]])
  })

  test('array: items are found by getId wherever they moved; an item without an id is invalid', () => {
    const noId = { name: 'no id' }
    const sink = diff('array', [a, b, c], [c, a, noId])
    expect(sink.puts).toEqual([])
    expect(sink.deletes).toEqual(['b'])
    expect(sink.invalids).toEqual([noId])
  })

  test('array: the returned index is the next collection’s, and a passed index replaces reading prev', () => {
    const sink = recordingSink()
    const index = diffCollection('array', [a], [a, b], byId, sink, null)
    expect(index).toEqual(
      new Map<unknown, unknown>([
        ['a', a],
        ['b', b],
      ]),
    )
    // With the cached index, prev is not read: here it claims b is already known.
    const again = recordingSink()
    diffCollection('array', 'ignored', [a, b], byId, again, index)
    expect([again.puts, again.deletes]).toEqual([[], []])
  })

  test('entities and record return no index; an unchanged collection returns the index it was given', () => {
    const index = new Map([['a', a]])
    expect(diffCollection('entities', collectionOf('entities', [a]), collectionOf('entities', [b]), byId, recordingSink(), index)).toBeNull()
    expect(diffCollection('record', {}, { a }, byId, recordingSink(), index)).toBeNull()
    const same = [a]
    expect(diffCollection('array', same, same, byId, recordingSink(), index)).toBe(index)
  })
})

describe('diffIds: the diff of an action that named its ids', () => {
  test.each<ShapeKind>(['entities', 'record'])('%s: only the named ids are looked at', (kind) => {
    const prev = collectionOf(kind, [a, b, c]) as Record<string, unknown>
    // b changed, c changed too but is not named: a hint covers what it names, nothing else.
    const renamed = { ...b, name: 'B2' }
    const next = kind === 'entities' ? { ids: (prev as { ids: unknown }).ids, entities: { a, b: renamed, c: { ...c } } } : { a, b: renamed, c: { ...c } }
    const sink = recordingSink()
    expect(diffIds(kind, prev, next, new Set(['a', 'b']), sink)).toBe(true)
    expect(sink.puts).toEqual([['b', renamed]])
    expect(sink.deletes).toEqual([])
  })

  test('record: a named id that is gone is a delete, one that is new a put; an invalid id is skipped', () => {
    const sink = recordingSink()
    expect(diffIds('record', { a, b }, { a, c }, new Set(['b', 'c', '']), sink)).toBe(true)
    expect(sink.puts).toEqual([['c', c]])
    expect(sink.deletes).toEqual(['b'])
  })

  test('entities whose ids array changed (an addition or removal) need the full diff', () => {
    expect(diffIds('entities', collectionOf('entities', [a]), collectionOf('entities', [a, b]), new Set(['b']), recordingSink())).toBe(false)
  })

  test('entities with the same entities object: nothing to do', () => {
    const prev = collectionOf('entities', [a]) as { ids: string[]; entities: Record<string, Item> }
    const sink = recordingSink()
    expect(diffIds('entities', prev, { ...prev }, new Set(['a']), sink)).toBe(true)
    expect(sink.puts).toEqual([])
  })

  test('arrays always need the full diff; so does an entities slice that is not an entity state', () => {
    expect(diffIds('array', [a], [a, b], new Set(['b']), recordingSink())).toBe(false)
    expect(diffIds('entities', undefined, collectionOf('entities', [a]), new Set(['a']), recordingSink())).toBe(false)
  })

  test('the same collection is done without looking', () => {
    const same = collectionOf('array', [a])
    expect(diffIds('array', same, same, new Set(['a']), recordingSink())).toBe(true)
  })
})

describe('entriesOf and indexArray', () => {
  test.each(layouts)('%s: every [id, item] in the collection’s order', (kind) => {
    expect(entriesOf(kind, collectionOf(kind, [b, a]), byId)).toEqual([
      ['b', b],
      ['a', a],
    ])
  })

  test.each(layouts)('%s: nothing (undefined) has no entries', (kind) => {
    expect(entriesOf(kind, undefined, byId)).toEqual([])
  })

  test('indexArray skips items without a valid id', () => {
    expect([...indexArray([a, { name: 'x' }, { id: '', name: 'y' }, b], byId).keys()]).toEqual(['a', 'b'])
  })
})

describe('buildCollection', () => {
  test.each(layouts)('%s: round-trips through entriesOf', (kind) => {
    const built = buildCollection(
      kind,
      [
        ['a', a],
        ['b', b],
      ],
      undefined,
    )
    expect(built).toEqual(collectionOf(kind, [a, b]))
    expect(entriesOf(kind, built, byId)).toEqual([
      ['a', a],
      ['b', b],
    ])
  })

  test('entities keep the template’s other fields', () => {
    expect(buildCollection('entities', [['a', a]], { ids: ['old'], entities: { old: c }, loading: 'idle' })).toEqual({
      ids: ['a'],
      entities: { a },
      loading: 'idle',
    })
  })

  test('an id of __proto__ becomes an own key and never reaches a prototype', () => {
    const built = buildCollection('record', [['__proto__', a]], undefined) as Record<string, unknown>
    expect(Object.getPrototypeOf(built)).toBe(Object.prototype)
    expect(Object.keys(built)).toEqual(['__proto__'])
    expect(Object.getOwnPropertyDescriptor(built, '__proto__')?.value).toBe(a)
  })
})

describe('getAt and setAt: the collection at a path', () => {
  test('getAt follows the path and is undefined where it breaks off', () => {
    const state = { items: { list: [a] }, filter: 'all' }
    expect(getAt(state, ['items', 'list'])).toEqual([a])
    expect(getAt(state, [])).toBe(state)
    expect(getAt(state, ['filter', 'length'])).toBeUndefined()
    expect(getAt(state, ['missing', 'list'])).toBeUndefined()
  })

  test('setAt copies only the objects on the path; everything else keeps its reference', () => {
    const sibling = { deep: true }
    const state = { items: { list: [a], other: sibling }, filter: { by: 'all' } }
    const next = setAt(state, ['items', 'list'], [b]) as typeof state
    expect(next.items.list).toEqual([b])
    expect(next).not.toBe(state)
    expect(next.items).not.toBe(state.items)
    expect(next.items.other).toBe(sibling)
    expect(next.filter).toBe(state.filter)
    expect(state.items.list).toEqual([a]) // the old state is untouched
  })

  test('setAt with an empty path is the value; missing objects on the path are created', () => {
    expect(setAt({ x: 1 }, [], 'v')).toBe('v')
    expect(setAt(undefined, ['a', 'b'], 1)).toEqual({ a: { b: 1 } })
  })

  test('setAt defines a __proto__ key instead of replacing the prototype', () => {
    const next = setAt({}, ['__proto__'], { polluted: true }) as Record<string, unknown>
    expect(Object.getPrototypeOf(next)).toBe(Object.prototype)
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    expect(Object.keys(next)).toEqual(['__proto__'])
  })
})

describe.each(layouts)('applyChanges, %s layout', (kind) => {
  test('puts replace in place, new items go at the end, deletes are removed, untouched items keep their reference', () => {
    const renamed = { ...a, name: 'A2' }
    const d = { id: 'd', name: 'D' }
    const out = applyChanges(
      kind,
      collectionOf(kind, [a, b, c]),
      [
        ['a', renamed],
        ['d', d],
      ],
      ['b'],
      byId,
    )
    expect(entriesOf(kind, out, byId)).toEqual([
      ['a', renamed],
      ['c', c],
      ['d', d],
    ])
    expect(entriesOf(kind, out, byId)[1]![1]).toBe(c)
  })

  test('the input collection is not mutated', () => {
    const input = collectionOf(kind, [a, b])
    const copy = structuredClone(input)
    applyChanges(kind, input, [['c', c]], ['a'], byId)
    expect(input).toEqual(copy)
  })

  test('from nothing (undefined): the puts alone', () => {
    expect(entriesOf(kind, applyChanges(kind, undefined, [['a', a]], ['x'], byId), byId)).toEqual([['a', a]])
  })

  test('deleting an id that is not there changes nothing', () => {
    const out = applyChanges(kind, collectionOf(kind, [a]), [], ['zzz'], byId)
    expect(entriesOf(kind, out, byId)).toEqual([['a', a]])
  })
})

describe('applyChanges, layout details', () => {
  test('entities keep their other fields and numeric ids; a string delete removes a numeric id', () => {
    const one = { id: 1, name: 'one' }
    const two = { id: 2, name: 'two' }
    const out = applyChanges('entities', { ids: [1, 2], entities: { 1: one, 2: two }, loading: 'idle' }, [], ['1'], byId)
    expect(out).toEqual({ ids: [2], entities: { 2: two }, loading: 'idle' })
  })

  test('array ids are matched by value and type: the number 1 is not the string "1"', () => {
    const one = { id: 1, name: 'one' }
    expect(applyChanges('array', [one], [], ['1'], byId)).toEqual([one])
    expect(applyChanges('array', [one], [], [1], byId)).toEqual([])
  })

  test('array items without a valid id are kept as they are', () => {
    const noId = { name: 'no id' }
    expect(applyChanges('array', [noId, a], [['a', b]], [], byId)).toEqual([noId, b])
  })

  test('record and entities: an id of __proto__ is written as an own key', () => {
    const record = applyChanges('record', {}, [['__proto__', a]], [], byId) as Record<string, unknown>
    expect(Object.getPrototypeOf(record)).toBe(Object.prototype)
    expect(Object.keys(record)).toEqual(['__proto__'])
    const entities = applyChanges('entities', undefined, [['__proto__', a]], [], byId) as { ids: unknown[]; entities: Record<string, unknown> }
    expect(entities.ids).toEqual(['__proto__'])
    expect(Object.getPrototypeOf(entities.entities)).toBe(Object.prototype)
    expect(Object.getOwnPropertyDescriptor(entities.entities, '__proto__')?.value).toBe(a)
  })
})
