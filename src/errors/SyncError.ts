/** Context every error of this library can carry. All fields are optional and serializable. */
export interface SyncErrorContext {
  /** The slice the failed operation belongs to. */
  readonly slice?: string
  /** The queue key `<slice>:<id>` of the failed operation. */
  readonly key?: string
  /** The underlying error (a DOMException, an HTTP error, a user exception). */
  readonly cause?: unknown
}

/** The plain, serializable form of an error, as it appears in status objects and actions. */
export interface SerializedSyncError {
  readonly name: string
  readonly message: string
  readonly slice?: string
  readonly key?: string
}

/**
 * Base class of every error this library produces. Catch it with {@link isSyncError}.
 *
 * Rule: errors never carry item payloads (values may be private data and end up in logs).
 */
export class SyncError extends Error {
  override name: string = 'SyncError'
  readonly slice: string | undefined
  readonly key: string | undefined

  constructor(message: string, context: SyncErrorContext = {}) {
    super(message, context.cause === undefined ? undefined : { cause: context.cause })
    this.slice = context.slice
    this.key = context.key
  }

  /** A serializable summary, safe to put into Redux state or an action. */
  toJSON(): SerializedSyncError {
    return {
      name: this.name,
      message: this.message,
      ...(this.slice === undefined ? {} : { slice: this.slice }),
      ...(this.key === undefined ? {} : { key: this.key }),
    }
  }
}
