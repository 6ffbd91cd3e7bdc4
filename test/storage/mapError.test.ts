import { describe, expect, test } from 'vitest'
import {
  ConnectionLostError,
  HttpError,
  NonSerializableError,
  StorageError,
  StorageQuotaError,
  SyncError,
  TransactionAbortedError,
  isConnectionLostError,
  isNonSerializableError,
  isRetryableError,
  isStorageError,
  isStorageQuotaError,
  isSyncError,
  isTransactionAbortedError,
} from '../../src'
import { mapStorageError } from '../../src/storage/mapError'

const context = { stores: ['files'], ref: { slice: 'files', key: 'files:a' } }

describe('mapStorageError', () => {
  test('QuotaExceededError becomes StorageQuotaError, also when it arrives as an abort', () => {
    const direct = mapStorageError(new DOMException('full', 'QuotaExceededError'), context)
    expect(direct).toBeInstanceOf(StorageQuotaError)
    const viaAbort = mapStorageError(new DOMException('aborted', 'AbortError'), { stores: ['files'] }, new DOMException('full', 'QuotaExceededError'))
    expect(viaAbort).toBeInstanceOf(StorageQuotaError)
    expect((viaAbort as StorageQuotaError).stores).toEqual(['files'])
  })

  test('AbortError becomes TransactionAbortedError with its cause', () => {
    const cause = new DOMException('aborted', 'AbortError')
    const error = mapStorageError(cause, { stores: ['files'] })
    expect(error).toBeInstanceOf(TransactionAbortedError)
    expect(error.cause).toBe(cause)
  })

  test('DataCloneError becomes NonSerializableError naming the slice and key', () => {
    const error = mapStorageError(new DOMException('cannot clone', 'DataCloneError'), context)
    expect(error).toBeInstanceOf(NonSerializableError)
    expect(error.slice).toBe('files')
    expect(error.key).toBe('files:a')
  })

  test('a closing connection becomes ConnectionLostError', () => {
    expect(mapStorageError(new DOMException('The database connection is closing.', 'InvalidStateError'), context)).toBeInstanceOf(ConnectionLostError)
    expect(
      mapStorageError(new DOMException('Connection to Indexed Database server lost. Refresh the page to try again', 'UnknownError'), context),
    ).toBeInstanceOf(ConnectionLostError)
  })

  test('anything else is a StorageError; our own errors pass through', () => {
    expect(mapStorageError(new Error('odd'), context)).toBeInstanceOf(StorageError)
    const own = new SyncError('mine')
    expect(mapStorageError(own, context)).toBe(own)
  })
})

describe('error classes and guards', () => {
  test('guards match by instanceof and by name (a second copy of the library)', () => {
    const foreign = Object.assign(new Error('from another bundle'), { name: 'StorageQuotaError' })
    expect(isStorageQuotaError(foreign)).toBe(true)
    expect(isStorageError(foreign)).toBe(true)
    expect(isSyncError(foreign)).toBe(true)
    expect(isTransactionAbortedError(new TransactionAbortedError('x'))).toBe(true)
    expect(isConnectionLostError(new TransactionAbortedError('x'))).toBe(false)
    expect(isNonSerializableError(new Error('plain'))).toBe(false)
    expect(isSyncError('a string')).toBe(false)
  })

  test('toJSON is serializable and carries no payload', () => {
    const error = new NonSerializableError('files:a cannot be persisted: function', {
      slice: 'files',
      key: 'files:a',
      reason: 'function',
      cause: { secret: 'payload' },
    })
    const json = error.toJSON()
    expect(json).toEqual({ name: 'NonSerializableError', message: 'files:a cannot be persisted: function', slice: 'files', key: 'files:a' })
    expect(JSON.stringify(json)).not.toContain('secret')
  })

  test('retryable: network-like and 5xx yes, other 4xx no', () => {
    const http = (status: number) => new HttpError('x', { status, method: 'GET', url: 'u' })
    expect(isRetryableError(http(503))).toBe(true)
    expect(isRetryableError(http(429))).toBe(true)
    expect(isRetryableError(http(400))).toBe(false)
    expect(isRetryableError(new TransactionAbortedError('x'))).toBe(true)
  })
})
