import { SyncError, type SyncErrorContext } from './SyncError'

/**
 * An item's value cannot be stored: it holds a function, a symbol, a BigInt, a circular
 * reference, a class instance, or is nested deeper than `maxDepth`. The operation is dropped
 * (it could never succeed); every other pending operation is still written.
 */
export class NonSerializableError extends SyncError {
  override name = 'NonSerializableError' as const
  /** Where inside the item the bad value sits, e.g. `['meta', 'onClick']`. */
  readonly path: readonly (string | number)[]
  /** What is wrong, e.g. `'function'`, `'circular reference'`. */
  readonly reason: string

  constructor(message: string, context: SyncErrorContext & { path?: readonly (string | number)[]; reason: string }) {
    super(message, context)
    this.path = context.path ?? []
    this.reason = context.reason
  }
}
