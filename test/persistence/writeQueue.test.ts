import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest'
import { TransactionAbortedError, isFlushError, type SyncError } from '../../src/errors'
import { createOperationQueue, type OperationQueueOptions, type QueueEntry } from '../../src/persistence/writeQueue'

interface Written {
  at: number
  batch: Array<Pick<QueueEntry, 'key' | 'op' | 'value'>>
}

function makeQueue(over: Partial<OperationQueueOptions> = {}) {
  const writes: Written[] = []
  const failures: SyncError[] = []
  const queue = createOperationQueue({
    debounceFor: () => 300,
    batchSizeFor: () => 10,
    canWrite: () => true,
    async write(batch) {
      const failure = failures.shift()
      if (failure) throw failure
      writes.push({ at: Date.now(), batch: batch.map(({ key, op, value }) => ({ key, op, value })) })
      return { rejected: [] }
    },
    onBatch: () => {},
    retry: { baseMs: 100, maxMs: 1000 },
    random: () => 1,
    ...over,
  })
  return { queue, writes, failNext: (error: SyncError) => failures.push(error) }
}

const abort = (): TransactionAbortedError => new TransactionAbortedError('aborted', { stores: ['files'] })

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date', 'performance'] })
})
afterEach(() => {
  vi.useRealTimers()
})

describe('debounce', () => {
  test('100 updates to one key inside the window produce exactly one put, carrying the last value', async () => {
    const { queue, writes } = makeQueue()
    for (let i = 1; i <= 100; i++) {
      queue.enqueue('files', 'a', 'put', { n: i })
      await vi.advanceTimersByTimeAsync(2)
    }
    // Keys may go up to 10 ms early to share a batch (BATCH_WINDOW_MS), never earlier.
    await vi.advanceTimersByTimeAsync(289)
    expect(writes).toHaveLength(0)
    await vi.advanceTimersByTimeAsync(12)
    expect(writes).toHaveLength(1)
    expect(writes[0]!.batch).toEqual([{ key: 'files:a', op: 'put', value: { n: 100 } }])
  })

  test('a change restarts only its own key’s timer', async () => {
    const { queue, writes } = makeQueue()
    const start = Date.now()
    queue.enqueue('files', 'a', 'put', 1)
    await vi.advanceTimersByTimeAsync(200)
    queue.enqueue('files', 'b', 'put', 2)
    await vi.advanceTimersByTimeAsync(120)
    expect(writes.map((w) => [w.at - start, w.batch.map((b) => b.key)])).toEqual([[300, ['files:a']]])
    await vi.advanceTimersByTimeAsync(200)
    expect(writes.map((w) => [w.at - start, w.batch.map((b) => b.key)])).toEqual([
      [300, ['files:a']],
      [500, ['files:b']],
    ])
  })

  test('debounce is per slice', async () => {
    const { queue, writes } = makeQueue({ debounceFor: (slice) => (slice === 'slow' ? 1000 : 100) })
    queue.enqueue('slow', 1, 'put', 1)
    queue.enqueue('fast', 1, 'put', 1)
    await vi.advanceTimersByTimeAsync(150)
    expect(writes.flatMap((w) => w.batch.map((b) => b.key))).toEqual(['fast:1'])
    await vi.advanceTimersByTimeAsync(1000)
    expect(writes.flatMap((w) => w.batch.map((b) => b.key))).toEqual(['fast:1', 'slow:1'])
  })
})

describe('coalescing', () => {
  test.each([
    ['put then delete becomes delete', ['put', 'delete'] as const, 'delete'],
    ['delete then put becomes put', ['delete', 'put'] as const, 'put'],
  ])('%s', async (_name, ops, expected) => {
    const { queue, writes } = makeQueue()
    for (const op of ops) queue.enqueue('files', 'k', op, op === 'put' ? { v: 1 } : undefined)
    await queue.flush()
    expect(writes.flatMap((w) => w.batch)).toEqual([{ key: 'files:k', op: expected, value: expected === 'put' ? { v: 1 } : undefined }])
  })

  test('memory is bounded by distinct dirty keys', () => {
    const { queue } = makeQueue()
    for (let i = 0; i < 10_000; i++) queue.enqueue('files', i % 100, 'put', { i })
    expect(queue.size).toBe(100)
  })
})

describe('batching and order', () => {
  test('25 keys with batchSize 10 go out as 10 + 10 + 5, in FIFO order', async () => {
    const { queue, writes } = makeQueue()
    for (let i = 0; i < 25; i++) queue.enqueue('files', `k${i}`, 'put', i)
    await vi.advanceTimersByTimeAsync(300)
    expect(writes.map((w) => w.batch.length)).toEqual([10, 10, 5])
    expect(writes.flatMap((w) => w.batch.map((b) => b.value))).toEqual([...Array(25).keys()])
  })

  test('a batch takes the smallest batchSize of its slices', async () => {
    const { queue, writes } = makeQueue({ batchSizeFor: (slice) => (slice === 'small' ? 2 : 10) })
    for (let i = 0; i < 3; i++) queue.enqueue('big', i, 'put', i)
    for (let i = 0; i < 3; i++) queue.enqueue('small', i, 'put', i)
    await queue.flush()
    expect(Math.max(...writes.filter((w) => w.batch.some((b) => b.key.startsWith('small'))).map((w) => w.batch.length))).toBeLessThanOrEqual(2)
    expect(writes.flatMap((w) => w.batch)).toHaveLength(6)
  })

  test('entries of a slice that may not be written wait, and others go ahead', async () => {
    let open = false
    const { queue, writes } = makeQueue({ canWrite: (slice) => slice !== 'held' || open })
    queue.enqueue('held', 1, 'put', 'h')
    queue.enqueue('free', 1, 'put', 'f')
    const { held } = await queue.flush()
    expect(held.map((e) => e.key)).toEqual(['held:1'])
    expect(writes.flatMap((w) => w.batch.map((b) => b.key))).toEqual(['free:1'])
    open = true
    queue.kick()
    await vi.advanceTimersByTimeAsync(0)
    expect(writes.flatMap((w) => w.batch.map((b) => b.key))).toEqual(['free:1', 'held:1'])
  })
})

describe('failures', () => {
  test('a failed batch keeps its operations, does not block the others, and is retried with backoff', async () => {
    const { queue, writes, failNext } = makeQueue()
    for (let i = 0; i < 15; i++) queue.enqueue('files', i, 'put', i)
    failNext(abort())
    await vi.advanceTimersByTimeAsync(300)
    // The first batch (0..9) failed, the second (10..14) landed.
    expect(writes.map((w) => w.batch.map((b) => b.value))).toEqual([[10, 11, 12, 13, 14]])
    expect(queue.size).toBe(10)
    await vi.advanceTimersByTimeAsync(100) // first retry after baseMs (random() = 1)
    expect(writes.map((w) => w.batch.length)).toEqual([5, 10])
    expect(queue.size).toBe(0)
  })

  test('backoff doubles up to maxMs', async () => {
    const { queue, writes, failNext } = makeQueue()
    for (let i = 0; i < 4; i++) failNext(abort())
    queue.enqueue('files', 'a', 'put', 1)
    const start = Date.now()
    await vi.advanceTimersByTimeAsync(300) // attempt 1 fails
    await vi.advanceTimersByTimeAsync(100) // attempt 2 fails (retry after 100)
    await vi.advanceTimersByTimeAsync(200) // attempt 3 fails (after 200)
    await vi.advanceTimersByTimeAsync(399)
    expect(writes).toHaveLength(0)
    await vi.advanceTimersByTimeAsync(1) // attempt 4 fails (after 400)
    await vi.advanceTimersByTimeAsync(800) // attempt 5 succeeds (after 800)
    expect(writes).toHaveLength(1)
    expect(writes[0]!.at - start).toBe(300 + 100 + 200 + 400 + 800)
  })

  test('a newer operation supersedes a failed one', async () => {
    const { queue, writes, failNext } = makeQueue()
    queue.enqueue('files', 'a', 'put', 'old')
    failNext(abort())
    await vi.advanceTimersByTimeAsync(300)
    queue.enqueue('files', 'a', 'put', 'new')
    await queue.flush()
    await vi.advanceTimersByTimeAsync(5000)
    expect(writes.flatMap((w) => w.batch.map((b) => b.value))).toEqual(['new'])
  })

  test('flush resolves after the write and rejects with FlushError when it fails; the next flush writes', async () => {
    const { queue, writes, failNext } = makeQueue()
    queue.enqueue('files', 'a', 'put', 1)
    failNext(abort())
    const error = await queue.flush().then(
      () => null,
      (e: unknown) => e,
    )
    expect(isFlushError(error)).toBe(true)
    expect((error as { errors: SyncError[] }).errors[0]).toBeInstanceOf(TransactionAbortedError)
    expect(queue.size).toBe(1)
    await queue.flush()
    expect(writes.flatMap((w) => w.batch.map((b) => b.value))).toEqual([1])
    expect(queue.size).toBe(0)
  })

  test('a change during a write in flight is kept as a new entry', async () => {
    let release!: () => void
    const writes: unknown[] = []
    const queue = createOperationQueue({
      debounceFor: () => 0,
      batchSizeFor: () => 10,
      canWrite: () => true,
      write: async (batch) => {
        await new Promise<void>((resolve) => (release = resolve))
        writes.push(...batch.map((b) => b.value))
        return { rejected: [] }
      },
      onBatch: () => {},
      retry: { baseMs: 10, maxMs: 10 },
    })
    queue.enqueue('files', 'a', 'put', 'first')
    await vi.advanceTimersByTimeAsync(1)
    queue.enqueue('files', 'a', 'put', 'second')
    release()
    await vi.advanceTimersByTimeAsync(1)
    release()
    await vi.advanceTimersByTimeAsync(1)
    expect(writes).toEqual(['first', 'second'])
    expect(queue.size).toBe(0)
  })

  test('dispose clears every timer: nothing is written afterwards', async () => {
    const { queue, writes } = makeQueue()
    queue.enqueue('files', 'a', 'put', 1)
    queue.dispose()
    await vi.advanceTimersByTimeAsync(10_000)
    expect(writes).toHaveLength(0)
  })
})

describe('supersede (another tab committed a change of the key)', () => {
  test('drops a queued change made before the other tab’s, keeps one made after it, and never touches a write in flight', async () => {
    let release: () => void = () => {}
    const { queue, writes } = makeQueue({
      write: async (batch) => {
        if (batch.some((e) => e.key === 'files:slow')) await new Promise<void>((resolve) => (release = resolve))
        writes.push({ at: Date.now(), batch: batch.map(({ key, op, value }) => ({ key, op, value })) })
        return { rejected: [] }
      },
    })
    queue.enqueue('files', 'old', 'put', 'mine')
    await vi.advanceTimersByTimeAsync(5)
    const theirs = performance.timeOrigin + performance.now()
    await vi.advanceTimersByTimeAsync(5)
    queue.enqueue('files', 'new', 'put', 'mine')
    expect(queue.supersede('files:old', theirs)).toBe(true)
    expect(queue.supersede('files:new', theirs)).toBe(false)
    expect(queue.supersede('files:none', theirs)).toBe(true)
    expect(queue.has('files:old')).toBe(false)
    expect(queue.size).toBe(1)
    queue.enqueue('files', 'slow', 'put', 'mine')
    const flushed = queue.flush()
    await vi.advanceTimersByTimeAsync(1)
    expect(queue.supersede('files:slow', performance.timeOrigin + performance.now() + 1000)).toBe(false) // in flight, however old
    release()
    await flushed
    expect(writes.flatMap((w) => w.batch.map((e) => e.key)).sort()).toEqual(['files:new', 'files:slow'])
  })
})
