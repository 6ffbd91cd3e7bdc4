import { SyncError } from './SyncError'

/** A method was called on an instance after `dispose()`. */
export class DisposedError extends SyncError {
  override name = 'DisposedError' as const
}
