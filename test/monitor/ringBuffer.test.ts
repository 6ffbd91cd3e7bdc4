import { describe, expect, test } from 'vitest'
import { createRingBuffer } from '../../src/monitor/ringBuffer'

const filled = (capacity: number, count: number) => {
  const buffer = createRingBuffer<number>(capacity)
  for (let i = 1; i <= count; i++) buffer.push(i)
  return buffer
}

describe('createRingBuffer', () => {
  test('starts empty', () => {
    const buffer = createRingBuffer<number>(3)
    expect(buffer.length).toBe(0)
    expect(buffer.toArray()).toEqual([])
  })

  test.each([
    [1, [1]],
    [2, [1, 2]],
    [3, [1, 2, 3]],
    [4, [2, 3, 4]],
    [7, [5, 6, 7]],
    [9, [7, 8, 9]], // wrapped around exactly three times
  ])('after %i pushes into 3 slots it holds the last ones, oldest first: %j', (count, expected) => {
    const buffer = filled(3, count)
    expect(buffer.toArray()).toEqual(expected)
    expect(buffer.length).toBe(expected.length)
  })

  test('length never exceeds the capacity', () => {
    expect(filled(100, 1000).length).toBe(100)
    expect(filled(100, 1000).toArray().at(0)).toBe(901)
  })

  test('a capacity of one keeps only the newest', () => {
    expect(filled(1, 5).toArray()).toEqual([5])
  })

  test('toArray is a copy: changing it changes nothing inside', () => {
    const buffer = filled(3, 2)
    const copy = buffer.toArray()
    copy.push(99)
    copy[0] = -1
    expect(buffer.toArray()).toEqual([1, 2])
  })

  test('clear empties it, and it fills again from the start', () => {
    const buffer = filled(3, 5)
    buffer.clear()
    expect(buffer.length).toBe(0)
    expect(buffer.toArray()).toEqual([])
    buffer.push(10)
    buffer.push(11)
    expect(buffer.toArray()).toEqual([10, 11])
    for (const n of [12, 13]) buffer.push(n)
    expect(buffer.toArray()).toEqual([11, 12, 13])
  })

  test('undefined and null are values like any other', () => {
    const buffer = createRingBuffer<number | null | undefined>(2)
    buffer.push(undefined)
    buffer.push(null)
    expect(buffer.length).toBe(2)
    expect(buffer.toArray()).toEqual([undefined, null])
  })
})
