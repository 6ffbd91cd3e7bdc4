import { ConnectionLostError, NonSerializableError, StorageError, StorageQuotaError, SyncError, TransactionAbortedError } from '../errors'
import type { OpRef } from './types'

/** Context of the transaction that failed. */
export interface FailureContext {
  readonly stores: readonly string[]
  /** The op whose request failed, when known (a synchronous DataCloneError from `put`). */
  readonly ref?: OpRef | undefined
}

/** Texts browsers use when a connection died under a live handle (Chromium, Firefox and WebKit each word it differently). */
const lostConnection = /connection is closing|connection to indexed database server lost|database.*(closed|closing)/i

/** True when the handle that produced this error must be dropped and reopened before retrying. */
export function isLostConnection(error: unknown): boolean {
  if (!(error instanceof Error)) return false
  if (error.name === 'InvalidStateError') return true
  return (error.name === 'UnknownError' || error.name === 'AbortError') && lostConnection.test(error.message)
}

/**
 * Maps what IndexedDB throws to a typed error. A quota failure usually arrives as an abort whose
 * `tx.error` is the QuotaExceededError, so `txError` is checked first.
 */
export function mapStorageError(error: unknown, context: FailureContext, txError?: unknown): SyncError {
  if (error instanceof SyncError) return error
  const stores = context.stores
  const named = (e: unknown): string => (e instanceof Error ? e.name : '')
  const causeName = named(txError) || named(error)
  const base = { stores, cause: error, ...(context.ref ?? {}) }
  if (causeName === 'QuotaExceededError' || named(error) === 'QuotaExceededError') {
    return new StorageQuotaError(`storage quota exceeded while writing to ${stores.join(', ')}`, base)
  }
  if (named(error) === 'DataCloneError') {
    return new NonSerializableError(`value could not be cloned into IndexedDB${context.ref ? ` (${context.ref.key})` : ''}`, {
      ...base,
      reason: 'DataCloneError',
    })
  }
  if (isLostConnection(error) || isLostConnection(txError)) {
    return new ConnectionLostError(`the database connection was lost`, base)
  }
  if (causeName === 'AbortError' || named(error) === 'AbortError') {
    return new TransactionAbortedError(`transaction on ${stores.join(', ')} aborted`, base)
  }
  const message = error instanceof Error ? error.message : String(error)
  return new StorageError(`storage operation failed: ${message}`, base)
}
