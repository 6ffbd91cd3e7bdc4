import { describe, expect, test, vi } from 'vitest'
import {
  ConnectionLostError,
  NonSerializableError,
  StorageError,
  StorageQuotaError,
  TransactionAbortedError,
  createMemoryStore,
  isSyncError,
  type LocalStore,
  type SyncError,
} from '../../src'
import { guardLocalStore } from '../../src/storage/guard'
import type { StorageOp } from '../../src/storage/types'

type Method = 'ensureStores' | 'commit' | 'readAll' | 'get' | 'getMany' | 'destroy'

const ops: StorageOp[] = [
  { type: 'put', store: 'files', key: 'a', value: 1 },
  { type: 'delete', store: 'files', key: 'b' },
  { type: 'put', store: '__ris_outbox', key: 'files:a', value: {} },
]

/** Each boundary call, with the stores its failure must name. */
const calls: Array<[Method, (store: LocalStore) => Promise<unknown>, string[]]> = [
  ['ensureStores', (s) => s.ensureStores(['files', 'notes']), ['files', 'notes']],
  ['commit', (s) => s.commit(ops), ['files', '__ris_outbox']],
  ['readAll', (s) => s.readAll('files'), ['files']],
  ['get', (s) => s.get('files', 'a'), ['files']],
  ['getMany', (s) => s.getMany('files', ['a', 'b']), ['files']],
  ['destroy', (s) => s.destroy!(), []],
]

/** A custom backend (over the memory store) whose `method` fails with `failure`, thrown synchronously or rejected. */
function faulty(method: Method, failure: unknown, how: 'rejects' | 'throws'): LocalStore {
  const inner = createMemoryStore()
  return {
    ...inner,
    kind: 'custom',
    destroy: async () => {},
    [method]:
      how === 'throws'
        ? () => {
            throw failure
          }
        : () => Promise.reject(failure),
  }
}

/** What the guarded call settles with; fails the test if it threw synchronously. */
async function outcome(run: () => Promise<unknown>): Promise<unknown> {
  let promise: Promise<unknown>
  try {
    promise = run()
  } catch (error) {
    throw new Error(`threw synchronously instead of rejecting: ${String(error)}`)
  }
  return promise.then(
    () => 'resolved',
    (error: unknown) => error,
  )
}

describe.each(calls)('guardLocalStore: %s', (method, call, stores) => {
  test.each(['rejects', 'throws'] as const)('a raw QuotaExceededError it %s becomes a StorageQuotaError naming the stores, with its cause', async (how) => {
    const raw = new DOMException('full', 'QuotaExceededError')
    const error = await outcome(() => call(guardLocalStore(faulty(method, raw, how))))
    expect(error).toBeInstanceOf(StorageQuotaError)
    expect((error as StorageQuotaError).stores).toEqual(stores)
    expect((error as Error).cause).toBe(raw)
  })

  test.each(['rejects', 'throws'] as const)('a TypeError it %s becomes a StorageError (a rejection, never a throw)', async (how) => {
    const raw = new TypeError('backend bug')
    const error = await outcome(() => call(guardLocalStore(faulty(method, raw, how))))
    expect(isSyncError(error)).toBe(true)
    expect(error).toBeInstanceOf(StorageError)
    expect((error as Error).message).toMatch(/backend bug/)
    expect((error as Error).cause).toBe(raw)
  })

  test('a non-Error rejection becomes a StorageError too', async () => {
    const error = await outcome(() => call(guardLocalStore(faulty(method, 'just a string', 'rejects'))))
    expect(error).toBeInstanceOf(StorageError)
    expect((error as Error).message).toMatch(/just a string/)
  })

  test('a SyncError passes through as the same object', async () => {
    const typed = new TransactionAbortedError('already typed', { stores: ['elsewhere'] })
    expect(await outcome(() => call(guardLocalStore(faulty(method, typed, 'rejects'))))).toBe(typed)
  })
})

describe('guardLocalStore: the other rules', () => {
  test.each<[string, DOMException, new (...args: never[]) => SyncError]>([
    ['AbortError', new DOMException('aborted', 'AbortError'), TransactionAbortedError],
    ['DataCloneError', new DOMException('cannot clone', 'DataCloneError'), NonSerializableError],
    ['InvalidStateError (a dead connection)', new DOMException('closing', 'InvalidStateError'), ConnectionLostError],
  ])('a raw %s is mapped as the idb store maps it', async (_name, raw, type) => {
    expect(await outcome(() => guardLocalStore(faulty('commit', raw, 'rejects')).commit(ops))).toBeInstanceOf(type)
  })

  test('results pass through unchanged', async () => {
    const guarded = guardLocalStore(createMemoryStore())
    await guarded.ensureStores(['files'])
    await guarded.commit([{ type: 'put', store: 'files', key: 'a', value: { n: 1 } }])
    expect(await guarded.get('files', 'a')).toEqual({ n: 1 })
    expect(await guarded.getMany('files', ['a', 'missing'])).toEqual([{ n: 1 }, undefined])
    expect(await guarded.readAll('files')).toEqual([['a', { n: 1 }]])
  })

  test('kind and persistent are the inner store’s; close goes straight through', () => {
    const close = vi.fn()
    const guarded = guardLocalStore({ ...createMemoryStore(), kind: 'custom', persistent: true, close })
    expect(guarded.kind).toBe('custom')
    expect(guarded.persistent).toBe(true)
    guarded.close()
    expect(close).toHaveBeenCalledTimes(1)
  })

  test('destroy exists only when the inner store has it, and runs with the inner store as `this`', async () => {
    const { destroy: _none, ...withoutDestroy } = createMemoryStore()
    expect(guardLocalStore(withoutDestroy).destroy).toBeUndefined()
    const inner: LocalStore & { destroyed: boolean } = {
      ...createMemoryStore(),
      destroyed: false,
      async destroy(this: { destroyed: boolean }) {
        this.destroyed = true
      },
    }
    await guardLocalStore(inner).destroy!()
    expect(inner.destroyed).toBe(true)
  })
})
