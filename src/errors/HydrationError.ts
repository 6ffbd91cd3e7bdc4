import { SyncError } from './SyncError'

/** Loading a slice from storage failed, or the store has no hydration enhancer installed. State is left as it was. */
export class HydrationError extends SyncError {
  override name = 'HydrationError' as const
}
