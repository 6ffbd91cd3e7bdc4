import { SyncError } from './SyncError'

/** A sync thunk ran in a store whose persistence middleware has no `remote` option. */
export class RemoteNotConfiguredError extends SyncError {
  override name = 'RemoteNotConfiguredError' as const
}
