/**
 * gzip through the platform's Compression Streams (browsers, Node 18+, Deno, Bun). Where they do
 * not exist, `gzip` returns `null` and callers send the body as it is.
 */

const hasStreams = (): boolean => typeof CompressionStream === 'function' && typeof DecompressionStream === 'function'

/** Whether this runtime can gzip (CompressionStream exists). */
export const canGzip = (): boolean => hasStreams()

async function collect(stream: ReadableStream<Uint8Array>, limit = Infinity): Promise<Uint8Array | null> {
  const reader = stream.getReader()
  const chunks: Uint8Array[] = []
  let total = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    total += value.byteLength
    if (total > limit) {
      // Stop inflating: what is beyond the limit is never held in memory.
      await reader.cancel().catch(() => undefined)
      return null
    }
    chunks.push(value)
  }
  const out = new Uint8Array(total)
  let at = 0
  for (const chunk of chunks) {
    out.set(chunk, at)
    at += chunk.byteLength
  }
  return out
}

const streamOf = (bytes: Uint8Array): ReadableStream<Uint8Array> =>
  new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(bytes)
      controller.close()
    },
  })

/** `bytes` gzip-compressed, or `null` where the runtime has no CompressionStream. */
export async function gzip(bytes: Uint8Array): Promise<Uint8Array | null> {
  if (!hasStreams()) return null
  return collect(streamOf(bytes).pipeThrough(new CompressionStream('gzip') as unknown as ReadableWritablePair<Uint8Array, Uint8Array>))
}

/** Why a gzip body could not be inflated. */
export type GunzipFailure = 'too-large' | 'corrupt' | 'unsupported'

/**
 * Inflates a gzip body to at most `limit` bytes: a body that would inflate further (a zip bomb)
 * is `'too-large'` after `limit` bytes were produced, never more.
 */
export async function gunzip(bytes: Uint8Array, limit: number): Promise<Uint8Array | GunzipFailure> {
  if (!hasStreams()) return 'unsupported'
  try {
    const out = await collect(streamOf(bytes).pipeThrough(new DecompressionStream('gzip') as unknown as ReadableWritablePair<Uint8Array, Uint8Array>), limit)
    return out ?? 'too-large'
  } catch {
    return 'corrupt'
  }
}
