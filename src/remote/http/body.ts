import { HttpError, NetworkError, isHttpError, isNetworkError, type SyncError } from '../../errors'
import { gzip } from '../../utils/gzip'

/** A request body as the client sends it: JSON, or bytes with their headers (gzip). */
export interface Payload {
  readonly json?: unknown
  readonly body?: BodyInit
  readonly headers?: Record<string, string>
}

/** `json` gzip-compressed, or `null` when it is smaller than `minBytes` or cannot be compressed here. */
export async function gzipped(json: unknown, minBytes: number): Promise<Payload | null> {
  const bytes = new TextEncoder().encode(JSON.stringify(json))
  if (bytes.byteLength < minBytes) return null
  const packed = await gzip(bytes).catch(() => null)
  if (!packed) return null
  return { body: packed as BodyInit, headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' } }
}

/** The failure of a refused gzip push, re-worded to name the cause and the fix; `cause` is the failure itself. */
export function refusalWarning(refused: SyncError, url: string): SyncError {
  const got = isHttpError(refused) ? `was answered ${refused.status}${refused.code ? ` (${refused.code})` : ''}` : 'failed without an answer'
  const message =
    'compressed requests are refused (CORS Access-Control-Allow-Headers lacks Content-Encoding, or a proxy); sending uncompressed: ' +
    `POST ${url} with Content-Encoding: gzip ${got}, and the same push uncompressed went through. ` +
    "To compress again, allow Content-Encoding in the server's CORS Access-Control-Allow-Headers (and in any proxy on the way), " +
    'or set remote.compressRequestsOver: false to stop trying'
  if (isHttpError(refused)) {
    return new HttpError(message, { status: refused.status, code: refused.code, serverMessage: refused.serverMessage, method: 'POST', url, cause: refused })
  }
  return new NetworkError(message, { method: 'POST', url, cause: refused })
}

/** What a gzip body may get from a path that refuses it: no answer (a CORS preflight), 415 or 400 (a proxy). Never a 413. */
export const refusesGzip = (error: unknown): error is SyncError =>
  isNetworkError(error) || (isHttpError(error) && (error.status === 415 || error.status === 400))
