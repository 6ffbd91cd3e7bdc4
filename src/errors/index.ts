import { AuthError } from './AuthError'
import { ConnectionLostError } from './ConnectionLostError'
import { DisposedError } from './DisposedError'
import { FlushError } from './FlushError'
import { HttpError } from './HttpError'
import { HydrationError } from './HydrationError'
import { InvalidItemError } from './InvalidItemError'
import { InvalidOptionError } from './InvalidOptionError'
import { MalformedResponseError } from './MalformedResponseError'
import { MigrationError } from './MigrationError'
import { NetworkError } from './NetworkError'
import { NonSerializableError } from './NonSerializableError'
import { RealtimeError } from './RealtimeError'
import { RemoteNotConfiguredError } from './RemoteNotConfiguredError'
import { RequestTimeoutError } from './RequestTimeoutError'
import { DatabaseDeletedError } from './DatabaseDeletedError'
import { StorageBlockedError } from './StorageBlockedError'
import { StorageError } from './StorageError'
import { StorageQuotaError } from './StorageQuotaError'
import { StorageUnavailableError } from './StorageUnavailableError'
import { SyncError } from './SyncError'
import { TransactionAbortedError } from './TransactionAbortedError'
import { ValidationError } from './ValidationError'

export {
  AuthError,
  ConnectionLostError,
  DisposedError,
  FlushError,
  HttpError,
  HydrationError,
  InvalidItemError,
  InvalidOptionError,
  MalformedResponseError,
  MigrationError,
  NetworkError,
  NonSerializableError,
  RealtimeError,
  RemoteNotConfiguredError,
  RequestTimeoutError,
  StorageBlockedError,
  DatabaseDeletedError,
  StorageError,
  StorageQuotaError,
  StorageUnavailableError,
  SyncError,
  TransactionAbortedError,
  ValidationError,
}
export type { SerializedSyncError, SyncErrorContext } from './SyncError'
export type { StorageErrorContext } from './StorageError'

type ErrorClass<T> = abstract new (...args: never[]) => T

/**
 * Builds a guard that matches by `instanceof` and, as ky does, by `name`: two copies of the
 * library (a bundled one and a deduped one) must still recognise each other's errors.
 */
function guard<T extends Error>(cls: ErrorClass<T>, ...names: string[]): (error: unknown) => error is T {
  const known = new Set(names)
  return (error: unknown): error is T => error instanceof cls || (error instanceof Error && known.has(error.name))
}

const storageNames = ['StorageError', 'StorageQuotaError', 'TransactionAbortedError', 'ConnectionLostError', 'StorageBlockedError', 'DatabaseDeletedError']

/** True for every error of this library. */
export const isSyncError = guard(
  SyncError,
  'SyncError',
  ...storageNames,
  'StorageUnavailableError',
  'NonSerializableError',
  'InvalidItemError',
  'MigrationError',
  'HydrationError',
  'InvalidOptionError',
  'DisposedError',
  'FlushError',
  'HttpError',
  'AuthError',
  'NetworkError',
  'RequestTimeoutError',
  'MalformedResponseError',
  'RemoteNotConfiguredError',
  'ValidationError',
  'RealtimeError',
)
export const isStorageError = guard(StorageError, ...storageNames)
export const isStorageQuotaError = guard(StorageQuotaError, 'StorageQuotaError')
export const isTransactionAbortedError = guard(TransactionAbortedError, 'TransactionAbortedError')
export const isConnectionLostError = guard(ConnectionLostError, 'ConnectionLostError')
export const isStorageBlockedError = guard(StorageBlockedError, 'StorageBlockedError')
export const isDatabaseDeletedError = guard(DatabaseDeletedError, 'DatabaseDeletedError')
export const isStorageUnavailableError = guard(StorageUnavailableError, 'StorageUnavailableError')
export const isNonSerializableError = guard(NonSerializableError, 'NonSerializableError')
export const isInvalidItemError = guard(InvalidItemError, 'InvalidItemError')
export const isMigrationError = guard(MigrationError, 'MigrationError')
export const isHydrationError = guard(HydrationError, 'HydrationError')
export const isInvalidOptionError = guard(InvalidOptionError, 'InvalidOptionError')
export const isDisposedError = guard(DisposedError, 'DisposedError')
export const isFlushError = guard(FlushError, 'FlushError')
export const isValidationError = guard(ValidationError, 'ValidationError')

export const isHttpError = guard(HttpError, 'HttpError', 'AuthError')
export const isAuthError = guard(AuthError, 'AuthError')
export const isNetworkError = guard(NetworkError, 'NetworkError')
export const isRequestTimeoutError = guard(RequestTimeoutError, 'RequestTimeoutError')
export const isMalformedResponseError = guard(MalformedResponseError, 'MalformedResponseError')
export const isRealtimeError = guard(RealtimeError, 'RealtimeError')
export const isRemoteNotConfiguredError = guard(RemoteNotConfiguredError, 'RemoteNotConfiguredError')

/**
 * Whether retrying later may succeed: network failures, timeouts, malformed answers (proxy
 * pages), 408/429/5xx, and storage failures other than bad values.
 */
export function isRetryableError(error: unknown): boolean {
  if (isHttpError(error)) return error.retryable && !isAuthError(error)
  return isNetworkError(error) || isRealtimeError(error) || isRequestTimeoutError(error) || isMalformedResponseError(error) || isStorageError(error)
}

/** Wraps anything thrown into a {@link SyncError}, keeping the original as `cause`. */
export function toSyncError(error: unknown, fallbackMessage: string): SyncError {
  if (isSyncError(error)) return error
  const message = error instanceof Error ? `${fallbackMessage}: ${error.message}` : fallbackMessage
  return new SyncError(message, { cause: error })
}
