import { SyncError } from './SyncError'

/** An item in a persisted slice has no usable id (not a non-empty string or a finite number). It is skipped. */
export class InvalidItemError extends SyncError {
  override name = 'InvalidItemError' as const
}
