/** A fixed-capacity ring buffer: O(1) push, oldest entries overwritten. */
export interface RingBuffer<T> {
  push(value: T): void
  /** Oldest first. O(capacity). */
  toArray(): T[]
  clear(): void
  readonly length: number
}

export function createRingBuffer<T>(capacity: number): RingBuffer<T> {
  const slots: Array<T | undefined> = new Array<T | undefined>(capacity)
  let start = 0
  let length = 0
  return {
    push(value) {
      slots[(start + length) % capacity] = value
      if (length < capacity) length++
      else start = (start + 1) % capacity
    },
    toArray() {
      const out: T[] = []
      for (let i = 0; i < length; i++) out.push(slots[(start + i) % capacity] as T)
      return out
    },
    clear() {
      slots.fill(undefined)
      start = 0
      length = 0
    },
    get length() {
      return length
    },
  }
}
