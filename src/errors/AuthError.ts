import { HttpError } from './HttpError'

/**
 * The server still answered 401 after one token refresh. Queued operations are kept (never
 * discarded for auth) and pushed once a request authenticates again.
 */
export class AuthError extends HttpError {
  override name = 'AuthError' as const
}
