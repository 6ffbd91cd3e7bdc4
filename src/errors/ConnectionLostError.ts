import { StorageError } from './StorageError'

/** The database connection closed underneath us ("The database connection is closing", "Connection to Indexed Database server lost"). The handle is dropped and reopened before any retry. */
export class ConnectionLostError extends StorageError {
  override name = 'ConnectionLostError' as const
}
